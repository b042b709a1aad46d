"""The diagnostics report: its tables, its text, its files and its MLflow artifacts."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from tsforecast.exceptions import TrackingError

__all__ = ["DiagnosticReport", "log_to_mlflow"]

_TABLES = ("gradient_flow", "gates", "hidden_norms", "training", "horizon_errors")


@dataclass
class DiagnosticReport:
    """What :func:`~tsforecast.nn.diagnostics.diagnose` found.

    Attributes
    ----------
    model : str
        The forecaster's class name.
    cell : {"lstm", "gru", "rnn"}
    tbptt_steps : int or None
        The truncation window (None when trained on sliding windows).
    clip_norm : float or None
    series : list
        Ids of the series the gradient, gate and hidden-state passes ran on.
    gradient_flow : pd.DataFrame
        ``lag`` (0..max_lag), ``grad_norm`` (mean over series of the gradient norm with respect to
        the state ``lag`` steps before the loss step) and ``relative`` (``grad_norm / grad_norm[0]``).
    gates : pd.DataFrame
        Per ``layer`` and ``gate``: ``activation`` (sigmoid or tanh), ``mean``, ``std`` and the
        ``saturated_low`` / ``saturated_high`` / ``saturated`` shares of activations (below 0.05 or
        above 0.95; beyond -0.95 / 0.95 for tanh). A vanilla RNN's "gate" is its tanh activation.
    hidden_norms : pd.DataFrame
        Per ``step`` of the analysed window (``lag``: steps before its end), the root mean square of
        each layer's hidden state, averaged over series (``layer_1``...).
    training : pd.DataFrame
        The per-epoch training history: loss, pre-clip gradient norms, clipped fraction.
    horizon_errors : pd.DataFrame
        Indexed by ``horizon`` step: ``mae``, ``rmse``, ``smape`` of the held-out tail's forecasts
        and ``snaive_mae``, the seasonal naive forecast's MAE on the same points.
    findings : list of str
        Plain-language conclusions, most important first.
    """

    model: str
    cell: str
    tbptt_steps: int | None
    clip_norm: float | None
    series: list
    gradient_flow: pd.DataFrame
    gates: pd.DataFrame
    hidden_norms: pd.DataFrame
    training: pd.DataFrame
    horizon_errors: pd.DataFrame
    findings: list = field(default_factory=list)

    @property
    def far_near_ratio(self) -> float:
        """Gradient norm at the largest lag over the one at lag 0 (NaN when lag 0 has none)."""
        return float(self.gradient_flow["relative"].iloc[-1])

    def to_text(self, tables: bool = True) -> str:
        """The findings and, with ``tables``, a compact view of every table, as plain text."""
        lag = int(self.gradient_flow["lag"].iloc[-1])
        window = f"tbptt_steps={self.tbptt_steps}" if self.tbptt_steps else "windows training"
        lines = [
            f"{self.model} diagnostics ({self.cell}, {window}, {len(self.series)} series analysed)",
            "",
            "findings:",
            *(f"  - {finding}" for finding in self.findings),
        ]
        if not tables:
            return "\n".join(lines)
        flow = self.gradient_flow.iloc[np.unique(np.geomspace(1, lag + 1, 12).astype(int) - 1)]
        sections = [
            (f"gradient flow through time (far/near ratio at lag {lag}: {self.far_near_ratio:.3g})", flow),
            ("gate statistics", self.gates),
            (
                "hidden-state RMS (first, middle and last steps)",
                self.hidden_norms.iloc[[0, len(self.hidden_norms) // 2, -1]],
            ),
            ("training history (pre-clip gradient norms)", _tail(self.training, 10)),
            ("error by horizon step (held-out tail)", self.horizon_errors),
        ]
        for title, table in sections:
            lines += ["", f"{title}:", _format(table)]
        return "\n".join(lines)

    def figures(self) -> dict:
        """One matplotlib figure per diagnostic, keyed by file stem (built on demand)."""
        from tsforecast.nn.diagnostics import plots

        return {
            "gradient_flow": plots.gradient_flow_figure(self.gradient_flow, self.model),
            "gates": plots.gates_figure(self.gates),
            "hidden_norms": plots.hidden_norms_figure(self.hidden_norms),
            "training": plots.training_figure(self.training, self.clip_norm),
            "horizon_errors": plots.horizon_errors_figure(self.horizon_errors),
        }

    def save(self, folder, plots: bool = True) -> list:
        """Write every table as CSV, the text as ``report.txt`` and, with ``plots``, the figures as PNG.

        Returns the written paths. The folder is created when missing.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for name in _TABLES:
            path = folder / f"{name}.csv"
            table = getattr(self, name)
            table.to_csv(path, index=name == "horizon_errors")
            written.append(path)
        text = folder / "report.txt"
        text.write_text(self.to_text() + "\n")
        written.append(text)
        if plots:
            for name, figure in self.figures().items():
                path = folder / f"{name}.png"
                figure.savefig(path, dpi=100)
                written.append(path)
        return written

    def log_to_mlflow(self, artifact_path: str = "diagnostics", plots: bool = True) -> None:
        """Log the report to the active MLflow run (see :func:`log_to_mlflow`)."""
        log_to_mlflow(self, artifact_path, plots)


def log_to_mlflow(report: DiagnosticReport, artifact_path: str = "diagnostics", plots: bool = True) -> None:
    """Log ``report``'s tables, text and (with ``plots``) figures as artifacts of the active MLflow run.

    Also logs the far/near gradient ratio as the metric ``diagnostics/far_near_ratio``. The
    ``tsforecast diagnose --track`` command and pipelines (``tracking.diagnostics``) call it.

    Raises
    ------
    TrackingError
        When mlflow is not installed or no run is active.
    """
    try:
        import mlflow
    except ImportError:
        raise TrackingError(
            "log_to_mlflow needs mlflow; install it with `pip install tsforecast[tracking]`."
        ) from None
    if mlflow.active_run() is None:
        raise TrackingError(
            "no active MLflow run to log the diagnostics to; call it inside `with mlflow.start_run():` "
            "or `with tsforecast.tracking.run():`."
        )
    with tempfile.TemporaryDirectory() as folder:
        report.save(folder, plots=plots)
        mlflow.log_artifacts(folder, artifact_path)
    if np.isfinite(report.far_near_ratio):
        mlflow.log_metric("diagnostics/far_near_ratio", report.far_near_ratio)


def _tail(table: pd.DataFrame, n: int) -> pd.DataFrame:
    return table.iloc[-n:] if len(table) > n else table


def _format(table: pd.DataFrame) -> str:
    if table.empty:
        return "  (none)"
    text = table.to_string(index=table.index.name is not None, float_format=lambda v: f"{v:.4g}")
    return "\n".join(f"  {line}" for line in text.splitlines())
