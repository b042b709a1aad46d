"""One trial: clone the estimator, set the sampled parameters, backtest it on the validation windows.

Pruning rides on the estimator's ``callbacks`` parameter: after every epoch of every window's fit,
the trial reports the epoch's validation loss to Optuna at step ``window * max_epochs + epoch``, the
same step for every trial, and raises :class:`optuna.TrialPruned` out of ``fit`` when the pruner
says so. A pruned trial's network is then unreachable; it is collected (and the CUDA cache emptied)
before the next trial starts.
"""

from __future__ import annotations

import gc
import math
import os
import socket
import sys
import time
import warnings
import weakref
from dataclasses import replace

from sklearn.base import clone

from tsforecast.backtesting import backtest
from tsforecast.exceptions import ClippingWarning, TrainingError
from tsforecast.tuning.scoring import Scoring
from tsforecast.tuning.space import suggest
from tsforecast.tuning.validation import Validation

PARAMS_ATTR = "params"  # every parameter a trial set (sampled and fixed), for the refit
SCORES_ATTR = "scores"
WORKER_ATTR = "worker"  # host:pid of the process that ran the trial
ERROR_ATTR = "error"  # why a trial failed


class Objective:
    """The function Optuna minimises (see the module docstring).

    Parameters
    ----------
    estimator : BaseForecaster
        The prototype; never modified.
    space : mapping or callable
        See :mod:`tsforecast.tuning.space`.
    fixed_params : dict
        Set on every trial's clone besides the sampled ones.
    y : pd.Series or pd.DataFrame
        The training data the windows are cut from.
    validation : Validation
        Resolved windows.
    scoring : Scoring
        The metrics and interval levels each backtest scores; its ``column`` is returned to Optuna.
    reference : dict, optional
        Naive2's validation ``smape`` and ``mase``, for OWA.
    tracker : StudyTracker, optional
        Makes each trial a nested MLflow run.
    fit_params : dict
        ``freq``, ``id_col``, ``time_col``, ``target_col``.
    quiet : bool
        Silence the estimator's ClippingWarning during trials (sampled ``clip_norm`` values clip often).
    """

    def __init__(
        self,
        estimator,
        space,
        fixed_params,
        y,
        validation: Validation,
        scoring: Scoring,
        reference,
        tracker,
        fit_params,
        quiet=True,
    ):
        self.estimator = estimator
        self.space = space
        self.fixed_params = dict(fixed_params)
        self.y = y
        self.validation = validation
        self.scoring = scoring
        self.reference = reference
        self.tracker = tracker
        self.fit_params = dict(fit_params)
        self.quiet = quiet

    def __call__(self, trial) -> float:
        """Backtest one trial's parameters on the validation windows; returns its metric."""
        import optuna

        params = {**self.fixed_params, **suggest(trial, self.space, self.estimator)}
        # numpy scalars from a user's space function: the storage keeps JSON.
        params = {
            k: v.item() if hasattr(v, "item") and not hasattr(v, "__len__") else v for k, v in params.items()
        }
        trial.set_user_attr(PARAMS_ATTR, params)
        trial.set_user_attr(WORKER_ATTR, f"{socket.gethostname()}:{os.getpid()}")
        candidate = clone(self.estimator).set_params(**params)
        run = self.tracker.trial_run(trial, params) if self.tracker is not None else None
        own = candidate.get_params(deep=False)
        if "callbacks" in own:
            stride = int(own.get("max_epochs") or 1)
            report = _reporter(trial, stride, run.on_epoch if run is not None else None)
            candidate.set_params(callbacks=[*(own["callbacks"] or ()), report])
        started = time.perf_counter()
        pruned = None
        try:
            with warnings.catch_warnings():
                if self.quiet:  # a sampled clip_norm that clips often would warn every epoch
                    warnings.simplefilter("ignore", ClippingWarning)
                args = self.validation.backtest_args(self.scoring)
                result = backtest(candidate, self.y, name="trial", **args, **self.fit_params)
        except optuna.TrialPruned as error:
            pruned = str(error)
        except BaseException as error:
            trial.set_user_attr(ERROR_ATTR, f"{type(error).__name__}: {error}"[:1000])
            if run is not None:
                run.finish("FAILED")
            raise
        trial.set_user_attr("seconds", time.perf_counter() - started)
        if pruned is not None:
            del candidate
            free_memory()
            if run is not None:
                run.finish("KILLED")
            raise optuna.TrialPruned(pruned)
        scores = self.scoring.scores_of(result.summary.loc["trial"], self.reference)
        trial.set_user_attr(SCORES_ATTR, scores)
        value = scores[self.scoring.column]
        if not math.isfinite(value):
            message = f"trial {trial.number} scored {self.scoring.column}={value} on the validation windows."
            trial.set_user_attr(ERROR_ATTR, message)
            if run is not None:
                run.finish("FAILED", scores)
            raise TrainingError(message)
        if run is not None:
            run.finish("FINISHED", scores)
        return value


def _reporter(trial, stride: int, on_epoch=None):
    """The epoch callback of one trial; a closure, so that ``clone`` hands it on as is (no deep copy)."""
    import optuna

    seen = {"window": -1, "estimator": None}

    def report(estimator, record) -> bool:
        # The backtest fits a fresh clone per window, in window order: a new estimator = the next window.
        last = seen["estimator"]
        if last is None or last() is not estimator:
            seen["window"] += 1
            seen["estimator"] = weakref.ref(estimator)
        step = seen["window"] * stride + record.epoch
        if on_epoch is not None:
            on_epoch(estimator, replace(record, epoch=step))
        value = record.val_loss
        if not math.isfinite(value):
            return False
        trial.report(float(value), step)
        if trial.should_prune():
            raise optuna.TrialPruned(
                f"val_loss {value:.4g} at window {seen['window'] + 1}, epoch {record.epoch} (step {step})"
            )
        return False

    return report


def free_memory() -> None:
    """Collect unreachable networks and give cached CUDA memory back, after a pruned trial."""
    gc.collect()
    torch = sys.modules.get("torch")  # only when a network was trained: never import torch here
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
