"""Tracked runs: the :func:`run` context, :func:`track_fit` and :func:`track_backtest`.

Failure policy: everything that can fail because of the store is tried before training (the store
answers, the experiment exists or can be created, the run starts) and raises
:class:`~tsforecast.exceptions.TrackingError`. Once a run has started, a logging call that fails is
reported with a warning on this module's logger and the run gets a ``tsforecast.incomplete`` tag when
the store still answers; the fit goes on and its result is returned. Epoch metrics are queued
(MLflow's asynchronous logging), so a slow store never slows training.

Time limits: the pre-flight waits at most 10 s for each answer, without retry, unless the environment
sets ``MLFLOW_HTTP_REQUEST_TIMEOUT`` / ``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` (see
:mod:`tsforecast.tracking.store`). The calls after it use MLflow's own settings, the user's or
MLflow's defaults (120 s per attempt, 7 retries with growing backoff: about 20 minutes before one
call gives up), because a store that has just answered is more likely slow or rate-limiting, which
those retries are made for, than gone, and a large model upload must not be cut short. A server that
dies in the middle of a run therefore delays each remaining logging call by that much before its
warning; jobs that cannot wait set both variables (``MLFLOW_HTTP_REQUEST_TIMEOUT=30`` and
``MLFLOW_HTTP_REQUEST_MAX_RETRIES=2`` bound a call to about 1.5 minutes) or rely on their
orchestrator's timeout (SIGTERM ends the command with exit code 143, previous outputs kept).
"""

from __future__ import annotations

import logging
import tempfile
from contextlib import contextmanager
from pathlib import Path

import tsforecast
from tsforecast.exceptions import InvalidParameterError, TrackingError
from tsforecast.metrics.intervals import INTERVAL_COLUMN, interval_levels
from tsforecast.tracking import artifacts
from tsforecast.tracking.dataset import TrainingData, param_value
from tsforecast.tracking.epochs import (
    STOPPED_TAG,
    VALIDATION_TAG,
    EpochLogger,
    attached,
    stopped_by,
    training_history,
    validation_note,
)
from tsforecast.tracking.resume import RESUMED_TAG, log_missing_epochs, remember_run, unfinished_run
from tsforecast.tracking.store import (
    Store,
    did_not_answer,
    locate,
    no_answer_message,
    open_experiment,
    preflight_limits,
    using,
)
from tsforecast.urls import redact_url

_LOGGER = logging.getLogger(__name__)


@contextmanager
def run(experiment=None, run_name=None, *, tracking_uri=None, tags=None):
    """Open an MLflow run; tracked fits (and a tracked ``tune``'s new study run) inside it nest under it.

    Parameters
    ----------
    experiment : str, optional
        Experiment name, created when missing. Defaults to ``MLFLOW_EXPERIMENT_NAME``, else
        ``"tsforecast"``; inside an active MLflow run, to that run's experiment.
    run_name : str, optional
        Shown in the MLflow UI.
    tracking_uri : str, optional
        Overrides ``MLFLOW_TRACKING_URI`` and the embedded default (``sqlite:///mlflow.db`` with
        artifacts in ``./mlartifacts``). Inside an active run, the active run's store is used.
    tags : dict, optional
        Run tags.

    Yields
    ------
    str
        The run id.

    Raises
    ------
    TrackingError
        Before the body runs, if the store cannot be used.

    Examples
    --------
    >>> with run("m4-hourly", "lstm-vs-baselines") as parent_id:  # doctest: +SKIP
    ...     lstm, child_id = track_fit(LSTMForecaster(horizon=48), train)
    ...     track_backtest(compare({"lstm": lstm, "naive2": Naive2(season_length=24)}, train, 48))
    """
    with _open_run(experiment, run_name, tracking_uri, tags) as (run_id, _):
        yield run_id


@contextmanager
def _open_run(experiment, run_name, tracking_uri, tags, checkpointed=None):
    """:func:`run`, which continues the unfinished run of a ``checkpointed`` estimator's checkpoint.

    Yields ``(run_id, resumed)``.
    """
    import mlflow

    store, experiment_id, parent = locate(experiment, tracking_uri)
    all_tags = {"tsforecast.version": tsforecast.__version__, **(tags or {})}
    with using(store):
        with preflight_limits() as limits:
            try:
                resumed = checkpointed is not None and unfinished_run(checkpointed, store.uri)
                if resumed:
                    active = mlflow.start_run(run_id=resumed, nested=parent is not None)
                    times = int(active.data.tags.get(RESUMED_TAG, 0)) + 1
                    mlflow.set_tag(RESUMED_TAG, str(times))
                else:
                    active = mlflow.start_run(
                        experiment_id=experiment_id,
                        run_name=run_name,
                        nested=parent is not None,
                        tags=all_tags,
                    )
                if checkpointed is not None:
                    remember_run(checkpointed, active.info.run_id, store.uri)
            except Exception as error:
                if did_not_answer(error):
                    raise TrackingError(no_answer_message(store.uri, limits)) from error
                raise TrackingError(
                    f"cannot start an MLflow run in {redact_url(store.uri)!r}: {error}"
                ) from error
        status = "FAILED"
        try:
            yield active.info.run_id, bool(resumed)
            status = "FINISHED"
        finally:
            _end_run(active.info.run_id, status)


def track_fit(
    estimator,
    y,
    *,
    experiment=None,
    run_name=None,
    tracking_uri=None,
    dataset_name=None,
    log_model=True,
    registered_model_name=None,
    model_alias=None,
    plots=True,
    n_plot_series=4,
    tags=None,
    level=None,
    **fit_params,
):
    """Fit ``estimator`` on ``y`` inside an MLflow run and log everything needed to reproduce it.

    Logged: every ``get_params()`` value; the dataset (name, series count, length summary,
    frequency, and an ``mlflow.data`` record of the long history as the run's training input);
    for forecasters with a ``callbacks`` parameter, each epoch's training record as metrics at
    ``step=epoch``, live (``train_loss``, ``val_loss``, ``grad_norm_mean``, ``grad_norm_max``,
    ``clipped_fraction``, ``learning_rate``, ``epoch_seconds``). ``val_loss`` exists only when the
    forecaster holds out a validation tail (``validation_size > 0``); the run's tag
    ``tsforecast.validation`` says which (``"none (validation_size=0)"`` for the neural forecasters'
    default, and the training-curves plot notes it too). Then the forecasts from the end of ``y``
    (``forecasts.parquet``, with the interval bounds of ``level``) and, with ``plots``,
    ``forecasts.png`` (the bounds as shaded bands) and ``training_curves.png``; and
    the fitted forecaster as a pyfunc model named ``model``, which loads with
    ``mlflow.pyfunc.load_model(f"runs:/{run_id}/model")`` (its ``models:/`` URI is also in the run
    tag ``tsforecast.model_uri``).

    Parameters
    ----------
    estimator : BaseForecaster
        Fitted in place, as ``estimator.fit(y, **fit_params)`` would; its parameters are left as
        given (the epoch callback is attached for the fit only).
    y : pd.Series or pd.DataFrame
        The training history, in any layout the forecasters accept.
    experiment, run_name, tracking_uri, tags
        See :func:`run`. ``run_name`` defaults to the estimator's class name.
    dataset_name : str, optional
        Name of the dataset in MLflow (default ``"y"``).
    log_model : bool
        Log the fitted forecaster as an MLflow pyfunc model.
    registered_model_name : str, optional
        Also register it under this name (a new version per call).
    model_alias : str, optional
        Point this alias of the registered model at the new version.
    plots : bool
        Log the PNG figures.
    n_plot_series : int
        Series drawn in ``forecasts.png``.
    level : float or list of float, optional
        Prediction intervals (percent) of the logged forecasts: ``predict(level=level)`` adds the
        ``y_lo_<level>``/``y_hi_<level>`` columns; logged as the parameter ``forecast.level``.
    **fit_params
        Passed to ``fit`` (``X``, ``freq``, ``id_col``, ``time_col``, ``target_col``); the covariates
        ``X`` also reach the forecasts and the logged model, whose input frame carries their columns
        (:mod:`tsforecast.tracking.pyfunc`).

    Returns
    -------
    estimator : BaseForecaster
        The fitted estimator.
    run_id : str
        The MLflow run (a child run when called inside :func:`run` or another active run).

    Raises
    ------
    TrackingError
        Before fitting, if the store cannot be used.
    InvalidInputError
        Before any run starts, if ``y`` is unusable (the same check ``fit`` makes).

    Examples
    --------
    >>> from tsforecast.baselines import Theta  # doctest: +SKIP
    >>> model, run_id = track_fit(Theta(horizon=48, season_length=24), train,  # doctest: +SKIP
    ...                           dataset_name="m4-hourly", registered_model_name="m4-hourly-theta")
    >>> mlflow.pyfunc.load_model("models:/m4-hourly-theta/latest").predict(train)  # doctest: +SKIP
    """
    if model_alias is not None and registered_model_name is None:
        raise InvalidParameterError("model_alias needs registered_model_name; pass both or neither.")
    interval_levels(level)  # a bad level stops before any run starts
    data = TrainingData(y, fit_params, dataset_name)
    tags = {
        "tsforecast.estimator": f"{type(estimator).__module__}.{type(estimator).__qualname__}",
        **(tags or {}),
    }
    checkpointed = estimator if estimator.get_params(deep=False).get("checkpoint_dir") else None
    with _open_run(experiment, run_name or type(estimator).__name__, tracking_uri, tags, checkpointed) as (
        run_id,
        resumed,
    ):
        import mlflow

        steps = _Steps(run_id)
        if not resumed:  # a resumed run holds them from its first start (a checkpoint has the same)
            with steps.step("parameters"):
                mlflow.log_params({key: param_value(value) for key, value in estimator.get_params().items()})
                if level is not None:
                    mlflow.log_param("forecast.level", _levels_text(interval_levels(level)))
                if (validation := validation_note(estimator)) is not None:
                    mlflow.set_tag(VALIDATION_TAG, validation)
            with steps.step("dataset"):
                data.log()
        epochs = EpochLogger(run_id)
        with attached(estimator, epochs):
            estimator.fit(y, **fit_params)
        with steps.step("epoch metrics"):
            epochs.finish(estimator)
            if resumed:
                log_missing_epochs(run_id, training_history(estimator))
            if (reason := stopped_by(estimator)) is not None:
                mlflow.set_tag(STOPPED_TAG, reason)
        # A resumed fit's callbacks saw its new epochs only; history_ holds them all.
        curves = training_history(estimator) if resumed else epochs.frame()
        with steps.step("forecast artifacts"), tempfile.TemporaryDirectory() as folder:
            X = fit_params.get("X")
            artifacts.write_fit(
                Path(folder), estimator, data, curves, steps.step, plots, n_plot_series, X, level
            )
            mlflow.log_artifacts(folder)
        if log_model:
            from tsforecast.tracking.pyfunc import log_forecaster_model

            with steps.step("model"):
                info = log_forecaster_model(
                    estimator,
                    data.example(),
                    X=fit_params.get("X"),
                    registered_model_name=registered_model_name,
                    alias=model_alias,
                )
                mlflow.set_tag("tsforecast.model_uri", info.model_uri)
        steps.close()
    return estimator, run_id


def track_backtest(
    result,
    *,
    experiment=None,
    run_name=None,
    tracking_uri=None,
    dataset_name=None,
    plots=True,
    n_plot_series=4,
):
    """Log a backtest or comparison (a :class:`~tsforecast.backtesting.BacktestResult`) to MLflow.

    Inside an active run (:func:`run` or the caller's own) it logs into that run, else it opens one.
    Metrics, per model: ``{model}/{metric}`` from ``result.summary`` (``owa`` where a Naive2 was
    compared; with intervals ``msis_95``, ``coverage_95``, ``acd_95``... per level, as the backtest
    scored them) and ``{model}/{metric}_by_step`` at ``step`` = horizon step from ``result.by_horizon``.
    Parameters: ``backtest.models``, ``backtest.horizon``, ``backtest.n_windows``, ``backtest.dataset``
    and, when the forecasts carry intervals, ``backtest.level`` (``"80, 95"``).
    Artifacts under ``backtest/``: ``comparison.csv`` and ``comparison.html`` (every model on the
    same windows, one row each), ``by_horizon.csv``, ``forecasts.parquet`` and, with ``plots``,
    ``forecasts.png`` and ``error_by_horizon.png``.

    Parameters
    ----------
    result : BacktestResult
        From :func:`tsforecast.backtesting.backtest` or :func:`tsforecast.backtesting.compare`.
    experiment, run_name, tracking_uri
        See :func:`run`; used only when no run is active.
    dataset_name : str, optional
        Logged as the ``backtest.dataset`` parameter.
    plots : bool
        Log the PNG figures.
    n_plot_series : int
        Series drawn in ``forecasts.png``.

    Returns
    -------
    str
        The run id.

    Examples
    --------
    >>> result = compare({"lstm": lstm, "naive2": Naive2(season_length=24)}, train,  # doctest: +SKIP
    ...                  horizon=48, n_windows=3, season_length=24)
    >>> track_backtest(result, experiment="m4-hourly", dataset_name="m4-hourly")  # doctest: +SKIP
    """
    with _active_or_new_run(experiment, run_name or "backtest", tracking_uri) as run_id:
        import mlflow

        steps = _Steps(run_id)
        forecasts = result.forecasts
        with steps.step("backtest parameters"):
            models = list(result.summary.index)
            params = {"models": ", ".join(map(str, models)), "horizon": int(forecasts["step"].max())}
            params |= {"n_windows": int(forecasts["window"].nunique())}
            if dataset_name is not None:
                params["dataset"] = dataset_name
            if levels := _bound_levels(forecasts.columns):
                params["level"] = _levels_text(levels)
            mlflow.log_params({f"backtest.{key}": param_value(value) for key, value in params.items()})
        with steps.step("backtest metrics"):
            artifacts.log_backtest_metrics(result, run_id)
        with steps.step("backtest artifacts"), tempfile.TemporaryDirectory() as folder:
            artifacts.write_backtest(Path(folder), result, steps.step, plots, n_plot_series)
            mlflow.log_artifacts(folder, "backtest")
        steps.close()
    return run_id


def _bound_levels(columns) -> list:
    """The levels of the interval bounds among a forecast frame's columns (``y_lo_95`` -> 95.0)."""
    found = (INTERVAL_COLUMN.fullmatch(c) for c in columns if isinstance(c, str))
    return sorted({float(match[2]) for match in found if match is not None and match[1] == "lo"})


def _levels_text(levels) -> str:
    return ", ".join(f"{level:g}" for level in levels)


class _Steps:
    """Logging steps after the run started: a failure is reported, never raised."""

    def __init__(self, run_id):
        self.run_id = run_id
        self.failed = []

    @contextmanager
    def step(self, what):
        try:
            yield
        # Tracking must never break a fit or lose its result, whatever the store or a plot raises.
        except Exception as error:
            self.failed.append(what)
            _LOGGER.warning(
                "could not log the %s to MLflow run %s (%s: %s); results are unaffected, the run incomplete.",
                what,
                self.run_id,
                type(error).__name__,
                error,
            )

    def close(self) -> None:
        import mlflow

        if self.failed:
            with self.step("incomplete tag"):
                mlflow.set_tag("tsforecast.incomplete", ", ".join(self.failed))


@contextmanager
def _active_or_new_run(experiment, run_name, tracking_uri):
    import mlflow

    active = mlflow.active_run()
    if active is None:
        with run(experiment, run_name, tracking_uri=tracking_uri) as run_id:
            yield run_id
        return
    open_experiment(Store(mlflow.get_tracking_uri()), experiment_id=active.info.experiment_id)
    yield active.info.run_id


def _end_run(run_id, status) -> None:
    import mlflow

    try:
        mlflow.flush_async_logging()
    except Exception as error:
        _LOGGER.warning("some queued metrics of MLflow run %s were not logged: %s", run_id, error)
    try:
        mlflow.end_run(status)
    except Exception as error:
        _LOGGER.warning("could not mark MLflow run %s as %s: %s", run_id, status, error)
