"""Run a validated pipeline: its steps in order, each logged with what it did and how long it took.

Steps: load, validate, backtest (the model and the baselines on the latest windows, identical for all;
the current model on those after its training data), gate, fit, forecast, evaluate (optional), write
(the outputs folder, atomically) and track (MLflow; the model is registered last, after the outputs
are published and only when the gate passed). A failing step is named in the log and on the raised
error (``error.pipeline_step``); a step before ``write`` that fails writes nothing, so the previous
outputs and the registered model stay as they were.
"""

from __future__ import annotations

import logging
import os
import platform
import sys
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from tsforecast.epochs import EpochRecord
from tsforecast.pipelines import data, evaluation, intervals, record, registration
from tsforecast.pipelines.covariates import check_covariates, covariates_for
from tsforecast.pipelines.current import CurrentComparison, score_current
from tsforecast.pipelines.evaluation import GateDecision, gate, test_scores, tightest, with_published
from tsforecast.pipelines.models import (
    checkpoint_folder,
    checkpointing,
    discard_checkpoints,
    model_filename,
    save_model,
)
from tsforecast.pipelines.outputs import OutputStore
from tsforecast.pipelines.schema import ConfigError, PipelineConfig
from tsforecast.registry import build_estimator, entry

logger = logging.getLogger(__name__)

STEPS = ("load", "validate", "backtest", "gate", "fit", "forecast", "evaluate", "write", "track")
SUCCESS, GATE_FAILED = "success", "gate_failed"


@dataclass
class RunResult:
    """What a pipeline run did.

    Attributes
    ----------
    status : str
        ``"success"`` or ``"gate_failed"`` (the retrained model was not kept).
    folder : Path
        The outputs folder of the as-of date.
    manifest : dict
        The manifest written into it.
    tables : dict of str -> pd.DataFrame
        ``comparison`` (backtest), ``evaluation`` (test set, when configured) and ``reference``
        (published M4 figures, when available).
    gate : GateDecision or None
        The gate's decision (None when the gate is disabled); the coverage gate's check, when
        configured, in its ``coverage``.
    tracking : dict
        MLflow run ids and model URIs (empty without tracking).
    seconds : dict of str -> float
        Duration of each step.
    """

    status: str
    folder: Path
    manifest: dict
    tables: dict
    gate: GateDecision | None
    tracking: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)


class EpochLog:
    """Training progress as log lines (a callback of the recurrent forecasters), for plain logs.

    Logs the first and the last epoch, and one in between at most every ``every_s`` seconds.
    """

    def __init__(self, label: str, every_s: float = 10.0):
        self.label = label
        self.every_s = every_s

    def __call__(self, estimator, record: EpochRecord) -> bool:
        now = time.monotonic()
        first, last = record.epoch == 1, record.stopped_by is not None
        if not (first or last or now - getattr(self, "_last", now) >= self.every_s):
            return False
        self._last = now
        logger.info(
            "%s epoch %d: train_loss %.4f, grad_norm_mean %.3g, %.1f s",
            self.label, record.epoch, record.train_loss, record.grad_norm_mean, record.seconds,
        )  # fmt: skip
        return False

    def __repr__(self) -> str:  # stable across runs: get_params() values end up in logs and MLflow
        return f"EpochLog({self.label!r})"


class Steps:
    """Times and logs the steps; marks a failure with the step's name."""

    def __init__(self):
        self.seconds = {}

    @contextmanager
    def __call__(self, name: str, detail: str = ""):
        number = STEPS.index(name) + 1
        logger.info("step %d/%d %s%s", number, len(STEPS), name, f": {detail}" if detail else "")
        start = time.perf_counter()
        try:
            yield
        except BaseException as error:
            logger.error(
                "step %d/%d %s failed after %.1f s", number, len(STEPS), name, time.perf_counter() - start
            )
            if not hasattr(error, "pipeline_step"):
                try:
                    error.pipeline_step = name
                except AttributeError:  # exceptions with __slots__
                    pass
            raise
        self.seconds[name] = round(time.perf_counter() - start, 3)
        logger.info("step %d/%d %s done in %.1f s", number, len(STEPS), name, self.seconds[name])


def run_pipeline(config: PipelineConfig, as_of: data.AsOf, *, progress: bool = False) -> RunResult:
    """Run ``config`` for ``as_of`` under the pipeline's lock.

    Parameters
    ----------
    config : PipelineConfig
        From :func:`tsforecast.pipelines.load_config`.
    as_of : AsOf
        The date the run is for (``AsOf.parse("2024-05-31")``).
    progress : bool
        Progress bars (on a terminal); otherwise training progress goes to the log.

    Returns
    -------
    RunResult
        ``status`` tells whether the gate passed; the outputs are written either way.

    Raises
    ------
    TsforecastError
        From the failing step (its name in ``error.pipeline_step``): ``ConfigError``,
        ``InvalidInputError``, ``TrainingError``, ``TrackingError``, ...
    """
    store = OutputStore(config.outputs.dir)
    with store.locked():
        store.check([as_of.label, "current"])  # before any work: a run that cannot publish fails fast
        return _Run(config, as_of, store, progress).execute()


class _Run:
    """One execution; its attributes are what the steps produced, read by :mod:`record`."""

    def __init__(self, config: PipelineConfig, as_of: data.AsOf, store: OutputStore, progress: bool):
        self.config, self.as_of, self.store, self.progress = config, as_of, store, progress
        self.levels = tuple(config.intervals.levels) if config.intervals is not None else ()
        self.steps = Steps()
        self.checkpoints = checkpoint_folder(config.outputs.dir, as_of.label)
        self.tracking: dict = {}
        self.started = time.time()
        self.inputs: data.Inputs | None = None
        self.result = None  # the backtest's BacktestResult
        self.current: CurrentComparison | None = None
        self.decision: GateDecision | None = None
        self.fitted: dict = {}
        self.forecasts: dict = {}
        self.tables: dict = {}
        self.status = ""
        self.written: dict = {}
        self.model_file: Path | None = None
        self.provenance: dict = {}

    def execute(self) -> RunResult:
        config, steps = self.config, self.steps
        with steps("load", f"{config.data.kind} data, as of {self.as_of.label}"):
            self.inputs = data.load(config, self.as_of)
        estimators = self._estimators()
        windows = config.backtest.n_windows
        step = config.backtest.step or config.horizon
        shortest = max(e._min_length() for e in estimators.values()) + config.horizon + (windows - 1) * step
        n_series, n_rows = data.history_size(self.inputs.history)
        with steps("validate", f"{n_series} series, {n_rows} rows"):
            needed_by = f"a backtest of {windows} window(s) of {config.horizon} steps"
            self.inputs = data.validate(self.inputs, config, shortest, needed_by, self.as_of)
            check_covariates(self.inputs, estimators, config)
            n_series = self.inputs.stats["n_series"]
            if problem := intervals.run_problem(config.intervals, estimators[config.model.key], n_series):
                raise ConfigError(problem)
        with self._tracked_run():
            with steps("backtest", f"{', '.join(estimators)} on the last {windows} window(s)"):
                self.result = self._backtest(estimators)
            with steps("gate"):
                self.decision = self._gate(self.result.summary)
            passed = self.decision is None or self.decision.passed
            labels = self._labels_to_fit(self.result.summary, passed)
            with steps("fit", ", ".join(labels) or "nothing (gate failed, no baseline forecasts)"):
                self.fitted = {label: self._fit(label, estimators[label]) for label in labels}
            with steps("forecast"):
                self.forecasts = {
                    label: model.predict(
                        X=covariates_for(model, self.inputs.covariates),
                        level=intervals.levels_for(model, self.levels),
                    )
                    for label, model in self.fitted.items()
                }
            self.tables = {"comparison": self.result.summary}
            with steps("evaluate", "" if self.inputs.test is not None else "skipped (no test data)"):
                self.tables.update(self._evaluate())
            self.status = SUCCESS if passed else GATE_FAILED
            with steps("write", str(Path(config.outputs.dir) / self.as_of.label)):
                folder, manifest = self._write()
                discard_checkpoints(self.checkpoints)
            with steps("track", "MLflow" if config.tracking.enabled else "skipped (tracking disabled)"):
                if config.tracking.enabled:
                    self._track(folder, manifest)
        if not passed:
            logger.warning(
                "%s was not kept (quality gate); the previous model stays current.", config.model.key
            )
        return RunResult(
            self.status, folder, manifest, self.tables, self.decision, self.tracking, steps.seconds
        )

    # ----------------------------------------------------------------------------------- steps
    def _estimators(self) -> dict:
        config = self.config
        defaults = config.estimator_defaults()
        specs = [("model", config.model)] + [(f"baselines.{i}", b) for i, b in enumerate(config.baselines)]
        estimators = {}
        for where, spec in specs:
            estimator = build_estimator(spec.name, spec.params, defaults=defaults, where=where)
            params = estimator.get_params()
            if "verbose" in params and "verbose" not in spec.params:
                estimator.set_params(verbose=self.progress)
            if "callbacks" in params and not self.progress and spec.params.get("callbacks") is None:
                estimator.set_params(callbacks=[EpochLog(spec.key)])
            estimators[spec.key] = estimator
        model = config.model.key
        estimators[model] = intervals.with_intervals(estimators[model], config.intervals)
        return estimators

    def _backtest(self, estimators: dict):
        from tsforecast.backtesting import compare

        config, inputs = self.config, self.inputs
        metrics = list(dict.fromkeys([*config.backtest.metrics, *self._owa_needs()]))
        windows = {
            "y": inputs.history,
            "horizon": config.horizon,
            "step": config.backtest.step or config.horizon,
        }
        declaring = any(covariates_for(e, inputs.covariates) is not None for e in estimators.values())
        options = {
            "X": inputs.covariates if declaring else None,  # compare gives it to the declaring models only
            "season_length": config.season_length,
            "metrics": metrics,
            "freq": inputs.freq,
            "verbose": self.progress,
        }
        result = intervals.backtest(
            compare, estimators, self.levels, n_windows=config.backtest.n_windows, **windows, **options
        )
        current = self._current_source() if config.gate.enabled and config.gate.compare_current else None
        if current is not None:
            source, kept_as_of = current
            logger.info("comparing with the current model %s (kept by the run of %s)", source, kept_as_of)
            naive2 = [b.key for b in config.baselines if b.name == "naive2"]
            result, self.current = score_current(
                result,
                source,
                model_label=config.model.key,
                naive2=naive2[0] if naive2 else None,
                compare=compare,
                n_windows=config.backtest.n_windows,
                tracking_uri=config.tracking.tracking_uri,
                fallback_end=data.AsOf.parse(kept_as_of).last_moment if kept_as_of else None,
                **windows,
                **options,
            )
        logger.info("backtest summary:\n%s", result.summary.round(4).to_string())
        return result

    def _owa_needs(self) -> list:
        return ["smape", "mase"] if any(b.name == "naive2" for b in self.config.baselines) else []

    def _gate(self, summary: pd.DataFrame) -> GateDecision | None:
        settings, model = self.config.gate, self.config.model.key
        if not settings.enabled:
            logger.info("quality gate disabled")
            return None
        baselines = [b.key for b in self.config.baselines]
        decisions = [gate(summary, model, baselines, settings.metric, settings.margin)]
        if self.current is not None and self.current.compared:
            shown = ", ".join(map(str, self.current.windows))
            note = f"both on window(s) {shown} of {self.current.n_windows}, after its training data"
            decisions.append(
                gate(self.current.table, model, ["current"], settings.metric, settings.margin, note)
            )
        decision = tightest(decisions)
        if settings.coverage is not None:
            decision = decision.with_coverage(evaluation.coverage_gate(summary, model, settings.coverage))
        (logger.info if decision.passed else logger.warning)(decision.describe())
        return decision

    def _labels_to_fit(self, summary: pd.DataFrame, passed: bool) -> list:
        config = self.config
        baselines = [b.key for b in config.baselines]
        evaluating = config.evaluation is not None and config.evaluation.enabled
        if evaluating or config.outputs.baseline_forecasts == "all":
            chosen = baselines
        elif config.outputs.baseline_forecasts == "best" and baselines:
            chosen = [self._best_baseline(summary)]
        else:
            chosen = []
        return ([config.model.key] if passed else []) + chosen

    def _best_baseline(self, summary: pd.DataFrame) -> str:
        metric = self.config.gate.metric if self.config.gate.metric in summary else summary.columns[0]
        return str(summary.loc[[b.key for b in self.config.baselines], metric].astype(float).idxmin())

    def _fit(self, label: str, estimator):
        n_series = self.inputs.stats["n_series"]
        logger.info("fitting %s (%s) on %d series", label, type(estimator).__name__, n_series)
        X = covariates_for(estimator, self.inputs.covariates)
        folder = self.checkpoints / label  # a run killed during this fit resumes from there
        with checkpointing(estimator, folder, self.inputs.history, X):
            return self._fit_now(label, estimator, X)

    def _fit_now(self, label: str, estimator, X):
        config, inputs = self.config, self.inputs
        if not (label == config.model.key and config.tracking.enabled):
            return estimator.fit(inputs.history, X=X, freq=inputs.freq)
        from tsforecast import tracking

        # Only logged here: registering waits for the track step, after the outputs are published.
        estimator, run_id = tracking.track_fit(
            estimator,
            inputs.history,
            run_name=label,
            dataset_name=config.name,
            plots=config.tracking.plots,
            level=intervals.levels_for(estimator, self.levels),
            freq=inputs.freq,
            **({} if X is None else {"X": X}),
        )
        self.tracking.update(record.fit_run_info(run_id))
        return estimator

    def _evaluate(self) -> dict:
        config, inputs, forecasts = self.config, self.inputs, self.forecasts
        if inputs.test is None or not forecasts:
            return {}
        metrics = list(dict.fromkeys(["smape", "mase", *config.backtest.metrics]))
        scores = test_scores(
            forecasts, inputs.test, inputs.history, config.season_length, metrics, self.levels or None
        )
        tables = {"evaluation": scores}
        published = inputs.published
        if published is not None and config.evaluation.published:
            names = {spec.key: entry(spec.name).m4_name for spec in [config.model, *config.baselines]}
            tables["evaluation"] = with_published(scores, published, names)
            from tsforecast.pipelines.evaluation import published_reference

            tables["reference"] = published_reference(published)
        logger.info("test-set scores:\n%s", tables["evaluation"].round(4).to_string())
        return tables

    def _write(self) -> tuple[Path, dict]:
        from tsforecast.data.io import write_bytes

        with self.store.staging(self.as_of.label) as folder:
            self._write_tables(folder)
            model = self.fitted.get(self.config.model.key)
            if model is not None and self.config.outputs.save_model:
                self.model_file = save_model(model, folder / model_filename(model))
            manifest = record.manifest(self)
            write_bytes(record.to_json(manifest), folder / "manifest.json")
            self.provenance = self._provenance(self.model_file)
            write_bytes(record.to_json({**self.provenance, "mlflow": self.tracking}), folder / "run.json")
            current_as_of = self.store.current_as_of()
            make_current = self.status == SUCCESS and (
                current_as_of is None or self.as_of.label >= current_as_of
            )
            published = self.store.publish(folder, self.as_of.label, make_current)
        logger.info("outputs written to %s%s", published, " (now current)" if make_current else "")
        return published, manifest

    def _write_tables(self, folder: Path) -> None:
        """Forecasts in the configured format, tables as CSV; their paths go to ``self.written``."""
        from tsforecast.data.io import write_frame

        outputs, columns = self.config.outputs, self.inputs.columns
        suffix = ".parquet" if outputs.format == "parquet" else ".csv"
        model_label = self.config.model.key
        frames = {}
        if model_label in self.forecasts:
            frames["forecasts" + suffix] = _user_columns(self.forecasts[model_label], columns)
        baselines = [label for label in self.forecasts if label != model_label]
        if baselines and outputs.baseline_forecasts != "none":
            if outputs.baseline_forecasts == "best":
                baselines = [self._best_baseline(self.result.summary)]
            frame = pd.concat([self.forecasts[b].assign(model=b) for b in baselines], ignore_index=True)
            frame = frame[["model", *[c for c in frame.columns if c != "model"]]]
            frames["baseline_forecasts" + suffix] = _user_columns(frame, columns)
        frames["comparison.csv"] = self.result.summary.reset_index()
        frames["backtest_by_horizon.csv"] = self.result.by_horizon.reset_index()
        if "evaluation" in self.tables:
            frames["evaluation.csv"] = self.tables["evaluation"].reset_index()
        self.written = {name: write_frame(frame, folder / name) for name, frame in frames.items()}

    def _provenance(self, model_file) -> dict:
        info = {
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(self.started)),
            "seconds": round(time.time() - self.started, 1),
            "step_seconds": dict(self.steps.seconds),
            "host": platform.node(),
            "pid": os.getpid(),
            "command": " ".join(sys.argv),
        }
        if model_file is not None:
            info["model_file"] = {"name": model_file.name, "sha256": data.sha256(model_file)}
        return info

    def _track(self, folder: Path, manifest: dict) -> None:
        """Log the run, then register the kept model: the last thing a successful run does."""
        from tsforecast.data.io import write_bytes

        config = self.config
        record.log_parent(self, folder, manifest)
        if config.tracking.diagnostics:
            record.log_diagnostics(self)
        registry = config.tracking.registry
        if registry is None or self.status != SUCCESS or "model_uri" not in self.tracking:
            return
        info = registration.register(
            registry, config.name, self.as_of.label, self.tracking["model_uri"], manifest
        )
        self.tracking.update(info)
        write_bytes(record.to_json({**self.provenance, "mlflow": self.tracking}), folder / "run.json")

    def _current_source(self) -> tuple[str, str | None] | None:
        """The model current before this as-of date, and the as-of date of the run that kept it.

        The registered model when the pipeline registers one, else the latest in the outputs folder.
        """
        registry = self.config.tracking.registry
        if registry is not None:
            uri, uri_as_of, _ = registration.registered_before(registry, self.as_of.label)
            if uri is not None:
                return uri, uri_as_of
        found = self.store.model_before(self.as_of.label)
        return None if found is None else (str(found[1]), found[0])

    @contextmanager
    def _tracked_run(self):
        config = self.config
        if not config.tracking.enabled:
            with nullcontext():
                yield
            return
        try:
            import mlflow  # noqa: F401
        except ImportError:
            raise ConfigError(
                "tracking.enabled: MLflow is not installed; pip install 'tsforecast[tracking]', or run "
                "with --set tracking.enabled=false --set tracking.register=null."
            ) from None
        from tsforecast import tracking

        tags = {"tsforecast.pipeline": config.name, "tsforecast.as_of": self.as_of.label}
        logger.info("opening an MLflow run (experiment %s)", config.tracking.experiment or config.name)
        with tracking.run(
            config.tracking.experiment or config.name,
            f"{config.name} {self.as_of.label}",
            tracking_uri=config.tracking.tracking_uri,
            tags=tags,
        ) as run_id:
            self.tracking.update(record.parent_run_info(run_id))
            logger.info("MLflow run %s in %s", run_id, self.tracking["tracking_uri"])
            yield


def _user_columns(frame: pd.DataFrame, columns) -> pd.DataFrame:
    """The forecasts with the input's id and time column names."""
    return frame.rename(columns={"unique_id": columns.id_col, "ds": columns.time_col}).reset_index(drop=True)


__all__ = ["STEPS", "RunResult", "run_pipeline"]
