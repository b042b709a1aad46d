"""One MLflow run for a fit that was interrupted and resumed from its checkpoint.

A tracked fit of a forecaster with a ``checkpoint_dir`` writes the id of its run beside the
checkpoint (``mlflow_run.json``). When the fit is run again after a kill, :func:`track_fit` finds it
and continues that run instead of starting a second one, as long as the run is still unfinished in
the same store (a kill leaves it RUNNING, an exception FAILED). A finished run is never reopened: a
completed fit run again is a new job and gets a new run. Epochs the interrupted process trained but
never got to log (metrics are queued asynchronously) are logged from ``history_`` at the end.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from tsforecast.data.io import write_bytes

_LOGGER = logging.getLogger(__name__)

RUN_FILE = "mlflow_run.json"

RESUMED_TAG = "tsforecast.resumed"  # how many times the run was resumed from a checkpoint


def _run_file(estimator) -> Path | None:
    folder = estimator.get_params(deep=False).get("checkpoint_dir")
    return None if folder is None else Path(folder) / RUN_FILE


def unfinished_run(estimator, tracking_uri: str) -> str | None:
    """The id of the unfinished run this estimator's checkpoint belongs to, in this store; else None."""
    import mlflow

    path = _run_file(estimator)
    if path is None or not path.exists():
        return None
    try:
        saved = json.loads(path.read_text())
        if saved.get("tracking_uri") != tracking_uri:
            return None
        status = mlflow.MlflowClient().get_run(saved["run_id"]).info.status
    except Exception as error:  # an unreadable note or a deleted run: start a new run
        _LOGGER.warning("not resuming the MLflow run noted in %s: %s", path, error)
        return None
    return None if status == "FINISHED" else saved["run_id"]


def remember_run(estimator, run_id: str, tracking_uri: str) -> None:
    """Note ``run_id`` beside the estimator's checkpoint (nothing without a ``checkpoint_dir``)."""
    path = _run_file(estimator)
    if path is not None:
        write_bytes(json.dumps({"run_id": run_id, "tracking_uri": tracking_uri}).encode(), path)


def log_missing_epochs(run_id: str, history) -> None:
    """Log the rows of ``history`` whose ``train_loss`` the run does not hold yet.

    Those are the epochs a killed process trained but had only queued for logging.
    """
    import time

    import mlflow
    from mlflow.entities import Metric

    from tsforecast.epochs import EpochRecord

    if history is None or history.empty:
        return
    client = mlflow.MlflowClient()
    logged = {m.step for m in client.get_metric_history(run_id, "train_loss")}
    now = int(time.time() * 1000)
    batch = [
        Metric(name, value, now, record.epoch)
        for record in (EpochRecord.from_dict(row) for row in history.to_dict("records"))
        if record.epoch not in logged
        for name, value in record.metrics().items()
    ]
    if batch:
        client.log_batch(run_id, metrics=batch)
