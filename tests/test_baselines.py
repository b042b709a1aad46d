"""Statistical baselines: exact naive values, the M4 seasonal adjustment, agreement with direct
statsmodels fits, the automatic model choice, and the estimator plumbing (pandas, refit, joblib)."""

import os
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from statsmodels.tsa.exponential_smoothing.ets import ETSModel
from statsmodels.tsa.holtwinters import ExponentialSmoothing
from statsmodels.tsa.seasonal import seasonal_decompose
from statsmodels.tsa.statespace.sarimax import SARIMAX

from tsforecast.baselines import (
    SES,
    AutoARIMA,
    AutoETS,
    DampedHolt,
    Holt,
    Naive,
    Naive2,
    SeasonalNaive,
    Theta,
    auto,
    naive,
    seasonal_naive,
    smoothing,
)
from tsforecast.baselines import estimators as baseline_estimators
from tsforecast.baselines.seasonality import reseasonalize, seasonal_indices, seasonality_test
from tsforecast.datasets import load_m4
from tsforecast.exceptions import InvalidInputError, InvalidParameterError
from tsforecast.metrics import evaluate
from tsforecast.registry import baseline_names, estimator_class

M = 24


def daily_cycle(n=240, seed=0, level=50.0, slope=0.0):
    """Positive hourly-like series with a clear 24-periodic pattern."""
    t = np.arange(n)
    noise = np.random.default_rng(seed).normal(0.0, 1.0, n)
    return level + slope * t + 10.0 * np.sin(2 * np.pi * t / M) + 4.0 * np.cos(4 * np.pi * t / M) + noise


def trending(n=80, seed=1):
    return 20.0 + 0.5 * np.arange(n) + np.random.default_rng(seed).normal(0.0, 1.0, n)


def hourly(values, start="2024-01-01"):
    return pd.Series(values, index=pd.date_range(start, periods=len(values), freq="h"), name="load")


def forecast(model, values):
    return model.fit(pd.Series(values)).predict().to_numpy()


class TestNaiveFamily:
    def test_naive_repeats_the_last_value(self):
        np.testing.assert_array_equal(naive([3.0, 1.0, 7.0], 3), [7.0, 7.0, 7.0])
        np.testing.assert_array_equal(forecast(Naive(horizon=2), [3.0, 1.0, 7.0]), [7.0, 7.0])

    def test_seasonal_naive_repeats_the_last_season(self):
        y = np.arange(1.0, 11.0)
        np.testing.assert_array_equal(seasonal_naive(y, 5, season_length=4), [7, 8, 9, 10, 7])
        np.testing.assert_array_equal(
            forecast(SeasonalNaive(horizon=5, season_length=4), y), [7, 8, 9, 10, 7]
        )

    def test_naive2_equals_naive_on_the_deseasonalised_series_reseasonalised(self):
        y = daily_cycle()
        seasonal = seasonal_decompose(y, model="multiplicative", period=M).seasonal
        expected = (y / seasonal)[-1] * seasonal[(len(y) + np.arange(30)) % M]
        np.testing.assert_allclose(forecast(Naive2(horizon=30, season_length=M), y), expected, rtol=1e-12)

    def test_naive2_is_naive_when_the_series_is_not_seasonal(self):
        y = np.random.default_rng(3).normal(10.0, 1.0, 100)
        assert not seasonality_test(y, M)
        np.testing.assert_array_equal(forecast(Naive2(horizon=3, season_length=M), y), [y[-1]] * 3)


class TestSeasonality:
    def test_detects_a_24_periodic_series(self):
        assert seasonality_test(daily_cycle(), M)

    def test_rejects_white_noise_at_about_the_nominal_rate(self):
        assert not seasonality_test(np.random.default_rng(1).normal(10.0, 1.0, 240), M)
        # A 90% test: about 1 white-noise series in 10 looks seasonal.
        rate = np.mean([seasonality_test(np.random.default_rng(s).normal(size=240), M) for s in range(200)])
        assert 0.03 < rate < 0.2

    def test_needs_three_seasons_and_a_period_above_one(self):
        assert not seasonality_test(daily_cycle(n=3 * M - 1), M)
        assert not seasonality_test(daily_cycle(), 1)

    def test_indices_match_the_classical_decomposition(self):
        y = daily_cycle()
        indices = seasonal_indices(y, M)
        decomposition = seasonal_decompose(y, model="multiplicative", period=M).seasonal
        np.testing.assert_allclose(reseasonalize(indices, 0, len(y)), decomposition, rtol=1e-12)
        assert indices.mean() == pytest.approx(1.0)

    def test_no_adjustment_for_non_positive_data(self):
        np.testing.assert_array_equal(seasonal_indices(daily_cycle() - 100.0, M), np.ones(M))


def r_like_fit(y, trend=False, damped=False):
    """The statsmodels call the benchmarks make, written out: forecast::ets' start, Powell search."""
    head = y[:10]
    if trend:
        slope, intercept = np.polyfit(np.arange(1, 11), head, 1)
        start = [smoothing._R_ALPHA, smoothing._R_BETA_STAR, intercept, slope] + [smoothing._R_PHI] * damped
    else:
        start = [smoothing._R_ALPHA, head.mean()]
    model = ExponentialSmoothing(
        y,
        trend="add" if trend else None,
        damped_trend=damped,
        initialization_method="estimated",
        bounds={"damping_trend": (0.8, 0.98)} if damped else None,
    )
    return model.fit(method="Powell", use_brute=False, start_params=start)


class TestSmoothing:
    @pytest.mark.parametrize(
        ("estimator", "trend", "damped"), [(SES, False, False), (Holt, True, False), (DampedHolt, True, True)]
    )
    def test_agrees_with_a_direct_statsmodels_fit(self, estimator, trend, damped):
        y = trending()
        expected = r_like_fit(y, trend, damped).forecast(12)
        np.testing.assert_allclose(forecast(estimator(horizon=12), y), expected, rtol=1e-10)

    @pytest.mark.parametrize(("estimator", "trend"), [(SES, False), (Holt, True)])
    def test_seasonal_series_are_smoothed_after_adjustment(self, estimator, trend):
        y = daily_cycle(slope=0.05)
        seasonal = seasonal_decompose(y, model="multiplicative", period=M).seasonal
        future = seasonal[(len(y) + np.arange(30)) % M]
        expected = r_like_fit(y / seasonal, trend).forecast(30) * future
        np.testing.assert_allclose(forecast(estimator(horizon=30, season_length=M), y), expected, rtol=1e-8)

    def test_ses_reaches_the_least_squares_optimum(self):
        y = (
            50.0
            + np.random.default_rng(8).normal(size=150).cumsum()
            + np.random.default_rng(9).normal(size=150)
        )
        global_search = ExponentialSmoothing(y, initialization_method="estimated").fit()  # brute-force start
        assert r_like_fit(y).sse <= global_search.sse * (1 + 1e-6)

    def test_damping_stays_in_the_ets_range(self):
        model = DampedHolt(horizon=3).fit(pd.Series(trending()))
        assert 0.8 <= model.states_[0]["phi"] <= 0.98


class TestTheta:
    def test_is_the_average_of_its_two_lines(self):
        y = trending()
        time = np.arange(1, 81)
        slope, intercept = np.polyfit(time, y, 1)
        line = intercept + slope * np.arange(81, 91)
        ses_line = r_like_fit(2 * y - (intercept + slope * time)).forecast(10)
        np.testing.assert_allclose(forecast(Theta(horizon=10), y), 0.5 * line + 0.5 * ses_line, rtol=1e-10)

    def test_negative_forecasts_become_zero(self):
        y = 60.0 - 1.5 * np.arange(40) + np.random.default_rng(2).normal(0, 0.5, 40)
        predictions = forecast(Theta(horizon=40), y)
        assert predictions.min() == 0.0 and predictions[0] > 0.0


class TestAutoETS:
    def test_picks_a_seasonal_form_and_forecasts_like_statsmodels(self):
        y = daily_cycle(n=240, seed=4)[::6]  # 4-periodic
        model = AutoETS(horizon=15, season_length=4).fit(pd.Series(y))
        state = model.states_[0]
        assert state["form"].startswith("ETS(") and state["form"][-2] in "AM"
        predictions = model.predict().to_numpy()
        expected = ETSModel(y, **state["spec"]).smooth(state["params"]).forecast(15)
        np.testing.assert_allclose(predictions, expected, rtol=1e-8)

    def test_non_seasonal_and_non_positive_data_use_additive_forms(self):
        model = AutoETS(horizon=5).fit(pd.Series(trending() - 60.0))
        form = model.states_[0]["form"]
        assert form.startswith("ETS(A,") and form.endswith(",N)")
        assert np.all(np.isfinite(model.predict()))

    def test_falls_back_to_naive_when_no_form_fits(self, monkeypatch, caplog):
        monkeypatch.setattr(auto, "_ets_forms", lambda y, m: iter([]))
        with caplog.at_level("WARNING", logger="tsforecast.baselines"):
            predictions = forecast(AutoETS(horizon=2), trending())
        assert predictions.tolist() == [trending()[-1]] * 2 and "using naive" in caplog.text


class TestAutoARIMA:
    def test_seasonal_series_get_a_seasonal_difference(self):
        y = daily_cycle(n=10 * M, seed=5)
        model = AutoARIMA(horizon=M, season_length=M).fit(pd.Series(y))
        state = model.states_[0]
        assert state["D"] == 1 and state["form"].endswith(f"[{M}]")
        predictions = model.predict().to_numpy()
        assert np.all(np.isfinite(predictions))
        assert np.corrcoef(predictions, y[-M:])[0, 1] > 0.9  # the daily shape carries on

    def test_random_walk_gets_one_difference(self):
        y = np.cumsum(np.random.default_rng(6).normal(size=200))
        state = AutoARIMA(horizon=3).fit(pd.Series(y)).states_[0]
        assert state["d"] == 1 and state["form"].startswith("ARIMA(") and ",1," in state["form"]

    def test_forecasts_match_sarimax_with_the_same_parameters(self):
        y = 5.0 + np.random.default_rng(7).normal(size=400).cumsum() * 0.1
        y = y + np.sin(np.arange(400) * np.pi / 2)  # 4-periodic
        params = np.array([0.3, -0.2, 0.4])  # unconstrained AR(1), MA(1), seasonal MA(1)
        state = {"order": (1, 1, 0, 1, 4), "d": 1, "D": 1, "mean": 0.0, "params": params, "ncond": 5}
        ar_poly, ma_poly = auto._arma_polynomials(params, state["order"])
        sarimax = SARIMAX(y, order=(1, 1, 1), seasonal_order=(0, 1, 1, 4))
        expected = sarimax.filter(np.r_[-ar_poly[1], ma_poly[1], ma_poly[4], 1.0]).forecast(8)
        np.testing.assert_allclose(auto._forecast_arima(state, y, 8), expected, rtol=1e-6)


class TestEstimators:
    def test_series_in_series_out_with_future_timestamps(self):
        out = SES(horizon=3).fit(hourly(trending())).predict()
        assert isinstance(out, pd.Series) and out.name == "load"
        assert out.index[0] == pd.Timestamp("2024-01-01") + pd.Timedelta(hours=80)

    def test_long_in_long_out(self):
        frame = pd.DataFrame(
            {
                "unique_id": ["a"] * 30 + ["b"] * 40,
                "ds": list(pd.date_range("2024-01-01", periods=30, freq="D"))
                + list(pd.date_range("2024-01-01", periods=40, freq="D")),
                "y": np.r_[trending(30), trending(40, seed=2)],
            }
        )
        out = Theta(horizon=4).fit(frame).predict()
        assert list(out.columns) == ["unique_id", "ds", "y_pred"] and len(out) == 8
        assert out.groupby("unique_id")["ds"].min().to_dict() == {
            "a": pd.Timestamp("2024-01-31"),
            "b": pd.Timestamp("2024-02-10"),
        }

    def test_predict_on_new_history_refits(self):
        model = Holt(horizon=5).fit(pd.Series(trending()))
        new = pd.Series(100.0 - trending(60, seed=3))
        np.testing.assert_allclose(model.predict(y=new), Holt(horizon=5).fit(new).predict())
        assert model.predict().iloc[0] != model.predict(y=new).iloc[0]

    def test_fitting_twice_equals_fitting_once_and_pickles(self):
        y = pd.Series(daily_cycle(n=120))
        once = DampedHolt(horizon=6, season_length=M).fit(y).predict()
        model = DampedHolt(horizon=6, season_length=M).fit(y).fit(y)
        pd.testing.assert_series_equal(model.predict(), once)
        pd.testing.assert_series_equal(pickle.loads(pickle.dumps(model)).predict(), once)

    def test_worker_processes_give_the_same_forecasts(self, monkeypatch):
        monkeypatch.setattr(baseline_estimators, "_MIN_PARALLEL_SECONDS", 0.0)
        wide = pd.DataFrame({f"s{i}": daily_cycle(n=96, seed=i) for i in range(4)})
        sequential = Theta(horizon=6, season_length=M).fit(wide).predict()
        parallel = Theta(horizon=6, season_length=M, n_jobs=2).fit(wide)
        pd.testing.assert_frame_equal(parallel.predict(), sequential)

    def test_progress_bar_only_when_verbose(self, capsys):
        SES(horizon=1, verbose=True).fit(pd.Series(trending()))
        assert "SES" in capsys.readouterr().err
        SES(horizon=1).fit(pd.Series(trending()))
        assert capsys.readouterr().err == ""

    def test_clone_keeps_parameters(self):
        model = AutoARIMA(horizon=7, season_length=12, n_jobs=2, future_covariates=["price"])
        assert clone(model).get_params() == {
            "horizon": 7, "season_length": 12, "n_jobs": 2, "verbose": False, "future_covariates": ["price"],
            "categorical_covariates": None, "past_covariates": None, "static_covariates": None,
        }  # fmt: skip

    @pytest.mark.parametrize(
        "model",
        [
            SES(season_length=0),
            Theta(n_jobs=0),
            Holt(horizon=0),
            AutoETS(season_length=1.5),
            Naive(verbose="x"),
        ],
    )
    def test_bad_parameters_are_rejected(self, model):
        with pytest.raises(InvalidParameterError):
            model.fit(pd.Series(trending()))

    @pytest.mark.parametrize(("model", "needed"), [(SeasonalNaive(season_length=M), M), (AutoARIMA(), 10)])
    def test_short_series_are_rejected_with_the_needed_length(self, model, needed):
        with pytest.raises(InvalidInputError, match=f"needs at least {needed}"):
            model.fit(pd.Series([1.0, 2.0, 3.0]))


class TestExtremeMagnitudes:
    """Issue 15, item 9: extreme magnitudes are computed safely, never NaN or inf (Theta and AutoARIMA
    at 1e307, the issue's cases, are in test_faults.py)."""

    CLASSES = [estimator_class(name) for name in baseline_names()]

    @staticmethod
    def _seasonal_series(scale: float) -> pd.Series:
        # Its largest value lies in [1, 2), so dividing a scaled copy by the power of two that the
        # baselines use gives back exactly these numbers.
        rng = np.random.default_rng(0)
        t = np.arange(96)
        values = 1.5 + 0.2 * np.sin(2 * np.pi * t / 4) + rng.normal(0, 0.02, t.size)
        values = values / values.max() * 1.9
        return pd.Series(values * scale, index=pd.date_range("2024-01-01", periods=t.size, freq="h"))

    @staticmethod
    def _params(cls):
        params = {"horizon": 6}
        if "season_length" in cls().get_params():
            params["season_length"] = 4
        return params

    @pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
    @pytest.mark.parametrize("exponent", [-1000, -600, 600, 1000, 1020])
    def test_baselines_forecast_extreme_magnitudes_exactly_as_the_same_series_near_one(self, cls, exponent):
        # 2**1020 is about 1e307 and 2**-1000 about 1e-301: sums of squares at those magnitudes overflow
        # or vanish; the forecasts must be those of the series near 1, scaled by the same power of two.
        reference = cls(**self._params(cls)).fit(self._seasonal_series(1.0)).predict()
        scale = float(np.ldexp(1.0, exponent))
        forecast = cls(**self._params(cls)).fit(self._seasonal_series(scale)).predict()
        assert np.isfinite(forecast.to_numpy()).all()
        np.testing.assert_array_equal(forecast.to_numpy(), reference.to_numpy() * scale)

    def test_a_forecast_beyond_float64_range_is_refused_naming_the_series(self):
        y = pd.DataFrame({"ramp": np.linspace(1e307, 1.7e308, 50)}, index=pd.date_range("2024", periods=50))
        with pytest.raises(InvalidInputError, match=r"series 'ramp'.*NaN or infinite.*1\.7e\+308"):
            Holt(horizon=30).fit(y).predict()


M4_DIR = Path(
    os.environ.get("TSFORECAST_M4_DIR", Path(__file__).resolve().parents[2] / "shared" / "data" / "m4")
)


@pytest.mark.skipif(
    not (M4_DIR / "Hourly-train.csv").is_file(), reason=f"M4 Hourly files not found in {M4_DIR}"
)
def test_m4_hourly_naive_family_reproduces_the_published_scores():
    """The estimators on all 414 M4 Hourly series score the competition's published (sMAPE, MASE)."""
    m4 = load_m4("hourly", M4_DIR, download=False)
    published = {
        "Naive": (Naive(horizon=48), 43.003, 11.608),
        "sNaive": (SeasonalNaive(horizon=48, season_length=24), 13.912, 1.193),
        "Naive2": (Naive2(horizon=48, season_length=24), 18.383, 2.395),
    }
    for name, (model, smape, mase) in published.items():
        forecasts = model.fit(m4.train).predict()
        scores = evaluate(forecasts, m4.test, m4.train, season_length=24, metrics=["smape", "mase"]).mean()
        assert (round(scores["smape"], 3), round(scores["mase"], 3)) == (smape, mase), name
