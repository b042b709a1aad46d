"""Tests of benchmarks/m4.py: run as a user runs it (a subprocess on the first few M4 Hourly series),
and its error exits called in-process."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "m4.py"
M4_DIR = Path(os.environ.get("TSFORECAST_M4_DIR", REPO.parent / "shared" / "data" / "m4"))
needs_m4 = pytest.mark.skipif(
    not (M4_DIR / "Hourly-train.csv").is_file(), reason=f"M4 Hourly files not found in {M4_DIR}"
)
N_SERIES = 5


def run_benchmark(*args):
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=120, cwd=REPO
    )


def seasonal_naive_smape(n_series, horizon=48, season_length=24):
    """sMAPE of the seasonal naive forecast, straight from the wide files (independent of tsforecast)."""
    train = pd.read_csv(M4_DIR / "Hourly-train.csv", nrows=n_series).iloc[:, 1:].to_numpy(float)
    test = pd.read_csv(M4_DIR / "Hourly-test.csv", nrows=n_series).iloc[:, 1:].to_numpy(float)
    scores = []
    for history, actual in zip(train, test, strict=True):
        history = history[~np.isnan(history)]
        forecast = np.resize(history[-season_length:], horizon)
        scores.append(np.mean(200 * np.abs(actual - forecast) / (np.abs(actual) + np.abs(forecast))))
    return float(np.mean(scores))


@pytest.fixture(scope="module")
def benchmark():
    """The script as a module, for the checks that need no subprocess."""
    spec = importlib.util.spec_from_file_location("m4_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


@pytest.fixture(scope="module")
def subset_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "results" / "m4.json"
    args = ["--frequency", "hourly", "--data-dir", M4_DIR, "--models", "naive,snaive"]
    completed = run_benchmark(*args, "--limit", N_SERIES, "--json", out, "--quiet")
    return completed, out


@needs_m4
def test_json_has_the_documented_schema(subset_run):
    completed, out = subset_run
    assert completed.returncode == 0, completed.stderr
    document = json.loads(out.read_text())
    assert set(document) == {"frequency", "n_series", "horizon", "results"}
    assert (document["frequency"], document["n_series"], document["horizon"]) == ("hourly", N_SERIES, 48)
    assert list(document["results"]) == ["naive", "snaive"]
    for scores in document["results"].values():
        assert set(scores) == {"smape", "mase", "owa", "seconds"}
        assert all(isinstance(value, float) and np.isfinite(value) for value in scores.values())
    assert not list(out.parent.glob(".*"))  # the atomic write left no temporary file


@needs_m4
def test_seasonal_naive_smape_matches_a_direct_computation(subset_run):
    completed, out = subset_run
    results = json.loads(out.read_text())["results"]
    assert results["snaive"]["smape"] == pytest.approx(seasonal_naive_smape(N_SERIES), rel=1e-12)


@needs_m4
def test_table_is_printed_with_published_columns(subset_run):
    completed, _ = subset_run
    lines = completed.stdout.splitlines()
    header = next(line for line in lines if line.startswith("model")).split()
    assert header[:5] == ["model", "sMAPE", "MASE", "OWA", "seconds"]
    assert any(line.startswith("snaive ") for line in lines)
    assert "sNaive" in completed.stdout  # the published benchmark beside ours
    assert "Naive2 as run here" in completed.stdout  # a subset is not scored against the published Naive2


def test_unknown_model_key_exits_non_zero_and_lists_the_choices(benchmark, capsys):
    with pytest.raises(SystemExit) as info:
        benchmark.main(["--data-dir", str(M4_DIR), "--models", "naive,prophet"])
    assert info.value.code != 0
    message = capsys.readouterr().err
    assert "unknown model key(s) ['prophet']" in message and "snaive" in message


def test_missing_data_exits_non_zero_with_the_folder(benchmark, tmp_path, capsys):
    assert benchmark.main(["--data-dir", str(tmp_path), "--models", "naive"]) == 1
    message = capsys.readouterr().err
    assert "Hourly-train.csv" in message and str(tmp_path) in message


@needs_m4
def test_recurrent_models_run_with_their_flags(tmp_path):
    out = tmp_path / "m4.json"
    completed = run_benchmark(
        "--data-dir", M4_DIR, "--models", "lstm,gru", "--limit", 3, "--epochs", 1, "--hidden-size", 4,
        "--device", "cpu", "--seeds", "0,1", "--json", out,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert "lstm (2 seeds)" in completed.stdout and " ± " in completed.stdout
    results = json.loads(out.read_text())["results"]
    assert list(results) == ["lstm", "gru"]
    for scores in results.values():
        assert np.isfinite([scores["smape"], scores["mase"], scores["owa"], scores["seconds"]]).all()
        seeds = scores["seeds"]
        assert list(seeds) == ["0", "1"] and seeds["0"]["smape"] != seeds["1"]["smape"]
        assert scores["smape"] == pytest.approx(np.mean([seeds["0"]["smape"], seeds["1"]["smape"]]))
        assert scores["smape_sd"] == pytest.approx(np.std([seeds["0"]["smape"], seeds["1"]["smape"]], ddof=1))
