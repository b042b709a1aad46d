"""Scoring a long-format panel of forecasts against its actuals, per series or per horizon step.

:func:`evaluate` and :func:`evaluate_by_horizon` join long forecast and actual frames on (series id,
timestamp) and score each series or each horizon step with the point metrics of
:mod:`tsforecast.metrics.point`, and with the pinball loss and interval coverage of quantile forecast
columns (``q0.1``, ``q0.9``..., :mod:`tsforecast.metrics.intervals`).
"""

import numpy as np
import pandas as pd

from tsforecast.exceptions import InvalidInputError
from tsforecast.metrics.intervals import QUANTILE_COLUMN, coverage, pinball_loss, quantile_column
from tsforecast.metrics.point import mae, mape, rmse, seasonal_scale, smape

__all__ = ["evaluate", "evaluate_by_horizon"]

_POINT_METRICS = {"mae": mae, "rmse": rmse, "mape": mape, "smape": smape}
_QUANTILE_METRICS = ("pinball", "coverage")
_PANEL_METRICS = (*_POINT_METRICS, "mase", *_QUANTILE_METRICS)


def _quantile_columns(forecasts, quantiles) -> dict:
    """Level -> forecast column to score: those of ``quantiles``, or every ``q<level>`` column."""
    if quantiles is None:
        found = [c for c in forecasts.columns if isinstance(c, str) and QUANTILE_COLUMN.fullmatch(c)]
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
    """The forecast points joined to their actuals, and the output columns to score.

    One row per forecast point with an actual: id, horizon, y_true, y_pred, the quantile columns (and
    the series' MASE scale).
    """
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
        uid: _in_context(f"series {uid!r}", seasonal_scale, history[uid], season_length) for uid in series
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
