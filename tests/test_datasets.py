"""Tests of the dataset loaders (tsforecast.datasets, tsforecast.data.m4, tsforecast.data.download).

The M4 Hourly files are read from $TSFORECAST_M4_DIR (default ../shared/data/m4 next to the repo);
those tests skip when the folder is absent. Downloads go to a real HTTP server on 127.0.0.1
(tests/m4server.py), never to the internet; every test runs in an empty working directory with its
own user cache ($XDG_CACHE_HOME, which platformdirs follows on Linux).
"""

import logging
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from m4server import M4Server, write_m4_files

from tsforecast.datasets import M4Data, default_data_dir, load_m4, load_m4_published
from tsforecast.exceptions import InvalidInputError, InvalidParameterError

M4_DIR = Path(
    os.environ.get("TSFORECAST_M4_DIR", Path(__file__).resolve().parents[2] / "shared" / "data" / "m4")
)
needs_m4 = pytest.mark.skipif(
    not (M4_DIR / "Hourly-train.csv").is_file(), reason=f"M4 Hourly files not found in {M4_DIR}"
)
xdg_cache = pytest.mark.skipif(
    sys.platform in ("darwin", "win32"), reason="platformdirs follows XDG_CACHE_HOME on Linux and BSD only"
)

# Two yearly series of lengths 3 and 5, written the way the M4 files are: quoted cells, trailing
# empty cells for the shorter series.
TINY_TRAIN = '"V1","V2","V3","V4","V5","V6"\n"Y1","1","2","3","",""\n"Y2","10","20","30","40","50"\n'
TINY_TEST = (
    '"V1","V2","V3","V4","V5","V6","V7"\n"Y1","4","5","6","7","8","9"\n"Y2","60","70","80","90","100","110"\n'
)


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """An empty working directory (no ../shared beside it), an empty user cache, no M4 settings."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    for name in ("TSFORECAST_DATA_DIR", "TSFORECAST_M4_URL"):
        monkeypatch.delenv(name, raising=False)
    return work


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "xdg" / "tsforecast" / "m4"


@pytest.fixture
def server(tmp_path, monkeypatch):
    """The stand-in for the organisers' repository, serving small yearly files; the loader points at it."""
    with M4Server(write_m4_files(tmp_path / "served")) as server:
        monkeypatch.setenv("TSFORECAST_M4_URL", server.url)
        yield server


def files_under(folder: Path) -> list:
    """Every file below ``folder``, hidden temporary files included."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


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


def test_missing_files_without_download_say_where_and_how(tmp_path, server, cache):
    with pytest.raises(InvalidInputError) as info:
        load_m4("hourly", tmp_path, download=False)
    message = str(info.value)
    assert "Hourly-train.csv" in message and str(tmp_path) in message and str(cache) in message
    assert "download=False" in message
    assert "data_dir" in message and "TSFORECAST_DATA_DIR" in message and "M4_DIR" in message
    assert server.requests == []


def test_env_var_root_is_searched_in_its_m4_subfolder(tmp_path, monkeypatch):
    monkeypatch.setenv("TSFORECAST_DATA_DIR", str(tmp_path))
    with pytest.raises(InvalidInputError, match=str(tmp_path / "m4")):
        load_m4("hourly", download=False)
    (tmp_path / "m4").mkdir()
    (tmp_path / "m4" / "Yearly-train.csv").write_text(TINY_TRAIN)
    (tmp_path / "m4" / "Yearly-test.csv").write_text(TINY_TEST)
    assert load_m4("yearly", download=False).n_series == 2


def test_the_shared_folder_beside_the_working_directory_is_read_without_network(
    tmp_path, monkeypatch, closed_port
):
    monkeypatch.setenv("TSFORECAST_M4_URL", f"http://127.0.0.1:{closed_port}/{{part}}/{{name}}")
    write_m4_files(tmp_path / "shared" / "data" / "m4")  # ../shared/data/m4 from the working directory
    data = load_m4("yearly")
    assert data.n_series == 3 and data.folder == Path("../shared/data/m4")


@xdg_cache
def test_default_cache_is_the_platformdirs_user_cache(tmp_path):
    assert default_data_dir() == tmp_path / "xdg" / "tsforecast"


@xdg_cache
def test_download_fills_an_empty_cache_once(server, cache):
    data = load_m4("yearly")
    assert data.n_series == 3 and data.folder == cache
    assert server.requests == ["/Train/Yearly-train.csv", "/Test/Yearly-test.csv"]
    assert files_under(cache) == ["Yearly-test.csv", "Yearly-train.csv"]  # no temporary leftovers
    again = load_m4("yearly")
    assert len(server.requests) == 2  # read from the cache, the server is not asked again
    assert again.train.equals(data.train) and again.test.equals(data.test)


@xdg_cache
def test_only_the_missing_file_is_downloaded(server, cache):
    cache.mkdir(parents=True)
    shutil.copy(server.root / "Yearly-train.csv", cache)
    assert load_m4("yearly").n_series == 3
    assert server.requests == ["/Test/Yearly-test.csv"]


@xdg_cache
@needs_m4
def test_the_real_hourly_files_pass_their_checksums(server, cache):
    for name in ("Hourly-train.csv", "Hourly-test.csv"):
        shutil.copy(M4_DIR / name, server.root)
    assert load_m4("hourly").n_series == 414
    assert files_under(cache) == ["Hourly-test.csv", "Hourly-train.csv"]


@xdg_cache
def test_an_interrupted_download_leaves_nothing_and_explains(server, cache):
    server.truncated.add("Yearly-train.csv")
    size = (server.root / "Yearly-train.csv").stat().st_size
    url = server.url.format(part="Train", name="Yearly-train.csv")
    with pytest.raises(InvalidInputError) as info:
        load_m4("yearly")
    message = str(info.value)
    assert f"{url}: the download stopped after {size // 2} of the {size} bytes" in message
    assert "data_dir=" in message and "TSFORECAST_DATA_DIR" in message
    assert files_under(cache.parent) == []  # neither the file nor a temporary part of it
    server.truncated.clear()
    assert load_m4("yearly").n_series == 3  # the next call downloads it whole


@xdg_cache
def test_a_known_file_with_another_checksum_is_refused(server, cache):
    write_m4_files(server.root, prefix="Hourly", horizon=48)  # valid M4 files, but not the real ones
    with pytest.raises(InvalidInputError, match=r"not the [0-9a-f]{64} of Hourly-train.csv: a changed"):
        load_m4("hourly")
    assert files_under(cache.parent) == []


@xdg_cache
def test_a_file_that_is_not_m4_is_refused_when_its_checksum_is_unknown(server, cache):
    (server.root / "Yearly-train.csv").write_text("<html>rate limited</html>\n")
    with pytest.raises(InvalidInputError, match=r"Yearly-train.csv: not an M4 file"):
        load_m4("yearly")
    assert files_under(cache.parent) == []


@xdg_cache
def test_a_server_error_is_named_and_complete_files_are_kept(server, cache):
    (server.root / "Yearly-test.csv").unlink()
    with pytest.raises(InvalidInputError, match=r"Test/Yearly-test.csv: the server answered HTTP 404"):
        load_m4("yearly")
    assert files_under(cache) == ["Yearly-train.csv"]  # verified and whole: not fetched again


def test_the_url_template_takes_part_and_name_only(server, monkeypatch):
    monkeypatch.setenv("TSFORECAST_M4_URL", "https://mirror.example.org/{file}")
    with pytest.raises(InvalidParameterError, match=r"TSFORECAST_M4_URL=.*\{part\} \(Train or Test\)"):
        load_m4("yearly")


@xdg_cache
def test_offline_names_the_folders_the_url_and_how_to_use_local_files(monkeypatch, closed_port, cache):
    url = f"http://127.0.0.1:{closed_port}/{{part}}/{{name}}"
    monkeypatch.setenv("TSFORECAST_M4_URL", url)
    with pytest.raises(InvalidInputError) as info:
        load_m4("hourly")
    message = str(info.value)
    assert f"cannot connect to {url.format(part='Train', name='Hourly-train.csv')}" in message
    assert str(cache) in message and "no local folder was given" in message
    for hint in ("data_dir=", "TSFORECAST_DATA_DIR", "--data-dir", "M4_DIR=", "TSFORECAST_M4_URL"):
        assert hint in message
    assert files_under(cache.parent) == []


@xdg_cache
def test_a_given_folder_without_the_files_falls_back_to_the_cache(tmp_path, server, cache, caplog):
    with caplog.at_level(logging.WARNING, logger="tsforecast.data.m4"):
        data = load_m4("yearly", tmp_path / "empty")
    assert data.folder == cache and "using the download cache" in caplog.text
    assert not (tmp_path / "empty").exists()


def test_download_true_writes_the_missing_files_into_the_given_folder(tmp_path, server):
    target = tmp_path / "mine" / "m4"
    assert load_m4("yearly", target, download=True).folder == target
    assert files_under(target) == ["Yearly-test.csv", "Yearly-train.csv"]


def test_download_must_be_auto_true_or_false(tiny_dir):
    with pytest.raises(InvalidParameterError, match="download must be 'auto', True or False; got 'yes'"):
        load_m4("yearly", tiny_dir, download="yes")


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
