"""Prediction intervals in MLflow (issue 17): interval metrics, the levels as parameters, bands in plots.

Against an embedded SQLite store in each test's folder (no mocks of MLflow). The figures are checked
through what they are drawn from: a spy on :func:`tsforecast.tracking.plots.forecast_figure` records
the columns of the forecasts it receives and then draws them.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

mlflow = pytest.importorskip("mlflow")

from clitools import main_in_process  # noqa: E402
from faulttools import daily_pipeline  # noqa: E402
from test_pipelines_intervals import AS_OF, BOUNDS, SECTIONS, weekly_sales  # noqa: E402

from tsforecast import tracking  # noqa: E402
from tsforecast.backtesting import compare  # noqa: E402
from tsforecast.baselines import Naive2, SeasonalNaive  # noqa: E402
from tsforecast.tracking import plots  # noqa: E402

pytestmark = [pytest.mark.tracking, pytest.mark.timeout(180)]

METRICS = ["smape", "mase", "msis", "coverage", "acd"]


@pytest.fixture
def store(tmp_path, monkeypatch):
    """An embedded store in the test's folder, made the working directory; no ambient MLflow settings."""
    monkeypatch.chdir(tmp_path)
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.delenv(name, raising=False)
    return f"sqlite:///{(tmp_path / 'mlflow.db').as_posix()}"


@pytest.fixture
def drawn(monkeypatch) -> list:
    """The forecast columns of every forecast figure drawn (one list per figure)."""
    seen, draw = [], plots.forecast_figure

    def spy(actual, forecasts, n_series=4):
        seen.append(list(forecasts.columns))
        return draw(actual, forecasts, n_series)

    monkeypatch.setattr(plots, "forecast_figure", spy)
    return seen


def test_track_backtest_logs_interval_metrics_the_levels_and_bands(tmp_path, store, drawn):
    y = weekly_sales(tmp_path)
    models = {
        "snaive": SeasonalNaive(horizon=7, season_length=7),
        "naive2": Naive2(horizon=7, season_length=7),
    }
    result = compare(models, y, 7, n_windows=2, level=[80, 95], season_length=7, metrics=METRICS)
    run_id = tracking.track_backtest(result, experiment="intervals", tracking_uri=store)

    client = mlflow.MlflowClient(store)
    run = client.get_run(run_id)
    for metric in ("msis_80", "msis_95", "coverage_80", "coverage_95", "acd_95"):
        assert run.data.metrics[f"snaive/{metric}"] == pytest.approx(result.summary.loc["snaive", metric])
    by_step = client.get_metric_history(run_id, "naive2/coverage_95_by_step")
    assert sorted(m.step for m in by_step) == list(range(1, 8))
    assert run.data.params["backtest.level"] == "80, 95"
    logged = pd.read_parquet(client.download_artifacts(run_id, "backtest/forecasts.parquet", str(tmp_path)))
    assert set(BOUNDS) <= set(logged.columns)
    assert len(drawn) == 1 and set(BOUNDS) <= set(drawn[0])  # the backtest figure draws the bands


@pytest.mark.parametrize("layout", ["long", "wide", "series"])
def test_track_fit_logs_forecasts_with_their_bounds_in_any_layout(tmp_path, store, drawn, layout):
    y = weekly_sales(tmp_path)
    if layout != "long":
        y = y.pivot(index="ds", columns="unique_id", values="y").rename_axis(columns=None)
        y.index = pd.DatetimeIndex(pd.to_datetime(y.index), freq="D")
        y = y["s0"] if layout == "series" else y
    model = SeasonalNaive(horizon=7, season_length=7)
    _, run_id = tracking.track_fit(model, y, tracking_uri=store, level=[80, 95], log_model=False)

    client = mlflow.MlflowClient(store)
    assert client.get_run(run_id).data.params["forecast.level"] == "80, 95"
    logged = pd.read_parquet(client.download_artifacts(run_id, "forecasts.parquet", str(tmp_path)))
    assert list(logged.columns) == ["unique_id", "ds", "y_pred", *BOUNDS]
    assert len(logged) == 7 * (1 if layout == "series" else 3) and logged[BOUNDS].notna().all().all()
    assert (logged["y_lo_95"] <= logged["y_lo_80"]).all() and (logged["y_hi_80"] <= logged["y_hi_95"]).all()
    assert len(drawn) == 1 and set(BOUNDS) <= set(drawn[0])


def test_a_tracked_pipeline_logs_its_intervals_and_a_failed_coverage_gate_registers_nothing(
    tmp_path, store, drawn, capsys
):
    weekly_sales(tmp_path)
    tracked = f"{{enabled: true, tracking_uri: '{store}', diagnostics: false, register: {{name: sales}}}}"
    sections = SECTIONS | dict(tracking=tracked, evaluation="{test_path: test.csv}")
    sections["gate"] = "{metric: mase, margin: 10, coverage: {level: 80, min: 0.5}}"
    (tmp_path / "pipeline.yaml").write_text(daily_pipeline(**sections))
    assert main_in_process("run", "pipeline.yaml", "--as-of", AS_OF) == 0
    ids = json.loads((tmp_path / "outputs" / AS_OF / "run.json").read_text())["mlflow"]

    client = mlflow.MlflowClient(store)
    parent = client.get_run(ids["run_id"]).data
    assert parent.params["pipeline.intervals.levels"] == "80, 95"
    assert parent.params["pipeline.intervals.method"] == "model"
    assert parent.params["pipeline.gate.coverage"] == "80% in [0.5, 1]"
    assert parent.params["backtest.level"] == "80, 95"
    comparison = pd.read_csv(tmp_path / "outputs" / AS_OF / "comparison.csv", index_col="model")
    for label in ("naive", "snaive", "naive2"):
        assert parent.metrics[f"{label}/coverage_95"] == pytest.approx(comparison.loc[label, "coverage_95"])
        assert parent.metrics[f"{label}/msis_80"] == pytest.approx(comparison.loc[label, "msis_80"])
    assert parent.metrics["gate/coverage"] == pytest.approx(comparison.loc["naive", "coverage_80"])
    assert parent.metrics["gate/coverage_passed"] == 1.0 and parent.metrics["gate/passed"] == 1.0
    evaluation = pd.read_csv(tmp_path / "outputs" / AS_OF / "evaluation.csv", index_col="model")
    assert parent.metrics["test/naive/coverage_95"] == pytest.approx(evaluation.loc["naive", "coverage_95"])
    assert parent.metrics["test/naive2/acd_80"] == pytest.approx(evaluation.loc["naive2", "acd_80"])

    fit = client.get_run(ids["fit_run_id"]).data
    assert fit.params["forecast.level"] == "80, 95"
    logged = pd.read_parquet(client.download_artifacts(ids["fit_run_id"], "forecasts.parquet", str(tmp_path)))
    assert set(BOUNDS) <= set(logged.columns)
    # The fit's, the backtest's and the test set's figures: every one draws the bands.
    assert len(drawn) == 3 and all(set(BOUNDS) <= set(columns) for columns in drawn)
    assert [int(v.version) for v in client.search_model_versions("name='sales'")] == [1]

    # A later date whose model's intervals cover too little: exit 4, no model registered or published.
    capsys.readouterr()
    later = ["--as-of", "2024-05-05", "--set", "gate.coverage.min=0.99", "--set", "evaluation=null"]
    assert main_in_process("run", "pipeline.yaml", *later) == 4
    assert "coverage gate FAILED" in capsys.readouterr().out
    assert [int(v.version) for v in client.search_model_versions("name='sales'")] == [1]
    assert not (tmp_path / "outputs" / "2024-05-05" / "forecasts.csv").exists()
    failed = json.loads((tmp_path / "outputs" / "2024-05-05" / "run.json").read_text())["mlflow"]
    metrics = client.get_run(failed["run_id"]).data.metrics
    assert metrics["gate/coverage_passed"] == 0.0 and metrics["gate/passed"] == 0.0
    assert np.isfinite(metrics["naive/coverage_80"]) and "fit_run_id" not in failed
