"""Model-based prediction intervals of the baselines: per method, one series' central intervals.

Each forecast step of :data:`~tsforecast.baselines.functions._METHODS` has a bounds step here,
``bounds(state, y, h, point, levels, *regressors) -> {level: (lower, upper)}``, each ``(h,)``, from
the same state and history (``point`` is the forecast step's output). The forecast error is normal
with the model's h-step variance unless said otherwise:

* **Naive, SeasonalNaive** (FPP3 5.5, R's ``forecast::naive``/``snaive``): ``sigma * sqrt(k + 1)``,
  ``k = floor((h - 1) / m)`` (``m = 1`` for naive: ``sigma * sqrt(h)``), ``sigma^2`` the mean square
  of the in-sample lag-``m`` differences (FPP3's ``T - K - M`` with ``K = 0``, ``M = m``).
* **Naive2**: naive's interval on the seasonally adjusted series, times the seasonal indices.
* **SES, Holt, DampedHolt**: ETS(A,N,N), ETS(A,A,N), ETS(A,Ad,N), class 1 of Hyndman et al. (2008):
  ``sigma^2 * (1 + sum_{j<h} c_j^2)``, ``c_j = alpha * (1 + beta * (phi + ... + phi^j))`` with
  statsmodels' ``beta`` (R's ``beta / alpha``), on the adjusted series, times the indices;
  ``sigma^2 = SSE / (n - K)`` with ``K`` the smoothing parameters and initial states (R's ``ets``).
* **Theta**: SES with drift (Hyndman & Billah 2003; R's ``thetaf``): ``sigma^2 * (1 + (h - 1) alpha^2)``,
  ``sigma^2`` of the in-sample one-step errors over ``n - 4``; bounds set to 0 below 0 as the point.
  (statsmodels' ``ThetaModel.prediction_intervals`` adds ``1 + (alpha - 1)^2`` per step, the variance
  of one differenced value, not of the h-step error: too wide unless ``alpha`` is near 1.)
* **AutoETS**: statsmodels' ``ETSModel`` with the chosen form and parameters: the analytic variance
  for additive errors, 5,000 simulated paths (fixed seed) for multiplicative ones; ``sigma^2`` as
  R's ``ets`` (``n - K``, not statsmodels' ``n``).
* **AutoARIMA**: ``sigma^2 * sum_{j<h} psi_j^2``, the psi weights of ``theta(B) Theta(B^m) /
  (phi(B) Phi(B^m) (1 - B)^d (1 - B^m)^D)``; ``sigma^2`` the CSS estimate (R's ``arima(method="CSS")``)
  or, with regressors, SARIMAX's maximum-likelihood one (the regressors are known, so they add none).

As in R's ``forecast``, the parameters are taken as known (their estimation error is left out).
Everything passes the magnitude-safe rescaling of the forecasts: bounds are computed in the units
the state was fitted in and multiplied back. A constant series has ``sigma = 0``: bounds equal the point.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.signal import lfilter
from scipy.stats import norm
from statsmodels.tsa.exponential_smoothing.ets import ETSModel

from tsforecast.baselines.auto import _arma_polynomials, _css_residuals, _ets_parameter_count
from tsforecast.baselines.functions import _METHODS
from tsforecast.baselines.regression import filtered_regression, series_regressors
from tsforecast.baselines.seasonality import difference, differencing_polynomial, reseasonalize
from tsforecast.baselines.smoothing import _theta_path
from tsforecast.data.labels import series_label
from tsforecast.exceptions import InvalidInputError, InvalidParameterError
from tsforecast.metrics.intervals import interval_quantiles

# Simulated paths of a multiplicative-error ETS (R's forecast.ets npaths) and their fixed seed.
_PATHS = 5000
_SEED = 0


def _normal(center, sd, levels, transform=None):
    """``{level: (center - z sd, center + z sd)}``, each bound through ``transform`` when given."""
    bounds = {}
    for level in levels:
        z = norm.ppf(interval_quantiles(level)[1])
        lower, upper = center - z * sd, center + z * sd
        bounds[level] = (lower, upper) if transform is None else (transform(lower), transform(upper))
    return bounds


def _lagwalk_sigma(y, lag):
    """Root mean square of the in-sample errors of the lag-``lag`` walk (R's ``lagwalk``)."""
    errors = y[lag:] - y[:-lag]
    return float(np.sqrt(errors @ errors / len(errors)))


def _naive_bounds(state, y, h, point, levels):
    lag = len(state["last"])  # 1 for naive, m for seasonal naive
    steps = np.arange(h) // lag + 1  # k + 1, k = floor((h - 1) / m)
    return _normal(point, _lagwalk_sigma(y, lag) * np.sqrt(steps), levels)


def _naive2_bounds(state, y, h, point, levels):
    adjusted = y / reseasonalize(state["indices"], 0, len(y))
    indices = reseasonalize(state["indices"], state["n"], h)
    return _normal(point, _lagwalk_sigma(adjusted, 1) * np.sqrt(np.arange(1, h + 1)) * indices, levels)


def _smoothing_bounds(state, y, h, point, levels):
    """ETS(A,N,N), (A,A,N), (A,Ad,N): class 1 variance with ETS' beta = alpha * statsmodels' beta."""
    phi_sums = np.cumsum(state["phi"] ** np.arange(1, h))  # phi + ... + phi^j, j = 1..h-1
    c = state["alpha"] * (1.0 + state["beta"] * phi_sums)
    variance = state["sigma2"] * np.r_[1.0, 1.0 + np.cumsum(c**2)]
    indices = reseasonalize(state["indices"], state["n"], h)
    return _normal(point, np.sqrt(variance) * indices, levels)


def _theta_bounds(state, y, h, point, levels):
    sd = np.sqrt(state["sigma2"] * (1.0 + np.arange(h) * state["alpha"] ** 2))
    indices = reseasonalize(state["indices"], state["n"], h)
    # Setting negatives to 0 is monotone: the bounds of the clipped forecast are the clipped bounds.
    return _normal(_theta_path(state, h), sd, levels, lambda bound: np.maximum(bound, 0.0) * indices)


def _ets_bounds(state, y, h, point, levels):
    if state["form"] == "Naive":  # no ETS form could be fitted
        return _naive_bounds({"last": y[-1:]}, y, h, point, levels)
    spec, n = state["spec"], len(y)
    results = ETSModel(pd.Series(y), **spec).smooth(state["params"])  # get_prediction fails on ndarrays
    # statsmodels' sigma^2 is SSE / n; R's ets divides by n - K (K: its parameters but sigma).
    inflation = n / max(n - (_ets_parameter_count(spec) - 1), 1)
    if spec["error"] == "add":
        variance = np.asarray(results.get_prediction(start=n, end=n + h - 1).var_pred_mean, dtype=np.float64)
        return _normal(point, np.sqrt(variance * inflation), levels)
    errors = np.random.default_rng(_SEED).standard_normal((h, _PATHS)) * np.sqrt(results.scale * inflation)
    # Paths from the final states, (h, paths): statsmodels' get_prediction(method="simulated") draws.
    paths = np.asarray(results.simulate(h, anchor="end", repetitions=_PATHS, random_errors=errors))
    return {level: tuple(np.quantile(paths, interval_quantiles(level), axis=1)) for level in levels}


def _psi_variance(ar_poly, ma_poly, delta, sigma2, h):
    """``sigma2 * (psi_0^2 + ... + psi_(h-1)^2)`` of ``ma_poly(B) / (ar_poly(B) delta(B))``."""
    impulse = np.zeros(h)
    impulse[0] = 1.0
    psi = lfilter(ma_poly, np.convolve(ar_poly, delta), impulse)
    return sigma2 * np.cumsum(psi**2)


def _arima_bounds(state, y, h, point, levels, X=None):
    m = state["order"][-1]
    if "columns" in state:  # regression with ARIMA errors: SARIMAX's polynomials and sigma^2
        results, _ = filtered_regression(state, y, X)
        ar_poly = np.convolve(results.polynomial_ar, results.polynomial_seasonal_ar)
        ma_poly = np.convolve(results.polynomial_ma, results.polynomial_seasonal_ma)
        sigma2 = float(results.scale)
    else:
        z = difference(y, state["d"], state["D"], m) - state["mean"]
        ar_poly, ma_poly = _arma_polynomials(state["params"], state["order"])
        residuals = _css_residuals(z, ar_poly, ma_poly, state["ncond"])[state["ncond"] :]
        sigma2 = residuals @ residuals / max(len(residuals), 1)
    delta = differencing_polynomial(state["d"], state["D"], m)
    return _normal(point, np.sqrt(_psi_variance(ar_poly, ma_poly, delta, sigma2, h)), levels)


def _magnitude_safe(bounds):
    """``bounds`` on the units the state was fitted in (``y / scale``), multiplied back."""

    def safe_bounds(state, y, h, point, levels, *regressors):
        scale = state.get("scale", 1.0)
        if scale == 1.0:
            return bounds(state, y, h, point, levels, *regressors)
        scaled = bounds(state, y / scale, h, point / scale, levels, *regressors)
        with np.errstate(over="ignore"):  # a bound beyond float64's range is refused by predict
            return {level: (lower * scale, upper * scale) for level, (lower, upper) in scaled.items()}

    return safe_bounds


_BOUNDS = {
    name: _magnitude_safe(bounds)
    for name, bounds in {
        "naive": _naive_bounds,
        "seasonal_naive": _naive_bounds,
        "naive2": _naive2_bounds,
        "ses": _smoothing_bounds,
        "holt": _smoothing_bounds,
        "damped": _smoothing_bounds,
        "theta": _theta_bounds,
        "auto_ets": _ets_bounds,
        "auto_arima": _arima_bounds,
    }.items()
}

_LAGGED = ("naive", "seasonal_naive", "naive2")  # sigma from in-sample lagged errors, at predict
_FITTED_SIGMA = ("ses", "holt", "damped", "theta")  # methods whose states keep sigma2


def _check_interval_states(name, method, states, panel, season_length):
    """Refuse what intervals cannot be computed from, naming the series or the model."""
    if method in _LAGGED:
        needed = (season_length if method == "seasonal_naive" else 1) + 1  # one in-sample error
        if short := np.flatnonzero(panel.lengths < needed).tolist():
            raise InvalidInputError(
                f"{name} needs {needed} values of {series_label(panel.ids[short[0]])} for prediction "
                f"intervals (sigma comes from its in-sample errors); it has {panel.lengths[short[0]]} "
                f"({len(short)} series that short). Forecast without level, or give a longer history."
            )
    if method in _FITTED_SIGMA and any("sigma2" not in state for state in states):
        raise InvalidParameterError(
            f"level needs the residual variance ('sigma2') {name} keeps in states_ since it has "
            "intervals; this model was fitted without it (by an older tsforecast). Fit it again."
        )


def forecast_panel(name, method, states, panel, horizon, levels=(), covariates=None, season_length=1):
    """Point forecasts and interval bounds of every series of ``panel`` from their states.

    Parameters
    ----------
    name : str
        The estimator's name, for error messages.
    method : str
        The key of :data:`~tsforecast.baselines.functions._METHODS`.
    states : list of dict
        One fitted state per series, fitted on ``panel``'s histories.
    panel : Panel
        The histories.
    horizon : int
    levels : tuple of float, default ()
        Central interval levels, in percent; none: point forecasts only.
    covariates : Covariates, optional
        Aligned with ``panel`` over the horizon too (AutoARIMA's regressors).
    season_length : int, default 1
        The estimator's seasonal period.

    Returns
    -------
    point : np.ndarray of shape (n_series, horizon)
        Exactly the forecasts without ``levels``.
    bounds : dict of float -> (np.ndarray, np.ndarray)
        Per level, the lower and upper bounds, each (n_series, horizon).
    """
    forecast = _METHODS[method][1]
    designs = [r[:1] for r in series_regressors(covariates, panel.n_series)]  # history + horizon rows
    rows = list(zip(states, panel.values, designs, strict=True))
    point = np.vstack([forecast(state, y, horizon, *x) for state, y, x in rows])
    if not levels:
        return point, {}
    _check_interval_states(name, method, states, panel, season_length)
    bounds = _BOUNDS[method]
    per_series = [bounds(s, y, horizon, p, levels, *x) for (s, y, x), p in zip(rows, point, strict=True)]
    return point, {
        level: tuple(np.vstack([b[level][side] for b in per_series]) for side in (0, 1)) for level in levels
    }
