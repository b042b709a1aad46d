"""Training checkpoints: one atomic file per fit in ``checkpoint_dir``, and resuming from it.

A checkpoint holds everything the training loop needs to continue exactly where it stopped: the
weights, the optimizer's moments, the loop's position (epoch, batch, chunk, the recurrent state
carried into the next chunk, the epoch's step records so far), the early-stopping state, the random
generators (the batch order's and torch's global one, which dropout draws from), ``history_`` and
the fitted scales. The learning rate is a function of the step position, so it needs no state of
its own. A fit rerun after a kill therefore ends with the same weights as one that never stopped.

The file is written to a temporary name, flushed to disk and renamed over the previous one, so a
kill in the middle of a write leaves the last complete checkpoint. It carries the identity of the
fit that wrote it (the parameters that shape training, and a digest of the data); another fit that
finds it refuses it with an error instead of mixing two trainings.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import time

import numpy as np
import torch

from tsforecast.data.io import check_writable, write_bytes
from tsforecast.exceptions import InvalidParameterError

__all__ = ["CHECKPOINT_FILE", "Checkpoint", "data_digest"]

_LOGGER = logging.getLogger(__name__)

CHECKPOINT_FILE = "checkpoint.pt"
PREVIOUS_FILE = "checkpoint.previous.pt"

# Parameters that do not change what training computes: a resumed fit may set them differently.
_NOT_IDENTITY = {
    "verbose",
    "callbacks",
    "max_time",
    "checkpoint_dir",
    "checkpoint_every",
    "device",
    "warm_start",
}


def data_digest(panel, covariates=None) -> str:
    """A digest of the training data: the panel's (:meth:`Panel.digest`) and the covariates (blake2b)."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(panel.digest().encode())
    if covariates is not None:
        digest.update(repr(covariates.roles).encode())
        for part in (*covariates.future, *covariates.past, covariates.static):
            digest.update(np.ascontiguousarray(part))
    return digest.hexdigest()


class Checkpoint:
    """The checkpoint of one fit in ``folder``.

    Parameters
    ----------
    folder : str or path-like
        Created when missing.
    params : dict
        The estimator's ``get_params()``; those that shape training identify the fit.
    data : str
        :func:`data_digest` of the training data.
    every_minutes : float, optional
        Also write a checkpoint inside an epoch once this many minutes have passed since the last
        one (at a chunk boundary). Without it, one is written at the end of every epoch.
    fitted : dict of str -> list of torch.Tensor, optional
        What the fit derived from the data before training (the scales): saved with every
        checkpoint and compared on resume, so a change in how they are computed is refused too.
    keep_previous : bool, default=False
        Keep the checkpoint before the last one too (``checkpoint.previous.pt``): the processes of a
        data-parallel fit resume from the last position they all saved, which a kill between their
        writes can leave one checkpoint back (:func:`tsforecast.nn.distributed.agreed_checkpoint`).
    """

    def __init__(self, folder, params: dict, data: str, every_minutes=None, fitted=None, keep_previous=False):
        self.path = check_writable(folder, folder=True) / CHECKPOINT_FILE  # before any training
        self.previous = self.path.with_name(PREVIOUS_FILE) if keep_previous else None
        self.identity = {
            "parameters": {k: repr(v) for k, v in sorted(params.items()) if k not in _NOT_IDENTITY},
            "data": data,
        }
        self.fitted = {k: [t.detach().cpu() for t in v] for k, v in (fitted or {}).items()}
        self.every_s = None if every_minutes is None else 60.0 * float(every_minutes)
        self._last_write = time.monotonic()

    def load(self, device, path=None) -> dict | None:
        """The saved payload (tensors on ``device``), or None when there is none.

        ``path`` reads another file of the folder (the previous checkpoint).

        Raises
        ------
        InvalidParameterError
            The file cannot be read, or another fit (other settings or other data) wrote it.
        """
        path = self.path if path is None else path
        # A write cut short by a kill leaves its temporary file beside the checkpoint: remove it.
        for stale in self.path.parent.glob(f".{self.path.name}.*.tmp"):
            stale.unlink(missing_ok=True)
        if not path.exists():
            return None
        try:
            payload = torch.load(path, map_location=device, weights_only=True)
        except Exception as error:  # a foreign or damaged file: say which, never guess
            reason = (str(error).splitlines() or [""])[0]  # torch appends advice that does not apply here
            raise InvalidParameterError(
                f"checkpoint {str(path)!r} cannot be read ({type(error).__name__}: {reason}); it "
                "is not a tsforecast checkpoint or it is damaged. Remove it to train from the start, or "
                "set another checkpoint_dir."
            ) from None
        self._check_identity(payload.get("identity", {}), path)
        loop = payload.get("loop", {})
        for name, ours in self.fitted.items():
            theirs = payload.get("fitted", {}).get(name)
            same = theirs is not None and len(theirs) == len(ours)
            if not (same and all(torch.equal(a.cpu(), b) for a, b in zip(theirs, ours, strict=True))):
                raise InvalidParameterError(
                    f"checkpoint {str(path)!r}: the {name} fitted from the data differ from the ones "
                    "it was trained with (another version of tsforecast?). Remove it to train from the start."
                )
        where = f"epoch {loop.get('epoch', 0) + 1}, batch {loop.get('batch', 0) + 1}"
        _LOGGER.info("resuming training from the checkpoint %s (%s)", path, where)
        return payload

    def due(self) -> bool:
        """Whether a checkpoint inside the epoch is due (``every_minutes`` passed since the last)."""
        return self.every_s is not None and time.monotonic() - self._last_write >= self.every_s

    def candidates(self, device) -> list:
        """The saved payloads, the latest first: the checkpoint, and with ``keep_previous`` the one before."""
        found = (self.load(device, path) for path in (self.path, self.previous) if path is not None)
        return [payload for payload in found if payload is not None]

    def save(self, payload: dict) -> None:
        """Write ``payload`` (plus this fit's identity) atomically over the previous checkpoint."""
        if self.previous is not None and self.path.exists():
            os.replace(self.path, self.previous)
        buffer = io.BytesIO()
        torch.save({**payload, "identity": self.identity, "fitted": self.fitted}, buffer)
        write_bytes(buffer.getvalue(), self.path)
        self._last_write = time.monotonic()

    def _check_identity(self, saved: dict, path) -> None:
        ours, theirs = self.identity["parameters"], saved.get("parameters", {})
        changed = [
            f"{name}={theirs.get(name, '(absent)')} in the checkpoint, {ours.get(name, '(absent)')} now"
            for name in sorted(set(ours) | set(theirs))
            if ours.get(name) != theirs.get(name)
        ]
        if saved.get("data") != self.identity["data"]:
            changed.append("the training data differ (other series, values or covariates)")
        if changed:
            raise InvalidParameterError(
                f"checkpoint {str(path)!r} was written by a different fit: {'; '.join(changed)}. "
                "Resuming would mix two trainings, so it is refused: rerun with the settings and data "
                "that wrote it, remove the file to train from the start, or set another checkpoint_dir."
            )
