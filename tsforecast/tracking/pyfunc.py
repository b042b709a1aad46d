"""A fitted forecaster as an MLflow model of the ``python_function`` (pyfunc) flavour.

This module subclasses :class:`mlflow.pyfunc.PythonModel`, so importing it imports mlflow; it is
loaded only to log or serve a model, never by ``import tsforecast`` or ``import tsforecast.tracking``.

The estimator travels as an artifact: what its own ``save`` writes (neural forecasters: weights and
scaler state as CPU tensors, no pickle), else a joblib file (baselines, which have no ``save``).
:class:`ForecasterModel` is logged as code (:mod:`tsforecast.tracking.model_code`), not pickled.
"""

from __future__ import annotations

import tempfile
from importlib import metadata
from pathlib import Path

import mlflow
import pandas as pd

import tsforecast
from tsforecast.baselines.persistence import dump, load
from tsforecast.tracking.dataset import quiet_integer_hint

ARTIFACT_KEY = "estimator"
_REQUIREMENTS = ("mlflow", "numpy", "pandas", "scikit-learn", "scipy", "statsmodels", "joblib")
_TORCH_REQUIREMENTS = ("torch", "safetensors")


class ForecasterModel(mlflow.pyfunc.PythonModel):
    """Serves a fitted tsforecast forecaster: long history in, long forecasts out.

    ``predict(frame, params={"horizon": h})`` returns what ``estimator.predict(h, y=frame)`` returns:
    ``frame`` is a long history (``unique_id``, ``ds``, ``y``, or the column names the estimator was
    fitted with) and the answer has one row per series and step (``unique_id``, ``ds``, ``y_pred``).
    Without ``params`` the estimator's own ``horizon`` applies.

    Examples
    --------
    >>> import mlflow  # doctest: +SKIP
    >>> model = mlflow.pyfunc.load_model("models:/m4-hourly-lstm@champion")  # doctest: +SKIP
    >>> model.predict(history, params={"horizon": 48})  # doctest: +SKIP
    """

    def load_context(self, context):
        """Load the forecaster from the model's artifact (MLflow calls this once, on loading)."""
        self.estimator_ = load_estimator(Path(context.artifacts[ARTIFACT_KEY]))
        self.time_dtypes_ = (context.model_config or {}).get("time_dtypes", {})

    # The annotation keeps MLflow's type-hint validation out of the way: the signature validates.
    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        """Forecast ``params["horizon"]`` steps (default: the forecaster's horizon) from ``model_input``."""
        horizon = (params or {}).get("horizon")
        forecasts = self.estimator_.predict(None if horizon is None else int(horizon), y=model_input)
        # MLflow's schema enforcement casts datetime inputs to nanoseconds; answer in the training
        # data's resolution, as the estimator itself would.
        return forecasts.astype({k: v for k, v in self.time_dtypes_.items() if k in forecasts})


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
    estimator, example: pd.DataFrame, *, name="model", registered_model_name=None, alias=None
):
    """Log a fitted ``estimator`` into the active MLflow run as a pyfunc model.

    Parameters
    ----------
    estimator : BaseForecaster
        Fitted.
    example : pd.DataFrame
        A small long history (one series) used as input example and to infer the signature.
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

    time_dtypes = {c: str(t) for c, t in example.dtypes.items() if pd.api.types.is_datetime64_dtype(t)}
    horizon = getattr(estimator, "horizon", None)
    params = None if horizon is None else {"horizon": int(horizon)}
    with quiet_integer_hint(), tempfile.TemporaryDirectory() as folder:
        signature = infer_signature(example, estimator.predict(y=example), params=params)
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
