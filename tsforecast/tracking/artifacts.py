"""Artifacts of a tracked fit or backtest: forecasts as parquet, tables as CSV/HTML, PNG figures.

Writers put files in a local folder that the caller uploads in one call; each figure is drawn
under ``guard`` (a context manager that reports a failure instead of raising), so one failing plot
costs only itself.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pandas as pd

from tsforecast.data import Columns
from tsforecast.plotting import forecast_bands
from tsforecast.tracking import plots
from tsforecast.tracking.epochs import validation_note


def _metric_key(*parts) -> str:
    """MLflow metric names allow letters, digits, ``_ - . :`` and spaces; ``/`` groups them."""
    return "/".join(re.sub(r"[^\w\-. :]", "_", str(part)) for part in parts)


def log_backtest_metrics(result, run_id) -> None:
    """Log a backtest's summary, and its scores per horizon step (as steps), to the run in one batch."""
    import mlflow
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    metrics = [
        Metric(_metric_key(model, metric), float(value), now, 0)
        for model, row in result.summary.iterrows()
        for metric, value in row.items()
        if pd.notna(value)
    ]
    metrics += [
        Metric(_metric_key(model, f"{metric}_by_step"), float(value), now, int(step))
        for (model, step), row in result.by_horizon.iterrows()
        for metric, value in row.items()
        if pd.notna(value)
    ]
    mlflow.MlflowClient().log_batch(run_id, metrics=metrics)


def write_fit(folder, estimator, data, history, guard, with_plots, n_series, X=None, level=None) -> None:
    """Write a fit's forecasts, training history and (``with_plots``) their figures into ``folder``.

    ``X``: the covariates of a forecaster fitted with them, reaching its horizon. ``level``: interval
    levels (percent) the forecasts carry as ``y_lo_<level>``/``y_hi_<level>`` columns, drawn as bands.
    """
    forecasts = _as_long(estimator.predict(X=X, level=level), data.columns)
    forecasts.to_parquet(folder / "forecasts.parquet", index=False)
    if history is not None:
        history.to_csv(folder / "training_history.csv", index=False)
    if not with_plots:
        return
    cols = data.columns
    with guard("forecast plot"):
        horizon = forecasts.groupby(cols.id_col).size().max()
        actual = _plot_frame(data.recent(n_series, 4 * horizon), cols, cols.target_col)
        predicted = _plot_frame(forecasts, cols, cols.pred_col, bands=True).assign(
            model=type(estimator).__name__, window=0
        )
        _save(plots.forecast_figure(actual, predicted, n_series), folder / "forecasts.png")
    if history is not None:
        with guard("training curves"):
            figure = plots.training_figure(history, validation=validation_note(estimator))
            _save(figure, folder / "training_curves.png")


def write_backtest(folder, result, guard, with_plots, n_series) -> None:
    """Write a backtest's tables, forecasts and (``with_plots``) its figures into ``folder``."""
    result.summary.to_csv(folder / "comparison.csv")
    (folder / "comparison.html").write_text(result.summary.to_html(float_format="%.4f"))
    result.by_horizon.to_csv(folder / "by_horizon.csv")
    result.forecasts.to_parquet(folder / "forecasts.parquet", index=False)
    if not with_plots:
        return
    frame = result.forecasts
    id_col, time_col = [
        c for c in frame.columns if c not in ("model", "window", "step", "actual", "forecast")
    ][:2]
    cols = Columns(id_col, time_col)
    with guard("backtest forecast plot"):
        actual = _plot_frame(frame.drop_duplicates([id_col, time_col]), cols, "actual")
        predicted = _plot_frame(frame, cols, "forecast", keep=("model", "window"), bands=True)
        _save(plots.forecast_figure(actual, predicted, n_series), folder / "forecasts.png")
    with guard("error-by-horizon plot"):
        _save(plots.horizon_figure(result.by_horizon), folder / "error_by_horizon.png")


def _as_long(forecasts, columns: Columns) -> pd.DataFrame:
    """Forecasts in any layout (Series, wide, long) as a long frame, interval bounds included."""
    if isinstance(forecasts, pd.Series):
        frame = forecasts.rename(columns.pred_col).rename_axis(columns.time_col).reset_index()
        frame.insert(0, columns.id_col, "series" if forecasts.name is None else forecasts.name)
        return frame
    if columns.id_col in forecasts.columns:
        return forecasts
    if isinstance(forecasts.columns, pd.MultiIndex):  # a wide history with intervals: (output, series)
        stacked = forecasts.stack(level=1, future_stack=True).rename_axis([columns.time_col, columns.id_col])
        frame = stacked.reset_index().dropna(subset=[columns.pred_col])
        return frame[[columns.id_col, columns.time_col, *stacked.columns]].reset_index(drop=True)
    if columns.pred_col in forecasts.columns:  # a Series history with intervals: one frame by time
        frame = forecasts.rename_axis(columns.time_col).reset_index()
        frame.insert(0, columns.id_col, "series")
        return frame
    melted = (
        forecasts.rename_axis(columns.time_col)
        .reset_index()
        .melt(id_vars=columns.time_col, var_name=columns.id_col, value_name=columns.pred_col)
    )
    return melted.dropna(subset=[columns.pred_col])[[columns.id_col, columns.time_col, columns.pred_col]]


def _plot_frame(frame, cols: Columns, value_col, keep=(), bands=False) -> pd.DataFrame:
    """The columns a figure draws; with ``bands``, the interval bounds (or quantiles) besides the line."""
    renamed = {cols.id_col: "unique_id", cols.time_col: "ds", value_col: "value"}
    bounds = [c for pair in forecast_bands(frame.columns).values() for c in pair] if bands else []
    return frame[[*keep, *renamed, *bounds]].rename(columns=renamed)


def _save(figure, path: Path) -> None:
    figure.savefig(path, dpi=100)
