"""The per-epoch training record of the neural forecasters, one typed place for its fields.

Training (:mod:`tsforecast.nn.training`) creates one :class:`EpochRecord` per epoch; the estimator
keeps them as ``history_`` (a DataFrame, one row per record) and passes each to its ``callbacks``;
tracking logs :meth:`EpochRecord.metrics` to MLflow; pipelines and diagnostics read the fields by
name. Torch-free, so every layer may use it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import pandas as pd

__all__ = ["STOP_REASONS", "EpochRecord", "history_frame"]

# Why training ended after an epoch (``EpochRecord.stopped_by``); None: it went on, or ran all epochs.
STOP_REASONS = {
    "patience": "the validation loss did not improve for `patience` epochs (early stopping)",
    "callback": "a callback returned True",
    "max_time": "the max_time safety cap fired (the result depends on the machine's speed)",
    "max_steps": "the max_steps budget of optimizer steps was reached",
}


@dataclass(frozen=True)
class EpochRecord:
    """What one training epoch did.

    Attributes
    ----------
    epoch : int
        1-based epoch number.
    train_loss : float
        Mean training loss over the epoch's finite steps.
    val_loss : float
        Loss on the validation tail; NaN without one (``validation_size=0``).
    grad_norm_mean, grad_norm_max : float
        Mean and largest global gradient norm before clipping.
    clipped_fraction : float
        Share of steps whose gradient was clipped.
    learning_rate : float
        The learning rate at the epoch's last step.
    seconds : float
        Wall-clock duration (the only field that depends on the machine).
    skipped_steps : int
        Steps skipped because the loss or the gradients were not finite.
    steps : int
        Optimizer steps taken.
    targets : int
        Forecast targets in the loss over the epoch.
    stopped_by : str or None
        Why training ended after this epoch (a key of :data:`STOP_REASONS`), else None.
    peak_memory_mb : float
        Peak resident memory of the process during the epoch, in MiB (the first epoch of a fit:
        since the process started, data preparation included; see :mod:`tsforecast.memory`).
    peak_device_memory_mb : float
        Peak memory allocated on the GPU during the epoch, in MiB; NaN on the CPU.
    """

    epoch: int
    train_loss: float
    val_loss: float
    grad_norm_mean: float
    grad_norm_max: float
    clipped_fraction: float
    learning_rate: float
    seconds: float
    skipped_steps: int
    steps: int
    targets: int
    stopped_by: str | None = None
    peak_memory_mb: float = math.nan
    peak_device_memory_mb: float = math.nan

    # Field -> MLflow metric name, for the fields logged at ``step=epoch``.
    METRICS = {
        "train_loss": "train_loss",
        "val_loss": "val_loss",
        "grad_norm_mean": "grad_norm_mean",
        "grad_norm_max": "grad_norm_max",
        "clipped_fraction": "clipped_fraction",
        "learning_rate": "learning_rate",
        "seconds": "epoch_seconds",
        "peak_memory_mb": "peak_memory_mb",
        "peak_device_memory_mb": "peak_device_memory_mb",
    }

    def metrics(self) -> dict:
        """The loggable fields under their MLflow names; NaN values are left out."""
        values = {name: float(getattr(self, key)) for key, name in self.METRICS.items()}
        return {name: value for name, value in values.items() if not math.isnan(value)}

    def as_dict(self) -> dict:
        """The record as a plain dict (one history row)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, row: dict) -> EpochRecord:
        """A record from a history row; absent fields (older histories) get neutral values."""
        defaults = {"steps": 0, "targets": 0, "skipped_steps": 0, "stopped_by": None, "val_loss": math.nan}
        # peak_memory_mb, peak_device_memory_mb: histories written before they existed read NaN
        values = {f.name: row.get(f.name) for f in fields(cls)}
        # JSON stores NaN as null: a missing or null number takes its neutral value.
        values = {k: defaults.get(k, math.nan) if v is None else v for k, v in values.items()}
        for name in ("epoch", "skipped_steps", "steps", "targets"):
            values[name] = int(values[name])
        stopped = values["stopped_by"]
        values["stopped_by"] = stopped if isinstance(stopped, str) else None
        return cls(**values)


def history_frame(records) -> pd.DataFrame:
    """One row per record, the columns in field order (an empty frame with those columns for none)."""
    columns = [f.name for f in fields(EpochRecord)]
    return pd.DataFrame([r.as_dict() for r in records], columns=columns)
