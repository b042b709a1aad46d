"""Issue 15's failure cases, one section per numbered item, each through the real command (a
subprocess, or ``tsforecast.cli.main`` in process) or the public API as the issue tells it, asserting
the message and the exit code.

The deeper tests of each fix live beside the modules they test: ``test_nn_divergence.py``,
``test_tracking_store.py``, ``test_tuning_settings.py``, ``test_nn_model_file.py``,
``test_pipelines_staleness.py``, ``test_data_io.py``, ``test_pipelines_yaml.py`` and
``test_baselines.py`` (extreme magnitudes).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from clitools import cli, cli_env, cli_together, main_in_process, tree_bytes
from faulttools import (
    DAILY_PIPELINE,
    LSTM_TINY,
    TUNE_QUICK,
    TUNE_TINY,
    around_ten,
    clip_space,
    daily_pipeline,
    tune_cli_config,
    tuning_panel,
    without_mlflow_settings,
)
from modelfiles import flip_every_bit

from tsforecast.baselines import AutoARIMA, Theta
from tsforecast.cli.exit_codes import ExitCode, for_error
from tsforecast.exceptions import InvalidParameterError, NotFittedError, TrainingError
from tsforecast.nn import LSTMForecaster, load
from tsforecast.tuning import make_storage, tune
from tsforecast.tuning.storage import SETTINGS_ATTR

try:  # the tuning extra is optional: the cases that need it are skipped without it
    import optuna
    from optuna.trial import TrialState
except ImportError:
    optuna = None

needs_optuna = pytest.mark.skipif(optuna is None, reason="optuna is not installed (tsforecast[tuning])")
needs_mlflow = pytest.mark.skipif(find_spec("mlflow") is None, reason="mlflow is not installed")

pytestmark = pytest.mark.timeout(120)
torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]


# -- 1. Diverged training is silent -----------------------------------------------------------------
DIVERGING = {
    "learning_rate=1e6": {"learning_rate": 1.0e6},
    "weight_decay=1e6": {"weight_decay": 1.0e6},
    "learning_rate=1000": {"learning_rate": 1000.0},
}


@pytest.mark.parametrize("settings", DIVERGING.values(), ids=DIVERGING.keys())
def test_a_diverging_fit_raises_training_error_and_leaves_no_fitted_model(settings):
    model = LSTMForecaster(**LSTM_TINY, **settings)
    with pytest.raises(TrainingError, match=r"training diverged in epoch \d of 3: .*Lower learning_rate"):
        model.fit(around_ten())
    assert not hasattr(model, "network_") and not hasattr(model, "training_panel_")
    with pytest.raises(NotFittedError):
        model.predict()
    assert len(model.history_) >= 1  # what went wrong stays visible: the diverged epoch is the last row
    assert model.history_["train_loss"].iloc[-1] > 100


@pytest.fixture(scope="module")
def divergence_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("divergence")
    long = around_ten().rename_axis("ds").reset_index().melt("ds", var_name="unique_id", value_name="y")
    long[["unique_id", "ds", "y"]].to_csv(folder / "data.csv", index=False)
    return folder


def fit_args(param: str) -> list:
    name = param.split("=")[0]
    return [
        "fit", "data.csv", "--model", "lstm", "--horizon", 12, "--season-length", 24,
        "-p", "hidden_size=8", "-p", "max_epochs=3", "-p", "tbptt_steps=48", "-p", "random_state=0",
        "-p", param, "--output", f"{name}.safetensors", "--forecast-output", f"{name}.csv",
    ]  # fmt: skip


def assert_diverged(code: int, stderr: str, folder, param: str) -> None:
    name = param.split("=")[0]
    assert code == ExitCode.TRAINING == 5, stderr
    assert "training diverged in epoch" in stderr and "Lower learning_rate" in stderr
    assert "Traceback" not in stderr
    assert not (folder / f"{name}.safetensors").exists() and not (folder / f"{name}.csv").exists()


def test_cli_fit_that_diverges_exits_5_and_writes_nothing(divergence_folder):
    """The issue's command, in a subprocess: it used to exit 0 and write inf and 0.0 forecasts."""
    param = "learning_rate=1.0e+6"
    folder = divergence_folder
    result = cli(*fit_args(param), cwd=folder, store=f"sqlite:///{folder / 'mlflow.db'}")
    assert_diverged(result.returncode, result.stderr, folder, param)


@pytest.mark.parametrize("param", ["weight_decay=1.0e+6", "learning_rate=1000"])
def test_cli_fit_with_other_diverging_settings_exits_5(divergence_folder, param, monkeypatch, capsys):
    monkeypatch.chdir(divergence_folder)  # the command in this process (torch already imported: fast)
    code = main_in_process(*fit_args(param))
    assert_diverged(code, capsys.readouterr().err, divergence_folder, param)


DIVERGING_PIPELINE = daily_pipeline(
    name="diverge",
    data="{path: sales.csv, freq: D, max_staleness: 2}",
    model="{name: lstm, params: {learning_rate: 1000, max_epochs: 2, hidden_size: 8, tbptt_steps: 28}}",
    baselines=None,
    gate="{enabled: false}",
    tracking="{enabled: true, plots: false, diagnostics: false, register: {name: diverge}}",
)


def test_a_pipeline_whose_training_diverges_exits_5_and_publishes_and_registers_nothing(tmp_path):
    mlflow = pytest.importorskip("mlflow")
    write_daily(tmp_path / "sales.csv")
    (tmp_path / "pipeline.yaml").write_text(DIVERGING_PIPELINE)
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = cli("run", "pipeline.yaml", "--as-of", "2024-04-29", cwd=tmp_path, store=store)
    assert result.returncode == 5, result.stderr
    assert "training diverged in epoch 1 of 2" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "outputs" / "2024-04-29").exists()
    assert not list(tmp_path.rglob("*.safetensors"))
    client = mlflow.MlflowClient(store)
    assert client.search_registered_models() == []


# -- 2. Tracking pre-flight hangs -------------------------------------------------------------------
SNAIVE = ["--model", "snaive", "--horizon", "7", "--season-length", "7"]
TRACKED_SECTIONS = dict(name="silent", model="{name: naive}", baselines="[snaive]", gate="{enabled: false}")
TRACKED_SECTIONS |= dict(backtest="{n_windows: 2}", tracking="{enabled: true, plots: false}")
TRACKED_PIPELINE = daily_pipeline(**TRACKED_SECTIONS)


@pytest.fixture
def tracking_folder(tmp_path, monkeypatch):
    """The working directory, with a small daily CSV (three series of 60 days)."""
    without_mlflow_settings(tmp_path, monkeypatch)
    times = pd.date_range("2024-01-01", periods=60, freq="D")
    weekly = 3 * np.sin(2 * np.pi * np.arange(60) / 7)
    frames = [pd.DataFrame({"unique_id": f"s{k}", "ds": times, "y": 10.0 + k + weekly}) for k in range(3)]
    pd.concat(frames).to_csv(tmp_path / "sales.csv", index=False)
    (tmp_path / "pipeline.yaml").write_text(TRACKED_PIPELINE)
    return tmp_path


def command(*args, cwd: Path, env: dict | None = None, timeout: float = 60):
    """The real command in a subprocess (the user's MLflow variables stripped, then ``env`` added)."""
    return commands(args, cwd=cwd, env=env, timeout=timeout)[0]


def commands(*each, cwd: Path, env: dict | None = None, timeout: float = 60) -> list:
    """Several commands at once: (CompletedProcess, seconds until it ended) for each, in order."""
    started = time.monotonic()
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "tsforecast.cli", *map(str, args)],
            cwd=cwd,
            env={**cli_env("unused"), **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args in each
    ]
    results = []
    for process in processes:
        out, err = process.communicate(timeout=timeout)
        ended = time.monotonic() - started  # an upper bound: the processes are awaited in order
        results.append((subprocess.CompletedProcess(process.args, process.returncode, out, err), ended))
    return results


@pytest.mark.tracking
@needs_mlflow
def test_fit_and_run_give_up_on_a_silent_server_within_30_s(tracking_folder, silent):
    folder = tracking_folder
    fit = ["fit", "sales.csv", *SNAIVE, "--output", "m.joblib", "--track", "--tracking-uri", silent.uri]
    run = ["run", "pipeline.yaml", "--as-of", "2024-02-25", "--set", f"tracking.tracking_uri={silent.uri}"]
    (fitted, fit_seconds), (ran, run_seconds) = commands(fit, run, cwd=folder)  # side by side: one wait
    for result, seconds in ((fitted, fit_seconds), (ran, run_seconds)):
        assert result.returncode == 6, result.stderr
        assert f"MLflow tracking server {silent.uri!r} did not answer" in result.stderr
        assert "MLFLOW_HTTP_REQUEST_TIMEOUT=10" in result.stderr  # the limit in force, and how to change it
        assert seconds < 30
    assert not (folder / "m.joblib").exists()
    assert not list(folder.glob("outputs/*/forecasts*"))


@pytest.mark.tracking
@needs_mlflow
def test_predict_from_a_silent_or_malformed_tracking_store_fails_fast_with_the_right_code(
    tracking_folder, silent
):
    folder = tracking_folder
    args = ["predict", "models:/sales/1", "--data", "sales.csv", "--output", "f.csv", "--tracking-uri"]
    (hung, seconds), (malformed, _) = commands([*args, silent.uri], [*args, "sqlite//bad"], cwd=folder)
    assert hung.returncode == 6, hung.stderr
    assert f"MLflow tracking server {silent.uri!r} did not answer" in hung.stderr and seconds < 30
    assert malformed.returncode == 2, malformed.stderr  # a configuration error, not a bad model file
    assert "'sqlite//bad'" in malformed.stderr and not (folder / "sqlite").exists()
    assert not (folder / "f.csv").exists()


# -- 3. A resumed tuning study silently ignores a changed setting ------------------------------------
TUNE_CONFIG = tune_cli_config()  # `tsforecast tune --config`: one parameter, no baselines, one window


def _tune_cli(folder: Path, *args) -> subprocess.CompletedProcess:
    """``tsforecast tune train.csv --config tune.yaml ARGS`` in ``folder``."""
    command = [sys.executable, "-m", "tsforecast.cli", "tune", "train.csv", "--config", "tune.yaml", *args]
    env = {**cli_env("sqlite:///unused-mlflow.db"), "PYTHONPATH": str(ROOT)}
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=120)


def _finished(url: str, name: str) -> int:
    study = optuna.load_study(study_name=name, storage=url)
    return len(study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED)))


def _files(folder: Path) -> set:
    return {p.relative_to(folder) for p in folder.rglob("*")}


@pytest.fixture(scope="module")
def cli_study(tmp_path_factory):
    """A one-trial study made by ``tsforecast tune --param hidden_size=8``; tests work on copies."""
    folder = tmp_path_factory.mktemp("cli-study")
    tuning_panel().to_csv(folder / "train.csv", index=False)
    (folder / "tune.yaml").write_text(yaml.safe_dump(TUNE_CONFIG))
    done = _tune_cli(folder, "--n-trials", "1", "--param", "hidden_size=8", "--storage", "study.db")
    assert done.returncode == 0, done.stderr[-2000:]
    return folder


def _copy(cli_study: Path, tmp_path: Path) -> Path:
    for name in ("train.csv", "tune.yaml", "study.db"):
        shutil.copy(cli_study / name, tmp_path / name)
    return tmp_path


@needs_optuna
def test_cli_resume_with_a_changed_param_is_refused_naming_old_and_new_and_writes_no_model(
    cli_study, tmp_path
):
    folder = _copy(cli_study, tmp_path)
    url = f"sqlite:///{folder / 'study.db'}"
    (name,) = optuna.get_all_study_names(url)
    before = _finished(url, name)
    done = _tune_cli(
        folder, "--n-trials", "2", "--param", "hidden_size=16", "--storage", "study.db", "--output", "out"
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert "params.hidden_size: study has 8, now 16" in done.stderr
    assert "--study-name" in done.stderr and "--storage" in done.stderr  # how to start a new study
    assert "Traceback" not in done.stderr
    assert not (folder / "out").exists()  # no model of parameters that were never scored
    assert _finished(url, name) == before


@needs_optuna
def test_cli_resume_with_the_same_settings_adds_trials_whatever_the_budget_and_seed(cli_study, tmp_path):
    folder = _copy(cli_study, tmp_path)
    url = f"sqlite:///{folder / 'study.db'}"
    (name,) = optuna.get_all_study_names(url)
    assert _finished(url, name) == 1
    # Another budget, timeout and seed, as a second worker might have: the same study goes on.
    done = _tune_cli(
        folder,
        *("--n-trials", "2", "--timeout", "600", "--seed", "3", "--param", "hidden_size=8"),
        *("--storage", "study.db", "--output", "out"),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert _finished(url, name) == 2
    assert (folder / "out" / "model.safetensors").is_file()


@needs_optuna
def test_cli_invalid_fixed_param_stops_before_any_trial_even_on_a_full_study(
    cli_study, tmp_path, monkeypatch, capsys
):
    folder = _copy(cli_study, tmp_path)
    url = f"sqlite:///{folder / 'study.db'}"
    (name,) = optuna.get_all_study_names(url)
    trials = len(optuna.load_study(study_name=name, storage=url).trials)
    bad = ("--n-trials", "1", "--param", "hidden_size=8", "--param", "learning_rate=-1", "--output", "out")
    done = _tune_cli(folder, *bad, "--storage", "study.db")  # the study is full: no trial would run
    assert done.returncode == 2, done.stderr[-2000:]
    assert "'learning_rate' parameter of LSTMForecaster" in done.stderr and "Got -1" in done.stderr
    assert "Traceback" not in done.stderr
    assert len(optuna.load_study(study_name=name, storage=url).trials) == trials
    monkeypatch.chdir(folder)  # a new storage: refused before it is created
    assert main_in_process("tune", "train.csv", "--config", "tune.yaml", *bad, "--storage", "new.db") == 2
    assert "'learning_rate' parameter" in capsys.readouterr().err
    assert not (folder / "new.db").exists() and not (folder / "out").exists()


# -- 4. Malformed storage URLs become files ---------------------------------------------------------
MALFORMED_STORAGES = ("postgres:/bad", "sqlite//bad", "::::", "", "foodb://x/y")
MALFORMED_TRACKING_URIS = [
    "postgres:/bad", "sqlite//bad", "::::", "http:/x", "sqlite:/bad.db", "htp://localhost:5000"
]  # fmt: skip


@needs_optuna
@pytest.mark.parametrize("value", MALFORMED_STORAGES)
def test_malformed_storage_is_a_configuration_error_and_creates_nothing(value, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = _files(tmp_path)
    with pytest.raises(InvalidParameterError, match="storage") as caught:
        make_storage(value)
    assert repr(value) in str(caught.value) or "storage is empty" in str(caught.value)
    with pytest.raises(InvalidParameterError):
        tune(
            LSTMForecaster(**TUNE_TINY),
            tuning_panel(),
            storage=value,
            search_space=clip_space(),
            **TUNE_QUICK,
        )
    assert _files(tmp_path) == before


@needs_optuna
def test_malformed_storage_in_the_command_exits_2_naming_it(tmp_path, monkeypatch, capsys):
    """The malformed values, and (issue 15, item 7) an empty storage and an unknown database dialect."""
    tuning_panel().to_csv(tmp_path / "train.csv", index=False)
    (tmp_path / "tune.yaml").write_text(yaml.safe_dump(TUNE_CONFIG))
    monkeypatch.chdir(tmp_path)
    before = _files(tmp_path)
    for value in MALFORMED_STORAGES:
        code = main_in_process("tune", "train.csv", "--config", "tune.yaml", "--storage", value)
        message = capsys.readouterr().err
        assert code == 2, (value, message)
        assert f"storage {value!r}" in message or "storage is empty ('')" in message, message
        assert "Traceback" not in message
    assert _files(tmp_path) == before
    assert main_in_process("tune", "train.csv", "--config", "tune.yaml", "--storage", "foodb://x/y") == 2
    assert "supported: sqlite, postgresql, mysql" in capsys.readouterr().err


@needs_optuna
def test_a_malformed_tracking_uri_stops_tuning_before_a_study_is_created(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    storage = tmp_path / "optuna.db"
    with pytest.raises(InvalidParameterError, match="sqlite//x"):
        tune(LSTMForecaster(**TUNE_TINY), tuning_panel(), storage=f"sqlite:///{storage}",
             search_space=clip_space(), tracking=True, tracking_uri="sqlite//x", **TUNE_QUICK)  # fmt: skip
    assert not storage.exists() and not (tmp_path / "sqlite").exists()


@pytest.mark.tracking
@needs_mlflow
@pytest.mark.parametrize("uri", MALFORMED_TRACKING_URIS)
def test_malformed_tracking_uris_exit_2_and_create_nothing(tracking_folder, uri, capsys):
    before = sorted(tracking_folder.iterdir())
    code = main_in_process(
        "fit", "sales.csv", *SNAIVE, "--output", "m.joblib", "--tracking-uri", uri, "--track"
    )
    assert code == 2
    assert f"tracking_uri={uri!r} is not a tracking URI" in capsys.readouterr().err
    assert sorted(tracking_folder.iterdir()) == before


@pytest.mark.tracking
@needs_mlflow
def test_a_malformed_environment_variable_exits_2_naming_it(tracking_folder):
    args = ["fit", "sales.csv", *SNAIVE, "--output", "m.joblib", "--track"]
    result, _ = command(*args, cwd=tracking_folder, env={"MLFLOW_TRACKING_URI": "sqlite//bad"})
    assert result.returncode == 2, result.stderr
    assert "MLFLOW_TRACKING_URI='sqlite//bad' is not a tracking URI" in result.stderr
    assert "sqlite:///relative.db" in result.stderr  # the forms that work
    assert sorted(p.name for p in tracking_folder.iterdir()) == ["pipeline.yaml", "sales.csv"]


@pytest.mark.tracking
@needs_mlflow
def test_a_malformed_pipeline_tracking_uri_exits_2(tracking_folder, capsys):
    sections = TRACKED_SECTIONS | {"tracking": "{enabled: true, plots: false, tracking_uri: '::::'}"}
    (tracking_folder / "pipeline.yaml").write_text(daily_pipeline(**sections))
    assert main_in_process("run", "pipeline.yaml", "--check") == 2  # found when the file is checked
    assert "tracking.tracking_uri='::::' is not a tracking URI" in capsys.readouterr().err
    assert main_in_process("run", "pipeline.yaml", "--as-of", "2024-02-25") == 2
    assert "tracking.tracking_uri='::::' is not a tracking URI" in capsys.readouterr().err
    assert not (tracking_folder / "::::").exists() and not (tracking_folder / "mlflow.db").exists()


# -- 5. Model metadata is not checksummed -----------------------------------------------------------
def test_every_flipped_bit_of_a_model_file_is_refused_at_load(saved):
    raw = saved.read_bytes()
    header = 8 + int.from_bytes(raw[:8], "little")
    assert b'\\"A\\"' in raw[:header] and b"2024-01-01" in raw[:header] and b"log" in raw[:header]
    assert flip_every_bit(saved, load) == []
    assert load(saved).predict().shape == (3, 2)  # the restored file loads


def test_predict_on_a_flipped_file_exits_3_with_one_line(saved, tmp_path):
    raw = bytearray(saved.read_bytes())
    raw[raw.index(b"2024-01-01")] ^= 0x01  # 2024 -> 3024, the silent date change
    (tmp_path / "flipped.safetensors").write_bytes(bytes(raw))
    result = cli(
        "predict", "flipped.safetensors", "-o", "f.csv", cwd=tmp_path, store=f"sqlite:///{tmp_path / 'm.db'}"
    )
    assert result.returncode == ExitCode.DATA == 3, result.stderr
    errors = [line for line in result.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "flipped.safetensors is corrupted" in errors[0] and "SHA-256" in errors[0]
    assert not (tmp_path / "f.csv").exists()


# -- 6. A future --as-of publishes stale forecasts --------------------------------------------------
ENDS = {"s0": "2024-04-29", "s1": "2024-04-29", "s2": "2024-04-27"}  # s2 ends two days early
STORE = "sqlite:///unused.db"  # no test here tracks; MLFLOW_TRACKING_URI never points at a real store


def write_daily(path: Path) -> Path:
    """Three weekly-seasonal daily series from 2024-01-01, ending on ``ENDS``."""
    rng = np.random.default_rng(0)
    frames = []
    for k, (sid, end) in enumerate(ENDS.items()):
        times = pd.date_range("2024-01-01", end, freq="D")
        weekly = 3 * np.sin(2 * np.pi * np.arange(len(times)) / 7)
        values = 10 + k + weekly + rng.normal(0, 0.5, len(times))
        frames.append(pd.DataFrame({"unique_id": sid, "ds": times, "y": values}))
    pd.concat(frames, ignore_index=True).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def daily_folder(tmp_path_factory):
    """``sales.csv`` (:func:`write_daily`), ``pipeline.yaml`` and a file named ``blocker``."""
    folder = tmp_path_factory.mktemp("faults")
    write_daily(folder / "sales.csv")
    (folder / "pipeline.yaml").write_text(DAILY_PIPELINE)
    (folder / "blocker").write_text("a file where a folder is expected\n")
    return folder


def run_as_of(workdir: Path, as_of: str, *settings) -> object:
    return cli("run", "pipeline.yaml", "--as-of", as_of, *settings, cwd=workdir, store=STORE)


def no_traceback(result) -> bool:
    return "Traceback" not in result.stderr and "unexpected" not in result.stderr


def test_stale_data_exit_3_naming_the_last_time_stamps_and_publish_nothing(daily_folder):
    workdir = daily_folder
    allowed = run_as_of(workdir, "2024-04-29", "--set", "data.max_staleness=2")
    assert allowed.returncode == 0, allowed.stderr
    outputs = workdir / "outputs"
    published = outputs / "2024-04-29"
    manifest = json.loads((published / "manifest.json").read_text())
    assert manifest["inputs"][0]["last_time_stamp"] == {
        "earliest": "2024-04-27 00:00:00",
        "latest": "2024-04-29 00:00:00",
        "earliest_series": "s2",
    }
    assert manifest["config"]["data"]["max_staleness"] == 2
    before, target = tree_bytes(published), published.resolve()

    # By default one missing day is allowed; s2 lacks 2024-04-28 and 2024-04-29.
    stale = run_as_of(workdir, "2024-04-29")
    assert stale.returncode == 3, stale.stderr
    assert "step 'validate' failed" in stale.stderr and no_traceback(stale)
    assert "1 of 3 series end too long before the as-of date 2024-04-29" in stale.stderr
    assert "series 's2' ends at 2024-04-27 00:00:00" in stale.stderr and "'s0'" not in stale.stderr
    assert "leave the series that stopped out of the file" in stale.stderr
    assert "data.max_staleness" in stale.stderr
    assert "step 3/9 backtest" not in stale.stderr  # no training started

    future = run_as_of(workdir, "2030-01-01")
    assert future.returncode == 3, future.stderr
    assert "3 of 3 series end too long before the as-of date 2030-01-01" in future.stderr
    for sid, end in ENDS.items():
        assert f"series '{sid}' ends at {end} 00:00:00" in future.stderr
    assert "--as-of 2024-04-29" in future.stderr and no_traceback(future)

    assert not (outputs / "2030-01-01").exists()
    assert published.resolve() == target and tree_bytes(published) == before
    assert not [p for p in (outputs / ".versions").iterdir() if p.name.endswith(".tmp")]


def test_max_staleness_allows_a_future_as_of_and_the_manifest_says_where_the_data_end(daily_folder):
    result = run_as_of(daily_folder, "2030-01-01", "--set", "data.max_staleness=3000D")
    assert result.returncode == 0, result.stderr
    folder = daily_folder / "outputs" / "2030-01-01"
    manifest = json.loads((folder / "manifest.json").read_text())
    ends = manifest["inputs"][0]["last_time_stamp"]
    assert (ends["earliest"], ends["latest"]) == ("2024-04-27 00:00:00", "2024-04-29 00:00:00")
    assert manifest["config"]["data"]["max_staleness"] == "3000D"
    forecasts = pd.read_csv(folder / "forecasts.csv", parse_dates=["ds"])
    assert forecasts.groupby("unique_id")["ds"].min().to_dict() == {
        "s0": pd.Timestamp("2024-04-30"),
        "s1": pd.Timestamp("2024-04-30"),
        "s2": pd.Timestamp("2024-04-28"),
    }


# -- 7. Exit codes that send operators the wrong way ------------------------------------------------
# The unknown database dialect (exit 2, not a raw SQLAlchemy error) is among item 4's storages above.
def test_unusable_output_locations_exit_2_naming_the_path_before_any_work(daily_folder):
    workdir = daily_folder
    models = ["--horizon", "7", "--season-length", "7"]
    real = workdir / "outputs_real"
    (real / "2024-04-29").mkdir(parents=True, exist_ok=True)  # a real folder where a link goes
    (workdir / "taken.csv").mkdir(exist_ok=True)  # a folder where the file goes
    results = cli_together(
        ("fit", "sales.csv", "--model", "snaive", *models, "--output", "blocker/m.joblib"),
        ("fit", "sales.csv", "--model", "snaive", *models, "--output", "m.joblib",
         "--forecast-output", "blocker/sub/f.csv"),
        ("predict", "no-model.joblib", "--output", "blocker/f.csv"),
        ("backtest", "sales.csv", "--models", "snaive", *models, "--output", "blocker/c.csv"),
        ("backtest", "sales.csv", "--models", "snaive", *models, "--forecasts-output", "taken.csv"),
        ("run", "pipeline.yaml", "--as-of", "2024-04-29", "--set", "outputs.dir=blocker/outputs"),
        ("run", "pipeline.yaml", "--as-of", "2024-04-29", "--set", f"outputs.dir={real}"),
        cwd=workdir, store=STORE,
    )  # fmt: skip
    expected = [
        "--output blocker/m.joblib: cannot write there (blocker is not a folder)",
        "--forecast-output blocker/sub/f.csv: cannot write there (blocker is not a folder)",
        "--output blocker/f.csv: cannot write there (blocker is not a folder)",
        "--output blocker/c.csv: cannot write there (blocker is not a folder)",
        "--forecasts-output taken.csv: cannot write there (taken.csv is a folder)",
        "outputs.dir: blocker/outputs: cannot write there (blocker is not a folder)",
        f"outputs.dir: {real / '2024-04-29'} is a real folder",
    ]
    for result, message in zip(results, expected, strict=True):
        assert result.returncode == 2, (result.args, result.stderr)
        assert message in result.stderr, (result.args, result.stderr)
        assert no_traceback(result) and result.stderr.count(" ERROR ") == 1, result.stderr
        assert "step 1/9 load" not in result.stderr  # nothing was read, let alone fitted
    assert not (workdir / "m.joblib").exists()


@needs_optuna
def test_an_empty_storage_exits_2_not_6_from_the_command_line(tmp_path):
    tuning_panel().to_csv(tmp_path / "train.csv", index=False)
    (tmp_path / "tune.yaml").write_text(yaml.safe_dump(TUNE_CONFIG))
    done = _tune_cli(tmp_path, "--storage", "")
    assert done.returncode == 2, done.stderr[-2000:]
    assert "storage is empty" in done.stderr
    assert _files(tmp_path) == {Path("train.csv"), Path("tune.yaml")}


def test_save_creates_a_missing_folder(fitted, tmp_path):
    path = tmp_path / "new" / "deeper" / "model.safetensors"
    fitted.save(path)
    pd.testing.assert_frame_equal(load(path).predict(), fitted.predict())


@pytest.mark.parametrize("where", ["parent is a file", "path is a folder", "read-only folder"])
def test_save_to_an_unusable_location_is_a_configuration_error_naming_it(fitted, tmp_path, where):
    if where == "parent is a file":
        (tmp_path / "file").write_text("x")
        path, named = tmp_path / "file" / "model.safetensors", tmp_path / "file"
    elif where == "path is a folder":
        path = named = tmp_path / "folder.safetensors"
        path.mkdir()
    else:
        if os.geteuid() == 0:
            pytest.skip("root writes into read-only folders")
        named = tmp_path / "ro"
        named.mkdir(mode=0o555)
        path = named / "model.safetensors"
    with pytest.raises(InvalidParameterError, match="cannot write there") as raised:
        fitted.save(path)
    assert str(named) in str(raised.value) and for_error(raised.value) == ExitCode.CONFIG
    assert not list(tmp_path.rglob("*.tmp"))


# -- 8. 1e-3 is rejected ----------------------------------------------------------------------------
def test_1e_3_reaches_the_estimator_from_p_set_and_the_yaml_file(daily_folder):
    workdir = daily_folder
    tiny = ["-p", "hidden_size=4", "-p", "max_epochs=1", "-p", "tbptt_steps=28", "-p", "weight_decay=2E-5"]
    lstm = "{name: lstm, params: {hidden_size: 4, max_epochs: 1, tbptt_steps: 28, weight_decay: 2E-5}}"
    (workdir / "lstm.yaml").write_text(
        daily_pipeline(
            model=lstm, baselines="[]", gate="{enabled: false}", outputs="{dir: lstm_outputs, format: csv}"
        )
    )
    fit, pipeline = cli_together(
        ("fit", "sales.csv", "--model", "lstm", "--horizon", "7", "--season-length", "7", *tiny,
         "-p", "learning_rate=1e-3", "--output", "lstm.safetensors"),
        ("run", "lstm.yaml", "--as-of", "2024-04-29", "--set", "data.max_staleness=2",
         "--set", "model.params.learning_rate=1e-3"),
        cwd=workdir, store=STORE,
    )  # fmt: skip
    assert fit.returncode == 0, fit.stderr
    assert pipeline.returncode == 0, pipeline.stderr
    params = load(workdir / "lstm.safetensors").get_params()
    assert (params["learning_rate"], params["weight_decay"]) == (0.001, 2e-5)
    folder = workdir / "lstm_outputs" / "2024-04-29"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["model"]["params"]["learning_rate"] == 0.001  # the fitted estimator's
    assert manifest["model"]["params"]["weight_decay"] == 2e-5  # written 2E-5 in the file
    assert load(folder / "model.safetensors").get_params()["learning_rate"] == 0.001


@needs_optuna
def test_scientific_notation_is_a_float_in_tune_config_files_and_params(tmp_path):
    # YAML 1.1 would read 1e-3 and 1e1 as strings.
    tuning_panel().to_csv(tmp_path / "train.csv", index=False)
    config = yaml.safe_dump(TUNE_CONFIG).replace("max_epochs: 1", "max_epochs: 1\n  learning_rate: 1e-3")
    config = config.replace("high: 10", "high: 1e1")
    (tmp_path / "tune.yaml").write_text(config)
    done = _tune_cli(tmp_path, "--n-trials", "1", "--param", "weight_decay=2E-5", "--storage", "s.db")
    assert done.returncode == 0, done.stderr[-2000:]
    url = f"sqlite:///{tmp_path / 's.db'}"
    (name,) = optuna.get_all_study_names(url)
    settings = optuna.load_study(study_name=name, storage=url).user_attrs[SETTINGS_ATTR]
    assert settings["params"]["learning_rate"] == 0.001 and settings["params"]["weight_decay"] == 2e-5
    assert json.loads(settings["search_space"]["clip_norm"])["attributes"]["high"] == 10.0


# -- 9. Extreme magnitudes give silent NaN/inf ------------------------------------------------------
def test_standard_scaler_around_1e300_gives_finite_forecasts():
    model = LSTMForecaster(**LSTM_TINY, scaler="standard").fit(around_ten() * 1e300)
    scaler = model.codec_.scaler
    assert np.isfinite(scaler.center).all() and np.isfinite(scaler.scale).all()
    forecasts = model.predict().to_numpy() / 1e300
    assert np.isfinite(forecasts).all() and forecasts.min() > 8 and forecasts.max() < 12


@pytest.mark.parametrize("cls", [Theta, AutoARIMA], ids=lambda c: c.__name__)
def test_theta_and_autoarima_at_1e307_give_finite_forecasts_in_the_data_range(cls):
    rng = np.random.default_rng(1)
    y = pd.Series(1e307 * (5 + rng.normal(0, 0.3, 120)), index=pd.date_range("2024", periods=120, freq="D"))
    forecast = cls(horizon=7, season_length=7).fit(y).predict()
    assert np.isfinite(forecast).all()
    assert (forecast.abs() < 1e308).all() and (forecast > 0).all()
