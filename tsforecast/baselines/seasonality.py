"""Seasonal adjustment and differencing of one series, for the baselines.

The M4 organisers' benchmark code (``Benchmarks and Evaluation.R`` in ``Mcompetitions/M4-methods``)
adjusts a series for seasonality only when a 90% autocorrelation test at lag ``m`` says it is
seasonal, then divides it by the indices of a classical multiplicative decomposition (R's
``decompose``, statsmodels' :func:`~statsmodels.tsa.seasonal.seasonal_decompose`). ARIMA models
difference instead, as many times as a KPSS test asks (``forecast::ndiffs``). The functions here
take one 1-D float array and know nothing of panels or estimators.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
from statsmodels.tsa.seasonal import seasonal_decompose
from statsmodels.tsa.stattools import acf, kpss

__all__ = [
    "deseasonalize",
    "difference",
    "differencing_polynomial",
    "n_differences",
    "reseasonalize",
    "seasonal_indices",
    "seasonality_test",
]

logger = logging.getLogger(__name__)

#: One-sided 90% normal quantile (the M4 benchmarks' ``tcrit``).
_CRITICAL_VALUE = 1.645


def seasonality_test(y: np.ndarray, season_length: int) -> bool:
    """Whether ``y`` is seasonal at lag ``season_length``, by the M4 benchmarks' 90% ACF test.

    The autocorrelation at lag ``m`` is compared with the limit
    ``1.645 * sqrt((1 + 2 * sum(acf[1:m-1] ** 2)) / n)`` (Bartlett's variance under an MA(m-1)).
    Series shorter than ``3 * m`` and ``m <= 1`` are never seasonal, as in the M4 code. (R's default
    ``lag.max = 10 log10(n)`` also silently skips the test when ``n < 10^(m / 10)``; that accident
    is not reproduced: it never applies to the M4 data.)

    Parameters
    ----------
    y : np.ndarray of shape (n,)
        The series.
    season_length : int
        The seasonal period ``m``.

    Returns
    -------
    bool

    Examples
    --------
    >>> import numpy as np
    >>> t = np.arange(240)
    >>> seasonality_test(10 + np.sin(2 * np.pi * t / 24), 24)
    True
    >>> seasonality_test(np.random.default_rng(1).normal(10, 1, 240), 24)
    False
    """
    y = np.asarray(y, dtype=np.float64)
    if season_length <= 1 or len(y) < 3 * season_length or np.ptp(y) == 0:
        return False
    rho = acf(y, nlags=season_length, fft=False)
    limit = _CRITICAL_VALUE * np.sqrt((1 + 2 * np.sum(rho[1:season_length] ** 2)) / len(y))
    return bool(abs(rho[season_length]) > limit)


def seasonal_indices(y: np.ndarray, season_length: int, test: bool = True) -> np.ndarray:
    """Multiplicative seasonal index of each phase of the cycle, as in the M4 benchmarks.

    Parameters
    ----------
    y : np.ndarray of shape (n,)
        The series.
    season_length : int
        The seasonal period ``m``.
    test : bool, default True
        Apply :func:`seasonality_test` first and return all ones when it finds no seasonality.

    Returns
    -------
    np.ndarray of shape (m,)
        ``indices[k]`` is the index of the time steps ``t`` (counted from 0 at the first
        observation) with ``t % m == k``; all ones for a non-seasonal series, and for one with
        values <= 0, where a multiplicative decomposition is undefined (logged at INFO level).

    Examples
    --------
    >>> import numpy as np
    >>> y = np.tile([1.0, 2.0, 3.0, 2.0], 6)
    >>> np.round(seasonal_indices(y, 4, test=False), 3)
    array([0.5, 1. , 1.5, 1. ])
    """
    y = np.asarray(y, dtype=np.float64)
    ones = np.ones(max(int(season_length), 1))
    if season_length <= 1 or len(y) < 2 * season_length:
        return ones
    if test and not seasonality_test(y, season_length):
        return ones
    if np.any(y <= 0):
        # The M4 data are positive; R's decompose would divide by a trend crossing zero.
        logger.info("seasonal adjustment skipped: multiplicative decomposition needs values > 0")
        return ones
    seasonal = seasonal_decompose(y, model="multiplicative", period=season_length).seasonal
    return np.asarray(seasonal[:season_length], dtype=np.float64)


def reseasonalize(indices: np.ndarray, start: int, horizon: int) -> np.ndarray:
    """Seasonal indices of ``horizon`` steps starting at time ``start`` (0-based).

    Parameters
    ----------
    indices : np.ndarray of shape (m,)
        Output of :func:`seasonal_indices`.
    start : int
        Time step of the first value (the series length, for forecasts).
    horizon : int
        Number of steps.

    Returns
    -------
    np.ndarray of shape (horizon,)

    Examples
    --------
    >>> reseasonalize(np.array([0.5, 1.0, 1.5, 1.0]), start=6, horizon=3)
    array([1.5, 1. , 0.5])
    """
    return indices[(start + np.arange(horizon)) % len(indices)]


def deseasonalize(y: np.ndarray, season_length: int) -> tuple[np.ndarray, np.ndarray]:
    """The M4 benchmarks' seasonal adjustment: ``y`` divided by its :func:`seasonal_indices`.

    Returns
    -------
    adjusted : np.ndarray of shape (n,)
    indices : np.ndarray of shape (season_length,)

    Examples
    --------
    >>> y = np.tile([1.0, 2.0, 3.0, 2.0], 6)
    >>> adjusted, indices = deseasonalize(y, 4)
    >>> adjusted[:4]
    array([2., 2., 2., 2.])
    """
    indices = seasonal_indices(y, season_length)
    return y / reseasonalize(indices, 0, len(y)), indices


def differencing_polynomial(d: int, D: int, season_length: int) -> np.ndarray:
    """Coefficients of ``(1 - B)^d (1 - B^m)^D`` in powers of the backshift ``B``.

    Examples
    --------
    >>> differencing_polynomial(1, 1, 3)
    array([ 1., -1.,  0., -1.,  1.])
    """
    polynomial = np.ones(1)
    seasonal = np.zeros(season_length + 1)
    seasonal[[0, -1]] = 1.0, -1.0
    for factor in [np.array([1.0, -1.0])] * d + [seasonal] * D:
        polynomial = np.convolve(polynomial, factor)
    return polynomial


def difference(y: np.ndarray, d: int, D: int, season_length: int) -> np.ndarray:
    """``(1 - B)^d (1 - B^m)^D y``: the series after ``d`` first and ``D`` seasonal differences.

    Examples
    --------
    >>> difference(np.array([1.0, 2.0, 4.0, 7.0, 11.0]), 1, 1, 2)
    array([2., 2.])
    """
    delta = differencing_polynomial(d, D, season_length)
    return np.convolve(y, delta)[len(delta) - 1 : len(y)]


def n_differences(y: np.ndarray, max_d: int = 2) -> int:
    """First differences that make ``y`` level-stationary by KPSS at 5% (as ``forecast::ndiffs``).

    Examples
    --------
    >>> n_differences(np.cumsum(np.random.default_rng(0).normal(size=200)))
    1
    """
    d = 0
    while d < max_d and len(y) >= 10 and np.ptp(y) > 0:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # p-value outside kpss' table; only the statistic is used
            statistic, _, _, critical = kpss(y, regression="c", nlags=int(3 * np.sqrt(len(y)) / 13))
        if statistic <= critical["5%"]:
            break
        y, d = np.diff(y), d + 1
    return d
