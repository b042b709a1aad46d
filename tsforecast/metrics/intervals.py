"""Quantile and interval metrics: the pinball loss of a quantile forecast, the coverage of an interval.

The recurrent forecasters fitted with ``quantiles`` name the forecast of quantile ``q`` ``"q<q>"``
(:func:`quantile_column`); :func:`~tsforecast.metrics.evaluate` finds those columns by that name.
"""

import re

import numpy as np
from sklearn import metrics as skm

from tsforecast.exceptions import InvalidInputError
from tsforecast.metrics.point import observed

__all__ = ["coverage", "pinball_loss", "quantile_column"]

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
