"""An MLflow pyfunc model with covariates, in a real local store (SQLite): logged, loaded, served.

The input frame of such a model holds, per series, its history (target and covariates) and then the
rows of the forecast period with the target empty and the future-known covariates filled in.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

mlflow = pytest.importorskip("mlflow")


from tests.clitools import main_in_process  # noqa: E402
from tests.test_cli_covariates import covariate_frame  # noqa: E402
from tsforecast import tracking  # noqa: E402
from tsforecast.baselines import AutoARIMA, SeasonalNaive  # noqa: E402
from tsforecast.exceptions import InvalidInputError, InvalidParameterError  # noqa: E402
from tsforecast.tracking.pyfunc import log_forecaster_model, split_input  # noqa: E402

pytestmark = [pytest.mark.tracking, pytest.mark.timeout(120), pytest.mark.usefixtures("no_ambient_store")]

HORIZON, LENGTH = 24, 120


def served_model(uri: str = "models:/arima-x@champion"):
    return mlflow.pyfunc.load_model(uri)


def serving_frame() -> pd.DataFrame:
    """Two series ``y = 3 x + noise``: ``LENGTH`` hours of history, then ``HORIZON`` rows with y NaN."""
    return covariate_frame(LENGTH, HORIZON)


@pytest.fixture(scope="module")
def logged(store):
    """A tracked fit of AutoARIMA with ``future_covariates=["x"]``: the estimator and its run id."""
    frame = serving_frame()
    history, X = frame.dropna(subset=["y"])[["unique_id", "ds", "y"]], frame[["unique_id", "ds", "x"]]
    model = AutoARIMA(horizon=HORIZON, season_length=24, future_covariates=["x"])
    return tracking.track_fit(
        model, history, X=X, experiment="covariates", tracking_uri=store, plots=False,
        registered_model_name="arima-x", model_alias="champion",
    )  # fmt: skip


def test_the_signature_lists_the_covariate_columns(logged, in_store):
    _, run_id = logged
    served = served_model()
    inputs = {column.name: column for column in served.metadata.get_input_schema().inputs}
    assert list(inputs) == ["unique_id", "ds", "y", "x"]
    assert inputs["x"].required and not inputs["y"].required  # y is empty in the forecast period
    run = mlflow.MlflowClient().get_run(run_id)
    assert "tsforecast.incomplete" not in run.data.tags  # forecasts and model logged with the covariates
    example = served.input_example
    assert example["y"].isna().sum() == HORIZON and example["x"].notna().all()


def test_the_loaded_model_forecasts_from_one_frame_of_history_and_future_covariates(logged, in_store):
    estimator, _ = logged
    served = served_model()
    frame = serving_frame()
    forecasts = served.predict(frame)
    expected = estimator.predict(X=frame[["unique_id", "ds", "x"]])
    np.testing.assert_allclose(forecasts["y_pred"], expected["y_pred"])
    assert forecasts["ds"].min() == pd.Timestamp("2024-01-06")
    truth = 3 * frame.loc[frame["y"].isna(), "x"].to_numpy()
    assert np.abs(forecasts["y_pred"].to_numpy() - truth).mean() < 1.0
    # The covariates are used: other future values, other forecasts (by the coefficient of x, 3).
    moved = served.predict(frame.assign(x=np.where(frame["y"].isna(), frame["x"] + 1, frame["x"])))
    assert (moved["y_pred"] - forecasts["y_pred"]).to_numpy() == pytest.approx(3.0, abs=0.2)
    assert len(served.predict(frame, params={"horizon": 6})) == 12


def test_future_rows_must_cover_the_horizon(logged, in_store):
    served = served_model()
    frame = serving_frame()
    short = frame.groupby("unique_id").head(LENGTH + 10)  # ten future rows per series, not 24
    with pytest.raises(InvalidInputError, match="X has no row for series 'a' at 2024-01-06 10:00:00"):
        served.predict(short)
    with pytest.raises(Exception, match="x"):  # MLflow's schema check names the missing column
        served.predict(frame.drop(columns="x"))


def test_split_input_and_logging_without_the_covariates(in_store):
    frame = serving_frame()
    history = frame.dropna(subset=["y"])
    model = AutoARIMA(horizon=HORIZON, season_length=24, future_covariates=["x"])
    model.fit(history[["unique_id", "ds", "y"]], X=frame[["unique_id", "ds", "x"]])
    y, X = split_input(model, frame)
    assert list(y.columns) == ["unique_id", "ds", "y"] and list(X.columns) == ["unique_id", "ds", "x"]
    with pytest.raises(InvalidInputError, match="no covariate column 'x'"):
        split_input(model, frame.drop(columns="x"))
    naive = SeasonalNaive(horizon=HORIZON, season_length=24).fit(history[["unique_id", "ds", "y"]])
    assert split_input(naive, frame)[1] is None
    example = history[history["unique_id"] == "a"][["unique_id", "ds", "y"]]
    with (
        tracking.run("covariates", "no X", tracking_uri=in_store),
        pytest.raises(InvalidParameterError, match="pass them as X to log it"),
    ):
        log_forecaster_model(model, example)


def test_a_tracked_pipeline_registers_a_model_that_takes_the_covariates(store, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    frame = serving_frame()
    frame.to_csv("data.csv", index=False)
    (tmp_path / "pipeline.yaml").write_text(
        "name: arima-pipeline\n"
        "data: {path: data.csv, freq: h, max_staleness: null}\n"
        "covariates: {path: data.csv, future: [x]}\n"
        "forecast: {horizon: 24, season_length: 24}\n"
        "model: {name: autoarima}\n"
        "baselines: [snaive]\n"
        "outputs: {dir: outputs, format: csv}\n"
        f"tracking: {{tracking_uri: '{store}', plots: false, diagnostics: false, "
        "register: {name: arima-pipeline}}\n"
    )
    assert main_in_process("run", "pipeline.yaml", "--as-of", "2024-01-10") == 0
    with tracking.store.using(tracking.resolve_store(store)):
        served = served_model("models:/arima-pipeline@champion")
        forecasts = served.predict(frame)
    assert [c.name for c in served.metadata.get_input_schema().inputs] == ["unique_id", "ds", "y", "x"]
    published = pd.read_csv(tmp_path / "outputs" / "2024-01-10" / "forecasts.csv")
    np.testing.assert_allclose(forecasts["y_pred"], published["y_pred"])
