"""The load and validate steps: files in, a validated panel of the history (and optional actuals) out.

Internally a pipeline works on a :class:`tsforecast.data.Panel` in the long layout with the columns
``unique_id``, ``ds``, ``y`` whatever the input's layout and column names; :attr:`Inputs.columns`
keeps the user's names so the outputs use them again. A long parquet file or folder is read in record
batches straight into the panel (rows after the as-of date are never read), so its history never
exists as a pandas frame; CSV and wide files are read with pandas.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from tsforecast.data import (
    Columns,
    Layout,
    Panel,
    check_min_length,
    future_index,
    read_parquet_panel,
    to_panel,
)
from tsforecast.data.io import read_frame
from tsforecast.data.labels import series_label
from tsforecast.data.parquet import is_long_parquet, parquet_row_count, parquet_time_kind
from tsforecast.exceptions import InvalidInputError
from tsforecast.pipelines.schema import ConfigError, PipelineConfig
from tsforecast.pipelines.staleness import as_of_moment, check_fresh, series_ends

logger = logging.getLogger(__name__)

CANONICAL = Columns()


@dataclass(frozen=True)
class AsOf:
    """The date (or time stamp) a run is for: names its output folder and cuts datetime data.

    Attributes
    ----------
    label : str
        Folder name: ``2024-05-31`` for a date, ``2024-05-31T13-00-00`` for a time stamp.
    stamp : pd.Timestamp
        The moment itself.
    whole_day : bool
        A date without a time: the data of that whole day is kept.
    """

    label: str
    stamp: pd.Timestamp
    whole_day: bool

    @classmethod
    def parse(cls, text: str | None) -> AsOf:
        """``YYYY-MM-DD`` or an ISO time stamp; today's date when None."""
        if text is None:
            today = date.today().isoformat()
            return cls(today, pd.Timestamp(today), True)
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise ConfigError(
                f"--as-of: expected a date like 2024-05-31 or a time stamp like 2024-05-31T13:00, "
                f"got {text!r}."
            ) from None
        whole_day = len(text) == 10
        label = moment.date().isoformat() if whole_day else moment.strftime("%Y-%m-%dT%H-%M-%S")
        return cls(label, pd.Timestamp(moment), whole_day)

    @property
    def last_moment(self) -> pd.Timestamp:
        """The latest time stamp a run for this date keeps (the end of the day for a date)."""
        return self.stamp + pd.Timedelta(days=1) - pd.Timedelta(1, "ns") if self.whole_day else self.stamp


@dataclass
class Inputs:
    """What the load and validate steps produce.

    Attributes
    ----------
    history : Panel or pd.DataFrame
        After the validate step, the validated panel (long layout, canonical columns) of the history
        after the as-of cut and the series limit. Between load and validate, a long ``unique_id, ds,
        y`` frame for a CSV or wide file, and already a panel for a long parquet dataset.
    test : pd.DataFrame or None
        Long actuals that follow the history, for the evaluation step.
    published : pd.DataFrame or None
        Published M4 results (M4 data only).
    files : list of dict
        Every file read: role, path, sha256, bytes.
    covariates : pd.DataFrame or None
        The covariates file's rows, not cut at the as-of date (``unique_id``, ``ds`` and the covariate
        columns; or ``ds`` alone when every series shares them), or None without a file.
    columns : Columns
        The user's column names, used again in the outputs.
    freq : object
        The history's frequency.
    stats : dict
        Row and series counts, time range, rows cut by the as-of date, series dropped.
    """

    history: Panel | pd.DataFrame
    test: pd.DataFrame | None
    published: pd.DataFrame | None
    files: list
    columns: Columns
    freq: object = None
    stats: dict = field(default_factory=dict)
    covariates: pd.DataFrame | None = None


def load(config: PipelineConfig, as_of: AsOf) -> Inputs:
    """The load step: read the configured source, cut at ``as_of`` and keep ``limit_series`` series."""
    source = config.data
    if source.kind == "m4":
        inputs = _load_m4(source)
    elif is_long_parquet(source.path, source.id_col):
        inputs = _load_test(config, _load_parquet(source, as_of))  # cut as it is read
    else:
        inputs = _load_test(config, _load_file(source))
    if isinstance(inputs.history, pd.DataFrame):
        history = inputs.history
        inputs.stats = {"rows_read": len(history), "series_read": int(history["unique_id"].nunique())}
        inputs.history, inputs.stats["rows_after_as_of"] = _cut(history, as_of)
    if source.limit_series is not None:
        _limit_series(inputs, source.limit_series)
    if isinstance(inputs.history, pd.DataFrame):
        inputs.history = inputs.history.reset_index(drop=True)
    return _load_covariates(config, inputs)


def history_size(history: Panel | pd.DataFrame) -> tuple[int, int]:
    """The number of series and of rows of a loaded history (a frame or a panel)."""
    if isinstance(history, Panel):
        return history.n_series, int(history.lengths.sum())
    return int(history["unique_id"].nunique()), len(history)


def validate(
    inputs: Inputs, config: PipelineConfig, min_length: int, needed_by: str, as_of: AsOf | None = None
) -> Inputs:
    """The validate step: every series checked (:func:`tsforecast.data.to_panel`), recent and long enough.

    The test data are checked here too (known series, numbers, some of the forecasts' time stamps),
    so that bad actuals stop the run before any training rather than in the evaluate step. The data
    file's record (``inputs.files``) gets the earliest and latest last time stamp of its series.

    Raises
    ------
    InvalidInputError
        Naming the series: non-numeric or infinite values, duplicated or unsorted time stamps,
        irregular spacing, missing values under ``missing: error``, data that end too long before
        ``as_of`` (``data.max_staleness``, :mod:`tsforecast.pipelines.staleness`), a series shorter
        than ``min_length`` under ``short_series: error``; test data that cannot score the forecasts.
    """
    if history_size(inputs.history)[1] == 0:
        raise InvalidInputError(
            "no data left to forecast: the input is empty, or every row is after --as-of."
        )
    missing = getattr(config.data, "missing", "error")
    freq = getattr(config.data, "freq", None)
    # Gaps are refused here rather than by to_panel, so that the message names the pipeline's key.
    panel = to_panel(
        inputs.history, freq=freq, columns=CANONICAL, missing="keep" if missing == "error" else missing
    )
    if missing == "error":
        _reject_gaps(panel, config.data.kind)
    ends = series_ends(panel)
    for item in inputs.files:
        if item["role"] == "data":
            item["last_time_stamp"] = ends
    if as_of is not None:
        _check_fresh(panel, getattr(config.data, "max_staleness", None), as_of)
    if getattr(config.data, "short_series", "error") == "drop":
        panel = _drop_short(panel, min_length, needed_by, inputs.stats)
    check_min_length(panel, min_length, needed_by)
    inputs.history = panel.replace_layout(Layout("long", CANONICAL))
    inputs.freq = panel.freq
    lengths = panel.lengths
    inputs.stats.update(
        n_series=panel.n_series,
        n_rows=int(lengths.sum()),
        min_length=int(lengths.min()),
        max_length=int(lengths.max()),
        first=str(min(index[0] for index in panel.index)),
        last=str(max(index[-1] for index in panel.index)),
        frequency=str(getattr(panel.freq, "freqstr", panel.freq)),
    )
    if inputs.test is not None:
        dropped = set(inputs.stats.get("series_dropped", ()))
        test = inputs.test[~inputs.test["unique_id"].astype(str).isin(dropped)] if dropped else inputs.test
        inputs.test = _validated_test(test, panel.ids)
        _check_test_covers(inputs.test, panel, config.horizon)
        inputs.stats["test_rows"] = len(inputs.test)
    return inputs


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes (read in blocks); of a folder, of its files' names and bytes."""
    path = Path(path)
    digest = hashlib.sha256()
    for file in _files(path):
        if path.is_dir():  # a renamed or moved part changes the dataset
            digest.update(file.relative_to(path).as_posix().encode() + b"\0")
        with open(file, "rb") as stream:
            for block in iter(lambda stream=stream: stream.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def describe_file(role: str, path: Path) -> dict:
    """The manifest's record of an input file or folder: role, absolute path, checksum and size."""
    path = Path(path)
    size = sum(file.stat().st_size for file in _files(path))
    return {"role": role, "path": str(path.resolve()), "sha256": sha256(path), "bytes": size}


def _files(path: Path) -> list:
    """The file itself, or a folder's files in a fixed order (a parquet dataset's parts)."""
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]


def _load_file(source) -> Inputs:
    columns = Columns(source.id_col, source.time_col, source.target_col)
    path = Path(source.path)
    history = _canonical(read_frame(path, id_col=columns.id_col, time_col=columns.time_col), columns, path)
    files = [describe_file("data", path)]
    return Inputs(history, None, None, files, columns)


def _load_parquet(source, as_of: AsOf) -> Inputs:
    """A long parquet file or folder, read in record batches; only its rows up to ``as_of`` are read."""
    columns = Columns(source.id_col, source.time_col, source.target_col)
    path = Path(source.path)
    dated = parquet_time_kind(path, columns) == "datetime"
    if not dated:
        logger.info("time stamps are not dates: --as-of %s only names the output folder", as_of.label)
    rows = parquet_row_count(path, columns)
    until = as_of.last_moment if dated else None
    panel = read_parquet_panel(
        path, columns=columns, freq=getattr(source, "freq", None), missing="keep", until=until
    )
    kept = int(panel.lengths.sum())
    if rows > kept:
        logger.info("--as-of %s: %d row(s) after it are left out", as_of.label, rows - kept)
    stats = {"rows_read": rows, "series_read": panel.n_series, "rows_after_as_of": rows - kept}
    history = panel.replace_layout(Layout("long", CANONICAL))
    return Inputs(history, None, None, [describe_file("data", path)], columns, stats=stats)


def _limit_series(inputs: Inputs, limit: int) -> None:
    """Keep the first ``limit`` series: in the file's order for a frame, in id order for a panel.

    A parquet dataset has no row order across its files, so its series are taken in sorted order.
    """
    history = inputs.history
    if isinstance(history, Panel):
        inputs.history = history.select(range(min(limit, history.n_series)))
        keep = inputs.history.ids
    else:
        keep = pd.unique(history["unique_id"])[:limit]
        inputs.history = history[history["unique_id"].isin(keep)]
    if inputs.test is not None:
        inputs.test = inputs.test[inputs.test["unique_id"].isin(keep)].reset_index(drop=True)


def _load_test(config: PipelineConfig, inputs: Inputs) -> Inputs:
    """Read ``evaluation.test_path`` of a file source (M4 data brings its own test set)."""
    evaluation = config.evaluation
    if evaluation is None or not evaluation.enabled:
        return inputs
    path = Path(evaluation.test_path)
    frame = read_frame(path, id_col=inputs.columns.id_col, time_col=inputs.columns.time_col)
    inputs.test = _canonical(frame, inputs.columns, path)
    inputs.files.append(describe_file("test", path))
    return inputs


def _load_covariates(config: PipelineConfig, inputs: Inputs) -> Inputs:
    """Read ``covariates.path`` with the data's column names; the target column, if any, is left out.

    Not cut at the as-of date: the covariate layer ignores the rows a series' history and horizon do
    not need (the validate step checks the future-known columns cover the horizon).
    """
    section = config.covariates
    if section is None or not section.path:
        return inputs
    columns, path = inputs.columns, Path(section.path)
    try:
        frame = read_frame(path, id_col=columns.id_col, time_col=columns.time_col)
    except InvalidInputError as error:
        raise InvalidInputError(f"covariates.path {error}") from None
    # The data file itself may hold the covariates: its target is never one.
    frame = frame.drop(columns=[columns.target_col], errors="ignore")
    names = {columns.id_col: CANONICAL.id_col, columns.time_col: CANONICAL.time_col}
    names = {old: new for old, new in names.items() if old != new and old in frame.columns}
    clash = sorted(set(names.values()) & set(frame.columns))
    if clash:
        raise InvalidInputError(
            f"{path}: the covariates file has a column {clash[0]!r} beside the data's id and time columns "
            f"{columns.id_col!r}, {columns.time_col!r}; rename it."
        )
    inputs.covariates = frame.rename(columns=names)
    inputs.files.append(describe_file("covariates", path))
    inputs.stats["covariate_rows"] = len(frame)
    return inputs


def _load_m4(source) -> Inputs:
    from tsforecast.datasets import M4_FREQUENCIES, load_m4, load_m4_published

    data = load_m4(source.frequency, source.dir or None)  # downloads into the user cache when not local
    folder = data.folder
    prefix = M4_FREQUENCIES[source.frequency].file_prefix
    names = {"data": f"{prefix}-train.csv", "test": f"{prefix}-test.csv"}
    published = None  # beside the data files only: a download brings none
    if (folder / f"{source.frequency}_published_results.csv").is_file():
        published = load_m4_published(source.frequency, folder)
        names["published"] = f"{source.frequency}_published_results.csv"
    files = [describe_file(role, folder / name) for role, name in names.items()]
    return Inputs(data.train, data.test, published, files, CANONICAL)


def _canonical(frame: pd.DataFrame, columns: Columns, path: Path) -> pd.DataFrame:
    """Any layout as a long ``unique_id, ds, y`` frame (wide columns become series)."""
    if columns.id_col in frame.columns:
        absent = [c for c in (columns.time_col, columns.target_col) if c not in frame.columns]
        if absent:
            raise InvalidInputError(
                f"{path}: the long file lacks column(s) {absent}; it has {list(frame.columns)}. Set "
                "data.id_col / data.time_col / data.target_col to its column names."
            )
        frame = frame[[columns.id_col, columns.time_col, columns.target_col]]
        return frame.set_axis(["unique_id", "ds", "y"], axis=1)
    long = frame.rename_axis("ds").reset_index().melt(id_vars="ds", var_name="unique_id", value_name="y")
    return long[["unique_id", "ds", "y"]]


def _cut(history: pd.DataFrame, as_of: AsOf) -> tuple[pd.DataFrame, int]:
    times = history["ds"]
    if not pd.api.types.is_datetime64_any_dtype(times.dtype):
        logger.info(
            "time stamps are not dates (%s): --as-of %s only names the output folder",
            times.dtype,
            as_of.label,
        )
        return history, 0
    stamp = as_of.stamp
    zone = getattr(times.dtype, "tz", None)
    if zone is not None:
        stamp = stamp.tz_localize(zone) if stamp.tzinfo is None else stamp.tz_convert(zone)
    keep = (times < stamp + pd.Timedelta(days=1)) if as_of.whole_day else (times <= stamp)
    dropped = int((~keep).sum())
    if dropped:
        logger.info("--as-of %s: %d row(s) after it are left out", as_of.label, dropped)
    return history[keep.to_numpy()], dropped


def _check_fresh(panel, limit, as_of: AsOf) -> None:
    """Refuse data that end too long before the as-of date (datetime time stamps only)."""
    if limit is None or not isinstance(panel.index[0], pd.DatetimeIndex):
        return
    moment, is_now = as_of_moment(as_of.last_moment, panel.index[0].tz)
    if is_now:
        when = f"now ({moment.strftime('%Y-%m-%d %H:%M')}), before the end of the as-of date"
    else:
        when = f"the end of {as_of.label}" if as_of.whole_day else as_of.label
    logger.debug("data.max_staleness %r: checking the series' ends against %s", limit, moment)
    check_fresh(panel, limit, moment, as_of.label, when)


def _drop_short(panel, min_length: int, needed_by: str, stats: dict):
    short = [sid for sid, n in zip(panel.ids, panel.lengths, strict=True) if n < min_length]
    stats["series_dropped"] = [str(sid) for sid in short]
    if not short:
        return panel
    listed = ", ".join(map(str, short[:10])) + (" ..." if len(short) > 10 else "")
    logger.warning(
        "dropping %d series shorter than the %d observations %s needs (data.short_series: drop): %s",
        len(short), min_length, needed_by, listed,
    )  # fmt: skip
    if len(short) == panel.n_series:
        raise InvalidInputError(
            f"every series is shorter than the {min_length} observations {needed_by} needs."
        )
    return panel.select(np.flatnonzero(panel.lengths >= min_length))


def _reject_gaps(panel, kind: str) -> None:
    for sid, values, index in zip(panel.ids, panel.values, panel.index, strict=True):
        gaps = np.isnan(values)
        if gaps.any():
            fix = (
                "fill them in the file, or set data.missing: interpolate in the pipeline "
                "(--set data.missing=interpolate) to fill them linearly"
                if kind == "file"
                else "the data files are damaged; restore them"
            )
            raise InvalidInputError(
                f"{series_label(sid)} has {int(gaps.sum())} missing value(s) inside it (first at "
                f"{index[gaps][0]}); {fix}."
            )


def _check_test_covers(test: pd.DataFrame, panel, horizon: int) -> None:
    """The actuals must cover some of the time stamps the forecasts will have."""
    stamps = [
        (sid, stamp)
        for sid, index in zip(panel.ids, panel.index, strict=True)
        for stamp in future_index(index[-1], panel.freq, horizon)
    ]
    expected = pd.DataFrame(stamps, columns=["unique_id", "ds"])
    try:
        covered = test.merge(expected, on=["unique_id", "ds"], how="inner")
    except (TypeError, ValueError) as error:  # time stamps of another kind (dates vs integers, zones)
        raise InvalidInputError(
            f"the test data's time stamps ({test['ds'].dtype}) do not match the history's "
            f"({expected['ds'].dtype}): {error}."
        ) from None
    if covered.empty:
        raise InvalidInputError(
            f"the test data cover none of the {horizon} time stamps to forecast after the history "
            f"(for series {expected['unique_id'].iloc[0]!r}: {expected['ds'].iloc[0]} to "
            f"{expected['ds'].iloc[horizon - 1]}; the test data run from {test['ds'].min()} to "
            f"{test['ds'].max()}); give the actuals that follow the history (evaluation.test_path)."
        )


def _validated_test(test: pd.DataFrame, ids: list) -> pd.DataFrame:
    unknown = sorted(set(test["unique_id"]) - set(ids), key=str)
    if unknown:
        raise InvalidInputError(
            f"the test data has series {unknown[0]!r} that the history lacks ({len(unknown)} such series); "
            "the evaluation compares forecasts of the same series."
        )
    values = pd.to_numeric(test["y"], errors="coerce")
    bad = values.isna() & test["y"].notna()
    if bad.any():
        row = test[bad.to_numpy()].iloc[0]
        raise InvalidInputError(
            f"the test data of series {row['unique_id']!r} holds a non-numeric value {row['y']!r} "
            f"at {row['ds']}."
        )
    test = test.assign(y=values.astype(np.float64))
    return test.sort_values(["unique_id", "ds"], kind="stable").reset_index(drop=True)
