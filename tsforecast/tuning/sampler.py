"""The seeded default sampler of :func:`~tsforecast.tuning.tune`: TPE, seeded per trial number.

A ``TPESampler(seed=s)`` draws from one random stream per process. Workers that start the same
command against one study (same seed, same empty history) therefore draw the same parameters, trial
for trial, and a scaled-out study repeats its trials instead of exploring. Here trial ``k`` draws
from a stream seeded with ``(s, k)``: trial numbers are unique within a study, so no two trials share
a stream, whichever worker or thread runs them, and a study run again by one worker from scratch
repeats its trials (a draw depends only on the seed, the trial number and the trials before it).

This module subclasses an Optuna class, so importing it imports optuna; only
:func:`~tsforecast.tuning.storage.resolve_sampler` loads it.
"""

from __future__ import annotations

import threading

import numpy as np
import optuna


class TrialSeededTPESampler(optuna.samplers.BaseSampler):
    """A TPE sampler whose random draws for trial ``k`` come from a stream seeded with ``(seed, k)``.

    Each trial gets its own :class:`optuna.samplers.TPESampler` (constant liar on, so that parallel
    workers also spread out once TPE takes over from the random start-up trials), created when the
    trial starts and dropped when it ends.

    Parameters
    ----------
    seed : int
        Mixed with each trial's number (``numpy.random.SeedSequence([seed, number])``).
    **tpe_options
        Passed to every trial's ``TPESampler``; ``constant_liar`` defaults to True.

    Examples
    --------
    >>> import optuna  # doctest: +SKIP
    >>> study = optuna.create_study(sampler=TrialSeededTPESampler(0))  # doctest: +SKIP
    >>> trial = study.ask()  # doctest: +SKIP
    >>> 0 <= trial.suggest_float("x", 0, 1) <= 1  # doctest: +SKIP
    True
    """

    def __init__(self, seed: int, **tpe_options):
        self.seed = int(seed)
        self.tpe_options = {"constant_liar": True, **tpe_options}
        self._samplers = {}  # trial number -> its TPESampler, from before_trial to after_trial
        self._lock = threading.Lock()  # Optuna's n_jobs > 1 runs trials in threads

    def _of(self, trial):
        with self._lock:
            sampler = self._samplers.get(trial.number)
            if sampler is None:
                seed = int(np.random.SeedSequence([self.seed, trial.number]).generate_state(1)[0])
                sampler = optuna.samplers.TPESampler(seed=seed, **self.tpe_options)
                self._samplers[trial.number] = sampler
            return sampler

    def infer_relative_search_space(self, study, trial):
        """Optuna's hook, answered by the trial's own seeded ``TPESampler``."""
        return self._of(trial).infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):
        """Optuna's hook, answered by the trial's own seeded ``TPESampler``."""
        return self._of(trial).sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        """Optuna's hook, answered by the trial's own seeded ``TPESampler``."""
        return self._of(trial).sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study, trial) -> None:
        """Optuna's hook, answered by the trial's own seeded ``TPESampler``."""
        self._of(trial).before_trial(study, trial)

    def after_trial(self, study, trial, state, values) -> None:
        """Hand the trial to its own ``TPESampler``, then forget that sampler."""
        with self._lock:
            sampler = self._samplers.pop(trial.number, None)
        if sampler is not None:
            sampler.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        """Nothing to do: Optuna reseeds per thread so that threads differ; trials here already do."""
