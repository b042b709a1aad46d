"""Prediction intervals in the YAML pipelines (issue 17): the ``intervals:`` section and ``gate.coverage``.

Real runs of small daily pipelines (three weekly series, the faulttools builder) through the command in
this process: the bound columns of the published forecasts, the interval metrics of the backtest and
of the test set, the coverage gate passing and failing, conformal intervals, and the configuration
errors. The MLflow side is in ``test_tracking_intervals.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from clitools import main_in_process
from faulttools import daily_pipeline

from tsforecast.backtesting import compare
from tsforecast.base import BaseForecaster
from tsforecast.baselines import Naive2, SeasonalNaive
from tsforecast.pipelines import ConfigError, load_config
from tsforecast.pipelines import intervals as pipeline_intervals

pytestmark = pytest.mark.timeout(120)

BOUNDS = ["y_lo_80", "y_hi_80", "y_lo_95", "y_hi_95"]
INTERVAL_METRICS = ["msis_80", "msis_95", "coverage_80", "coverage_95", "acd_80", "acd_95"]
SECTIONS = dict(
    name="intervals",
    model="{name: naive}",
    baselines="[snaive, naive2]",
    backtest="{n_windows: 3}",
    intervals="{levels: [80, 95], method: model}",
    outputs="{dir: outputs, format: csv, baseline_forecasts: all}",
)
AS_OF = "2024-04-28"


def weekly_sales(folder: Path, days: int = 126) -> pd.DataFrame:
    """Three weekly-seasonal daily series from 2024-01-01 to 2024-05-05 (the last week: test.csv)."""
    rng = np.random.default_rng(1)
    times = pd.date_range("2024-01-01", periods=days, freq="D")
    weekly = 3 * np.sin(2 * np.pi * np.arange(days) / 7)
    frame = pd.concat(
        [
            pd.DataFrame({"unique_id": f"s{k}", "ds": times, "y": 10 + k + weekly + rng.normal(0, 0.5, days)})
            for k in range(3)
        ],
        ignore_index=True,
    )
    frame.to_csv(folder / "sales.csv", index=False)
    frame[frame["ds"] > AS_OF].to_csv(folder / "test.csv", index=False)
    return frame


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """The working directory: sales.csv, test.csv and pipeline.yaml (the sections above)."""
    monkeypatch.chdir(tmp_path)
    weekly_sales(tmp_path)
    (tmp_path / "pipeline.yaml").write_text(daily_pipeline(**SECTIONS))
    return tmp_path


def run(as_of: str = AS_OF, *settings) -> int:
    return main_in_process("run", "pipeline.yaml", "--as-of", as_of, *settings)


def manifest_of(path: Path) -> dict:
    return json.loads((path / "manifest.json").read_text())


def test_forecasts_backtest_and_test_scores_carry_the_intervals(folder):
    assert run(AS_OF, "--set", "evaluation.test_path=test.csv") == 0
    out = folder / "outputs" / AS_OF
    forecasts = pd.read_csv(out / "forecasts.csv", parse_dates=["ds"])
    assert list(forecasts.columns) == ["unique_id", "ds", "y_pred", *BOUNDS] and len(forecasts) == 3 * 7
    ordered = forecasts[["y_lo_95", "y_lo_80", "y_pred", "y_hi_80", "y_hi_95"]].to_numpy()
    assert (np.diff(ordered, axis=1) >= 0).all() and (ordered[:, -1] > ordered[:, 0]).all()  # nested
    baselines = pd.read_csv(out / "baseline_forecasts.csv")
    assert set(baselines["model"]) == {"snaive", "naive2"} and baselines[BOUNDS].notna().all().all()

    comparison = pd.read_csv(out / "comparison.csv", index_col="model")
    assert list(comparison.index) == ["naive", "snaive", "naive2"]
    assert np.isfinite(comparison[INTERVAL_METRICS].to_numpy()).all()  # the baselines' intervals too
    acd = (comparison["coverage_95"] - 0.95).abs()
    np.testing.assert_allclose(comparison["acd_95"], acd)
    assert {"coverage_95", "msis_95"} <= set(pd.read_csv(out / "backtest_by_horizon.csv").columns)

    # The test set: coverage pooled over every series and step, as M4 computed it.
    scores = pd.read_csv(out / "evaluation.csv", index_col="model")
    test = pd.read_csv(folder / "test.csv", parse_dates=["ds"]).merge(forecasts, on=["unique_id", "ds"])
    inside = ((test["y"] >= test["y_lo_95"]) & (test["y"] <= test["y_hi_95"])).mean()
    assert scores.loc["naive", "coverage_95"] == pytest.approx(inside)
    assert scores.loc["naive", "acd_95"] == pytest.approx(abs(inside - 0.95))
    assert np.isfinite(scores[["msis_80", "msis_95", "coverage_80"]].to_numpy()).all()

    manifest = manifest_of(out)
    assert manifest["config"]["intervals"] == {
        "levels": [80.0, 95.0], "method": "model", "n_windows": 3, "per_series": False,
    }  # fmt: skip
    assert manifest["backtest"]["summary"]["naive"]["coverage_95"] == comparison.loc["naive", "coverage_95"]
    first = (out / "forecasts.csv").read_bytes()
    assert run(AS_OF, "--set", "evaluation.test_path=test.csv") == 0  # a rerun gives the same files
    assert (folder / "outputs" / AS_OF / "forecasts.csv").read_bytes() == first


def test_the_coverage_gate_keeps_a_model_whose_intervals_fail_out(folder, capsys):
    gate = ["--set", "gate={metric: mase, margin: 10, coverage: {level: 80, min: 0.5}}"]
    assert run("2024-04-21", *gate) == 0
    assert "coverage gate passed: naive's 80% intervals held" in capsys.readouterr().out
    current = (folder / "outputs" / "current").resolve()

    # Naive's 80% intervals hold about 87% of the backtest's actuals: not the 99% asked for.
    assert run(AS_OF, *gate, "--set", "gate.coverage.min=0.99") == 4
    out = capsys.readouterr().out
    assert "coverage gate FAILED: naive's 80% intervals held" in out and "at least 99.0%" in out
    assert "quality gate passed" in out  # the point metrics alone would have kept it
    folder_ = folder / "outputs" / AS_OF
    assert not (folder_ / "forecasts.csv").exists() and not list(folder_.glob("model.*"))
    assert (folder / "outputs" / "current").resolve() == current  # the previous model stays current
    manifest = manifest_of(folder_)
    assert manifest["status"] == "gate_failed" and manifest["gate"]["passed"] is False
    assert manifest["gate"]["coverage"]["passed"] is False and manifest["gate"]["coverage"]["min"] == 0.99
    coverage = pd.read_csv(folder_ / "comparison.csv", index_col="model").loc["naive", "coverage_80"]
    assert manifest["gate"]["coverage"]["coverage"] == pytest.approx(coverage)

    # Too wide is a failure too, with a maximum: naive's 95% intervals hold about 98%.
    assert run(AS_OF, "--set", "gate={margin: 10, coverage: {level: 95, min: 0.8, max: 0.96}}") == 4
    assert "and at most 96.0%" in capsys.readouterr().out


def test_conformal_intervals_wrap_the_model_and_need_enough_calibration_scores(folder, capsys):
    conformal = ["--set", "intervals={levels: [80, 95], method: conformal, n_windows: 7}"]
    assert run(AS_OF, *conformal) == 0
    out = folder / "outputs" / AS_OF
    forecasts = pd.read_csv(out / "forecasts.csv")
    assert list(forecasts.columns) == ["unique_id", "ds", "y_pred", *BOUNDS]
    manifest = manifest_of(out)
    assert manifest["model"]["class"] == "ConformalIntervals" and manifest["model"]["file"] == "model.joblib"
    assert manifest["model"]["params"]["n_windows"] == 7
    # Its point forecasts are the naive forecaster's own: the last value of each series.
    last = pd.read_csv(folder / "sales.csv").query("ds <= @AS_OF").groupby("unique_id")["y"].last()
    np.testing.assert_allclose(forecasts.groupby("unique_id")["y_pred"].first(), last)

    # Three series x two windows give six scores per step, a 95% interval needs 19: refused before any fit.
    capsys.readouterr()
    assert run("2024-04-21", *conformal, "--set", "intervals.n_windows=2") == 2
    err = capsys.readouterr().err
    assert "step 'validate' failed" in err
    assert "intervals.n_windows: a 95% conformal interval needs at least 19 calibration scores" in err
    assert "2 window(s) x 3 series give 6. Set intervals.n_windows to at least 7" in err
    assert not (folder / "outputs" / "2024-04-21").exists()


def test_the_recurrent_model_gives_the_intervals_its_quantiles_bound(folder):
    lstm = "{hidden_size: 4, num_layers: 1, max_epochs: 1, tbptt_steps: 14, quantiles: [0.1, 0.9]}"
    settings = ["--set", "model.name=lstm", "--set", f"model.params={lstm}", "--set", "intervals.levels=80"]
    assert run(AS_OF, *settings, "--set", "backtest.n_windows=1") == 0
    out = folder / "outputs" / AS_OF
    forecasts = pd.read_csv(out / "forecasts.csv")
    assert {"y_lo_80", "y_hi_80"} <= set(forecasts.columns) and "y_lo_95" not in forecasts.columns
    assert (forecasts["y_lo_80"] <= forecasts["y_pred"]).all() and (
        forecasts["y_pred"] <= forecasts["y_hi_80"]
    ).all()
    comparison = pd.read_csv(out / "comparison.csv", index_col="model")
    assert np.isfinite(comparison.loc["lstm", ["msis_80", "coverage_80", "acd_80"]].astype(float)).all()


def problems(tmp_path: Path, *overrides: str, **sections) -> str:
    path = tmp_path / "pipeline.yaml"
    path.write_text(daily_pipeline(**(SECTIONS | sections)))
    with pytest.raises(ConfigError) as error:
        load_config(path, overrides)
    return str(error.value)


def test_configuration_errors_name_the_field(tmp_path):
    message = problems(tmp_path, intervals="{levels: [0, 95, 150, abc]}")
    expected = "expected percentages strictly between 0 and 100, like [80, 95]; got 0, 150 and 'abc'."
    assert f"intervals.levels: {expected}" in message
    assert "intervals.levels: expected percentages" in problems(tmp_path, intervals="{levels: []}")

    message = problems(
        tmp_path, intervals="{levels: [80, 95], n_windows: 5}", gate="{coverage: {level: 90, min: 0.9}}"
    )
    assert "2 problems" in message
    assert "intervals.n_windows: only method: conformal uses it" in message
    assert "gate.coverage.level: 90 is not one of intervals.levels [80.0, 95.0]" in message
    message = problems(tmp_path, gate="{coverage: {level: 95, min: 90}}")
    assert (
        "gate.coverage.min: expected a fraction of the actuals between 0 and 1 (0.9 for 90%), got 90"
        in message
    )
    message = problems(tmp_path, gate="{coverage: {level: 95, min: 0.9, max: 0.8}}", intervals=None)
    assert "gate.coverage: needs an intervals: section with the level 95" in message
    assert "gate.coverage: min 0.9 is above max 0.8" in message
    assert "intervals.method: expected 'model' or 'conformal'" in problems(
        tmp_path, intervals="{levels: 95, method: x}"
    )
    message = problems(
        tmp_path, "model.name=lstm", intervals="{levels: [95], method: conformal, n_windows: 3}"
    )
    assert (
        "intervals.method: conformal cannot be saved around a recurrent model (LSTMForecaster) yet" in message
    )
    per_series = "{levels: [80, 95], method: conformal, per_series: true, n_windows: 3}"
    assert (
        "a 95% conformal interval needs at least 19 calibration scores per horizon step and series"
        in problems(tmp_path, intervals=per_series)
    )


def test_a_model_without_the_intervals_asked_is_refused_at_check_time(tmp_path, capsys):
    message = problems(tmp_path, "model.name=lstm", "model.params={quantiles: [0.1, 0.9]}")
    assert (
        "intervals.method: 'model' takes the model's own intervals, but LSTMForecaster was trained for the "
        in message
    )
    assert message.endswith("set model.params.quantiles: [0.025, 0.1, 0.9, 0.975].")
    path = tmp_path / "pipeline.yaml"
    config = load_config(path, ["model.name=lstm", "model.params={quantiles: [0.025, 0.1, 0.9, 0.975]}"])
    assert config.intervals.levels == [80.0, 95.0]
    conformal = load_config(path, ["model.name=theta", "intervals.method=conformal"])
    assert conformal.intervals.method == "conformal"
    assert main_in_process("run", path, "--check", "--set", "model.name=lstm") == 2
    assert "intervals.method: 'model'" in capsys.readouterr().err


class LastValue(BaseForecaster):
    """A forecaster without intervals of its own: the last value of each series."""

    def __init__(self, horizon=1):
        self.horizon = horizon

    def _fit(self, panel):
        pass

    def _predict(self, panel, horizon, is_training_history):
        return np.stack([np.full(horizon, values[-1]) for values in panel.values])

    def _min_length(self):
        return 1


def test_baselines_without_intervals_are_compared_on_the_point_metrics(tmp_path):
    y = weekly_sales(tmp_path)
    models = {
        "snaive": SeasonalNaive(horizon=7, season_length=7),
        "last": LastValue(horizon=7),
        "naive2": Naive2(horizon=7, season_length=7),
    }
    options = dict(y=y, horizon=7, n_windows=2, season_length=7)
    result = pipeline_intervals.backtest(compare, models, (95.0,), metrics=["smape", "mase"], **options)
    assert list(result.summary.index) == ["snaive", "last", "naive2"]
    assert result.summary.loc["last", ["msis_95", "coverage_95"]].isna().all()
    assert result.summary.loc[["snaive", "naive2"], "coverage_95"].notna().all()
    points = compare(models, metrics=["smape", "mase"], **options)  # everything without intervals
    pd.testing.assert_frame_equal(result.summary[points.summary.columns], points.summary)  # OWA too
    pd.testing.assert_frame_equal(result.by_horizon[points.by_horizon.columns], points.by_horizon)
    assert list(pd.unique(result.forecasts["model"])) == ["snaive", "last", "naive2"]
    assert result.forecasts.loc[result.forecasts["model"] == "last", "y_lo_95"].isna().all()


@pytest.mark.parametrize(
    "name",
    [
        p.name
        for p in sorted((Path(__file__).parents[1] / "pipelines").glob("*.yaml"))
        if "tune" not in p.name
    ],
)
def test_every_example_pipeline_passes_its_checks(name):
    config = load_config(Path(__file__).parents[1] / "pipelines" / name, (), environ={})
    assert config.name
    if name == "m4_hourly_intervals.yaml":
        assert config.intervals.levels == [95.0] and config.gate.coverage.min == 0.9
