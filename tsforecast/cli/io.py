"""Reading and writing the frames the CLI and the pipelines exchange with files.

Files are CSV (optionally compressed: ``.csv.gz``, ``.csv.bz2``, ...) or parquet (``.parquet``,
``.pq``), in any of the three pandas layouts :func:`tsforecast.data.to_panel` accepts:

* long: columns ``unique_id``, ``ds``, ``y`` (any order, other columns kept);
* wide: a time column (``ds``, or the first column) and one column per series;
* series: a time column and a single value column (read as a one-column wide frame).

The time column is parsed to datetimes unless it holds integer steps (M4's ``ds`` counts positions),
which stay integers. :func:`write_frame` writes atomically: a temporary file in the target folder,
flushed and fsynced, then renamed over the target, so a reader never sees half a file.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import pandas as pd

from tsforecast.exceptions import InvalidInputError, InvalidParameterError

PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.xz", ".csv.zst", ".csv.zip")


def file_format(path) -> str:
    """``"parquet"`` or ``"csv"`` from the file name, or raise naming the path."""
    name = Path(path).name.lower()
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    raise InvalidInputError(
        f"{path}: unknown file type; use a name ending in one of {list(PARQUET_SUFFIXES + CSV_SUFFIXES)}."
    )


def read_frame(path, *, id_col: str = "unique_id", time_col: str = "ds") -> pd.DataFrame:
    """Read a CSV or parquet file in the long, wide or single-series layout.

    Parameters
    ----------
    path : str or os.PathLike
        The file; its suffix picks the format (see :func:`file_format`).
    id_col, time_col : str
        Column names of the series identifier and the time stamp.

    Returns
    -------
    pd.DataFrame
        A long frame (when ``id_col`` is a column) with ``time_col`` parsed, or a wide frame indexed
        by the parsed time column (``time_col`` if present, else the first column).

    Raises
    ------
    InvalidInputError
        When the file is missing, unreadable, empty, or its time column cannot be parsed.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "y.csv"
    >>> _ = path.write_text("ds,store_1\\n2024-01-01,3\\n2024-01-02,4\\n")
    >>> read_frame(path).index.dtype.kind
    'M'
    """
    path = Path(path)
    kind = file_format(path)
    if not path.is_file():
        raise InvalidInputError(f"{path}: no such file.")
    try:
        frame = pd.read_parquet(path) if kind == "parquet" else pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError) as error:
        raise InvalidInputError(f"{path}: cannot be read as {kind}: {error}") from None
    if frame.empty and frame.shape[1] == 0:
        raise InvalidInputError(f"{path}: the file holds no columns.")
    if id_col in frame.columns:
        if time_col in frame.columns:
            frame[time_col] = _parse_times(frame[time_col], f"{path}: column {time_col!r}")
        return frame
    if _has_time_index(frame):
        return frame  # parquet restores a wide frame's index
    column = time_col if time_col in frame.columns else frame.columns[0]
    if frame.shape[1] < 2:
        raise InvalidInputError(
            f"{path}: found only the column {list(frame.columns)}; a wide file needs a time column and at "
            f"least one series column, a long file the columns {id_col!r}, {time_col!r} and a target."
        )
    times = _parse_times(frame[column], f"{path}: time column {column!r}")
    frame = frame.drop(columns=column)
    frame.index = times.rename(None if str(column).startswith("Unnamed") else column)
    return frame


def write_frame(frame: pd.DataFrame | pd.Series, path, *, index: bool | None = None) -> Path:
    """Write ``frame`` to CSV or parquet atomically.

    Parameters
    ----------
    frame : pd.DataFrame or pd.Series
        A long frame (written without its index) or a wide/series frame (written with its time index,
        so :func:`read_frame` reads it back).
    path : str or os.PathLike
        Target file; its suffix picks the format. The folder is created when missing.
    index : bool, optional
        Whether to write the index; by default only when it is not a plain ``RangeIndex``.

    Returns
    -------
    Path
        The written file.
    """
    path = Path(path)
    kind = file_format(path)
    if isinstance(frame, pd.Series):
        frame = frame.to_frame()
    if index is None:
        index = not isinstance(frame.index, pd.RangeIndex)
    if kind == "parquet":
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=index)
        data = buffer.getvalue()
    else:
        compression = None if path.suffix.lower() == ".csv" else path.suffix.lower().lstrip(".")
        data = _compress(frame.to_csv(index=index, lineterminator="\n").encode(), compression)
    return write_bytes(data, path)


def write_bytes(data: bytes, path) -> Path:
    """Write raw bytes atomically (temporary file, fsync, rename); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = _temporary(path)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def _temporary(path: Path) -> tuple[int, str]:
    """A temporary file beside ``path``, with the permissions a plain ``open`` would give it."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    mask = os.umask(0)
    os.umask(mask)
    os.fchmod(handle, 0o666 & ~mask)
    return handle, temporary


def _compress(data: bytes, compression: str | None) -> bytes:
    if compression is None:
        return data
    if compression == "gz":
        import gzip

        return gzip.compress(data, mtime=0)  # mtime=0 keeps reruns byte-identical
    if compression == "bz2":
        import bz2

        return bz2.compress(data)
    if compression == "xz":
        import lzma

        return lzma.compress(data)
    raise InvalidParameterError(
        f"writing .{compression} files is not supported; write .csv, .csv.gz, .csv.bz2, .csv.xz or parquet."
    )


def _has_time_index(frame: pd.DataFrame) -> bool:
    return isinstance(frame.index, (pd.DatetimeIndex, pd.PeriodIndex)) or (
        frame.index.name is not None and not isinstance(frame.index, pd.RangeIndex)
    )


def _parse_times(column: pd.Series, where: str) -> pd.Index:
    if pd.api.types.is_integer_dtype(column.dtype) or pd.api.types.is_datetime64_any_dtype(column.dtype):
        return pd.Index(column)
    try:
        return pd.Index(pd.to_datetime(column))
    except (ValueError, TypeError) as error:
        raise InvalidInputError(
            f"{where} cannot be read as time stamps: {error}. Use ISO dates (2024-01-31 13:00) or "
            "integer steps."
        ) from None
