"""The panel back to pandas: its history as a long frame, forecasts in the caller's layout.

:func:`from_panel` answers in the layout the caller gave (a Series, a wide or a long frame);
:func:`long_forecast_blocks` yields a long panel's forecasts a block of series at a time, so a
writer can stream millions of series to parquet.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tsforecast.data.frequency import future_index
from tsforecast.data.long_layout import SeriesIndexes
from tsforecast.data.panel import Panel

__all__ = ["FORECAST_BLOCK_SERIES", "from_panel", "long_forecast_blocks", "to_long"]

FORECAST_BLOCK_SERIES = 50_000  # series per block of long_forecast_blocks (1.2 M rows at horizon 24)


def from_panel(panel: Panel, point: np.ndarray, extra: dict | None = None):
    """Turn forecasts back into the caller's pandas layout.

    Parameters
    ----------
    panel : Panel
        The history the forecasts continue.
    point : np.ndarray of shape (n_series, horizon)
        Point forecasts.
    extra : dict of str -> np.ndarray of shape (n_series, horizon), optional
        More forecast columns (quantiles, interval bounds). A long frame gets them beside the point
        forecasts; a Series history gives a frame indexed by time with the point column and these;
        a wide history a frame with two column levels: the output (the point column first), then
        the series.
    """
    point = np.asarray(point, dtype=np.float64)
    horizon = point.shape[1]
    layout = panel.layout
    if layout.kind == "long":  # one block of every series
        return next(long_forecast_blocks(panel, point, extra, block=max(panel.n_series, 1)))
    futures = [future_index(index[-1], panel.freq, horizon) for index in panel.index]
    outputs = {layout.columns.pred_col: point, **(extra or {})}
    if layout.kind == "series":
        if not extra:
            return pd.Series(point[0], index=futures[0], name=layout.name)
        return pd.DataFrame(
            {name: np.asarray(v, dtype=np.float64)[0] for name, v in outputs.items()}, index=futures[0]
        )
    if layout.kind == "wide":
        frames = {}
        for name, values in outputs.items():
            values = np.asarray(values, dtype=np.float64)
            frame = pd.DataFrame(
                {sid: pd.Series(values[i], index=futures[i]) for i, sid in enumerate(panel.ids)}
            )
            frame.columns = layout.column_index
            frames[name] = frame
        return frames[layout.columns.pred_col] if not extra else pd.concat(frames, axis=1)
    raise ValueError(f"unknown layout {layout.kind!r}")


def long_forecast_blocks(panel: Panel, point, extra: dict | None = None, block: int | None = None):
    """The long forecast frame of a long ``panel``, ``block`` series at a time (a generator).

    Concatenated, the blocks equal ``from_panel(panel, point, extra)``; a writer that appends them
    one by one never holds the forecasts of the whole panel as one frame. ``block`` defaults to
    :data:`FORECAST_BLOCK_SERIES`.
    """
    block = block or FORECAST_BLOCK_SERIES
    if panel.layout.kind != "long":
        raise ValueError(f"long_forecast_blocks takes a long panel, not a {panel.layout.kind!r} one")
    horizon = np.shape(point)[1]
    for start in range(0, max(panel.n_series, 1), block):
        rows = slice(start, start + block)
        if isinstance(panel.index, SeriesIndexes):
            index = panel.index.block(rows)
            times = index.future(horizon)
        else:
            index = panel.index[rows]
            times = _concat_indexes([future_index(stamps[-1], panel.freq, horizon) for stamps in index])
        part = Panel(panel.ids[rows], panel.values[rows], index, panel.freq, panel.layout)
        columns = {name: np.asarray(values)[rows] for name, values in (extra or {}).items()}
        yield _long_frame(part, times, np.asarray(point)[rows], columns)


def _long_frame(panel: Panel, times, point: np.ndarray, extra: dict | None) -> pd.DataFrame:
    """The long forecast frame: ``times`` are the future stamps of every series, one after another."""
    cols, horizon = panel.layout.columns, point.shape[1]
    ids = panel.long_ids
    frame = pd.DataFrame(
        {
            cols.id_col: np.repeat(np.asarray(ids, dtype=object), horizon),
            cols.time_col: times,
            cols.pred_col: point.ravel(),
        }
    )
    for name, values in (extra or {}).items():
        frame[name] = np.asarray(values, dtype=np.float64).ravel()
    return frame


def to_long(panel: Panel) -> pd.DataFrame:
    """The panel's history as a long frame (``unique_id``, ``ds``, ``y``; an unnamed series is "series")."""
    cols = panel.layout.columns
    ids = panel.long_ids
    return pd.DataFrame(
        {
            cols.id_col: np.repeat(np.asarray(ids, dtype=object), panel.lengths),
            cols.time_col: _concat_indexes(panel.index),
            cols.target_col: np.concatenate(panel.values) if panel.values else [],
        }
    )


def _concat_indexes(indexes: list) -> np.ndarray | pd.Index:
    if not indexes:
        return np.array([])
    return indexes[0].append(list(indexes[1:])) if len(indexes) > 1 else indexes[0]
