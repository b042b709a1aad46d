"""``--covariates FILE`` of ``tsforecast fit``, ``predict``, ``backtest`` and ``tune``, in subprocesses.

The data: two hourly series ``y = 3 x + noise`` whose covariate ``x`` is known ahead, in one long
file that also holds the next 24 hours of ``x`` with ``y`` left empty (the data file is its own
covariates file). AutoARIMA with ``future_covariates=[x]`` must then forecast far better than the
seasonal naive forecast, which cannot know ``x``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.clitools import cli, main_in_process

pytestmark = pytest.mark.timeout(120)

HORIZON, SEASON, LENGTH = 24, 24, 120
ARIMA = ["--model", "autoarima", "--horizon", HORIZON, "--season-length", SEASON]
ROLES = ["-p", "future_covariates=[x]"]


def covariate_frame(length: int = LENGTH, extra: int = HORIZON, seed: int = 0) -> pd.DataFrame:
    """Long ``unique_id, ds, y, x``: ``length`` observed hours, then ``extra`` with ``y`` empty."""
    rng = np.random.default_rng(seed)
    frames = []
    for sid in ("a", "b"):
        x = rng.uniform(0, 10, length + extra)
        y = 3 * x + rng.normal(0, 0.3, length + extra)
        y[length:] = np.nan
        ds = pd.date_range("2024-01-01", periods=length + extra, freq="h")
        frames.append(pd.DataFrame({"unique_id": sid, "ds": ds, "y": y, "x": x}))
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return f"sqlite:///{(tmp_path_factory.mktemp('mlflow') / 'mlflow.db').as_posix()}"


def write_files(folder: Path) -> Path:
    frame = covariate_frame()
    frame.to_csv(folder / "data.csv", index=False)
    frame.dropna(subset=["y"]).to_csv(folder / "history.csv", index=False)  # no rows for the horizon
    frame.drop(columns="x").to_csv(folder / "no_x.csv", index=False)
    return folder


@pytest.fixture
def work(tmp_path) -> Path:
    return write_files(tmp_path)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory, store) -> Path:
    """A folder with the data and ``arima.joblib`` fitted on them, with its forecasts ``fit.csv``."""
    folder = write_files(tmp_path_factory.mktemp("fitted"))
    result = cli(
        "fit", "data.csv", "--covariates", "data.csv", *ARIMA, *ROLES,
        "--output", "arima.joblib", "--forecast-output", "fit.csv", cwd=folder, store=store,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return folder


def truth(frame: pd.DataFrame) -> pd.DataFrame:
    future = frame[frame["y"].isna()]
    return future.assign(actual=3 * future["x"])[["unique_id", "ds", "actual"]]


def test_fit_forecasts_from_the_future_covariates(fitted):
    frame = covariate_frame()
    forecasts = pd.read_csv(fitted / "fit.csv", parse_dates=["ds"]).merge(
        truth(frame), on=["unique_id", "ds"]
    )
    assert len(forecasts) == 2 * HORIZON
    history = frame.dropna(subset=["y"])
    seasonal_naive = np.concatenate([g["y"].to_numpy()[-SEASON:] for _, g in history.groupby("unique_id")])
    arima_error = (forecasts["y_pred"] - forecasts["actual"]).abs().mean()
    assert arima_error < 0.1 * np.abs(seasonal_naive - forecasts["actual"].to_numpy()).mean()


def test_predict_takes_the_covariates_again(fitted, store):
    result = cli(
        "predict", "arima.joblib", "--data", "history.csv", "--covariates", "data.csv",
        "--output", "predict.csv", cwd=fitted, store=store,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    pd.testing.assert_frame_equal(pd.read_csv(fitted / "predict.csv"), pd.read_csv(fitted / "fit.csv"))


def test_other_future_covariates_give_other_forecasts(fitted, store):
    frame = covariate_frame()
    changed = frame.assign(x=np.where(frame["y"].isna(), frame["x"] + 5, frame["x"]))
    changed.drop(columns="y").to_csv(fitted / "changed.csv", index=False)  # a file of covariates only
    result = cli(
        "predict", "arima.joblib", "--covariates", "changed.csv", "--output", "moved.csv",
        cwd=fitted, store=store,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    shift = pd.read_csv(fitted / "moved.csv")["y_pred"] - pd.read_csv(fitted / "fit.csv")["y_pred"]
    assert shift.to_numpy() == pytest.approx(15.0, abs=1.0)  # the coefficient of x (3) times 5


def test_predict_without_the_covariates_is_a_command_line_error(fitted, store):
    result = cli("predict", "arima.joblib", "--output", "none.csv", cwd=fitted, store=store)
    assert result.returncode == 2
    assert "AutoARIMA declares the covariates ['x']; give the file that holds them with --covariates" in (
        result.stderr
    )
    assert not (fitted / "none.csv").exists()


def test_a_tracked_fit_registers_a_model_that_predicts_with_the_covariates(fitted, store):
    pytest.importorskip("mlflow")
    result = cli(
        "fit", "data.csv", "--covariates", "data.csv", *ARIMA, *ROLES, "--output", "tracked.joblib",
        "--register", "cli-arima-x", "--alias", "champion", cwd=fitted, store=store,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "could not log" not in result.stderr
    served = cli(
        "predict", "models:/cli-arima-x@champion", "--covariates", "data.csv", "--output", "served.csv",
        cwd=fitted, store=store,
    )  # fmt: skip
    assert served.returncode == 0, served.stderr
    pd.testing.assert_frame_equal(pd.read_csv(fitted / "served.csv"), pd.read_csv(fitted / "fit.csv"))


def test_backtest_gives_the_covariates_to_the_models_that_take_them(work, store):
    result = cli(
        "backtest", "data.csv", "--covariates", "data.csv", "--models", "autoarima,snaive",
        "--horizon", HORIZON, "--season-length", SEASON, "--n-windows", 2, *ROLES,
        "--output", "comparison.csv", cwd=work, store=store,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(work / "comparison.csv", index_col="model")
    assert table.loc["autoarima", "mase"] < 0.2 * table.loc["snaive", "mase"]
    # With the model's prefix, as any other parameter.
    prefixed = cli(
        "backtest", "data.csv", "--covariates", "data.csv", "--models", "autoarima,snaive",
        "--horizon", HORIZON, "--season-length", SEASON, "-p", "autoarima.future_covariates=[x]",
        "--output", "prefixed.csv", cwd=work, store=store,
    )  # fmt: skip
    assert prefixed.returncode == 0, prefixed.stderr
    assert pd.read_csv(work / "prefixed.csv", index_col="model").loc["autoarima", "mase"] < 0.5


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        # A model that takes no covariates, given a file or declared covariates.
        (["fit", "data.csv", "--model", "snaive", "--horizon", 24, "--output", "m.joblib",
          "--covariates", "data.csv"], "--covariates: snaive take(s) no covariates"),
        (["fit", "data.csv", "--model", "snaive", "--horizon", 24, "--output", "m.joblib", *ROLES],
         "--param future_covariates: the model 'snaive' takes no covariates"),
        (["backtest", "data.csv", "--models", "snaive,naive", "--horizon", 24, *ROLES],
         "--param future_covariates: none of the models snaive, naive takes it"),
        # Declared covariates without the file, a file without declared roles.
        (["fit", "data.csv", *ARIMA, *ROLES, "--output", "m.joblib"],
         "autoarima declares the covariates ['x']; give the file that holds them with --covariates"),
        (["backtest", "data.csv", "--models", "autoarima,snaive", "--horizon", 24,
          "--covariates", "data.csv"], "--covariates: no model declares a covariate column"),
    ],
)  # fmt: skip
def test_covariates_a_model_cannot_take_exit_2_before_any_work(work, store, args, expected):
    result = cli(*args, cwd=work, store=store)
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr
    assert not (work / "m.joblib").exists()


@pytest.mark.parametrize(
    ("covariates", "expected"),
    [
        ("absent.csv", "--covariates absent.csv: no such file."),
        ("no_x.csv", "X has no column 'x' (declared as a covariate"),
        # The history's rows only: the forecasts' 24 hours have no x.
        ("history.csv", "X has no row for series 'a' at 2024-01-06 00:00:00 (in the forecast horizon)"),
    ],
)
def test_a_bad_covariates_file_exits_3_naming_what_is_missing(work, store, covariates, expected):
    result = cli(
        "fit", "history.csv", "--covariates", covariates, *ARIMA, *ROLES, "--output", "m.joblib",
        "--forecast-output", "f.csv", cwd=work, store=store,
    )  # fmt: skip
    assert result.returncode == 3, result.stderr
    assert expected in result.stderr
    assert not (work / "m.joblib").exists() and not (work / "f.csv").exists()  # nothing fitted or written


def test_tune_gives_the_covariates_to_every_trial(work, store):
    pytest.importorskip("optuna")
    (work / "tune.yaml").write_text(
        "search_space:\n  learning_rate: {type: float, low: 0.001, high: 0.01, log: true}\n"
    )
    result = cli(
        "-q", "tune", "data.csv", "--config", "tune.yaml", "--covariates", "data.csv",
        "--param", "future_covariates=[x]", "--param", "max_epochs=2", "--param", "hidden_size=4",
        "--param", "tbptt_steps=24", "--horizon", HORIZON, "--season-length", SEASON, "--n-windows", 1,
        "--n-trials", 2, "--baselines", "snaive", "--storage", "s.db", "--seed", 0, "--output", "tuned",
        cwd=work, store=store, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr  # the LSTM declares x: a trial without X would fail
    assert "trials {'COMPLETE': 2}" in result.stdout
    settings = json.loads((work / "tuned" / "best_params.json").read_text())["settings"]
    assert settings["covariates"] == "data.csv" and settings["params"]["future_covariates"] == ["x"]


def test_tune_reads_the_covariates_file_before_a_study(work, store):
    pytest.importorskip("optuna")
    absent = cli("tune", "data.csv", "--covariates", "absent.csv", "--storage", "s.db", cwd=work, store=store)
    assert absent.returncode == 3, absent.stderr
    assert "--covariates absent.csv: no such file." in absent.stderr
    undeclared = cli(
        "tune", "data.csv", "--covariates", "data.csv", "--storage", "s.db", cwd=work, store=store
    )
    assert undeclared.returncode == 2, undeclared.stderr
    assert "--covariates: " in undeclared.stderr
    assert not (work / "s.db").exists()


@pytest.mark.parametrize("command", ["fit", "predict", "backtest", "tune"])
def test_every_command_documents_the_option(command, capsys):
    assert main_in_process(command, "--help") == 0
    text = capsys.readouterr().out
    assert "--covariates FILE" in text and "future_covariates=[" in text
    assert "--covariates" in text.split("examples:")[-1]  # an example uses it
