"""Quantile and interval metrics on 1-D arrays.

* quantile forecasts: the pinball loss (:func:`pinball_loss`) and the CRPS approximated from a set of
  quantiles (:func:`quantile_crps`, and :func:`scaled_crps` divided by the seasonal naive scale);
* central intervals: coverage (:func:`coverage`), M4's absolute coverage difference (:func:`acd`),
  the interval score (:func:`interval_score`) and M4's mean scaled interval score (:func:`msis`);
* :func:`quantiles_from_intervals` reads interval bounds (and the point forecast) as quantiles.

The recurrent forecasters fitted with ``quantiles`` name the forecast of quantile ``q`` ``"q<q>"``
(:func:`quantile_column`); a forecast asked for ``level=[80, 95]`` has the columns ``y_lo_80``,
``y_hi_80``, ``y_lo_95``, ``y_hi_95`` (:func:`interval_columns`, levels checked by
:func:`interval_levels`); :func:`~tsforecast.metrics.evaluate` finds those columns by these names
(:data:`QUANTILE_COLUMN`, :data:`INTERVAL_COLUMN`).

Positions where ``y_true`` is NaN are dropped first, as in the point metrics.
"""

import re
from collections.abc import Mapping

import numpy as np
from sklearn import metrics as skm

from tsforecast.exceptions import InvalidInputError, InvalidParameterError
from tsforecast.metrics.point import observed, seasonal_scale

__all__ = [
    "acd",
    "coverage",
    "interval_columns",
    "interval_levels",
    "interval_quantiles",
    "interval_score",
    "msis",
    "pinball_loss",
    "quantile_column",
    "quantile_crps",
    "quantiles_from_intervals",
    "scaled_crps",
]

QUANTILE_COLUMN = re.compile(r"q(\d*\.?\d+(?:e-\d+)?)")  # "q0.1": how forecasters name quantile q
INTERVAL_COLUMN = re.compile(r"y_(lo|hi)_(\d*\.?\d+)")  # "y_lo_95": the bounds of predict(level=95)


def pinball_loss(y_true, y_quantile, quantile):
    """Mean pinball (quantile) loss, via :func:`sklearn.metrics.mean_pinball_loss`.

    Parameters
    ----------
    y_true, y_quantile : array-like of shape (n,)
        Actuals (NaN positions are ignored) and the forecast ``quantile``.
    quantile : float
        The quantile level, strictly between 0 and 1.

    Examples
    --------
    >>> round(pinball_loss([10.0, 10.0], [8.0, 13.0], quantile=0.9), 6)  # (0.9 * 2 + 0.1 * 3) / 2
    1.05
    """
    if not 0 < quantile < 1:
        raise InvalidInputError(f"quantile must lie strictly between 0 and 1, got {quantile!r}.")
    return float(skm.mean_pinball_loss(*observed(y_true, y_quantile=y_quantile), alpha=quantile))


def coverage(y_true, lower, upper):
    """Fraction of observed actuals inside the closed interval ``[lower, upper]``.

    Parameters
    ----------
    y_true, lower, upper : array-like of shape (n,)
        Actuals (NaN positions are ignored) and the interval bounds.

    Examples
    --------
    >>> coverage([1.0, 5.0, 3.0, np.nan], lower=[0.0, 0.0, 3.0, 0.0], upper=[2.0, 4.0, 4.0, 1.0])
    0.6666666666666666
    """
    y_true, lower, upper = _bounds(y_true, lower, upper)
    return float(np.mean((y_true >= lower) & (y_true <= upper)))


def acd(y_true, lower, upper, level=95):
    """Absolute coverage difference of M4: ``|coverage - level / 100|``.

    The M4 competition (Makridakis, Spiliotis and Assimakopoulos 2020, section 3.3) computed the
    coverage of the 95% intervals pooled over all series and horizon steps, and its ACD from that one
    coverage: the ACD of a panel is ``acd`` of all its points at once, not the mean of per-series
    ACDs (a series covered too often and one too rarely do not cancel in that mean).
    :func:`~tsforecast.metrics.pooled_coverage` scores a panel that way.

    Parameters
    ----------
    y_true, lower, upper : array-like of shape (n,)
        Actuals (NaN positions are ignored) and the interval bounds.
    level : float, default=95
        The nominal level of the interval, in percent.

    Examples
    --------
    >>> acd([1.0, 5.0, 3.0, 2.0], lower=[0.0, 0.0, 2.0, 1.0], upper=[2.0, 4.0, 4.0, 3.0], level=80)
    0.050000000000000044
    """
    return abs(coverage(y_true, lower, upper) - _one_level(level) / 100)


def interval_score(y_true, lower, upper, level=95):
    """Mean interval score of a central ``level`` % interval (Gneiting and Raftery 2007, eq. 43).

    The mean of ``(U - L) + (2 / a) (L - y) 1{y < L} + (2 / a) (y - U) 1{y > U}`` with
    ``a = 1 - level / 100``: the width, plus a penalty for each miss proportional to its distance.
    It is a proper score for the ``a / 2`` and ``1 - a / 2`` quantiles, in the units of ``y``.

    Parameters
    ----------
    y_true, lower, upper : array-like of shape (n,)
        Actuals (NaN positions are ignored) and the interval bounds.
    level : float, default=95
        The nominal level of the interval, in percent.

    Examples
    --------
    >>> interval_score([5.0, 12.0], lower=[4.0, 8.0], upper=[6.0, 10.0], level=95)  # (2 + (2 + 40 * 2)) / 2
    42.0
    """
    alpha = _alpha(level)
    y_true, lower, upper = _bounds(y_true, lower, upper)
    below, above = np.maximum(lower - y_true, 0.0), np.maximum(y_true - upper, 0.0)
    return float(np.mean((upper - lower) + (2 / alpha) * (below + above)))


def msis(y_true, lower, upper, y_train, season_length=1, level=95):
    """Mean scaled interval score of the M4 competition.

    :func:`interval_score` divided by the in-sample mean absolute error of the seasonal naive method
    on ``y_train``, the scale of :func:`~tsforecast.metrics.mase` (Makridakis, Spiliotis and
    Assimakopoulos 2020, "The M4 Competition: 100,000 time series and 61 forecasting methods",
    section 3.3, with ``level=95``):
    ``mean_t [(U - L) + (2 / a) (L - y) 1{y < L} + (2 / a) (y - U) 1{y > U}] / mean_t |y_t - y_{t-m}|``.
    A panel's MSIS is the mean over series, like MASE.

    Parameters
    ----------
    y_true, lower, upper : array-like of shape (n,)
        Actuals (NaN positions are ignored) and the interval bounds.
    y_train : array-like of shape (m,)
        The series' history before the forecast origin, in time order; NaNs are skipped.
    season_length : int, default=1
        Lag of the seasonal naive scale (M4 used 24 for hourly, 12 for monthly series).
    level : float, default=95
        The nominal level of the interval, in percent (M4: 95).

    Raises
    ------
    InvalidInputError
        If the scale is 0 (a constant history) or undefined (too short or all NaN), as for MASE.

    Examples
    --------
    >>> msis([5.0, 12.0], lower=[4.0, 8.0], upper=[6.0, 10.0], y_train=[1.0, 3.0, 5.0])  # 42 / 2
    21.0
    """
    return interval_score(y_true, lower, upper, level) / seasonal_scale(y_train, season_length)


def quantile_crps(y_true, quantile_forecasts):
    """The continuous ranked probability score approximated from quantile forecasts.

    The CRPS is twice the integral over ``tau`` in (0, 1) of the pinball loss of the forecast's
    ``tau`` quantile (the quantile decomposition of Laio and Tamea 2007, and Gneiting and Raftery 2007,
    section 4.2); this is twice the mean pinball loss over the given levels, the quadrature of that
    integral with one node per level. It approaches the CRPS when the levels are many and evenly
    spread over (0, 1) (``k / (K + 1)`` for ``k = 1..K``); with a few levels it is a quantile score,
    comparable only between forecasts scored on the same levels. With the single level 0.5 it is the
    mean absolute error.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Actuals; NaN positions are ignored.
    quantile_forecasts : mapping of float -> array-like of shape (n,)
        Quantile level (strictly between 0 and 1) -> the forecasts of that quantile; see
        :func:`quantiles_from_intervals` to build it from interval bounds.

    Examples
    --------
    >>> round(quantile_crps([10.0, 10.0], {0.1: [8.0, 8.0], 0.9: [12.0, 14.0]}), 6)  # 2 * mean(0.2, 0.3)
    0.5
    """
    levels = _quantile_levels(quantile_forecasts)
    named = {quantile_column(q): quantile_forecasts[q] for q in levels}
    y_true, *forecasts = observed(y_true, **named)
    return float(2 * np.mean([pinball_loss(y_true, f, q) for q, f in zip(levels, forecasts, strict=True)]))


def scaled_crps(y_true, quantile_forecasts, y_train, season_length=1):
    """:func:`quantile_crps` divided by the in-sample seasonal naive MAE of ``y_train``.

    The scale is that of :func:`~tsforecast.metrics.mase` and :func:`msis`, so the score is unit-free
    and a panel's scaled CRPS is the mean over series. A forecast that puts all its quantiles on the
    point forecast scores its MASE.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Actuals; NaN positions are ignored.
    quantile_forecasts : mapping of float -> array-like of shape (n,)
        Quantile level -> forecasts, as for :func:`quantile_crps`.
    y_train : array-like of shape (m,)
        The series' history before the forecast origin, in time order; NaNs are skipped.
    season_length : int, default=1
        Lag of the seasonal naive scale.

    Raises
    ------
    InvalidInputError
        If the scale is 0 (a constant history) or undefined (too short or all NaN), as for MASE.

    Examples
    --------
    >>> forecasts = quantiles_from_intervals({80: ([8.0, 8.0], [12.0, 12.0])}, point=[10.0, 10.0])
    >>> sorted(forecasts)
    [0.1, 0.5, 0.9]
    >>> round(scaled_crps([10.0, 13.0], forecasts, y_train=[8.0, 10.0, 12.0]), 6)  # 1.1 / 2
    0.55
    """
    return quantile_crps(y_true, quantile_forecasts) / seasonal_scale(y_train, season_length)


def quantiles_from_intervals(intervals, point=None) -> dict:
    """Interval bounds (and the point forecast) read as quantile forecasts.

    The central ``L`` % interval ``[lower, upper]`` gives the quantiles ``(1 - L / 100) / 2`` and
    ``1 - (1 - L / 100) / 2`` (:func:`interval_quantiles`). The point forecast, when given, stands
    for the median: an assumption, exact for the forecasters whose point forecast is the median
    (the recurrent forecasters, trained on the absolute error) and for symmetric predictive
    distributions, approximate for a mean forecast of a skewed one.

    Parameters
    ----------
    intervals : mapping of float -> (array-like, array-like)
        Level (percent) -> the lower and upper bounds.
    point : array-like, optional
        The point forecast, used as the 0.5 quantile.

    Returns
    -------
    dict of float -> ndarray
        Quantile level -> forecasts, levels in increasing order.

    Examples
    --------
    >>> quantiles_from_intervals({80: ([8.0], [12.0]), 95: ([6.0], [14.0])}, point=[10.0])
    {0.025: array([6.]), 0.1: array([8.]), 0.5: array([10.]), 0.9: array([12.]), 0.975: array([14.])}
    """
    if not isinstance(intervals, Mapping):
        raise InvalidInputError(
            f"intervals must be a mapping of level -> (lower, upper), like {{95: (lo, hi)}}; got "
            f"{type(intervals).__name__}."
        )
    quantiles = {} if point is None else {0.5: np.asarray(point, dtype=float)}
    for level, bounds in intervals.items():
        try:
            lower, upper = bounds
        except (TypeError, ValueError):
            raise InvalidInputError(
                f"intervals[{level!r}] must be a (lower, upper) pair; got {bounds!r:.80}."
            ) from None
        q_lo, q_hi = interval_quantiles(_one_level(level))
        quantiles[q_lo], quantiles[q_hi] = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
    return dict(sorted(quantiles.items()))


def quantile_column(level) -> str:
    """The forecast column of quantile ``level``, as the recurrent forecasters name it.

    Examples
    --------
    >>> quantile_column(0.1), quantile_column(0.975)
    ('q0.1', 'q0.975')
    """
    return f"q{float(level):g}"


def interval_levels(level) -> tuple:
    """``level`` (a number or a list of numbers, in percent) checked, as sorted distinct floats.

    None gives ``()``: no interval. Every level must lie strictly between 0 and 100 (a 0% interval is
    the point, a 100% one unbounded).

    Examples
    --------
    >>> interval_levels([95, 80]), interval_levels(90), interval_levels(None)
    ((80.0, 95.0), (90.0,), ())
    """
    if level is None:
        return ()
    values = [level] if np.ndim(level) == 0 and not isinstance(level, str) else level
    try:
        values = list(values)
    except TypeError:
        values = [level]
    bad = [v for v in values if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.number))]
    if not values or bad or not all(0 < float(v) < 100 for v in values):
        raise InvalidParameterError(
            f"level must be a number or a list of numbers strictly between 0 and 100 (percent, like "
            f"level=[80, 95]); got {level!r}."
        )
    return tuple(sorted({float(v) for v in values}))


def interval_columns(level) -> tuple:
    """The lower and upper forecast columns of the central ``level`` % interval.

    Examples
    --------
    >>> interval_columns(95), interval_columns(99.5)
    (('y_lo_95', 'y_hi_95'), ('y_lo_99.5', 'y_hi_99.5'))
    """
    name = f"{float(level):g}"
    return f"y_lo_{name}", f"y_hi_{name}"


def interval_quantiles(level) -> tuple:
    """The quantile levels that bound the central ``level`` % interval.

    Examples
    --------
    >>> interval_quantiles(95), interval_quantiles(80)
    ((0.025, 0.975), (0.1, 0.9))
    """
    alpha = round(1.0 - float(level) / 100.0, 12)
    return round(alpha / 2, 12), round(1.0 - alpha / 2, 12)


def _bounds(y_true, lower, upper):
    """The observed actuals and bounds, refusing a lower bound above the upper one."""
    y_true, lower, upper = observed(y_true, lower=lower, upper=upper)
    if crossed := int((lower > upper).sum()):
        raise InvalidInputError(f"lower exceeds upper at {crossed} position(s); swap the bounds.")
    return y_true, lower, upper


def _one_level(level) -> float:
    """One interval level in percent, checked."""
    if np.ndim(level) != 0:
        raise InvalidParameterError(f"level must be one number strictly between 0 and 100; got {level!r}.")
    return interval_levels(level)[0]


def _alpha(level) -> float:
    """``1 - level / 100``, rounded like :func:`interval_quantiles` (95 gives exactly 0.05)."""
    return round(1.0 - _one_level(level) / 100.0, 12)


def _quantile_levels(quantile_forecasts) -> list:
    if not isinstance(quantile_forecasts, Mapping) or not quantile_forecasts:
        raise InvalidInputError(
            "quantile_forecasts must be a non-empty mapping of quantile level -> forecasts, like "
            f"{{0.1: lo, 0.5: median, 0.9: hi}}; got {quantile_forecasts!r:.80}."
        )
    bad = [q for q in quantile_forecasts if isinstance(q, bool) or not isinstance(q, (int, float, np.number))]
    if bad or not all(0 < q < 1 for q in quantile_forecasts):
        raise InvalidInputError(
            f"quantile levels must be numbers strictly between 0 and 1; got {list(quantile_forecasts)}."
        )
    return sorted(quantile_forecasts)
