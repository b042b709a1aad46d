"""The current model as a reference of the gate, scored only where it is out of sample.

A model trained on data up to T has seen the actuals of every backtest window that starts before T:
scored there, it looks better than it is, and a retrained model (always scored out of sample) would
be held to an unfair standard. So the current model is scored only on the windows whose forecasts
all start after its training data (per series: the first forecast time stamp is after the last one
it was trained on; series it never saw count as out of sample), and the retrained model is compared
with it on those same windows. Windows are aligned on the series' ends, so these are the latest
ones. When there are none, the current model is left out of the comparison and the gate uses the
baselines only; the manifest says which case applied (``current_model``).

The training end comes from the model itself (the last time stamp of each series it was fitted on);
for a model that does not tell (a foreign MLflow pyfunc model), from the as-of date of the run that
kept it.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import pandas as pd

from tsforecast.pipelines.evaluation import window_summary
from tsforecast.pipelines.models import CurrentModel, load_current, training_ends

logger = logging.getLogger(__name__)

LABEL = "current"


@dataclass
class CurrentComparison:
    """How the current model took part in the backtest.

    Attributes
    ----------
    source : str
        The model file or MLflow model URI.
    windows : list of int
        Backtest windows it was scored on (numbered as in the backtest); empty when left out.
    n_windows : int
        Windows of the backtest.
    trained_to : str or None
        The end of its training data (the latest over series), when known.
    reason : str
        Why it was left out, or on which windows it was compared.
    table : pd.DataFrame or None
        The retrained model, the current model (and Naive2, for OWA) on ``windows``: what the gate
        compares.
    """

    source: str
    windows: list
    n_windows: int
    trained_to: str | None
    reason: str
    table: pd.DataFrame | None = None

    @property
    def compared(self) -> bool:
        """Whether the current model was scored (on at least one window)."""
        return self.table is not None

    def as_dict(self) -> dict:
        """The outcome for the run's manifest (JSON-friendly; the table is left out)."""
        return {
            "source": self.source,
            "compared": self.compared,
            "trained_to": self.trained_to,
            "windows": list(self.windows),
            "n_windows": self.n_windows,
            "reason": self.reason,
        }


def score_current(
    result,
    source: str,
    *,
    model_label: str,
    naive2: str | None,
    compare,
    y,
    horizon: int,
    n_windows: int,
    step: int,
    tracking_uri: str | None = None,
    fallback_end=None,
    **options,
):
    """Add the current model to a backtest on its out-of-sample windows.

    Parameters
    ----------
    result : BacktestResult
        The backtest of the retrained model and the baselines.
    source : str
        The current model's file or MLflow URI.
    model_label : str
        The retrained model's label in ``result``.
    naive2 : str or None
        The label of the Naive2 baseline (for OWA), if any.
    compare : callable
        :func:`tsforecast.backtesting.compare`, called with ``y``, ``horizon``, ``step`` and
        ``**options`` on the out-of-sample windows only.
    y, horizon, n_windows, step
        The backtest's history and windows.
    tracking_uri : str, optional
        Store that resolves an MLflow model URI.
    fallback_end : pd.Timestamp, optional
        The last moment the run that kept the model could have trained on (its as-of), used when the
        model does not tell its own training end.

    Returns
    -------
    result : BacktestResult
        With a ``current`` row on its windows, or unchanged.
    comparison : CurrentComparison
    """
    ends = training_ends(load_current(source, tracking_uri))
    starts = _first_targets(result.forecasts)
    windows, trained_to = _out_of_sample(starts, ends, fallback_end)
    if not windows:
        latest = starts["ds"].max()
        reason = (
            f"trained on data up to {trained_to}, and no backtest window starts after that (the latest "
            f"starts at {latest}): scored there it would be in sample. The gate uses the baselines only."
            if trained_to is not None
            else "its training end is unknown, so no window can be shown to be out of sample. The gate "
            "uses the baselines only."
        )
        logger.warning("not comparing with the current model %s: %s", source, reason)
        return result, CurrentComparison(source, [], n_windows, trained_to, reason)
    scored = compare({LABEL: CurrentModel(source, tracking_uri)}, y, horizon, len(windows), step, **options)
    merged = _merge(result, scored, windows[0])
    labels = [model_label, LABEL] + ([naive2] if naive2 else [])
    table = window_summary(merged.per_series, windows, labels, naive2)
    if "owa" in merged.summary and "owa" in table:
        merged.summary.loc[LABEL, "owa"] = table.loc[LABEL, "owa"]
    shown = ", ".join(map(str, windows))
    reason = (
        f"trained on data up to {trained_to}; scored on window(s) {shown} of {n_windows}, whose forecasts "
        f"start after that, and compared with {model_label} on the same window(s)"
    )
    logger.info("current model %s: %s", source, reason)
    return merged, CurrentComparison(source, windows, n_windows, trained_to, reason, table)


def _first_targets(forecasts: pd.DataFrame) -> pd.DataFrame:
    """``window, unique_id, ds`` of each window's first forecast step (identical for every model)."""
    first = forecasts[(forecasts["model"] == forecasts["model"].iloc[0]) & (forecasts["step"] == 1)]
    return first[["window", "unique_id", "ds"]]


def _out_of_sample(starts: pd.DataFrame, ends: dict | None, fallback_end) -> tuple[list, str | None]:
    """The latest windows whose every series starts after the model's training data, and its end."""
    if ends is None and fallback_end is None:
        return [], None
    pairs = zip(starts["unique_id"], starts["ds"], strict=True)
    try:
        if ends is not None:
            after = [sid not in ends or start > ends[sid] for sid, start in pairs]
            trained_to = str(max(ends.values()))
        else:
            after = [start > fallback_end for _, start in pairs]
            trained_to = str(fallback_end)
    except TypeError:  # time stamps of another kind than the model's (integers, another time zone)
        return [], None
    eligible = pd.Series(after, dtype=bool).groupby(starts["window"].to_numpy()).all()
    windows = []
    for window in sorted(eligible.index, reverse=True):  # the latest ones, contiguous
        if not eligible[window]:
            break
        windows.insert(0, int(window))
    return windows, trained_to


def _merge(result, scored, first_window: int):
    """``result`` with the rows of ``scored`` (the current model), its windows renumbered."""
    forecasts = scored.forecasts.assign(window=scored.forecasts["window"] + first_window)
    per_series = scored.per_series.rename(index=lambda w: w + first_window, level="window")
    return dataclasses.replace(
        result,
        forecasts=pd.concat([result.forecasts, forecasts], ignore_index=True),
        per_series=pd.concat([result.per_series, per_series]),
        by_horizon=pd.concat([result.by_horizon, scored.by_horizon]),
        summary=pd.concat([result.summary, scored.summary]),
    )


__all__ = ["CurrentComparison", "score_current"]
