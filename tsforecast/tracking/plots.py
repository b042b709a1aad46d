"""Figures logged as PNG artifacts: forecasts against actuals, error by horizon step, training curves.

Figures are built on :class:`matplotlib.figure.Figure` directly (Agg canvas, no pyplot), so they
touch no global matplotlib state and need no display.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

_TRAINING_PANELS = (
    ("loss", ("train_loss", "val_loss"), "linear"),
    ("gradient norm (pre-clip)", ("grad_norm_mean", "grad_norm_max"), "log"),
    ("fraction of steps clipped", ("clipped_fraction",), "linear"),
    ("learning rate", ("learning_rate",), "log"),
)


def forecast_figure(actual: pd.DataFrame, forecasts: pd.DataFrame, n_series: int = 4):
    """Actuals and forecasts of the first ``n_series`` series, one panel each.

    Each model's forecasts of each window are drawn by :func:`tsforecast.plotting.plot_forecasts`,
    with a shaded band for every interval their columns carry.

    Parameters
    ----------
    actual : pd.DataFrame
        ``unique_id, ds, value``: what happened (the history's tail, or a backtest's actuals).
    forecasts : pd.DataFrame
        ``model, window, unique_id, ds, value``: one line per model and window, and optionally the
        interval bounds of ``predict(level=...)`` (``y_lo_80``, ``y_hi_80``...) or quantile columns
        (``q0.1``...), drawn as bands.
    n_series : int
        Panels drawn.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    from tsforecast.data import Columns
    from tsforecast.plotting import plot_forecasts

    ids = list(pd.unique(actual["unique_id"]))[:n_series]
    figure = Figure(figsize=(9, 2.4 * len(ids)), layout="constrained")
    axes = dict(zip(ids, figure.subplots(len(ids), 1, squeeze=False)[:, 0], strict=True))
    for uid, ax in axes.items():
        truth = actual[actual["unique_id"] == uid]
        ax.plot(_x(truth["ds"]), truth["value"], color="C0", label="actual")
    columns = Columns(pred_col="value")
    colours = {model: f"C{k + 1}" for k, model in enumerate(pd.unique(forecasts["model"]))}
    labelled = set()
    shown = forecasts[forecasts["unique_id"].isin(ids)]
    for (model, _), lines in shown.groupby(["model", "window"], sort=False):
        drawn = [uid for uid in ids if uid in set(lines["unique_id"])]
        first = ids[0] in drawn and model not in labelled  # the legend is the first panel's
        labelled.update([model] if first else [])
        plot_forecasts(
            None,
            lines.drop(columns=["model", "window"]).dropna(axis=1, how="all"),  # no bands of others
            ids=drawn,
            columns=columns,
            ax=[axes[uid] for uid in drawn],
            color=colours[model],
            label=str(model) if first else f"_{model}",  # one legend entry per model
        )
    for uid, ax in axes.items():
        ax.set_title(f"series {uid}", fontsize=9)
    next(iter(axes.values())).legend(fontsize=8, loc="best")
    return figure


def horizon_figure(by_horizon: pd.DataFrame):
    """Each metric against the horizon step, one line per model.

    Parameters
    ----------
    by_horizon : pd.DataFrame
        Indexed by ``(model, step)``, one column per metric (``BacktestResult.by_horizon``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    metrics = list(by_horizon.columns)
    figure = Figure(figsize=(4 * len(metrics), 3.2), layout="constrained")
    axes = figure.subplots(1, len(metrics), squeeze=False)[0]
    for ax, metric in zip(axes, metrics, strict=True):
        for model, rows in by_horizon[metric].groupby(level="model", sort=False):
            ax.plot(rows.index.get_level_values("step"), rows.to_numpy(), marker="o", label=model)
        ax.set_title(f"{metric} by horizon step", fontsize=9)
        ax.set_xlabel("step")
    axes[0].legend(fontsize=8)
    return figure


def training_figure(history: pd.DataFrame, validation: str | None = None):
    """Loss, pre-clip gradient norm, clipping rate and learning rate against the epoch.

    Parameters
    ----------
    history : pd.DataFrame
        One row per epoch with an ``epoch`` column and any of the training-record columns.
    validation : str, optional
        What the validation loss is measured on (``tsforecast.tracking.epochs.validation_note``);
        written in the loss panel when that panel has no validation curve, so that its absence
        reads as a setting (``"none (validation_size=0)"``), not as a logging gap.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    panels = [panel for panel in _TRAINING_PANELS if any(c in history for c in panel[1])]
    rows = max(1, -(-len(panels) // 2))
    figure = Figure(figsize=(10, 3.2 * rows), layout="constrained")
    axes = figure.subplots(rows, 2, squeeze=False).ravel()
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    for ax, (title, columns, scale) in zip(axes, panels, strict=False):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        for column in (c for c in columns if c in history):
            values = pd.to_numeric(history[column], errors="coerce")
            if values.notna().any():
                ax.plot(history["epoch"], values, marker=".", label=column)
        if ax.get_lines():
            ax.legend(fontsize=8)
            if scale == "log" and np.nanmin(_y(ax)) > 0:
                ax.set_yscale("log")
        if "val_loss" in columns and validation is not None and not _has_line(ax, "val_loss"):
            title = f"{title}\nvalidation loss: {validation}"
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("epoch")
    return figure


def _x(values: pd.Series):
    """Periods as time stamps: matplotlib plots datetimes and numbers, not periods."""
    if isinstance(values.dtype, pd.PeriodDtype):
        return values.dt.to_timestamp()
    return values


def _has_line(ax, label: str) -> bool:
    return any(line.get_label() == label for line in ax.get_lines())


def _y(ax) -> np.ndarray:
    return np.concatenate([np.asarray(line.get_ydata(), dtype=float) for line in ax.get_lines()])
