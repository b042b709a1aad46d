"""Tuning for prediction intervals (issue 17): ``tune(metric="msis" | "crps", level=...)``
(:mod:`tsforecast.tuning.scoring`).

Every trial, baseline and default row forecasts the intervals on the validation windows and the
study minimises the interval metric; a model that cannot give them is refused before any study
opens; the levels define a study. Real Optuna on SQLite files in ``tmp_path``; the statistical
studies search SeasonalNaive's season (a parameter with a known best value on period-12 data), the
recurrent one is a tiny LSTM with a quantile head.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

optuna = pytest.importorskip("optuna")
torch = pytest.importorskip("torch")

from faulttools import TUNE_QUICK, TUNE_TINY, clip_space, tuning_panel  # noqa: E402
from optuna.distributions import CategoricalDistribution, IntDistribution  # noqa: E402
from optuna.samplers import GridSampler  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

from tsforecast import ConformalIntervals  # noqa: E402
from tsforecast.backtesting import backtest  # noqa: E402
from tsforecast.base import BaseForecaster  # noqa: E402
from tsforecast.baselines import SeasonalNaive  # noqa: E402
from tsforecast.exceptions import InvalidParameterError  # noqa: E402
from tsforecast.nn.estimators import LSTMForecaster  # noqa: E402
from tsforecast.tuning import tune  # noqa: E402
from tsforecast.tuning.storage import SETTINGS_ATTR  # noqa: E402

torch.set_num_threads(1)

SEASONS = [1, 3, 12]
WINDOWS = {"n_windows": 2, "horizon": 6, "season_length": 12}  # MSIS and MASE scaled at the period
QUANTILES = [0.025, 0.975]


def _season_study(tmp_path, seasons=SEASONS, **options):
    """A grid study of SeasonalNaive's season_length: every value is one trial."""
    grid = GridSampler({"season_length": seasons}, seed=0)
    settings = dict(
        search_space={"season_length": CategoricalDistribution(seasons)},
        n_trials=len(seasons),
        storage=tmp_path / "intervals.db",
        sampler=grid,
        pruner="none",
        baselines=None,
        include_default=False,
        refit=False,
        validation=WINDOWS,
    )
    return tune(SeasonalNaive(horizon=6), tuning_panel(), **(settings | options))


def _values(result, column):
    """Trial value and the trial's own score ``column``, per season_length."""
    trials = result.study.get_trials(states=(TrialState.COMPLETE,))
    return {t.params["season_length"]: (t.value, t.user_attrs["scores"][column]) for t in trials}


def test_msis_is_the_objective_and_matches_a_backtest_of_the_intervals(tmp_path):
    result = _season_study(tmp_path, metric="msis")
    values = _values(result, "msis_95")
    assert sorted(values) == SEASONS
    for season, (value, msis) in values.items():
        assert value == msis  # Optuna minimised MSIS, not a point metric
        direct = backtest(
            SeasonalNaive(horizon=6, season_length=season),
            tuning_panel(),
            horizon=6,
            n_windows=2,
            season_length=12,
            level=95,
            metrics=("msis", "mase"),
        ).summary.iloc[0]
        assert msis == pytest.approx(direct["msis_95"], rel=1e-12)
        assert value != pytest.approx(direct["mase"])
    assert result.best_params_ == {"season_length": 12}  # the data's period: by far the best intervals
    assert result.metric == "msis_95" and result.level == (95.0,)
    assert result.best_value_ == min(value for value, _ in values.values())
    board = result.leaderboard
    assert {"msis_95", "coverage_95", "acd_95", "crps"} <= set(board.columns)
    assert board.loc["tuned", "acd_95"] == pytest.approx(abs(board.loc["tuned", "coverage_95"] - 0.95))
    assert "95% intervals held" in result.verdict and result.study.study_name.startswith(
        "SeasonalNaive-msis_95-"
    )


def test_msis_and_mase_can_rank_trials_differently(tmp_path):
    """A wrapper's calibration windows change its intervals and leave its points alone: MASE ties."""
    space = {"n_windows": CategoricalDistribution([10, 20])}
    options = dict(pruner="none", baselines=None, include_default=False, refit=False, validation=WINDOWS)
    options |= dict(search_space=space, n_trials=2, sampler=GridSampler({"n_windows": [10, 20]}, seed=0))
    model = ConformalIntervals(SeasonalNaive(horizon=6, season_length=12))
    result = tune(model, tuning_panel(length=400), metric="msis", storage=tmp_path / "c.db", **options)
    scores = {t.params["n_windows"]: t.user_attrs["scores"] for t in result.study.trials}
    assert scores[10]["mase"] == scores[20]["mase"]
    assert scores[10]["msis_95"] != scores[20]["msis_95"]
    best = min(scores, key=lambda n: scores[n]["msis_95"])
    assert result.best_params_ == {"n_windows": best}
    assert result.best_value_ == scores[best]["msis_95"]


def test_crps_scores_every_level_asked_for(tmp_path):
    result = _season_study(tmp_path, metric="crps", level=[80, 95])
    values = _values(result, "crps")
    assert all(value == crps for value, crps in values.values())
    assert result.best_params_ == {"season_length": 12}
    assert {"msis_80", "msis_95", "coverage_80", "coverage_95", "acd_80", "crps"} <= set(result.leaderboard)
    assert result.study.user_attrs[SETTINGS_ATTR]["level"] == [80.0, 95.0]
    assert result.study.study_name.startswith("SeasonalNaive-crps_80_95-")
    # More quantiles, another CRPS: the levels are what the score is made of.
    single = _season_study(tmp_path, metric="crps", study_name="crps-95")
    assert single.best_value_ != pytest.approx(result.best_value_)


def test_a_point_metric_with_a_level_reports_intervals_and_a_point_study_records_no_level(tmp_path):
    with_level = _season_study(tmp_path, metric="mase", level=90)
    assert _values(with_level, "mase")[12][0] == _values(with_level, "mase")[12][1]
    assert {"msis_90", "coverage_90", "acd_90"} <= set(with_level.leaderboard.columns)
    assert with_level.study.user_attrs[SETTINGS_ATTR]["level"] == [90.0]
    point = _season_study(tmp_path, metric="mase")
    assert "level" not in point.study.user_attrs[SETTINGS_ATTR]  # studies made before issue 17 resume
    assert "msis_90" not in point.leaderboard.columns
    assert point.study.study_name != with_level.study.study_name


def test_a_resumed_study_with_another_level_is_refused(tmp_path):
    _season_study(tmp_path, metric="msis", level=95, study_name="fixed")
    with pytest.raises(InvalidParameterError, match="created for another tuning job") as caught:
        _season_study(tmp_path, metric="msis", level=80, study_name="fixed")
    assert "level: study has [95.0], now [80.0]" in str(caught.value)
    with pytest.raises(InvalidParameterError, match=r"level: study has \[95.0\], now \(not set\)"):
        _season_study(tmp_path, metric="mase", study_name="fixed")
    # The default names differ by level: no clash, a study each.
    first = _season_study(tmp_path, metric="msis", level=95)
    second = _season_study(tmp_path, metric="msis_80")
    assert first.study.study_name != second.study.study_name and second.metric == "msis_80"


class LastValue(BaseForecaster):
    """A forecaster without intervals of its own."""

    def __init__(self, horizon=1):
        self.horizon = horizon

    def _fit(self, panel):
        self.last_ = np.array([v[-1] for v in panel.values])

    def _predict(self, panel, horizon, is_training_history):
        return np.repeat(np.array([v[-1] for v in panel.values])[:, None], horizon, axis=1)


NO_QUANTILES = r"quantiles=None, without \[0.025, 0.975\].*quantiles=\[0.025, 0.975\]"
ONE_SEASON = {"season_length": CategoricalDistribution([1, 12])}


@pytest.mark.parametrize(
    ("estimator", "options", "message"),
    [
        (LSTMForecaster(**TUNE_TINY), {}, NO_QUANTILES),
        (LSTMForecaster(**TUNE_TINY, quantiles=[0.1, 0.9]), {}, r"without \[0.025, 0.975\]"),
        (
            LSTMForecaster(**TUNE_TINY, quantiles=QUANTILES),
            dict(level=80),
            r"80% prediction intervals.*\[0.1, 0.9\]",
        ),
        (
            LastValue(horizon=6),
            dict(search_space={"horizon": IntDistribution(6, 6)}),
            r"ConformalIntervals\(LastValue",
        ),
        (
            ConformalIntervals(LastValue(horizon=6), n_windows=3),
            dict(search_space={"step": IntDistribution(6, 12)}, validation={"horizon": 6}),
            "needs 19 calibration scores per horizon step, and n_windows=3 gives 6 over 2 series",
        ),
        (
            ConformalIntervals(SeasonalNaive(horizon=6), method="quantile", calibration_levels=[80]),
            dict(search_space={"n_windows": IntDistribution(10, 20)}, validation={"horizon": 6}),
            r"calibration_levels=\[80.0, 95.0\]",
        ),
        (
            SeasonalNaive(horizon=6),
            dict(search_space=ONE_SEASON, baselines={"last": LastValue(6)}),
            r"baseline 'last' \(LastValue\).*no prediction intervals of its own",
        ),
    ],
    ids=[
        "lstm-no-quantiles",
        "lstm-other-quantiles",
        "lstm-other-level",
        "no-intervals",
        "too-few-scores",
        "uncalibrated-level",
        "baseline",
    ],
)
def test_a_model_that_cannot_give_the_intervals_is_refused_before_a_study_opens(
    tmp_path, estimator, options, message
):
    storage = tmp_path / "never.db"
    settings = dict(TUNE_QUICK, search_space=clip_space(), metric="msis", storage=storage) | options
    with pytest.raises(InvalidParameterError, match=message) as caught:
        tune(estimator, tuning_panel(), **settings)
    assert "Nothing was tuned" in str(caught.value)
    assert not storage.exists()


@pytest.mark.parametrize(
    ("metric", "level", "message"),
    [
        ("msis", 0, "strictly between 0 and 100"),
        ("msis", 100, "strictly between 0 and 100"),
        ("crps", 150, "strictly between 0 and 100"),
        ("msis", "95", "strictly between 0 and 100"),
        ("msis", [80, 95], "scores one interval"),
        ("msis_95", 80, "scores the 95% interval but level=80"),
        ("pinball", None, "msis_<level>"),
    ],
)
def test_bad_metrics_and_levels_get_a_clear_error(tmp_path, metric, level, message):
    with pytest.raises(InvalidParameterError, match=message):
        tune(SeasonalNaive(horizon=6), tuning_panel(), metric=metric, level=level, storage=tmp_path / "x.db")
    assert not (tmp_path / "x.db").exists()


def test_a_recurrent_forecaster_is_tuned_for_msis_with_its_quantile_head(tmp_path):
    y = tuning_panel()
    estimator = LSTMForecaster(**{**TUNE_TINY, "max_epochs": 2, "quantiles": QUANTILES})
    result = tune(
        estimator,
        y,
        metric="msis",
        search_space=clip_space(),
        n_trials=2,
        storage=tmp_path / "lstm.db",
        pruner="none",
        baselines=["naive2"],
        validation=1,
        random_state=0,
    )
    board = result.leaderboard
    assert {"Naive2", "tuned", "default"} == set(board.index)
    columns = ["msis_95", "coverage_95", "acd_95", "crps", "mase", "owa"]
    assert np.isfinite(board[columns].to_numpy(dtype=float)).all()
    assert list(board["msis_95"]) == sorted(board["msis_95"])
    assert result.best_value_ == board.loc["tuned", "msis_95"]
    trial = result.study.best_trial
    assert trial.value == trial.user_attrs["scores"]["msis_95"]
    assert result.best_estimator.get_params()["quantiles"] == QUANTILES  # refitted with its quantile head
    test = tuning_panel(length=78).groupby("unique_id").tail(6)
    holdout = result.score_holdout(test)
    assert {"Naive2", "tuned", "default"} == set(holdout.index)
    assert np.isfinite(
        holdout[["msis_95", "coverage_95", "acd_95", "crps", "owa"]].to_numpy(dtype=float)
    ).all()
    assert holdout.loc["Naive2", "owa"] == pytest.approx(1.0)
    forecasts = result.best_estimator.predict(level=95)
    expected = _msis_by_hand(forecasts, test, y)
    assert holdout.loc["tuned", "msis_95"] == pytest.approx(expected, rel=1e-9)


def _msis_by_hand(forecasts: pd.DataFrame, test: pd.DataFrame, train: pd.DataFrame) -> float:
    """M4's MSIS (a = 0.05, seasonal lag 12) per series, then the mean over series."""
    scores = []
    for uid, actual in test.groupby("unique_id"):
        f = forecasts[forecasts["unique_id"] == uid].merge(actual, on=["unique_id", "ds"])
        y, lo, hi = f["y"].to_numpy(), f["y_lo_95"].to_numpy(), f["y_hi_95"].to_numpy()
        history = train.loc[train["unique_id"] == uid, "y"].to_numpy()
        penalty = (hi - lo) + 40 * np.maximum(lo - y, 0) + 40 * np.maximum(y - hi, 0)
        scores.append(penalty.mean() / np.abs(history[12:] - history[:-12]).mean())
    return float(np.mean(scores))


def test_the_tune_command_optimises_msis_at_the_level_given(tmp_path, monkeypatch, capsys):
    from clitools import main_in_process

    monkeypatch.chdir(tmp_path)
    tuning_panel().to_csv("train.csv", index=False)
    common = ["tune", "train.csv", "--model", "lstm", "--horizon", "6", "--season-length", "12"]
    common += ["--n-trials", "1", "--n-windows", "1", "--baselines", "snaive", "--pruner", "none", "--quiet"]
    common += ["--param", "max_epochs=1", "--param", "hidden_size=4", "--param", "tbptt_steps=24"]
    common += ["--param", "batch_size=8"]
    without = main_in_process(*common, "--metric", "msis", "--level", "95", "--storage", "a.db")
    assert without == 2 and "quantiles=[0.025, 0.975]" in capsys.readouterr().err
    code = main_in_process(
        *common, "--param", "quantiles=[0.025,0.975]", "--metric", "msis", "--level", "95",
        "--storage", "b.db", "--output", "out",
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    leaderboard = pd.read_csv(tmp_path / "out" / "leaderboard.csv")
    assert {"msis_95", "coverage_95", "acd_95"} <= set(leaderboard.columns)
    assert leaderboard["msis_95"].notna().all()  # the trial and the seasonal naive, both scored
    assert main_in_process(*common, "--metric", "msis", "--level", "150", "--storage", "c.db") == 2
    assert "'150' is not a level" in capsys.readouterr().err
