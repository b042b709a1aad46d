"""AutoARIMA with future-known covariates (regression with ARIMA errors), the covariate tag, and the
baselines that refuse X (tsforecast/baselines/regression.py, the covariate parts of estimators.py)."""

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from statsmodels.tsa.statespace.sarimax import SARIMAX

from tsforecast.base import takes_covariates
from tsforecast.baselines import AutoARIMA, auto_arima
from tsforecast.baselines import estimators as baseline_estimators
from tsforecast.exceptions import InvalidInputError, InvalidParameterError
from tsforecast.registry import baseline_names, estimator_class

N, H = 300, 20
# Every registered baseline but AutoARIMA: a baseline added later is checked here too.
WITHOUT_COVARIATES = [c for c in map(estimator_class, baseline_names()) if c is not AutoARIMA]
DAYS = pd.date_range("2024-01-01", periods=N + H, freq="D")


def ar_noise(n, phi=0.6, sigma=1.0, seed=0):
    shocks = np.random.default_rng(seed).normal(0.0, sigma, n)
    noise = np.zeros(n)
    for t in range(n):
        noise[t] = phi * noise[t - 1] + shocks[t] if t else shocks[t]
    return noise


def regression_data(seed=0, coefficient=3.0):
    """y = 10 + coefficient * x + AR(1) noise; x known for the H days after the history."""
    x = np.random.default_rng(seed + 100).normal(0.0, 2.0, N + H)
    y = 10.0 + coefficient * x + ar_noise(N + H, seed=seed)
    X = pd.DataFrame({"x": x}, index=DAYS)
    return pd.Series(y[:N], index=DAYS[:N], name="sales"), X, y[N:]


def with_x(**params):
    return AutoARIMA(horizon=H, future_covariates=["x"], **params)


class TestRegressionWithArimaErrors:
    def test_recovers_the_coefficient(self):
        y, X, _ = regression_data()
        state = with_x().fit(y, X=X).states_[0]
        assert state["form"].startswith("Regression with ARIMA(")
        assert state["coef"]["x"] == pytest.approx(3.0, abs=0.1)

    def test_forecasts_better_than_without_the_regressor_known_in_the_future(self):
        y, X, actual = regression_data()
        with_regressor = with_x().fit(y, X=X).predict(X=X).to_numpy()
        without = AutoARIMA(horizon=H).fit(y).predict().to_numpy()
        mae_with, mae_without = np.abs(with_regressor - actual).mean(), np.abs(without - actual).mean()
        assert mae_with < 0.5 * mae_without

    def test_x_inside_the_horizon_changes_the_forecast_and_after_it_does_not(self):
        y, X, _ = regression_data()
        model = with_x().fit(y, X=X)
        reference = model.predict(X=X).to_numpy()
        inside = X.copy()
        inside.iloc[N + 4, 0] += 1.0  # the 5th step forecast
        changed = model.predict(X=inside).to_numpy()
        step = model.states_[0]["coef"]["x"]
        np.testing.assert_allclose(changed - reference, np.eye(H)[4] * step, atol=1e-8)
        after = pd.concat([X, pd.DataFrame({"x": [1e6]}, index=[DAYS[-1] + pd.Timedelta(days=1)])])
        np.testing.assert_array_equal(model.predict(X=after).to_numpy(), reference)

    def test_the_joint_fit_is_statsmodels_sarimax_at_the_chosen_order(self):
        y, X, _ = regression_data()
        state = with_x().fit(y, X=X).states_[0]
        assert state["d"] == state["D"] == 0 and state["has_mean"]
        p, q = state["order"][:2]
        direct = SARIMAX(y.to_numpy(), exog=X["x"].to_numpy()[:N], order=(p, 0, q), trend="c").fit(disp=False)
        assert state["coef"]["x"] == pytest.approx(direct.params[1], rel=1e-3)

    def test_differences_are_chosen_on_the_regression_residuals(self):
        # y follows a random-walk regressor: without it y needs a difference, with it none.
        x = np.cumsum(np.random.default_rng(3).normal(size=N + H))
        y = pd.Series(5.0 * x[:N] + np.random.default_rng(4).normal(size=N), index=DAYS[:N])
        X = pd.DataFrame({"x": x}, index=DAYS)
        assert AutoARIMA().fit(y).states_[0]["d"] == 1
        state = with_x().fit(y, X=X).states_[0]
        assert state["d"] == 0 and state["coef"]["x"] == pytest.approx(5.0, abs=0.05)

    def test_a_seasonal_series_with_a_regressor(self):
        hours = pd.date_range("2024-01-01", periods=10 * 24 + 24, freq="h")
        t = np.arange(len(hours))
        x = np.random.default_rng(5).normal(size=len(t))
        values = (
            50 + 10 * np.sin(2 * np.pi * t / 24) + 2.0 * x + np.random.default_rng(6).normal(0, 0.5, len(t))
        )
        y = pd.Series(values[:-24], index=hours[:-24])
        model = AutoARIMA(horizon=24, season_length=24, future_covariates=["x"])
        forecast = model.fit(y, X=pd.DataFrame({"x": x}, index=hours)).predict(
            X=pd.DataFrame({"x": x}, index=hours)
        )
        state = model.states_[0]
        assert state["D"] == 1 and state["form"].endswith("[24] errors")
        assert state["coef"]["x"] == pytest.approx(2.0, abs=0.15)
        assert np.abs(forecast.to_numpy() - values[-24:]).mean() < 1.5

    def test_new_history_refits_with_its_own_covariates(self):
        y, X, _ = regression_data()
        model = with_x().fit(y, X=X)
        other, X_other, _ = regression_data(seed=1, coefficient=-2.0)
        refit = model.predict(y=other, X=X_other)
        pd.testing.assert_series_equal(refit, with_x().fit(other, X=X_other).predict(X=X_other))
        assert model.states_[0]["coef"]["x"] == pytest.approx(3.0, abs=0.1)  # the fitted model is kept

    def test_series_of_a_long_frame_take_their_own_rows(self, monkeypatch):
        monkeypatch.setattr(baseline_estimators, "_MIN_PARALLEL_SECONDS", 0.0)  # worker processes too
        frames, covariates = [], []
        for k, sid in enumerate(["a", "b"]):
            y, X, _ = regression_data(seed=k, coefficient=3.0 * (k + 1))
            start = 10 * k  # b starts later: series of different lengths
            frames.append(pd.DataFrame({"unique_id": sid, "ds": y.index[start:], "y": y.to_numpy()[start:]}))
            covariates.append(X.rename_axis("ds").reset_index().assign(unique_id=sid))
        y, X = pd.concat(frames), pd.concat(covariates)
        model = with_x().fit(y, X=X)
        assert [s["coef"]["x"] for s in model.states_] == pytest.approx([3.0, 6.0], abs=0.15)
        out = model.predict(X=X)
        assert len(out) == 2 * H and np.isfinite(out["y_pred"]).all()
        pd.testing.assert_frame_equal(with_x(n_jobs=2).fit(y, X=X).predict(X=X), out)

    def test_the_pure_function_takes_the_regressors_of_history_and_horizon(self):
        y, X, actual = regression_data()
        forecast = auto_arima(y.to_numpy(), H, X=X["x"].to_numpy())
        np.testing.assert_allclose(forecast, with_x().fit(y, X=X).predict(X=X).to_numpy())
        with pytest.raises(InvalidInputError, match=r"300 \+ 20 = 320 rows; got shape \(300, 1\)"):
            auto_arima(y.to_numpy(), H, X=X[["x"]].to_numpy()[:N])


class TestCategoricalAndDegenerateRegressors:
    def test_a_categorical_covariate_is_one_hot_without_its_first_category(self):
        rng = np.random.default_rng(7)
        promo = rng.choice(["none", "small", "big"], size=N + H)
        effect = pd.Series(promo).map({"none": 0.0, "small": 2.0, "big": 6.0}).to_numpy()
        x = rng.normal(0.0, 1.0, N + H)
        values = 20.0 + effect + 1.5 * x + ar_noise(N + H, seed=8, sigma=0.5)
        X = pd.DataFrame({"x": x, "promo": promo}, index=DAYS)
        model = AutoARIMA(horizon=H, future_covariates=["x", "promo"], categorical_covariates=["promo"])
        model.fit(pd.Series(values[:N], index=DAYS[:N]), X=X)
        coef = model.states_[0]["coef"]
        assert model.covariate_categories_ == {"promo": ("big", "none", "small")}
        assert sorted(coef) == ["promo=none", "promo=small", "x"]  # "big" is the reference
        assert coef["promo=none"] == pytest.approx(-6.0, abs=0.3)
        assert coef["promo=small"] == pytest.approx(-4.0, abs=0.3)
        forecast = model.predict(X=X).to_numpy()
        assert np.abs(forecast - values[N:]).mean() < 1.0
        unseen = X.assign(promo=np.where(X.index == DAYS[N + 2], "huge", X["promo"]))
        with pytest.raises(InvalidInputError, match="'promo' holds the category 'huge'.*not seen at fit"):
            model.predict(X=unseen)

    def test_constant_and_duplicate_regressors_are_dropped_not_fatal(self, caplog):
        y, X, _ = regression_data()
        X = X.assign(constant=5.0, double=2.0 * X["x"])
        model = AutoARIMA(horizon=H, future_covariates=["x", "constant", "double"])
        with caplog.at_level("DEBUG", logger="tsforecast.baselines"):
            forecast = model.fit(y, X=X).predict(X=X)
        assert list(model.states_[0]["coef"]) == ["x"] and np.isfinite(forecast).all()
        assert "'constant' dropped" in caplog.text and "'double' dropped" in caplog.text

    def test_a_series_left_without_regressors_is_autoarima_without_covariates(self):
        y, X, _ = regression_data()
        X = X.assign(x=1.0)
        model = with_x().fit(y, X=X)
        assert model.states_[0]["form"].startswith("ARIMA(")
        np.testing.assert_array_equal(model.predict(X=X).to_numpy(), AutoARIMA(horizon=H).fit(y).predict())


class TestBadInput:
    def test_missing_future_rows_name_the_series_and_the_time_stamp(self):
        y, X, _ = regression_data()
        model = with_x().fit(y, X=X)
        with pytest.raises(
            InvalidInputError, match=r"X has no row for series 'sales' at 2024-11-01.*horizon.*'x'"
        ):
            model.predict(X=X.iloc[: N + 5])
        with pytest.raises(InvalidInputError, match=r"declares the covariates \['x'\]; pass them as X"):
            model.predict()

    @pytest.mark.parametrize(
        ("params", "message"),
        [
            ({"past_covariates": ["temp"]}, "future-known covariates only.*no values"),
            ({"static_covariates": ["region"]}, "no static covariates.*cannot be told from the mean"),
            (
                {"future_covariates": "x"},
                "'future_covariates' parameter of AutoARIMA must be an instance of 'list'",
            ),
            ({"future_covariates": ["x"], "categorical_covariates": ["day"]}, "declare their role"),
        ],
    )
    def test_unsupported_roles_are_refused_saying_why(self, params, message):
        y, X, _ = regression_data()
        model = AutoARIMA(**params)
        with pytest.raises(InvalidParameterError, match=message):
            model.check_params()
        with pytest.raises(InvalidParameterError, match=message):
            model.fit(y, X=X)

    def test_x_without_declared_covariates_is_refused(self):
        y, X, _ = regression_data()
        with pytest.raises(InvalidInputError, match="AutoARIMA got X but declares no covariate"):
            AutoARIMA().fit(y, X=X)

    @pytest.mark.parametrize("cls", WITHOUT_COVARIATES)
    def test_the_other_baselines_refuse_x(self, cls):
        y, X, _ = regression_data()
        with pytest.raises(InvalidInputError, match=f"{cls.__name__} does not use exogenous regressors"):
            cls().fit(y, X=X)
        fitted = cls().fit(y)
        with pytest.raises(InvalidInputError, match="does not use exogenous regressors"):
            fitted.predict(X=X)


def test_the_tag_says_which_forecasters_take_covariates():
    assert takes_covariates(AutoARIMA) and takes_covariates(with_x())
    assert len(WITHOUT_COVARIATES) == 8
    assert not any(takes_covariates(cls) or takes_covariates(cls()) for cls in WITHOUT_COVARIATES)
    assert not takes_covariates(object()) and not takes_covariates(dict)
    assert not AutoARIMA().covariate_roles() and with_x().covariate_roles().future == ("x",)


def test_pickle_and_clone_keep_the_covariates():
    y, X, _ = regression_data()
    model = AutoARIMA(horizon=H, future_covariates=["x"], categorical_covariates=[]).fit(y, X=X)
    forecast = model.predict(X=X)
    pd.testing.assert_series_equal(pickle.loads(pickle.dumps(model)).predict(X=X), forecast)
    cloned = clone(model)
    assert cloned.get_params() == model.get_params() and cloned.get_params()["future_covariates"] == ["x"]
    pd.testing.assert_series_equal(cloned.fit(y, X=X).predict(X=X), forecast)


ELECTRICITY = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "exog" / "electricity-short-with-ex-vars.csv"
)


@pytest.mark.skipif(not ELECTRICITY.is_file(), reason=f"{ELECTRICITY} not found")
def test_electricity_prices_with_the_published_load_forecasts():
    """One day-ahead market (NP): fit on all but the last 48 hours, forecast the next 24 from the
    published load and generation forecasts (Exogenous1, Exogenous2)."""
    data = pd.read_csv(ELECTRICITY, parse_dates=["ds"])
    market = data[data["unique_id"] == "NP"].reset_index(drop=True)
    history = market.iloc[:-48][["unique_id", "ds", "y"]]
    X = market[["unique_id", "ds", "Exogenous1", "Exogenous2"]]
    model = AutoARIMA(horizon=24, season_length=24, future_covariates=["Exogenous1", "Exogenous2"])
    forecast = model.fit(history, X=X).predict(X=X)
    assert len(forecast) == 24 and np.isfinite(forecast["y_pred"]).all()
    assert list(forecast["ds"]) == list(market["ds"].iloc[-48:-24])
    assert set(model.states_[0]["coef"]) == {"Exogenous1", "Exogenous2"}
