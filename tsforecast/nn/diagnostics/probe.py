"""Running a fitted forecaster's network over data windows and measuring what happens inside.

One pass over one window per series gives three of the diagnostics:

* **gradient flow through time**: the window ends at the last step ``e`` of the series whose
  forecast targets are all observed; the network starts from a zero state ``warmup`` steps before
  ``e - max_lag`` (the warm-up runs without gradients), then :func:`~.cells.unroll` adds a zero
  probe to the state after each of the last ``max_lag + 1`` steps. The gradient of the training
  loss at step ``e`` (the forecaster's own loss: absolute or pinball, in its scaled space) with
  respect to the probe ``k`` steps before ``e`` is the gradient with respect to the state that
  crossed that step boundary (``h``, and ``c`` for the LSTM, all layers). Its L2 norm per series,
  averaged over series, is the gradient flow at lag ``k``;
* **gate statistics** over all steps of the windows (:mod:`.cells` documents the gates);
* **hidden-state norms**: the root mean square of each layer's ``h`` at each step of the window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from tsforecast.exceptions import InvalidInputError
from tsforecast.nn.codec import PREDICT_CHUNK
from tsforecast.nn.covariates import select_series
from tsforecast.nn.diagnostics.cells import GATES, unroll
from tsforecast.nn.streams import stream_chunks, window_chunk

__all__ = ["Analysis", "Windows", "analyse_windows", "panel_forecasts", "probe_windows"]

SATURATION = 0.05  # a sigmoid gate below 0.05 or above 0.95 (|tanh| above 0.95) is saturated


@dataclass
class Windows:
    """Feature windows of the analysed series, on the forecaster's device.

    Attributes
    ----------
    x : torch.Tensor of shape (series, warmup + max_lag + 1, n_features)
        The network's inputs (with covariates: their columns too, :mod:`tsforecast.nn.modules`).
    y, mask : torch.Tensor of shape (series, 1, horizon)
        Scaled targets of the window's last step and whether each is observed.
    ids : list
        The analysed series.
    warmup, max_lag : int
    """

    x: torch.Tensor
    y: torch.Tensor
    mask: torch.Tensor
    ids: list
    warmup: int
    max_lag: int


def probe_windows(
    forecaster, panel, scaler, max_lag: int, warmup: int, max_series: int, covariates=None
) -> Windows:
    """One window per usable series (at most ``max_series``, evenly spread over the panel).

    A series is usable when its last fully observed forecast step lies at least ``max_lag`` steps
    after its first step with complete features.
    """
    codec = forecaster.codec_
    spec = codec.spec
    horizon = spec.horizon
    n_steps = panel.lengths - spec.context - 1  # steps with at least one target
    last = np.where(n_steps >= horizon, n_steps - horizon, n_steps - 1)  # last step, targets in the data
    usable = np.flatnonzero(last >= max_lag)
    if len(usable) == 0:
        longest = int(panel.lengths.max())
        need = spec.context + 1 + horizon + max_lag
        fits = max(longest - need + max_lag, 0)
        raise InvalidInputError(
            f"no series is long enough for the gradient flow over max_lag={max_lag} steps: it needs "
            f"{need} observations (context {spec.context} + horizon {horizon} + max_lag + 1), the "
            f"longest series has {longest}. Pass a longer history or max_lag <= {fits}."
        )
    if len(usable) > max_series:
        usable = usable[np.linspace(0, len(usable) - 1, max_series).round().astype(int)]
    warmup = int(min(warmup, (last[usable] - max_lag).min()))
    span = warmup + max_lag + 1
    values, ids = [panel.values[i] for i in usable], [panel.ids[i] for i in usable]
    chosen = select_series(covariates, usable)
    streams = codec.encode(values, ids, span, scaler=scaler.subset(usable), covariates=chosen).streams
    ends = np.stack([np.arange(len(usable)), last[usable]], axis=1)
    x, y, mask = window_chunk(streams, ends, span, codec.scales)  # x (series, span, features)
    return Windows(x, y, mask, [panel.ids[i] for i in usable], warmup, max_lag)


@dataclass
class Analysis:
    """The three tables of one pass (see the module docstring)."""

    gradient_flow: pd.DataFrame
    gates: pd.DataFrame
    hidden_norms: pd.DataFrame


def analyse_windows(network, windows: Windows, levels: tuple) -> Analysis:
    """Gradient flow, gate statistics and hidden-state norms of ``network`` on ``windows``.

    Parameters
    ----------
    network : RecurrentNetwork
        Left untouched: no parameter gradient is accumulated and the mode is restored.
    windows : Windows
    levels : tuple of float
        The forecaster's quantile levels (the loss is the pinball loss over them).
    """
    was_training = network.training
    network.eval()
    try:
        with torch.no_grad():
            inputs = network.recurrent_inputs(windows.x[:, : windows.warmup])  # (series, warmup, width)
            warm = unroll(network, inputs, record_gates=True) if windows.warmup else None
        with torch.enable_grad():
            flow, tail = _gradient_flow(network, windows, levels, None if warm is None else warm.state)
    finally:
        network.train(was_training)
    parts = [p for p in (warm, tail) if p is not None]
    hidden = [torch.cat([p.hidden[k] for p in parts], dim=1).detach() for k in range(len(tail.hidden))]
    gates = [torch.cat([p.gates[k] for p in parts], dim=1).detach() for k in range(len(tail.gates))]
    return Analysis(flow, _gate_table(network.cell, gates), _hidden_table(hidden))


def _gradient_flow(network, windows: Windows, levels: tuple, state):
    raw = windows.x[:, windows.warmup :]  # (series, max_lag + 1, features)
    x = network.recurrent_inputs(raw)  # (series, max_lag + 1, width): the embedded codes too
    n_layers = len(network.layers) * network.layers[0].num_layers
    shape = (n_layers, x.shape[0], x.shape[1], network.layers[0].hidden_size)
    probes = tuple(
        torch.zeros(shape, device=x.device, requires_grad=True)
        for _ in range(2 if network.cell == "lstm" else 1)
    )
    run = unroll(network, x, state, probes, record_gates=True)
    out = network.head_outputs(run.outputs[:, -1:], raw[:, -1:], x[:, -1:])[:, 0]  # (series, outputs)
    loss = _per_series_loss(out, windows.y[:, 0], windows.mask[:, 0], levels)  # (series,)
    grads = torch.autograd.grad(loss.sum(), probes)  # each (layers, series, max_lag + 1, hidden)
    squared = sum(g.pow(2).sum(dim=(0, 3)) for g in grads)  # (series, max_lag + 1)
    norms = squared.sqrt().flip(1)  # column k: k steps before the loss step
    scored = windows.mask[:, 0].any(dim=1)  # series whose last step has a target
    per_lag = (
        norms[scored].mean(dim=0).double().cpu().numpy() if bool(scored.any()) else np.zeros(norms.shape[1])
    )
    table = pd.DataFrame({"lag": np.arange(len(per_lag)), "grad_norm": per_lag})
    table["relative"] = table["grad_norm"] / table["grad_norm"].iloc[0] if per_lag[0] > 0 else np.nan
    return table, run


def _per_series_loss(out, y, mask, levels: tuple) -> torch.Tensor:
    """Twice the pinball loss (the absolute error for the median alone) averaged per series."""
    q = torch.as_tensor(levels, dtype=out.dtype, device=out.device)
    pred = out.unflatten(-1, (y.shape[-1], len(levels)))  # (series, horizon, levels)
    error = y[..., None] - pred
    pinball = torch.maximum(q * error, (q - 1) * error).mean(-1) * 2  # (series, horizon)
    weight = mask.to(pinball.dtype)
    return (pinball * weight).sum(-1) / weight.sum(-1).clamp_min(1)


def _gate_table(cell: str, gates: list) -> pd.DataFrame:
    rows = []
    for k, layer_gates in enumerate(gates):  # (series, steps, G, hidden)
        for j, (name, activation) in enumerate(GATES[cell]):
            values = layer_gates[:, :, j].double()
            if activation == "sigmoid":
                low, high = values < SATURATION, values > 1 - SATURATION
            else:
                low, high = values < -1 + SATURATION, values > 1 - SATURATION
            rows.append(
                {
                    "layer": k + 1,
                    "gate": name,
                    "activation": activation,
                    "mean": float(values.mean()),
                    "std": float(values.std()),
                    "saturated_low": float(low.double().mean()),
                    "saturated_high": float(high.double().mean()),
                }
            )
    table = pd.DataFrame(rows)
    table["saturated"] = table["saturated_low"] + table["saturated_high"]
    return table


def _hidden_table(hidden: list) -> pd.DataFrame:
    span = hidden[0].shape[1]
    table = pd.DataFrame({"step": np.arange(span), "lag": np.arange(span)[::-1]})
    for k, h in enumerate(hidden):  # (series, steps, hidden)
        rms = h.pow(2).mean(dim=2).sqrt().mean(dim=0)  # (steps,)
        table[f"layer_{k + 1}"] = rms.double().cpu().numpy()
    return table


@torch.no_grad()
def panel_forecasts(forecaster, panel, scaler, covariates=None, batch_size: int = 4096) -> list:
    """The median forecasts made at every step of every series of ``panel``, in one pass.

    Returns one array per series of shape ``(length, horizon)``; see
    :func:`~tsforecast.nn.diagnostics.step_forecasts`.
    """
    codec, network = forecaster.codec_, forecaster.network_
    spec, median = codec.spec, forecaster.quantile_levels_.index(0.5)
    encoded = codec.encode(
        panel.values, panel.ids, PREDICT_CHUNK, forecast=True, scaler=scaler, covariates=covariates
    )
    n_steps = panel.lengths - spec.context  # step k forecasts from time context + k
    network.eval()
    results = []
    for start in range(0, panel.n_series, batch_size):
        rows = np.arange(start, min(start + batch_size, panel.n_series))
        state, outputs = None, []
        for x, *_ in stream_chunks(encoded.streams, rows, PREDICT_CHUNK, codec.scales):
            out, state = network(x, state)  # (batch, chunk, horizon * levels)
            outputs.append(out.float())
        out = torch.cat(outputs, dim=1)  # (batch, steps, horizon * levels)
        for row, i in enumerate(rows):
            steps = int(n_steps[i])
            times = spec.context + np.arange(steps)
            base = codec.base([encoded.series[i][0]], times)  # (1, steps, horizon)
            forecast = codec.decode(out[row : row + 1, :steps], base, scaler.subset([i]))[0, ..., median]
            full = np.full((int(panel.lengths[i]), spec.horizon), np.nan)
            full[times] = forecast
            results.append(full)
    return results
