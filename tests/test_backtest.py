"""Rolling-origin backtests on real baselines."""

import doctest
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.utils.validation import check_is_fitted

from tsforecast import backtesting
from tsforecast.backtesting import backtest, compare
from tsforecast.base import BaseForecaster
from tsforecast.baselines import Naive, Naive2, SeasonalNaive
from tsforecast.exceptions import InvalidInputError, InvalidParameterError, NotFittedError
from tsforecast.metrics import msis


@pytest.fixture
def panel():
    rng = np.random.default_rng(0)
    rows = []
    for uid, length in (("short", 40), ("long", 55)):
        t = np.arange(length)
        y = 50 + 10 * np.sin(2 * np.pi * t / 6) + rng.normal(0, 1, length)
        rows.append(pd.DataFrame({"unique_id": uid, "ds": t, "y": y}))
    return pd.concat(rows, ignore_index=True)


def test_windows_end_at_each_series_end_and_naive_repeats_last_value(panel):
    result = backtest(Naive(), panel, horizon=4, n_windows=3, step=2)
    frame = result.forecasts
    assert set(frame["window"]) == {0, 1, 2}
    last = frame[frame["window"] == 2]
    for uid, length in (("short", 40), ("long", 55)):
        rows = last[last["unique_id"] == uid]
        assert list(rows["ds"]) == list(range(length - 4, length))
        assert list(rows["step"]) == [1, 2, 3, 4]
        history_end = panel[(panel["unique_id"] == uid) & (panel["ds"] == length - 5)]["y"].item()
        np.testing.assert_allclose(rows["forecast"], history_end)
    first = frame[(frame["window"] == 0) & (frame["unique_id"] == "long")]
    assert list(first["ds"]) == [47, 48, 49, 50]


def test_actuals_are_the_true_values(panel):
    frame = backtest(Naive(), panel, horizon=3, n_windows=2).forecasts
    merged = frame.merge(panel, on=["unique_id", "ds"])
    np.testing.assert_array_equal(merged["actual"], merged["y"])


def test_summary_is_mean_over_series_then_windows(panel):
    result = backtest(SeasonalNaive(season_length=6), panel, horizon=6, n_windows=2, season_length=6)
    expected = result.per_series.groupby("window")["smape"].mean().mean()
    assert result.summary.loc["SeasonalNaive", "smape"] == pytest.approx(expected)
    assert list(result.by_horizon.loc["SeasonalNaive"].index) == [1, 2, 3, 4, 5, 6]


def test_compare_uses_identical_windows_and_reports_owa(panel):
    models = {"naive": Naive(), "snaive": SeasonalNaive(season_length=6), "naive2": Naive2(season_length=6)}
    result = compare(models, panel, horizon=6, n_windows=2, season_length=6)
    actuals = [
        g.sort_values(["window", "unique_id", "ds"])["actual"].to_numpy()
        for _, g in result.forecasts.groupby("model")
    ]
    for other in actuals[1:]:
        np.testing.assert_array_equal(actuals[0], other)
    assert list(result.summary.index) == ["naive", "snaive", "naive2"]
    assert result.summary.loc["naive2", "owa"] == pytest.approx(1.0)
    assert result.summary.loc["snaive", "owa"] < result.summary.loc["naive", "owa"]


def test_refit_false_fits_once_and_matches_for_local_models(panel):
    refit = backtest(SeasonalNaive(season_length=6), panel, horizon=6, n_windows=3, refit=True)
    once = backtest(SeasonalNaive(season_length=6), panel, horizon=6, n_windows=3, refit=False)
    np.testing.assert_allclose(refit.forecasts["forecast"], once.forecasts["forecast"])


def test_callers_estimator_is_left_unfitted(panel):
    model = Naive()
    backtest(model, panel, horizon=2)
    with pytest.raises(NotFittedError):
        check_is_fitted(model, "training_panel_")


def test_series_too_short_for_the_windows_is_named(panel):
    with pytest.raises(InvalidInputError, match="'short' has 40 observations"):
        backtest(Naive(), panel, horizon=10, n_windows=4)


@pytest.mark.parametrize(
    "kwargs", [{"horizon": 0}, {"horizon": 2, "n_windows": 0}, {"horizon": 2, "step": -1}]
)
def test_bad_window_parameters(panel, kwargs):
    with pytest.raises(InvalidParameterError):
        backtest(Naive(), panel, **kwargs)


def test_docstring_example_of_an_unnamed_series_runs():
    assert doctest.testmod(backtesting, raise_on_error=False).failed == 0
    result = backtest(Naive(), pd.Series(np.arange(30.0)), horizon=3, n_windows=2)
    assert set(result.forecasts["unique_id"]) == {"series"}


def test_package_level_backtest_is_the_function_after_any_import():
    """`from tsforecast import backtest` once resolved to the submodule of the same name."""
    code = (
        "import tsforecast.baselines\n"
        "from tsforecast import SeasonalNaive, backtest, compare\n"
        "import tsforecast\n"
        "assert callable(backtest) and tsforecast.backtest is backtest, tsforecast.backtest\n"
        "assert callable(compare) and tsforecast.compare is compare\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_by_horizon_has_owa_per_step_against_naive2(panel):
    models = {"naive": Naive(), "snaive": SeasonalNaive(season_length=6), "naive2": Naive2(season_length=6)}
    result = compare(models, panel, horizon=6, n_windows=2, season_length=6)
    steps = result.by_horizon
    assert "owa" in steps.columns
    np.testing.assert_allclose(steps.loc["naive2", "owa"], 1.0)
    for model in ("naive", "snaive"):
        mine, reference = steps.loc[model], steps.loc["naive2"]
        expected = 0.5 * (mine["smape"] / reference["smape"] + mine["mase"] / reference["mase"])
        np.testing.assert_allclose(mine["owa"], expected)
    assert "owa" not in backtest(Naive(), panel, horizon=6).by_horizon.columns  # no Naive2, no OWA


class _QuantileNaive(Naive):
    """Naive with a fixed +-2 band as quantile columns, like a recurrent forecaster with quantiles."""

    def _predict(self, panel, horizon, is_training_history):
        point = super()._predict(panel, horizon, is_training_history)
        return {"point": point, "q0.1": point - 2.0, "q0.9": point + 2.0}


def test_quantile_columns_are_scored_per_series_and_step(panel):
    result = backtest(_QuantileNaive(), panel, horizon=4, n_windows=2, metrics=("mae", "pinball", "coverage"))
    frame = result.forecasts
    inside = (frame["actual"] >= frame["q0.1"]) & (frame["actual"] <= frame["q0.9"])
    assert list(result.by_horizon.columns) == ["mae", "pinball_q0.1", "pinball_q0.9", "coverage_q0.1_q0.9"]
    by_step = inside.groupby([frame["window"], frame["step"]]).mean().groupby("step").mean()
    np.testing.assert_allclose(result.by_horizon.loc["_QuantileNaive", "coverage_q0.1_q0.9"], by_step)
    assert result.summary.loc["_QuantileNaive", "pinball_q0.9"] > 0


class _EchoCovariate(Naive):
    """Forecasts the future-known covariate ``x`` itself: a model whose score shows which rows of X
    each window's forecast used."""

    _takes_covariates = True

    def __init__(self, horizon=1, future_covariates=("x",), past_covariates=None, static_covariates=None,
                 categorical_covariates=None, n_jobs=None, verbose=False):  # fmt: skip
        super().__init__(horizon=horizon, n_jobs=n_jobs, verbose=verbose)
        self.future_covariates = future_covariates
        self.past_covariates = past_covariates
        self.static_covariates = static_covariates
        self.categorical_covariates = categorical_covariates

    def _fit(self, panel, covariates):
        self.lengths_ = panel.lengths

    def _predict(self, panel, horizon, is_training_history, covariates):
        return np.vstack([f[len(v) :, 0] for f, v in zip(covariates.future, panel.values, strict=True)])


def test_covariates_reach_only_the_models_that_declare_them_window_by_window(panel):
    X = panel[["unique_id", "ds"]].assign(x=panel["y"] + 1.0)  # y shifted by one: MAE exactly 1
    result = compare({"echo": _EchoCovariate(), "naive": Naive()}, panel, horizon=4, n_windows=3, X=X)
    assert result.summary.loc["echo", "mae"] == pytest.approx(1.0)
    assert result.summary.loc["naive", "mae"] > 2.0


def test_bad_covariates_stop_a_backtest_before_any_fit(panel):
    X = panel[["unique_id", "ds"]].assign(x=panel["y"]).drop(index=3)
    with pytest.raises(InvalidInputError, match=r"X has no row for series 'short' at 3"):
        backtest(_EchoCovariate(), panel, horizon=4, n_windows=2, X=X)
    with pytest.raises(InvalidInputError, match=r"none of the models \['Naive'\] declares covariates"):
        backtest(Naive(), panel, horizon=4, X=X)


# --- prediction intervals: level=..., scored by MSIS, coverage and ACD ----------------------------


class _Last(BaseForecaster):
    """The last observed value, without intervals of its own."""

    def __init__(self, horizon=1):
        self.horizon = horizon

    def _fit(self, panel):
        self.n_fits_ = getattr(self, "n_fits_", 0) + 1

    def _predict(self, panel, horizon, is_training_history):
        return np.repeat([[values[-1]] for values in panel.values], horizon, axis=1)  # (n_series, horizon)


class _Band(_Last):
    """The last value with the band ``+- width * level / 100`` as its central ``level`` % interval."""

    def __init__(self, horizon=1, width=8.0):
        super().__init__(horizon=horizon)
        self.width = width

    def _predict_intervals(self, panel, horizon, is_training_history, levels):
        point = self._predict(panel, horizon, is_training_history)
        return point, {lv: (point - self.width * lv / 100, point + self.width * lv / 100) for lv in levels}


def test_backtest_with_level_scores_the_bounds_the_model_forecast(panel):
    metrics = ("mase", "msis", "coverage", "acd")
    result = backtest(_Band(), panel, horizon=4, n_windows=3, level=95, metrics=metrics, season_length=6)
    frame = result.forecasts
    np.testing.assert_allclose(frame["y_lo_95"], frame["forecast"] - 7.6)
    np.testing.assert_allclose(frame["y_hi_95"], frame["forecast"] + 7.6)
    assert list(result.summary.columns) == ["mase", "msis_95", "coverage_95", "acd_95"]

    expected = {}
    for (window, uid), rows in frame.groupby(["window", "unique_id"]):
        history = panel[(panel["unique_id"] == uid) & (panel["ds"] < rows["ds"].min())]["y"]
        expected[window, uid] = msis(rows["actual"], rows["y_lo_95"], rows["y_hi_95"], history, 6)
        scored = result.per_series.loc[("_Band", window, uid), "msis_95"]
        assert scored == pytest.approx(expected[window, uid])
    mean_over_series_then_windows = pd.Series(expected).groupby(level=0).mean().mean()
    assert result.summary.loc["_Band", "msis_95"] == pytest.approx(mean_over_series_then_windows)

    inside = (frame["actual"] >= frame["y_lo_95"]) & (frame["actual"] <= frame["y_hi_95"])
    assert 0 < inside.mean() < 1
    assert result.summary.loc["_Band", "coverage_95"] == pytest.approx(inside.mean())
    assert result.summary.loc["_Band", "acd_95"] == pytest.approx(abs(inside.mean() - 0.95))
    by_step = result.by_horizon.loc["_Band"]
    np.testing.assert_allclose(by_step["coverage_95"], inside.groupby(frame["step"]).mean())
    np.testing.assert_allclose(by_step["acd_95"], (inside.groupby(frame["step"]).mean() - 0.95).abs())


def test_backtest_summary_acd_is_pooled_not_a_mean_of_series_acds():
    rng = np.random.default_rng(5)
    calm = pd.DataFrame({"unique_id": "calm", "ds": range(30), "y": 50 + rng.uniform(-0.1, 0.1, 30)})
    wild = pd.DataFrame({"unique_id": "wild", "ds": range(30), "y": 50 + rng.normal(0, 30, 30)})
    y = pd.concat([calm, wild], ignore_index=True)
    result = backtest(_Band(width=1.0), y, horizon=5, n_windows=2, level=80, metrics=["coverage", "acd"])
    per_series = result.per_series["coverage_80"].groupby(level="unique_id").mean()
    assert per_series["calm"] == 1.0 and per_series["wild"] < 0.8  # one over-, one under-covered
    inside = result.forecasts["actual"].between(result.forecasts["y_lo_80"], result.forecasts["y_hi_80"])
    assert result.summary.loc["_Band", "acd_80"] == pytest.approx(abs(inside.mean() - 0.8))
    assert result.summary.loc["_Band", "acd_80"] < result.per_series["acd_80"].mean() - 0.1


def test_backtest_with_level_without_refit_forecasts_the_same_bounds(panel):
    refit = backtest(_Band(), panel, horizon=4, n_windows=3, level=[80, 95], metrics=["coverage"])
    once = backtest(_Band(), panel, horizon=4, n_windows=3, level=[80, 95], metrics=["coverage"], refit=False)
    for column in ("y_lo_80", "y_hi_80", "y_lo_95", "y_hi_95"):
        np.testing.assert_allclose(refit.forecasts[column], once.forecasts[column])
    pd.testing.assert_frame_equal(refit.summary, once.summary)


def test_level_asked_of_a_model_without_intervals_names_the_model(panel):
    models = {"band": _Band(), "last": _Last()}
    with pytest.raises(InvalidParameterError, match=r"model 'last': _Last has no prediction intervals"):
        compare(models, panel, horizon=4, level=95, metrics=["mae", "coverage"])
    plain = compare(models, panel, horizon=4, metrics=["mae"])  # no level: no interval asked of anyone
    assert list(plain.summary.index) == ["band", "last"]
    assert not [c for c in plain.forecasts.columns if c.startswith("y_lo")]


def test_level_is_checked_before_any_fit(panel):
    with pytest.raises(InvalidParameterError, match="level must be a number"):
        backtest(_Band(), panel, horizon=4, level=150)


def test_interval_metrics_without_level_say_which_columns_they_need(panel):
    with pytest.raises(InvalidInputError, match=r"metrics \['msis'\] need interval forecast columns"):
        backtest(_Band(), panel, horizon=4, metrics=["msis"])
