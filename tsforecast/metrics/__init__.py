"""Forecast accuracy metrics, on arrays and on long-format panels.

Point metrics (:mod:`~tsforecast.metrics.point`) take 1-D array-likes and return a float. Positions
where ``y_true`` is NaN are dropped first: a missing actual says nothing about the forecast.

Probabilistic metrics (:mod:`~tsforecast.metrics.intervals`) score quantile forecasts and central
prediction intervals the same way: :func:`pinball_loss`; the CRPS approximated from quantiles
(:func:`quantile_crps`, and :func:`scaled_crps` divided by the seasonal naive scale of MASE); the
interval metrics of the M4 competition, :func:`msis` (mean scaled interval score, from
:func:`interval_score`) and :func:`acd` (absolute coverage difference), and :func:`coverage`.
:func:`quantiles_from_intervals` reads interval bounds and the point forecast as quantiles.

:func:`evaluate` and :func:`evaluate_by_horizon` (:mod:`~tsforecast.metrics.panel`) join long
forecast and actual frames on (series id, timestamp) and score each series or each horizon step with
the same metrics, reading the quantile forecast columns (``q0.1``, ``q0.9``..., as the recurrent
forecasters fitted with ``quantiles`` name them, :func:`quantile_column`) and the interval columns
of ``predict(level=...)`` (``y_lo_95``, ``y_hi_95``..., :func:`interval_columns`).
:func:`pooled_coverage` gives a panel's coverage and ACD pooled over its points, as M4 computed them.
"""

from tsforecast.metrics.intervals import (
    acd,
    coverage,
    interval_columns,
    interval_levels,
    interval_quantiles,
    interval_score,
    msis,
    pinball_loss,
    quantile_column,
    quantile_crps,
    quantiles_from_intervals,
    scaled_crps,
)
from tsforecast.metrics.panel import POOLED_METRICS, evaluate, evaluate_by_horizon, pooled_coverage
from tsforecast.metrics.point import mae, mape, mase, owa, rmse, smape

__all__ = [
    "POOLED_METRICS",
    "acd",
    "coverage",
    "evaluate",
    "evaluate_by_horizon",
    "interval_columns",
    "interval_levels",
    "interval_quantiles",
    "interval_score",
    "mae",
    "mape",
    "mase",
    "msis",
    "owa",
    "pinball_loss",
    "pooled_coverage",
    "quantile_column",
    "quantile_crps",
    "quantiles_from_intervals",
    "rmse",
    "scaled_crps",
    "smape",
]
