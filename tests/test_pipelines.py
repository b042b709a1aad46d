"""``tsforecast run PIPELINE.yaml`` end to end, through the real command in subprocesses.

The shipped ``pipelines/retrain_and_forecast.yaml`` runs on six M4 Hourly series (as an hourly CSV)
with a tiny LSTM; the tests share one outputs folder and one MLflow store and run in file order: a
full tracked run; for an earlier date a run, a run killed during fitting and a rerun; a run whose
deliberately weak model fails the quality gate; then bad configuration, bad data and the M4 pipeline.
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

import pandas as pd
import pytest
from clitools import M4_DIR, REPO, cli, cli_env, m4_hourly_csv, requires_m4, store_uri, tree_bytes

from tsforecast.pipelines import ConfigError, load_config

pytestmark = [requires_m4, pytest.mark.timeout(240)]

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
