"""Tests of the dataset loaders (tsforecast.datasets, tsforecast.data.m4).

The M4 Hourly files are read from $TSFORECAST_M4_DIR (default ../shared/data/m4 next to the repo);
those tests skip when the folder is absent. Downloads are never tried over the network: the one test
of the download path replaces ``urlopen``.
"""

import io
import os
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest

from tsforecast.data import m4
from tsforecast.datasets import M4Data, default_data_dir, load_m4, load_m4_published
from tsforecast.exceptions import InvalidInputError

M4_DIR = Path(
    os.environ.get("TSFORECAST_M4_DIR", Path(__file__).resolve().parents[2] / "shared" / "data" / "m4")
)
needs_m4 = pytest.mark.skipif(
    not (M4_DIR / "Hourly-train.csv").is_file(), reason=f"M4 Hourly files not found in {M4_DIR}"
)

# Two yearly series of lengths 3 and 5, written the way the M4 files are: quoted cells, trailing
# empty cells for the shorter series.
TINY_TRAIN = '"V1","V2","V3","V4","V5","V6"\n"Y1","1","2","3","",""\n"Y2","10","20","30","40","50"\n'
TINY_TEST = (
    '"V1","V2","V3","V4","V5","V6","V7"\n"Y1","4","5","6","7","8","9"\n"Y2","60","70","80","90","100","110"\n'
)


@pytest.fixture(scope="module")
def hourly():
    return load_m4("hourly", M4_DIR, download=False)


@pytest.fixture
def tiny_dir(tmp_path):
    (tmp_path / "Yearly-train.csv").write_text(TINY_TRAIN)
    (tmp_path / "Yearly-test.csv").write_text(TINY_TEST)
    return tmp_path


@needs_m4
def test_hourly_shapes_and_competition_settings(hourly):
    assert isinstance(hourly, M4Data)
    assert (hourly.frequency, hourly.horizon, hourly.season_length) == ("hourly", 48, 24)
    assert list(hourly.train.columns) == ["unique_id", "ds", "y"]
    assert list(hourly.test.columns) == ["unique_id", "ds", "y"]
    assert hourly.n_series == 414
    lengths = hourly.train.groupby("unique_id", sort=False).size()
    assert (lengths.min(), lengths.max()) == (700, 960)
    assert (hourly.test.groupby("unique_id").size() == 48).all()
    assert hourly.train["y"].notna().all() and hourly.test["y"].notna().all()


@needs_m4
def test_hourly_time_stamps_continue_from_train_into_test(hourly):
    train_ds = hourly.train.groupby("unique_id")["ds"].agg(["min", "max", "size"])
    test_ds = hourly.test.groupby("unique_id")["ds"].agg(["min", "max"])
    assert (train_ds["min"] == 0).all()
    assert (train_ds["max"] == train_ds["size"] - 1).all()
    assert (test_ds["min"] == train_ds["max"] + 1).all()
    assert (test_ds["max"] == train_ds["max"] + 48).all()
    assert hourly.train["ds"].dtype == np.int64


@needs_m4
def test_hourly_values_match_the_file(hourly):
    first = hourly.train[hourly.train["unique_id"] == "H1"]["y"].to_numpy()
    assert first[:3].tolist() == [605.0, 586.0, 586.0]
    assert hourly.test[hourly.test["unique_id"] == "H1"]["y"].iloc[0] == 619.0
    assert hourly.train["unique_id"].iloc[-1] == "H414"


@pytest.mark.parametrize("name", ["YEARLY", "Yearly", "yearly"])
def test_frequency_names_are_case_insensitive(tiny_dir, name):
    data = load_m4(name, tiny_dir, download=False)
    assert (data.frequency, data.horizon, data.season_length) == ("yearly", 6, 1)


def test_ragged_rows_give_long_frames_with_continuing_ds(tiny_dir):
    data = load_m4("yearly", tiny_dir, download=False)
    assert data.train["unique_id"].tolist() == ["Y1"] * 3 + ["Y2"] * 5
    assert data.train["ds"].tolist() == [0, 1, 2, 0, 1, 2, 3, 4]
    assert data.train["y"].tolist() == [1, 2, 3, 10, 20, 30, 40, 50]
    assert data.test["ds"].tolist() == [*range(3, 9), *range(5, 11)]


def test_unknown_frequency_names_the_choices(tiny_dir):
    with pytest.raises(InvalidInputError, match=r"frequency must be one of .*'hourly'.*got 'minutely'"):
        load_m4("minutely", tiny_dir, download=False)


def test_missing_files_without_download_say_where_and_how(tmp_path):
    with pytest.raises(InvalidInputError) as info:
        load_m4("hourly", tmp_path, download=False)
    message = str(info.value)
    assert "Hourly-train.csv" in message and str(tmp_path) in message
    assert "data_dir" in message and "TSFORECAST_DATA_DIR" in message


def test_env_var_root_is_searched_in_its_m4_subfolder(tmp_path, monkeypatch):
    monkeypatch.setenv("TSFORECAST_DATA_DIR", str(tmp_path))
    with pytest.raises(InvalidInputError, match=str(tmp_path / "m4")):
        load_m4("hourly", download=False)
    (tmp_path / "m4").mkdir()
    (tmp_path / "m4" / "Yearly-train.csv").write_text(TINY_TRAIN)
    (tmp_path / "m4" / "Yearly-test.csv").write_text(TINY_TEST)
    assert load_m4("yearly", download=False).n_series == 2


def test_default_cache_is_the_checkouts_data_cache():
    assert default_data_dir() == Path(m4.__file__).resolve().parents[2] / "data" / "cache"


def test_download_writes_the_files_into_the_folder(tmp_path, monkeypatch):
    urls = []

    def fake_urlopen(url, timeout):
        urls.append(url)
        return io.BytesIO((TINY_TRAIN if "/Train/" in url else TINY_TEST).encode())

    monkeypatch.setattr(m4, "urlopen", fake_urlopen)
    target = tmp_path / "cache" / "m4"
    data = load_m4("yearly", target)
    assert data.n_series == 2
    assert urls == [
        "https://raw.githubusercontent.com/Mcompetitions/M4-methods/master/Dataset/Train/Yearly-train.csv",
        "https://raw.githubusercontent.com/Mcompetitions/M4-methods/master/Dataset/Test/Yearly-test.csv",
    ]
    assert sorted(p.name for p in target.iterdir()) == ["Yearly-test.csv", "Yearly-train.csv"]


def test_failed_download_leaves_no_partial_file_and_explains(tmp_path, monkeypatch):
    def offline(url, timeout):
        raise URLError("no network")

    monkeypatch.setattr(m4, "urlopen", offline)
    with pytest.raises(
        InvalidInputError, match=r"download of .*Yearly-train.csv failed.*TSFORECAST_DATA_DIR"
    ):
        load_m4("yearly", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_mismatched_train_and_test_files_are_rejected(tiny_dir):
    (tiny_dir / "Yearly-test.csv").write_text(TINY_TEST.replace('"Y2"', '"Y3"'))
    with pytest.raises(InvalidInputError, match="list different series"):
        load_m4("yearly", tiny_dir, download=False)


@needs_m4
def test_published_results_are_indexed_by_method():
    published = load_m4_published("Hourly", M4_DIR)
    assert list(published.columns) == ["team", "type", "smape", "mase", "owa"]
    assert published.loc["Naive2", ["smape", "mase", "owa"]].tolist() == [18.383, 2.395, 1.0]
    assert published.loc["118", "team"] == "Smyl, S."
    assert published["smape"].notna().all()  # the workbook's note rows are dropped


def test_published_results_absent_give_none(tmp_path):
    assert load_m4_published("hourly", tmp_path) is None
