""":func:`tune`: an Optuna study of a forecaster's parameters against statistical baselines."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from contextlib import contextmanager

from sklearn.base import clone

from tsforecast.backtesting import backtest, compare
from tsforecast.data import Columns, to_panel
from tsforecast.data.parquet import is_parquet_source
from tsforecast.exceptions import InvalidParameterError
from tsforecast.registry import baseline_names, entry, estimator_class
from tsforecast.tuning import storage as storages
from tsforecast.tuning.objective import PARAMS_ATTR, SCORES_ATTR, Objective
from tsforecast.tuning.result import DEFAULT, TUNED, TuningResult, leaderboard, naive2_name, verdict
from tsforecast.tuning.scoring import Scoring, check_intervals
from tsforecast.tuning.settings import study_settings
from tsforecast.tuning.space import (
    check_parameters,
    check_space,
    default_point,
    default_search_space,
    describe,
)
from tsforecast.tuning.trials import TRIAL_ERRORS, best_trial, optimize
from tsforecast.tuning.validation import Validation, check_covariates, longest_stream

_LOGGER = logging.getLogger(__name__)

DEFAULT_N_TRIALS = 20
DEFAULT_BASELINES = ("snaive", "naive2", "autoets", "theta")  # names of tsforecast.registry.MODELS
_TRIAL_ONLY = ("validation_size",)  # set on the trials for pruning (see _fixed_params), not on the refit
DEFAULT_ATTR = "tsforecast.default"  # marks the trial of the estimator's own parameters


def tune(
    estimator,
    y,
    *,
    search_space=None,
    n_trials=None,
    timeout=None,
    storage=None,
    study_name=None,
    pruner="median",
    baselines="default",
    validation=None,
    metric="mase",
    level=None,
    hold=(),
    include_default=True,
    refit=True,
    sampler=None,
    n_jobs=1,
    random_state=None,
    tracking=False,
    tracking_uri=None,
    experiment=None,
    verbose=False,
    X=None,
    **fit_params,
) -> TuningResult:
    """Tune a forecaster's parameters with Optuna, scored against statistical baselines.

    Each trial clones ``estimator``, sets parameters drawn from ``search_space`` and is backtested
    on rolling-origin windows cut from ``y`` (:class:`Validation`), the same windows for every trial
    and every baseline; Optuna minimises ``metric``, a point metric or one of the intervals asked of
    every model at ``level`` (:mod:`tsforecast.tuning.scoring`). Recurrent forecasters report their validation
    loss after each epoch, so the pruner stops weak trials early. The study lives in ``storage``:
    run the same call again (or on other machines against one database) and it resumes, the trials
    already finished counting towards ``n_trials``.

    Parameters
    ----------
    estimator : BaseForecaster
        The prototype (left untouched). Trials of a forecaster with a ``validation_size`` parameter
        set to 0 use ``validation_size=horizon`` (the last window's worth of each fit's history), so
        that every epoch has a validation loss to prune on and to stop early with; the refit keeps the
        estimator's own ``validation_size`` and learns from all of ``y``.
    y : pd.Series or pd.DataFrame
        The training data, in any layout the forecasters accept. Test data must not be in it.
    search_space : mapping or callable, optional
        Parameter name -> ``optuna.distributions`` object, or ``f(trial) -> dict``. Default for the
        recurrent forecasters: :func:`~tsforecast.tuning.space.default_search_space`.
    n_trials : int, optional
        Finished (complete or pruned) trials the study should hold; trials from earlier sessions
        and other workers count, failed ones do not (a worker whose last
        :func:`failure_limit` trials in a row failed stops with :class:`TrainingError`). Default 20
        unless ``timeout`` is given (then: until the timeout).
    timeout : float, optional
        Seconds after which this call starts no new trial.
    storage : str, path or optuna storage, optional
        An Optuna RDB URL or SQLite file path (default ``sqlite:///optuna.db`` in the working
        directory), opened with the heartbeat on (:func:`~tsforecast.tuning.make_storage`), or any
        Optuna storage object. A malformed or empty URL, or one of an unsupported database, raises
        before anything is created (:func:`~tsforecast.tuning.storage.parse_storage`).
    study_name : str, optional
        Default: the estimator class, the metric with its levels (``msis_95``) and a hash of the
        data, so the same call on the same data resumes and other data starts another study. A study
        records the settings that define it (:mod:`tsforecast.tuning.settings`: the estimator's
        parameters that are not searched, the search space, metric, interval levels, windows and
        data); resuming it with any of them changed
        raises, naming each difference. ``n_trials``, ``timeout``, ``n_jobs``, ``random_state``,
        ``verbose`` and the number of workers may differ.
    pruner : {"median", "hyperband", "none"} or optuna.pruners.BasePruner, default="median"
    baselines : "default", sequence or mapping, default="default"
        Scored once on the validation windows: ``"default"`` is seasonal naive, Naive2, AutoETS and
        Theta; a sequence of baseline names of :data:`tsforecast.registry.MODELS` (``naive``,
        ``snaive``, ``naive2``, ``ses``, ``holt``, ``damped``, ``theta``, ``autoets``, ``autoarima``,
        or their class names) or estimators; a mapping name -> estimator; None or ``()`` for none.
    validation : Validation, int or dict, optional
        The windows (an int is ``n_windows``). Default: 2 windows of the estimator's horizon.
    metric : {"mase", "smape", "mae", "rmse", "owa", "msis", "crps"}, default="mase"
        The objective. ``"owa"`` needs Naive2 among the baselines. ``"msis"`` (M4's mean scaled
        interval score of the ``level`` % interval; ``"msis_95"`` spells the level in) and ``"crps"``
        (the scaled CRPS of the quantiles the intervals bound, the point as the median) score
        prediction intervals: every trial, baseline and the default row forecasts them, and the
        leaderboard adds ``msis_<L>``, ``coverage_<L>``, ``acd_<L>`` (pooled, as M4) and ``crps``.
        A recurrent forecaster gives intervals from its quantile head: fix the quantiles that bound
        the level (``LSTMForecaster(quantiles=[0.025, 0.975])`` for 95); a model that cannot give
        them is refused before any study opens. Any forecaster gets them wrapped in
        :class:`~tsforecast.conformal.ConformalIntervals`.
    level : float or list of float, optional
        Interval levels in percent. Default: 95 for ``"msis"`` and ``"crps"`` (M4 scored 95%
        intervals), none for a point metric; given beside a point metric, the intervals are scored
        and reported but not optimised. ``"msis"`` takes one level, ``"crps"`` several. Part of
        what defines a study, and of its default name.
    hold : iterable of str, default=()
        Parameters of the search space to hold at the estimator's own values instead (a user who set
        ``hidden_size`` and wants only the rest searched).
    include_default : bool, default=True
        Score the estimator's own parameters on the same windows (the ``"default"`` row). A new study
        whose search space holds them runs them as its first trial (same fixed parameters, no extra
        cost, and TPE starts from a known point); otherwise the estimator as given is backtested.
    refit : bool, default=True
        Refit the best parameters on all of ``y`` (``best_estimator``).
    sampler : optuna.samplers.BaseSampler, optional
        Default: TPE with the constant liar on, seeded per trial number when ``random_state`` is
        given (:class:`~tsforecast.tuning.sampler.TrialSeededTPESampler`).
    n_jobs : int, default=1
        Trials run at once in this process (threads). Scale out with more processes instead.
    random_state : int, optional
        Seeds the trials' estimators whose own ``random_state`` is None, so that a trial's training
        is reproducible from its parameters (refit them with the same seed). The sampler draws
        trial ``k`` from a stream seeded with ``(random_state, k)``: one worker running a new study
        again draws the same parameters, while workers sharing a study (same command, same seed)
        draw different ones, and their interleaving makes the study's later TPE proposals depend on
        timing, so a scaled-out study is not reproducible as a whole.
    tracking : bool, default=False
        Log the study to MLflow: one parent run, one nested run per trial (parameters, per-epoch
        curves, scores), the baselines' backtest and the leaderboard. Inside an active MLflow run
        (:func:`tsforecast.tracking.run`) a new study's run nests under it.
    tracking_uri, experiment : str, optional
        Where (see :func:`tsforecast.tracking.run`).
    verbose : bool, default=False
        Optuna's per-trial log lines, and its progress bar when ``timeout`` is set (the trials a study
        still needs are not known in advance: failed ones do not count).
    X : pd.DataFrame, optional
        Covariates of an estimator that declares some (``future_covariates``, ...), over ``y``'s
        history: every trial's windows and the refit get them (each window sees only its own rows),
        and so do the baselines that declare covariates. Part of what defines the study.
    **fit_params
        ``freq``, ``id_col``, ``time_col``, ``target_col``: passed to every ``fit``.

    Returns
    -------
    TuningResult

    Raises
    ------
    InvalidParameterError
        For an unusable setting (the estimator's parameters and the search space's ranges are
        checked against the estimator's own table before any study is opened), or a study of that
        name created with other settings.
    TrainingError
        When no trial completed, or when :func:`failure_limit` trials in a row failed in this
        call (the message gives the failures).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from tsforecast import LSTMForecaster  # doctest: +SKIP
    >>> t = np.arange(240)
    >>> y = pd.DataFrame({"unique_id": "a", "ds": t, "y": 10 + np.sin(2 * np.pi * t / 12)})
    >>> result = tune(LSTMForecaster(horizon=6, season_length=12, max_epochs=3), y, n_trials=4,
    ...               storage="sqlite:///example.db", baselines=["naive2"])  # doctest: +SKIP
    >>> sorted(result.leaderboard.index)  # doctest: +SKIP
    ['Naive2', 'default', 'tuned']
    >>> print(result.verdict)  # doctest: +SKIP
    """
    scoring = Scoring.resolve(metric, level)
    metric = scoring.column  # the leaderboard column the study minimises
    check_parameters(estimator)  # a bad setting stops here, before any study is opened, even a full one
    columns = Columns(
        *(fit_params.get(k, d) for k, d in (("id_col", "unique_id"), ("time_col", "ds"), ("target_col", "y")))
    )
    panel = to_panel(y, freq=fit_params.get("freq"), columns=columns, missing="keep")
    if is_parquet_source(y):  # read once: the trials, baselines and refit take the panel
        y = panel
    params = estimator.get_params(deep=False)
    recurrent = hasattr(estimator, "feature_spec")
    season = params.get("season_length")
    if recurrent and season == "auto":  # the estimator resolves its own season from the data
        season = estimator.feature_spec(panel).season_length
    check_covariates(estimator, X, panel, columns)  # before any study is opened
    validation = Validation.coerce(validation).resolve(params.get("horizon"), season)
    n_trials = _check_budget(n_trials, timeout)
    fixed = _fixed_params(params, validation, random_state)
    if search_space is None and recurrent:
        prototype = clone(estimator).set_params(**fixed)
        history = panel.head(validation.span)  # the first window's: the shortest
        spec = prototype.feature_spec(history)
        longest = longest_stream(history, spec.context, prototype.get_params()["validation_size"])
        search_space = default_search_space(estimator, longest, spec)
    elif search_space is None:
        search_space = default_search_space(estimator)  # explains that a space is needed
    space = check_space(search_space, estimator)
    space = _hold(space, hold, estimator)
    check_intervals(estimator, scoring.levels, space=space, n_series=panel.n_series)
    prototypes = _baselines(baselines, validation)
    for name, baseline in prototypes.items():
        check_intervals(baseline, scoring.levels, n_series=panel.n_series, role=f"baseline {name!r}")
    if metric == "owa" and naive2_name(prototypes) is None:
        raise InvalidParameterError("metric='owa' is relative to Naive2: add 'naive2' to baselines.")
    settings = study_settings(estimator, fixed, space, scoring, validation, panel, covariates=X)
    baseline_params = dict(fit_params)
    if X is not None:
        fit_params = {**fit_params, "X": X}  # trials, the default row and the refit
        if any(p.covariate_roles() for p in prototypes.values()):
            baseline_params["X"] = X
    study_name = study_name or f"{settings['estimator']}-{scoring.label}-{settings['data']}"
    if tracking:  # a malformed tracking URI fails here, before a study is created (no network call)
        from tsforecast.tracking.store import resolve_store

        resolve_store(tracking_uri)
    with _optuna_verbosity(verbose):
        store = storages.resolve_storage(storage)
        study = storages.open_study(
            store,
            study_name,
            storages.resolve_sampler(sampler, random_state),
            storages.resolve_pruner(pruner),
            settings,
        )
        tracker = None
        if tracking:
            from tsforecast.tuning.runs import StudyTracker

            tracker = StudyTracker(study, tracking_uri, experiment)

        with _parent_run(tracker, settings, study, store, space, pruner) as active:
            rows, reference = _score_baselines(
                prototypes, y, validation, scoring, verbose, active, baseline_params
            )
            point = default_point(space, estimator)
            if include_default and point is not None and not study.get_trials(deepcopy=False):
                # A new study starts from the estimator's own parameters: the "default" row for free.
                study.enqueue_trial(point, user_attrs={DEFAULT_ATTR: True}, skip_if_exists=True)
            objective = Objective(
                estimator, space, fixed, y, validation, scoring, reference, tracker, fit_params, not verbose
            )
            optimize(study, objective, n_trials, timeout, n_jobs, verbose)
            best = best_trial(study)
            trial_params = dict(best.user_attrs.get(PARAMS_ATTR, {**fixed, **best.params}))
            # The hold-out that gave the trials a per-epoch loss is not for the final model: the refit
            # learns from all of y, as the estimator was configured.
            best_params = {k: v for k, v in trial_params.items() if k not in _TRIAL_ONLY or k not in fixed}
            rows[TUNED] = (TUNED, best.user_attrs[SCORES_ATTR], best.number)
            if include_default:
                rows.update(
                    _default_row(
                        study, estimator, point, y, validation, scoring, reference, verbose, fit_params
                    )
                )
            table = leaderboard(rows, metric)
            beat, sentence = verdict(table, metric, type(estimator).__name__, validation, scoring.levels)
            _LOGGER.info("%s", sentence)
            best_estimator = (
                clone(estimator).set_params(**best_params).fit(y, **fit_params) if refit else None
            )
            if active:
                from tsforecast.tuning.runs import log_summary

                log_summary(tracker, table, best_params, sentence)
        return TuningResult(
            study=study,
            best_params_=best_params,
            best_value_=float(best.value),
            best_trial_=best.number,
            best_estimator=best_estimator,
            leaderboard=table,
            metric=metric,
            validation=validation,
            beat_best_baseline=beat,
            verdict=sentence,
            baselines=prototypes,
            default_estimator=estimator,
            training_data=y,
            fit_params=fit_params,
            level=scoring.levels,
        )


def _check_budget(n_trials, timeout):
    if n_trials is not None and (isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1):
        raise InvalidParameterError(f"n_trials must be an integer >= 1 or None; got {n_trials!r}.")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0
    ):
        raise InvalidParameterError(f"timeout must be a positive number of seconds or None; got {timeout!r}.")
    return DEFAULT_N_TRIALS if n_trials is None and timeout is None else n_trials


def _hold(space, hold, estimator):
    """``space`` without the parameters named in ``hold`` (they keep the estimator's values)."""
    hold = [hold] if isinstance(hold, str) else list(hold or ())
    if not hold:
        return space
    if callable(space):
        raise InvalidParameterError("hold= applies to a mapping search space; a function decides its own.")
    if unknown := [name for name in hold if name not in estimator.get_params(deep=False)]:
        raise InvalidParameterError(f"hold names {unknown}, not parameters of {type(estimator).__name__}.")
    searched = {name: distribution for name, distribution in space.items() if name not in hold}
    if not searched:
        raise InvalidParameterError(
            f"hold={hold} leaves nothing of the search space {sorted(space)} to tune."
        )
    return searched


def _fixed_params(params: dict, validation: Validation, random_state) -> dict:
    fixed = {}
    if "callbacks" in params and params.get("validation_size") == 0:
        fixed["validation_size"] = validation.horizon
    if "random_state" in params and params["random_state"] is None and random_state is not None:
        fixed["random_state"] = int(random_state)
    return fixed


def _baselines(baselines, validation: Validation) -> dict:
    """Name -> unfitted baseline forecaster, with the validation horizon and season."""
    if baselines is None:
        return {}
    if isinstance(baselines, str):
        baselines = (
            DEFAULT_BASELINES if baselines == "default" else [b for b in baselines.split(",") if b.strip()]
        )
    items = baselines.items() if isinstance(baselines, Mapping) else ((None, b) for b in baselines)
    resolved = {}
    for name, baseline in items:
        if isinstance(baseline, str):
            if baseline.strip().lower() == "none":
                continue
            try:
                found = entry(baseline, "baselines")
            except InvalidParameterError:
                found = None
            if found is None or not found.baseline:
                raise InvalidParameterError(
                    f"unknown baseline {baseline!r}; known: {baseline_names()}, or pass estimators."
                )
            cls = estimator_class(baseline)
            accepted = cls._get_param_names()
            settings = {"horizon": validation.horizon, "season_length": validation.season_length}
            baseline = cls(**{k: v for k, v in settings.items() if k in accepted})
        if not hasattr(baseline, "fit") or not hasattr(baseline, "get_params"):
            raise InvalidParameterError(f"a baseline must be a forecaster or a name; got {baseline!r}.")
        name = name or type(baseline).__name__
        if name in resolved or name in (DEFAULT, "tuned"):
            raise InvalidParameterError(f"baseline name {name!r} is taken; pass a mapping of distinct names.")
        resolved[name] = baseline
    return resolved


def _score_baselines(
    prototypes: dict, y, validation: Validation, scoring: Scoring, verbose, active, fit_params
):
    """Leaderboard rows of the baselines, all on the validation windows, and Naive2's scores (for OWA)."""
    if not prototypes:
        return {}, None
    comparison = compare(prototypes, y, **validation.backtest_args(scoring), verbose=verbose, **fit_params)
    if active:
        from tsforecast.tracking import track_backtest

        track_backtest(comparison, plots=False)
    naive2 = naive2_name(prototypes)
    reference = None if naive2 is None else scoring.scores_of(comparison.summary.loc[naive2], None)
    summary = comparison.summary
    return {
        name: ("baseline", scoring.scores_of(summary.loc[name], reference), None) for name in prototypes
    }, reference


def _default_row(
    study, estimator, point, y, validation: Validation, scoring: Scoring, reference, verbose, fit_params
) -> dict:
    """The estimator's own parameters: their trial when the study ran them, else a backtest of it as given.

    A resumed study's default trial counts only when it drew the ``point`` this estimator holds.
    """
    from optuna.trial import TrialState

    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        drew = point is not None and all(point.get(k) == v for k, v in trial.params.items())
        if trial.user_attrs.get(DEFAULT_ATTR) and drew:
            return {DEFAULT: (DEFAULT, trial.user_attrs[SCORES_ATTR], trial.number)}
    try:
        args = validation.backtest_args(scoring)
        result = backtest(estimator, y, name=DEFAULT, **args, verbose=verbose, **fit_params)
    except TRIAL_ERRORS as error:
        _LOGGER.warning(
            "the estimator as given failed on the validation windows (%s); no default row.", error
        )
        return {}
    return {DEFAULT: (DEFAULT, scoring.scores_of(result.summary.loc[DEFAULT], reference), None)}


@contextmanager
def _optuna_verbosity(verbose: bool):
    """Optuna's own log level for the duration: its per-trial INFO lines only when ``verbose``."""
    import optuna

    previous = optuna.logging.get_verbosity()
    if not verbose:
        optuna.logging.set_verbosity(max(previous, optuna.logging.WARNING))
    try:
        yield
    finally:
        optuna.logging.set_verbosity(previous)


@contextmanager
def _parent_run(tracker, settings: dict, study, store, space, pruner):
    """The study's MLflow parent run when tracking (see :mod:`tsforecast.tuning.runs`); yields whether."""
    if tracker is None:
        yield False
        return
    params = {
        "study": study.study_name,
        "storage": storages.storage_url(store),
        **{key: settings[key] for key in ("metric", "level") if key in settings},
        "validation": settings["validation"],
        "pruner": pruner if isinstance(pruner, str) or pruner is None else type(pruner).__name__,
        "search_space": describe(space),
        "params": settings["params"],
    }
    with tracker.parent(params):
        yield True
