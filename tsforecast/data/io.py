"""Reading and writing the frames that the CLI and the pipelines exchange with files.

Files are CSV (optionally compressed: ``.csv.gz``, ``.csv.bz2``, ``.csv.xz``; ``.csv.zst`` and
``.csv.zip`` are read but not written) or parquet (``.parquet``, ``.pq``), in any of the three pandas
layouts :func:`tsforecast.data.to_panel` accepts:

* long: columns ``unique_id``, ``ds``, ``y`` (any order, other columns kept);
* wide: a time column (``ds`` or the name given, else the first column) and one column per series;
* series: a time column and a single value column (read as a one-column wide frame).

The time column is parsed to datetimes unless it holds integer steps (M4's ``ds`` counts positions),
which stay integers; a column of other numbers is refused rather than read as nanoseconds since 1970.
:func:`write_frame` writes atomically: a temporary file in the target folder, flushed and fsynced,
then renamed over the target, so a reader never sees half a file.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import tempfile
from pathlib import Path

import pandas as pd

from tsforecast.exceptions import InvalidInputError, InvalidParameterError

PARQUET_SUFFIXES = (".parquet", ".pq")
# What write_frame compresses, by suffix; pandas reads these and the read-only ones below.
_COMPRESSIONS = {".csv": None, ".csv.gz": "gzip", ".csv.bz2": "bz2", ".csv.xz": "xz"}
WRITTEN_CSV_SUFFIXES = tuple(_COMPRESSIONS)
CSV_SUFFIXES = (*WRITTEN_CSV_SUFFIXES, ".csv.zst", ".csv.zip")


def file_format(path, *, writing: bool = False) -> str:
    """``"parquet"`` or ``"csv"`` from the file name, or raise naming the path.

    With ``writing``, only the suffixes :func:`write_frame` writes are accepted, so that a command
    can refuse an output name before any work rather than after it.
    """
    name = Path(path).name.lower()
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    csv_suffixes = WRITTEN_CSV_SUFFIXES if writing else CSV_SUFFIXES
    if name.endswith(csv_suffixes):
        return "csv"
    allowed = list(PARQUET_SUFFIXES + csv_suffixes)
    if writing and name.endswith(CSV_SUFFIXES):
        raise InvalidInputError(f"{path}: this file type is read but not written; write one of {allowed}.")
    raise InvalidInputError(f"{path}: unknown file type; use a name ending in one of {allowed}.")


def read_frame(path, *, id_col: str = "unique_id", time_col: str = "ds") -> pd.DataFrame:
    r"""Read a CSV or parquet file in the long, wide or single-series layout.

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
    >>> _ = path.write_text("ds,store_1\n2024-01-01,3\n2024-01-02,4\n")
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
    where = f"{path}: time column {column!r}"
    if column != time_col:
        where += f" (no column is named {time_col!r}, so the first column is taken)"
    times = _parse_times(frame[column], where, frame)
    frame = frame.drop(columns=column)
    frame.index = times.rename(None if str(column).startswith("Unnamed") else column)
    return frame


def write_frame(
    frame: pd.DataFrame | pd.Series, path, *, index: bool | None = None, time_col: str = "ds"
) -> Path:
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
    time_col : str
        Header of a written index that has no name (a wide or single-series frame's time stamps).

    Returns
    -------
    Path
        The written file.
    """
    path = Path(path)
    kind = file_format(path, writing=True)
    if isinstance(frame, pd.Series):
        frame = frame.to_frame()
    if index is None:
        index = not isinstance(frame.index, pd.RangeIndex)
    if index and frame.index.nlevels == 1 and frame.index.name is None:
        frame = frame.rename_axis(time_col)  # else the header starts with an empty cell
    if kind == "parquet":
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=index)
        data = buffer.getvalue()
    else:
        suffix = next(s for s in WRITTEN_CSV_SUFFIXES[::-1] if path.name.lower().endswith(s))
        data = _compress(frame.to_csv(index=index, lineterminator="\n").encode(), _COMPRESSIONS[suffix])
    return write_bytes(data, path)


def write_parquet_frames(frames, path) -> Path:
    """Write an iterable of long frames (same columns) as one parquet file, atomically and block by block.

    Each frame becomes a row group as it arrives, so the caller never holds them all (the CLI's
    forecasts of a large panel). The file appears, complete, only after the last frame: a
    temporary file beside ``path`` is fsynced and renamed over it; on any error nothing is left.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    file_format(path, writing=True)
    with _atomic_file(path) as stream:
        writer = None
        try:
            for frame in frames:
                table = pa.Table.from_pandas(frame, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(stream, table.schema)
                writer.write_table(table.cast(writer.schema))
        finally:
            if writer is not None:  # the footer; after an error the file is removed anyway
                writer.close()
        if writer is None:
            raise ValueError("write_parquet_frames: no frame to write")
    return path


def write_bytes(data: bytes, path) -> Path:
    """Write raw bytes atomically (temporary file, fsync, rename); returns the path.

    Raises
    ------
    InvalidParameterError
        When the location cannot hold the file (see :func:`check_writable`); other ``OSError`` (a
        full disk) propagate as they are.
    """
    path = Path(path)
    with _atomic_file(path) as stream:
        stream.write(data)
    return path


@contextlib.contextmanager
def _atomic_file(path: Path):
    """A binary stream whose content replaces ``path`` when the block ends without an error.

    It writes a temporary file beside ``path`` (its folder created when missing), flushed and fsynced,
    then renamed over it; on any error the temporary file is removed and ``path`` is left as it was.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = _temporary(path)
    except OSError as error:
        if error.errno in _UNUSABLE:
            raise _unusable(path, error) from None
        raise
    try:
        with os.fdopen(handle, "wb") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        Path(temporary).unlink(missing_ok=True)
        if isinstance(error, OSError) and error.errno in _UNUSABLE:  # e.g. path is a folder
            raise _unusable(path, error) from None
        raise


def check_writable(path, *, folder: bool = False) -> Path:
    """Make sure a file can be written at ``path`` (or into the folder ``path``), before any work.

    The folder is created when missing, as the writers here do; a file is created in it and removed
    again, which also works where permission bits do not tell (root, read-only mounts, ACLs).

    Raises
    ------
    InvalidParameterError
        Naming the path and why: a parent is a file, permission denied, a read-only file system, the
        target is a folder. Other ``OSError`` (a full disk) propagate as they are.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> blocker = pathlib.Path(tempfile.mkdtemp()) / "blocker"
    >>> _ = blocker.write_text("a file, not a folder")
    >>> check_writable(blocker / "out.csv")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    tsforecast.exceptions.InvalidParameterError: .../out.csv: cannot write there (...not a folder); ...
    """
    path = Path(path)
    where = path if folder else path.parent
    try:
        if not folder and path.is_dir():
            raise IsADirectoryError(errno.EISDIR, "it is a folder", str(path))
        where.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(prefix=".tsforecast-check.", dir=where)
        os.close(handle)
        os.unlink(probe)
    except OSError as error:
        if error.errno in _UNUSABLE:
            raise _unusable(path, error, folder) from None
        raise
    return path


# Errors that say the location cannot hold a file (a retry would fail the same way), as opposed to
# a full disk or an I/O error.
_UNUSABLE = {
    errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EEXIST, errno.EISDIR,
    errno.ENAMETOOLONG, errno.ELOOP, errno.ENOENT,
}  # fmt: skip


def _unusable(path: Path, error: OSError, folder: bool = False) -> InvalidParameterError:
    """One line naming ``path`` and why it cannot hold a file (``error.errno`` in ``_UNUSABLE``)."""
    candidates = [path, *path.parents] if folder else list(path.parents)
    existing = next((p for p in candidates if p.is_symlink() or p.exists()), None)
    reason = error.strerror or str(error)
    if error.errno == errno.EISDIR and not folder:
        reason = f"{path} is a folder"
    elif existing is not None and not existing.is_dir():
        reason = f"{existing} is not a folder"
    elif existing is not None:
        reason = f"{reason}: {existing}"
    return InvalidParameterError(
        f"{path}: cannot write there ({reason}); choose another location or make it writable."
    )


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
    if compression == "gzip":
        import gzip

        return gzip.compress(data, mtime=0)  # mtime=0 keeps reruns byte-identical
    if compression == "bz2":
        import bz2

        return bz2.compress(data)
    import lzma

    return lzma.compress(data)


def _date_like(frame: pd.DataFrame, skip) -> tuple:
    """Text columns other than ``skip`` whose first value reads as a date (to name in an error message)."""
    found = []
    for name in frame.columns:
        if name == skip:
            continue
        values = frame[name].dropna()
        if values.empty or pd.api.types.is_numeric_dtype(values.dtype):
            continue
        try:
            pd.Timestamp(str(values.iloc[0]))
        except ValueError:
            continue
        found.append(name)
    return tuple(found)


def _has_time_index(frame: pd.DataFrame) -> bool:
    return isinstance(frame.index, (pd.DatetimeIndex, pd.PeriodIndex)) or (
        frame.index.name is not None and not isinstance(frame.index, pd.RangeIndex)
    )


def _parse_times(column: pd.Series, where: str, frame: pd.DataFrame | None = None) -> pd.Index:
    """The time column as an index; ``frame`` (the file's columns) only to suggest one in an error."""
    if pd.api.types.is_integer_dtype(column.dtype) or pd.api.types.is_datetime64_any_dtype(column.dtype):
        return pd.Index(column)
    if pd.api.types.is_numeric_dtype(column.dtype):  # floats, booleans: pandas would read nanoseconds
        candidates = () if frame is None else _date_like(frame, skip=column.name)
        hint = f"; the time stamps look like they are in {list(candidates)}" if candidates else ""
        raise InvalidInputError(
            f"{where} holds {column.dtype} numbers, neither dates nor integer steps{hint}. Name the "
            "time column with --time-col (pipelines: data.time_col)."
        )
    try:
        return pd.Index(pd.to_datetime(column))
    except (ValueError, TypeError) as error:
        raise InvalidInputError(
            f"{where} cannot be read as time stamps: {error}. Use ISO dates (2024-01-31 13:00) or "
            "integer steps."
        ) from None
