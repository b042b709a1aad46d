"""Diagnostics of fitted recurrent forecasters: why a network learns, or fails to learn, what it does.

Recurrent models fail silently: gradients vanish over long spans, gates saturate, clipping fires on
every step, and the forecast is merely plausible. :func:`diagnose` (also
``forecaster.diagnose(y)``) runs a fitted LSTM/GRU/RNN forecaster on data and returns a
:class:`DiagnosticReport` with

* the **gradient flow through time**: the norm of the gradient of the loss at the last step of a span
  with respect to the state ``k`` steps earlier, ``k = 0..tbptt_steps``, averaged over series, and
  the far/near ratio (the vanishing or exploding signature);
* **gate statistics** per layer: mean activation of each gate and the share saturated;
* **hidden-state norms** over time;
* the **training history** of pre-clip gradient norms and the clipped share of steps;
* the **error by horizon step** on a held-out tail;

plus plain-language ``findings``. ``report.to_text()`` prints it, ``report.save(folder)`` writes
CSVs and PNGs, :func:`log_to_mlflow` logs them to the active MLflow run, and
:func:`compare_gradient_flow` sets several models' gradient flow side by side.

Modules: :mod:`.cells` (the cell equations re-run from the torch weights, and their weight layout),
:mod:`.probe` (windows of data through the network), :mod:`.analysis` (:func:`diagnose`),
:mod:`.findings`, :mod:`.report`, :mod:`.plots`.
"""

from tsforecast.nn.diagnostics.analysis import diagnose, horizon_errors, step_forecasts
from tsforecast.nn.diagnostics.findings import Thresholds, compare_gradient_flow
from tsforecast.nn.diagnostics.report import DiagnosticReport, log_to_mlflow

__all__ = [
    "DiagnosticReport",
    "Thresholds",
    "compare_gradient_flow",
    "diagnose",
    "horizon_errors",
    "log_to_mlflow",
    "step_forecasts",
]
