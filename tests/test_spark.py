"""Batch forecasting on Spark (issue "Beyond one machine"): a local ``local[2]`` session forecasts a
parquet panel of a few thousand series through :func:`tsforecast.spark.forecast`, and the forecasts
equal the model's own batched ``predict`` on the same data (the Python workers run this interpreter).

Needs pyspark (the ``spark`` extra) and Java 17+; ``.ci/run`` installs Java when it is missing.
"""

from __future__ import annotations

import os
import shutil
import sys

import numpy as np
import pandas as pd
import pytest

pyspark = pytest.importorskip("pyspark")
if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
    pytest.skip("no Java runtime for Spark (install openjdk-17-jre-headless)", allow_module_level=True)

from pyspark.sql import SparkSession  # noqa: E402

from tsforecast import LSTMForecaster  # noqa: E402
from tsforecast.baselines import SeasonalNaive  # noqa: E402
from tsforecast.exceptions import InvalidParameterError  # noqa: E402
from tsforecast.pipelines.models import save_model  # noqa: E402
from tsforecast.spark import forecast  # noqa: E402

pytestmark = [
    pytest.mark.timeout(300),
    # pyspark's own complaints about pandas 3, not ours
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]
HORIZON, SEASON = 6, 24
TINY = dict(
    horizon=HORIZON, season_length=SEASON, hidden_size=8, max_epochs=1, tbptt_steps=24, random_state=0
)


@pytest.fixture(scope="module")
def spark():
    os.environ["PYSPARK_PYTHON"] = sys.executable  # the workers import tsforecast from this environment
    session = (
        SparkSession.builder.master("local[2]")
        .appName("tsforecast-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    yield session
    session.stop()


def panel(n_series: int, seed: int = 0) -> pd.DataFrame:
    """Hourly series of 48 to 96 steps with a daily cycle and a price covariate, built as whole arrays."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(48, 97, n_series)
    series = np.repeat(np.arange(n_series), lengths)
    step = np.arange(len(series)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    start = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 24, n_series), unit="h")
    ds = start.values[series] + step.astype("timedelta64[h]")
    price = np.sin(2 * np.pi * step / SEASON + series)
    y = (
        20
        + series % 7
        + 5 * np.sin(2 * np.pi * (step / SEASON))
        + 2 * price
        + rng.normal(0, 0.5, len(series))
    )
    ids = np.char.add("s", np.char.zfill(series.astype(str), 5))
    return pd.DataFrame({"unique_id": ids, "ds": ds, "y": y, "price": price})


def _same(result, expected, columns) -> None:
    key = ["unique_id", "ds"]
    result = result.sort_values(key).reset_index(drop=True)
    expected = expected.sort_values(key).reset_index(drop=True)
    assert result["unique_id"].tolist() == expected["unique_id"].tolist()
    assert (pd.to_datetime(result["ds"]).to_numpy() == expected["ds"].to_numpy()).all()
    for column in columns:
        np.testing.assert_allclose(result[column], expected[column], rtol=1e-5, atol=1e-6, err_msg=column)


def test_a_parquet_panel_forecast_on_spark_equals_the_models_predict(spark, tmp_path):
    frame = panel(3_000)[["unique_id", "ds", "y"]]
    frame.to_parquet(tmp_path / "panel.parquet", index=False)
    model = LSTMForecaster(**TINY)
    model.fit(frame)
    result = forecast(model, str(tmp_path / "panel.parquet"), series_per_group=800)
    assert result.columns == ["unique_id", "ds", "y_pred"]
    _same(result.toPandas(), model.predict(y=frame), ["y_pred"])
    with pytest.raises(InvalidParameterError, match="quantiles"):
        forecast(model, str(tmp_path / "panel.parquet"), level=95)
    with pytest.raises(InvalidParameterError, match="neither a model file nor an MLflow model URI"):
        forecast(str(tmp_path / "absent.safetensors"), str(tmp_path / "panel.parquet"))


def test_a_model_file_with_intervals_and_another_columns_names(spark, tmp_path):
    frame = panel(500, seed=1)[["unique_id", "ds", "y"]]
    model = SeasonalNaive(horizon=HORIZON, season_length=SEASON).fit(frame)
    save_model(model, tmp_path / "snaive.joblib")
    renamed = spark.createDataFrame(frame.rename(columns={"unique_id": "store", "ds": "hour", "y": "sales"}))
    result = forecast(
        str(tmp_path / "snaive.joblib"),
        renamed,
        level=[80, 95],
        id_col="store",
        time_col="hour",
        target_col="sales",
    ).toPandas()
    assert list(result.columns) == ["store", "hour", "y_pred", "y_lo_80", "y_hi_80", "y_lo_95", "y_hi_95"]
    expected = model.predict(y=frame, level=[80, 95])
    _same(result.rename(columns={"store": "unique_id", "hour": "ds"}), expected, expected.columns[2:])


def test_covariates_reach_every_bucket(spark, tmp_path):
    frame = panel(300, seed=2)
    ends = frame.groupby("unique_id")["ds"].max()
    future = pd.DataFrame(
        {
            "unique_id": np.repeat(ends.index, HORIZON),
            "ds": (ends.values[:, None] + np.arange(1, HORIZON + 1) * np.timedelta64(1, "h")).ravel(),
        }
    )
    future["price"] = np.cos(np.arange(len(future)))
    X = pd.concat([frame.drop(columns="y"), future], ignore_index=True)
    model = LSTMForecaster(**TINY, future_covariates=["price"]).fit(frame.drop(columns="price"), X=X)
    result = forecast(model, spark.createDataFrame(frame.drop(columns="price")),
                      covariates=spark.createDataFrame(X), series_per_group=100)  # fmt: skip
    _same(result.toPandas(), model.predict(X=X, y=frame.drop(columns="price")), ["y_pred"])
