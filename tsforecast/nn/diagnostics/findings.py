"""The plain-language findings of a report, and the comparison of several reports' gradient flow."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["Thresholds", "compare_gradient_flow", "describe"]


@dataclass(frozen=True)
class Thresholds:
    """When a finding speaks up.

    Attributes
    ----------
    vanishing, exploding : float
        Far/near gradient ratios below / above which the gradient is said to vanish / explode.
    weak : float
        Ratio below which gradients that do not vanish are called weak.
    saturated : float
        Share of saturated activations above which a gate is reported.
    clipped : float
        Mean share of clipped optimisation steps above which clipping is reported.
    spike : float
        A largest pre-clip gradient norm this many times the median epoch mean is a spike.
    naive_margin : float
        The network is reported when its held-out MAE exceeds the seasonal naive one by this share.
    """

    vanishing: float = 1e-3
    exploding: float = 1e3
    weak: float = 1e-2
    saturated: float = 0.5
    clipped: float = 0.5
    spike: float = 100.0
    naive_margin: float = 0.05


_GATED = "LSTMForecaster or GRUForecaster (gated cells keep gradients alive over long spans)"


def describe(report, thresholds: Thresholds) -> list:
    """Every finding of ``report``, most important first; one line says so when nothing is wrong."""
    found = _gradient_findings(report, thresholds) + _truncation_findings(report)
    found += _gate_findings(report, thresholds)
    found += _training_findings(report, thresholds)
    found += _error_findings(report, thresholds)
    return found or ["no problem found: gradients, gates, clipping and errors all look healthy."]


def _gradient_findings(report, t: Thresholds) -> list:
    flow, ratio = report.gradient_flow, report.far_near_ratio
    lag = int(flow["lag"].iloc[-1])
    if not np.isfinite(ratio):
        return [
            "the loss at the last step has no gradient with respect to the state (the head ignores it, "
            "or no analysed series has a target there): gradient flow cannot be measured."
        ]
    if ratio < t.vanishing:
        reach = _reach(flow, t.vanishing)
        advice = (
            f"consider {_GATED}"
            if report.cell == "rnn"
            else "its gates close within that span; gates initialised to remember longer (a larger "
            "forget-gate bias: chrono initialisation) or longer training can open them"
        )
        return [
            f"gradient at lag {lag} is {ratio:.0e} of lag 0 ({_orders(ratio)} orders of magnitude smaller; "
            f"it falls below {t.vanishing:g} of lag 0 after {reach} steps): the model cannot learn "
            f"dependencies this long; {advice}."
        ]
    if ratio > t.exploding:
        return [
            f"gradient at lag {lag} is {ratio:.0e} times lag 0: gradients explode through time; keep "
            f"clip_norm set (now {report.clip_norm}), lower learning_rate, or use {_GATED}."
        ]
    window = f"tbptt_steps={report.tbptt_steps}" if report.tbptt_steps else "the training window"
    if ratio < t.weak:
        return [
            f"gradient at lag {lag} is {ratio:.0e} of lag 0: weak but alive; dependencies this long are "
            "learned slowly, if at all."
        ]
    return [
        f"gradient at lag {lag} is {ratio:.2g} of lag 0: gradients cross the whole span; what limits "
        f"the memory the model can learn is {window}, since truncated back-propagation never connects "
        "steps further apart: raise it if the data has longer dependencies."
    ]


def _truncation_findings(report) -> list:
    lag = int(report.gradient_flow["lag"].iloc[-1])
    if report.tbptt_steps is None or lag <= report.tbptt_steps:
        return []
    return [
        f"the gradient flow reaches lag {lag}, beyond tbptt_steps={report.tbptt_steps}: training never "
        f"connected steps more than {report.tbptt_steps} apart, so it could not teach the network to keep "
        "information longer than that; raise tbptt_steps to learn longer dependencies."
    ]


def _reach(flow: pd.DataFrame, level: float) -> int:
    below = flow.loc[flow["relative"] < level, "lag"]
    return int(below.iloc[0]) if len(below) else int(flow["lag"].iloc[-1])


def _orders(ratio: float) -> str:
    return f"{-math.log10(ratio):.0f}" if ratio > 0 else "more than 38"


_GATE_MEANING = {
    ("forget", "high"): "the cell keeps its memory (what long dependencies need), but the gate itself "
    "barely learns",
    ("forget", "low"): "the cell forgets almost everything at every step",
    ("update", "high"): "the state is almost never updated: the layer barely reacts to its input",
    ("update", "low"): "the state is replaced at every step: no memory is carried",
    ("hidden", None): "saturated tanh units pass almost no gradient back in time; lower learning_rate "
    "or use a gated cell",
}


def _gate_findings(report, t: Thresholds) -> list:
    found = []
    for row in report.gates.itertuples(index=False):
        if row.saturated <= t.saturated:
            continue
        side = "high" if row.saturated_high >= row.saturated_low else "low"
        meaning = _GATE_MEANING.get(
            (row.gate, side),
            _GATE_MEANING.get(
                (row.gate, None), "a saturated gate passes almost no gradient to its own weights"
            ),
        )
        found.append(
            f"layer {row.layer} {row.gate} {'gate' if row.gate != 'hidden' else 'activation'} is saturated "
            f"on {row.saturated:.0%} of steps (mean {row.mean:.2f}): {meaning}."
        )
    return found


def _training_findings(report, t: Thresholds) -> list:
    history, found = report.training, []
    if history.empty:
        return found
    if "clipped_fraction" in history and history["clipped_fraction"].mean() > t.clipped:
        found.append(
            f"gradient clipping fired on {history['clipped_fraction'].mean():.0%} of the optimisation "
            f"steps (clip_norm={report.clip_norm}, median pre-clip norm "
            f"{history['grad_norm_mean'].median():.3g}): most updates are rescaled, so the learning rate "
            "alone no longer sets the step size; raise clip_norm or lower learning_rate."
        )
    typical = history["grad_norm_mean"].median() if "grad_norm_mean" in history else np.nan
    peak = history["grad_norm_max"].max() if "grad_norm_max" in history else np.nan
    if np.isfinite(typical) and typical > 0 and peak > t.spike * typical:
        epoch = int(history.loc[history["grad_norm_max"].idxmax(), "epoch"])
        found.append(
            f"exploding gradients in training: the pre-clip norm peaked at {peak:.3g} in epoch {epoch}, "
            f"{peak / typical:.0f} times the median epoch mean ({typical:.3g}); keep clip_norm set."
        )
    skipped = int(history["skipped_steps"].sum()) if "skipped_steps" in history else 0
    if skipped:
        found.append(
            f"{skipped} optimisation step(s) were skipped because the loss or the gradients were not "
            "finite; lower learning_rate or check the data for extreme values."
        )
    return found


def _error_findings(report, t: Thresholds) -> list:
    errors = report.horizon_errors
    if errors.empty or errors["snaive_mae"].isna().all():
        return []
    model, naive = errors["mae"].mean(), errors["snaive_mae"].mean()
    if model > naive * (1 + t.naive_margin):
        return [
            f"on the held-out tail the network is worse than the seasonal naive forecast it corrects "
            f"(MAE {model:.4g} vs {naive:.4g}, mean over {len(errors)} horizon steps)."
        ]
    return []


def compare_gradient_flow(reports) -> tuple:
    """Compare the far/near gradient ratios of several reports on the same data.

    Parameters
    ----------
    reports : dict of str -> DiagnosticReport
        Keyed by a name for each model.

    Returns
    -------
    table : pd.DataFrame
        One row per report: cell, the largest lag measured, far/near ratio and its log10.
    sentences : list of str
        The weakest against the strongest, in words.
    """
    rows = {
        name: {
            "cell": r.cell,
            "max_lag": int(r.gradient_flow["lag"].iloc[-1]),
            "far_near_ratio": r.far_near_ratio,
            "log10_ratio": math.log10(r.far_near_ratio) if r.far_near_ratio > 0 else -np.inf,
        }
        for name, r in reports.items()
    }
    table = pd.DataFrame.from_dict(rows, orient="index").rename_axis("model")
    finite = table[np.isfinite(table["far_near_ratio"])]
    if len(finite) < 2:
        return table, []
    low, high = finite["far_near_ratio"].idxmin(), finite["far_near_ratio"].idxmax()
    a, b = finite.loc[low, "far_near_ratio"], finite.loc[high, "far_near_ratio"]
    lags = sorted(set(finite["max_lag"]))
    at = f"lag {lags[0]}" if len(lags) == 1 else "their largest lags"
    gap = math.log10(b / a) if a > 0 else math.inf
    if gap >= 1:
        size = f"{gap:.1f} orders of magnitude" if gap >= 2 else "an order of magnitude"
        size = size if math.isfinite(gap) else "immeasurably far (it underflows to 0)"
        sentence = (
            f"{low}'s far/near gradient ratio at {at} ({a:.0e}) is {size} below {high}'s ({b:.0e}) on the "
            "same data: far less of the loss's gradient reaches the start of the span, so dependencies this "
            f"long are much harder for {low} to learn."
        )
    else:
        sentence = (
            f"the far/near gradient ratios at {at} are within a factor of 10 "
            f"({low}: {a:.0e}, {high}: {b:.0e}): no model has a gradient-flow advantage here."
        )
    return table, [sentence]
