"""The baselines as pure functions, ``method(y, h, season_length) -> (h,) array``."""

from __future__ import annotations

from functools import partial

import numpy as np

from tsforecast.baselines.auto import _fit_auto_ets, _forecast_ets
from tsforecast.baselines.regression import fit_regression_arima, forecast_regression_arima
from tsforecast.baselines.smoothing import (
    _fit_adjusted,
    _fit_last,
    _fit_theta,
    _forecast_adjusted,
    _forecast_last,
    _forecast_theta,
)
from tsforecast.exceptions import InvalidInputError

# Sums of squares overflow float64 beyond about 1e154 and lose every digit below about 1e-154: a
# series whose largest magnitude lies outside [2**-500, 2**500] is fitted divided by a power of two
# (exact in floating point, so nothing but the exponent changes) and its forecasts multiplied back.
# Inside that band nothing is rescaled, so the published M4 figures reproduce bit for bit.
_SAFE_EXPONENTS = (-500, 500)


def _power_of_two_scale(y):
    """1.0, or the power of two that brings ``max |y|`` near 1 when it lies outside the safe band."""
    peak = float(np.max(np.abs(y), initial=0.0))
    if peak == 0.0:
        return 1.0
    exponent = int(np.frexp(peak)[1])  # peak = mantissa * 2**exponent, mantissa in [0.5, 1)
    low, high = _SAFE_EXPONENTS
    # 2**(exponent - 1) stays finite for the largest float64 (2**1024 is inf).
    return 1.0 if low <= exponent <= high else float(np.ldexp(1.0, exponent - 1))


def _magnitude_safe(fit, forecast):
    """``(fit, forecast)`` that work on any finite float64 series (see :data:`_SAFE_EXPONENTS`).

    A rescaled series' state keeps the model's numbers in units of ``y / scale`` and records
    ``scale``; every other state is the model's own. Extra arguments (AutoARIMA's regressors) pass
    through unchanged: only ``y`` is rescaled.
    """

    def safe_fit(y, season_length=1, *regressors):
        scale = _power_of_two_scale(y)
        if scale == 1.0:
            return fit(y, season_length, *regressors)
        return {**fit(y / scale, season_length, *regressors), "scale": scale}

    def safe_forecast(state, y, h, *regressors):
        scale = state.get("scale", 1.0)
        if scale == 1.0:
            return forecast(state, y, h, *regressors)
        with np.errstate(over="ignore"):  # a forecast beyond float64's range is refused by predict
            return forecast(state, y / scale, h, *regressors) * scale

    return safe_fit, safe_forecast


_METHODS = {
    name: _magnitude_safe(fit, forecast)
    for name, (fit, forecast) in {
        "naive": (_fit_last, _forecast_last),
        "seasonal_naive": (_fit_last, _forecast_last),
        "naive2": (partial(_fit_adjusted, smooth=False), _forecast_adjusted),
        "ses": (_fit_adjusted, _forecast_adjusted),
        "holt": (partial(_fit_adjusted, trend=True), _forecast_adjusted),
        "damped": (partial(_fit_adjusted, trend=True, damped=True), _forecast_adjusted),
        "theta": (_fit_theta, _forecast_theta),
        "auto_ets": (_fit_auto_ets, _forecast_ets),
        "auto_arima": (fit_regression_arima, forecast_regression_arima),
    }.items()
}


def _run(method, y, h, season_length):
    fit, forecast = _METHODS[method]
    y = np.asarray(y, dtype=np.float64)
    return forecast(fit(y, season_length), y, h)


def naive(y, h):
    """The last value, ``h`` times.

    Parameters
    ----------
    y : array-like of shape (n,)
        The series, without missing values.
    h : int
        Forecast horizon.

    Returns
    -------
    np.ndarray of shape (h,)

    Examples
    --------
    >>> naive([1.0, 2.0, 3.0], 2)
    array([3., 3.])
    """
    return _run("naive", y, h, 1)


def seasonal_naive(y, h, season_length):
    """The last ``season_length`` values, repeated (M4 ``sNaive``); needs ``season_length`` values.

    Parameters
    ----------
    y : array-like of shape (n,)
        The series, without missing values.
    h : int
        Forecast horizon.
    season_length : int
        Seasonal period ``m``.

    Returns
    -------
    np.ndarray of shape (h,)

    Examples
    --------
    >>> seasonal_naive([1.0, 2.0, 3.0, 4.0], 3, season_length=2)
    array([3., 4., 3.])
    """
    return _run("seasonal_naive", y, h, season_length)


def naive2(y, h, season_length=1):
    """M4 ``Naive2``: naive on the seasonally adjusted series, re-seasonalised.

    A series is adjusted when ``season_length > 1``, it has ``3 * season_length`` values and the 90%
    autocorrelation test finds it seasonal (:func:`~tsforecast.baselines.seasonality.seasonality_test`).

    Parameters
    ----------
    y : array-like of shape (n,)
        The series, without missing values.
    h : int
        Forecast horizon.
    season_length : int, default 1
        Seasonal period ``m``; 1 for none.

    Returns
    -------
    np.ndarray of shape (h,)

    Examples
    --------
    >>> naive2([1.0, 2.0, 3.0], 2)
    array([3., 3.])
    """
    return _run("naive2", y, h, season_length)


def ses(y, h, season_length=1):
    """M4 ``SES``: simple exponential smoothing (least squares) of the seasonally adjusted series.

    Parameters
    ----------
    y : array-like of shape (n,)
        The series, without missing values.
    h : int
        Forecast horizon.
    season_length : int, default 1
        Seasonal period ``m``; 1 for none.

    Returns
    -------
    np.ndarray of shape (h,)

    Examples
    --------
    >>> ses([10.0, 12.0, 11.0, 13.0, 12.0, 12.5], 2).round(2)
    array([11.75, 11.75])
    """
    return _run("ses", y, h, season_length)


def holt(y, h, season_length=1):
    """M4 ``Holt``: Holt's linear trend method on the seasonally adjusted series.

    Parameters
    ----------
    y : array-like of shape (n,)
        The series, without missing values.
    h : int
        Forecast horizon.
    season_length : int, default 1
        Seasonal period ``m``; 1 for none.

    Returns
    -------
    np.ndarray of shape (h,)

    Examples
    --------
    >>> holt([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 2).round(2)
    array([7., 8.])
    """
    return _run("holt", y, h, season_length)


def damped(y, h, season_length=1):
    """M4 ``Damped``: Holt with a damped trend (``0.8 <= phi <= 0.98``) on the adjusted series.

    Parameters
    ----------
    y : array-like of shape (n,)
        The series, without missing values.
    h : int
        Forecast horizon.
    season_length : int, default 1
        Seasonal period ``m``; 1 for none.

    Returns
    -------
    np.ndarray of shape (h,)

    Examples
    --------
    >>> bool(np.all(np.diff(damped([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 3)) < 1.0))
    True
    """
    return _run("damped", y, h, season_length)


def theta(y, h, season_length=1):
    """M4 ``Theta`` (classic): the average of the theta=0 and theta=2 lines' forecasts.

    On the seasonally adjusted series the least-squares line (theta=0) is extrapolated, SES forecasts
    ``2 * y - line`` (theta=2); their equal-weight average is re-seasonalised, negatives set to 0.

    Parameters
    ----------
    y : array-like of shape (n,)
        The series, without missing values.
    h : int
        Forecast horizon.
    season_length : int, default 1
        Seasonal period ``m``; 1 for none.

    Returns
    -------
    np.ndarray of shape (h,)

    Examples
    --------
    >>> theta([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 2).round(2)
    array([6.5, 7. ])
    """
    return _run("theta", y, h, season_length)


def auto_ets(y, h, season_length=1):
    """ETS with the form chosen by AICc (statsmodels ``ETSModel``, maximum likelihood).

    Candidates: additive or multiplicative error; no, additive or damped trend; no, additive or
    multiplicative seasonality; without additive-error multiplicative-season forms (as
    ``forecast::ets``). Multiplicative forms need positive data, seasonal ones ``season_length > 1``
    and ``3 * season_length`` values. Forms that fail are skipped; if none fits, naive (a warning).

    Parameters
    ----------
    y : array-like of shape (n,)
        The series, without missing values.
    h : int
        Forecast horizon.
    season_length : int, default 1
        Seasonal period ``m``; 1 for none.

    Returns
    -------
    np.ndarray of shape (h,)

    Examples
    --------
    >>> y = 10.0 + np.tile([0.0, 2.0, 4.0, 2.0], 8)
    >>> bool(np.all(np.isfinite(auto_ets(y, 4, season_length=4))))
    True
    """
    return _run("auto_ets", y, h, season_length)


def auto_arima(y, h, season_length=1, X=None):
    """ARIMA with orders chosen by AICc from a small stepwise grid; with ``X``, regression with ARIMA errors.

    ``D = 1`` when the series is seasonal by the M4 90% test, ``d <= 2`` by KPSS tests at 5%; then
    ``(p, q) <= (2, 2)`` under a seasonal MA(1), and for the best ``(p, q)`` the seasonal forms
    ``(P, Q)`` in ``{(0, 0), (1, 0), (1, 1)}``; a mean (drift) when ``d + D <= 1``. Estimates are
    conditional sums of squares (R's ``arima(method="CSS")``, which ``auto.arima`` uses to search
    long or high-frequency series): statsmodels' exact likelihood costs seconds per fit at m = 24.

    Given regressors ``X`` (R's ``auto.arima(xreg=)``), the differences are chosen on the residuals
    of the regression of ``y`` on ``X``, the search runs on the residuals of the differenced
    regression, and the chosen orders are fitted jointly with the regression coefficients by
    statsmodels' ``SARIMAX`` (maximum likelihood); regressors constant or collinear over the history
    are dropped (:mod:`tsforecast.baselines.regression`).

    Parameters
    ----------
    y : array-like of shape (n,)
        The series, without missing values.
    h : int
        Forecast horizon.
    season_length : int, default 1
        Seasonal period ``m``; 1 for none.
    X : array-like of shape (n + h, k), optional
        Numeric regressors known over the horizon: their values at the ``n`` time stamps of ``y``,
        then at the ``h`` steps forecast.

    Returns
    -------
    np.ndarray of shape (h,)

    Examples
    --------
    >>> y = np.cumsum(np.random.default_rng(0).normal(size=60))
    >>> bool(np.all(np.isfinite(auto_arima(y, 5))))
    True
    >>> x = np.random.default_rng(1).normal(size=(65, 1))
    >>> forecast = auto_arima(y + 3.0 * x[:60, 0], 5, X=x)
    >>> bool(np.corrcoef(forecast - forecast.mean(), x[60:, 0])[0, 1] > 0.9)
    True
    """
    if X is None:
        return _run("auto_arima", y, h, season_length)
    fit, forecast = _METHODS["auto_arima"]
    y = np.asarray(y, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    X = X[:, None] if X.ndim == 1 else X
    if X.ndim != 2 or len(X) != len(y) + h:
        raise InvalidInputError(
            f"X must have one row per time stamp of y and per step forecast: {len(y)} + {h} = "
            f"{len(y) + h} rows; got shape {X.shape}."
        )
    return forecast(fit(y, season_length, X[: len(y)]), y, h, X)
