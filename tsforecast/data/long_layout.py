"""The long layout (``unique_id``, ``ds``, ``y`` rows): its columns, and its series split out.

:func:`split_long` cuts the frame into one ``(id, times, values)`` triple per series for the
series-by-series validation of :func:`tsforecast.data.panel.to_panel`. A clean frame skips that
(at 100,000 series it costs seconds of interpreter work and leaves ~100 bytes of allocator fragments
per time step behind the small per-series arrays): :func:`compact_long` does the same checks as
whole-column numpy operations and keeps one float64 array of values (each series a view of it) and
one array of time stamps (:class:`SeriesIndexes` hands out each series' ``pd.Index`` on demand,
without copying).

It takes only the common clean case: a numeric target without NaN or infinity, time stamps that are
tz-naive datetimes or integers, every row labelled, no duplicated time stamp, and a fixed step
(hours, minutes, days, integers) shared by every series. For anything else it answers None and
:func:`tsforecast.data.panel.to_panel` validates series by series, with the same messages.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from tsforecast.data.frequency import infer_frequency
from tsforecast.data.labels import series_label
from tsforecast.exceptions import InvalidInputError

__all__ = [
    "SeriesIndexes",
    "as_time_column",
    "check_long_columns",
    "compact_arrays",
    "compact_long",
    "split_long",
]


class SeriesIndexes(Sequence):
    """The time index of every series, made on demand from its first stamp and the shared step.

    Behaves as a list of ``pd.Index`` (indexing, iteration, ``len``). Series ``k`` has ``lengths[k]``
    stamps ``firsts[k] + step * (0, 1, ...)`` (integers in the time column's units), so the panel holds
    no time stamp per step.
    """

    def __init__(self, firsts: np.ndarray, lengths: np.ndarray, step: int, dtype: np.dtype, name=None):
        self.firsts, self.lengths, self.step, self.dtype, self.name = firsts, lengths, step, dtype, name

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, k):
        if isinstance(k, slice):
            return [self[i] for i in range(*k.indices(len(self)))]
        k = range(len(self))[k]  # negative positions, and an IndexError past the end
        stamps = self.firsts[k] + self.step * np.arange(self.lengths[k], dtype=np.int64)
        stamps = stamps.view(self.dtype) if self.dtype.kind == "M" else stamps.astype(self.dtype)
        return pd.Index(stamps, name=self.name, copy=False)

    def block(self, rows: slice) -> SeriesIndexes:
        """The indexes of the series ``rows`` (a slice), still without a stamp per step."""
        return SeriesIndexes(self.firsts[rows], self.lengths[rows], self.step, self.dtype, self.name)

    def first_stamps(self) -> pd.Index:
        """Every series' first time stamp."""
        firsts = self.firsts.view(self.dtype) if self.dtype.kind == "M" else self.firsts.astype(self.dtype)
        return pd.Index(firsts, name=self.name, copy=False)

    def take(self, positions) -> SeriesIndexes:
        """The indexes of the series at ``positions`` (integers), still without a stamp per step."""
        rows = np.asarray(positions, dtype=np.int64)
        return SeriesIndexes(self.firsts[rows], self.lengths[rows], self.step, self.dtype, self.name)

    def tail(self, n: int) -> SeriesIndexes:
        """Every series' index cut to its last ``n`` stamps."""
        lengths = np.minimum(self.lengths, n)
        firsts = self.firsts + self.step * (self.lengths - lengths)
        return SeriesIndexes(firsts, lengths, self.step, self.dtype, self.name)

    def head(self, n_drop_last: int) -> SeriesIndexes:
        """Every series' index without its last ``n_drop_last`` stamps."""
        lengths = np.maximum(self.lengths - n_drop_last, 0)
        return SeriesIndexes(self.firsts, lengths, self.step, self.dtype, self.name)

    def future(self, horizon: int) -> pd.Index:
        """The ``horizon`` stamps after each series' last, series after series (one index)."""
        last = self.firsts + self.step * (self.lengths - 1)
        stamps = (last[:, None] + self.step * np.arange(1, horizon + 1, dtype=np.int64)).ravel()
        stamps = stamps.view(self.dtype) if self.dtype.kind == "M" else stamps.astype(self.dtype)
        return pd.Index(stamps, name=self.name, copy=False)

    def __reduce__(self):  # pickles as two arrays, not as one pd.Index per series
        return SeriesIndexes, (self.firsts, self.lengths, self.step, self.dtype, self.name)


def compact_long(frame: pd.DataFrame, cols, freq=None):
    """``(ids, values, indexes, freq)`` of a clean long frame, or None when a check needs a closer look.

    ``cols`` names the columns (``id_col``, ``time_col``, ``target_col``: ``panel.Columns``).
    ``values`` is a list of float64 views of one array, ``indexes`` a :class:`SeriesIndexes`; ids
    are sorted, times sorted within each series, as the per-series validation orders them.
    """
    target, time_column = frame[cols.target_col], frame[cols.time_col]
    if target.dtype.kind not in "biuf" or not _plain_times(time_column):
        return None
    codes, uniques = _codes(frame[cols.id_col])
    if len(codes) == 0 or codes.min() < 0:
        return None
    values = target.to_numpy(dtype=np.float64)
    if np.shares_memory(values, target.to_numpy()):
        values = values.copy()  # the panel never shares memory with the caller's frame
    dtype = time_column.dtype
    times = time_column.to_numpy().view(np.int64) if dtype.kind == "M" else time_column.to_numpy()
    return compact_arrays(codes, np.asarray(uniques), times, values, dtype, time_column.name, freq)


def compact_arrays(codes, ids, times, values, dtype, time_name, freq=None):
    """:func:`compact_long` on whole columns, or None.

    Each row has its code into the sorted ``ids``, its time stamp (integers in the units of ``dtype``,
    tz-naive) and its value (float64 and owned: the panel keeps the array).
    """
    if not np.isfinite(values).all():
        return None
    if not _sorted(codes, times):
        order = np.lexsort((times, codes))
        codes, times, values = codes[order], times[order], values[order]
        if not _sorted(codes, times):  # a duplicated time stamp: the series-by-series check names it
            return None
    if np.iinfo(codes.dtype).max < len(ids):  # int8 codes and 127 ids: one more must fit
        codes = codes.astype(np.int32)
    # Probes of the codes' own type: numpy would otherwise search an int64 copy of them.
    bounds = np.searchsorted(codes, np.arange(len(ids) + 1, dtype=codes.dtype))
    used = np.diff(bounds) > 0  # a categorical's unused categories have no rows
    ids, bounds = ids[used], np.append(bounds[:-1][used], bounds[-1])
    lengths = np.diff(bounds)
    longest = int(np.argmax(lengths))
    stamps = times[bounds[longest] : bounds[longest + 1]]
    reference = pd.Index(stamps.view(dtype) if dtype.kind == "M" else stamps, name=time_name)
    freq = infer_frequency(reference, ids[longest], freq)
    step = _fixed_step(freq, dtype)
    if step is None or not _regular(times, bounds, step):
        return None
    firsts = times[bounds[:-1]].astype(np.int64)
    indexes = SeriesIndexes(firsts, lengths, step, np.dtype(dtype), time_name)
    series = [values[bounds[k] : bounds[k + 1]] for k in range(len(ids))]
    return list(ids), series, indexes, freq  # numpy scalars for numeric ids, as split_long gives them


ROWS = 1 << 22  # rows per block of the whole-column checks: bounds their temporary arrays


def _plain_times(column: pd.Series) -> bool:
    dtype = column.dtype
    return (dtype.kind == "M" and getattr(dtype, "tz", None) is None) or dtype.kind in "iu"


def _codes(ids: pd.Series):
    """Series codes in sorted id order (a categorical's own codes when its categories are sorted)."""
    if isinstance(ids.dtype, pd.CategoricalDtype) and ids.cat.categories.is_monotonic_increasing:
        return ids.cat.codes.to_numpy(), ids.cat.categories
    return pd.factorize(ids.to_numpy(), sort=True)


def _sorted(codes: np.ndarray, times: np.ndarray) -> bool:
    """Series contiguous and in id order, times strictly increasing inside each series."""
    for a in range(0, max(len(codes) - 1, 0), ROWS):
        c, t = codes[a : a + ROWS + 1], times[a : a + ROWS + 1]
        if (c[1:] < c[:-1]).any() or ((t[1:] <= t[:-1]) & (c[1:] == c[:-1])).any():
            return False
    return True


def _regular(times: np.ndarray, bounds: np.ndarray, step: int) -> bool:
    """Every step inside every series is ``step`` long."""
    first_rows = np.zeros(len(times), dtype=bool)
    first_rows[bounds[:-1]] = True  # a series' first row follows another series' last
    for a in range(0, max(len(times) - 1, 0), ROWS):
        t, starts = times[a : a + ROWS + 1], first_rows[a + 1 : a + ROWS + 1]
        if ((t[1:] - t[:-1] != step) & ~starts).any():
            return False
    return True


def _fixed_step(freq, dtype: np.dtype) -> int | None:
    """``freq`` as a whole number of the time column's units, when every step is that long."""
    if dtype.kind in "iu":
        return int(freq)
    if isinstance(freq, pd.offsets.Tick) or type(freq) is pd.offsets.Day:  # tz-naive: a day is 24 h
        unit = np.datetime_data(dtype)[0]
        return int(pd.Timedelta(freq).to_timedelta64() // np.timedelta64(1, unit))
    return None


def check_long_columns(frame: pd.DataFrame, cols) -> None:
    """Raise naming the id, time or target column the frame lacks."""
    needed = [cols.id_col, cols.time_col, cols.target_col]
    absent = [c for c in needed if c not in frame.columns]
    if absent:
        raise InvalidInputError(
            f"the long frame lacks column(s) {absent}; it has {list(frame.columns)}. "
            "Rename them or pass id_col=/time_col=/target_col=."
        )


def split_long(frame: pd.DataFrame, cols) -> list:
    """One ``(id, times, values)`` per series, ids sorted; rows without an id are an error."""
    codes, uniques = pd.factorize(frame[cols.id_col].to_numpy(), sort=True)
    if (unlabelled := codes < 0).any():
        raise InvalidInputError(
            f"the long frame has {int(unlabelled.sum())} row(s) without a series id (NaN or None in "
            f"{cols.id_col!r}; first at row {frame.index[np.argmax(unlabelled)]!r}); give every row its "
            f"series' id, or drop those rows with frame.dropna(subset=[{cols.id_col!r}])."
        )
    _check_time_zones(frame[cols.time_col], codes, uniques)
    times = as_time_column(frame[cols.time_col])
    order = np.lexsort((np.arange(len(frame)), codes))  # stable by series; time sorted per series below
    bounds = np.searchsorted(codes[order], np.arange(len(uniques) + 1))
    target = frame[cols.target_col].to_numpy()
    return [
        (uniques[k], times[order[bounds[k] : bounds[k + 1]]], target[order[bounds[k] : bounds[k + 1]]])
        for k in range(len(uniques))
    ]


def _check_time_zones(column: pd.Series, codes: np.ndarray, uniques) -> None:
    """One time zone (or none) for every time stamp of a long frame; else name the series at fault.

    A column of one dtype has one zone; only an object column can mix them.
    """
    if column.dtype != object:
        return
    zones = pd.Series([_zone(v) for v in column.to_numpy()], dtype=object)
    if zones.nunique() < 2:
        return
    fix = "convert them all with pd.to_datetime(..., utc=True), or drop the time zones (tz_localize(None))"
    stamped = zones.notna().to_numpy()
    per_series = zones[stamped].groupby(codes[stamped], sort=True).unique()
    for code, found in per_series.items():
        if len(found) > 1:
            raise InvalidInputError(
                f"{series_label(uniques[code])} mixes {' and '.join(sorted(found))} in its time stamps; "
                f"{fix}."
            )
    first, first_code = per_series.iloc[0][0], per_series.index[0]
    code = next(c for c, found in per_series.items() if found[0] != first)
    raise InvalidInputError(
        f"the series use different time zones: {series_label(uniques[first_code])} has {first} but "
        f"{series_label(uniques[code])} has {per_series[code][0]}; {fix}."
    )


def _zone(value):
    """How a time stamp is zoned, in words; None for anything that is not a time stamp (or NaT)."""
    if value is pd.NaT or not hasattr(value, "tzinfo"):
        return None
    return "naive time stamps (no time zone)" if value.tzinfo is None else f"time zone {str(value.tzinfo)!r}"


def as_time_column(column: pd.Series) -> pd.Index:
    """The time column as a ``pd.Index`` (strings and objects parsed as datetimes)."""
    if column.dtype == object:
        try:
            column = pd.to_datetime(column)
        except (ValueError, TypeError) as error:
            raise InvalidInputError(f"the time column cannot be read as time stamps: {error}") from None
    if pd.api.types.is_string_dtype(column.dtype):
        column = pd.to_datetime(column)
    return pd.Index(column)
