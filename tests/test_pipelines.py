"""``tsforecast run PIPELINE.yaml`` end to end, through the real command.

The shipped ``pipelines/retrain_and_forecast.yaml`` runs in subprocesses on six M4 Hourly series (as
an hourly CSV) with a tiny LSTM; these tests share one outputs folder and one MLflow store and run in
file order: a full tracked run; for an earlier date a run, a run killed during fitting and a rerun; a
run whose deliberately weak model fails the quality gate; then bad configuration, bad data and the
M4 pipeline. The tests after them need no M4 files: a small synthetic daily pipeline, run in process
(``tsforecast.cli.main``) against an embedded SQLite MLflow store, checks the configuration errors,
the current model's out-of-sample comparison and when the model is registered.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from clitools import (
    M4_DIR,
    REPO,
    cli,
    cli_env,
    m4_hourly_csv,
    main_in_process,
    requires_m4,
    store_uri,
    tree_bytes,
)
from m4server import M4Server, write_m4_files

from tsforecast.pipelines import ConfigError, load_config

pytestmark = pytest.mark.timeout(240)

RETRAIN = REPO / "pipelines" / "retrain_and_forecast.yaml"
M4_PIPELINE = REPO / "pipelines" / "m4_hourly.yaml"
AS_OF = "2024-01-14"
BACKFILL = "2024-01-13"
TINY = [
    "--set", "data.path=sales.csv", "--set", "forecast.horizon=24", "--set", "forecast.season_length=24",
    "--set", "backtest.n_windows=1", "--set", "model.params.hidden_size=8",
    "--set", "model.params.max_epochs=3", "--set", "model.params.tbptt_steps=48",
    "--set", "tracking.register.name=sales-lstm",
    "--set", "tracking.plots=false",  # figures are tested with tracking; they cost seconds here
]  # fmt: skip
PASSING_GATE = ["--set", "gate.margin=10"]  # the model may be 11x worse: this run always passes
UNTRACKED = ["--set", "tracking.enabled=false", "--set", "tracking.register=null"]
VOLATILE = ("run.json", "model.safetensors")  # timings (the model file keeps its epochs' seconds)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pipeline")
    m4_hourly_csv(folder / "sales.csv")  # 2024-01-01 00:00 to 2024-01-15 23:00, 6 series
    return folder


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return store_uri(tmp_path_factory)


@pytest.fixture(scope="module")
def first_run(workdir, store):
    result = cli("run", RETRAIN, "--as-of", AS_OF, *TINY, *PASSING_GATE, cwd=workdir, store=store)
    assert result.returncode == 0, result.stderr
    return result


def outputs(workdir) -> Path:
    return workdir / "outputs" / "retrain-and-forecast"


@requires_m4
def test_full_run_writes_outputs_manifest_and_mlflow_run(workdir, store, first_run):
    folder = outputs(workdir) / AS_OF
    assert folder.is_symlink() and (outputs(workdir) / "current").resolve() == folder.resolve()
    names = {p.name for p in folder.iterdir()}
    assert names == {
        "forecasts.parquet", "baseline_forecasts.parquet", "comparison.csv", "backtest_by_horizon.csv",
        "model.safetensors", "manifest.json", "run.json",
    }  # fmt: skip
    forecasts = pd.read_parquet(folder / "forecasts.parquet")
    assert list(forecasts.columns) == ["unique_id", "ds", "y_pred"] and len(forecasts) == 6 * 24
    # --as-of 2024-01-14 leaves out the last day of the data: forecasts start on the 15th.
    assert forecasts["ds"].min() == pd.Timestamp("2024-01-15 00:00")

    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["status"] == "success" and manifest["as_of"] == AS_OF
    assert manifest["data"]["rows_after_as_of"] == 6 * 24 and manifest["data"]["n_series"] == 6
    data_file = manifest["inputs"][0]
    assert data_file["sha256"] == hashlib.sha256((workdir / "sales.csv").read_bytes()).hexdigest()
    assert manifest["config"]["model"]["params"]["hidden_size"] == 8
    assert manifest["gate"]["passed"] is True and set(manifest["backtest"]["summary"]) >= {"lstm", "snaive"}
    assert manifest["outputs"]["forecasts.parquet"]["rows"] == len(forecasts)
    assert manifest["model"]["file"] == "model.safetensors" and "torch" in manifest["packages"]
    comparison = pd.read_csv(folder / "comparison.csv", index_col="model")
    assert list(comparison.index) == ["lstm", "snaive", "naive2", "theta"]

    run = json.loads((folder / "run.json").read_text())["mlflow"]
    assert run["registered_model_uri"] == "models:/sales-lstm@champion"
    from mlflow import MlflowClient

    client = MlflowClient(store)
    parent = client.get_run(run["run_id"])
    assert parent.data.tags["tsforecast.status"] == "success"
    assert "backtest/comparison.csv" in {a.path for a in client.list_artifacts(run["run_id"], "backtest")}
    history = client.get_metric_history(run["fit_run_id"], "grad_norm_mean")
    assert [m.step for m in history] == [1, 2, 3]
    version = client.get_model_version_by_alias("sales-lstm", "champion")
    assert version.tags["tsforecast.as_of"] == AS_OF


@requires_m4
def test_killed_run_keeps_previous_outputs_and_rerun_is_identical(workdir, store, first_run):
    # Untracked runs for an earlier date (a backfill: `current` stays on the first run's model).
    args = ["run", RETRAIN, "--as-of", BACKFILL, *TINY, *PASSING_GATE, *UNTRACKED]
    complete = cli(*args, cwd=workdir, store=store)
    assert complete.returncode == 0, complete.stderr
    folder = outputs(workdir) / BACKFILL
    before = tree_bytes(folder)
    versions = sorted(p.name for p in (outputs(workdir) / ".versions").iterdir())

    # Training for 3 s (max_time): the backtest's fit ends, the final fit is killed half-way.
    slow = ["--set", "model.params.max_epochs=100000", "--set", "model.params.patience=null"]
    slow += ["--set", "model.params.max_time=3"]
    log = workdir / "killed.log"
    with open(log, "w") as stream:
        process = subprocess.Popen(
            [sys.executable, "-m", "tsforecast.cli", *map(str, args), *slow],
            cwd=workdir, env=cli_env(store), stdout=stream, stderr=stream,
        )  # fmt: skip
    try:
        _wait_for(log, "fitting lstm", process, timeout=90)
        time.sleep(0.5)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL
    assert tree_bytes(folder) == before  # the complete previous outputs, untouched
    assert sorted(p.name for p in (outputs(workdir) / ".versions").iterdir()) == versions

    rerun = cli(*args, cwd=workdir, store=store)
    assert rerun.returncode == 0, rerun.stderr
    assert tree_bytes(folder, skip=VOLATILE) == {k: v for k, v in before.items() if k not in VOLATILE}
    assert len(list((outputs(workdir) / ".versions").iterdir())) == len(versions)  # replaced run removed
    assert (outputs(workdir) / "current").resolve() == (outputs(workdir) / AS_OF).resolve()


@requires_m4
def test_quality_gate_trips_on_a_weak_model_and_keeps_the_previous_one(workdir, store, first_run):
    current_before = (outputs(workdir) / "current").resolve()
    weak = [
        "--set", "model.params.max_epochs=1", "--set", "model.params.hidden_size=2",
        "--set", "model.params.learning_rate=1.0", "--set", "gate.margin=0.05",
    ]  # fmt: skip
    result = cli("run", RETRAIN, "--as-of", "2024-01-15", *TINY, *UNTRACKED, *weak, cwd=workdir, store=store)
    assert result.returncode == 4, result.stderr
    assert "quality gate FAILED" in result.stdout and "previous model stays current" in result.stderr
    folder = outputs(workdir) / "2024-01-15"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["status"] == "gate_failed" and manifest["model"]["kept"] is False
    assert not (folder / "forecasts.parquet").exists() and not (folder / "model.safetensors").exists()
    fallback = pd.read_parquet(folder / "baseline_forecasts.parquet")
    assert fallback["model"].nunique() == 1 and len(fallback) == 6 * 24
    comparison = pd.read_csv(folder / "comparison.csv", index_col="model")
    assert "current" in comparison.index  # the model of 2024-01-14 is a reference too
    assert (outputs(workdir) / "current").resolve() == current_before


@requires_m4
def test_bad_config_exits_2_naming_the_field(workdir, store):
    bad = ["--set", "gate.margin=abc", "--set", "outputs.colour=red"]
    result = cli("run", RETRAIN, *bad, cwd=workdir, store=store)
    assert result.returncode == 2
    assert "gate.margin: expected float, got 'abc'" in result.stderr
    assert "outputs.colour: unknown key; allowed keys: dir, format" in result.stderr
    with pytest.raises(ConfigError, match="model.params.hidden_size: expected int, got 'abc'"):
        load_config(RETRAIN, ["model.params.hidden_size=abc"])
    with pytest.raises(ConfigError, match="data.path: environment variable SALES_FILE is not set"):
        load_config(RETRAIN, ["data.path=${SALES_FILE}"], environ={})


@requires_m4
def test_bad_data_exits_3_naming_the_series(workdir, store):
    frame = pd.read_csv(workdir / "sales.csv")
    frame["y"] = frame["y"].astype(object)
    frame.loc[frame.index[frame["unique_id"] == "H3"][10], "y"] = "n/a"
    frame.to_csv(workdir / "bad.csv", index=False)
    naive = ["--set", "model.name=naive", "--set", "model.params={}"]  # no torch: the data fail first
    args = ["--as-of", "2024-02-01", *TINY, *UNTRACKED, *naive, "--set", "data.path=bad.csv"]
    result = cli("run", RETRAIN, *args, cwd=workdir, store=store)
    assert result.returncode == 3
    assert "step 'validate' failed" in result.stderr and "series 'H3'" in result.stderr
    assert not (outputs(workdir) / "2024-02-01").exists()


@requires_m4
def test_m4_pipeline_scores_the_test_set_beside_the_published_figures(workdir, store):
    # The naive model in place of the LSTM keeps torch out; the demo runs the LSTM itself.
    settings = [
        "--set", "data.limit_series=4", "--set", "model.name=naive", "--set", "model.params={}",
        "--set", "gate.enabled=false", "--set", f"outputs.dir={workdir / 'm4'}",
        "--set", f"data.dir={M4_DIR}", *UNTRACKED,
    ]  # fmt: skip
    result = cli("run", M4_PIPELINE, "--as-of", AS_OF, *settings, cwd=workdir, store=store)
    assert result.returncode == 0, result.stderr
    assert "published M4 results for reference" in result.stdout
    scores = pd.read_csv(workdir / "m4" / AS_OF / "evaluation.csv", index_col="model")
    assert list(scores.index) == ["naive", "naive2", "snaive", "ses", "theta"]
    assert scores.loc["naive2", "owa"] == 1.0 and scores.loc["naive2", "m4_smape"] == pytest.approx(18.383)
    assert len(pd.read_parquet(workdir / "m4" / AS_OF / "forecasts.parquet")) == 4 * 48


# ------------------------------------------------------------------ the demo on a stranger's machine
# The demo pipeline in a fresh clone: no ../shared beside the working directory, no M4_DIR, an empty
# user cache, and the M4 "repository" a local server with small yearly files (no LSTM: no torch).
FRESH = [
    "--as-of", AS_OF, "--set", "data.frequency=yearly", "--set", "model.name=naive",
    "--set", "model.params={}", "--set", "baselines=[snaive]", "--set", "gate.enabled=false", *UNTRACKED,
]  # fmt: skip


def run_fresh(tmp_path: Path, url: str, store: str) -> subprocess.CompletedProcess:
    clone = tmp_path / "clone"
    clone.mkdir(exist_ok=True)
    env = {k: v for k, v in cli_env(store).items() if k not in ("M4_DIR", "TSFORECAST_DATA_DIR")}
    env.update(XDG_CACHE_HOME=str(tmp_path / "xdg"), TSFORECAST_M4_URL=url, NO_PROXY="127.0.0.1")
    command = [sys.executable, "-m", "tsforecast.cli", "run", str(M4_PIPELINE), *FRESH]
    return subprocess.run(command, cwd=clone, env=env, capture_output=True, text=True, timeout=120)


def test_the_demo_pipeline_reads_m4_from_dir_or_finds_it():
    assert load_config(M4_PIPELINE, environ={}).data.dir == ""  # ${M4_DIR:-} unset: search, download
    assert load_config(M4_PIPELINE, environ={"M4_DIR": "/data/m4"}).data.dir == "/data/m4"


def test_the_demo_downloads_m4_once_on_a_fresh_machine(tmp_path, store):
    cache = tmp_path / "xdg" / "tsforecast" / "m4"
    with M4Server(write_m4_files(tmp_path / "served")) as server:
        first = run_fresh(tmp_path, server.url, store)
        assert first.returncode == 0, first.stderr
        assert server.requests == ["/Train/Yearly-train.csv", "/Test/Yearly-test.csv"]
        manifest = manifest_of(tmp_path / "clone" / "outputs" / "m4-hourly" / AS_OF)
        assert [item["path"] for item in manifest["inputs"]] == [
            str(cache / "Yearly-train.csv"),
            str(cache / "Yearly-test.csv"),
        ]
        again = run_fresh(tmp_path, server.url, store)
        assert again.returncode == 0, again.stderr
        assert len(server.requests) == 2  # the second run reads the cache


def test_the_demo_offline_exits_3_saying_how_to_use_local_files(tmp_path, store, closed_port):
    url = f"http://127.0.0.1:{closed_port}/{{part}}/{{name}}"
    result = run_fresh(tmp_path, url, store)
    assert result.returncode == 3, result.stderr
    assert f"cannot connect to {url.format(part='Train', name='Yearly-train.csv')}" in result.stderr
    assert "M4_DIR=FOLDER" in result.stderr and "--set data.dir=FOLDER" in result.stderr
    assert not [p for p in (tmp_path / "xdg").rglob("*") if p.is_file()]  # no partial download


# ------------------------------------------------------------------ a synthetic daily pipeline
SYNTHETIC = """\
name: synthetic
data: {path: sales.csv, freq: D}
forecast: {horizon: 7, season_length: 7}
model: {name: naive}
baselines: [snaive, naive2]
backtest: {n_windows: 3}
gate: {metric: mase, margin: 10, compare_current: true}
outputs: {dir: outputs, format: csv}
tracking: {enabled: false}
"""
TRACKED = ["--set", "tracking.enabled=true", "--set", "tracking.plots=false"]


def daily_csv(path: Path, days: int = 120, n_series: int = 3) -> pd.DataFrame:
    """Three weekly-seasonal series, one row a day from 2024-01-01 to 2024-04-29."""
    rng = np.random.default_rng(0)
    times = pd.date_range("2024-01-01", periods=days, freq="D")
    weekly = 3 * np.sin(2 * np.pi * np.arange(days) / 7)
    frame = pd.concat(
        [
            pd.DataFrame({"unique_id": f"s{k}", "ds": times, "y": 10 + k + weekly + rng.normal(0, 0.5, days)})
            for k in range(n_series)
        ],
        ignore_index=True,
    )
    frame.to_csv(path, index=False)
    return frame


@pytest.fixture
def daily(tmp_path, monkeypatch):
    """A folder with sales.csv and pipeline.yaml, made the working directory (relative paths)."""
    monkeypatch.chdir(tmp_path)
    daily_csv(tmp_path / "sales.csv")
    (tmp_path / "pipeline.yaml").write_text(SYNTHETIC)
    return tmp_path


@pytest.fixture(scope="module")
def sqlite_store(tmp_path_factory):
    """An embedded MLflow store (SQLite) shared by this module's in-process tests."""
    pytest.importorskip("mlflow")
    return f"sqlite:///{(tmp_path_factory.mktemp('mlflow') / 'mlflow.db').as_posix()}"


def run_daily(as_of: str, *settings) -> int:
    return main_in_process("run", "pipeline.yaml", "--as-of", as_of, *settings)


def manifest_of(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())


def test_config_problems_are_reported_together_with_duplicated_keys(tmp_path):
    path = tmp_path / "pipeline.yaml"
    path.write_text(SYNTHETIC + "gate: {margin: 0.5}\n")  # a second gate section
    overrides = ["backtest.n_windows=abc", "model.name=snaive", "model.params.season_length=abc"]
    with pytest.raises(ConfigError) as error:
        load_config(path, overrides)
    message = str(error.value)
    assert "3 problems" in message
    assert "gate: duplicated key (lines 7 and 10)" in message
    assert "backtest.n_windows: expected int, got 'abc'" in message
    assert "model.params.season_length: expected int, got 'abc'" in message  # checked all the same
    path.write_text(SYNTHETIC)
    assert load_config(path).tracking.diagnostics is True
    with pytest.raises(ConfigError, match="tracking.diagnostics: expected bool, got 'sometimes'"):
        load_config(path, ["tracking.diagnostics=sometimes"])


def test_a_gap_in_the_data_names_the_pipeline_setting(daily, capsys):
    frame = pd.read_csv("sales.csv")
    frame.loc[10, "y"] = np.nan  # inside series s0
    frame.to_csv("sales.csv", index=False)
    assert run_daily("2024-04-15") == 3
    err = capsys.readouterr().err
    assert "step 'validate' failed: series 's0' has 1 missing value(s) inside it" in err
    assert "set data.missing: interpolate in the pipeline" in err
    assert run_daily("2024-04-15", "--set", "data.missing=interpolate") == 0


def test_the_current_model_is_scored_only_after_its_training_data(daily, capsys):
    from tsforecast.backtesting import compare
    from tsforecast.baselines import Naive

    assert run_daily("2024-04-01") == 0
    # Data to 04-15: the three windows start on 03-26, 04-02 and 04-09; the model of 04-01 saw the first.
    assert run_daily("2024-04-15") == 0
    current = manifest_of(daily / "outputs" / "2024-04-15")["current_model"]
    assert current["source"] == "outputs/2024-04-01/model.joblib"
    assert current["compared"] and current["windows"] == [1, 2] and current["n_windows"] == 3
    assert current["trained_to"] == "2024-04-01 00:00:00"
    # The current model is a Naive, which refits on each window: on windows 1 and 2 it scores what
    # a backtest of the last two windows gives.
    history = pd.read_csv("sales.csv", parse_dates=["ds"]).query("ds <= '2024-04-15'")
    expected = compare({"naive": Naive()}, history, 7, n_windows=2, season_length=7).summary.loc["naive"]
    comparison = pd.read_csv(daily / "outputs" / "2024-04-15" / "comparison.csv", index_col="model")
    assert comparison.loc["current", "mase"] == pytest.approx(expected["mase"])
    assert comparison.loc["current", "owa"] > 0  # relative to Naive2 on the same windows

    # From 04-03 one window of 7 days starts on 03-28, inside the model's training data: left out.
    capsys.readouterr()
    assert run_daily("2024-04-03", "--set", "backtest.n_windows=1") == 0
    out, err = capsys.readouterr()
    current = manifest_of(daily / "outputs" / "2024-04-03")["current_model"]
    assert current["compared"] is False and current["windows"] == []
    assert "current" not in pd.read_csv(daily / "outputs" / "2024-04-03" / "comparison.csv")["model"].values
    assert "not comparing with the current model outputs/2024-04-01/model.joblib" in err
    assert "not compared: trained on data up to 2024-04-01 00:00:00" in out


def test_out_of_sample_windows_from_the_training_ends_or_the_as_of():
    from tsforecast.pipelines.current import _out_of_sample

    days = pd.to_datetime(["2024-01-02", "2024-01-05", "2024-01-04", "2024-01-07"])
    starts = pd.DataFrame({"window": [0, 0, 1, 1], "unique_id": ["a", "b", "a", "b"], "ds": days})
    end = pd.Timestamp("2024-01-03")
    assert _out_of_sample(starts, {"a": end}, None) == ([1], "2024-01-03 00:00:00")  # b: never seen
    assert _out_of_sample(starts, {"a": end, "b": pd.Timestamp("2024-01-07")}, None)[0] == []
    assert _out_of_sample(starts, None, pd.Timestamp("2024-01-01 23:59"))[0] == [0, 1]  # from the as-of
    assert _out_of_sample(starts, {"a": 3}, None) == ([], None)  # integer steps: cannot tell
    assert _out_of_sample(starts, None, None) == ([], None)


def test_the_gate_binds_on_its_tightest_comparison():
    from tsforecast.pipelines.evaluation import gate, tightest

    table = pd.DataFrame({"mase": [1.0, 1.1, 0.98]}, index=["naive", "snaive", "current"])
    passed = gate(table, "naive", ["snaive"], "mase", 0.0)
    failed = gate(table, "naive", ["current"], "mase", 0.0, note="on window(s) 2 of 3")
    assert tightest([passed, failed]) == failed and "on window(s) 2 of 3" in failed.describe()
    assert tightest([passed, gate(table, "naive", [], "mase", 0.0)]) == passed


def test_the_model_is_registered_last_and_once_per_date(daily, sqlite_store, monkeypatch, capsys):
    from mlflow import MlflowClient

    from tsforecast.pipelines.outputs import OutputStore

    name = "synthetic-naive"
    tracked = [*TRACKED, "--set", f"tracking.tracking_uri={sqlite_store}"]
    tracked += ["--set", f"tracking.register.name={name}", "--set", "tracking.experiment=registry"]
    client = MlflowClient(sqlite_store)

    def versions():
        return sorted(int(v.version) for v in client.search_model_versions(f"name='{name}'"))

    def champion():
        return client.get_model_version_by_alias(name, "champion")

    assert run_daily("2024-04-01", *tracked) == 0
    first = champion()
    assert versions() == [1] and first.tags["tsforecast.as_of"] == "2024-04-01"
    assert first.tags["tsforecast.pipeline"] == "synthetic"
    assert len(first.tags["tsforecast.fingerprint"]) == 64
    recorded = json.loads((daily / "outputs" / "2024-04-01" / "run.json").read_text())["mlflow"]
    assert recorded["registered_model_uri"] == f"models:/{name}@champion"
    assert recorded["registered_version"] == "1"

    # The same date on the same data again: its version is found, nothing is registered.
    assert run_daily("2024-04-01", *tracked) == 0
    assert versions() == [1] and int(champion().version) == 1

    # Bad actuals stop the run in the validate step, before any training.
    pd.DataFrame({"unique_id": ["s0"], "ds": ["2023-01-01"], "y": [1.0]}).to_csv("test.csv", index=False)
    capsys.readouterr()
    assert run_daily("2024-04-15", *tracked, "--set", "evaluation.test_path=test.csv") == 3
    err = capsys.readouterr().err
    assert "step 'validate' failed: the test data cover none of the 7 time stamps" in err

    # A run that fails after the fit (writing its outputs) leaves the registry as it was.
    with monkeypatch.context() as patch:
        patch.setattr(OutputStore, "publish", _full_disk)
        assert run_daily("2024-04-15", *tracked) == 1
    assert versions() == [1] and int(champion().version) == 1
    assert not (daily / "outputs" / "2024-04-15").exists()
    experiment = client.get_experiment_by_name("registry").experiment_id
    failed = client.search_runs([experiment], "attributes.status = 'FAILED'")
    assert [r.data.tags["tsforecast.as_of"] for r in failed] == ["2024-04-15"]

    # The next run compares with the registered model of 04-01 (out of sample), then registers its own.
    assert run_daily("2024-04-15", *tracked) == 0
    current = manifest_of(daily / "outputs" / "2024-04-15")["current_model"]
    assert current["source"] == f"models:/{name}/1" and current["windows"] == [1, 2]
    assert versions() == [1, 2] and int(champion().version) == 2
    # A backfill registers its model without moving the alias backwards.
    assert run_daily("2024-04-08", *tracked) == 0
    assert versions() == [1, 2, 3] and int(champion().version) == 2


def _full_disk(*args, **kwargs):
    raise OSError(28, "No space left on device")


def test_diagnostics_of_the_fitted_lstm_go_into_the_pipeline_run(daily, sqlite_store):
    import matplotlib.image
    from mlflow import MlflowClient

    lstm = "{hidden_size: 4, num_layers: 1, max_epochs: 1, tbptt_steps: 14}"
    settings = ["--set", "model.name=lstm", "--set", f"model.params={lstm}", "--set", "gate.enabled=false"]
    settings += [*TRACKED, "--set", "tracking.plots=true", "--set", f"tracking.tracking_uri={sqlite_store}"]
    settings += ["--set", "tracking.experiment=diagnostics", "--set", "backtest.n_windows=1"]
    assert run_daily("2024-04-15", *settings) == 0
    run_id = json.loads((daily / "outputs" / "2024-04-15" / "run.json").read_text())["mlflow"]["run_id"]
    client = MlflowClient(sqlite_store)
    logged = {a.path for a in client.list_artifacts(run_id, "diagnostics")}
    expected = {"diagnostics/gradient_flow.png", "diagnostics/gates.csv", "diagnostics/report.txt"}
    assert expected <= logged
    image = client.download_artifacts(run_id, "diagnostics/gradient_flow.png", str(daily))
    assert matplotlib.image.imread(image).shape[0] > 100
    assert np.isfinite(client.get_run(run_id).data.metrics["diagnostics/far_near_ratio"])


def _wait_for(log: Path, text: str, process, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text():
        if process.poll() is not None:
            pytest.fail(
                f"the run ended (code {process.returncode}) before {text!r}:\n{log.read_text()[-3000:]}"
            )
        if time.monotonic() > deadline:
            pytest.fail(f"no {text!r} in the log after {timeout} s:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
