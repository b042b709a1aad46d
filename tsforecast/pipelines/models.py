"""Fitted models as files or MLflow models: save, load, and score the current model as is.

A neural forecaster is saved with its own ``save`` (one safetensors file, no pickle); a baseline,
which has no ``save``, with joblib and a SHA-256 trailer (:mod:`tsforecast.baselines.persistence`).
Both are written atomically and verified at load: a changed byte is a ``ModelFileError``.
:func:`load_model` also takes an MLflow model URI (``runs:/<run>/model``, ``models:/<name>/latest``,
``models:/<name>@<alias>``) and loads it through ``mlflow.pyfunc``; a tsforecast pyfunc model is
unwrapped to the forecaster it serves.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path

from sklearn.base import BaseEstimator

from tsforecast.data import Panel
from tsforecast.exceptions import InvalidParameterError, ModelFileError, TrackingError

NEURAL_SUFFIX = ".safetensors"
JOBLIB_SUFFIXES = (".joblib", ".pkl")
_URI = re.compile(r"^[a-z][a-z0-9+.-]*:/")


def is_model_uri(reference: str) -> bool:
    """Whether ``reference`` is an MLflow model URI rather than a file path."""
    return bool(_URI.match(str(reference))) and not Path(str(reference)).exists()


def model_filename(estimator, stem: str = "model") -> str:
    """The file name :func:`save_model` uses for ``estimator``."""
    return stem + (NEURAL_SUFFIX if _has_own_format(estimator) else JOBLIB_SUFFIXES[0])


def check_model_path(estimator, path) -> Path:
    """Raise unless the suffix of ``path`` fits the model (checked before a long fit, not after).

    Raises
    ------
    InvalidParameterError
        ``.safetensors`` is for the recurrent forecasters, ``.joblib`` (or ``.pkl``) for the baselines.
    """
    path = Path(path)
    own = _has_own_format(estimator)
    if own and path.suffix in JOBLIB_SUFFIXES:
        raise InvalidParameterError(
            f"{path}: {type(estimator).__name__} is saved as safetensors, not pickled; "
            "name the file *.safetensors."
        )
    if not own and path.suffix not in JOBLIB_SUFFIXES:
        raise InvalidParameterError(
            f"{path}: {type(estimator).__name__} has no file format of its own and is saved with joblib; "
            "name the file *.joblib."
        )
    return path


def save_model(estimator, path) -> Path:
    """Write a fitted forecaster to ``path`` atomically (see :func:`check_model_path` for the suffixes).

    A recurrent forecaster writes its own checksummed safetensors file (``est.save``); any other
    forecaster a joblib file with a SHA-256 trailer (:func:`tsforecast.baselines.persistence.dump`).
    Either way a missing folder is created and a failed save leaves an existing file as it was.

    Raises
    ------
    InvalidParameterError
        The suffix does not fit the model, or the folder cannot be created or written to.
    TrainingError
        A recurrent network holds NaN or infinite weights (nothing is written).
    """
    from tsforecast.baselines.persistence import dump

    path = check_model_path(estimator, path)
    if _has_own_format(estimator):
        estimator.save(path)
        return path
    return dump(estimator, path)


def load_model(reference, tracking_uri: str | None = None):
    """Load a forecaster from a file written by :func:`save_model` or from an MLflow model URI.

    Parameters
    ----------
    reference : str or Path
        A ``.safetensors`` / ``.joblib`` file, or an MLflow model URI.
    tracking_uri : str, optional
        Store that resolves ``runs:/`` and ``models:/`` URIs (default: ``MLFLOW_TRACKING_URI``, else the
        embedded store in the working directory).

    Returns
    -------
    object
        The forecaster, or for a pyfunc model that is not a tsforecast one, the pyfunc model itself
        (its ``predict`` takes a long history frame).

    Raises
    ------
    ModelFileError
        When the file or URI cannot be loaded as a model.
    """
    if is_model_uri(str(reference)):
        return _load_mlflow(str(reference), tracking_uri)
    path = Path(reference)
    if not path.is_file():
        raise ModelFileError(
            f"{path}: no such model file (nor an MLflow model URI such as models:/NAME/latest)."
        )
    if path.suffix in JOBLIB_SUFFIXES:
        from tsforecast.baselines.persistence import load

        return load(path)
    import tsforecast

    return tsforecast.load(path)


_LOADED: dict = {}  # (source, tracking_uri) -> model: a backtest of several windows loads it once


def load_current(source, tracking_uri=None):
    """:func:`load_model`, once per process for each source."""
    key = (str(source), tracking_uri)
    if key not in _LOADED:
        _LOADED[key] = load_model(source, tracking_uri)
    return _LOADED[key]


def training_ends(model) -> dict | None:
    """The last training time stamp of each series a fitted forecaster saw (None when unknown)."""
    panel = getattr(model, "training_panel_", None)
    if panel is None:
        return None
    return {sid: index[-1] for sid, index in zip(panel.ids, panel.index, strict=True)}


class CurrentModel(BaseEstimator):
    """The model in production, scored as is in a backtest (never refitted).

    ``fit`` only remembers the window's history; ``predict`` forecasts from it with the loaded model
    (``predict(y=history)``: a recurrent model conditions on it, a baseline refits on it). The
    pipeline scores it only on windows after its training data (:mod:`tsforecast.pipelines.current`).

    Parameters
    ----------
    source : str
        A model file or MLflow model URI (see :func:`load_model`).
    tracking_uri : str, optional
        Store that resolves an MLflow URI.
    """

    def __init__(self, source=None, tracking_uri=None):
        self.source = source
        self.tracking_uri = tracking_uri

    def covariate_roles(self):
        """The loaded model's covariate roles (none for a model that takes no covariates).

        :func:`tsforecast.backtesting.compare` passes ``X`` only to the models that declare some.
        """
        from tsforecast.data.covariates import CovariateRoles

        roles = getattr(load_current(self.source, self.tracking_uri), "covariate_roles", None)
        return CovariateRoles() if roles is None else roles()

    def fit(self, y, X=None, **fit_params):
        """Load the model and remember ``y``, the window's history, and ``X``; nothing is trained."""
        self.model_ = load_current(self.source, self.tracking_uri)
        self.history_ = y
        self.covariates_ = X
        return self

    def predict(self, horizon=None, X=None, y=None):
        """Forecast with the loaded model from ``y``, else from the history given to ``fit``."""
        X = self.covariates_ if X is None else X
        history = self.history_ if y is None else y
        if X is None:  # a model without covariates (or a foreign pyfunc model) takes no X
            return self.model_.predict(horizon, y=history)
        return self.model_.predict(horizon, X=X, y=history)


def _has_own_format(estimator) -> bool:
    return callable(getattr(estimator, "save", None))


def _load_mlflow(uri: str, tracking_uri: str | None):
    import mlflow

    from tsforecast.tracking.store import (
        did_not_answer,
        no_answer_message,
        preflight_limits,
        resolve_store,
        using,
    )

    store = resolve_store(tracking_uri)  # a malformed URI is a configuration error, not a bad model
    # The download is bounded like the tracking pre-flight: a server that never answers is exit 6
    # within seconds, not MLflow's default of minutes of retries.
    with using(store), preflight_limits() as limits:
        try:
            model = mlflow.pyfunc.load_model(uri)
        except Exception as error:  # MLflow raises MlflowException, OSError, ... for a missing model
            if did_not_answer(error):
                raise TrackingError(no_answer_message(store.uri, limits)) from error
            raise ModelFileError(f"cannot load the MLflow model {uri!r}: {error}") from None
    wrapped = model.unwrap_python_model() if hasattr(model, "unwrap_python_model") else None
    estimator = getattr(wrapped, "estimator_", None)
    return _PyfuncForecaster(model) if estimator is None else estimator


class _PyfuncForecaster:
    """Any pyfunc model behind the forecaster's ``predict(horizon, y=...)`` call."""

    def __init__(self, model):
        self.model = model

    def predict(self, horizon=None, X=None, y=None):
        if y is None:
            raise InvalidParameterError(
                "this MLflow model is not a tsforecast forecaster; pass the history (--data)."
            )
        return self.model.predict(y, params=None if horizon is None else {"horizon": int(horizon)})


__all__ = [
    "CurrentModel",
    "check_model_path",
    "is_model_uri",
    "load_current",
    "load_model",
    "model_filename",
    "save_model",
    "training_ends",
]


# ------------------------------------------------------------------------------ checkpoints
CHECKPOINTS = ".checkpoints"  # in the outputs folder: <as-of>/<model label>/checkpoint.pt


def checkpoint_folder(outputs_dir, as_of_label: str) -> Path:
    """Where a run's final fits keep their checkpoints: one folder per as-of.

    Only a rerun of the same as-of (after a kill) resumes from them, never the next day's run on
    new data.
    """
    return Path(outputs_dir) / CHECKPOINTS / as_of_label


@contextmanager
def checkpointing(estimator, folder: Path, history: Panel, X=None):
    """Let ``estimator`` checkpoint for the block, in a subfolder of ``folder`` named after the fit.

    Only when it can and the user set no folder of their own. The subfolder's name is a digest of
    the estimator's parameters and of the data, so a rerun with other settings or other data gets a
    folder of its own (a fresh start) instead of a checkpoint it would have to refuse. The saved
    model does not keep the setting.
    """
    params = estimator.get_params(deep=False)
    if "checkpoint_dir" not in params or params["checkpoint_dir"] is not None:
        yield
        return
    import hashlib

    import pandas as pd

    digest = hashlib.blake2b(repr(sorted(params.items())).encode(), digest_size=8)
    digest.update(history.digest().encode())
    if X is not None:
        digest.update(pd.util.hash_pandas_object(X, index=True).to_numpy().tobytes())
    estimator.set_params(checkpoint_dir=str(folder / digest.hexdigest()))
    try:
        yield
    finally:
        estimator.set_params(checkpoint_dir=None)


def discard_checkpoints(folder: Path) -> None:
    """Remove a completed run's checkpoints (and the checkpoints folder once it is empty)."""
    import shutil

    shutil.rmtree(folder, ignore_errors=True)
    try:
        folder.parent.rmdir()
    except OSError:  # other as-of folders (runs still to be resumed) or none at all
        pass
