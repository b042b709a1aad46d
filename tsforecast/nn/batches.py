"""Batches over encoded streams: the training sources of the loop, and whole-stream passes without gradients.

:class:`TBPTTSource` yields random groups of streams walked chunk by chunk (state carried inside a
group); :class:`WindowSource` yields random windows of ``lookback`` steps; :func:`run_streams` runs
the network over every stream (validation loss, or the output at each stream's last step).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from tsforecast.nn.streams import Scales, Streams, stream_chunks, window_chunk

__all__ = ["TBPTTSource", "WindowSource", "run_streams"]


@torch.no_grad()
def run_streams(
    network, streams: Streams, chunk: int, batch_size: int, scales: Scales, autocast, loss_fn=None, group=None
):
    """Run the network over whole streams (state carried, no gradients).

    Returns the head output at each stream's last step ``(n_streams, n_outputs)``, or with
    ``loss_fn`` the loss averaged over all unmasked targets (a 0-d device tensor): with ``group``
    (:class:`~tsforecast.nn.distributed.Group`), over the targets of every process.
    """
    device = streams.device
    last_outputs, total, count = [], torch.zeros((), device=device), torch.zeros((), device=device)
    for start in range(0, streams.n_streams, batch_size):
        rows = np.arange(start, min(start + batch_size, streams.n_streams))
        last = streams.to_device(streams.n_steps_host[rows] - 1)  # (batch,)
        state, picked = None, None
        for k, (x, y, mask, _) in enumerate(stream_chunks(streams, rows, chunk, scales)):
            with autocast():
                out, state = network(x, state)  # (batch, C, n_outputs)
            out = out.float()
            if loss_fn is not None:
                loss, valid = loss_fn(out, y, mask)
                total, count = total + loss * valid, count + valid
                continue
            at = (last - k * chunk).clamp(0, x.shape[1] - 1)  # (batch,)
            here = out[torch.arange(len(rows), device=device), at]  # (batch, n_outputs)
            inside = ((last >= k * chunk) & (last < (k + 1) * chunk))[:, None]
            picked = here if picked is None else torch.where(inside, here, picked)
        last_outputs.append(picked)
    if loss_fn is not None:
        if group is not None:
            total, count = group.reduce(torch.stack([total, count]), what="the validation loss")
        return total / count.clamp_min(1)
    return torch.cat(last_outputs)


class TBPTTSource:
    """Training batches for truncated BPTT: random groups of streams, walked chunk by chunk.

    ``epoch(generator)`` yields one ``(n_chunks, chunks)`` pair per batch; the loop carries the
    network state across the chunks of a batch and starts each batch from a zero state. A batch is
    an array of stream rows (:meth:`batches`); :meth:`plan` and :meth:`chunks` let
    :func:`~tsforecast.nn.distributed.aligned_epoch` line the batches of several processes up.
    """

    last_only = False

    def __init__(self, streams: Streams, batch_size: int, chunk: int, scales: Scales):
        self.streams, self.batch_size, self.chunk, self.scales = streams, batch_size, chunk, scales

    @property
    def n_batches(self) -> int:
        """Batches per epoch."""
        return math.ceil(self.streams.n_streams / self.batch_size)

    def batches(self, generator: torch.Generator) -> list:
        """The epoch's batches: arrays of stream rows, in an order drawn from ``generator``."""
        order = torch.randperm(self.streams.n_streams, generator=generator).numpy()
        return [order[start : start + self.batch_size] for start in range(0, len(order), self.batch_size)]

    def plan(self, rows: np.ndarray) -> tuple:
        """``(n_chunks, has_target)``: the batch's chunks and whether each has a target (host)."""
        n_chunks = math.ceil(self.streams.n_steps_host[rows].max() / self.chunk)
        return n_chunks, self.streams.chunk_has_target(rows, self.chunk, n_chunks)

    def chunks(self, rows: np.ndarray, n_chunks: int | None = None, has_target=None):
        """The batch's chunks (``n_chunks``: more than its own are padding), flagged by ``has_target``."""
        return stream_chunks(self.streams, rows, self.chunk, self.scales, n_chunks, has_target)

    def epoch(self, generator: torch.Generator):
        """Yield ``(n_chunks, chunks)`` per batch, the streams in an order drawn from ``generator``."""
        for rows in self.batches(generator):
            n_chunks, has_target = self.plan(rows)  # computed once, used by the chunks
            yield n_chunks, self.chunks(rows, n_chunks, has_target)


class WindowSource:
    """Training batches of sliding windows: ``lookback`` steps from a zero state, last output scored."""

    last_only = True

    def __init__(self, streams: Streams, batch_size: int, lookback: int, scales: Scales):
        self.streams, self.batch_size, self.lookback, self.scales = streams, batch_size, lookback, scales
        self.ends = torch.from_numpy(streams.windows(lookback))  # (n_windows, 2), host

    @property
    def n_batches(self) -> int:
        """Batches per epoch."""
        return math.ceil(len(self.ends) / self.batch_size)

    def batches(self, generator: torch.Generator) -> list:
        """The epoch's batches: ``(batch, 2)`` window ends, in an order drawn from ``generator``."""
        order = torch.randperm(len(self.ends), generator=generator)
        return [
            self.ends[order[start : start + self.batch_size]]
            for start in range(0, len(order), self.batch_size)
        ]

    def plan(self, ends) -> tuple:
        """One chunk per batch, with a target (every window has one)."""
        return 1, np.ones(1, dtype=bool)

    def chunks(self, ends, n_chunks: int = 1, has_target=None):
        """The batch's one chunk (every window has a target)."""
        return iter([(*window_chunk(self.streams, ends, self.lookback, self.scales), True)])

    def epoch(self, generator: torch.Generator):
        """Yield ``(1, chunks)`` per batch of windows, in an order drawn from ``generator``."""
        for ends in self.batches(generator):
            yield 1, self.chunks(ends)
