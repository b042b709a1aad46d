"""Optuna tuning of the forecasters against statistical baselines.

:func:`tune` runs (or resumes) an Optuna study of a forecaster's parameters: every trial is scored on
the same rolling-origin validation windows cut from the training data as the baselines (seasonal
naive, Naive2, AutoETS, Theta by default), weak trials are pruned on their per-epoch validation loss,
and the result holds the study, the best parameters, the best model refitted on all the training
data and a leaderboard that says whether tuning beat the baselines. The objective is a point metric
or a probabilistic one, scored on the prediction intervals every model forecasts at ``level``:
``tune(..., metric="msis", level=95)`` or ``metric="crps"`` (:mod:`tsforecast.tuning.scoring`).

Studies live in an Optuna RDB storage (default: the SQLite file ``./optuna.db``), so an interrupted
job resumes where it stopped, and workers on several machines that run the same command against one
PostgreSQL or MySQL database share a study; Optuna's heartbeat marks a dead worker's trial FAIL.
A study records the settings that define its scores (:mod:`tsforecast.tuning.settings`), and a run
with other settings is refused rather than mixed into it.

Importing this package imports neither optuna nor torch; they load when a study runs.

Examples
--------
>>> from tsforecast import LSTMForecaster  # doctest: +SKIP
>>> from tsforecast.tuning import tune  # doctest: +SKIP
>>> result = tune(LSTMForecaster(horizon=48, season_length=24), train, n_trials=20)  # doctest: +SKIP
>>> print(result.verdict)  # doctest: +SKIP
>>> result.leaderboard  # doctest: +SKIP
>>> result.score_holdout(test)  # doctest: +SKIP
"""

from tsforecast.tuning.result import TuningResult, score_forecasts
from tsforecast.tuning.space import default_search_space
from tsforecast.tuning.storage import DEFAULT_STORAGE, make_storage
from tsforecast.tuning.study import tune
from tsforecast.tuning.validation import Validation

__all__ = [
    "DEFAULT_STORAGE",
    "TuningResult",
    "Validation",
    "default_search_space",
    "make_storage",
    "score_forecasts",
    "tune",
]
