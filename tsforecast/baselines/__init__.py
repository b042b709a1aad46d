"""Statistical baselines: the M4 benchmarks, AutoETS and AutoARIMA (with covariates).

Every method is a pure function on one series, ``method(y, h, season_length) -> (h,) array``, where
``y`` is a 1-D float array without NaN. It is a fit step, returning a small picklable state (a dict
of numbers and arrays), and a forecast step. The estimator classes are thin: they map the fit step
over the series of a panel (in joblib worker processes when the work outweighs their start-up), keep
the states in ``states_`` and forecast from them; ``predict(y=...)`` refits on the new history.

The M4 benchmarks follow the organisers' ``Benchmarks and Evaluation.R`` (``Mcompetitions/M4-methods``):
``Naive2``, ``SES``, ``Holt``, ``DampedHolt`` and ``Theta`` forecast the seasonally adjusted series
(:func:`~tsforecast.baselines.seasonality.deseasonalize`) and re-seasonalise. Exponential smoothing starts
where R's ``forecast::ets`` starts and refines by a local derivative-free search (Powell, as R's
Nelder-Mead): that reproduces the published M4 figures, where a global search finds other Holt
optima that forecast differently.

Covariates: :class:`AutoARIMA` alone takes them. Given ``future_covariates`` (columns of ``X`` known
over the forecast period too, categorical ones one-hot encoded), it fits each series as a regression
with ARIMA errors, as R's ``auto.arima(xreg=)``: the order search on the regression residuals, then
statsmodels' ``SARIMAX`` fitted jointly with the regressors by maximum likelihood, forecasting from
the future rows of ``X`` (:mod:`tsforecast.baselines.regression`). The other baselines refuse ``X``
with an :class:`~tsforecast.exceptions.InvalidInputError`;
:func:`tsforecast.base.takes_covariates` tells which forecasters take covariates.

Intervals: every baseline answers ``predict(level=[80, 95])`` with its model's own normal (or, for
multiplicative-error ETS, simulated) prediction intervals, from the same states as the point
forecasts, which they leave unchanged (:mod:`tsforecast.baselines.intervals`: the variance of each
method and where its residual variance comes from).
"""

from tsforecast.baselines.estimators import (
    SES,
    AutoARIMA,
    AutoETS,
    DampedHolt,
    Holt,
    Naive,
    Naive2,
    SeasonalNaive,
    Theta,
)
from tsforecast.baselines.functions import (
    auto_arima,
    auto_ets,
    damped,
    holt,
    naive,
    naive2,
    seasonal_naive,
    ses,
    theta,
)

__all__ = [
    "SES", "AutoARIMA", "AutoETS", "DampedHolt", "Holt", "Naive", "Naive2", "SeasonalNaive", "Theta",
    "auto_arima", "auto_ets", "damped", "holt", "naive", "naive2", "seasonal_naive", "ses", "theta",
]  # fmt: skip
