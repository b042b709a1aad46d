"""Running a study's trials: the optimisation loop, the guard against endless failures, the best trial."""

from __future__ import annotations

import logging

from tsforecast.exceptions import InvalidInputError, TrainingError
from tsforecast.tuning import storage as storages
from tsforecast.tuning.objective import ERROR_ATTR

# A trial whose training diverged or whose parameters the data cannot take (a TBPTT chunk longer than
# the series) is marked FAIL and the study goes on; a bad setting (InvalidParameterError) stops it.
TRIAL_ERRORS = (TrainingError, InvalidInputError)
_LOGGER = logging.getLogger(__name__)


def failure_limit(n_trials) -> int:
    """Failed trials in a row after which a worker gives up: ``n_trials`` clamped to 3..10 (10 without).

    A setting or data that fails every trial would otherwise run forever, since failed trials do not
    count towards ``n_trials``; a few failures in a row are still tolerated, since some regions of a
    space fail (a learning rate that diverges), and small studies give up sooner.
    """
    return max(3, min(10, n_trials or 10))


class FailureGuard:
    """Optuna callback: counts this worker's failed trials in a row and stops it at ``limit``."""

    def __init__(self, limit: int):
        self.limit = limit
        self.in_a_row = []  # the failed trials since the last finished one

    def __call__(self, study, trial) -> None:
        """After each trial of this worker: count a failure, or reset the count."""
        if trial.state.name != "FAIL":
            self.in_a_row = []
            return
        self.in_a_row.append(trial)
        if len(self.in_a_row) >= self.limit:
            study.stop()

    def check(self, study, n_trials) -> None:
        """Raise when this worker stopped because of the failures (after ``optimize``)."""
        if len(self.in_a_row) < self.limit:
            return
        reasons = sorted({str(t.user_attrs.get(ERROR_ATTR, "?"))[:300] for t in self.in_a_row})[:3]
        target = "" if n_trials is None else f" of {n_trials}"
        raise TrainingError(
            f"{len(self.in_a_row)} trials in a row failed in this worker of study {study.study_name!r} "
            f"(trials {self.in_a_row[0].number}-{self.in_a_row[-1].number}), so it stopped with "
            f"{storages.n_finished(study)}{target} finished trials; errors: {reasons}. Check the search "
            "space against the data; the study is kept, and the same call resumes it."
        )


def optimize(study, objective, n_trials, timeout, n_jobs, verbose) -> None:
    """Run trials until the study holds ``n_trials`` finished ones, ``timeout`` passes or failures stop it."""
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    guard = FailureGuard(failure_limit(n_trials))
    callbacks = [guard]
    if n_trials is not None:
        if storages.n_finished(study) >= n_trials:
            _LOGGER.info("study %s already holds %d finished trials; none added.", study.study_name, n_trials)
            return
        # Optuna's own n_trials counts this worker's tries, failed ones too, so a study with failures
        # would end short: stop instead when the study (all workers together) holds n_trials finished.
        states = tuple(TrialState[s] for s in storages.FINISHED_STATES)
        callbacks.append(MaxTrialsCallback(n_trials, states=states))
    study.optimize(
        objective,
        n_trials=None,
        timeout=timeout,
        n_jobs=n_jobs,
        catch=TRIAL_ERRORS,
        callbacks=callbacks,
        gc_after_trial=True,
        show_progress_bar=bool(verbose),
    )
    guard.check(study, n_trials)


def best_trial(study):
    """The best completed trial; :class:`TrainingError` when none completed, with the first failures."""
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        failed = study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
        reasons = sorted({str(t.user_attrs.get(ERROR_ATTR, "?"))[:300] for t in failed})[:3]
        raise TrainingError(
            f"no trial of study {study.study_name!r} completed ({len(study.trials)} trials: all pruned or "
            f"failed); first failures: {reasons}. Widen n_trials, or check the search space against the data."
        )
    return study.best_trial
