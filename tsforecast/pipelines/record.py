"""What a run records: the manifest in its outputs folder, and its parent run in MLflow.

The manifest (``manifest.json``) is deterministic: the same inputs, configuration and package versions
give the same bytes, so a rerun of an as-of date can be checked by comparing files. What changes from
one execution to the next (start time, durations, host, MLflow run ids, the model file's checksum:
the file stores its training history with epoch timings) goes to ``run.json`` beside it.
"""

from __future__ import annotations

import json
import logging
import math
import platform
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

import tsforecast
from tsforecast.data import to_long
from tsforecast.pipelines.data import sha256

logger = logging.getLogger(__name__)

_PACKAGES = ("numpy", "pandas", "scikit-learn", "scipy", "statsmodels", "torch", "mlflow", "pyarrow")
_VOLATILE_PARAMS = ("verbose", "callbacks")  # how a run reported progress, not what it learned


def manifest(run) -> dict:
    """The manifest of a run (see the module docstring); ``run`` holds what its steps produced."""
    config, inputs, decision, tables = run.config, run.inputs, run.decision, run.tables
    model_label = config.model.key
    model = run.fitted.get(model_label)
    return {
        "pipeline": config.name,
        "as_of": run.as_of.label,
        "status": run.status,
        "tsforecast_version": tsforecast.__version__,
        "python": platform.python_version(),
        "packages": _versions(),
        "config": config.model_dump(mode="json", by_alias=True),
        "inputs": inputs.files,
        "data": inputs.stats,
        "backtest": {
            "horizon": config.horizon,
            "n_windows": config.backtest.n_windows,
            "step": config.backtest.step or config.horizon,
            "summary": _records(run.result.summary),
        },
        "gate": {"enabled": False} if decision is None else {"enabled": True, **decision.as_dict()},
        "current_model": None if run.current is None else run.current.as_dict(),
        "evaluation": _records(tables["evaluation"]) if "evaluation" in tables else None,
        "model": {
            "label": model_label,
            "kept": model is not None,
            "class": None if model is None else type(model).__name__,
            "params": None if model is None else _params(model),
            "file": None if run.model_file is None else run.model_file.name,
        },
        "outputs": {
            name: {"rows": _rows(path), "sha256": sha256(path)} for name, path in sorted(run.written.items())
        },
    }


def to_json(document: dict) -> bytes:
    """Stable JSON: fixed key order, NaN as null, numpy numbers as Python numbers."""
    return (json.dumps(_plain(document), indent=2, allow_nan=False) + "\n").encode()


def parent_run_info(run_id: str) -> dict:
    """Where the pipeline's MLflow run is: the active tracking URI and ``run_id``."""
    import mlflow

    return {"tracking_uri": mlflow.get_tracking_uri(), "run_id": run_id}


def fit_run_info(run_id: str) -> dict:
    """The fit run and its logged model (registered later, by the track step).

    The model's URI is MLflow's own (``models:/m-...``, the run's ``tsforecast.model_uri`` tag), else
    ``runs:/<run>/model``.
    """
    import mlflow

    uri = f"runs:/{run_id}/model"
    try:
        uri = mlflow.MlflowClient().get_run(run_id).data.tags.get("tsforecast.model_uri", uri)
    except mlflow.exceptions.MlflowException as error:
        logger.warning("could not read the fit run %s (%s); its model is %s", run_id, error, uri)
    return {"fit_run_id": run_id, "model_uri": uri}


def log_parent(run, folder, manifest_) -> None:
    """Log the comparison, the gate, the test scores and figures and the manifest into the active run.

    Runs after the outputs are written: a failure here is logged as a warning and never changes
    the outputs or the exit code.
    """
    import mlflow

    from tsforecast import tracking

    config, as_of, status, decision, tables = run.config, run.as_of, run.status, run.decision, run.tables
    result, forecasts, inputs = run.result, run.forecasts, run.inputs
    with _guard("backtest comparison"):
        tracking.track_backtest(result, dataset_name=config.name, plots=config.tracking.plots)
    with _guard("pipeline parameters and tags"):
        mlflow.log_params(
            {
                "pipeline.name": config.name,
                "pipeline.as_of": as_of.label,
                "pipeline.model": config.model.key,
                "pipeline.baselines": ", ".join(b.key for b in config.baselines) or "-",
                "pipeline.horizon": config.horizon,
                "pipeline.season_length": config.season_length,
                **_interval_params(config),
            }
        )
        mlflow.set_tags({"tsforecast.status": status, "tsforecast.outputs": str(Path(folder).resolve())})
    if decision is not None:
        with _guard("gate metrics"):
            mlflow.log_metrics(
                {
                    "gate/passed": float(decision.passed),
                    "gate/model_score": _metric(decision.model_score),
                    "gate/reference_score": _metric(decision.reference_score),
                    **_coverage_metrics(decision.coverage),
                }
            )
            mlflow.set_tag("tsforecast.gate", decision.describe())
    scores = tables.get("evaluation")
    if scores is not None:
        with _guard("test metrics"):
            numeric = scores.select_dtypes("number")
            numeric = numeric[[c for c in numeric.columns if not c.startswith("m4_")]]
            mlflow.log_metrics(
                {
                    f"test/{label}/{metric}": float(value)
                    for label, row in numeric.iterrows()
                    for metric, value in row.items()
                    if pd.notna(value)
                }
            )
    with _guard("pipeline artifacts"), tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "manifest.json").write_bytes(to_json(manifest_))
        (tmp / "pipeline.yaml").write_text(_yaml(config))
        if scores is not None:
            scores.to_csv(tmp / "test_scores.csv")
            (tmp / "test_scores.html").write_text(scores.to_html(float_format="%.4f"))
            if config.tracking.plots:
                with _guard("test forecast plot"):
                    _test_figure(forecasts, inputs).savefig(tmp / "test_forecasts.png", dpi=100)
        mlflow.log_artifacts(str(tmp), "pipeline")


def log_diagnostics(run) -> None:
    """Diagnose the fitted recurrent model and log the report into the active run (``diagnostics/``).

    Like :func:`log_parent`, a failure is a warning: the outputs are published already.
    """
    model = run.fitted.get(run.config.model.key)
    if model is None or not hasattr(model, "diagnose"):
        return
    from tsforecast.pipelines.covariates import covariates_for

    X = covariates_for(model, run.inputs.covariates)
    with _guard("diagnostics of the fitted model"):
        report = model.diagnose() if X is None else model.diagnose(X=X)
        report.log_to_mlflow("diagnostics", plots=run.config.tracking.plots)
        logger.info("diagnostics of %s logged to MLflow (diagnostics/)", run.config.model.key)


def _test_figure(forecasts: dict, inputs):
    from tsforecast.plotting import forecast_bands
    from tsforecast.tracking.plots import forecast_figure

    shown = inputs.history.select(range(min(4, inputs.history.n_series)))
    ids = shown.ids
    horizon = max(len(frame) // max(frame["unique_id"].nunique(), 1) for frame in forecasts.values())
    tail = to_long(shown.tail(3 * horizon))
    test = inputs.test[inputs.test["unique_id"].isin(ids)]
    actual = pd.concat([tail, test], ignore_index=True).rename(columns={"y": "value"})
    predicted = pd.concat(
        [f[f["unique_id"].isin(ids)].assign(model=label, window=0) for label, f in forecasts.items()],
        ignore_index=True,
    ).rename(columns={"y_pred": "value"})
    bands = [column for pair in forecast_bands(predicted.columns).values() for column in pair]
    return forecast_figure(
        actual, predicted[["model", "window", "unique_id", "ds", "value", *bands]], len(ids)
    )


def _interval_params(config) -> dict:
    """The ``intervals:`` section and the coverage gate as run parameters (none without them)."""
    settings, coverage = config.intervals, config.gate.coverage
    if settings is None:
        return {}
    params = {"pipeline.intervals.levels": ", ".join(f"{lv:g}" for lv in settings.levels)}
    params["pipeline.intervals.method"] = settings.method
    if settings.method == "conformal":
        params |= {"pipeline.intervals.n_windows": settings.n_windows}
        params |= {"pipeline.intervals.per_series": settings.per_series}
    if coverage is not None and config.gate.enabled:
        params["pipeline.gate.coverage"] = f"{coverage.level:g}% in [{coverage.min:g}, {coverage.max or 1:g}]"
    return params


def _coverage_metrics(check) -> dict:
    """The coverage gate's check as metrics: the coverage it saw and whether it passed."""
    if check is None:
        return {}
    return {"gate/coverage": _metric(check.coverage), "gate/coverage_passed": float(check.passed)}


class _guard:
    """Report a failing logging call as a warning; the run's outputs are already safe."""

    def __init__(self, what: str):
        self.what = what

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        if error is not None and isinstance(error, Exception):
            logger.warning("could not log the %s to MLflow (%s: %s)", self.what, type(error).__name__, error)
            return True
        return False


def _yaml(config) -> str:
    import yaml

    return yaml.safe_dump(config.model_dump(mode="json", by_alias=True), sort_keys=False)


def _versions() -> dict:
    found = {}
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def _params(model) -> dict:
    params = model.get_params(deep=False)
    return {k: _plain(v) for k, v in sorted(params.items()) if k not in _VOLATILE_PARAMS}


def _records(frame: pd.DataFrame) -> dict:
    return {str(label): {str(k): _plain(v) for k, v in row.items()} for label, row in frame.iterrows()}


def _rows(path: Path) -> int:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    with open(path, "rb") as stream:
        return max(sum(1 for _ in stream) - 1, 0)


def _metric(value) -> float:
    return float(value) if value is not None and math.isfinite(value) else float("nan")


def _plain(value):
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if value is None or isinstance(value, str):
        return value
    return str(value)
