"""Figures of the diagnostics report, built on :class:`matplotlib.figure.Figure` (no pyplot state)."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = [
    "gates_figure",
    "gradient_flow_figure",
    "hidden_norms_figure",
    "horizon_errors_figure",
    "training_figure",
]


def _figure(n_panels: int = 1, width: float = 7.0, height: float = 3.2):
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height * n_panels), layout="constrained")
    axes = figure.subplots(n_panels, 1, squeeze=False)[:, 0]
    return figure, axes


def gradient_flow_figure(flow: pd.DataFrame, model: str = ""):
    """Relative gradient norm against the lag, log scale."""
    figure, (ax,) = _figure()
    relative = flow["relative"].to_numpy(dtype=float)
    shown = np.where(relative > 0, relative, np.nan)  # a log axis cannot show exact zeros
    ax.plot(flow["lag"], shown, marker="." if len(flow) < 60 else None)
    ax.set_yscale("log")
    ax.set_xlabel("lag k (steps before the loss step)")
    ax.set_ylabel("|dL/dstate(t-k)| / |dL/dstate(t)|")
    ax.set_title(f"gradient flow through time {model}".strip(), fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    return figure


def gates_figure(gates: pd.DataFrame):
    """Mean activation and saturated share of each gate, per layer."""
    figure, (top, bottom) = _figure(2)
    labels = [f"L{row.layer} {row.gate}" for row in gates.itertuples(index=False)]
    x = np.arange(len(labels))
    top.bar(x, gates["mean"], yerr=gates["std"], color="C0", capsize=3)
    top.set_ylabel("mean activation")
    bottom.bar(x, gates["saturated_low"], color="C1", label="saturated low")
    bottom.bar(x, gates["saturated_high"], bottom=gates["saturated_low"], color="C3", label="saturated high")
    bottom.set_ylim(0, 1)
    bottom.set_ylabel("share of activations")
    bottom.legend(fontsize=8)
    for ax in (top, bottom):
        ax.set_xticks(x, labels, rotation=30, fontsize=8)
    top.set_title("gate statistics", fontsize=10)
    return figure


def hidden_norms_figure(norms: pd.DataFrame):
    """RMS of each layer's hidden state along the analysed window."""
    figure, (ax,) = _figure()
    for column in [c for c in norms.columns if c.startswith("layer_")]:
        ax.plot(norms["step"], norms[column], label=column.replace("_", " "))
    ax.set_xlabel("step from a zero state")
    ax.set_ylabel("RMS of h")
    ax.set_title("hidden-state norms over time", fontsize=10)
    ax.legend(fontsize=8)
    return figure


def training_figure(history: pd.DataFrame, clip_norm=None):
    """Pre-clip gradient norms (log) and the clipped share of steps, per epoch."""
    figure, (top, bottom) = _figure(2)
    if not history.empty:
        for column in ("grad_norm_mean", "grad_norm_max"):
            if column in history:
                top.plot(history["epoch"], history[column], marker=".", label=column)
        if clip_norm is not None:
            top.axhline(clip_norm, color="grey", linestyle="--", label=f"clip_norm={clip_norm:g}")
        top.set_yscale("log")
        top.legend(fontsize=8)
        if "clipped_fraction" in history:
            bottom.plot(history["epoch"], history["clipped_fraction"], marker=".", color="C3")
    top.set_ylabel("pre-clip gradient norm")
    top.set_title("training history", fontsize=10)
    bottom.set_ylim(-0.02, 1.02)
    bottom.set_ylabel("share of steps clipped")
    bottom.set_xlabel("epoch")
    return figure


def horizon_errors_figure(errors: pd.DataFrame):
    """MAE of the network and of the seasonal naive forecast per horizon step."""
    figure, (ax,) = _figure()
    if not errors.empty:
        ax.plot(errors.index, errors["mae"], marker=".", label="network")
        ax.plot(errors.index, errors["snaive_mae"], marker=".", linestyle="--", label="seasonal naive")
        ax.legend(fontsize=8)
    ax.set_xlabel("horizon step")
    ax.set_ylabel("MAE (held-out tail)")
    ax.set_title("error by horizon step", fontsize=10)
    return figure
