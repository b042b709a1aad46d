"""Issue 15, tuning: a resumed study refuses changed settings; storages are checked before use.

Real Optuna on real SQLite files in ``tmp_path``; the ``tsforecast tune`` command in a subprocess
where the issue speaks of the command line (and in process, for the many storage values). Every
study here is tiny: one validation window, one or two epochs, one or two trials.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

optuna = pytest.importorskip("optuna")
torch = pytest.importorskip("torch")

from clitools import cli_env, main_in_process  # noqa: E402
from conftest import free_port  # noqa: E402
from optuna.distributions import FloatDistribution, IntDistribution  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

from tsforecast.exceptions import InvalidParameterError, UnavailableError  # noqa: E402
from tsforecast.nn.estimators import LSTMForecaster  # noqa: E402
from tsforecast.tuning import make_storage, tune  # noqa: E402
from tsforecast.tuning.settings import differences  # noqa: E402
from tsforecast.tuning.storage import SETTINGS_ATTR  # noqa: E402

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(horizon=6, season_length=12, max_epochs=1, batch_size=8, tbptt_steps=24, patience=None)
TINY |= dict(device="cpu", random_state=0, hidden_size=4)
QUICK = dict(pruner="none", baselines=None, include_default=False, refit=False, validation=1)
CLIP = {"clip_norm": FloatDistribution(0.1, 10.0, log=True)}
CONFIG = {  # `tsforecast tune --config`: a one-parameter space, no baselines, one window
    "model": "lstm",
    "horizon": 6,
    "season_length": 12,
    "n_windows": 1,
    "baselines": "none",
    "include_default": False,
    "pruner": "none",
    "params": {"max_epochs": 1, "batch_size": 8, "tbptt_steps": 24, "device": "cpu"},
    "search_space": {"clip_norm": {"type": "float", "low": 0.1, "high": 10, "log": True}},
    "quiet": True,
}
MALFORMED = ("postgres:/bad", "sqlite//bad", "::::", "", "foodb://x/y")


def _panel(n_series=2, length=72) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    t = np.arange(length)
    frames = [
        pd.DataFrame({"unique_id": f"s{i}", "ds": t, "y": 20 + 5 * np.sin(2 * np.pi * t / 12 + i)})
        for i in range(n_series)
    ]
    frame = pd.concat(frames, ignore_index=True)
    frame["y"] += rng.normal(0, 0.3, len(frame))
    return frame


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
    _panel().to_csv(folder / "train.csv", index=False)
    (folder / "tune.yaml").write_text(yaml.safe_dump(CONFIG))
    done = _tune_cli(folder, "--n-trials", "1", "--param", "hidden_size=8", "--storage", "study.db")
    assert done.returncode == 0, done.stderr[-2000:]
    return folder


def _copy(cli_study: Path, tmp_path: Path) -> Path:
    for name in ("train.csv", "tune.yaml", "study.db"):
        shutil.copy(cli_study / name, tmp_path / name)
    return tmp_path


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


def test_a_changed_setting_is_refused_and_what_only_sets_the_pace_is_not(tmp_path):
    y = _panel()
    options = dict(storage=tmp_path / "s.db", study_name="s", search_space=CLIP, **QUICK)
    tune(LSTMForecaster(**TINY), y, n_trials=1, **options)
    # Budget, timeout, threads, seed, device, verbosity: still the same study, which grows.
    other_pace = {**TINY, "random_state": 7, "device": "auto", "verbose": False, "max_time": 600.0}
    more = tune(LSTMForecaster(**other_pace), y, n_trials=2, timeout=600, n_jobs=1, random_state=1, **options)
    assert len(more.study.get_trials(states=(TrialState.COMPLETE,))) == 2
    for params, change, expected in (
        (dict(hidden_size=8), {}, "params.hidden_size: study has 4, now 8"),
        (dict(max_epochs=2), {}, "params.max_epochs: study has 1, now 2"),
        ({}, dict(metric="smape"), "metric: study has 'mase', now 'smape'"),
        ({}, dict(validation=2), "validation: study has"),
        ({}, dict(y=_panel(length=73)), "data: study has"),
        (
            {},
            dict(search_space={"clip_norm": FloatDistribution(0.1, 5.0, log=True)}),
            "search_space.clip_norm: study has FloatDistribution(high=10.0",
        ),
        (
            {},
            dict(search_space={**CLIP, "hidden_size": IntDistribution(4, 8)}),
            "search_space.hidden_size: study has (not set), now IntDistribution(",
        ),
    ):
        call = dict(y=y, n_trials=3, **options) | change
        with pytest.raises(InvalidParameterError, match="created for another tuning job") as caught:
            tune(LSTMForecaster(**TINY | params), call.pop("y"), **call)
        assert expected in str(caught.value), str(caught.value)
        assert "another study name" in str(caught.value)
    assert len(optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path / 's.db'}").trials) == 2


def test_the_study_records_what_defines_it():
    recorded = {"estimator": "LSTMForecaster", "params": {"hidden_size": 8, "max_epochs": 1}}
    now = {"estimator": "GRUForecaster", "params": {"max_epochs": 1, "scaler": "log"}}
    assert differences(recorded, now) == [
        "estimator: study has 'LSTMForecaster', now 'GRUForecaster'",
        "params.hidden_size: study has 8, now (not set)",
        "params.scaler: study has (not set), now 'log'",
    ]
    assert differences(recorded, recorded) == []


def test_study_settings_are_stored_in_the_study(tmp_path):
    result = tune(
        LSTMForecaster(**TINY), _panel(), n_trials=1, storage=tmp_path / "r.db", search_space=CLIP, **QUICK
    )
    settings = result.study.user_attrs[SETTINGS_ATTR]
    assert set(settings) == {"estimator", "params", "search_space", "metric", "validation", "data", "freq"}
    assert settings["params"]["hidden_size"] == 4 and settings["params"]["horizon"] == 6
    assert settings["params"]["validation_size"] == 6  # what the trials ran with
    assert not {"clip_norm", "device", "random_state", "verbose", "callbacks"} & set(settings["params"])
    assert settings["validation"] == {"n_windows": 1, "step": 6, "horizon": 6, "season_length": 12}


def test_bad_fixed_params_and_search_ranges_stop_before_a_study_is_opened(tmp_path):
    storage = tmp_path / "never.db"
    with pytest.raises(InvalidParameterError, match=r"'learning_rate' parameter of LSTMForecaster.*Got -1"):
        tune(LSTMForecaster(**{**TINY, "learning_rate": -1}), _panel(), storage=storage, **QUICK)
    with pytest.raises(InvalidParameterError, match=r"search_space\['learning_rate'\] allows 0.0"):
        tune(
            LSTMForecaster(**TINY),
            _panel(),
            search_space={"learning_rate": FloatDistribution(0.0, 0.1)},
            storage=storage,
            **QUICK,
        )
    assert not storage.exists()


@pytest.mark.parametrize("value", MALFORMED)
def test_malformed_storage_is_a_configuration_error_and_creates_nothing(value, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = _files(tmp_path)
    with pytest.raises(InvalidParameterError, match="storage") as caught:
        make_storage(value)
    assert repr(value) in str(caught.value) or "storage is empty" in str(caught.value)
    with pytest.raises(InvalidParameterError):
        tune(LSTMForecaster(**TINY), _panel(), storage=value, search_space=CLIP, **QUICK)
    assert _files(tmp_path) == before


def test_a_malformed_tracking_uri_stops_tuning_before_a_study_is_created(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    storage = tmp_path / "optuna.db"
    with pytest.raises(InvalidParameterError, match="sqlite//x"):
        tune(LSTMForecaster(**TINY), _panel(), storage=f"sqlite:///{storage}", search_space=CLIP,
             tracking=True, tracking_uri="sqlite//x", **QUICK)  # fmt: skip
    assert not storage.exists() and not (tmp_path / "sqlite").exists()


def test_malformed_storage_in_the_command_exits_2_naming_it(tmp_path, monkeypatch, capsys):
    _panel().to_csv(tmp_path / "train.csv", index=False)
    (tmp_path / "tune.yaml").write_text(yaml.safe_dump(CONFIG))
    monkeypatch.chdir(tmp_path)
    before = _files(tmp_path)
    for value in MALFORMED:
        code = main_in_process("tune", "train.csv", "--config", "tune.yaml", "--storage", value)
        message = capsys.readouterr().err
        assert code == 2, (value, message)
        assert f"storage {value!r}" in message or "storage is empty ('')" in message, message
        assert "Traceback" not in message
    assert _files(tmp_path) == before
    assert main_in_process("tune", "train.csv", "--config", "tune.yaml", "--storage", "foodb://x/y") == 2
    assert "supported: sqlite, postgresql, mysql" in capsys.readouterr().err


def test_an_empty_storage_exits_2_not_6_from_the_command_line(tmp_path):
    _panel().to_csv(tmp_path / "train.csv", index=False)
    (tmp_path / "tune.yaml").write_text(yaml.safe_dump(CONFIG))
    done = _tune_cli(tmp_path, "--storage", "")
    assert done.returncode == 2, done.stderr[-2000:]
    assert "storage is empty" in done.stderr
    assert _files(tmp_path) == {Path("train.csv"), Path("tune.yaml")}


def test_passwords_stay_hidden_and_a_database_that_is_down_is_still_retry_later(tmp_path):
    with pytest.raises(InvalidParameterError) as caught:
        make_storage("postgres://tuner:secret@db/optuna")
    assert "secret" not in str(caught.value) and "tuner:***@db" in str(caught.value)
    assert "postgresql://" in str(caught.value)  # the spelling SQLAlchemy reads
    with pytest.raises(InvalidParameterError) as caught:
        make_storage("postgres:/tuner:secret@db/optuna")
    assert "secret" not in str(caught.value)
    with pytest.raises(InvalidParameterError, match="is a folder"):
        make_storage(tmp_path)
    (tmp_path / "notes.txt").write_text("a file where a folder should be")
    with pytest.raises(InvalidParameterError, match="cannot create its folder"):
        make_storage(f"sqlite:///{tmp_path / 'notes.txt' / 'optuna.db'}")
    pytest.importorskip("psycopg", reason="the psycopg driver is not installed")
    with pytest.raises(UnavailableError, match=r"tuner:\*\*\*@127"):
        make_storage(f"postgresql://tuner:secret@127.0.0.1:{free_port()}/optuna")  # nobody listens


def test_scientific_notation_is_a_float_in_tune_config_files_and_params(tmp_path):
    # Issue 15 item 8: YAML 1.1 would read 1e-3 and 1e1 as strings.
    _panel().to_csv(tmp_path / "train.csv", index=False)
    config = yaml.safe_dump(CONFIG).replace("max_epochs: 1", "max_epochs: 1\n  learning_rate: 1e-3")
    config = config.replace("high: 10", "high: 1e1")
    (tmp_path / "tune.yaml").write_text(config)
    done = _tune_cli(tmp_path, "--n-trials", "1", "--param", "weight_decay=2E-5", "--storage", "s.db")
    assert done.returncode == 0, done.stderr[-2000:]
    url = f"sqlite:///{tmp_path / 's.db'}"
    (name,) = optuna.get_all_study_names(url)
    settings = optuna.load_study(study_name=name, storage=url).user_attrs[SETTINGS_ATTR]
    assert settings["params"]["learning_rate"] == 0.001 and settings["params"]["weight_decay"] == 2e-5
    assert json.loads(settings["search_space"]["clip_norm"])["attributes"]["high"] == 10.0
