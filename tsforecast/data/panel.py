"""The internal panel form: validated pandas in, pandas of the same family out.

Three input layouts are accepted and remembered so forecasts come back the same way:

* ``"series"``: a ``pd.Series`` (or 1-D array) indexed by time -> a ``pd.Series`` of forecasts;
* ``"wide"``: a ``pd.DataFrame`` (or 2-D array) with one column per series and a shared time index
  -> a wide frame indexed by the future time stamps (leading/trailing NaN in a column mark a series
  that starts late or ends early and are trimmed);
* ``"long"``: a ``pd.DataFrame`` with columns ``unique_id``, ``ds``, ``y`` (names configurable),
  series of different lengths -> a long frame ``unique_id``, ``ds``, ``y_pred``.

Rows of a long frame may come in any order: they are sorted by series and time stamp. A Series or
wide index must already be increasing. Missing values inside a series follow the ``missing`` policy
(:data:`MISSING_POLICIES`); they are never filled silently. An unnamed ``pd.Series`` has the id None
(messages call it "the unnamed series"; :func:`to_long` writes it as ``"series"``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import sparse

from tsforecast.data.frequency import index_kind, infer_frequency
from tsforecast.data.labels import UNNAMED_SERIES_ID, series_label
from tsforecast.data.long_layout import (
    SeriesIndexes,
    as_time_column,
    check_long_columns,
    compact_arrays,
    compact_long,
    split_long,
)
from tsforecast.data.parquet import is_parquet_source, parquet_time_kind, read_parquet_columns
from tsforecast.exceptions import InvalidInputError

MISSING_POLICIES = {
    "error": "reject interior NaN with an error naming the series and time stamp",
    "interpolate": "fill interior NaN by linear interpolation in time order",
    "keep": "keep interior NaN (models that mask missing targets use this)",
}


@dataclass(frozen=True)
class Columns:
    """Column names of the long layout."""

    id_col: str = "unique_id"
    time_col: str = "ds"
    target_col: str = "y"
    pred_col: str = "y_pred"


@dataclass(frozen=True)
class Layout:
    """What the caller gave, so :func:`from_panel` can answer in the same shape."""

    kind: str  # "series", "wide" or "long"
    columns: Columns = field(default_factory=Columns)
    name: object = None  # the Series name (series layout)
    column_index: pd.Index | None = None  # the wide column order (wide layout)


@dataclass(frozen=True)
class Panel:
    """A validated collection of univariate series.

    Attributes
    ----------
    ids : list
        Series identifiers, in output order.
    values : list of np.ndarray
        One float64 array per series (NaN only where the ``missing`` policy kept them).
    index : list of pd.Index
        One time index per series, aligned with ``values``.
    freq : pd.DateOffset or int
        Shared frequency (an integer step for integer indexes).
    layout : Layout
        How the caller laid the data out.
    """

    ids: list
    values: list
    index: list
    freq: object
    layout: Layout

    @property
    def n_series(self) -> int:
        """Number of series."""
        return len(self.ids)

    @property
    def long_ids(self) -> list:
        """The ids as long frames name the series (an unnamed series is ``"series"``)."""
        return [UNNAMED_SERIES_ID if sid is None else sid for sid in self.ids]

    @property
    def lengths(self) -> np.ndarray:
        """Length of every series (observations and missing steps), in the order of ``ids``."""
        return np.array([len(v) for v in self.values], dtype=np.int64)

    def digest(self) -> str:
        """A blake2b digest of the series: ids, frequency, values and first time stamps (hex)."""
        digest = hashlib.blake2b(digest_size=16)
        digest.update(repr([str(i) for i in self.ids]).encode())
        digest.update(repr(self.freq).encode())
        if isinstance(self.index, SeriesIndexes):  # no index built per series
            firsts = self.index.first_stamps()
        else:
            firsts = [index[0] if len(index) else None for index in self.index]
        for values, first in zip(self.values, firsts, strict=True):
            digest.update(np.ascontiguousarray(values, dtype=np.float64))  # its buffer: no copy
            digest.update(str(first).encode() if len(values) else b"")
        return digest.hexdigest()

    def replace_values(self, values: list) -> Panel:
        """A panel with the same ids, indexes and layout but new (same-length) values."""
        return Panel(self.ids, values, self.index, self.freq, self.layout)

    def replace_layout(self, layout: Layout) -> Panel:
        """The same series, answered in another layout."""
        return Panel(self.ids, self.values, self.index, self.freq, layout)

    def head(self, n_drop_last: int) -> Panel:
        """The panel without the last ``n_drop_last`` points of every series."""
        end = slice(None, -n_drop_last if n_drop_last else None)
        if isinstance(self.index, SeriesIndexes):  # still no time stamp per step
            index = self.index.head(n_drop_last)
        else:
            index = [i[end] for i in self.index]
        return Panel(self.ids, [v[end] for v in self.values], index, self.freq, self.layout)

    def tail(self, n: int) -> Panel:
        """The panel of the last ``n`` points of every series."""
        if isinstance(self.index, SeriesIndexes):
            index = self.index.tail(n)
        else:
            index = [i[len(i) - min(n, len(i)) :] for i in self.index]
        values = [v[len(v) - min(n, len(v)) :] for v in self.values]
        return Panel(self.ids, values, index, self.freq, self.layout)

    def select(self, positions) -> Panel:
        """The panel of the series at ``positions`` (integers, in that order)."""
        positions = [int(k) for k in positions]
        if isinstance(self.index, SeriesIndexes):
            index = self.index.take(positions)
        else:
            index = [self.index[k] for k in positions]
        ids, values = [self.ids[k] for k in positions], [self.values[k] for k in positions]
        return Panel(ids, values, index, self.freq, self.layout)


def to_panel(y, *, freq=None, columns: Columns | None = None, missing: str = "error") -> Panel:
    """Validate ``y`` and convert it to a :class:`Panel`.

    Parameters
    ----------
    y : pd.Series, pd.DataFrame, np.ndarray, path or Panel
        One series, a wide frame, or a long frame (see the module docstring); or the path of a
        parquet file or folder in the long layout, read in record batches
        (:mod:`tsforecast.data.parquet`); or a panel validated before, only re-checked under
        ``missing`` (so a dataset read once is not read again).
    freq : str, pd.DateOffset or int, optional
        Frequency of the time index. Inferred from the time stamps when omitted.
    columns : Columns, optional
        Column names of the long layout.
    missing : {"error", "interpolate", "keep"}
        Policy for NaN inside a series (see :data:`MISSING_POLICIES`).

    Raises
    ------
    InvalidInputError
        Naming the series and the problem: empty input, missing columns, rows without a series id,
        duplicated series columns, non-numeric or infinite values, duplicated or unsorted time
        stamps, irregular spacing, all-NaN series, time zones that differ within or across series,
        interior NaN under ``missing="error"``.

    Examples
    --------
    >>> import pandas as pd
    >>> panel = to_panel(pd.Series([1.0, 2.0, 3.0]))
    >>> panel.ids, panel.freq
    ([None], 1)
    """
    if missing not in MISSING_POLICIES:
        raise InvalidInputError(f"missing must be one of {sorted(MISSING_POLICIES)}; got {missing!r}.")
    columns = columns or Columns()
    if sparse.issparse(y):
        raise InvalidInputError(
            f"sparse input is not supported (got {type(y).__name__}); pass a dense pandas Series or "
            "DataFrame, or convert it with y.toarray()."
        )
    if isinstance(y, Panel):
        return conform_missing(y, missing)
    if isinstance(y, (np.ndarray, list)):
        y = _array_to_pandas(y)
    if is_parquet_source(y):  # read in record batches, never as one pandas frame
        return read_parquet_panel(y, columns=columns, freq=freq, missing=missing)
    if isinstance(y, pd.Series):
        layout = Layout("series", columns, name=y.name)
        raw = [(y.name, y.index, y.to_numpy())]
    elif isinstance(y, pd.DataFrame):
        if y.shape[1] == 0:
            raise InvalidInputError(
                f"y is empty, with no series columns: 0 feature(s) (shape={y.shape}) while a minimum "
                "of 1 is required."
            )
        if y.empty:
            raise InvalidInputError(f"y is empty: it has no rows (shape={y.shape}).")
        if columns.id_col in y.columns or columns.time_col in y.columns:
            layout = Layout("long", columns)
            check_long_columns(y, columns)
            compact = compact_long(y, columns, freq)
            if compact is not None:  # a clean frame, checked as whole columns
                return Panel(*compact, layout)
            raw = split_long(y, columns)
        else:
            _check_unique_columns(y.columns)
            layout = Layout("wide", columns, column_index=y.columns)
            raw = [(col, y.index, y[col].to_numpy()) for col in y.columns]
    else:
        raise InvalidInputError(
            f"y must be a pandas Series, a wide or long DataFrame, a numpy array or the path of a parquet "
            f"file or folder; got {type(y).__name__}."
        )
    return _checked_panel(raw, layout, freq, missing)


def read_parquet_panel(source, *, columns: Columns | None = None, freq=None, missing="error", until=None):
    """A parquet file or folder in the long layout as a :class:`Panel`, read in record batches.

    :func:`to_panel` of a path; with ``until`` (a time stamp), only the rows at or before it are read
    (:func:`tsforecast.data.parquet.read_parquet_columns`), so a pipeline's as-of cut never loads
    the rows after it.
    """
    columns = columns or Columns()
    layout = Layout("long", columns)
    read = read_parquet_columns(source, columns, until=until)
    if read.zone is None:
        compact = compact_arrays(
            read.codes, read.ids, read.times, read.values, read.time_dtype, read.time_name, freq
        )
        if compact is not None:  # a clean dataset, checked as whole columns
            return Panel(*compact, layout)
    return _checked_panel(read.series(), layout, freq, missing)


def _checked_panel(raw: list, layout: Layout, freq, missing: str) -> Panel:
    """The panel of ``(id, index, values)`` triples, each series checked on its own."""
    if not raw or all(len(v) == 0 for _, _, v in raw):
        raise InvalidInputError("y is empty: it holds no observations.")
    ids, values, indexes = [], [], []
    for series_id, index, data in raw:
        index, data = _clean_series(series_id, index, data, missing, sort=layout.kind == "long")
        ids.append(series_id)
        values.append(data)
        indexes.append(index)
    return Panel(ids, values, indexes, _shared_frequency(ids, indexes, freq), layout)


def check_min_length(panel: Panel, min_length: int, needed_by: str) -> None:
    """Raise if a series has fewer than ``min_length`` observations."""
    lengths = panel.lengths
    short = np.flatnonzero(lengths < min_length)
    if len(short):
        first = short[0]
        raise InvalidInputError(
            f"{series_label(panel.ids[first])} has {lengths[first]} observations but {needed_by} needs at "
            f"least {min_length} ({len(short)} series are too short). Drop them or lower the setting."
        )


def conform_missing(panel: Panel, missing: str) -> Panel:
    """``panel`` under another ``missing`` policy (an error, or interpolated gaps, or as it is).

    A panel validated with ``missing="keep"`` may hold interior NaN; a forecaster that rejects them
    re-checks a panel it is given with its own policy instead of re-validating pandas input.
    """
    if missing == "keep" or not any(np.isnan(v).any() for v in panel.values):
        return panel
    values = [
        _handle_gaps(sid, ix, v, missing)
        for sid, ix, v in zip(panel.ids, panel.index, panel.values, strict=True)
    ]
    return panel.replace_values(values)


def time_axis_kind(y, columns: Columns | None = None) -> str | None:
    """The kind of time axis (``"datetime"``, ``"period"``, ``"integer"``) of raw input, or None.

    Lets a fitted model tell whether new history uses the same kind of time stamps as its training
    data (and so can reuse the training frequency) before converting it.
    """
    columns = columns or Columns()
    if is_parquet_source(y):
        return parquet_time_kind(y, columns)
    if isinstance(y, pd.DataFrame) and (columns.id_col in y.columns or columns.time_col in y.columns):
        if columns.time_col not in y.columns:
            return None
        try:
            times = as_time_column(y[columns.time_col])
        except InvalidInputError:
            return None
    elif isinstance(y, (pd.Series, pd.DataFrame)):
        times = y.index
    else:
        return "integer"  # arrays get a RangeIndex
    try:
        return index_kind(times)
    except InvalidInputError:
        return None


def _array_to_pandas(y):
    array = np.asarray(y)
    if array.dtype.kind == "c":
        raise InvalidInputError(
            "y holds complex numbers: Complex data not supported; forecasts need real values."
        )
    if array.dtype.kind == "f" and np.isnan(array).any():
        # Without a time index a NaN cannot mark a late start or an early end, so it is an error here.
        row, *column = np.argwhere(np.isnan(array))[0]
        where = f"row {row}" + (f", column {column[0]}" if column else "")
        raise InvalidInputError(
            f"y as a numpy array contains NaN (first at {where}); an array has no time index to place a "
            "late-starting series, so fill the NaN or pass a pandas DataFrame indexed by time."
        )
    if array.ndim == 1:
        return pd.Series(array)
    if array.ndim == 2:
        return pd.DataFrame(array)
    raise InvalidInputError(f"y as an array must be 1-D or 2-D; got shape {array.shape}.")


def _check_unique_columns(columns: pd.Index) -> None:
    if columns.has_duplicates:
        duplicated = list(dict.fromkeys(columns[columns.duplicated()]))
        raise InvalidInputError(
            f"the wide frame has duplicated column name(s) {duplicated[:5]}; each column is one series "
            "and needs its own name. Rename or drop the duplicates."
        )


def _clean_series(series_id, index, data, missing: str, sort: bool):
    index = pd.Index(index)
    if isinstance(index, pd.MultiIndex):
        raise InvalidInputError(
            f"{series_label(series_id)}: a MultiIndex time axis is not supported; use the long layout."
        )
    index_kind(index)
    data = _as_float(series_id, data)
    if sort and not index.is_monotonic_increasing:
        order = np.argsort(np.asarray(index), kind="stable")
        index, data = index[order], data[order]
    duplicated = index.duplicated()
    if duplicated.any():
        raise InvalidInputError(
            f"{series_label(series_id)} has duplicated time stamp {index[duplicated][0]}; "
            "aggregate or drop duplicates."
        )
    if not index.is_monotonic_increasing:
        position = int(np.flatnonzero(np.asarray(index[1:] < index[:-1]))[0])
        raise InvalidInputError(
            f"{series_label(series_id)}: time stamps are not sorted ({index[position]} comes before "
            f"{index[position + 1]}); sort the index with .sort_index()."
        )
    if np.isinf(data).any():
        raise InvalidInputError(
            f"{series_label(series_id)} contains infinite values (first at {index[np.isinf(data)][0]}); "
            "replace them with NaN or finite values."
        )
    observed = np.flatnonzero(~np.isnan(data))
    if len(observed) == 0:
        raise InvalidInputError(f"{series_label(series_id)} has only NaN values; drop it.")
    keep = slice(observed[0], observed[-1] + 1)  # leading/trailing NaN: a late start or an early end
    index, data = index[keep], data[keep]
    return index, _handle_gaps(series_id, index, data, missing)


def _handle_gaps(series_id, index, data: np.ndarray, missing: str) -> np.ndarray:
    gaps = np.isnan(data)
    if gaps.any():
        if missing == "error":
            raise InvalidInputError(
                f"{series_label(series_id)} has {int(gaps.sum())} missing value(s) inside it (first at "
                f"{index[gaps][0]}). Fill them before fitting (for example "
                "y.interpolate(limit_area='inside'), per series for a long frame), or use a forecaster that "
                "accepts missing values (the recurrent ones mask them out of the loss)."
            )
        if missing == "interpolate":
            positions = np.arange(len(data))
            data = data.copy()
            data[gaps] = np.interp(positions[gaps], positions[~gaps], data[~gaps])
    return data


def _as_float(series_id, data) -> np.ndarray:
    array = np.asarray(data)
    if array.dtype.kind == "c":
        raise InvalidInputError(
            f"{series_label(series_id)} holds complex numbers: Complex data not supported; "
            "forecasts need real values."
        )
    if array.dtype.kind in "biuf":
        return array.astype(np.float64)
    numeric = pd.to_numeric(pd.Series(array), errors="coerce").to_numpy(dtype=np.float64)
    bad = pd.isna(numeric) & ~pd.isna(pd.Series(array)).to_numpy()
    if bad.any():
        raise InvalidInputError(
            f"{series_label(series_id)} holds non-numeric values (for example {array[bad][0]!r}); "
            "convert the target to numbers."
        )
    return numeric


def _shared_frequency(ids: list, indexes: list, freq):
    kinds = {index_kind(index) for index in indexes}
    if len(kinds) > 1:
        raise InvalidInputError(f"all series need the same kind of time index; got {sorted(kinds)}.")
    reference = freq
    if reference is None:
        longest = int(np.argmax([len(index) for index in indexes]))
        reference = infer_frequency(indexes[longest], ids[longest])
    for series_id, index in zip(ids, indexes, strict=True):
        infer_frequency(index, series_id, reference)
    return infer_frequency(indexes[0], ids[0], reference)
