"""Data-parallel training over a ``torch.distributed`` process group: whole series per process.

A recurrent forecaster fitted while a process group of more than one process is initialised (by
``torchrun``, through :func:`init_from_environment`, or by the caller's own
``torch.distributed.init_process_group``) trains data-parallel: every process passes the same panel,
and each trains on its shard of the series (:meth:`Group.shard`: series ``rank``, ``rank + world``,
...), so the TBPTT state of a series never leaves its process. The rest stays as in one process:

* the per-series scalers and the seasons come from the whole panel (every process holds it);
* the global feature and target scales are all-reduced sums over the shards
  (:func:`~tsforecast.nn.streams.feature_moments`), so they equal one process's;
* the network is wrapped in ``DistributedDataParallel``, which averages the gradients in the
  backward; each process's loss is weighted by its share of the step's targets, so the step is the
  one a single process takes on the union of the batches (the same global batch);
* the epochs line up (:func:`aligned_epoch`): every process walks as many batches, and as many chunks
  per batch, as the process with the most; a chunk trains when any process has a target in it; a
  process out of batches repeats one of its own with every target masked (it adds zero gradient);
* what decides the loop (the recorded losses, a skipped non-finite step, the validation loss and
  early stopping, ``max_time``, when a checkpoint is due) is reduced over the processes, so they
  all stop together; each process checkpoints its own position in ``checkpoint_dir/rank-R-of-W``
  and a rerun resumes from the last position all of them saved (:func:`agreed_checkpoint`).

Collectives run with the group's timeout; a process that dies or stops answering makes the others
raise :class:`~tsforecast.exceptions.TrainingError` naming their rank and the collective, instead of
waiting for ever (``torchrun`` itself ends the job and names the rank that died first).
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from tsforecast.exceptions import InvalidInputError, InvalidParameterError, TrainingError
from tsforecast.nn.covariates import select_series

__all__ = [
    "DEFAULT_TIMEOUT_SECONDS",
    "Group",
    "Shard",
    "aligned_epoch",
    "agreed_checkpoint",
    "current_group",
    "data_parallel",
    "init_from_environment",
    "step_totals",
]

#: How long a collective waits for the other processes (``TSFORECAST_DIST_TIMEOUT`` overrides it).
DEFAULT_TIMEOUT_SECONDS = 300


@dataclass(frozen=True)
class Group:
    """The place of this process in the initialised default process group (of more than one)."""

    rank: int
    world_size: int
    device: torch.device  # where the collectives' tensors live: CPU for gloo, the GPU for nccl

    def shard(self, n_series: int) -> np.ndarray:
        """The positions of this process's series: ``rank``, ``rank + world_size``, ..."""
        if n_series < self.world_size:
            raise InvalidInputError(
                f"the panel has {n_series} series for {self.world_size} training processes; each process "
                "trains on whole series, so start at most as many processes as there are series."
            )
        return np.arange(self.rank, n_series, self.world_size)

    def reduce(self, tensor: torch.Tensor, op: str = "sum", what: str = "a training step") -> torch.Tensor:
        """``tensor`` all-reduced (``"sum"`` or ``"max"``) over the processes, on its own device.

        Raises
        ------
        TrainingError
            Naming this rank and ``what``: another process died, or did not answer within the timeout.
        """
        moved = tensor.to(self.device)
        kind = dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX
        try:
            dist.all_reduce(moved, op=kind)
        except (RuntimeError, dist.DistError) as error:
            raise TrainingError(
                f"rank {self.rank} of {self.world_size}: the process group failed during {what} "
                f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else 'no message'}); "
                "another training process died or stopped answering. Check the other ranks' logs."
            ) from None
        return moved.to(tensor.device)

    def any(self, flag: bool, what: str) -> bool:
        """Whether ``flag`` holds on any process."""
        return bool(self.reduce(torch.tensor([int(flag)]), "max", what)[0])


def current_group() -> Group | None:
    """The default process group as a :class:`Group`, or None outside one (or with one process)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return None
    device = torch.device("cpu")
    if dist.get_backend() == "nccl":
        device = torch.device("cuda", torch.cuda.current_device())
    return Group(dist.get_rank(), dist.get_world_size(), device)


def init_from_environment(device: str = "auto", timeout_seconds: float | None = None) -> Group | None:
    """Join the process group that ``torchrun`` describes in the environment, once; None without one.

    ``torchrun`` sets ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``.
    The backend is ``nccl`` when the model will run on CUDA (each process on the GPU of its
    ``LOCAL_RANK``), else ``gloo``. Collectives wait ``timeout_seconds`` (default
    ``$TSFORECAST_DIST_TIMEOUT``, else :data:`DEFAULT_TIMEOUT_SECONDS`) for the other processes.
    """
    if dist.is_available() and dist.is_initialized():
        return current_group()
    if int(os.environ.get("WORLD_SIZE", "1")) < 2:
        return None
    if timeout_seconds is None:
        timeout_seconds = float(os.environ.get("TSFORECAST_DIST_TIMEOUT", DEFAULT_TIMEOUT_SECONDS))
    cuda = device != "cpu" and torch.cuda.is_available() and not str(device).startswith("cpu")
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if cuda else "gloo", timeout=datetime.timedelta(seconds=timeout_seconds))
    return current_group()


def aligned_epoch(source, generator: torch.Generator, group: Group):
    """``source.epoch(generator)`` with the same batches and chunks per batch on every process.

    Yields ``(n_chunks, chunks)`` per batch like the source; a chunk's "has a target" flag is
    True when it is on any process, and the batches a process lacks repeat its own, masked.
    """
    batches = source.batches(generator)
    plans = [source.plan(batch) for batch in batches]  # (n_chunks, flags) per local batch
    n_batches = int(group.reduce(torch.tensor([len(batches)]), "max", "the epoch's plan")[0])
    counts = torch.zeros(n_batches, dtype=torch.int64)
    counts[: len(plans)] = torch.tensor([n for n, _ in plans], dtype=torch.int64)
    counts = group.reduce(counts, "max", "the epoch's plan")
    flags = torch.zeros(n_batches, int(counts.max()) if n_batches else 0, dtype=torch.int32)
    for b, (n, own) in enumerate(plans):
        flags[b, :n] = torch.from_numpy(own.astype(np.int32))
    flags = group.reduce(flags, "max", "the epoch's plan").bool().numpy()
    for b in range(n_batches):
        n_chunks = int(counts[b])
        filler = b >= len(batches)  # this process has no batch left: repeat one, every target masked
        chunks = source.chunks(batches[b % len(batches)], n_chunks, flags[b])
        yield n_chunks, (_masked(chunks) if filler else chunks)


def _masked(chunks):
    """The chunks with every target masked: a filler batch adds zero gradient."""
    for x, y, mask, trainable in chunks:
        yield x, y, torch.zeros_like(mask), trainable


def step_totals(loss: torch.Tensor, naive: torch.Tensor, valid: torch.Tensor, group: Group):
    """The step's loss, naive loss and target count over all processes, and this process's loss weight.

    DDP averages the gradients over the ``W`` processes; a process's mean loss weighted by
    ``W * valid / total valid`` makes that average the gradient of the mean over every target.
    """
    totals = group.reduce(torch.stack([loss.detach() * valid, naive * valid, valid]), "sum")
    count = totals[2].clamp_min(1)
    weight = group.world_size * valid / count
    return totals[0] / count, totals[1] / count, totals[2], weight


def data_parallel(network, group: Group):
    """``network`` wrapped in ``DistributedDataParallel`` (its forward and backward sync the gradients)."""
    from torch.nn.parallel import DistributedDataParallel

    ids = [group.device.index] if group.device.type == "cuda" else None
    return DistributedDataParallel(network, device_ids=ids)


def agreed_checkpoint(checkpoint, group: Group, device) -> dict | None:
    """The checkpoint every process resumes from: the last position all of them saved (None: none).

    Each process keeps its last two checkpoints (``Checkpoint(keep_previous=True)``): a kill between
    two processes' writes of the same checkpoint leaves them one apart, and they resume from the
    earlier, which all of them hold.
    """
    payloads = checkpoint.candidates(device)
    position = [_position(payload["loop"]) for payload in payloads]
    mine = max(position, default=-1)
    agreed = -int(group.reduce(torch.tensor([-mine]), "max", "resuming from the checkpoints")[0])
    if agreed < 0:
        return None
    if agreed not in position:
        raise InvalidParameterError(
            f"rank {group.rank} of {group.world_size}: no checkpoint of this process stands where the "
            f"others' do ({checkpoint.path.parent}); they were written by another run. Delete the "
            "rank-*-of-* folders of checkpoint_dir to train from the start."
        )
    return payloads[position.index(agreed)]


def _position(loop: dict) -> int:
    """A checkpoint's place in the training as one integer (epoch, then batch, then chunk)."""
    return (int(loop["epoch"]) << 42) + (int(loop["batch"]) << 21) + int(loop["chunk"])


@dataclass
class Shard:
    """The series of a panel one process trains on: all of them outside a process group."""

    rows: np.ndarray  # positions in the panel
    ids: list
    scaler: object  # SeriesScaler of these series
    covariates: object  # Covariates of these series, or None

    @classmethod
    def of(cls, group: Group | None, ids: list, scaler, covariates) -> Shard:
        """The shard of this process in a panel with ``ids``, with its scaler and covariates."""
        if group is None:
            return cls(np.arange(len(ids)), list(ids), scaler, covariates)
        rows = group.shard(len(ids))
        return cls(rows, [ids[i] for i in rows], scaler.subset(rows), select_series(covariates, rows))

    def take(self, items: list) -> list:
        """The shard's entries of a per-series list."""
        return items if len(self.rows) == len(items) else [items[i] for i in self.rows]
