"""The encoded panel: streams of transformed values and the per-step features computed from them.

Each series is laid out once in host memory, end to end without padding (:func:`build_streams`):
``z`` (the scaled series, gaps filled with the causal level) and ``observed`` (whether ``z`` was
observed there); the streams cut from it are views. A batch of rows is cut out padded and moved to
the compute device (:meth:`Streams.rows`), where the causal level ``L_t`` (the mean of the observed
values among the last ``season_length``) and the target mask are computed, and its features are
computed chunk by chunk (:func:`chunk_features`). Host memory grows with the panel by five bytes per
step (not by the feature width, nor by the longest series); device memory grows with the batch only.

Features of step ``t`` (``m = season_length``, ``M = long_season_length``, ``H = horizon``), all in
the scaled space and relative to ``L_t``, then divided by a global per-feature scale:

* the last season: ``z[t-m+1 .. t] - L_t`` (``m`` values);
* with ``M``: the values one long season before each forecast step, ``z[t+h-M] - L_t``, h = 1..H
  (wrapping round ``M`` when ``H > M``);
* level changes ``L_t - L_{t-m}`` (and ``L_t - L_{t-M}`` with ``M``), in that order.

Targets are residuals over the seasonal naive forecast ``base_h = z[t - m + ((h-1) mod m) + 1]``:
``(z[t+h] - base_h) / target_scale``, masked where ``z[t+h]`` is missing, beyond the training cut or
after the end of the series. The network's output at step ``t`` is therefore a correction of the
seasonal naive forecast made at ``t``.

With covariates, a host tensor ``covariates`` ``(n_streams, width, n_covariates)`` holds the
rows of :class:`~tsforecast.nn.covariates.CovariateCodec` laid out with the same plan, padding and
warm-up as the targets, and the features of step ``t`` gain the covariates at ``t`` and the
future-known ones at ``t+1 .. t+H`` with their changes since the seasonal naive's steps
(:func:`~tsforecast.nn.covariates.step_inputs`), after the target features and not divided by
their scales (the codec standardised them already).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from tsforecast.nn.covariates import base_runs, step_inputs
from tsforecast.windowing import StreamPlan, window_ends

__all__ = ["FeatureSpec", "Streams", "build_streams", "chunk_features", "series_arrays"]


@dataclass(frozen=True)
class FeatureSpec:
    """Which lags the per-step features use."""

    season_length: int
    long_season_length: int  # 0: none
    horizon: int

    @property
    def context(self) -> int:
        """Steps of history before the first step with complete features (``t0``)."""
        return max(self.season_length, self.long_season_length)

    @property
    def n_features(self) -> int:
        """Inputs per step: the last season, the long-season values (with one), the level changes."""
        long = self.horizon + 1 if self.long_season_length else 0
        return self.season_length + 1 + long

    def offsets(self) -> dict:
        """Offsets from ``t`` of the values each feature group reads."""
        m, big, h = self.season_length, self.long_season_length, np.arange(self.horizon)
        out = {"lags": np.arange(-m + 1, 1), "base": -m + (h % m) + 1, "targets": h + 1}
        if big:
            out["long"] = -big + (h % big) + 1
        return {k: v.astype(np.int64) for k, v in out.items()}

    def level_lags(self) -> list:
        """Lags of the level-change features ``L_t - L_{t-lag}``."""
        return [self.season_length] + ([self.long_season_length] if self.long_season_length else [])

    def base(self, z_filled: np.ndarray, times: np.ndarray | None = None) -> np.ndarray:
        """Seasonal naive forecast from a filled series, in its units.

        Made at its last step: ``(horizon,)``; or at each of ``times``: ``(len(times), horizon)``.
        """
        at = len(z_filled) - 1 if times is None else np.asarray(times)[:, None]
        return z_filled[at + self.offsets()["base"]]


def series_arrays(z: np.ndarray, season_length: int, cut: int | None = None, target_from: int = 0):
    """The filled values, causal level and target mask of one scaled series (float64, host).

    ``level[t]`` is the mean of the observed values among ``z[t-m+1 .. t]`` (fewer at the start),
    carried forward when all of them are missing; a missing ``z[t]`` is filled with ``level[t]``.
    ``obs[t]`` is True where ``z[t]`` is observed and ``target_from <= t < cut``.
    """
    finite = np.isfinite(z)
    values = np.where(finite, z, 0.0)
    sums = np.concatenate([[0.0], np.cumsum(values)])
    counts = np.concatenate([[0], np.cumsum(finite)])
    t = np.arange(len(z))
    lo = np.maximum(t + 1 - season_length, 0)
    n = counts[t + 1] - counts[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        level = (sums[t + 1] - sums[lo]) / n
    if not (n > 0).all():  # forward-fill windows without observations
        idx = np.where(n > 0, t, 0)
        level = level[np.maximum.accumulate(idx)]
    filled = np.where(finite, z, level)
    obs = finite & (t >= target_from) & (t < (len(z) if cut is None else cut))
    return filled, level, obs


@dataclass
class Streams:
    """The streams, laid out end to end without padding in host memory, and the device they run on.

    Row ``s`` (its context, steps and targets: ``size[s]`` values) sits at ``start[s]`` of the flat
    host arrays, where its series is stored once (the streams cut from one series overlap there).
    :meth:`rows` cuts any batch of rows back out, padded to a common width (``z`` with ``pad[s]``,
    the target mask with False), and moves it to ``device``: the host holds the panel once (not once
    per step of its longest series nor once per warm-up and context of every stream) and the device
    holds one batch at a time.

    Attributes
    ----------
    device : torch.device
        Where the batches are computed on.
    z : torch.Tensor of shape (total,), float32 (host)
    observed : torch.Tensor of shape (total,), bool (host)
    start, size : torch.Tensor of shape (n_streams,), int64 (host)
    back : torch.Tensor of shape (n_streams,), int64 (host)
        Columns of the series before the row's first one that its first levels read (< season).
    first_target : torch.Tensor of shape (n_streams,), int64 (host)
        The row's first column whose value may be a target (validation holds the earlier ones out).
    pad : torch.Tensor of shape (n_streams,), float32 (host)
    n_steps, warmup : torch.Tensor of shape (n_streams,), int64 (host)
    n_steps_host, warmup_host : np.ndarray of shape (n_streams,)
        The same as arrays (views of ``n_steps`` and ``warmup``).
    has_target : np.ndarray of shape (n_steps_host.sum(),), bool
        Whether each step has at least one unmasked target (host), the steps of each stream in turn.
    step_start : np.ndarray of shape (n_streams,)
        Where each stream's steps begin in ``has_target`` (host).
    covariates : torch.Tensor of shape (total, n_covariates), float32 (host), optional
        The covariate rows, aligned with ``z`` (padded with 0).
    ahead : (torch.Tensor of shape (n_ahead,) on the device, int), optional
        Columns of ``covariates`` seen at ``t+1 .. t+H`` (the future-known ones, numeric first) and
        how many are numeric.
    """

    spec: FeatureSpec
    offsets: dict  # feature group -> slice or device index into a window of context + horizon + 1
    device: torch.device
    z: torch.Tensor
    observed: torch.Tensor
    start: torch.Tensor
    size: torch.Tensor
    back: torch.Tensor
    first_target: torch.Tensor
    pad: torch.Tensor
    n_steps: torch.Tensor
    warmup: torch.Tensor
    n_steps_host: np.ndarray
    warmup_host: np.ndarray
    has_target: np.ndarray
    step_start: np.ndarray
    covariates: torch.Tensor | None = None
    ahead: tuple | None = None

    @property
    def n_streams(self) -> int:
        """Number of streams (rows)."""
        return len(self.n_steps_host)

    def to_device(self, host: np.ndarray | torch.Tensor) -> torch.Tensor:
        """A host array or tensor (a batch's rows, per-stream facts) on the compute device."""
        return torch.as_tensor(host).to(self.device, non_blocking=True)

    def rows(self, index, first, span: int):
        """``z, level, obs, covariates`` of the rows ``index`` from column ``first`` on, ``span`` wide.

        ``index`` is a host array or tensor of rows, ``first`` an int or a host ``(batch,)`` tensor;
        columns past a row's end are padding. Returns ``(batch, span)`` tensors on the device
        (covariates ``(batch, span, n_covariates)`` or None). The level is the mean of the observed
        values among the last ``season_length`` (fewer at the series' start); where there is none,
        ``z`` itself, which the encoder filled with the carried level.
        """
        index = torch.as_tensor(index)
        extra = self.spec.season_length - 1  # the level's window reaches back this far
        columns = torch.arange(-extra, span)[None] + (
            first[:, None] if torch.is_tensor(first) else first
        )  # (batch or 1, extra + span)
        # Gather the rows on the host, then move only them: the device never holds the panel.
        inside = (columns < self.size[index, None]) & (columns >= -self.back[index, None])
        at = (self.start[index, None] + columns).clamp(0, max(len(self.z) - 1, 0))
        values, seen = self.z[at], self.observed[at] & inside
        own = slice(extra, None)
        z = torch.where(inside[:, own], values[:, own], self.pad[index, None])
        obs = seen[:, own] & (columns[:, own] >= self.first_target[index, None])
        covariates = None
        if self.covariates is not None:
            covariates = self.to_device(torch.where(inside[:, own, None], self.covariates[at[:, own]], 0.0))
        values, seen, z, obs = (self.to_device(part) for part in (values, seen, z, obs))
        sums = torch.where(seen, values, 0.0).double().cumsum(1)
        counts = seen.cumsum(1)
        sums = torch.cat([torch.zeros_like(sums[:, :1]), sums], 1)
        counts = torch.cat([torch.zeros_like(counts[:, :1]), counts], 1)
        m = extra + 1
        window, n = sums[:, m:] - sums[:, :-m], counts[:, m:] - counts[:, :-m]  # (batch, span)
        level = torch.where(n > 0, window / n.clamp_min(1), z.double()).float()
        return z, level, obs, covariates

    def chunk_has_target(self, rows: np.ndarray, chunk: int, n_chunks: int) -> np.ndarray:
        """Whether each of the ``n_chunks`` chunks of the streams ``rows`` has a target (host)."""
        first = self.step_start[rows]  # (batch,)
        steps = np.arange(n_chunks * chunk)
        inside = steps < self.n_steps_host[rows, None]
        flags = self.has_target[np.where(inside, first[:, None] + steps, 0)] & inside
        return flags.reshape(len(rows), n_chunks, chunk).any(axis=(0, 2))

    def windows(self, lookback: int) -> np.ndarray:
        """``(stream, last step)`` of every window of ``lookback`` steps with a target (host)."""
        return window_ends(self.has_target, self.n_steps_host, lookback)


def build_streams(
    arrays,
    plan: StreamPlan,
    spec: FeatureSpec,
    chunk: int,
    device,
    covariates=None,
    ahead=None,
    lengths: np.ndarray | None = None,
    target_from: np.ndarray | None = None,
) -> Streams:
    """Lay the per-series ``(filled, observed)`` arrays out as streams (once, in host memory) for ``device``.

    Step ``k`` of series ``i`` is time ``spec.context + k``; ``plan`` says which steps each stream
    covers. Each row holds the context before its first step, its steps and the targets after
    them, as far as the series goes. ``covariates`` (per series ``(rows, n_covariates)``, row ``r``
    at time ``r`` like the arrays) are laid out the same way; ``ahead`` gives the columns seen at
    ``t+1 .. t+H``, numeric ones first, and how many are numeric. ``arrays`` may compute each series
    when asked (``codec.SeriesArrays``); ``lengths`` then says how long each series' arrays are.
    ``target_from`` (per series, default 0) is the first time whose value may be a target.
    """
    t0, h = spec.context, spec.horizon
    if lengths is None:
        lengths = np.array([len(a[0]) for a in arrays], dtype=np.int64)
    if covariates is not None:  # at a forecast, future-known rows reach past the last value
        lengths = np.maximum(lengths, [len(c) for c in covariates])
    # Each series is stored once, as far as its last stream reads; its streams are views of it.
    ends = np.zeros(len(lengths), dtype=np.int64)
    np.maximum.at(ends, plan.series, plan.start + plan.n_steps + t0 + h)
    stored = np.minimum(lengths, ends)  # (n_series,)
    bases = np.concatenate([[0], np.cumsum(stored)[:-1]]).astype(np.int64)
    starts = bases[plan.series] + plan.start  # (n_streams,)
    sizes = np.minimum(stored[plan.series] - plan.start, plan.n_steps + t0 + h)
    target_from = np.zeros(len(lengths), dtype=np.int64) if target_from is None else target_from
    z, observed, pad, has_target = _stream_rows(arrays, plan, t0, h, bases, stored, target_from)
    back = np.minimum(plan.start, spec.season_length - 1)
    rows = None
    if covariates is not None:
        rows = np.zeros((len(z), covariates[0].shape[1]), dtype=np.float32)
        for i, (base, size) in enumerate(zip(bases, stored, strict=True)):
            piece = covariates[i][:size]
            rows[base : base + len(piece)] = piece
        rows = torch.from_numpy(rows)
        if ahead is not None:  # (columns, n_numeric); no future-known columns: None
            ahead = (torch.as_tensor(ahead[0], device=device), ahead[1]) if ahead[0] else None
    n_steps, warmup = plan.n_steps.astype(np.int64), plan.warmup.astype(np.int64)
    host = lambda a: torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    return Streams(
        spec,
        _selectors(spec, device),
        torch.device(device),
        host(z),
        host(observed),
        host(starts.astype(np.int64)),
        host(sizes.astype(np.int64)),
        host(back.astype(np.int64)),
        host((target_from[plan.series] - plan.start).astype(np.int64)),
        host(pad[plan.series]),
        host(n_steps),
        host(warmup),
        n_steps,
        warmup,
        has_target,
        np.cumsum(plan.n_steps) - plan.n_steps,
        rows,
        ahead,
    )


def _stream_rows(
    arrays, plan: StreamPlan, t0: int, h: int, bases: np.ndarray, stored: np.ndarray, target_from: np.ndarray
):
    """The flat float32 ``z``, ``observed``, each series' padding and the steps' "has a target".

    Series by series (``stored[i]`` values from ``bases[i]``), written straight into float32 arrays,
    so the host never holds a float64 copy of the panel. Each series is shifted by the mean of its
    ``z`` after the context: the features are differences, and values near 0 keep float32 exact
    enough; its padding is ``-shift`` (a 0 before the shift). ``has_target`` follows the streams.
    """
    total = int(stored.sum())
    z, observed = np.empty(total, dtype=np.float32), np.empty(total, dtype=bool)
    pad = np.zeros(len(stored), dtype=np.float32)
    has_target = np.zeros(int(plan.n_steps.sum()), dtype=bool)
    first_step, last_series = 0, -1
    for i, start, n, warm in zip(plan.series, plan.start, plan.n_steps, plan.warmup, strict=True):
        if i != last_series:  # the streams of a series come one after the other
            last_series, at, size = i, bases[i], stored[i]
            z_i, observed_i = (part[:size] for part in arrays[i])
            scored = z_i[t0:size]  # its steps (and the targets after the last one)
            shift = float(scored.mean()) if len(scored) else 0.0
            end, stop = at + len(z_i), at + size  # values, then covariate rows only (padding)
            z[at:end], observed[at:end] = z_i - shift, observed_i
            z[end:stop], observed[end:stop] = -shift, False
            pad[i] = -shift
            targets = observed_i & (np.arange(len(z_i)) >= target_from[i])
            seen = np.concatenate([[0], np.cumsum(targets)])
        # Step k has a target when one of z[k + 1 .. k + h] (the series' start + t0 + k + 1 ..) is one.
        k = start + np.arange(warm, n)
        targets_ahead = seen[np.minimum(k + t0 + h + 1, len(z_i))] > seen[np.minimum(k + t0 + 1, len(z_i))]
        has_target[first_step + warm : first_step + n] = targets_ahead
        first_step += n
    return z, observed, pad, has_target


def chunk_features(spec: FeatureSpec, off: dict, z: torch.Tensor, level: torch.Tensor, obs: torch.Tensor):
    """Raw features, targets and target mask of ``C`` consecutive steps.

    Parameters
    ----------
    spec : FeatureSpec
    off : dict of str -> slice or torch.Tensor
        Where each feature group reads in a window of ``context + horizon + 1`` values
        (``Streams.offsets``): a slice when its offsets are consecutive (a view, no copy), else a
        device index tensor.
    z, level, obs : torch.Tensor of shape (batch, C + context + horizon)
        Row segments starting ``context`` steps before the first step.

    Returns
    -------
    x : (batch, C, n_features), y : (batch, C, horizon), mask : (batch, C, horizon), unscaled.
    """
    t0, h = spec.context, spec.horizon
    steps = z.shape[1] - t0 - h
    win = z.unfold(1, t0 + h + 1, 1)  # (batch, C, t0 + h + 1) view; column j = offset j - t0
    lev = level[:, t0 : t0 + steps, None]  # (batch, C, 1)
    relative = [win[..., off[group]] - lev for group in ("lags", "long") if group in off]
    changes = [lev - level[:, t0 - lag : t0 - lag + steps, None] for lag in spec.level_lags()]
    x = torch.cat([*relative, *changes], -1)  # (batch, C, features)
    y = win[..., off["targets"]] - win[..., off["base"]]  # targets - seasonal naive: (batch, C, h)
    return x, y, obs.unfold(1, t0 + h + 1, 1)[..., off["targets"]]


def _base(streams: Streams):
    """The seasonal naive's columns as :func:`step_inputs` reads them: a slice, or host runs."""
    return streams.offsets.get("base_runs", streams.offsets["base"])


def _selectors(spec: FeatureSpec, device) -> dict:
    """Each feature group's offsets as a slice of the window when they allow one, else an index."""
    selectors = {}
    for group, offsets in spec.offsets().items():
        columns = offsets + spec.context
        if (np.diff(columns) == 1).all():
            selectors[group] = slice(int(columns[0]), int(columns[-1]) + 1)
        elif group == "base" and (columns == columns[0]).all():  # one column, broadcast over h
            selectors[group] = slice(int(columns[0]), int(columns[0]) + 1)
        else:
            selectors[group] = torch.as_tensor(columns, device=device)
            if group == "base":  # the covariate changes read it run by run, from the host
                selectors["base_runs"] = base_runs(columns, len(columns))
    return selectors


@dataclass
class Scales:
    """Global divisors of the features ``(n_features,)`` and of the targets ``()`` (device)."""

    features: torch.Tensor
    target: torch.Tensor

    @classmethod
    def identity(cls, spec: FeatureSpec, device) -> Scales:
        return cls(torch.ones(spec.n_features, device=device), torch.ones((), device=device))


def stream_chunks(
    streams: Streams, rows: np.ndarray, chunk: int, scales: Scales, n_chunks=None, has_target=None
):
    """Yield ``(x, y, mask, trainable)`` for the consecutive chunks of the streams ``rows``.

    ``x`` is ``(batch, C, n_features)``, ``y`` and ``mask`` are ``(batch, C, horizon)``; warm-up
    steps, padding and missing targets are masked. ``trainable`` (a host bool, known without a sync)
    says whether the chunk has any unmasked target. ``n_chunks`` (default: as many as the longest
    of the streams needs) may ask for more, all padding; ``has_target`` (one flag a chunk) when the
    caller knows it already.
    """
    spec = streams.spec
    t0, h = spec.context, spec.horizon
    if n_chunks is None:
        n_chunks = math.ceil(int(streams.n_steps_host[rows].max()) / chunk)
    z, level, obs, covariates = streams.rows(rows, 0, t0 + max(n_chunks, 1) * chunk + h)  # (batch, width)
    n_steps = streams.to_device(streams.n_steps_host[rows, None])  # (batch, 1)
    warmup = streams.to_device(streams.warmup_host[rows, None])
    if has_target is None:
        has_target = streams.chunk_has_target(rows, chunk, n_chunks)
    for k in range(n_chunks):
        c0 = k * chunk
        cut = slice(c0, c0 + chunk + t0 + h)
        x, y, mask = chunk_features(spec, streams.offsets, z[:, cut], level[:, cut], obs[:, cut])
        step = torch.arange(c0, c0 + chunk, device=z.device)
        mask = mask & ((step >= warmup) & (step < n_steps))[..., None]  # (batch, C, horizon)
        x = x.div_(scales.features)  # a fresh tensor
        if covariates is not None:
            x = step_inputs(x, covariates[:, cut], t0, h, streams.ahead, _base(streams))
        yield x, y.div_(scales.target), mask, bool(has_target[k])


def window_chunk(streams: Streams, ends: torch.Tensor, lookback: int, scales: Scales):
    """Features of the windows ending at ``ends`` ``(batch, 2)`` = (stream, last step; host), on the device.

    Returns ``x (batch, lookback, n_features)`` and the last step's ``y`` and ``mask``
    ``(batch, 1, horizon)``. Only the sampled windows are cut out of the streams (:meth:`Streams.rows`).
    """
    spec = streams.spec
    span = lookback + spec.context + spec.horizon
    ends = torch.as_tensor(ends)
    rows, start = ends[:, 0], ends[:, 1] - (lookback - 1)  # (batch,)
    z, level, obs, covariates = streams.rows(rows, start, span)  # (batch, span)
    x, y, mask = chunk_features(spec, streams.offsets, z, level, obs)
    x = x / scales.features
    if covariates is not None:
        x = step_inputs(x, covariates, spec.context, spec.horizon, streams.ahead, _base(streams))
    return x, y[:, -1:] / scales.target, mask[:, -1:]


def feature_moments(streams: Streams, chunk: int, batch_size: int, group=None) -> Scales:
    """Per-feature standard deviation (+1e-3) over the real steps and the target standard deviation.

    One pass over the streams on the device, summing in float64; one host sync at the end. With
    ``group`` (:class:`~tsforecast.nn.distributed.Group`) the sums run over every process's streams.
    """
    device = streams.device
    identity = Scales.identity(streams.spec, device)
    sums = torch.zeros(3, streams.spec.n_features, dtype=torch.float64, device=device)
    target = torch.zeros(3, dtype=torch.float64, device=device)
    for start in range(0, streams.n_streams, batch_size):
        rows = np.arange(start, min(start + batch_size, streams.n_streams))
        n_steps = streams.to_device(streams.n_steps_host[rows, None])
        for k, (x, y, mask, _) in enumerate(stream_chunks(streams, rows, chunk, identity)):
            step = torch.arange(k * chunk, (k + 1) * chunk, device=device)
            real = (step < n_steps)[..., None].double()  # (batch, C, 1)
            x, y = x[..., : streams.spec.n_features].double(), y.double()  # covariates come scaled
            sums += torch.stack(
                [real.sum((0, 1)).expand_as(sums[0]), (x * real).sum((0, 1)), (x * x * real).sum((0, 1))]
            )
            w = mask.double()
            target += torch.stack([w.sum(), (y * w).sum(), (y * y * w).sum()])
    if group is not None:  # the scales of the whole panel, as one process computes them
        sums = group.reduce(sums, what="the feature scales")
        target = group.reduce(target, what="the feature scales")
    count, first, second = sums.unbind(0)
    count = count.clamp_min(1)
    feature_std = (second / count - (first / count) ** 2).clamp_min(0).sqrt() + 1e-3
    n = target[0].clamp_min(1)
    target_std = (target[2] / n - (target[1] / n) ** 2).clamp_min(0).sqrt()
    target_std = torch.where(target_std > 1e-8, target_std, torch.ones_like(target_std))
    return Scales(feature_std.float(), target_std.float())
