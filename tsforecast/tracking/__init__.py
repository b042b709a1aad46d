"""Experiment tracking with MLflow: tracked fits, tracked backtests, forecasters as MLflow models.

An adapter: importing it imports neither mlflow nor matplotlib (they load inside the functions that
use them) and tracking never changes what a forecaster learns or predicts.

Three calls:

* :func:`track_fit` fits a forecaster inside a run and logs its parameters, the dataset, live
  per-epoch training metrics (neural forecasters), forecasts and figures, and the fitted forecaster
  as a pyfunc model (optionally registered under a name and alias).
* :func:`track_backtest` logs a :class:`~tsforecast.backtesting.BacktestResult` (one model or a
  :func:`~tsforecast.backtesting.compare` of several on identical windows): metrics per model and per
  horizon step, the comparison table, forecasts and figures.
* :func:`run` is a context manager around several calls: fits become child runs, backtests log
  into it.

Where runs go: the ``tracking_uri`` argument, else ``MLFLOW_TRACKING_URI``, else an embedded store
that needs no server: ``./mlflow.db`` (SQLite) with artifacts in ``./mlartifacts/``. Browse it with
``mlflow ui --backend-store-uri sqlite:///mlflow.db``.

Failures: a malformed tracking URI raises :class:`~tsforecast.exceptions.InvalidParameterError`
(:func:`check_tracking_uri`); a store that cannot be used, or does not answer within the
pre-flight's limits (10 s per request, no retry, unless ``MLFLOW_HTTP_REQUEST_TIMEOUT`` /
``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` say otherwise), raises :class:`~tsforecast.exceptions.TrackingError`
before anything is trained; a logging call that fails after the run started only warns (see
:mod:`tsforecast.tracking.runs`).

Examples
--------
>>> from tsforecast import tracking  # doctest: +SKIP
>>> from tsforecast.backtesting import compare  # doctest: +SKIP
>>> with tracking.run(experiment="m4-hourly", run_name="lstm-vs-baselines"):  # doctest: +SKIP
...     lstm, fit_run = tracking.track_fit(LSTMForecaster(horizon=48), train, dataset_name="m4-hourly",
...                                        registered_model_name="m4-hourly-lstm", model_alias="candidate")
...     result = compare({"lstm": lstm, "naive2": Naive2(season_length=24)}, train, horizon=48)
...     tracking.track_backtest(result, dataset_name="m4-hourly")
"""

from tsforecast.exceptions import TrackingError
from tsforecast.tracking.runs import run, track_backtest, track_fit
from tsforecast.tracking.store import DEFAULT_EXPERIMENT, Store, check_tracking_uri, resolve_store

__all__ = [
    "DEFAULT_EXPERIMENT",
    "Store",
    "TrackingError",
    "check_tracking_uri",
    "resolve_store",
    "run",
    "track_backtest",
    "track_fit",
]
