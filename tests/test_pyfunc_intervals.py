"""Prediction intervals of the MLflow pyfunc model, in a real local store (SQLite): the ``level`` param.

Models are logged, loaded back with ``mlflow.pyfunc.load_model`` and compared with the estimator's
own ``predict(level=...)``.
"""

from __future__ import annotations

import pandas as pd
import pytest

mlflow = pytest.importorskip("mlflow")


from tests.clitools import main_in_process  # noqa: E402
from tests.test_cli_intervals import HORIZON, SEASON, long_frame  # noqa: E402
from tsforecast import tracking  # noqa: E402
from tsforecast.baselines import SeasonalNaive  # noqa: E402
from tsforecast.data.io import read_frame  # noqa: E402
from tsforecast.exceptions import InvalidParameterError  # noqa: E402
from tsforecast.tracking.pyfunc import log_forecaster_model  # noqa: E402

pytestmark = [pytest.mark.tracking, pytest.mark.timeout(120), pytest.mark.usefixtures("no_ambient_store")]


@pytest.fixture(scope="module")
def frame():
    return long_frame()


@pytest.fixture(scope="module")
def tracked(store, frame):
    """A tracked fit (the model logged as ``track_fit`` logs it: no default levels) and its run id."""
    model = SeasonalNaive(horizon=HORIZON, season_length=SEASON)
    return tracking.track_fit(model, frame, experiment="intervals", tracking_uri=store, plots=False)


@pytest.fixture(scope="module")
def logged_95(store, frame):
    """The same model logged with ``level=95`` as its default: the model URI."""
    model = SeasonalNaive(horizon=HORIZON, season_length=SEASON).fit(frame)
    with tracking.store.using(tracking.resolve_store(store)):
        # Not set_experiment: that would leave an active experiment behind for later test modules.
        with mlflow.start_run(experiment_id=mlflow.create_experiment("intervals-level-95")):
            return log_forecaster_model(model, frame[frame["unique_id"] == "a"], level=95).model_uri


def param_specs(served) -> dict:
    return {spec.name: spec for spec in served.metadata.get_params_schema().params}


def test_level_param_gives_the_estimators_bounds(tracked, frame, in_store):
    estimator, run_id = tracked
    served = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
    level = param_specs(served)["level"]
    assert (level.dtype.name, level.shape, level.default) == ("double", (-1,), [])

    point = served.predict(frame)
    assert list(point.columns) == ["unique_id", "ds", "y_pred"]  # no intervals unless asked
    bands = served.predict(frame, params={"level": [95, 80]})
    expected = estimator.predict(y=frame, level=[80, 95])
    assert list(expected.columns) == ["unique_id", "ds", "y_pred", "y_lo_80", "y_hi_80", "y_lo_95", "y_hi_95"]
    pd.testing.assert_frame_equal(bands, expected, check_dtype=False)
    pd.testing.assert_series_equal(bands["y_pred"], point["y_pred"])  # intervals never move the point

    shorter = served.predict(frame, params={"level": [90.0], "horizon": 2})
    pd.testing.assert_frame_equal(shorter, estimator.predict(2, y=frame, level=90), check_dtype=False)


def test_logged_default_levels_are_in_the_signature_and_apply_without_params(logged_95, frame, in_store):
    served = mlflow.pyfunc.load_model(logged_95)
    assert param_specs(served)["level"].default == [95.0]
    outputs = [column.name for column in served.metadata.get_output_schema().inputs]
    assert outputs == ["unique_id", "ds", "y_pred", "y_lo_95", "y_hi_95"]
    estimator = served.unwrap_python_model().estimator_
    pd.testing.assert_frame_equal(
        served.predict(frame), estimator.predict(y=frame, level=95), check_dtype=False
    )
    assert list(served.predict(frame, params={"level": []}).columns) == ["unique_id", "ds", "y_pred"]


def test_bad_levels_are_refused_when_logging_and_serving(tracked, frame, in_store):
    estimator, run_id = tracked
    with mlflow.start_run():
        with pytest.raises(InvalidParameterError, match=r"strictly between 0 and 100.*got 150"):
            log_forecaster_model(estimator, frame, level=150)
    served = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
    with pytest.raises(InvalidParameterError, match=r"got \[100.0\]"):
        served.predict(frame, params={"level": [100]})
    with pytest.raises(mlflow.exceptions.MlflowException, match="level"):
        served.predict(frame, params={"level": ["abc"]})  # MLflow's own check of the param's type


def test_cli_predict_level_on_a_model_uri(tracked, store, tmp_path):
    estimator, run_id = tracked
    out = tmp_path / "uri.csv"
    code = main_in_process(
        "predict", f"runs:/{run_id}/model", "--tracking-uri", store, "--level", "80", "-o", out
    )
    assert code == 0
    pd.testing.assert_frame_equal(read_frame(out), estimator.predict(level=80), check_dtype=False)
