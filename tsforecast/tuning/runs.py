"""MLflow records of a study: one parent run for the study, one nested run per trial.

The parent run's id is kept in the study (user attribute ``mlflow.parent_run_id``), so a resumed
study and every worker on other machines log their trials under the same parent. Trial runs are
created through the client with an explicit parent (``mlflow.parentRunId``), which works from Optuna's
worker threads too; each gets the trial's parameters, its per-epoch curves, live, at ``step`` = the
reported step (window * max_epochs + epoch), and its final scores. The failure policy is
:mod:`tsforecast.tracking`'s: a store that cannot be used raises before any training, a logging call
that fails later only warns.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager

from tsforecast.tracking.dataset import param_value
from tsforecast.tracking.epochs import EpochLogger
from tsforecast.tracking.store import DEFAULT_EXPERIMENT, open_experiment, resolve_store, using

_LOGGER = logging.getLogger(__name__)
PARENT_ATTR = "mlflow.parent_run_id"


class StudyTracker:
    """Opens the study's parent run and makes the trials' nested runs (see the module docstring)."""

    def __init__(self, study, tracking_uri=None, experiment=None):
        self.study = study
        self.store = resolve_store(tracking_uri)
        name = experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT
        self.experiment_id = open_experiment(self.store, name)  # raises TrackingError before training
        self.parent_id = None

    @contextmanager
    def parent(self, params: dict):
        """The parent run, active (fluent API) in this thread for the duration."""
        import mlflow

        with using(self.store):
            client = mlflow.MlflowClient()
            run_id = self.study.user_attrs.get(PARENT_ATTR)
            if run_id is None or not _usable(client, run_id):
                tags = {"tsforecast.study": self.study.study_name, "tsforecast.kind": "tuning-study"}
                run_id = client.create_run(self.experiment_id, run_name=self.study.study_name, tags=tags)
                run_id = run_id.info.run_id
                self.study.set_user_attr(PARENT_ATTR, run_id)
            self.parent_id = run_id
            mlflow.start_run(run_id=run_id)
            _quietly("study parameters", run_id, self._log_params, client, run_id, params)
            status = "FAILED"
            try:
                yield run_id
                status = "FINISHED"
            finally:
                _quietly("run status", run_id, mlflow.end_run, status)

    def trial_run(self, trial, params: dict) -> TrialRun:
        return TrialRun(self, trial, params)

    @staticmethod
    def _log_params(client, run_id, params):
        run = client.get_run(run_id)
        # MLflow params are write-once: a resumed run keeps those it has.
        new = {k: param_value(v) for k, v in params.items() if k not in run.data.params}
        for key, value in new.items():
            client.log_param(run_id, key, value)


class TrialRun:
    """One trial's nested run: parameters at the start, epoch curves live, scores and state at the end."""

    def __init__(self, tracker: StudyTracker, trial, params: dict):
        import mlflow

        self.run_id = None
        self.logger = None
        with using(tracker.store):
            try:
                client = mlflow.MlflowClient()
                tags = {
                    "mlflow.parentRunId": tracker.parent_id,
                    "tsforecast.study": tracker.study.study_name,
                    "optuna.trial_number": str(trial.number),
                }
                run = client.create_run(tracker.experiment_id, run_name=f"trial {trial.number}", tags=tags)
                self.run_id = run.info.run_id
                for key, value in params.items():
                    client.log_param(self.run_id, key, param_value(value))
                trial.set_user_attr("mlflow_run_id", self.run_id)
                self.logger = EpochLogger(self.run_id)
            except Exception as error:  # tracking must never stop a trial
                _LOGGER.warning("could not open the MLflow run of trial %s: %s", trial.number, error)
        self.store = tracker.store

    def on_epoch(self, estimator, record) -> None:
        if self.logger is not None:
            self.logger(estimator, record)

    def finish(self, status: str, scores: dict | None = None) -> None:
        """Wait for the queued epoch metrics, log the final scores, close the run as ``status``."""
        if self.run_id is None:
            return
        import mlflow

        with using(self.store):
            client = mlflow.MlflowClient()
            if self.logger is not None:  # waits for the queued epoch metrics
                _quietly("epoch metrics", self.run_id, self.logger.finish, None)
            if scores:
                _quietly("scores", self.run_id, self._log_scores, client, scores)
            _quietly("run status", self.run_id, client.set_terminated, self.run_id, status)

    def _log_scores(self, client, scores):
        for name, value in scores.items():
            client.log_metric(self.run_id, f"val_{name}", float(value))


def log_summary(tracker: StudyTracker, leaderboard, best_params: dict, verdict: str) -> None:
    """The end of a study on its parent run: leaderboard CSV, best parameters and score, the verdict."""
    import tempfile
    from pathlib import Path

    import mlflow

    run_id = tracker.parent_id

    def log():
        client = mlflow.MlflowClient()
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "leaderboard.csv"
            leaderboard.to_csv(path)
            client.log_artifact(run_id, str(path), "tuning")
        for model, row in leaderboard.iterrows():
            for name, value in row.items():
                if isinstance(value, float) and value == value:
                    client.log_metric(run_id, f"{model}/{name}", value)
        client.set_tag(run_id, "tsforecast.verdict", verdict[:5000])
        client.set_tag(run_id, "tsforecast.best_params", str(best_params)[:5000])

    with using(tracker.store):
        _quietly("leaderboard", run_id, log)


def _usable(client, run_id) -> bool:
    try:
        return client.get_run(run_id).info.lifecycle_stage == "active"
    except Exception:  # a run id from another store, or a deleted run: start a new parent
        return False


def _quietly(what, run_id, function, *args):
    try:
        return function(*args)
    except Exception as error:  # after the run started, a logging failure is reported, never raised
        _LOGGER.warning("could not log the %s to MLflow run %s: %s", what, run_id, error)
        return None
