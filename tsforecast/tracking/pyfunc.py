"""A fitted forecaster as an MLflow model of the ``python_function`` (pyfunc) flavour.

This module subclasses :class:`mlflow.pyfunc.PythonModel`, so importing it imports mlflow; it is
loaded only to log or serve a model, never by ``import tsforecast`` or ``import tsforecast.tracking``.

The estimator travels as an artifact: what its own ``save`` writes (neural forecasters: weights and
scaler state as CPU tensors, no pickle), else a joblib file (baselines, which have no ``save``).
:class:`ForecasterModel` is logged as code (:mod:`tsforecast.tracking.model_code`), not pickled.

Covariates travel in the one input frame, beside the target (:func:`split_input`): each row holds a
series id, a time stamp, the target and the covariate columns the model was fitted with. The rows of
a series up to its last observed target are its history; the rows after it, with the target left
empty (NaN), carry the future-known covariates of the forecast period and must cover the horizon.
The logged signature lists the covariate columns, and its input example shows one series' history
followed by its future rows.

Prediction intervals are a ``params`` entry: ``predict(frame, params={"level": [80, 95]})`` adds the
columns ``y_lo_80``, ``y_hi_80``, ``y_lo_95``, ``y_hi_95`` beside ``y_pred``. The signature declares
``level`` as a list of floats whose default is the ``level`` the model was logged with (none:
``[]``, point forecasts only); a model logged with default levels records their bound columns in its
output schema.
"""

from __future__ import annotations

import tempfile
from importlib import metadata
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

import tsforecast
from tsforecast.baselines.persistence import dump, load
from tsforecast.data.frequency import future_index
from tsforecast.exceptions import InvalidInputError, InvalidParameterError
from tsforecast.metrics.intervals import interval_levels
from tsforecast.tracking.dataset import quiet_integer_hint

ARTIFACT_KEY = "estimator"
_REQUIREMENTS = ("mlflow", "numpy", "pandas", "scikit-learn", "scipy", "statsmodels", "joblib")
_TORCH_REQUIREMENTS = ("torch", "safetensors")


class ForecasterModel(mlflow.pyfunc.PythonModel):
    """Serves a fitted tsforecast forecaster: long history in, long forecasts out.

    ``predict(frame, params={"horizon": h, "level": [80, 95]})`` returns what
    ``estimator.predict(h, y=frame, level=[80, 95])`` returns: ``frame`` is a long history
    (``unique_id``, ``ds``, ``y``, or the column names the estimator was fitted with) and the answer
    has one row per series and step (``unique_id``, ``ds``, ``y_pred``, and with ``level`` the
    interval bounds ``y_lo_80``, ``y_hi_80``...). Without ``params`` the estimator's own ``horizon``
    and the levels it was logged with (by default none) apply; ``"level": []`` asks for none.

    A forecaster fitted with covariates takes them as columns of ``frame``: every row holds the
    covariate columns it was fitted with, and after each series' last observed target come rows with
    the target empty (NaN) that carry the future-known covariates of the ``h`` forecast steps
    (:func:`split_input`); the answer is ``estimator.predict(h, X=covariates, y=history)``.

    Examples
    --------
    >>> import mlflow  # doctest: +SKIP
    >>> model = mlflow.pyfunc.load_model("models:/m4-hourly-lstm@champion")  # doctest: +SKIP
    >>> model.predict(history, params={"horizon": 48})  # doctest: +SKIP
    >>> model.predict(history, params={"level": [80, 95]})  # doctest: +SKIP
    >>> # With future-known covariates: history rows, then 24 rows per series with y = NaN.
    >>> arima = mlflow.pyfunc.load_model("models:/prices-arima@champion")  # doctest: +SKIP
    >>> arima.predict(history_and_future_covariates, params={"horizon": 24})  # doctest: +SKIP
    """

    def load_context(self, context):
        """Load the forecaster from the model's artifact (MLflow calls this once, on loading)."""
        self.estimator_ = load_estimator(Path(context.artifacts[ARTIFACT_KEY]))
        self.time_dtypes_ = (context.model_config or {}).get("time_dtypes", {})

    # The annotation keeps MLflow's type-hint validation out of the way: the signature validates.
    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        """Forecast ``params["horizon"]`` steps (default: the forecaster's horizon) from ``model_input``.

        ``params["level"]`` (a list of percentages; empty or absent: none) adds the interval bounds.
        """
        params = params or {}
        horizon = None if params.get("horizon") is None else int(params["horizon"])
        level = params.get("level")
        level = None if level is None or np.size(level) == 0 else level
        history, covariates = split_input(self.estimator_, model_input)
        if covariates is None:
            forecasts = self.estimator_.predict(horizon, y=history, level=level)
        else:
            forecasts = self.estimator_.predict(horizon, X=covariates, y=history, level=level)
        # MLflow's schema enforcement casts datetime inputs to nanoseconds; answer in the training
        # data's resolution, as the estimator itself would.
        return forecasts.astype({k: v for k, v in self.time_dtypes_.items() if k in forecasts})


def split_input(estimator, frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The history and the covariates ``X`` of one input frame (``X`` None: the model takes none).

    ``frame`` is long: the id, time and target columns the estimator was fitted with, and its covariate
    columns. The history is the id, time and target columns (a series' trailing rows without a target,
    its future rows, are dropped when it is validated); ``X`` is the id, time and covariate columns of
    every row, history and future alike.

    Raises
    ------
    InvalidInputError
        A covariate column the estimator was fitted with is missing (naming it).

    Examples
    --------
    >>> from tsforecast.baselines import Naive
    >>> history = pd.DataFrame({"unique_id": "a", "ds": [1, 2, 3], "y": [1.0, 2.0, 3.0]})
    >>> y, X = split_input(Naive().fit(history), history)
    >>> X is None
    True
    """
    roles = estimator.covariate_roles() if hasattr(estimator, "covariate_roles") else None
    if not roles or not roles.names:  # none, or calendar features only: built from the time stamps
        return frame, None
    columns = estimator.training_panel_.layout.columns
    missing = [name for name in roles.names if name not in frame.columns]
    if missing:
        raise InvalidInputError(
            f"the input frame has no covariate column {missing[0]!r}; {type(estimator).__name__} was "
            f"fitted with {list(roles.names)}: give them in every row, with the future-known ones in "
            f"rows after each series' last {columns.target_col!r} (left empty) for the horizon."
        )
    keys = [columns.id_col, columns.time_col]
    return frame[[*keys, columns.target_col]], frame[[*keys, *roles.names]]


def covariate_example(estimator, history: pd.DataFrame, X, horizon: int) -> pd.DataFrame:
    """One series' input frame for a model with covariates: its history, then ``horizon`` future rows.

    Parameters
    ----------
    estimator : BaseForecaster
        Fitted with covariates.
    history : pd.DataFrame
        Long history of one series (id, time and target columns).
    X : pd.DataFrame
        The covariates it was fitted with, reaching ``horizon`` steps past the history (per series,
        with the id column, or shared, indexed by time or with the time column).
    horizon : int
        Future rows added, their target NaN.

    Returns
    -------
    pd.DataFrame
        The history and future rows with the covariate columns beside the target.
    """
    columns = estimator.training_panel_.layout.columns
    names = list(estimator.covariate_roles().names)
    id_col, time_col, target_col = columns.id_col, columns.time_col, columns.target_col
    series_id = history[id_col].iloc[0]
    future = future_index(history[time_col].iloc[-1], estimator.freq_, horizon)
    rows = pd.concat(
        [history, pd.DataFrame({id_col: series_id, time_col: future, target_col: np.nan})], ignore_index=True
    )
    if id_col in X.columns:
        values = X.loc[X[id_col] == series_id, [id_col, time_col, *names]]
    else:
        shared = X if time_col in X.columns else X.rename_axis(time_col).reset_index()
        values = shared[[time_col, *names]]
    if pd.api.types.is_datetime64_any_dtype(rows[time_col]):
        stamps = pd.to_datetime(values[time_col]).astype(rows[time_col].dtype)  # one resolution to merge on
        values = values.assign(**{time_col: stamps})
    return rows.merge(values, on=[c for c in (id_col, time_col) if c in values.columns], how="left")


def save_estimator(estimator, folder: Path) -> Path:
    """Write ``estimator`` under ``folder`` with its own ``save`` when it has one, else joblib."""
    if callable(getattr(estimator, "save", None)):
        path = folder / "estimator"
        estimator.save(path)
    else:
        path = dump(estimator, folder / "estimator.joblib")  # with its checksum, as `fit --output`
    return path


def load_estimator(path: Path):
    """Inverse of :func:`save_estimator` (own format onto the CPU, see :func:`tsforecast.load`)."""
    if path.suffix == ".joblib":
        return load(path)
    return tsforecast.load(path)


def log_forecaster_model(
    estimator,
    example: pd.DataFrame,
    *,
    X=None,
    level=None,
    name="model",
    registered_model_name=None,
    alias=None,
):
    """Log a fitted ``estimator`` into the active MLflow run as a pyfunc model.

    Parameters
    ----------
    estimator : BaseForecaster
        Fitted.
    example : pd.DataFrame
        A small long history (one series) used as input example and to infer the signature.
    X : pd.DataFrame, optional
        The covariates ``estimator`` was fitted with (required when it declares covariate columns):
        the example gets them as columns, and ``horizon`` future rows (target NaN) with the
        future-known values (:func:`covariate_example`), so the signature lists the covariates.
    level : float or list of float, optional
        Default prediction intervals (percent) of the logged model's ``predict``: the signature's
        ``level`` param defaults to them and its output schema lists their bound columns. The
        estimator must have intervals at these levels. None: point forecasts unless a caller passes
        ``params={"level": [...]}``.
    name : str
        Name of the logged model in the run.
    registered_model_name : str, optional
        Register the model under this name (a new version each call).
    alias : str, optional
        Point this alias of the registered model at the new version (``models:/NAME@alias``).

    Returns
    -------
    mlflow.models.model.ModelInfo
    """
    from mlflow.models import infer_signature

    levels = list(interval_levels(level))  # a bad level stops before anything is logged
    horizon = getattr(estimator, "horizon", None)
    if hasattr(estimator, "covariate_roles") and estimator.covariate_roles().names:
        if X is None:
            raise InvalidParameterError(
                f"{type(estimator).__name__} was fitted with the covariates "
                f"{list(estimator.covariate_roles().names)}; pass them as X to log it (its input "
                "example and signature carry them)."
            )
        example = covariate_example(estimator, example, X, int(horizon))
    time_dtypes = {c: str(t) for c, t in example.dtypes.items() if pd.api.types.is_datetime64_dtype(t)}
    history, covariates = split_input(estimator, example)
    with quiet_integer_hint(), tempfile.TemporaryDirectory() as folder:
        if covariates is None:
            output = estimator.predict(y=history, level=levels or None)
        else:
            output = estimator.predict(y=history, X=covariates, level=levels or None)
        signature = infer_signature(example, output)
        signature.params = param_schema(horizon, levels)
        info = mlflow.pyfunc.log_model(
            name=name,
            python_model=str(Path(__file__).with_name("model_code.py")),
            artifacts={ARTIFACT_KEY: str(save_estimator(estimator, Path(folder)))},
            signature=signature,
            input_example=example,
            pip_requirements=requirements(estimator),
            registered_model_name=registered_model_name,
            metadata={"tsforecast_version": tsforecast.__version__, "estimator": type(estimator).__name__},
            model_config={"time_dtypes": time_dtypes},
        )
    if alias is not None:
        mlflow.MlflowClient().set_registered_model_alias(
            registered_model_name, alias, info.registered_model_version
        )
    return info


def param_schema(horizon: int | None, levels: list):
    """The ``params`` of the logged model: ``horizon`` (when the estimator has one) and ``level``.

    ``level`` is a list of floats defaulting to ``levels`` (possibly empty: no intervals); MLflow
    fills a param's default when a caller leaves it out, and cannot infer a type from an empty list.

    Examples
    --------
    >>> param_schema(24, [95.0]).to_dict()[1]
    {'name': 'level', 'default': [95.0], 'shape': (-1,), 'type': 'double'}
    """
    from mlflow.types.schema import ParamSchema, ParamSpec

    specs = [] if horizon is None else [ParamSpec("horizon", "long", int(horizon))]
    return ParamSchema([*specs, ParamSpec("level", "double", [float(v) for v in levels], (-1,))])


def requirements(estimator) -> list[str]:
    """Pinned pip requirements of the serving environment (torch only for neural forecasters)."""
    names = list(_REQUIREMENTS)
    if type(estimator).__module__.startswith("tsforecast.nn"):
        names += _TORCH_REQUIREMENTS
    pins = [f"tsforecast=={tsforecast.__version__}"]
    for dist in names:
        try:
            # A local build tag (torch's "+cpu") would tie the model to one wheel index.
            pins.append(f"{dist}=={metadata.version(dist).split('+')[0]}")
        except metadata.PackageNotFoundError:
            continue
    return pins
