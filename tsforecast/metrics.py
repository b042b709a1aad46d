"""Forecast accuracy metrics, on arrays and on long-format panels.

Point metrics take 1-D array-likes and return a float. Positions where ``y_true`` is NaN are
dropped first: a missing actual says nothing about the forecast. :func:`evaluate` and
:func:`evaluate_by_horizon` join long forecast and actual frames on (series id, timestamp) and
score each series or each horizon step with the same point metrics, and with the pinball loss and
interval coverage of quantile forecast columns (``q0.1``, ``q0.9``..., as the recurrent
forecasters fitted with ``quantiles`` name them).
"""

import re

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from tsforecast.exceptions import InvalidInputError

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


def _as_1d(name, values):
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as err:
        raise InvalidInputError(f"{name} must be numeric, got {type(values).__name__}: {err}") from err
    if array.ndim != 1:
        raise InvalidInputError(f"{name} must be 1-D, got an array of shape {array.shape}.")
    return array


def _observed(y_true, **others):
    """Check equal-length inputs and keep the positions where ``y_true`` is observed."""
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
    return float(skm.mean_absolute_error(*_observed(y_true, y_pred=y_pred)))


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
    return float(skm.root_mean_squared_error(*_observed(y_true, y_pred=y_pred)))


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
    y_true, y_pred = _observed(y_true, y_pred=y_pred)
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
    y_true, y_pred = _observed(y_true, y_pred=y_pred)
    total = np.abs(y_true) + np.abs(y_pred)
    # M4 scores an exact forecast of a zero actual (0/0) as no error rather than NaN.
    ratio = np.divide(np.abs(y_true - y_pred), total, out=np.zeros_like(total), where=total > 0)
    return float(200 * ratio.mean())


def _seasonal_scale(y_train, season_length):
    """Mean absolute seasonal difference of ``y_train`` at lag ``season_length`` (NaNs skipped)."""
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
    return mae(y_true, y_pred) / _seasonal_scale(y_train, season_length)


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
    return float(skm.mean_pinball_loss(*_observed(y_true, y_quantile=y_quantile), alpha=quantile))


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
    y_true, lower, upper = _observed(y_true, lower=lower, upper=upper)
    if crossed := int((lower > upper).sum()):
        raise InvalidInputError(f"lower exceeds upper at {crossed} position(s); swap the bounds.")
    return float(np.mean((y_true >= lower) & (y_true <= upper)))


_POINT_METRICS = {"mae": mae, "rmse": rmse, "mape": mape, "smape": smape}
_QUANTILE_METRICS = ("pinball", "coverage")
_PANEL_METRICS = (*_POINT_METRICS, "mase", *_QUANTILE_METRICS)
_QUANTILE_COLUMN = re.compile(r"q(\d*\.?\d+(?:e-\d+)?)")  # "q0.1": how forecasters name quantile q


def quantile_column(level) -> str:
    """The forecast column of quantile ``level``, as the recurrent forecasters name it.

    Examples
    --------
    >>> quantile_column(0.1), quantile_column(0.975)
    ('q0.1', 'q0.975')
    """
    return f"q{float(level):g}"


def _quantile_columns(forecasts, quantiles) -> dict:
    """Level -> forecast column to score: those of ``quantiles``, or every ``q<level>`` column."""
    if quantiles is None:
        found = [c for c in forecasts.columns if isinstance(c, str) and _QUANTILE_COLUMN.fullmatch(c)]
        columns = {float(c[1:]): c for c in found if 0 < float(c[1:]) < 1}
        if not columns:
            raise InvalidInputError(
                f"metrics {list(_QUANTILE_METRICS)} need quantile forecast columns named like 'q0.1' "
                f"(the recurrent forecasters add them when fitted with quantiles=...); forecasts has "
                f"{list(forecasts.columns)}."
            )
        return dict(sorted(columns.items()))
    levels = sorted({float(q) for q in np.atleast_1d(quantiles)})
    if bad := [q for q in levels if not 0 < q < 1]:
        raise InvalidInputError(f"quantiles must lie strictly between 0 and 1, got {bad}.")
    if missing := [quantile_column(q) for q in levels if quantile_column(q) not in forecasts.columns]:
        raise InvalidInputError(f"forecasts lacks the quantile column(s) {missing} asked for by quantiles.")
    return {q: quantile_column(q) for q in levels}


def _metric_columns(metrics, quantile_columns: dict) -> dict:
    """Output column -> (metric, its forecast column(s) and level), in the order of ``metrics``."""
    columns = {}
    for name in metrics:
        if name == "pinball":
            for q, col in quantile_columns.items():
                columns[f"pinball_{col}"] = ("pinball", (col, q))
        elif name == "coverage":
            intervals = [
                (quantile_columns[lo], quantile_columns[hi])
                for lo in quantile_columns
                for hi in quantile_columns
                if lo < 0.5 and np.isclose(lo + hi, 1)
            ]
            if not intervals:
                raise InvalidInputError(
                    "metric 'coverage' needs the two bounds of a central interval, like quantiles 0.1 and "
                    f"0.9; got levels {list(quantile_columns)}."
                )
            columns.update({f"coverage_{lo}_{hi}": ("coverage", (lo, hi)) for lo, hi in intervals})
        else:
            columns[name] = (name, None)
    return columns


def _check_frame(frame, name, columns):
    if not isinstance(frame, pd.DataFrame):
        raise InvalidInputError(f"{name} must be a pandas DataFrame, got {type(frame).__name__}.")
    if missing := [column for column in columns if column not in frame.columns]:
        raise InvalidInputError(
            f"{name} lacks column(s) {missing}; it has {list(frame.columns)}. "
            "Name yours with id_col, time_col, target_col or pred_col."
        )
    if frame.empty:
        raise InvalidInputError(f"{name} is empty; pass at least one row.")
    if (duplicated := frame.duplicated(columns[:2])).any():
        raise InvalidInputError(
            f"{name} has {int(duplicated.sum())} duplicate {tuple(columns[:2])} row(s), first in series "
            f"{frame.loc[duplicated, columns[0]].tolist()[0]!r}; keep one row per series and timestamp."
        )


def _in_context(label, func, *args):
    """Call ``func``, prefixing any InvalidInputError with the series or step that failed."""
    try:
        return func(*args)
    except InvalidInputError as err:
        raise InvalidInputError(f"{label}: {err}") from err


def _joined(
    forecasts, actuals, train, season_length, metrics, quantiles, id_col, time_col, target_col, pred_col
):
    """One row per forecast point with an actual: id, horizon, y_true, y_pred, quantile columns (and
    MASE scale); and the output columns to score."""
    if isinstance(metrics, str) or not metrics or not set(metrics) <= set(_PANEL_METRICS):
        raise InvalidInputError(f"metrics must be a non-empty sequence of {_PANEL_METRICS}, got {metrics!r}.")
    _check_frame(forecasts, "forecasts", [id_col, time_col, pred_col])
    _check_frame(actuals, "actuals", [id_col, time_col, target_col])
    by_level = _quantile_columns(forecasts, quantiles) if set(metrics) & set(_QUANTILE_METRICS) else {}
    quantile_cols = list(by_level.values())
    absent = actuals.loc[~actuals[id_col].isin(forecasts[id_col]), id_col].unique()
    if len(absent):
        raise InvalidInputError(
            f"forecasts has no rows for {len(absent)} series of actuals: {absent[:5].tolist()}."
        )
    points = forecasts[[id_col, time_col, pred_col, *quantile_cols]]
    points = points.set_axis([id_col, time_col, "y_pred", *quantile_cols], axis=1)
    points["horizon"] = points.groupby(id_col)[time_col].rank(method="first")
    observed = actuals[[id_col, time_col, target_col]].set_axis([id_col, time_col, "y_true"], axis=1)
    try:
        joined = observed.merge(points, on=[id_col, time_col], how="left")
    except ValueError as err:
        raise InvalidInputError(f"Cannot join forecasts to actuals on {id_col}, {time_col}: {err}") from err
    if (unforecast := joined["horizon"].isna() & joined["y_true"].notna()).any():
        first = joined.loc[unforecast].iloc[:1].to_dict("records")[0]
        raise InvalidInputError(
            f"forecasts lack {int(unforecast.sum())} observed timestamp(s) of actuals, first in series "
            f"{first[id_col]!r} at {time_col}={first[time_col]}."
        )
    joined = joined.dropna(subset=["horizon"]).astype({"horizon": int})
    if "mase" in metrics:
        scales = _series_scales(
            train, joined[id_col].unique().tolist(), season_length, id_col, time_col, target_col
        )
        joined["scale"] = joined[id_col].map(scales)
    return joined, _metric_columns(metrics, by_level)


def _series_scales(train, series, season_length, id_col, time_col, target_col):
    if train is None:
        raise InvalidInputError("metric 'mase' needs train (the in-sample history); pass it or drop 'mase'.")
    _check_frame(train, "train", [id_col, time_col, target_col])
    history = {uid: group[target_col] for uid, group in train.sort_values(time_col).groupby(id_col)}
    if missing := [uid for uid in series if uid not in history]:
        raise InvalidInputError(f"train has no rows for {len(missing)} scored series: {missing[:5]}.")
    return {
        uid: _in_context(f"series {uid!r}", _seasonal_scale, history[uid], season_length) for uid in series
    }


def _metric_on(metric, group):
    name, arg = metric
    if name == "mase":
        # |y/s - f/s| = |y - f|/s, so the MAE of scaled values averages the per-point scaled errors.
        return mae(group["y_true"] / group["scale"], group["y_pred"] / group["scale"])
    if name == "pinball":
        column, level = arg
        return pinball_loss(group["y_true"], group[column], level)
    if name == "coverage":
        return coverage(group["y_true"], group[arg[0]], group[arg[1]])
    return _POINT_METRICS[name](group["y_true"], group["y_pred"])


def _score(joined, columns, by, label):
    rows = {
        key: {
            column: _in_context(f"{label} {key!r}", _metric_on, metric, group)
            for column, metric in columns.items()
        }
        for key, group in joined.groupby(by)
    }
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(columns)).rename_axis(by)


def evaluate(
    forecasts,
    actuals,
    train=None,
    season_length=1,
    metrics=("smape", "mase", "mae", "rmse"),
    id_col="unique_id",
    time_col="ds",
    target_col="y",
    pred_col="y_pred",
    quantiles=None,
):
    """Score a long-format panel of forecasts, one row per series.

    Forecasts are joined to actuals on ``(id_col, time_col)``; forecast rows without an actual
    are not scored and NaN actuals are ignored, as in the point metrics.

    Parameters
    ----------
    forecasts : DataFrame
        Long frame with columns ``id_col``, ``time_col`` and ``pred_col``.
    actuals : DataFrame
        Long frame with ``id_col``, ``time_col`` and ``target_col`` over the forecast period;
        each of its series and observed timestamps needs a forecast.
    train : DataFrame, optional
        Long in-sample history with the columns of ``actuals``; required for ``"mase"``.
    season_length : int, default=1
        Lag of the seasonal naive scale of MASE.
    metrics : sequence of str, default=("smape", "mase", "mae", "rmse")
        Any of ``"mae"``, ``"rmse"``, ``"mape"``, ``"smape"``, ``"mase"`` (on ``pred_col``), and for
        quantile forecasts ``"pinball"`` (:func:`pinball_loss` of each quantile column) and
        ``"coverage"`` (:func:`coverage` of each central interval ``q`` to ``1 - q``).
    id_col, time_col, target_col, pred_col : str
        Column names.
    quantiles : sequence of float, optional
        Quantile levels scored by ``"pinball"`` and ``"coverage"``, read from the forecast columns
        ``q<level>`` (``q0.1``, see :func:`quantile_column`). Default: every such column.

    Returns
    -------
    DataFrame
        Indexed by series id (sorted), one column per metric; ``"pinball"`` gives one column per
        level (``pinball_q0.1``...) and ``"coverage"`` one per interval (``coverage_q0.1_q0.9``...).

    Raises
    ------
    InvalidInputError
        If a series or observed timestamp of ``actuals`` has no forecast, if ``"mase"`` is asked
        for without a usable ``train`` history, or if any input is malformed (the message names
        the series or horizon step).

    Notes
    -----
    M4 reports a panel's sMAPE and MASE as the mean over series of the per-series values, that
    is ``evaluate(...).mean()``, not a metric pooled over all points; pass those means to
    :func:`owa`.

    Examples
    --------
    >>> actuals = pd.DataFrame({"unique_id": "a", "ds": [3, 4], "y": [10.0, 12.0]})
    >>> forecasts = pd.DataFrame({"unique_id": "a", "ds": [3, 4], "y_pred": [11.0, 12.0]})
    >>> train = pd.DataFrame({"unique_id": "a", "ds": [0, 1, 2], "y": [8.0, 9.0, 11.0]})
    >>> evaluate(forecasts, actuals, train).round(3).to_dict("index")
    {'a': {'smape': 4.762, 'mase': 0.333, 'mae': 0.5, 'rmse': 0.707}}
    >>> quantiles = forecasts.assign(**{"q0.1": [9.0, 10.0], "q0.9": [12.0, 13.0]})
    >>> evaluate(quantiles, actuals, metrics=["pinball", "coverage"]).round(3).to_dict("index")
    {'a': {'pinball_q0.1': 0.15, 'pinball_q0.9': 0.15, 'coverage_q0.1_q0.9': 1.0}}
    """
    columns = (id_col, time_col, target_col, pred_col)
    joined, scored = _joined(forecasts, actuals, train, season_length, metrics, quantiles, *columns)
    return _score(joined, scored, id_col, "series")


def evaluate_by_horizon(
    forecasts,
    actuals,
    train=None,
    season_length=1,
    metrics=("smape", "mase", "mae", "rmse"),
    id_col="unique_id",
    time_col="ds",
    target_col="y",
    pred_col="y_pred",
    quantiles=None,
):
    """Score a long-format panel of forecasts, one row per horizon step.

    Parameters are those of :func:`evaluate`. The step of a forecast row is the rank (1..H) of
    its timestamp among its series' forecasts. Each metric is taken over the series at that
    step; for MASE, each absolute error is divided by its own series' in-sample scale first.

    Returns
    -------
    DataFrame
        Indexed by ``horizon`` (steps with no observed actual left out), one column per metric.

    Examples
    --------
    >>> actuals = pd.DataFrame({"unique_id": list("aabb"), "ds": [3, 4, 3, 4], "y": [10.0, 12, 5, 5]})
    >>> forecasts = actuals.assign(y_pred=[11.0, 12, 5, 7]).drop(columns="y")
    >>> evaluate_by_horizon(forecasts, actuals, metrics=["mae"])["mae"].to_dict()
    {1: 0.5, 2: 1.0}
    """
    columns = (id_col, time_col, target_col, pred_col)
    joined, scored = _joined(forecasts, actuals, train, season_length, metrics, quantiles, *columns)
    return _score(joined, scored, "horizon", "horizon step")
