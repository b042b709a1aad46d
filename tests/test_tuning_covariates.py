"""Tuning with covariates: every trial, the baselines that declare covariates and the refit get X."""

from __future__ import annotations

from numbers import Real

import numpy as np
import pandas as pd
import pytest

optuna = pytest.importorskip("optuna")

from optuna.distributions import FloatDistribution  # noqa: E402
from sklearn.utils._param_validation import Interval  # noqa: E402

from tsforecast.base import BaseForecaster  # noqa: E402
from tsforecast.exceptions import InvalidInputError, InvalidParameterError  # noqa: E402
from tsforecast.tuning import tune  # noqa: E402
from tsforecast.tuning.storage import SETTINGS_ATTR  # noqa: E402


class ScaledCovariate(BaseForecaster):
    """Forecasts ``gain`` times the future-known covariate: the best gain is the data's."""

    _takes_covariates = True
    _parameter_constraints = {
        **BaseForecaster._parameter_constraints,
        "gain": [Interval(Real, None, None, closed="neither")],
    }

    def __init__(self, horizon=4, gain=1.0, future_covariates=("x",), past_covariates=None,
                 static_covariates=None, categorical_covariates=None):  # fmt: skip
        self.horizon = horizon
        self.gain = gain
        self.future_covariates = future_covariates
        self.past_covariates = past_covariates
        self.static_covariates = static_covariates
        self.categorical_covariates = categorical_covariates

    def _fit(self, panel, covariates):
        self.seen_rows_ = [len(f) for f in covariates.future]

    def _predict(self, panel, horizon, is_training_history, covariates):
        return np.vstack(
            [self.gain * f[len(v) :, 0] for f, v in zip(covariates.future, panel.values, strict=True)]
        )


def _data(length=60, extra=4):
    rng = np.random.default_rng(0)
    frames_y, frames_x = [], []
    for sid in ("a", "b"):
        x = rng.uniform(1, 10, length + extra)
        ds = np.arange(length + extra)
        frames_x.append(pd.DataFrame({"unique_id": sid, "ds": ds, "x": x}))
        frames_y.append(pd.DataFrame({"unique_id": sid, "ds": ds[:length], "y": 1.5 * x[:length]}))
    return pd.concat(frames_y, ignore_index=True), pd.concat(frames_x, ignore_index=True)


QUICK = dict(validation=2, pruner="none", include_default=True, n_trials=12, random_state=0)
SPACE = {"gain": FloatDistribution(0.5, 3.0)}


def test_trials_baselines_and_the_refit_get_the_covariates(tmp_path):
    y, X = _data()
    result = tune(
        ScaledCovariate(), y, X=X, search_space=SPACE, baselines=["naive"], storage=tmp_path / "s.db", **QUICK
    )
    assert result.best_params_["gain"] == pytest.approx(1.5, abs=0.15)
    assert result.leaderboard.loc["tuned", "mase"] < result.leaderboard.loc["Naive", "mase"]
    assert result.best_estimator.seen_rows_ == [60, 60]  # the refit: all of y's history, no more
    # The holdout forecast uses the future-known rows after the training data.
    test = pd.concat(
        [X.groupby("unique_id").tail(4).assign(y=lambda f: 1.5 * f["x"])[["unique_id", "ds", "y"]]]
    )
    scores = result.score_holdout(test)
    assert scores.loc["tuned", "smape"] < scores.loc["Naive", "smape"]
    settings = result.study.user_attrs[SETTINGS_ATTR]
    assert len(settings["covariates"]) == 10


def test_other_covariates_make_another_study_and_bad_ones_stop_before_it(tmp_path):
    y, X = _data()
    storage = tmp_path / "s.db"
    options = dict(search_space=SPACE, baselines=None, storage=storage, study_name="s", **QUICK)
    tune(ScaledCovariate(), y, X=X, **options)
    with pytest.raises(InvalidParameterError, match=r"covariates: study has"):
        tune(ScaledCovariate(), y, X=X.assign(x=X["x"] + 1.0), **options)
    with pytest.raises(InvalidInputError, match=r"X has no row for series 'a' at 5"):
        tune(ScaledCovariate(), y, X=X.drop(index=5), search_space=SPACE, storage=tmp_path / "t.db", **QUICK)
    assert not (tmp_path / "t.db").exists()
