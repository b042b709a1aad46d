"""Point forecast metrics on 1-D arrays: MAE, RMSE, MAPE, sMAPE, MASE, and M4's OWA.

Each takes array-likes of equal length and returns a float. Positions where ``y_true`` is NaN are
dropped first: a missing actual says nothing about the forecast.
"""

import numpy as np
from sklearn import metrics as skm

from tsforecast.exceptions import InvalidInputError

__all__ = ["mae", "mape", "mase", "owa", "rmse", "smape"]


def _as_1d(name, values):
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as err:
        raise InvalidInputError(f"{name} must be numeric, got {type(values).__name__}: {err}") from err
    if array.ndim != 1:
        raise InvalidInputError(f"{name} must be 1-D, got an array of shape {array.shape}.")
    return array


def observed(y_true, **others):
    """Check equal-length inputs and keep the positions where ``y_true`` is observed.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Actuals; NaN marks a missing one.
    **others : array-like of shape (n,)
        Forecasts or interval bounds, under the names error messages give them.

    Returns
    -------
    tuple of ndarray
        ``y_true``, then each of ``others`` in order, as 1-D floats at the observed positions.

    Raises
    ------
    InvalidInputError
        For non-numeric, not 1-D or unequal-length inputs, an empty or all-NaN ``y_true``, or a NaN
        or infinite value of ``others`` where ``y_true`` is observed.
    """
    arrays = {"y_true": _as_1d("y_true", y_true)} | {k: _as_1d(k, v) for k, v in others.items()}
    sizes = {name: array.size for name, array in arrays.items()}
    if len(set(sizes.values())) > 1:
        raise InvalidInputError(f"Inputs must have the same length, got lengths {sizes}.")
    if sizes["y_true"] == 0:
        raise InvalidInputError("y_true is empty; pass at least one observation to score.")
    keep = ~np.isnan(arrays["y_true"])
    if not keep.any():
        raise InvalidInputError(f"y_true has only NaN values ({sizes['y_true']}); nothing to score.")
    for name, array in arrays.items():
        if bad := int((~np.isfinite(array[keep])).sum()):
            raise InvalidInputError(f"{name} has {bad} NaN or infinite value(s) where y_true is observed.")
    return tuple(array[keep] for array in arrays.values())


def mae(y_true, y_pred):
    """Mean absolute error, via :func:`sklearn.metrics.mean_absolute_error`.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n,)
        Actuals (NaN positions are ignored) and forecasts.

    Examples
    --------
    >>> mae([1.0, 2.0, np.nan], [2.0, 4.0, 0.0])
    1.5
    """
    return float(skm.mean_absolute_error(*observed(y_true, y_pred=y_pred)))


def rmse(y_true, y_pred):
    """Root mean squared error, via :func:`sklearn.metrics.root_mean_squared_error`.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n,)
        Actuals (NaN positions are ignored) and forecasts.

    Examples
    --------
    >>> rmse([0.0, 0.0, 0.0], [6.0, 0.0, 0.0])  # sqrt(36 / 3)
    3.4641016151377544
    """
    return float(skm.root_mean_squared_error(*observed(y_true, y_pred=y_pred)))


def mape(y_true, y_pred):
    """Mean absolute percentage error in percent, via sklearn's ``mean_absolute_percentage_error``.

    An actual of 0 raises :class:`InvalidInputError`, where sklearn would divide by machine
    epsilon and return a huge number.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n,)
        Actuals (NaN positions are ignored) and forecasts.

    Examples
    --------
    >>> mape([100.0, 200.0], [110.0, 180.0])
    10.0
    """
    y_true, y_pred = observed(y_true, y_pred=y_pred)
    if zeros := int((y_true == 0).sum()):
        raise InvalidInputError(f"mape is undefined where y_true is 0 ({zeros} point(s)); use smape or mase.")
    return float(100 * skm.mean_absolute_percentage_error(y_true, y_pred))


def smape(y_true, y_pred):
    """Symmetric MAPE as defined by the M4 competition, in percent (0 to 200).

    The mean of ``200 * |y - f| / (|y| + |f|)``; a point where both are 0 counts as 0.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n,)
        Actuals (NaN positions are ignored) and forecasts.

    Examples
    --------
    >>> round(smape([100.0, 0.0], [110.0, 0.0]), 4)  # (200 * 10 / 210 + 0) / 2
    4.7619
    """
    y_true, y_pred = observed(y_true, y_pred=y_pred)
    total = np.abs(y_true) + np.abs(y_pred)
    # M4 scores an exact forecast of a zero actual (0/0) as no error rather than NaN.
    ratio = np.divide(np.abs(y_true - y_pred), total, out=np.zeros_like(total), where=total > 0)
    return float(200 * ratio.mean())


def seasonal_scale(y_train, season_length):
    """Mean absolute seasonal difference of ``y_train`` at lag ``season_length``: the MASE scale.

    Parameters
    ----------
    y_train : array-like of shape (m,)
        The history, in time order; pairs with a NaN are skipped.
    season_length : int
        The lag, at least 1.

    Returns
    -------
    float
        Positive and finite.

    Raises
    ------
    InvalidInputError
        When no two observed values lie ``season_length`` apart, or the history never changes at
        that lag (a scale of 0).
    """
    is_int = isinstance(season_length, int | np.integer) and not isinstance(season_length, bool)
    if not is_int or season_length < 1:
        raise InvalidInputError(f"season_length must be an int >= 1, got {season_length!r}.")
    train = _as_1d("y_train", y_train)
    diffs = np.abs(train[season_length:] - train[:-season_length])
    diffs = diffs[~np.isnan(diffs)]
    if diffs.size == 0:
        raise InvalidInputError(
            f"MASE scale is undefined: y_train ({train.size} values, {int((~np.isnan(train)).sum())} "
            f"observed) has no two observed values season_length={season_length} steps apart."
        )
    scale = float(diffs.mean())
    if not 0 < scale < np.inf:
        raise InvalidInputError(
            f"MASE scale is {scale}: y_train's mean absolute change at lag season_length={season_length} "
            "must be positive and finite (a constant history has none); score it with mae or smape."
        )
    return scale


def mase(y_true, y_pred, y_train, season_length=1):
    """Mean absolute scaled error (Hyndman & Koehler, 2006), as used in M4.

    The MAE of the forecast divided by the in-sample MAE of the seasonal naive method: the mean
    of ``|y_train[t] - y_train[t - season_length]|`` over the pairs where both are observed.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n,)
        Actuals (NaN positions are ignored) and forecasts.
    y_train : array-like of shape (m,)
        The series' history before the forecast origin, in time order; NaNs are skipped.
    season_length : int, default=1
        Lag of the naive benchmark (1: naive, 12: monthly seasonal naive, ...).

    Raises
    ------
    InvalidInputError
        If the scale is 0 (a constant history) or undefined (too short or all NaN).

    Examples
    --------
    >>> mase([12.0, 14.0], [13.0, 13.0], y_train=[8.0, 9.0, 11.0])  # 1.0 / mean(1, 2)
    0.6666666666666666
    """
    return mae(y_true, y_pred) / seasonal_scale(y_train, season_length)


def owa(smape, mase, naive2_smape, naive2_mase):
    """Overall weighted average of M4: ``0.5 * (smape / naive2_smape + mase / naive2_mase)``.

    Parameters
    ----------
    smape, mase : float
        The method's sMAPE and MASE (for a panel: the means over series).
    naive2_smape, naive2_mase : float
        The same metrics of the Naive2 benchmark on the same data; must be positive.

    Examples
    --------
    >>> owa(smape=10.0, mase=1.5, naive2_smape=12.5, naive2_mase=1.0)
    1.15
    """
    for name, value in (("naive2_smape", naive2_smape), ("naive2_mase", naive2_mase)):
        if not 0 < value < np.inf:
            raise InvalidInputError(f"{name} must be a positive finite number, got {value!r}.")
    return float(0.5 * (smape / naive2_smape + mase / naive2_mase))
