"""A long panel read from a parquet dataset (a file, or a folder of files) in record batches.

pandas would first build the whole long frame (series ids as Python strings, tens of bytes a row)
and then split it. Here pyarrow reads record batches of the three columns only; ids become integer
codes as they arrive, and the panel is built from three compact arrays filled batch by batch:
int32 codes, int64 time stamps and float64 values (20 bytes a row; a clean dataset then keeps only
the values, :func:`tsforecast.data.long_layout.compact_arrays`). A folder may be partitioned by
series in the hive style (``unique_id=s001/part-0.parquet``): the partition key is read as the id
column. Every check of :func:`tsforecast.data.panel.to_panel` applies to each series, and its errors
name the series.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tsforecast.exceptions import InvalidInputError

__all__ = [
    "BATCH_ROWS",
    "LongColumns",
    "is_long_parquet",
    "is_parquet_source",
    "parquet_row_count",
    "parquet_time_kind",
    "read_parquet_columns",
    "read_parquet_series",
]

BATCH_ROWS = 1 << 20  # rows per record batch: bounds the memory of one step of the reading


def is_parquet_source(y) -> bool:
    """Whether ``y`` names a parquet dataset (a path: a ``.parquet`` file or a folder)."""
    return isinstance(y, (str, os.PathLike))


def _dataset(source, columns):
    import pyarrow.dataset as ds

    path = Path(source)
    if path.is_file() and path.suffix.lower() not in (".parquet", ".pq"):
        raise InvalidInputError(
            f"{str(path)!r}: a path given as the data must be a parquet file (.parquet) or a folder of "
            "them; read other files with pandas first (pd.read_csv) and pass the frame."
        )
    if not path.exists():
        raise InvalidInputError(f"{str(path)!r}: no such parquet file or folder.")
    try:
        dataset = ds.dataset(path, format="parquet", partitioning="hive")
    except Exception as error:  # pyarrow's errors for a file that is not parquet
        raise InvalidInputError(f"{str(path)!r} cannot be read as parquet: {error}") from None
    needed = [columns.id_col, columns.time_col, columns.target_col]
    absent = [c for c in needed if c not in dataset.schema.names]
    if absent:
        raise InvalidInputError(
            f"the parquet dataset {str(path)!r} lacks column(s) {absent}; it has {dataset.schema.names}. "
            "Rename them or pass id_col=/time_col=/target_col=."
        )
    return dataset, needed


def is_long_parquet(source, id_col: str) -> bool:
    """Whether ``source`` is a parquet file or folder whose columns include ``id_col`` (long layout)."""
    import pyarrow.dataset as ds

    path = Path(source)
    if not (path.is_dir() or path.suffix.lower() in (".parquet", ".pq")) or not path.exists():
        return False
    try:
        return id_col in ds.dataset(path, format="parquet", partitioning="hive").schema.names
    except Exception:  # not parquet: the caller's reader says why
        return False


def parquet_time_kind(source, columns) -> str | None:
    """``"datetime"`` or ``"integer"``: the kind of the dataset's time column (from its schema)."""
    import pyarrow as pa

    dataset, _ = _dataset(source, columns)
    kind = dataset.schema.field(columns.time_col).type
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        return "datetime"
    return "integer" if pa.types.is_integer(kind) else None


def parquet_row_count(source, columns) -> int:
    """The number of rows of the dataset (from the files' metadata: nothing is read)."""
    dataset, _ = _dataset(source, columns)
    return dataset.count_rows()


def _until_filter(dataset, columns, until):
    """The pyarrow expression that keeps the rows at or before the time stamp ``until``."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    kind = dataset.schema.field(columns.time_col).type
    if not (pa.types.is_timestamp(kind) or pa.types.is_date(kind)):
        raise InvalidInputError(
            f"the time column {columns.time_col!r} holds {kind}, not time stamps: the rows cannot be cut "
            f"at {until}."
        )
    zone = getattr(kind, "tz", None)
    stamp = pd.Timestamp(until)
    if zone is not None:
        stamp = stamp.tz_localize(zone) if stamp.tzinfo is None else stamp.tz_convert(zone)
    elif stamp.tzinfo is not None:
        stamp = stamp.tz_localize(None)
    # Compared in nanoseconds, whatever the column's unit (dates included).
    unit = pa.timestamp("ns", tz=zone)
    return ds.field(columns.time_col).cast(unit) <= pa.scalar(stamp.value, type=unit)


@dataclass
class LongColumns:
    """A long dataset as whole columns: each row's series code, time stamp and value.

    ``ids`` are sorted and ``codes`` index them; ``times`` are int64 in the units of ``time_dtype``
    (``datetime64[unit]``, UTC when ``zone`` is set, or int64); rows are in the file's order.
    """

    ids: np.ndarray
    codes: np.ndarray
    times: np.ndarray
    values: np.ndarray
    time_dtype: np.dtype
    zone: object
    time_name: str

    def series(self) -> list:
        """One ``(id, time index, values)`` per series, ids sorted, times sorted within each."""
        order = np.lexsort((self.times, self.codes))
        bounds = np.searchsorted(self.codes[order], np.arange(len(self.ids) + 1))
        series = []
        for k, series_id in enumerate(self.ids):
            rows = order[bounds[k] : bounds[k + 1]]
            stamps = self.times[rows]
            if self.time_dtype.kind != "M":
                index = pd.Index(stamps, name=self.time_name)
            else:
                index = pd.DatetimeIndex(stamps.view(self.time_dtype), name=self.time_name)
                index = index.tz_localize("UTC").tz_convert(self.zone) if self.zone else index
            series.append((series_id, index, self.values[rows]))
        return series


def _batch_codes(ids, lookup: dict) -> np.ndarray:
    """Each row's series code; ``lookup`` maps the ids seen so far to their codes and grows.

    The ids are dictionary-encoded by pyarrow first, so only each batch's distinct ids become Python
    objects, not one per row.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if not pa.types.is_dictionary(ids.type):  # a hive partition key may come encoded already
        ids = pc.dictionary_encode(ids)
    inverse = ids.indices.to_numpy(zero_copy_only=False)
    present = np.flatnonzero(np.bincount(inverse, minlength=len(ids.dictionary)))
    names = ids.dictionary.take(pa.array(present)).to_numpy(zero_copy_only=False)
    local = np.full(len(ids.dictionary), -1, dtype=np.int32)
    local[present] = [lookup.setdefault(name, len(lookup)) for name in names]
    return local[inverse]


def read_parquet_series(source, columns, batch_rows: int = BATCH_ROWS) -> list:
    """The dataset's series as ``(id, time index, values)``, ids sorted, times sorted per series."""
    return read_parquet_columns(source, columns, batch_rows).series()


def read_parquet_columns(source, columns, batch_rows: int = BATCH_ROWS, until=None) -> LongColumns:
    """The dataset's rows as :class:`LongColumns`, read in record batches into preallocated arrays.

    With ``until`` (a time stamp), only the rows at or before it are read: the filter is applied as
    each record batch is read, so the rows after it never take memory.

    Raises
    ------
    InvalidInputError
        A path that is not a parquet file or folder, missing columns, rows without a series id, a
        time column that is neither time stamps nor integers.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    dataset, needed = _dataset(source, columns)
    time_type = dataset.schema.field(columns.time_col).type
    zone = getattr(time_type, "tz", None)
    unit = getattr(time_type, "unit", "s")  # kept, as pandas keeps it (dates: seconds)
    if not (
        pa.types.is_timestamp(time_type) or pa.types.is_date(time_type) or pa.types.is_integer(time_type)
    ):
        raise InvalidInputError(
            f"the time column {columns.time_col!r} of {str(source)!r} holds {time_type}; it must hold time "
            "stamps, dates or integers."
        )
    keep = None if until is None else _until_filter(dataset, columns, until)
    n_rows = dataset.count_rows(filter=keep)
    if not n_rows:
        after = "" if until is None else f" at or before {until}"
        raise InvalidInputError(f"the parquet dataset {str(source)!r} holds no rows{after}.")
    codes, times = np.empty(n_rows, dtype=np.int32), np.empty(n_rows, dtype=np.int64)
    values = np.empty(n_rows, dtype=np.float64)
    lookup: dict = {}
    at = 0
    for batch in dataset.to_batches(columns=needed, filter=keep, batch_size=batch_rows):
        ids, stamps, target = (batch.column(k) for k in range(3))
        if ids.null_count:
            raise InvalidInputError(
                f"the parquet dataset {str(source)!r} has {ids.null_count} row(s) without a series id "
                f"(null in {columns.id_col!r}); give every row its series' id."
            )
        rows = slice(at, at + batch.num_rows)
        codes[rows] = _batch_codes(ids, lookup)
        if pa.types.is_integer(time_type):
            times[rows] = pc.cast(stamps, pa.int64()).to_numpy(zero_copy_only=False)
        else:
            stamps = pc.cast(stamps, pa.timestamp(unit, tz=zone))
            times[rows] = stamps.to_numpy(zero_copy_only=False).view(np.int64)
        values[rows] = pc.cast(target, pa.float64()).to_numpy(zero_copy_only=False)
        at += batch.num_rows
    # Codes in sorted id order, as a pandas long frame gives them.
    names = np.array(list(lookup), dtype=object)
    by_name = np.argsort(names, kind="stable")
    rank = np.empty(len(names), dtype=np.int32)
    rank[by_name] = np.arange(len(names), dtype=np.int32)
    for start in range(0, n_rows, batch_rows):
        codes[start : start + batch_rows] = rank[codes[start : start + batch_rows]]
    time_dtype = np.dtype(np.int64) if pa.types.is_integer(time_type) else np.dtype(f"M8[{unit}]")
    return LongColumns(names[by_name], codes, times, values, time_dtype, zone, columns.time_col)
