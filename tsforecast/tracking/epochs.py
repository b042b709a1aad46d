"""Live per-epoch metrics of neural forecasters, through their ``callbacks`` parameter.

The callback contract: after each epoch the estimator calls ``callback(estimator, record)`` with a
:class:`~tsforecast.epochs.EpochRecord`; its metrics (:meth:`EpochRecord.metrics`) are logged at
``step=epoch``. ``val_loss`` is NaN when the forecaster holds out no validation tail
(``validation_size=0``), and NaN metrics are not logged.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager

import pandas as pd

from tsforecast.epochs import EpochRecord, history_frame
from tsforecast.exceptions import TrackingError

_LOGGER = logging.getLogger(__name__)

VALIDATION_TAG = "tsforecast.validation"  # what val_loss is measured on, or that there is none

STOPPED_TAG = "tsforecast.stopped_by"  # why training ended early (max_time, patience, callback)


class EpochLogger:
    """Epoch-end callback: queues each record's metrics at ``step=epoch`` and keeps the records.

    Metrics go through MLflow's asynchronous logging, so a slow store never holds training up; a
    store failure stops the logging (one warning), never the training.
    """

    def __init__(self, run_id):
        self.run_id = run_id
        self.records = []
        self._operations = []
        self._broken = False

    def __call__(self, estimator, record: EpochRecord):
        """Queue the epoch's metrics for the run (asynchronously) and keep the record."""
        self.records.append(record)
        if self._broken:
            return
        try:
            import mlflow

            if metrics := record.metrics():
                step = record.epoch
                self._operations.append(
                    mlflow.log_metrics(metrics, step=step, run_id=self.run_id, synchronous=False)
                )
        # A failing store must not stop training: warn once and stop trying.
        except Exception as error:
            self._broken = True
            _LOGGER.warning("live epoch metrics stopped for MLflow run %s: %s", self.run_id, error)

    def frame(self) -> pd.DataFrame | None:
        """The records seen so far, one row per epoch."""
        return history_frame(self.records) if self.records else None

    def finish(self, estimator) -> None:
        """Wait for the queued metrics; with no live records, log the estimator's history at once."""
        import mlflow
        from mlflow.entities import Metric

        for operation in self._operations:
            operation.wait()
        if self._broken:
            raise TrackingError("some epoch metrics were not logged (see the warning above)")
        history = training_history(estimator)
        if self.records or history is None:
            return
        self.records = [EpochRecord.from_dict(row) for row in history.to_dict("records")]
        now = int(time.time() * 1000)
        batch = [
            Metric(name, value, now, record.epoch)
            for record in self.records
            for name, value in record.metrics().items()
        ]
        mlflow.MlflowClient().log_batch(self.run_id, metrics=batch)


@contextmanager
def attached(estimator, callback):
    """Append ``callback`` to the estimator's ``callbacks`` for the fit, then restore the original.

    Estimators without a ``callbacks`` parameter are left alone.
    """
    params = estimator.get_params(deep=False)
    if "callbacks" not in params:
        yield
        return
    original = params["callbacks"]
    estimator.set_params(callbacks=[*(original or ()), callback])
    try:
        yield
    finally:
        estimator.set_params(callbacks=original)


def validation_note(estimator) -> str | None:
    """What a neural forecaster's per-epoch ``val_loss`` is measured on (None: no such parameter).

    With ``validation_size=0`` (the default) there is no validation tail: ``val_loss`` is NaN every
    epoch and is not logged, which the note says instead of leaving a silent gap.
    """
    params = estimator.get_params(deep=False)
    if "validation_size" not in params:
        return None
    size = int(params["validation_size"] or 0)
    if size == 0:
        return "none (validation_size=0)"
    return f"last {size} steps of each series (validation_size={size})"


def stopped_by(estimator) -> str | None:
    """Why the estimator's last training ended early (a key of ``STOP_REASONS``), or None."""
    history = training_history(estimator)
    if history is None or "stopped_by" not in history or history.empty:
        return None
    last = history["stopped_by"].iloc[-1]
    return last if isinstance(last, str) else None


def training_history(estimator) -> pd.DataFrame | None:
    """The per-epoch records a fitted neural forecaster keeps (a list of dicts or a DataFrame)."""
    history = getattr(estimator, "history_", None)
    if isinstance(history, list) and history and isinstance(history[0], dict):
        history = pd.DataFrame(history)
    if isinstance(history, pd.DataFrame) and "epoch" in history:
        return history
    return None
