"""The training loop: Adam(W), a one-cycle learning rate, clipping, early stopping and callbacks.

One optimisation step (:func:`train_step`): forward a chunk from the carried state, masked loss,
``backward``, then ``clip_grad_norm_`` (after the backward, before the optimiser step; the global
norm it returns is the *pre-clip* norm, recorded every step), then the optimiser step. A step whose
loss or gradient norm is not finite is skipped without touching the weights or the optimiser's
moments: the fused Adam kernels take a ``found_inf`` flag (the mechanism ``torch.amp.GradScaler``
uses), so the decision stays on the device and costs no host sync. The state passed on to the next
chunk is detached, so no graph spans two chunks.

The host synchronises only every ``log_every`` steps and at the end of an epoch, where it reads the
epoch's losses and gradient norms and applies the divergence rule of :mod:`tsforecast.nn.divergence`
(a run of ``max_bad_steps`` non-finite steps or an epoch of them, non-finite weights, a loss far above
the seasonal naive forecast's), which raises :class:`~tsforecast.exceptions.TrainingError`.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
import warnings
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import torch
from torch import nn

from tsforecast.epochs import EpochRecord
from tsforecast.exceptions import ClippingWarning, TrainingError, TsforecastWarning
from tsforecast.memory import peak_rss_bytes, release_free_memory, reset_peak_rss
from tsforecast.nn.distributed import agreed_checkpoint, aligned_epoch, data_parallel, step_totals
from tsforecast.nn.divergence import check_epoch, finite_flag
from tsforecast.nn.modules import detach_state

logger = logging.getLogger(__name__)

TRIM_EVERY = 16  # batches between two returns of the C heap's free pages (memory.release_free_memory)

__all__ = ["LoopConfig", "Step", "fit_network", "one_cycle", "train_step"]


@dataclass(frozen=True)
class LoopConfig:
    """Settings of :func:`fit_network` (the estimator fills them from its parameters)."""

    max_epochs: int
    learning_rate: float
    max_steps: int | None = None  # a budget of optimizer steps; the schedule then spans them
    weight_decay: float = 0.0
    clip_norm: float | None = 1.0
    patience: int | None = None
    max_time: float | None = None  # a safety cap in seconds, never part of the schedule
    verbose: bool = False
    log_every: int = 50
    max_bad_steps: int = 10
    clip_warn_fraction: float = 0.2
    n_series: int | None = None  # series in the training panel, for the progress bar's series/s


def one_cycle(
    progress: float, max_lr: float, warmup: float = 0.1, div: float = 10.0, final_div: float = 100.0
):
    """One-cycle learning rate at ``progress`` in [0, 1].

    Cosine up from ``max_lr / div`` over the first ``warmup`` share, then cosine down to
    ``max_lr / (div * final_div)``.

    Examples
    --------
    >>> round(one_cycle(0.0, 1.0), 3), round(one_cycle(0.1, 1.0), 3), round(one_cycle(1.0, 1.0), 4)
    (0.1, 1.0, 0.001)
    """
    progress = min(max(progress, 0.0), 1.0)
    low, high, final = max_lr / div, max_lr, max_lr / (div * final_div)
    if progress < warmup:
        return high + (low - high) * (1 + math.cos(math.pi * progress / warmup)) / 2
    return final + (high - final) * (1 + math.cos(math.pi * (progress - warmup) / (1 - warmup))) / 2


def make_optimizer(network: nn.Module, learning_rate: float, weight_decay: float):
    """Adam (AdamW when ``weight_decay > 0``), fused when the device supports it."""
    kind = torch.optim.AdamW if weight_decay > 0 else torch.optim.Adam
    try:
        return kind(network.parameters(), lr=learning_rate, weight_decay=weight_decay, fused=True)
    except RuntimeError:  # no fused kernel on this device: non-finite steps are checked on the host
        return kind(network.parameters(), lr=learning_rate, weight_decay=weight_decay)


class Step(NamedTuple):
    """What one optimisation step did, as device tensors (no host sync)."""

    loss: torch.Tensor  # the chunk's loss, before the update
    grad_norm: torch.Tensor  # global L2 norm of the gradients before clipping
    bad: torch.Tensor  # the loss or the norm was not finite: the weights were left as they were
    state: object  # the recurrent state after the chunk, detached
    naive_loss: torch.Tensor  # the loss of a zero correction (the seasonal naive forecast)
    targets: torch.Tensor  # the unmasked targets the loss ran over


def train_step(
    network,
    optimizer,
    batch,
    state,
    loss_fn,
    clip_norm,
    autocast=contextlib.nullcontext,
    last_only=False,
    group=None,
    model=None,
) -> Step:
    """One optimisation step on one chunk (see :class:`Step`).

    A step whose loss or pre-clip gradient norm is not finite leaves the weights exactly as they were.
    With ``group`` (:class:`~tsforecast.nn.distributed.Group`), ``model`` is ``network`` wrapped in
    ``DistributedDataParallel``: the step is the one over the targets of every process, and the
    recorded losses are theirs.
    """
    x, y, mask, _ = batch
    optimizer.zero_grad(set_to_none=True)
    with autocast():
        out, state = (model or network)(x, state)  # (batch, C, n_outputs); state (layers, batch, hidden)
    if last_only:
        out = out[:, -1:]  # (batch, 1, n_outputs)
    loss, valid = loss_fn(out.float(), y, mask)
    naive = loss_fn.at_zero(y, mask)  # no graph: a constant
    targets = mask.sum()
    if group is None:
        loss.backward()
    else:  # DDP averages the gradients: weight this process's loss by its share of the targets
        local = loss
        loss, naive, valid, weight = step_totals(loss, naive, valid, group)
        (local * weight).backward()
        targets = valid.round().long()
    params = [p for p in network.parameters() if p.grad is not None]
    norm = nn.utils.clip_grad_norm_(params, math.inf if clip_norm is None else clip_norm)
    bad = ~(torch.isfinite(loss) & torch.isfinite(norm))
    if optimizer.defaults.get("fused"):
        optimizer.found_inf = bad.float()  # read by the fused kernel: skip the update on the device
        optimizer.step()
    elif not bool(bad):  # pragma: no cover - devices without fused Adam
        optimizer.step()
    return Step(loss.detach(), norm.detach(), bad, detach_state(state), naive, targets)


@dataclass
class LoopState:
    """Where training stands: with the weights, the optimizer and the generators, all a resume needs."""

    epoch: int = 0  # epochs completed
    batch: int = 0  # batches completed in the current epoch
    chunk: int = 0  # chunks completed in the current batch
    order: torch.Tensor | None = None  # the batch-order generator's state at the current epoch's start
    carried: object = None  # the recurrent state after the last completed chunk of the current batch
    steps: tuple = ((), (), (), (), ())  # the epoch's step tensors: losses, norms, bads, targets, naives
    bad_run: torch.Tensor | float = 0.0
    worst_run: torch.Tensor | float = 0.0
    best: float = math.inf
    best_state: dict | None = None
    waited: int = 0
    seconds: float = 0.0  # time spent in the current epoch before a mid-epoch checkpoint
    history: list = field(default_factory=list)

    def payload(self, network, optimizer) -> dict:
        """The state as a checkpoint payload (plain tensors, lists and dicts)."""
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else []
        return {
            "loop": {
                **{k: getattr(self, k) for k in ("epoch", "batch", "chunk", "order", "carried", "best")},
                **{k: getattr(self, k) for k in ("best_state", "waited", "seconds")},
                "steps": [torch.stack(list(part)) if part else None for part in self.steps],
                "bad_run": torch.as_tensor(self.bad_run),
                "worst_run": torch.as_tensor(self.worst_run),
                "history": [record.as_dict() for record in self.history],
            },
            "network": network.state_dict(),
            "optimizer": optimizer.state_dict(),
            "rng": {"torch": torch.get_rng_state(), "cuda": cuda},
        }

    @classmethod
    def restore(cls, payload: dict, network, optimizer, device) -> LoopState:
        """Load a checkpoint payload into ``network`` and ``optimizer``; returns the loop's state."""
        network.load_state_dict(payload["network"])
        optimizer.load_state_dict(payload["optimizer"])
        torch.set_rng_state(payload["rng"]["torch"].cpu())
        if payload["rng"]["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([state.cpu() for state in payload["rng"]["cuda"]])
        loop = dict(payload["loop"])
        loop["history"] = [EpochRecord.from_dict(row) for row in loop["history"]]
        loop["steps"] = tuple(() if part is None else tuple(part.to(device)) for part in loop["steps"])
        loop["order"] = None if loop["order"] is None else loop["order"].cpu()
        return cls(**loop)

    @property
    def finished(self) -> bool:
        return bool(self.history) and self.history[-1].stopped_by is not None


def fit_network(
    network,
    source,
    config: LoopConfig,
    loss_fn,
    generator,
    autocast=contextlib.nullcontext,
    validate=None,
    on_epoch=None,
    checkpoint=None,
    group=None,
) -> list:
    """Train ``network`` on the batches of ``source``; returns one :class:`EpochRecord` per epoch.

    The learning-rate schedule is a function of the optimizer step alone (one cycle over
    ``max_epochs`` epochs of ``source``), so the same seed gives the same weights on any machine.
    ``max_time`` is only a safety cap: when it fires, training stops after the current step, a
    :class:`~tsforecast.exceptions.TsforecastWarning` says so and the last record's ``stopped_by``
    is ``"max_time"``.

    Parameters
    ----------
    network : nn.Module
    source : TBPTTSource or WindowSource
    config : LoopConfig
    loss_fn : callable
        ``(pred, y, mask) -> (loss, n_valid)``.
    generator : torch.Generator
        Draws the batch order (at the start of each epoch only).
    autocast : callable
        Context manager factory for mixed precision (a no-op by default).
    validate : callable, optional
        ``() -> 0-d tensor``: validation loss; enables early stopping and best-weight restoring.
    on_epoch : callable, optional
        ``(history) -> bool``, called after each epoch with the records so far (the new one last);
        True stops training.
    checkpoint : tsforecast.nn.checkpoint.Checkpoint, optional
        Resume from it when it holds a checkpoint; write one after every epoch (and inside an
        epoch when it is due). A resumed fit ends with the same weights as an uninterrupted one.
    group : tsforecast.nn.distributed.Group, optional
        Train data-parallel with the other processes of the group (see :mod:`tsforecast.nn.distributed`):
        ``source`` holds this process's streams, ``validate`` reduces over the processes.
    """
    optimizer = make_optimizer(network, config.learning_rate, config.weight_decay)
    device = next(network.parameters()).device
    if checkpoint is None:
        saved = None
    else:
        saved = checkpoint.load(device) if group is None else agreed_checkpoint(checkpoint, group, device)
    if saved is not None:
        loop = LoopState.restore(saved, network, optimizer, device)
    else:
        loop = LoopState(bad_run=torch.zeros((), device=device), worst_run=torch.zeros((), device=device))
    model = None
    if group is not None:
        model = data_parallel(network, group)
    history = loop.history
    started = time.perf_counter()
    progress_bar = _progress(config, initial=loop.epoch)
    n_batches = source.n_batches  # with a group, the most of any process (aligned_epoch walks as many)
    if group is not None:
        n_batches = int(group.reduce(torch.tensor([n_batches]), "max", "the epoch's plan")[0])
    stopped_by = None
    first_epoch = loop.epoch
    for epoch in range(loop.epoch, 0 if loop.finished else config.max_epochs):
        network.train()
        _start_memory_peak(device, reset_host=epoch > first_epoch)
        if loop.order is None:
            loop.order = generator.get_state()
        generator.set_state(loop.order)  # a resumed epoch draws the same batch order
        epoch_start = time.perf_counter() - loop.seconds
        steps = tuple(list(part) for part in loop.steps)
        losses, norms, bads, targets, naives = steps
        done_before = sum(record.steps for record in history)  # optimizer steps of the earlier epochs
        batches = source.epoch(generator) if group is None else aligned_epoch(source, generator, group)
        for b, (n_chunks, chunks) in enumerate(batches):
            if b < loop.batch:  # done before the checkpoint (the order was drawn above, at once)
                continue
            state = loop.carried
            for c, batch in enumerate(chunks):
                if c < loop.chunk:
                    continue
                if not batch[3]:  # no target in this chunk: only carry the state forward
                    with torch.no_grad(), autocast():
                        state = network(batch[0], state)[1]
                else:
                    if config.max_steps:  # the schedule spans the step budget
                        progress = (done_before + len(losses)) / config.max_steps
                    else:
                        progress = (epoch + (b + c / n_chunks) / n_batches) / config.max_epochs
                    for param_group in optimizer.param_groups:
                        param_group["lr"] = one_cycle(progress, config.learning_rate)
                    step = train_step(
                        network,
                        optimizer,
                        batch,
                        state,
                        loss_fn,
                        config.clip_norm,
                        autocast,
                        source.last_only,
                        group,
                        model,
                    )
                    state, bad = step.state, step.bad
                    losses.append(step.loss), norms.append(step.grad_norm), bads.append(bad)
                    targets.append(step.targets), naives.append(step.naive_loss)
                    loop.bad_run = (loop.bad_run + 1) * bad
                    loop.worst_run = torch.maximum(loop.worst_run, loop.bad_run)
                    if len(losses) % config.log_every == 0:
                        _check_bad_run(loop.worst_run, config, history)
                    if config.max_steps and done_before + len(losses) >= config.max_steps:
                        stopped_by = "max_steps"
                loop.chunk, loop.carried = c + 1, state
                if checkpoint is not None and _agreed(checkpoint.due(), group, "a checkpoint"):
                    loop.steps, loop.seconds = steps, time.perf_counter() - epoch_start
                    checkpoint.save(loop.payload(network, optimizer))
                if config.max_time and _agreed(
                    time.perf_counter() - started > config.max_time, group, "max_time"
                ):
                    stopped_by = "max_time"
                if stopped_by:
                    break
            if stopped_by:
                break
            loop.batch, loop.chunk, loop.carried = b + 1, 0, None
            if b % TRIM_EVERY == TRIM_EVERY - 1:  # else glibc keeps the batches' freed buffers resident
                release_free_memory()
        _check_bad_run(loop.worst_run, config, history)
        val_loss = float("nan")
        if validate is not None:
            val_loss = float(validate())
            if val_loss < loop.best:
                loop.best, loop.waited = val_loss, 0
                loop.best_state = {k: v.detach().clone() for k, v in network.state_dict().items()}
            else:
                loop.waited += 1
                if config.patience is not None and loop.waited >= config.patience:
                    stopped_by = stopped_by or "patience"
        record, naive_loss, weights_finite = _epoch_record(
            epoch, steps, val_loss, network, optimizer, config, time.perf_counter() - epoch_start
        )
        record = replace(record, **_memory_peak(device))
        if stopped_by:  # callbacks (logs, pruning) see why this is the last epoch
            record = replace(record, stopped_by=stopped_by)
        history.append(record)
        if on_epoch is not None and on_epoch(history) and not stopped_by:
            stopped_by = "callback"
            history[-1] = record = replace(record, stopped_by=stopped_by)
        _report(record, config, progress_bar)
        if record.steps:  # after the callbacks, so that the diverged epoch is logged too
            check_epoch(record, naive_loss, weights_finite, config)
        loop.epoch, loop.batch, loop.chunk, loop.carried = epoch + 1, 0, 0, None
        loop.order = generator.get_state()  # the next epoch's batch order is drawn from here
        loop.steps, loop.seconds = ((), (), (), (), ()), 0.0
        if checkpoint is not None and stopped_by != "max_time":  # a capped fit may go on later
            checkpoint.save(loop.payload(network, optimizer))
        if stopped_by:
            break
    progress_bar.close()
    _warn_clipping(history, config)
    if stopped_by == "max_time":
        warnings.warn(
            f"training stopped by max_time={config.max_time:g} s after {len(history)} of "
            f"{config.max_epochs} epochs, before its learning-rate schedule ended; the result now depends "
            "on the machine's speed. Lower max_epochs for a shorter, reproducible training, or raise "
            "max_time (it is a safety cap).",
            TsforecastWarning,
            stacklevel=4,
        )
    if loop.best_state is not None:
        network.load_state_dict(loop.best_state)
    network.eval()
    return history


def _agreed(flag: bool, group, what: str) -> bool:
    """``flag``, or with a process group whether it holds on any process (they act together)."""
    return flag if group is None else group.any(flag, what)


def _start_memory_peak(device, reset_host: bool) -> None:
    """Start the epoch's memory peaks (the host's only after the first epoch: see EpochRecord)."""
    if reset_host:
        reset_peak_rss()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def _memory_peak(device) -> dict:
    mib = 2**20
    peaks = {"peak_memory_mb": peak_rss_bytes() / mib}
    if device.type == "cuda":
        peaks["peak_device_memory_mb"] = torch.cuda.max_memory_allocated(device) / mib
    return peaks


def _check_bad_run(worst_run, config: LoopConfig, history: list) -> None:
    worst = int(worst_run)
    if worst >= config.max_bad_steps:
        raise TrainingError(
            f"the loss or the gradients were not finite for {worst} optimisation steps in a row "
            f"(after {len(history)} complete epochs); those steps were skipped and the weights are the "
            "last finite ones. Lower learning_rate, set clip_norm, or check the data for extreme values."
        )


def _epoch_record(epoch, steps, val_loss, network, optimizer, config, seconds):
    """The epoch's record, the seasonal naive loss on its finite steps and whether the weights are finite."""
    losses, norms, bads, targets, naives = steps
    learning_rate = optimizer.param_groups[0]["lr"]
    if not losses:
        nan = float("nan")
        record = EpochRecord(epoch + 1, nan, val_loss, nan, nan, 0.0, learning_rate, seconds, 0, 0, 0)
        return record, nan, True
    loss, norm, bad = torch.stack(losses), torch.stack(norms), torch.stack(bads)
    good = ~bad
    clipped = (norm > config.clip_norm) & good if config.clip_norm is not None else torch.zeros_like(good)
    n_good = good.sum().clamp_min(1)
    summary = (
        torch.stack(
            [
                torch.where(good, loss, 0).sum() / n_good,
                torch.where(good, norm, 0).sum() / n_good,
                torch.where(good, norm, 0).max(),
                clipped.sum() / n_good,
                bad.sum(),
                torch.stack(targets).sum(),
                torch.where(good, torch.stack(naives), 0).sum() / n_good,
                finite_flag(network).double(),
            ]
        )
        .double()
        .tolist()
    )  # the epoch's one host sync
    record = EpochRecord(
        epoch=epoch + 1,
        train_loss=summary[0],
        val_loss=val_loss,
        grad_norm_mean=summary[1],
        grad_norm_max=summary[2],
        clipped_fraction=summary[3],
        learning_rate=learning_rate,
        seconds=seconds,
        skipped_steps=int(summary[4]),
        steps=len(losses),
        targets=int(summary[5]),
    )
    return record, summary[6], bool(summary[7])


def _warn_clipping(history: list, config: LoopConfig) -> None:
    """One warning per fit when clipping fired on more than ``clip_warn_fraction`` of an epoch's steps."""
    heavy = [r for r in history if r.clipped_fraction > config.clip_warn_fraction]
    if not heavy:
        return
    worst = max(heavy, key=lambda r: r.clipped_fraction)
    warnings.warn(
        f"gradient clipping fired on more than {config.clip_warn_fraction:.0%} of the steps in {len(heavy)} "
        f"of {len(history)} epochs (at most {worst.clipped_fraction:.0%}, epoch {worst.epoch}; "
        f"clip_norm={config.clip_norm}, mean pre-clip norm {worst.grad_norm_mean:.3g}); training may be "
        "unstable: lower learning_rate or raise clip_norm.",
        ClippingWarning,
        stacklevel=4,
    )


def _progress(config: LoopConfig, initial: int = 0):
    from tqdm.auto import tqdm

    return tqdm(
        total=config.max_epochs, initial=initial, disable=not config.verbose, unit="epoch", leave=True
    )


def _report(record: EpochRecord, config: LoopConfig, bar) -> None:
    logger.debug("epoch %d train_loss %.4f val_loss %.4f", record.epoch, record.train_loss, record.val_loss)
    seconds = max(record.seconds, 1e-9)
    rates = {"values/s": f"{record.targets / seconds:.3g}"}  # forecast targets trained on
    if config.n_series:
        rates["series/s"] = f"{config.n_series / seconds:.3g}"
    bar.set_postfix(
        loss=f"{record.train_loss:.4f}",
        val=f"{record.val_loss:.4f}",
        grad=f"{record.grad_norm_mean:.3g}",
        **rates,
    )
    bar.update(1)
