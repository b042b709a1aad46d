"""Quantile and interval metrics: the pinball loss of a quantile forecast, the coverage of an interval.

The recurrent forecasters fitted with ``quantiles`` name the forecast of quantile ``q`` ``"q<q>"``
(:func:`quantile_column`); a forecast asked for ``level=[80, 95]`` has the columns ``y_lo_80``,
``y_hi_80``, ``y_lo_95``, ``y_hi_95`` (:func:`interval_columns`, levels checked by
:func:`interval_levels`); :func:`~tsforecast.metrics.evaluate` finds those columns by these names.
"""

import re

import numpy as np
from sklearn import metrics as skm

from tsforecast.exceptions import InvalidInputError, InvalidParameterError
from tsforecast.metrics.point import observed

__all__ = [
    "coverage",
    "interval_columns",
    "interval_levels",
    "interval_quantiles",
    "pinball_loss",
    "quantile_column",
]

QUANTILE_COLUMN = re.compile(r"q(\d*\.?\d+(?:e-\d+)?)")  # "q0.1": how forecasters name quantile q


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
    y_true, lower, upper = observed(y_true, lower=lower, upper=upper)
    if crossed := int((lower > upper).sum()):
        raise InvalidInputError(f"lower exceeds upper at {crossed} position(s); swap the bounds.")
    return float(np.mean((y_true >= lower) & (y_true <= upper)))


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
