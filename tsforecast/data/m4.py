"""The M4 forecasting competition data: local files, or a one-off download into the user cache.

M4 (Makridakis, Spiliotis & Assimakopoulos, 2020) holds 100,000 series in six frequency subsets.
Each subset is two wide CSV files, ``{Frequency}-train.csv`` and ``{Frequency}-test.csv``: one row
per series, the id in the first column (``V1``), then the values, with trailing empty cells because
the series have different lengths. The competition withheld the start dates, so the loader gives
integer time stamps: ``ds`` counts positions from 0 in the training part and carries on into the
test part.

Where the files come from (``download="auto"``, the default): the first folder that holds both
files of the subset among the local one (the ``data_dir`` argument; else ``$TSFORECAST_DATA_DIR/m4``;
else ``../shared/data/m4`` under the working directory, when it exists: our own checkouts' copy)
and the user cache (:func:`default_data_dir` ``/ "m4"``, ``~/.cache/tsforecast/m4`` on Linux).
When neither holds them, the missing files are downloaded into the cache once, from the organisers'
repository (``$TSFORECAST_M4_URL`` points elsewhere, e.g. a mirror), through a temporary file that is
renamed into place only after its size and SHA-256 (Hourly; the other subsets: size and format)
are checked. ``download=True`` downloads the files missing from the folder given (``data_dir`` or
``$TSFORECAST_DATA_DIR/m4``, else the cache) into it; ``download=False`` never downloads.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tsforecast.data.download import fetch
from tsforecast.exceptions import InvalidInputError, InvalidParameterError

logger = logging.getLogger(__name__)

DATA_DIR_ENV = "TSFORECAST_DATA_DIR"
URL_ENV = "TSFORECAST_M4_URL"
M4_URL = "https://raw.githubusercontent.com/Mcompetitions/M4-methods/master/Dataset/{part}/{name}"
SHARED_DIR = Path("..", "shared", "data", "m4")  # our checkouts' read-only copy, beside the repository
# SHA-256 of the organisers' files (Mcompetitions/M4-methods, Dataset/): a download that differs is
# refused. For the subsets not listed, the byte count and the format are checked instead.
SHA256 = {
    "Hourly-train.csv": "ea59b7783573c49077a835ab6465c7d66f1474783360f310988a9a737fbca62f",
    "Hourly-test.csv": "71a57fccb15e534d973626ada4fb87febf789e9317715b7cc6dd3b5f90db6f42",
}
_PARTS = ("Train", "Test")
_CACHE = "the download cache"


@dataclass(frozen=True)
class M4Spec:
    """How M4 scores one frequency subset."""

    file_prefix: str  # the capitalised name in the file names ("Hourly")
    horizon: int
    season_length: int


M4_FREQUENCIES = {
    "yearly": M4Spec("Yearly", 6, 1),
    "quarterly": M4Spec("Quarterly", 8, 4),
    "monthly": M4Spec("Monthly", 18, 12),
    "weekly": M4Spec("Weekly", 13, 1),
    "daily": M4Spec("Daily", 14, 1),
    "hourly": M4Spec("Hourly", 48, 24),
}


@dataclass(frozen=True)
class M4Data:
    """One M4 frequency subset as long frames.

    Attributes
    ----------
    train : pd.DataFrame
        Long frame ``unique_id``, ``ds``, ``y``: the history of every series, ``ds`` = 0, 1, ...
    test : pd.DataFrame
        Long frame of the ``horizon`` values that follow each series, ``ds`` continuing the train's.
    horizon : int
        The competition's forecast horizon for this frequency.
    season_length : int
        The seasonal period M4 uses (MASE's lag and the seasonal benchmarks').
    frequency : str
        The lower-case frequency name (``"hourly"``).
    folder : Path or None
        The folder the two files were read from (a local folder or the download cache).
    """

    train: pd.DataFrame
    test: pd.DataFrame
    horizon: int
    season_length: int
    frequency: str
    folder: Path | None = None

    @property
    def n_series(self) -> int:
        """The number of series in the subset."""
        return int(self.train["unique_id"].nunique())


def load_m4(frequency: str, data_dir=None, download="auto", verbose: bool | None = None) -> M4Data:
    """Load one frequency subset of the M4 competition, downloading it once when it is nowhere local.

    Parameters
    ----------
    frequency : {"yearly", "quarterly", "monthly", "weekly", "daily", "hourly"}
        The subset, case-insensitive.
    data_dir : str or Path, optional
        Folder holding ``{Frequency}-train.csv`` and ``{Frequency}-test.csv``. Defaults to
        ``$TSFORECAST_DATA_DIR/m4``, else ``../shared/data/m4`` when that folder exists.
    download : {"auto", True, False}, default="auto"
        ``"auto"``: read the files from the local folder, or else the user cache
        (:func:`default_data_dir` ``/ "m4"``), and download into the cache what neither holds.
        ``True``: download the files missing from the folder given (``data_dir``, else
        ``$TSFORECAST_DATA_DIR/m4``, else the cache) into it. ``False``: never download. The
        download URL is ``$TSFORECAST_M4_URL`` (with ``{part}`` = ``Train``/``Test`` and ``{name}`` =
        the file name), else the organisers' GitHub repository.
    verbose : bool, optional
        A download progress bar: always, never, or when stderr is a terminal (None).

    Returns
    -------
    M4Data
        Train and test long frames with the competition's horizon and seasonal period.

    Raises
    ------
    InvalidInputError
        For an unknown frequency; files that are missing and not downloaded (the message names the
        folders searched, the URL tried and how to point the loader at local files); a download that
        fails or is refused (incomplete, another checksum); malformed files.
    InvalidParameterError
        For a ``download`` other than ``"auto"``, True or False, or a ``$TSFORECAST_M4_URL`` with other
        placeholders than ``{part}`` and ``{name}``.

    Examples
    --------
    >>> data = load_m4("hourly", "../shared/data/m4", download=False)  # doctest: +SKIP
    >>> data.horizon, data.season_length, data.n_series  # doctest: +SKIP
    (48, 24, 414)
    """
    key, spec = _spec(frequency)
    paths = _locate(spec, data_dir, download, verbose)
    train_ids, train_values = _read_wide(paths["Train"])
    test_ids, test_values = _read_wide(paths["Test"])
    _check_pairing(train_ids, test_ids, test_values, spec.horizon, paths)
    train_lengths = np.array([len(v) for v in train_values], dtype=np.int64)
    return M4Data(
        train=_long_frame(train_ids, train_values, np.zeros_like(train_lengths)),
        test=_long_frame(test_ids, test_values, train_lengths),
        horizon=spec.horizon,
        season_length=spec.season_length,
        frequency=key,
        folder=paths["Train"].parent,
    )


def load_m4_published(frequency: str, data_dir=None) -> pd.DataFrame | None:
    """The published M4 accuracy of every method on one frequency, if the file is there.

    Reads ``{frequency}_published_results.csv`` (columns ``method``, ``team``, ``type``,
    ``{frequency}_smape``, ``{frequency}_mase``, ``{frequency}_owa``) from the first of the folders
    :func:`load_m4` searches that holds it. It is never downloaded. Rows without scores (the
    workbook's notes) are dropped.

    Parameters
    ----------
    frequency : str
        The subset, case-insensitive.
    data_dir : str or Path, optional
        Folder holding the file; resolved as in :func:`load_m4`.

    Returns
    -------
    pd.DataFrame or None
        Indexed by ``method`` (M4 submission ids as strings, benchmarks by name: ``"Naive2"``),
        columns ``team``, ``type``, ``smape``, ``mase``, ``owa``; None when the file is absent.

    Examples
    --------
    >>> published = load_m4_published("hourly", "../shared/data/m4")  # doctest: +SKIP
    >>> published.loc["Naive2", ["smape", "mase"]].tolist()  # doctest: +SKIP
    [18.383, 2.395]
    """
    key, _ = _spec(frequency)
    found = [f / f"{key}_published_results.csv" for f, _ in _search_dirs(data_dir)]
    path = next((p for p in found if p.is_file()), None)
    if path is None:
        return None
    table = pd.read_csv(path, dtype={"method": str})
    scores = {f"{key}_{name}": name for name in ("smape", "mase", "owa")}
    absent = [c for c in ("method", "team", "type", *scores) if c not in table.columns]
    if absent:
        raise InvalidInputError(f"{path} lacks column(s) {absent}; it has {list(table.columns)}.")
    table = table.rename(columns=scores).dropna(subset=["method", "smape", "mase"])
    return table.set_index("method")[["team", "type", "smape", "mase", "owa"]]


def default_data_dir() -> Path:
    r"""The user cache datasets are downloaded into: one subfolder per dataset (``m4/``).

    ``platformdirs.user_cache_dir("tsforecast")``: ``~/.cache/tsforecast`` on Linux (or
    ``$XDG_CACHE_HOME/tsforecast``), ``~/Library/Caches/tsforecast`` on macOS,
    ``%LOCALAPPDATA%\tsforecast\Cache`` on Windows. Delete it at any time to reclaim the space.

    Examples
    --------
    >>> default_data_dir()  # doctest: +SKIP
    PosixPath('/home/me/.cache/tsforecast')
    """
    import platformdirs

    return Path(platformdirs.user_cache_dir("tsforecast", appauthor=False))


def _spec(frequency) -> tuple[str, M4Spec]:
    key = frequency.lower() if isinstance(frequency, str) else None
    if key not in M4_FREQUENCIES:
        raise InvalidInputError(
            f"frequency must be one of {list(M4_FREQUENCIES)} (case-insensitive); got {frequency!r}."
        )
    return key, M4_FREQUENCIES[key]


def _given_dir(data_dir) -> tuple[Path, str] | None:
    """The folder the caller names (argument, else the env var), and how it was named."""
    if data_dir is not None:
        return Path(data_dir).expanduser(), "data_dir"
    root = os.environ.get(DATA_DIR_ENV)
    return (Path(root).expanduser() / "m4", f"${DATA_DIR_ENV}/m4") if root else None


def _search_dirs(data_dir) -> list[tuple[Path, str]]:
    """Where the files are looked for, in order: the local folder, then the user cache."""
    local = _given_dir(data_dir)
    if local is None and SHARED_DIR.is_dir():
        local = SHARED_DIR, "the shared copy beside the working directory"
    cache = default_data_dir() / "m4", _CACHE
    return [local, cache] if local is not None and local[0] != cache[0] else [local or cache]


def _locate(spec: M4Spec, data_dir, download, verbose) -> dict:
    """The paths of the subset's two files, downloading them as ``download`` says."""
    if not (isinstance(download, bool) or download == "auto"):
        raise InvalidParameterError(f"download must be 'auto', True or False; got {download!r}.")
    names = {part: f"{spec.file_prefix}-{part.lower()}.csv" for part in _PARTS}
    given, searched = _given_dir(data_dir), _search_dirs(data_dir)
    if download is True:
        folder = (given or searched[-1])[0]
    else:
        for folder, _ in searched:
            if all((folder / name).is_file() for name in names.values()):
                return {part: folder / name for part, name in names.items()}
        if download is False:
            raise InvalidInputError(_not_found(names, searched, "download=False: nothing was downloaded."))
        folder = searched[-1][0]
        if given is not None:
            logger.warning("M4 files not in %s (%s): using the download cache %s", *given, folder)
    paths = {part: folder / name for part, name in names.items()}
    template = os.environ.get(URL_ENV) or M4_URL
    for part, path in paths.items():
        if path.is_file():
            continue
        try:
            url = template.format(part=part, name=path.name)
        except (KeyError, IndexError, ValueError):
            raise InvalidParameterError(
                f"{URL_ENV}={template!r}: the only placeholders are {{part}} (Train or Test) and "
                f"{{name}} (the file name), as in the default {M4_URL}."
            ) from None
        logger.info("M4 %s: downloading %s into %s (once)", spec.file_prefix, url, folder)
        known = SHA256.get(path.name)
        try:
            fetch(url, path, sha256=known, check=None if known else _check_format, verbose=verbose)
        except InvalidInputError as error:
            message = _not_found(names, searched, f"Downloading them into {folder} failed: {error}")
            raise InvalidInputError(message) from None
    return paths


def _check_format(path: Path) -> None:
    """A downloaded file whose checksum is not known must at least read as an M4 file."""
    try:
        _read_wide(path)
    except InvalidInputError as error:
        raise InvalidInputError(f"not an M4 file ({error})") from None


def _not_found(names: dict, searched: list, reason: str) -> str:
    if [how for _, how in searched] == [_CACHE]:
        where = (
            f"the download cache {searched[0][0]}; no local folder was given (data_dir, {DATA_DIR_ENV}) "
            f"or found ({SHARED_DIR} from the working directory)"
        )
    else:
        where = " or ".join(f"{folder} ({how})" for folder, how in searched)
    return (
        f"M4 file(s) {' and '.join(names.values())} not found in {where}. {reason} "
        "To use local copies, point tsforecast at the folder that holds them: load_m4(..., "
        f"data_dir=FOLDER), {DATA_DIR_ENV}=ROOT (the files in ROOT/m4), --data-dir FOLDER "
        "(tsforecast tune, benchmarks), --set data.dir=FOLDER or M4_DIR=FOLDER (pipelines, "
        f"make demo M4_DIR=FOLDER). To download from a mirror, set {URL_ENV} (with {{part}} and "
        f"{{name}} placeholders; default {M4_URL})."
    )


def _read_wide(path: Path) -> tuple[list, list]:
    """Ids and value arrays of an M4 wide file, without building the ragged wide matrix."""
    ids, values = [], []
    with open(path, encoding="utf-8") as handle:
        header = handle.readline()
        if not header.startswith(('"V1"', "V1")):
            raise InvalidInputError(
                f"{path} does not look like an M4 file: its header starts {header[:40]!r}."
            )
        for line_number, line in enumerate(handle, start=2):
            # Ids and values never hold commas, so dropping the quotes and the trailing empty cells
            # of shorter series leaves the series' own cells.
            cells = line.replace('"', "").rstrip("\r\n").rstrip(",").split(",")
            if cells == [""]:
                continue
            try:
                series = np.array(cells[1:], dtype=np.float64)
            except ValueError as error:
                raise InvalidInputError(
                    f"{path}, line {line_number} (series {cells[0]!r}): {error}"
                ) from None
            if len(series) == 0 or np.isnan(series).any():
                raise InvalidInputError(
                    f"{path}, line {line_number}: series {cells[0]!r} has no values or a missing value "
                    "inside it; the M4 files have neither, so the file is damaged. Delete it to re-download."
                )
            ids.append(cells[0])
            values.append(series)
    if not ids:
        raise InvalidInputError(f"{path} holds no series; delete it to re-download.")
    return ids, values


def _check_pairing(train_ids: list, test_ids: list, test_values: list, horizon: int, paths: dict) -> None:
    if train_ids != test_ids:
        raise InvalidInputError(
            f"{paths['Train'].name} and {paths['Test'].name} list different series "
            f"({len(train_ids)} vs {len(test_ids)}, or in another order); use files from the same release."
        )
    wrong = [sid for sid, v in zip(test_ids, test_values, strict=True) if len(v) != horizon]
    if wrong:
        raise InvalidInputError(
            f"{paths['Test']} should hold {horizon} values per series; {len(wrong)} series do not "
            f"(first {wrong[0]!r})."
        )


def _long_frame(ids: list, values: list, starts: np.ndarray) -> pd.DataFrame:
    lengths = np.array([len(v) for v in values], dtype=np.int64)
    offsets = np.repeat(starts - np.cumsum(lengths) + lengths, lengths)  # start minus series' first row
    return pd.DataFrame(
        {
            "unique_id": np.repeat(np.asarray(ids, dtype=object), lengths),
            "ds": np.arange(lengths.sum(), dtype=np.int64) + offsets,
            "y": np.concatenate(values),
        }
    )
