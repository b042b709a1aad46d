"""The ``covariates:`` section of a pipeline: real runs (in process) on small synthetic files.

Two hourly series ``y = 3 x + noise`` whose covariate ``x`` is known ahead, in one long file that is
also the covariates file; rows after ``--as-of`` are left out of the history but their ``x`` is what
the forecast of the next day uses.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.clitools import main_in_process
from tsforecast.pipelines import load_config
from tsforecast.pipelines.schema import ConfigError

pytestmark = pytest.mark.timeout(120)

PIPELINE = """\
name: covariates
data: {path: data.csv, freq: h}
covariates: {path: data.csv, future: [x]}
forecast: {horizon: 24, season_length: 24}
model: {name: autoarima}
baselines: [snaive]
backtest: {n_windows: 2}
gate: {metric: mase, compare_current: true}
outputs: {dir: outputs, format: csv}
tracking: {enabled: false}
"""
REPO = Path(__file__).resolve().parents[1]


def covariate_frame(hours: int = 168, seed: int = 0) -> pd.DataFrame:
    """Long ``unique_id, ds, y, x`` from 2024-01-01 00:00, one row an hour."""
    rng = np.random.default_rng(seed)
    frames = []
    for sid in ("a", "b"):
        x = rng.uniform(0, 10, hours)
        ds = pd.date_range("2024-01-01", periods=hours, freq="h")
        frames.append(
            pd.DataFrame({"unique_id": sid, "ds": ds, "y": 3 * x + rng.normal(0, 0.3, hours), "x": x})
        )
    return pd.concat(frames, ignore_index=True)


@pytest.fixture
def work(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    covariate_frame().to_csv(tmp_path / "data.csv", index=False)
    (tmp_path / "pipeline.yaml").write_text(PIPELINE)
    return tmp_path


def run(as_of: str, *settings) -> int:
    return main_in_process("run", "pipeline.yaml", "--as-of", as_of, *settings)


def test_the_model_forecasts_from_the_covariates_after_the_as_of_date(work):
    assert run("2024-01-05") == 0
    folder = work / "outputs" / "2024-01-05"
    comparison = pd.read_csv(folder / "comparison.csv", index_col="model")
    assert comparison.loc["autoarima", "mase"] < 0.2 * comparison.loc["snaive", "mase"]
    # The forecasts of January 6 follow 3 x of that day, which the history does not hold.
    frame = covariate_frame()
    forecasts = pd.read_csv(folder / "forecasts.csv", parse_dates=["ds"]).merge(frame, on=["unique_id", "ds"])
    assert len(forecasts) == 48 and forecasts["ds"].min() == pd.Timestamp("2024-01-06")
    assert (forecasts["y_pred"] - 3 * forecasts["x"]).abs().max() < 2.0
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["data"]["n_series"] == 2  # the covariate column is no series
    data, covariates = (
        next(f for f in manifest["inputs"] if f["role"] == role) for role in ("data", "covariates")
    )
    assert covariates["sha256"] == data["sha256"] and covariates["path"] == str(work / "data.csv")
    assert manifest["config"]["covariates"]["future"] == ["x"]
    assert manifest["model"]["params"]["future_covariates"] == ["x"]
    # The next day's run compares with this model, scored with the covariates too.
    assert run("2024-01-06") == 0
    comparison = pd.read_csv(work / "outputs" / "2024-01-06" / "comparison.csv", index_col="model")
    assert comparison.loc["current", "mase"] < 0.2 * comparison.loc["snaive", "mase"]


def test_covariates_that_end_with_the_data_stop_the_run_in_validate(work, capsys):
    covariate_frame(hours=120).to_csv("data.csv", index=False)  # nothing after January 5
    assert run("2024-01-05") == 3
    err = capsys.readouterr().err
    assert "step 'validate' failed: covariates file data.csv (model 'autoarima'): X has no row for " in err
    assert "series 'a' at 2024-01-06 00:00:00 (in the forecast horizon); covariates ['x']" in err
    assert not (work / "outputs" / "2024-01-05").exists()


def test_a_declared_column_missing_from_the_file_names_it(work, capsys):
    assert run("2024-01-05", "--set", "covariates.future=[x, price]") == 3
    assert "X has no column 'price' (declared as a covariate; X has ['x'])" in capsys.readouterr().err
    assert main_in_process("run", "pipeline.yaml", "--set", "covariates.path=absent.csv") == 3
    assert "step 'load' failed: covariates.path absent.csv: no such file." in capsys.readouterr().err


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (["model.name=naive"], "covariates: the model 'naive' (Naive) takes no covariates"),
        (["model={name: theta, label: main}"], "covariates: the model 'main' (Theta) takes no covariates"),
        (["covariates.path=null"], "covariates.path: required for the covariate columns ['x']"),
        (["covariates.future=[]"], "covariates.path: name the roles of its columns"),
        (["covariates.calendar=auto"], "covariates.calendar: the model 'autoarima' (AutoARIMA) builds no"),
        (["covariates.calendar=[hours]"], "covariates.calendar: unknown feature(s) ['hours']"),
        (["covariates.categorical=[y2]"], "categorical_covariates ['y2'] are not in future_covariates"),
        (["covariates.future=x"], "covariates.future: expected a list, got 'x'"),
        (["covariates.lags=3"], "covariates.lags: unknown key; allowed keys: path, future, past, static"),
    ],
)
def test_covariates_a_model_cannot_take_are_a_configuration_error(work, capsys, settings, expected):
    overrides = [item for setting in settings for item in ("--set", setting)]
    assert main_in_process("run", "pipeline.yaml", "--check", *overrides) == 2
    assert expected in capsys.readouterr().err
    assert not (work / "outputs").exists()


def test_a_baseline_that_takes_covariates_gets_them_unless_its_params_say_otherwise(work):
    from tsforecast.registry import build_estimator

    plain = "{name: autoarima, label: plain, params: {future_covariates: null}}"
    baselines = f"[snaive, {{name: autoarima, label: arima_x}}, {plain}]"
    config = load_config("pipeline.yaml", [f"baselines={baselines}"])
    defaults = config.estimator_defaults()
    built = {b.key: build_estimator(b.name, b.params, defaults=defaults) for b in config.baselines}
    assert built["arima_x"].future_covariates == ["x"]
    assert built["plain"].future_covariates is None
    assert "future_covariates" not in built["snaive"].get_params()


def test_a_shared_covariates_file_with_the_data_s_column_names(work):
    frame = covariate_frame().rename(columns={"unique_id": "zone", "ds": "hour", "y": "load"})
    shared = frame[frame["zone"] == "a"][["hour", "x"]]  # one market-wide driver for every series
    frame = frame.drop(columns="x").merge(shared, on="hour")
    frame["load"] = 3 * frame["x"] + np.random.default_rng(1).normal(0, 0.3, len(frame))
    frame.drop(columns="x").to_csv("data.csv", index=False)
    shared.to_csv("drivers.csv", index=False)
    columns = [
        "data.id_col=zone",
        "data.time_col=hour",
        "data.target_col=load",
        "covariates.path=drivers.csv",
    ]
    assert run("2024-01-05", *[item for setting in columns for item in ("--set", setting)]) == 0
    forecasts = pd.read_csv(work / "outputs" / "2024-01-05" / "forecasts.csv", parse_dates=["hour"])
    assert list(forecasts.columns) == ["zone", "hour", "y_pred"]
    merged = forecasts.merge(shared, on="hour")
    assert (merged["y_pred"] - 3 * merged["x"]).abs().max() < 2.0


def test_a_recurrent_model_gets_the_covariates_and_calendar_features_everywhere(work, tmp_path, capsys):
    pytest.importorskip("mlflow")
    store = f"sqlite:///{(tmp_path / 'mlflow.db').as_posix()}"
    settings = [
        "covariates.calendar=auto",  # the LSTM builds them; AutoARIMA, a baseline here, gets x alone
        "model={name: lstm, params: {max_epochs: 2, hidden_size: 4, tbptt_steps: 24}}",
        "baselines=[snaive, autoarima]",
        "backtest.n_windows=1",
        "gate.enabled=false",
        f"tracking={{tracking_uri: '{store}', plots: false, register: {{name: lstm-x}}}}",
    ]
    assert run("2024-01-05", *[item for setting in settings for item in ("--set", setting)]) == 0
    err = capsys.readouterr().err
    assert "could not log" not in err and "diagnostics of lstm logged to MLflow" in err
    manifest = json.loads((work / "outputs" / "2024-01-05" / "manifest.json").read_text())
    assert manifest["model"]["params"]["calendar_features"] == "auto"
    assert manifest["model"]["params"]["future_covariates"] == ["x"]
    comparison = pd.read_csv(work / "outputs" / "2024-01-05" / "comparison.csv", index_col="model")
    assert comparison.loc["autoarima", "mase"] < 0.2 * comparison.loc["snaive", "mase"]  # it got x


def test_the_electricity_example_runs_on_a_short_copy(work, monkeypatch):
    source = REPO.parent / "shared" / "data" / "exog" / "electricity-short-with-ex-vars.csv"
    if not source.is_file():
        pytest.skip(f"{source} not found")
    example = REPO / "pipelines" / "electricity_covariates.yaml"
    config = load_config(example)
    assert config.covariates.path == config.data.path and len(config.covariates.future) == 9
    frame = pd.read_csv(source, parse_dates=["ds"])
    frame = frame[frame["unique_id"] == "BE"].tail(24 * 8)  # the last 8 days of one market
    frame.to_csv("electricity.csv", index=False)
    monkeypatch.setenv("ELECTRICITY_DATA", "electricity.csv")
    code = main_in_process(
        "run", example, "--as-of", "2016-12-29", "--set", "backtest.n_windows=1", "--set", "outputs.dir=out"
    )
    assert code in (0, 4)  # 4: AutoARIMA did not beat the seasonal naive forecast on that window
    manifest = json.loads((work / "out" / "2016-12-29" / "manifest.json").read_text())
    assert [f["role"] for f in manifest["inputs"]] == ["data", "covariates"]
    comparison = pd.read_csv(work / "out" / "2016-12-29" / "comparison.csv", index_col="model")
    assert set(comparison.index) == {"autoarima", "snaive"}


def test_the_example_needs_the_model_to_take_covariates():
    with pytest.raises(ConfigError, match="the model 'snaive' \\(SeasonalNaive\\) takes no covariates"):
        load_config(REPO / "pipelines" / "electricity_covariates.yaml", ["model.name=snaive"])
