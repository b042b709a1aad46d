"""The quality gate, the test-set evaluation, and the plain-text tables a run prints.

Lower is better for every metric the gate compares (sMAPE, MASE, MAE, RMSE, OWA). The coverage gate
(``gate.coverage``) is absolute instead: the model's pooled backtest coverage must lie within bounds.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import pandas as pd

from tsforecast.data import Panel
from tsforecast.exceptions import InvalidInputError
from tsforecast.metrics import evaluate, owa, pooled_coverage
from tsforecast.metrics.intervals import interval_columns, interval_levels
from tsforecast.pipelines.intervals import INTERVAL_METRICS, coverage_column


@dataclass(frozen=True)
class GateDecision:
    """Whether the retrained model may replace the current one.

    Attributes
    ----------
    passed : bool
        False when ``model_score > reference_score * (1 + margin)`` (or the model has no score).
    metric : str
        The backtest metric compared.
    margin : float
        Relative tolerance: 0.05 lets the model be up to 5% worse than the reference.
    model : str
        The model's label.
    model_score : float
        Its backtest score.
    reference : str or None
        The best of the baselines (and the current model, when compared).
    reference_score : float
        Its score.
    threshold : float
        ``reference_score * (1 + margin)``.
    note : str
        On which windows the scores were taken, when not all of the backtest's.
    coverage : CoverageDecision or None
        The coverage gate's check (``gate.coverage``); ``passed`` is False when it failed.
    """

    passed: bool
    metric: str
    margin: float
    model: str
    model_score: float
    reference: str | None
    reference_score: float
    threshold: float
    note: str = ""
    coverage: CoverageDecision | None = None

    def describe(self) -> str:
        """The decision: verdict, the two scores, the threshold, the margin; then the coverage gate's."""
        extra = "" if self.coverage is None else "\n" + self.coverage.describe()
        if self.reference is None:
            return "quality gate: nothing to compare with; passed." + extra
        verdict = "passed" if _pressure(self) <= 1 else "FAILED"  # the comparison's own verdict
        note = f"; {self.note}" if self.note else ""
        return (
            f"quality gate {verdict}: {self.model} {self.metric} {self.model_score:.4f} vs best reference "
            f"{self.reference} {self.reference_score:.4f} (threshold {self.threshold:.4f} with margin "
            f"{self.margin:.0%}{note})"
        ) + extra

    def with_coverage(self, check: CoverageDecision) -> GateDecision:
        """The comparison and the coverage gate together: passed when both passed."""
        return replace(self, passed=self.passed and check.passed, coverage=check)

    def as_dict(self) -> dict:
        """The decision's fields for the run's manifest (non-finite numbers as None)."""
        fields = {key: _finite(value) for key, value in asdict(self).items() if key != "coverage"}
        return fields | ({} if self.coverage is None else {"coverage": self.coverage.as_dict()})


@dataclass(frozen=True)
class CoverageDecision:
    """Whether the model's intervals held enough of the backtest's actuals (``gate.coverage``).

    Attributes
    ----------
    passed : bool
        ``min <= coverage`` (and ``coverage <= max`` when a maximum is set).
    model : str
        The model's label.
    level : float
        The interval level, in percent.
    coverage : float
        The fraction of the backtest's actuals inside the model's ``level`` % intervals, pooled over
        every series, window and step (as M4 computed it).
    min, max : float
        The bounds required (``max`` None: no upper bound).
    """

    passed: bool
    model: str
    level: float
    coverage: float
    min: float
    max: float | None = None

    def describe(self) -> str:
        """The check as one sentence."""
        verdict = "passed" if self.passed else "FAILED"
        bounds = f"at least {self.min:.1%}" + ("" if self.max is None else f" and at most {self.max:.1%}")
        return (
            f"coverage gate {verdict}: {self.model}'s {self.level:g}% intervals held {self.coverage:.1%} of "
            f"the backtest's actuals (required: {bounds})"
        )

    def as_dict(self) -> dict:
        """The check's fields for the run's manifest (non-finite numbers as None)."""
        return {key: _finite(value) for key, value in asdict(self).items()}


def gate(
    summary: pd.DataFrame, model: str, references: list, metric: str, margin: float, note: str = ""
) -> GateDecision:
    """Compare the model's backtest score with the best of ``references``.

    Parameters
    ----------
    summary : pd.DataFrame
        ``BacktestResult.summary``: one row per label, one column per metric.
    model : str
        The label of the retrained model.
    references : list of str
        Labels it must not be worse than (baselines, ``"current"``).
    metric : str
        A column of ``summary``.
    margin : float
        Relative tolerance (>= 0).
    note : str
        Kept in the decision (which windows ``summary`` covers).

    Examples
    --------
    >>> table = pd.DataFrame({"mase": [1.2, 1.0, 1.5]}, index=["lstm", "snaive", "naive2"])
    >>> gate(table, "lstm", ["snaive", "naive2"], "mase", 0.1).passed
    False
    """
    model_score = float(summary.loc[model, metric])
    scores = summary.loc[[r for r in references if r in summary.index], metric].astype(float).dropna()
    if scores.empty:
        return GateDecision(True, metric, margin, model, model_score, None, math.nan, math.nan)
    best = str(scores.idxmin())
    threshold = float(scores.min()) * (1 + margin)
    passed = bool(math.isfinite(model_score) and model_score <= threshold)
    return GateDecision(
        passed, metric, margin, model, model_score, best, float(scores.min()), threshold, note
    )


def coverage_gate(summary: pd.DataFrame, model: str, settings) -> CoverageDecision:
    """Check the model's pooled backtest coverage at ``settings.level`` against ``settings.min``/``max``.

    Parameters
    ----------
    summary : pd.DataFrame
        ``BacktestResult.summary`` with the ``coverage_<level>`` column.
    model : str
        The label of the retrained model.
    settings : CoverageGate
        ``gate.coverage``: ``level`` (percent), ``min`` and ``max`` (fractions; ``max`` may be None).

    Examples
    --------
    >>> from tsforecast.pipelines.intervals import CoverageGate
    >>> table = pd.DataFrame({"coverage_95": [0.86, 0.97]}, index=["lstm", "snaive"])
    >>> check = coverage_gate(table, "lstm", CoverageGate(level=95, min=0.9))
    >>> check.passed, check.describe().split(": ")[1]
    (False, "lstm's 95% intervals held 86.0% of the backtest's actuals (required")
    """
    low, high = settings.min, settings.max
    value = float(summary.loc[model, coverage_column(settings.level)])
    passed = bool(math.isfinite(value) and value >= low and (high is None or value <= high))
    return CoverageDecision(passed, model, settings.level, value, low, high)


def tightest(decisions: list) -> GateDecision:
    """The binding one of several gate comparisons: a failed one, else the closest to failing.

    Examples
    --------
    >>> table = pd.DataFrame({"mase": [1.0, 1.1, 0.98]}, index=["lstm", "snaive", "current"])
    >>> pair = [gate(table, "lstm", ["snaive"], "mase", 0.0), gate(table, "lstm", ["current"], "mase", 0.0)]
    >>> tightest(pair).reference, tightest(pair).passed
    ('current', False)
    """
    compared = [d for d in decisions if d.reference is not None] or list(decisions)
    failed = [d for d in compared if not d.passed]
    return max(failed or compared, key=_pressure)


def _pressure(decision: GateDecision) -> float:
    """``model_score / threshold``: above 1 fails."""
    score, threshold = decision.model_score, decision.threshold
    if not (math.isfinite(score) and math.isfinite(threshold)):
        return math.inf if decision.reference is not None else -math.inf
    if threshold <= 0:
        return math.inf if score > threshold else 1.0
    return score / threshold


def window_summary(
    per_series: pd.DataFrame, windows: list, labels: list, naive2: str | None = None
) -> pd.DataFrame:
    """``BacktestResult.summary`` restricted to some windows: mean over series, then windows.

    Parameters
    ----------
    per_series : pd.DataFrame
        ``BacktestResult.per_series`` (index ``model, window, <series id>``, one column per metric).
    windows : list of int
        The windows kept.
    labels : list of str
        The models kept, in this order.
    naive2 : str, optional
        The label of Naive2, to add ``owa`` relative to it on the same windows.
    """
    models = per_series.index.get_level_values("model")
    kept = per_series[models.isin(labels) & per_series.index.get_level_values("window").isin(windows)]
    table = kept.groupby(level=["model", "window"]).mean().groupby(level="model").mean()
    table = table.loc[[label for label in labels if label in table.index]]
    if naive2 in table.index and {"smape", "mase"} <= set(table.columns):
        reference = table.loc[naive2]
        table["owa"] = [owa(r.smape, r.mase, reference.smape, reference.mase) for r in table.itertuples()]
    return table


def test_scores(
    forecasts: dict, test: pd.DataFrame, history: Panel, season_length: int, metrics, level=None
) -> pd.DataFrame:
    """Score each model's forecasts against the held-out actuals (M4 conventions: mean over series).

    Parameters
    ----------
    forecasts : dict of str -> pd.DataFrame
        Long forecasts (``unique_id, ds, y_pred``) by model label.
    test : pd.DataFrame
        Long actuals (``unique_id, ds, y``); rows no forecast covers are left out.
    history : Panel
        The validated training history (MASE's and MSIS's scale).
    season_length : int
        MASE's seasonal lag.
    metrics : sequence of str
        Metrics of :func:`tsforecast.metrics.evaluate`; OWA is added when a ``naive2`` label is there.
    level : list of float, optional
        Interval levels (percent): forecasts with their ``y_lo_<level>``/``y_hi_<level>`` columns also
        get ``msis_<level>`` (mean over series), and ``coverage_<level>`` and ``acd_<level>`` pooled
        over every series and step, as M4 computed them.

    Returns
    -------
    pd.DataFrame
        One row per model label.
    """
    rows = {}
    for label, frame in forecasts.items():
        keys = frame[["unique_id", "ds"]]
        actual = test.merge(keys, on=["unique_id", "ds"], how="inner")
        if actual.empty:
            raise InvalidInputError(
                f"the test data covers none of the {label} forecasts' time stamps (forecasts run from "
                f"{frame['ds'].min()} to {frame['ds'].max()}); give the actuals that follow the history."
            )
        covered = frame.merge(actual[["unique_id", "ds"]], on=["unique_id", "ds"], how="inner")
        bounds = [c for lv in interval_levels(level) for c in interval_columns(lv)]
        if not bounds or not set(bounds) <= set(frame.columns):  # a model without intervals
            rows[label] = evaluate(covered, actual, history, season_length, list(metrics)).mean()
            continue
        wanted = [*metrics, *INTERVAL_METRICS]
        scores = evaluate(covered, actual, history, season_length, wanted, level=level).mean()
        pooled = pooled_coverage(covered.merge(actual, on=["unique_id", "ds"]), level=level)
        rows[label] = pd.concat([scores.drop(pooled.index), pooled])
    table = pd.DataFrame(rows).T.rename_axis("model")
    if "naive2" in table.index and {"smape", "mase"} <= set(table.columns):
        reference = table.loc["naive2"]
        table["owa"] = [owa(r.smape, r.mase, reference.smape, reference.mase) for r in table.itertuples()]
    return table


def with_published(table: pd.DataFrame, published: pd.DataFrame, m4_names: dict) -> pd.DataFrame:
    """Add the published M4 figures of the method each label stands for (``m4_*`` columns)."""
    table = table.copy()
    table.insert(0, "m4_method", [m4_names.get(label) for label in table.index])
    for metric in ("smape", "mase", "owa"):
        table[f"m4_{metric}"] = [
            published.loc[name, metric] if name in published.index else math.nan
            for name in table["m4_method"]
        ]
    return table


REFERENCE_ROWS = {
    "118": "ES-RNN, overall M4 winner",
    "RNN": "M4's RNN benchmark",
    "MLP": "M4's MLP benchmark",
}


def published_reference(published: pd.DataFrame) -> pd.DataFrame:
    """The best published method, the M4 winner and M4's neural benchmarks, for the report."""
    notes = {str(published["owa"].idxmin()): "best published OWA", **REFERENCE_ROWS}
    rows = [
        {
            "method": m,
            "note": note,
            "team": published.loc[m, "team"],
            **published.loc[m, ["smape", "mase", "owa"]],
        }
        for m, note in notes.items()
        if m in published.index
    ]
    return pd.DataFrame(rows).set_index("method")


def text_table(frame: pd.DataFrame, digits: int = 3) -> str:
    """A frame as aligned plain text: text columns left, numbers right, NaN as ``-``."""
    frame = frame.reset_index()
    header = [str(c) for c in frame.columns]
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns]
    rows = [
        [_cell(value, digits) if is_number else ("-" if value is None or value != value else str(value))
         for value, is_number in zip(row, numeric, strict=True)]
        for row in frame.itertuples(index=False)
    ]  # fmt: skip
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]

    def line(cells):
        return "  ".join(
            cell.rjust(width) if is_number else cell.ljust(width)
            for cell, width, is_number in zip(cells, widths, numeric, strict=True)
        ).rstrip()

    return "\n".join([line(header), *(line(row) for row in rows)])


def _cell(value, digits: int) -> str:
    return "-" if value is None or pd.isna(value) else f"{value:.{digits}f}"


def _finite(value):
    return None if isinstance(value, float) and not math.isfinite(value) else value


__all__ = [
    "CoverageDecision",
    "GateDecision",
    "coverage_gate",
    "gate",
    "published_reference",
    "test_scores",
    "text_table",
    "tightest",
    "window_summary",
    "with_published",
]
