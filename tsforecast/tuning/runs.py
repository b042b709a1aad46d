"""MLflow records of a study: one parent run for the study, one nested run per trial.

The parent run's id is kept in the study (user attribute ``mlflow.parent_run_id``), so a resumed
study and every worker on other machines log their trials under the same parent. A study's parent
run is created inside the MLflow run active at that moment, if any (:func:`tsforecast.tracking.run`,
or the caller's ``mlflow.start_run``), as its child; a resumed study keeps its parent run where it
is. Two workers starting at once may each create a parent run: each records its own and reads the
study's record back, a worker that finds another worker's run there adopts it and deletes its own,
and every trial run and the summary go to the run the study records when they are logged. A worker
that ends while other workers' trials still run leaves the parent RUNNING; the last one marks it
FINISHED.

Trial runs are created through the client with an explicit parent (``mlflow.parentRunId``), which
works from Optuna's worker threads too; each gets the trial's parameters, its per-epoch curves, live,
at ``step`` = the reported step (window * max_epochs + epoch), and its final scores. The failure
policy is :mod:`tsforecast.tracking`'s: a store that cannot be used raises before any training, a
logging call that fails later only warns.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager

from tsforecast.tracking.dataset import param_value
from tsforecast.tracking.epochs import EpochLogger
from tsforecast.tracking.store import locate, using

_LOGGER = logging.getLogger(__name__)
PARENT_ATTR = "mlflow.parent_run_id"


class StudyTracker:
    """Opens the study's parent run and makes the trials' nested runs (see the module docstring)."""

    def __init__(self, study, tracking_uri=None, experiment=None):
        self.study = study
        # Raises TrackingError before any training; inside an active run, its store and experiment.
        self.store, self.experiment_id, self.outer_run_id = locate(experiment, tracking_uri)
        self.parent_id = None

    @contextmanager
    def parent(self, params: dict):
        """The parent run, active (fluent API) in this thread for the duration."""
        import mlflow

        with using(self.store):
            client = mlflow.MlflowClient()
            run_id = self.parent_id = self._parent_run(client)
            mlflow.start_run(run_id=run_id, nested=self.outer_run_id is not None)
            _quietly("study parameters", run_id, self._log_params, client, run_id, params)
            status = "FAILED"
            try:
                yield run_id
                status = "RUNNING" if _quietly("trial states", run_id, self._others_running) else "FINISHED"
            finally:
                # Another worker's trials still running: leave the shared run RUNNING (popped from
                # this thread's active runs); the last worker to end marks it FINISHED.
                _quietly("run status", run_id, mlflow.end_run, status)
                if run_id != (recorded := self.run_id()):
                    # Lost a simultaneous start (module docstring): the trials went to the recorded run.
                    _LOGGER.info("study run %s duplicates %s; deleting it.", run_id, recorded)
                    _quietly("duplicate study run", run_id, client.delete_run, run_id)

    def run_id(self) -> str | None:
        """The study's parent run as the study records it now (see the module docstring)."""
        try:
            return self.study.user_attrs.get(PARENT_ATTR) or self.parent_id
        except Exception as error:  # a storage hiccup must not stop a trial: keep ours
            _LOGGER.warning("could not read the study's MLflow run id: %s", error)
            return self.parent_id

    def _parent_run(self, client) -> str:
        run_id = self.study.user_attrs.get(PARENT_ATTR)
        if run_id is not None and _usable(client, run_id):
            return run_id
        tags = {"tsforecast.study": self.study.study_name, "tsforecast.kind": "tuning-study"}
        if self.outer_run_id is not None:
            tags["mlflow.parentRunId"] = self.outer_run_id
        mine = client.create_run(self.experiment_id, run_name=self.study.study_name, tags=tags).info.run_id
        self.study.set_user_attr(PARENT_ATTR, mine)
        recorded = self.study.user_attrs.get(PARENT_ATTR)
        if recorded != mine and _usable(client, recorded):
            client.delete_run(mine)  # another worker's, written after ours: one parent for the study
            return recorded
        return mine

    def _others_running(self) -> bool:
        """Whether trials of other workers still run (this worker's are done when it ends)."""
        from optuna.trial import TrialState

        from tsforecast.tuning.storage import fail_stale_trials

        fail_stale_trials(self.study)  # a dead worker's trial must not hold the run open
        return bool(self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))

    def trial_run(self, trial, params: dict) -> TrialRun:
        """The nested MLflow run of ``trial``, opened now with its parameters."""
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
                    "mlflow.parentRunId": tracker.run_id(),
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
        """Epoch callback of the trial's estimator: the record goes to the run's epoch logger."""
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

    run_id = tracker.run_id()

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
