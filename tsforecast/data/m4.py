"""The M4 forecasting competition data: local files, or a one-off download into a cache.

M4 (Makridakis, Spiliotis & Assimakopoulos, 2020) holds 100,000 series in six frequency subsets.
Each subset is two wide CSV files, ``{Frequency}-train.csv`` and ``{Frequency}-test.csv``: one row
per series, the id in the first column (``V1``), then the values, with trailing empty cells because
the series have different lengths. The competition withheld the start dates, so the loader gives
integer time stamps: ``ds`` counts positions from 0 in the training part and carries on into the
test part.

The folder holding the files is, in order: the ``data_dir`` argument, ``$TSFORECAST_DATA_DIR/m4``,
or the default cache (``data/cache/m4`` in a source checkout, else ``~/.cache/tsforecast/m4``).
Missing files are downloaded there from the organisers' repository when ``download=True``.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path
from urllib.error import URLError
from urllib.request import urlopen

import numpy as np
import pandas as pd

from tsforecast.exceptions import InvalidInputError

logger = logging.getLogger(__name__)

DATA_DIR_ENV = "TSFORECAST_DATA_DIR"
M4_URL = "https://raw.githubusercontent.com/Mcompetitions/M4-methods/master/Dataset/{part}/{name}"


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
    """

    train: pd.DataFrame
    test: pd.DataFrame
    horizon: int
    season_length: int
    frequency: str

    @property
    def n_series(self) -> int:
        return int(self.train["unique_id"].nunique())


def load_m4(frequency: str, data_dir=None, download: bool = True) -> M4Data:
    """Load one frequency subset of the M4 competition.

    Parameters
    ----------
    frequency : {"yearly", "quarterly", "monthly", "weekly", "daily", "hourly"}
        The subset, case-insensitive.
    data_dir : str or Path, optional
        Folder holding ``{Frequency}-train.csv`` and ``{Frequency}-test.csv``. Defaults to
        ``$TSFORECAST_DATA_DIR/m4``, else the default cache (see the module docstring).
    download : bool, default=True
        Download missing files from the M4 organisers' GitHub repository into that folder.

    Returns
    -------
    M4Data
        Train and test long frames with the competition's horizon and seasonal period.

    Raises
    ------
    InvalidInputError
        For an unknown frequency, files that are missing (and not downloaded) or malformed.

    Examples
    --------
    >>> data = load_m4("hourly", "../shared/data/m4", download=False)  # doctest: +SKIP
    >>> data.horizon, data.season_length, data.n_series  # doctest: +SKIP
    (48, 24, 414)
    """
    key, spec = _spec(frequency)
    folder = _resolve_dir(data_dir)
    paths = {part: folder / f"{spec.file_prefix}-{part.lower()}.csv" for part in ("Train", "Test")}
    missing = [part for part, path in paths.items() if not path.is_file()]
    if missing and not download:
        raise InvalidInputError(_missing_message(paths, folder, "download=False"))
    for part in missing:
        _download(M4_URL.format(part=part, name=paths[part].name), paths[part], paths, folder)

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
    )


def load_m4_published(frequency: str, data_dir=None) -> pd.DataFrame | None:
    """The published M4 accuracy of every method on one frequency, if the file is there.

    Reads ``{frequency}_published_results.csv`` (columns ``method``, ``team``, ``type``,
    ``{frequency}_smape``, ``{frequency}_mase``, ``{frequency}_owa``) from the M4 folder resolved as
    in :func:`load_m4`. Rows without scores (the workbook's notes) are dropped.

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
    path = _resolve_dir(data_dir) / f"{key}_published_results.csv"
    if not path.is_file():
        return None
    table = pd.read_csv(path, dtype={"method": str})
    scores = {f"{key}_{name}": name for name in ("smape", "mase", "owa")}
    absent = [c for c in ("method", "team", "type", *scores) if c not in table.columns]
    if absent:
        raise InvalidInputError(f"{path} lacks column(s) {absent}; it has {list(table.columns)}.")
    table = table.rename(columns=scores).dropna(subset=["method", "smape", "mase"])
    return table.set_index("method")[["team", "type", "smape", "mase", "owa"]]


def default_data_dir() -> Path:
    """The root folder datasets are cached in when neither an argument nor the env var says.

    ``data/cache`` of the source checkout the package runs from, else ``$XDG_CACHE_HOME/tsforecast``
    (``~/.cache/tsforecast``).
    """
    repo = Path(__file__).resolve().parents[2]
    if (repo / "pyproject.toml").is_file() and (repo / "tsforecast" / "__init__.py").is_file():
        return repo / "data" / "cache"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tsforecast"


def _spec(frequency) -> tuple[str, M4Spec]:
    key = frequency.lower() if isinstance(frequency, str) else None
    if key not in M4_FREQUENCIES:
        raise InvalidInputError(
            f"frequency must be one of {list(M4_FREQUENCIES)} (case-insensitive); got {frequency!r}."
        )
    return key, M4_FREQUENCIES[key]


def _resolve_dir(data_dir) -> Path:
    if data_dir is not None:
        return Path(data_dir).expanduser()
    root = os.environ.get(DATA_DIR_ENV)
    return (Path(root).expanduser() if root else default_data_dir()) / "m4"


def _missing_message(paths: dict, folder: Path, reason: str) -> str:
    names = ", ".join(p.name for p in paths.values() if not p.is_file())
    return (
        f"M4 file(s) {names} not found in {folder} ({reason}). Pass data_dir= the folder that holds "
        f"them, or set {DATA_DIR_ENV} to a folder whose m4/ subfolder holds them, or call "
        "load_m4(..., download=True) with internet access to fetch them from "
        "github.com/Mcompetitions/M4-methods."
    )


def _download(url: str, target: Path, paths: dict, folder: Path) -> None:
    """Fetch ``url`` into ``target`` atomically: a temporary file in the same folder, then a rename."""
    logger.info("downloading %s to %s", url, target)
    tmp_name = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target.parent, prefix=f".{target.name}.", delete=False) as tmp:
            tmp_name = tmp.name
            with urlopen(url, timeout=60) as response:
                while chunk := response.read(1 << 20):
                    tmp.write(chunk)
        os.replace(tmp_name, target)
    except (URLError, HTTPException, OSError, ValueError) as error:
        if tmp_name is not None and os.path.exists(tmp_name):
            os.remove(tmp_name)
        raise InvalidInputError(
            _missing_message(paths, folder, f"download of {url} failed: {error}")
        ) from None


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
