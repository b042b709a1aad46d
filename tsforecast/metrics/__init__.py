"""Forecast accuracy metrics, on arrays and on long-format panels.

Point metrics (:mod:`~tsforecast.metrics.point`) take 1-D array-likes and return a float. Positions
where ``y_true`` is NaN are dropped first: a missing actual says nothing about the forecast.
:func:`evaluate` and :func:`evaluate_by_horizon` (:mod:`~tsforecast.metrics.panel`) join long
forecast and actual frames on (series id, timestamp) and score each series or each horizon step with
the same point metrics, and with the pinball loss and interval coverage of quantile forecast columns
(``q0.1``, ``q0.9``..., as the recurrent forecasters fitted with ``quantiles`` name them;
:mod:`~tsforecast.metrics.intervals`).
"""

from tsforecast.metrics.intervals import coverage, pinball_loss, quantile_column
from tsforecast.metrics.panel import evaluate, evaluate_by_horizon
from tsforecast.metrics.point import mae, mape, mase, owa, rmse, smape

__all__ = [
    "coverage",
    "evaluate",
    "evaluate_by_horizon",
    "mae",
    "mape",
    "mase",
    "owa",
    "pinball_loss",
    "quantile_column",
    "rmse",
    "smape",
]
