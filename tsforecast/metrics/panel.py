"""Scoring a long-format panel of forecasts against its actuals, per series or per horizon step.

:func:`evaluate` and :func:`evaluate_by_horizon` join long forecast and actual frames on (series id,
timestamp) and score each series or each horizon step with the point metrics of
:mod:`tsforecast.metrics.point`, and with the quantile and interval metrics of
:mod:`tsforecast.metrics.intervals` on the quantile forecast columns (``q0.1``, ``q0.9``...) and the
interval columns (``y_lo_95``, ``y_hi_95``...). :func:`pooled_coverage` gives the coverage and ACD of
a whole panel the way M4 computed them: pooled over all its points.
"""

import numpy as np
import pandas as pd

from tsforecast.data.panel import Panel
from tsforecast.exceptions import InvalidInputError
from tsforecast.metrics.intervals import (
    INTERVAL_COLUMN,
    QUANTILE_COLUMN,
    acd,
    coverage,
    interval_columns,
    interval_levels,
    interval_quantiles,
    interval_score,
    pinball_loss,
    quantile_column,
    quantile_crps,
    quantiles_from_intervals,
)
from tsforecast.metrics.point import mae, mape, rmse, seasonal_scale, smape

__all__ = ["POOLED_METRICS", "evaluate", "evaluate_by_horizon", "pooled_coverage"]

_POINT_METRICS = {"mae": mae, "rmse": rmse, "mape": mape, "smape": smape}
_QUANTILE_METRICS = ("pinball", "coverage", "crps")  # on quantile columns or interval bounds
_INTERVAL_METRICS = ("msis", "acd")  # on interval bounds only
_SCALED_METRICS = ("mase", "msis", "crps")  # divided by each series' seasonal naive scale
_PANEL_METRICS = (*_POINT_METRICS, "mase", *_QUANTILE_METRICS, *_INTERVAL_METRICS)
#: The metrics a panel scores on its pooled points rather than as a mean over series (M4's coverage).
POOLED_METRICS = ("coverage", "acd")


def _forecast_columns(forecasts, metrics, quantiles, level) -> tuple:
    """The quantile columns (level -> column) and interval columns (level -> (lower, upper)) to score.

    The one place that reads the names of :func:`quantile_column` and :func:`interval_columns` back;
    ``quantiles`` and ``level`` select among them (default: every such column).
    """
    wanted = [m for m in metrics if m in (*_QUANTILE_METRICS, *_INTERVAL_METRICS)]
    if not wanted:
        return {}, {}
    by_quantile, by_level = _quantile_columns(forecasts, quantiles), _interval_columns(forecasts, level)
    example = "; predict(..., level=95) adds y_lo_95 and y_hi_95"
    if needs_bounds := [m for m in wanted if m in _INTERVAL_METRICS and not by_level]:
        raise InvalidInputError(
            f"metrics {needs_bounds} need interval forecast columns named like 'y_lo_95' and 'y_hi_95'"
            f"{example}; forecasts has {list(forecasts.columns)}."
        )
    if not by_quantile and not by_level:
        raise InvalidInputError(
            f"metrics {wanted} need quantile forecast columns named like 'q0.1' (the recurrent "
            f"forecasters add them when fitted with quantiles=...) or interval columns like 'y_lo_95' "
            f"and 'y_hi_95'{example}; forecasts has {list(forecasts.columns)}."
        )
    return by_quantile, by_level


def _quantile_columns(forecasts, quantiles) -> dict:
    """Level -> forecast column: those of ``quantiles``, or every ``q<level>`` column (maybe none)."""
    if quantiles is None:
        found = [c for c in forecasts.columns if isinstance(c, str) and QUANTILE_COLUMN.fullmatch(c)]
        return dict(sorted({float(c[1:]): c for c in found if 0 < float(c[1:]) < 1}.items()))
    levels = sorted({float(q) for q in np.atleast_1d(quantiles)})
    if bad := [q for q in levels if not 0 < q < 1]:
        raise InvalidInputError(f"quantiles must lie strictly between 0 and 1, got {bad}.")
    if missing := [quantile_column(q) for q in levels if quantile_column(q) not in forecasts.columns]:
        raise InvalidInputError(f"forecasts lacks the quantile column(s) {missing} asked for by quantiles.")
    return {q: quantile_column(q) for q in levels}


def _interval_columns(forecasts, level) -> dict:
    """Level -> (lower, upper) columns: those of ``level``, or every complete ``y_lo_L``/``y_hi_L`` pair."""
    if level is not None:
        levels = interval_levels(level)
        if missing := [c for lv in levels for c in interval_columns(lv) if c not in forecasts.columns]:
            raise InvalidInputError(
                f"forecasts lacks the interval column(s) {missing} asked for by level={level!r}; "
                "forecast with predict(..., level=...) (a forecaster without intervals of its own: "
                "wrap it in ConformalIntervals)."
            )
        return {lv: interval_columns(lv) for lv in levels}
    sides = {}
    for column in forecasts.columns:
        if isinstance(column, str) and (match := INTERVAL_COLUMN.fullmatch(column)):
            if 0 < (lv := float(match[2])) < 100:
                sides.setdefault(lv, {})[match[1]] = column
    if lone := [next(iter(found.values())) for found in sides.values() if len(found) == 1]:
        raise InvalidInputError(
            f"forecasts has the interval bound(s) {lone} without the other bound of the same level; "
            "an interval needs both y_lo_<level> and y_hi_<level>."
        )
    return {lv: (found["lo"], found["hi"]) for lv, found in sorted(sides.items())}


def _metric_columns(metrics, by_quantile: dict, by_level: dict) -> dict:
    """Output column -> (metric, its forecast column(s) and level), in the order of ``metrics``.

    Quantile metrics expand per quantile column, then per interval bound; interval metrics per level.
    """
    intervals = {_label(lo): (lo, hi, lv) for lv, (lo, hi) in by_level.items()}
    columns = {}
    for name in metrics:
        if name == "pinball":
            bounds = {
                c: q
                for lv, pair in by_level.items()
                for c, q in zip(pair, interval_quantiles(lv), strict=True)
            }
            quantiles = {c: q for q, c in by_quantile.items()} | bounds
            columns.update({f"pinball_{c}": ("pinball", (c, q)) for c, q in quantiles.items()})
        elif name == "coverage":
            pairs = {f"{lo}_{hi}": (lo, hi, lv) for lv, (lo, hi) in _central_pairs(by_quantile).items()}
            if not pairs and not intervals:
                raise InvalidInputError(
                    "metric 'coverage' needs the two bounds of a central interval, like quantiles 0.1 and "
                    f"0.9; got levels {list(by_quantile)}."
                )
            columns.update({f"coverage_{key}": ("coverage", arg) for key, arg in (pairs | intervals).items()})
        elif name in _INTERVAL_METRICS:
            columns.update({f"{name}_{key}": (name, arg) for key, arg in intervals.items()})
        elif name == "crps":
            columns["crps"] = ("crps", (by_quantile, by_level))
        else:
            columns[name] = (name, None)
    return columns


def _central_pairs(by_quantile: dict) -> dict:
    """Level (percent) -> (lower, upper) quantile columns of each central interval ``q`` to ``1 - q``."""
    return {
        round(100 * (hi - lo), 10): (by_quantile[lo], by_quantile[hi])
        for lo in by_quantile
        for hi in by_quantile
        if lo < 0.5 and np.isclose(lo + hi, 1)
    }


def _label(lower_column: str) -> str:
    """``"95"`` of ``"y_lo_95"``: the level as the interval columns spell it."""
    return lower_column.removeprefix("y_lo_")


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


def _where(label, key, column) -> str:
    """Where a metric failed: the series or step, and the output column when it names bounds."""
    return f"{label} {key!r}" + ("" if column in _PANEL_METRICS else f" ({column})")


def _joined(
    forecasts,
    actuals,
    train,
    season_length,
    metrics,
    quantiles,
    level,
    id_col,
    time_col,
    target_col,
    pred_col,
):
    """The forecast points joined to their actuals, and the output columns to score.

    One row per forecast point with an actual: id, horizon, y_true, y_pred, the quantile and interval
    columns (and the series' seasonal naive scale, for the scaled metrics).
    """
    if isinstance(metrics, str) or not metrics or not set(metrics) <= set(_PANEL_METRICS):
        raise InvalidInputError(f"metrics must be a non-empty sequence of {_PANEL_METRICS}, got {metrics!r}.")
    _check_frame(forecasts, "forecasts", [id_col, time_col, pred_col])
    _check_frame(actuals, "actuals", [id_col, time_col, target_col])
    by_quantile, by_level = _forecast_columns(forecasts, metrics, quantiles, level)
    extra = list(dict.fromkeys([*by_quantile.values(), *(c for pair in by_level.values() for c in pair)]))
    absent = actuals.loc[~actuals[id_col].isin(forecasts[id_col]), id_col].unique()
    if len(absent):
        raise InvalidInputError(
            f"forecasts has no rows for {len(absent)} series of actuals: {absent[:5].tolist()}."
        )
    points = forecasts[[id_col, time_col, pred_col, *extra]]
    points = points.set_axis([id_col, time_col, "y_pred", *extra], axis=1)
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
    columns = _metric_columns(metrics, by_quantile, by_level)
    bounds = {*by_level.values(), *(arg[:2] for name, arg in columns.values() if name == "coverage")}
    for lower, upper in sorted(bounds):
        if (crossed := joined[lower] > joined[upper]).any():
            first = joined.loc[crossed].iloc[0]
            raise InvalidInputError(
                f"forecasts' {lower} exceeds its {upper} at {int(crossed.sum())} point(s), first in series "
                f"{first[id_col]!r} at {time_col}={first[time_col]}; a lower bound cannot exceed its upper."
            )
    if scaled := [m for m in metrics if m in _SCALED_METRICS]:
        scales = _series_scales(
            train, joined[id_col].unique().tolist(), season_length, scaled, id_col, time_col, target_col
        )
        joined["scale"] = joined[id_col].map(scales)
    return joined, columns


def _series_scales(train, series, season_length, scaled, id_col, time_col, target_col):
    if train is None:
        names = ", ".join(repr(m) for m in scaled)
        noun, verb = ("metric", "needs") if len(scaled) == 1 else ("metrics", "need")
        raise InvalidInputError(
            f"{noun} {names} {verb} train (the in-sample history, for the seasonal naive scale); pass "
            f"it or drop {names}."
        )
    if isinstance(train, Panel):  # a validated history: its series' values, no long frame built
        history = dict(zip(train.long_ids, train.values, strict=True))
    else:
        _check_frame(train, "train", [id_col, time_col, target_col])
        history = {uid: group[target_col] for uid, group in train.sort_values(time_col).groupby(id_col)}
    if missing := [uid for uid in series if uid not in history]:
        raise InvalidInputError(f"train has no rows for {len(missing)} scored series: {missing[:5]}.")
    return {
        uid: _in_context(f"series {uid!r}", seasonal_scale, history[uid], season_length) for uid in series
    }


def _metric_on(metric, group):
    name, arg = metric
    y_true = group["y_true"]
    # The scaled metrics are positively homogeneous: scoring y/s against forecasts/s divides each
    # point's score by its own series' scale s, so a horizon step mixes series on one footing.
    scale = group["scale"] if name in _SCALED_METRICS else 1.0
    if name == "mase":
        return mae(y_true / scale, group["y_pred"] / scale)
    if name == "pinball":
        column, q = arg
        return pinball_loss(y_true, group[column], q)
    if name in ("coverage", "acd", "msis"):
        lower, upper, level = arg
        if name == "coverage":
            return coverage(y_true, group[lower], group[upper])
        if name == "acd":
            return acd(y_true, group[lower], group[upper], level)
        return interval_score(y_true / scale, group[lower] / scale, group[upper] / scale, level)
    if name == "crps":
        by_quantile, by_level = arg
        intervals = {lv: (group[lo] / scale, group[hi] / scale) for lv, (lo, hi) in by_level.items()}
        forecasts = quantiles_from_intervals(intervals, point=group["y_pred"] / scale)
        # A quantile column of the forecaster wins over a bound or the point read as that quantile.
        forecasts |= {q: group[column] / scale for q, column in by_quantile.items()}
        return quantile_crps(y_true / scale, forecasts)
    return _POINT_METRICS[name](y_true, group["y_pred"])


def _score(joined, columns, by, label):
    rows = {
        key: {
            column: _in_context(_where(label, key, column), _metric_on, metric, group)
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
    level=None,
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
    train : DataFrame or Panel, optional
        Long in-sample history with the columns of ``actuals`` (or the validated panel of it:
        :func:`tsforecast.data.to_panel`); required for ``"mase"``, ``"msis"`` and ``"crps"``.
    season_length : int, default=1
        Lag of the seasonal naive scale of MASE, MSIS and the scaled CRPS.
    metrics : sequence of str, default=("smape", "mase", "mae", "rmse")
        Any of ``"mae"``, ``"rmse"``, ``"mape"``, ``"smape"``, ``"mase"`` (on ``pred_col``); for
        quantile forecasts (``q<level>`` columns) or intervals (``y_lo_<L>``/``y_hi_<L>`` columns)
        ``"pinball"`` (:func:`pinball_loss` of each quantile column and interval bound),
        ``"coverage"`` (:func:`coverage` of each central interval: ``q`` to ``1 - q`` and each
        level) and ``"crps"`` (:func:`scaled_crps` of all of them, ``pred_col`` standing for the
        median when no ``q0.5`` column is there, see :func:`quantiles_from_intervals`); for
        intervals ``"msis"`` (:func:`msis`) and ``"acd"`` (:func:`acd`) of each level.
    id_col, time_col, target_col, pred_col : str
        Column names.
    quantiles : sequence of float, optional
        Quantile levels to score, read from the forecast columns ``q<level>`` (``q0.1``, see
        :func:`quantile_column`). Default: every such column.
    level : float or sequence of float, optional
        Interval levels (percent) to score, read from the columns ``y_lo_<level>`` and
        ``y_hi_<level>`` (:func:`interval_columns`). Default: every such pair.

    Returns
    -------
    DataFrame
        Indexed by series id (sorted), one column per metric; ``"pinball"`` gives one column per
        quantile column or bound (``pinball_q0.1``, ``pinball_y_lo_95``...), ``"coverage"`` one per
        interval (``coverage_q0.1_q0.9``, ``coverage_95``...), ``"msis"`` and ``"acd"`` one per
        level (``msis_95``, ``acd_95``), ``"crps"`` one (``crps``).

    Raises
    ------
    InvalidInputError
        If a series or observed timestamp of ``actuals`` has no forecast, if a scaled metric is asked
        for without a usable ``train`` history, if a quantile or interval metric finds no column to
        score (naming the missing ones), if a lower bound exceeds its upper one (naming the series and
        timestamp), or if any input is malformed (the message names the series or horizon step).

    Notes
    -----
    M4 reports a panel's sMAPE, MASE and MSIS as the mean over series of the per-series values,
    that is ``evaluate(...).mean()``, not a metric pooled over all points; pass those means to
    :func:`owa`. Its coverage and ACD, though, are pooled over all points: see
    :func:`pooled_coverage` (the mean of the per-series ``acd_95`` is not M4's ACD).

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
    >>> intervals = forecasts.assign(y_lo_95=[9.5, 10.0], y_hi_95=[10.5, 11.75])  # 12 is 0.25 above
    >>> evaluate(intervals, actuals, train, metrics=["msis", "coverage"]).round(3).to_dict("index")
    {'a': {'msis_95': 4.25, 'coverage_95': 0.5}}
    """
    columns = (id_col, time_col, target_col, pred_col)
    joined, scored = _joined(forecasts, actuals, train, season_length, metrics, quantiles, level, *columns)
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
    level=None,
):
    """Score a long-format panel of forecasts, one row per horizon step.

    Parameters are those of :func:`evaluate`. The step of a forecast row is the rank (1..H) of
    its timestamp among its series' forecasts. Each metric is taken over the series at that
    step; for MASE, MSIS and CRPS, each point's score is divided by its own series' in-sample
    scale first. The coverage and ACD of a step are those of the points of all series at that step
    pooled, as M4 computes them over a panel.

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
    joined, scored = _joined(forecasts, actuals, train, season_length, metrics, quantiles, level, *columns)
    return _score(joined, scored, "horizon", "horizon step")


def pooled_coverage(points, by=None, metrics=POOLED_METRICS, *, target_col="y", quantiles=None, level=None):
    """Coverage and ACD of forecast points pooled over a whole panel (or over each group of ``by``).

    The M4 competition computed the coverage of the 95% intervals over all series and horizon steps
    at once, and its ACD from that one coverage (:func:`acd`); this does so for forecast points
    already joined to their actuals (a backtest's ``forecasts`` frame, or ``forecasts.merge(actuals)``).

    Parameters
    ----------
    points : DataFrame
        One row per forecast point: ``target_col`` (NaN rows are left out) and the interval columns
        (``y_lo_95``...) or central quantile columns (``q0.1``, ``q0.9``...).
    by : str or list of str, optional
        Columns to group by (``"step"``, ``["model", "step"]``); default: all points together.
    metrics : sequence of str, default=("coverage", "acd")
        Any of :data:`POOLED_METRICS`; columns named as in :func:`evaluate`.
    target_col : str, default="y"
        The actuals' column.
    quantiles, level : optional
        Quantile and interval levels to score, as in :func:`evaluate`.

    Returns
    -------
    pd.Series or DataFrame
        One value per metric column; with ``by``, one row per group.

    Examples
    --------
    >>> points = pd.DataFrame({"y": [1.0, 5.0, 3.0, 2.0], "y_lo_80": 0.0, "y_hi_80": [2.0, 4.0, 4.0, 3.0]})
    >>> pooled_coverage(points).round(3).to_dict()
    {'coverage_80': 0.75, 'acd_80': 0.05}
    """
    if isinstance(metrics, str) or not metrics or not set(metrics) <= set(POOLED_METRICS):
        raise InvalidInputError(f"metrics must be a non-empty sequence of {POOLED_METRICS}, got {metrics!r}.")
    if not isinstance(points, pd.DataFrame) or target_col not in points.columns:
        raise InvalidInputError(f"points must be a DataFrame with the actuals in column {target_col!r}.")
    columns = _metric_columns(metrics, *_forecast_columns(points, metrics, quantiles, level))
    observed = points[points[target_col].notna()].assign(y_true=points[target_col])
    if observed.empty:
        raise InvalidInputError(f"points has no observed {target_col!r}; nothing to score.")
    if by is None:
        return pd.Series(
            {column: _in_context("pooled", _metric_on, m, observed) for column, m in columns.items()}
        )
    return _score(observed, columns, by, "group")
