"""Forecasts drawn against their history: one panel per series, interval bands, point forecast line.

:func:`plot_forecasts` takes the history and the frame ``predict`` returned, in any layout the
forecasters accept (Series, wide or long), and answers a :class:`matplotlib.figure.Figure`. The
figure is built on ``Figure`` directly, not through ``pyplot``: it touches no global matplotlib state,
needs no display (any backend, Agg included), and is not kept alive by a pyplot figure manager when
drawn in a loop. matplotlib is optional and imported only when a figure is drawn.

Interval bands come from the ``y_lo_<level>`` / ``y_hi_<level>`` columns of ``predict(level=...)``
(:func:`~tsforecast.metrics.intervals.interval_columns`), or from the quantile columns ``q0.1`` /
``q0.9`` of a recurrent forecaster fitted with ``quantiles`` (the central 80% interval).
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace

import numpy as np
import pandas as pd

from tsforecast.data import Columns, Panel, to_long, to_panel
from tsforecast.data.labels import UNNAMED_SERIES_ID
from tsforecast.exceptions import InvalidInputError, InvalidParameterError
from tsforecast.metrics.intervals import (
    QUANTILE_COLUMN,
    interval_columns,
    interval_levels,
    interval_quantiles,
    quantile_column,
)

__all__ = ["forecast_bands", "plot_forecasts"]

logger = logging.getLogger(__name__)

_NUMBER = re.compile(r"\d*\.?\d+(?:e[-+]?\d+)?")  # candidate levels inside a column name


def forecast_bands(columns, level=None) -> dict:
    """The interval bands a forecast frame's ``columns`` carry: level (percent) -> (lower, upper) column.

    A level's bounds are its interval columns (:func:`~tsforecast.metrics.intervals.interval_columns`)
    or, failing those, the two quantile columns that bound it (``q0.1`` and ``q0.9`` for 80%).

    Parameters
    ----------
    columns : iterable of str
        Column names of a forecast frame.
    level : float or list of float, optional
        The levels wanted, in percent; each must be present. None: every level present; ``[]``: none.

    Returns
    -------
    dict of float -> (str, str)
        Levels in increasing order.

    Raises
    ------
    InvalidInputError
        When a level of ``level`` has no bounds among ``columns``.

    Examples
    --------
    >>> forecast_bands(["y_pred", "y_lo_95", "y_hi_95", "y_lo_80", "y_hi_80"])
    {80.0: ('y_lo_80', 'y_hi_80'), 95.0: ('y_lo_95', 'y_hi_95')}
    >>> forecast_bands(["y_pred", "q0.1", "q0.5", "q0.9"])
    {80.0: ('q0.1', 'q0.9')}
    """
    names = {c for c in columns if isinstance(c, str)}
    present = {}
    for name in names:  # a level is a number in its lower bound's name: try each, keep exact matches
        for candidate in (float(text) for text in _NUMBER.findall(name)):
            lower, upper = interval_columns(candidate) if 0 < candidate < 100 else (None, None)
            if lower == name and upper in names:
                present[candidate] = (lower, upper)
    quantiles = sorted(float(c[1:]) for c in names if QUANTILE_COLUMN.fullmatch(c))
    for q in (q for q in quantiles if 0 < q < 0.5):
        candidate = round(100 * (1 - 2 * q), 10)
        pair = tuple(quantile_column(b) for b in interval_quantiles(candidate))
        if candidate not in present and pair[1] in names:
            present[candidate] = pair
    if level is None:
        return dict(sorted(present.items()))
    wanted = () if np.ndim(level) and len(level) == 0 else interval_levels(level)
    if missing := [lv for lv in wanted if lv not in present]:
        raise InvalidInputError(
            f"forecasts carry no interval for level {[f'{lv:g}' for lv in missing]}: it lacks the columns "
            f"{[c for lv in missing for c in interval_columns(lv)]}; its intervals are "
            f"{[f'{lv:g}' for lv in sorted(present)] or 'none'}. Forecast with predict(level=...) or leave "
            "level=None to draw the intervals present."
        )
    return {lv: present[lv] for lv in wanted}


def plot_forecasts(
    history,
    forecasts,
    *,
    level=None,
    actuals=None,
    ids=None,
    max_series: int = 8,
    n_cols: int = 2,
    history_steps: int | None = None,
    columns: Columns | None = None,
    ax=None,
    figsize=None,
    color="C1",
    label: str | None = None,
):
    """Draw forecasts after their history: one panel per series, with shaded interval bands.

    Parameters
    ----------
    history : pd.Series, pd.DataFrame, Panel or None
        The series the forecasts continue, in any layout the forecasters accept (a Series, a wide
        frame, a long frame ``unique_id, ds, y``). None draws the forecasts alone.
    forecasts : pd.Series or pd.DataFrame
        What ``predict`` returned for that history: in its layout, with the point column ``y_pred``
        and any interval bounds (``y_lo_80``, ``y_hi_80``...) or quantile columns (``q0.1``...).
    level : float or list of float, optional
        Interval levels to shade, in percent; each must be in ``forecasts``. None: every level the
        forecasts carry; ``[]``: none. Wider levels are drawn lighter.
    actuals : pd.Series or pd.DataFrame, optional
        What happened, in any accepted layout; drawn over each series' forecast period.
    ids : list, optional
        The series to draw, in this order (all of them); default: the first ``max_series`` series
        with forecasts, in the order of the history.
    max_series : int, default 8
        Most panels drawn when ``ids`` is not given.
    n_cols : int, default 2
        Panels per row. Panels share no axis: series differ in scale and may end at different times.
    history_steps : int, optional
        Draw only the last ``history_steps`` observations of each history (all when None).
    columns : Columns, optional
        Column names of the long layouts, as for :func:`~tsforecast.data.to_panel`.
    ax : matplotlib.axes.Axes or sequence of Axes, optional
        Axes to draw into, one per series; the figure they belong to is returned and ``figsize``
        ignored. Default: a new figure.
    figsize : (float, float), optional
        Size of a new figure in inches; default 5 x 2.8 per panel.
    color : str, default "C1"
        Colour of the point forecast and of its bands.
    label : str, optional
        Legend label of the point forecast (default "forecast"); a label starting with ``_`` hides
        the forecast and its bands from the legend.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per series drawn, titled with the series id; the legend is on the first.

    Raises
    ------
    InvalidInputError
        When the history or the actuals are not valid series, when ``forecasts`` lacks ``y_pred``
        or a level of ``level``, holds a series twice at one time stamp or a series the history
        lacks, or when ``ids`` names a series without forecasts.
    InvalidParameterError
        When ``max_series``, ``n_cols`` or ``history_steps`` is not a positive integer, or ``ax``
        holds fewer axes than series to draw.
    ImportError
        When matplotlib is not installed.

    Examples
    --------
    >>> import pandas as pd
    >>> history = pd.DataFrame({"unique_id": "a", "ds": range(8), "y": [1.0, 2, 3, 2, 1, 2, 3, 2]})
    >>> forecasts = pd.DataFrame({"unique_id": "a", "ds": [8, 9], "y_pred": [1.5, 2.0]})
    >>> forecasts = forecasts.assign(y_lo_80=[1.0, 1.2], y_hi_80=[2.0, 2.9])  # predict(level=80)
    >>> fig = plot_forecasts(history, forecasts)
    >>> [ax.get_title() for ax in fig.axes]  # fig.savefig("forecasts.png"), or show it in a notebook
    ['a']
    """
    try:
        from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(
            "plot_forecasts needs matplotlib; install it with pip install matplotlib "
            "(or pip install 'tsforecast[tracking]')."
        ) from None
    cols = columns or Columns()
    _check_counts(max_series=max_series, n_cols=n_cols, history_steps=history_steps)
    past, kind = (None, None) if history is None else _long_history(history, cols, "history")
    future = _long_forecasts(forecasts, cols, past, kind)
    bands = forecast_bands(future.columns, level)
    chosen = _chosen_ids(future, past, ids, max_series, cols)
    truth = None if actuals is None else _long_history(actuals, cols, "actuals")[0]

    figure, axes = _panels(Figure, ax, len(chosen), n_cols, figsize)
    future, past, truth = (_by_id(frame, chosen, cols) for frame in (future, past, truth))
    for axes_k, uid in zip(axes, chosen, strict=False):
        rows = future[uid].sort_values(cols.time_col)
        if uid in past:
            seen = past[uid] if history_steps is None else past[uid].tail(history_steps)
            axes_k.plot(_x(seen[cols.time_col]), seen[cols.target_col], color="C0", label="history")
        if uid in truth:
            start, end = rows[cols.time_col].iloc[[0, -1]]
            happened = truth[uid][truth[uid][cols.time_col].between(start, end)]
            axes_k.plot(_x(happened[cols.time_col]), happened[cols.target_col], color="k", label="actual")
        _draw(axes_k, rows, bands, cols, color, label)
        axes_k.set_title(str(uid), fontsize=9)
        if pd.api.types.is_datetime64_any_dtype(_x(rows[cols.time_col])):
            locator = AutoDateLocator(minticks=3, maxticks=6)  # dates that fit a narrow panel
            axes_k.xaxis.set_major_locator(locator)
            axes_k.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    if axes[0].get_legend_handles_labels()[0]:
        axes[0].legend(fontsize=8, loc="best")
    return figure


def _panels(figure_class, ax, n: int, n_cols: int, figsize) -> tuple:
    """The figure and one axes per series: ``ax`` checked, or a new grid without spare panels."""
    if ax is not None:
        axes = list(np.atleast_1d(np.asarray(ax, dtype=object)).ravel())
        if len(axes) < n:
            raise InvalidParameterError(
                f"ax holds {len(axes)} axes for {n} series; pass one axes per series, fewer ids, or "
                "ax=None for a new figure."
            )
        return axes[0].figure, axes
    n_cols = min(n_cols, n)
    n_rows = -(-n // n_cols)
    figure = figure_class(figsize=figsize or (5 * n_cols, 2.8 * n_rows), layout="constrained")
    grid = figure.subplots(n_rows, n_cols, squeeze=False).ravel()
    for spare in grid[n:]:
        figure.delaxes(spare)
    return figure, list(grid[:n])


def _draw(ax, rows: pd.DataFrame, bands: dict, cols: Columns, color, label) -> None:
    """One series' bands (widest first and lightest; nested bands darken inward) and point forecast."""
    x = _x(rows[cols.time_col])
    for k, (lv, (lower, upper)) in enumerate(sorted(bands.items(), reverse=True)):
        name = f"{lv:g}% interval" if label is None else f"{label} {lv:g}%"  # "_..." stays out of legends
        alpha = 0.3 - 0.18 * (len(bands) - 1 - k) / max(len(bands) - 1, 1)  # 0.12 for the widest
        ax.fill_between(x, rows[lower], rows[upper], color=color, alpha=alpha, linewidth=0, label=name)
    ax.plot(x, rows[cols.pred_col], color=color, label="forecast" if label is None else label)


def _by_id(frame, ids: list, cols: Columns) -> dict:
    """Series id -> its rows, for the series in ``ids`` (empty when ``frame`` is None)."""
    if frame is None:
        return {}
    return dict(list(frame[frame[cols.id_col].isin(ids)].groupby(cols.id_col, sort=False)))


def _check_counts(**counts) -> None:
    for name, value in counts.items():
        if value is None and name == "history_steps":
            continue
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
            raise InvalidParameterError(f"{name} must be a positive integer; got {value!r}.")


def _long_history(data, cols: Columns, name: str) -> tuple:
    """``data`` validated (NaN kept) as a long frame named by ``cols``, and its layout kind."""
    try:
        panel = data if isinstance(data, Panel) else to_panel(data, columns=cols, missing="keep")
    except InvalidInputError as err:
        raise InvalidInputError(f"{name}: {err}") from err
    return to_long(panel.replace_layout(replace(panel.layout, columns=cols))), panel.layout.kind


def _long_forecasts(forecasts, cols: Columns, past, kind) -> pd.DataFrame:
    """``forecasts`` (in the layout ``kind`` of the history, or long) as a long frame, checked."""
    ids = None if past is None else pd.unique(past[cols.id_col])
    if isinstance(forecasts, pd.Series):
        forecasts = forecasts.to_frame(cols.pred_col)
    if not isinstance(forecasts, pd.DataFrame):
        raise InvalidInputError(
            "forecasts must be the pandas Series or DataFrame predict returned; got "
            f"{type(forecasts).__name__}."
        )
    if isinstance(forecasts.columns, pd.MultiIndex):  # wide with intervals: (output, series) columns
        frame = _wide_to_long(forecasts, cols)
    elif cols.id_col in forecasts.columns:
        if cols.time_col not in forecasts.columns:
            raise InvalidInputError(
                f"forecasts has the id column {cols.id_col!r} but no time column {cols.time_col!r}; it has "
                f"{list(forecasts.columns)}. Name yours with columns=Columns(time_col=...)."
            )
        frame = forecasts
    elif kind == "wide" and cols.pred_col not in forecasts.columns:  # wide point forecasts
        frame = _wide_to_long(pd.concat({cols.pred_col: forecasts}, axis=1), cols)
    else:  # one series: indexed by time, the outputs as columns
        if ids is not None and len(ids) != 1:
            raise InvalidInputError(
                f"forecasts is one series (no {cols.id_col!r} column) but history has {len(ids)}; pass the "
                "frame predict returned for this history."
            )
        uid = UNNAMED_SERIES_ID if ids is None else ids[0]
        frame = forecasts.rename_axis(cols.time_col).reset_index().assign(**{cols.id_col: uid})
    if cols.pred_col not in frame.columns:
        raise InvalidInputError(
            f"forecasts lacks the point forecast column {cols.pred_col!r}; it has {list(frame.columns)}. "
            f"Pass the frame predict returned, or name the column with columns=Columns(pred_col=...)."
        )
    if frame.empty:
        raise InvalidInputError("forecasts is empty: it has no rows to draw.")
    if (twice := frame.duplicated([cols.id_col, cols.time_col])).any():
        first = frame.loc[twice].iloc[0]
        raise InvalidInputError(
            f"forecasts has {int(twice.sum())} duplicate ({cols.id_col}, {cols.time_col}) row(s), first in "
            f"series {first[cols.id_col]!r} at {first[cols.time_col]}; draw one forecast per series (one "
            "model, one window) at a time."
        )
    if ids is not None and len(unknown := pd.Index(pd.unique(frame[cols.id_col])).difference(ids)):
        raise InvalidInputError(
            f"forecasts has {len(unknown)} series that history lacks: {unknown[:5].tolist()}; history has "
            f"{list(ids[:5])}{'...' if len(ids) > 5 else ''}. Pass the history these forecasts continue."
        )
    return frame


def _wide_to_long(frame: pd.DataFrame, cols: Columns) -> pd.DataFrame:
    """A frame with column levels (output, series) as a long frame; rows without a point dropped."""
    outputs, series = (list(pd.unique(frame.columns.get_level_values(k))) for k in (0, 1))
    parts = [
        pd.DataFrame(
            {
                cols.id_col: [sid] * len(frame),
                cols.time_col: frame.index,
                **{out: frame[(out, sid)].to_numpy() for out in outputs if (out, sid) in frame.columns},
            }
        )
        for sid in series
    ]
    long = pd.concat(parts, ignore_index=True)
    return long.dropna(subset=[cols.pred_col]) if cols.pred_col in long.columns else long


def _chosen_ids(future: pd.DataFrame, past, ids, max_series: int, cols: Columns) -> list:
    """The series to draw: ``ids``, or the first ``max_series`` with forecasts in history order."""
    forecast_ids = pd.unique(future[cols.id_col])
    if ids is not None:
        ids = [ids] if np.ndim(ids) == 0 else list(ids)
        if not ids or (missing := [i for i in ids if i not in set(forecast_ids)]):
            raise InvalidInputError(
                f"ids must name series with forecasts; {missing if ids else 'ids is empty'}: none in "
                f"forecasts, which has {list(forecast_ids[:5])}{'...' if len(forecast_ids) > 5 else ''}."
            )
        return ids
    order = (
        forecast_ids if past is None else [i for i in pd.unique(past[cols.id_col]) if i in set(forecast_ids)]
    )
    if len(order) > max_series:
        logger.info("drawing %d of %d series (max_series=%d)", max_series, len(order), max_series)
    return list(order[:max_series])


def _x(values):
    """Time stamps matplotlib can draw: periods become their start times."""
    if isinstance(values.dtype, pd.PeriodDtype):
        return values.dt.to_timestamp()
    return values
