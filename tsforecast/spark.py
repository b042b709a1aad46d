"""Batch forecasting on Spark: :func:`forecast` turns a panel in a Spark DataFrame into one of forecasts.

How it runs: the rows are grouped into buckets of whole series (a hash of the series id, about
``series_per_group`` series each), and each bucket is forecast by one batched ``predict`` call in a
Python worker (``groupBy(bucket).applyInPandas``; with covariates, the two frames are cogrouped on
the same buckets). The model travels once: a broadcast variable holds the bytes of its model file (or
an MLflow model URI), and each Python worker process loads it on first use and keeps it (a cache
keyed by a digest of the payload), so a worker loads it once, not once per series or per bucket.

pyspark is an optional dependency (``pip install tsforecast[spark]``, Java 17 or later), imported only
here. The workers need tsforecast (and torch for a recurrent model) in the Python that Spark starts
(``PYSPARK_PYTHON``).
"""

from __future__ import annotations

import hashlib
import math
import tempfile
from pathlib import Path

from tsforecast.exceptions import InvalidParameterError
from tsforecast.metrics.intervals import interval_columns, interval_levels

__all__ = ["forecast"]

_LOADED: dict = {}  # a digest of the broadcast payload -> the model, in each Python worker process


def forecast(
    model,
    data,
    *,
    horizon: int | None = None,
    level=None,
    covariates=None,
    series_per_group: int = 10_000,
    id_col: str = "unique_id",
    time_col: str = "ds",
    target_col: str = "y",
    tracking_uri: str | None = None,
):
    """Forecast every series of a Spark DataFrame (or parquet dataset) with a fitted model, on Spark.

    Parameters
    ----------
    model : forecaster, path or str
        A fitted tsforecast forecaster, the path of a model file (``.safetensors``, ``.joblib``) that
        every executor can read, or an MLflow model URI (``runs:/...``, ``models:/name@alias``).
    data : pyspark.sql.DataFrame or str
        The history in the long layout (``id_col``, ``time_col``, ``target_col``), or the path of a
        parquet dataset Spark reads (Spark reads time stamps in microseconds at the finest: write
        pandas frames with ``to_parquet(..., coerce_timestamps="us")``). Each series is forecast
        from its own last time stamp.
    horizon : int, optional
        Steps to forecast (default: the model's horizon).
    level : float or list of float, optional
        Central prediction intervals in percent: ``y_lo_L`` and ``y_hi_L`` columns beside ``y_pred``.
    covariates : pyspark.sql.DataFrame or str, optional
        The covariates the model was fitted with (``id_col``, ``time_col`` and its covariate columns),
        over each history and, for the future-known ones, the horizon after it.
    series_per_group : int, default=10_000
        About how many series one batched ``predict`` call takes (bounds a worker's memory).
    id_col, time_col, target_col : str
        The columns of ``data``.
    tracking_uri : str, optional
        The MLflow store that resolves a model URI (on the driver and the executors).

    Returns
    -------
    pyspark.sql.DataFrame
        ``id_col``, ``time_col``, ``y_pred`` and the interval bounds, one row per series and step, in
        no particular order; ``id_col`` and ``time_col`` keep the input's types.
    """
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    if series_per_group < 1:
        raise InvalidParameterError(f"series_per_group must be an integer >= 1; got {series_per_group!r}.")
    levels = list(interval_levels(level))
    spark = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
    history = spark.read.parquet(str(data)) if isinstance(data, (str, Path)) else data
    absent = [c for c in (id_col, time_col, target_col) if c not in history.columns]
    if absent:
        raise InvalidParameterError(
            f"the data lack column(s) {absent}; they have {history.columns}. Pass id_col=, time_col=, "
            "target_col= with their names."
        )
    payload = _payload(model, tracking_uri)
    _preflight(_load(payload), horizon, levels)  # on the driver, before any Spark job
    shared = spark.sparkContext.broadcast(payload)
    n_series = history.select(id_col).distinct().count()
    n_groups = max(math.ceil(n_series / series_per_group), 1)
    bucket = F.pmod(F.hash(F.col(id_col)), F.lit(n_groups))
    outputs = ["y_pred", *(name for lv in levels for name in interval_columns(lv))]
    fields = {f.name: f.dataType.simpleString() for f in history.schema.fields}
    schema = ", ".join(
        [
            f"`{id_col}` {fields[id_col]}",
            f"`{time_col}` {fields[time_col]}",
            *(f"`{c}` double" for c in outputs),
        ]
    )
    columns = (id_col, time_col, target_col)
    key = _digest(payload)
    run = _Forecaster(shared, key, columns, horizon, levels, outputs)
    grouped = history.select(*columns).withColumn("_bucket", bucket).groupBy("_bucket")
    if covariates is None:
        return grouped.applyInPandas(lambda frame: run(frame, None), schema)
    covariates = spark.read.parquet(str(covariates)) if isinstance(covariates, (str, Path)) else covariates
    other = covariates.drop(target_col).withColumn("_bucket", bucket).groupBy("_bucket")
    return grouped.cogroup(other).applyInPandas(lambda frame, rows: run(frame, rows), schema)


class _Forecaster:
    """What each bucket runs in a Python worker: rename to the model's columns, predict, rename back."""

    def __init__(self, shared, key: str, columns: tuple, horizon, levels: list, outputs: list):
        self.shared, self.key, self.columns, self.horizon = shared, key, columns, horizon
        self.levels, self.outputs = levels, outputs

    def __call__(self, frame, covariates):
        """Forecast the series of one bucket (``covariates``: their rows, or None)."""
        model = _LOADED.get(self.key) or _load(self.shared.value, self.key)
        if frame.empty:  # a bucket of covariates only
            return frame.reindex(columns=[*self.columns[:2], *self.outputs])
        names = model.training_panel_.layout.columns  # the model's own column names
        theirs = dict(zip(self.columns, (names.id_col, names.time_col, names.target_col), strict=True))
        history = frame.drop(columns="_bucket").rename(columns=theirs)
        X = None
        if covariates is not None and not covariates.empty:
            X = covariates.drop(columns="_bucket").rename(columns=theirs)
        options = {"level": self.levels} if self.levels else {}
        out = model.predict(self.horizon, X=X, y=history, **options)
        back = {names.id_col: self.columns[0], names.time_col: self.columns[1], names.pred_col: "y_pred"}
        return out.rename(columns=back)[[*self.columns[:2], *self.outputs]]


def _payload(model, tracking_uri) -> tuple:
    """``("file", suffix, bytes)`` of a fitted model or a model file, or ``("uri", uri, tracking_uri)``."""
    from tsforecast.pipelines.models import save_model

    if isinstance(model, (str, Path)) and not Path(model).exists() and ":/" in str(model):
        return ("uri", str(model), tracking_uri)
    if isinstance(model, (str, Path)):
        path = Path(model)
        if not path.is_file():
            raise InvalidParameterError(
                f"model {str(model)!r} is neither a model file nor an MLflow model URI "
                "(runs:/<run-id>/model, models:/<name>@<alias>)."
            )
        return ("file", path.suffix, path.read_bytes())
    with tempfile.TemporaryDirectory(prefix="tsforecast-spark-") as folder:
        suffix = ".safetensors" if callable(getattr(model, "save", None)) else ".joblib"
        path = save_model(model, Path(folder) / f"model{suffix}")
        return ("file", path.suffix, path.read_bytes())


def _digest(payload: tuple) -> str:
    """A digest of the payload: its model file's bytes are hashed as they are, not through ``repr``."""
    digest = hashlib.sha256()
    for part in payload:
        digest.update(part if isinstance(part, bytes) else repr(part).encode())
        digest.update(b"\0")
    return digest.hexdigest()


def _load(payload: tuple, key: str | None = None):
    """The model of ``payload``; kept in this process under ``key`` (a digest of the payload) if given."""
    from tsforecast.pipelines.models import load_model

    if payload[0] == "uri":
        model = load_model(payload[1], payload[2])
    else:
        with tempfile.TemporaryDirectory(prefix="tsforecast-spark-") as folder:
            path = Path(folder) / f"model{payload[1]}"
            path.write_bytes(payload[2])
            model = load_model(path)
    if key is not None:
        _LOADED[key] = model
    return model


def _preflight(model, horizon, levels: list) -> None:
    """Forecast one series of the model's training panel on the driver, as the workers will.

    A setting the model refuses (a level its quantiles do not bound, a bad horizon) then fails here,
    before any Spark job. Models with covariates are left to the workers: they need the covariate rows.
    """
    roles = getattr(model, "covariate_roles", None)
    if roles is None or roles().names:
        return
    first = model.training_panel_.select([0])
    model.predict_panel(first, horizon, level=levels or None)
