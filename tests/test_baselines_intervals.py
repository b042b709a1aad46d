"""Prediction intervals of the statistical baselines (tsforecast/baselines/intervals.py).

Each method's bounds against statsmodels with the same parameters, or against the textbook formula;
the empirical coverage on series simulated from each model's own process; and the plumbing: the
point forecast unchanged, nested levels, layouts, refit on new history, pickling, the
magnitude-safe rescaling, constant and short series.
"""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm
from sklearn.base import clone
from statsmodels.tsa.exponential_smoothing.ets import ETSModel
from statsmodels.tsa.forecasting.theta import ThetaModel
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
)
from tsforecast.baselines.regression import filtered_regression
from tsforecast.baselines.seasonality import deseasonalize, difference, reseasonalize, seasonal_indices
from tsforecast.exceptions import InvalidInputError, InvalidParameterError

H = 12
M = 12
Z80, Z95 = norm.ppf(0.9), norm.ppf(0.975)
BASELINES = [Naive, SeasonalNaive, Naive2, SES, Holt, DampedHolt, Theta, AutoETS, AutoARIMA]
LEVELS = (50.0, 80.0, 95.0, 99.0)


def make(cls, horizon=H, season_length=M):
    return cls(horizon=horizon) if cls is Naive else cls(horizon=horizon, season_length=season_length)


def monthly(n=120, seed=0, scale=1.0):
    """Positive monthly series: a random-walk level and a clear 12-month cycle."""
    t = np.arange(n)
    rng = np.random.default_rng(seed)
    values = 100.0 + np.cumsum(rng.normal(size=n)) + 10.0 * np.sin(2 * np.pi * t / M)
    return pd.Series(values * scale, index=pd.date_range("2015-01-01", periods=n, freq="MS"), name="sales")


def drifting(n=150, seed=3):
    """Non-seasonal: a random walk with a slowly wandering drift."""
    rng = np.random.default_rng(seed)
    return 100.0 + np.cumsum(0.3 + 0.1 * np.cumsum(rng.normal(0.0, 0.2, n)) + rng.normal(size=n))


def half_width(frame, level=95):
    return (frame[f"y_hi_{level}"] - frame["y_pred"]).to_numpy()


@pytest.fixture(scope="module")
def fitted():
    """Every baseline fitted once on the monthly series."""
    return {cls: make(cls).fit(monthly()) for cls in BASELINES}


# --- the contract: point unchanged, nested levels, layouts, refit, pickling ------------------------
@pytest.mark.parametrize("cls", BASELINES, ids=lambda c: c.__name__)
def test_point_unchanged_and_raw_bounds_nested(cls, fitted):
    model = fitted[cls]
    with_levels = model.predict(level=list(LEVELS))
    np.testing.assert_array_equal(with_levels["y_pred"].to_numpy(), model.predict().to_numpy())
    # The method's own bounds, before the base class sorts them: nested and around the point.
    point, bounds = model._predict_intervals(model.training_panel_, H, True, LEVELS)
    np.testing.assert_array_equal(point, model.predict_panel(model.training_panel_))
    lower = np.stack([bounds[level][0] for level in LEVELS])  # (levels, 1, H)
    upper = np.stack([bounds[level][1] for level in LEVELS])
    assert np.all(np.diff(lower, axis=0) < 0) and np.all(np.diff(upper, axis=0) > 0)
    assert np.all(lower[0] < point) and np.all(point < upper[0])
    # One level alone gives the same bounds as within a list (simulated ETS: the same draws).
    alone = model.predict(level=95)
    np.testing.assert_array_equal(alone["y_lo_95"], with_levels["y_lo_95"])


@pytest.mark.parametrize("cls", BASELINES, ids=lambda c: c.__name__)
def test_pickle_round_trip_keeps_intervals(cls, fitted):
    model = fitted[cls]
    again = pickle.loads(pickle.dumps(model))
    pd.testing.assert_frame_equal(again.predict(level=[80, 95]), model.predict(level=[80, 95]))


def test_layouts():
    y = monthly()
    series = SES(horizon=3, season_length=M).fit(y).predict(level=95)
    assert list(series.columns) == ["y_pred", "y_lo_95", "y_hi_95"]
    assert series.index[0] == pd.Timestamp("2025-01-01")
    long = pd.DataFrame(
        {"unique_id": np.repeat(["a", "b"], 120), "ds": np.tile(y.index, 2), "y": np.r_[y, 2.0 * y]}
    )
    out = SES(horizon=3, season_length=M).fit(long).predict(level=[80, 95])
    assert list(out.columns) == ["unique_id", "ds", "y_pred", "y_lo_80", "y_hi_80", "y_lo_95", "y_hi_95"]
    a, b = (out[out["unique_id"] == key] for key in "ab")
    # A series doubled has bounds doubled: its fit is the same in other units.
    np.testing.assert_allclose(b[["y_lo_95", "y_hi_95"]], 2.0 * a[["y_lo_95", "y_hi_95"]], rtol=1e-6)
    np.testing.assert_array_equal(series.to_numpy(), a[list(series.columns)].to_numpy())


@pytest.mark.parametrize("cls", [SeasonalNaive, SES, Theta, AutoARIMA], ids=lambda c: c.__name__)
def test_new_history_refits(cls):
    model = make(cls).fit(monthly(seed=0))
    new = monthly(n=108, seed=5)
    refit = make(cls).fit(new).predict(level=95)
    pd.testing.assert_frame_equal(model.predict(y=new, level=95), refit)


def test_new_history_with_regressors_refits():
    rng = np.random.default_rng(4)
    ds = pd.date_range("2024-01-01", periods=130, freq="D")
    X = pd.DataFrame({"price": rng.normal(10.0, 1.0, 130)}, index=ds)
    y = pd.Series(50.0 - 3.0 * X["price"].iloc[:120].to_numpy() + rng.normal(0.0, 0.5, 120), index=ds[:120])
    model = AutoARIMA(horizon=10, future_covariates=["price"]).fit(y.iloc[:100], X=X)
    fresh = AutoARIMA(horizon=10, future_covariates=["price"]).fit(y, X=X)
    out = model.predict(y=y, X=X, level=[80, 95])
    pd.testing.assert_frame_equal(out, fresh.predict(X=X, level=[80, 95]))
    assert np.all(out["y_lo_95"] < out["y_pred"]) and np.all(out["y_pred"] < out["y_hi_95"])


@pytest.mark.parametrize("cls", BASELINES, ids=lambda c: c.__name__)
def test_rescaled_series_bounds_scale_exactly(cls):
    """A series beyond float64's safe band is fitted divided by a power of two: bounds multiply back."""
    y = monthly()
    y = y / 2.0 ** np.floor(np.log2(y.max()))  # max |y| in [1, 2): the huge copy is divided back to this
    small = make(cls).fit(y).predict(level=[80, 95])
    huge = make(cls).fit(y * 2.0**600).predict(level=[80, 95])
    np.testing.assert_array_equal(huge.to_numpy(), small.to_numpy() * 2.0**600)


@pytest.mark.parametrize("cls", BASELINES, ids=lambda c: c.__name__)
def test_constant_series_bounds_equal_the_point(cls):
    y = pd.Series(np.full(48, 7.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels' warnings on a flat likelihood
        out = make(cls, horizon=5, season_length=4).fit(y).predict(level=[80, 95])
    assert not out.isna().any().any()
    for column in out.columns:
        np.testing.assert_allclose(out[column], out["y_pred"], atol=1e-9)


def test_short_and_stale_states_are_refused():
    with pytest.raises(InvalidInputError, match="Naive needs 2 values of the unnamed series"):
        Naive(horizon=2).fit(pd.Series([1.0])).predict(level=95)
    with pytest.raises(InvalidInputError, match="SeasonalNaive needs 5 values"):
        SeasonalNaive(horizon=2, season_length=4).fit(pd.Series([1.0, 2.0, 3.0, 4.0])).predict(level=95)
    model = SES(horizon=2).fit(pd.Series(drifting()))
    del model.states_[0]["sigma2"]  # as fitted by a tsforecast without intervals
    assert model.predict().shape == (2,)
    with pytest.raises(InvalidParameterError, match="sigma2"):
        model.predict(level=95)


# --- each method against the textbook or statsmodels ----------------------------------------------
def test_naive_and_seasonal_naive_textbook():
    """FPP3 5.5: sigma sqrt(h) and sigma sqrt(floor((h - 1) / m) + 1), sigma^2 = mean square error."""
    y = monthly()
    v, steps = y.to_numpy(), np.arange(1, 31)
    sigma = np.sqrt(np.mean(np.diff(v) ** 2))
    out = Naive(horizon=30).fit(y).predict(level=[80, 95])
    np.testing.assert_allclose(out["y_hi_95"], v[-1] + Z95 * sigma * np.sqrt(steps), rtol=1e-12)
    np.testing.assert_allclose(out["y_lo_80"], v[-1] - Z80 * sigma * np.sqrt(steps), rtol=1e-12)
    sigma = np.sqrt(np.mean((v[M:] - v[:-M]) ** 2))
    k = (steps - 1) // M  # 0 for h <= 12, 1 to 24, 2 to 30
    out = SeasonalNaive(horizon=30, season_length=M).fit(y).predict(level=95)
    np.testing.assert_allclose(
        out["y_lo_95"], np.resize(v[-M:], 30) - Z95 * sigma * np.sqrt(k + 1), rtol=1e-12
    )


def test_naive2_is_naive_on_the_adjusted_series_reseasonalised():
    y = monthly()
    v = y.to_numpy()
    indices = seasonal_indices(v, M)
    assert np.ptp(indices) > 0.1  # the series is adjusted
    adjusted = v / reseasonalize(indices, 0, len(v))
    sigma = np.sqrt(np.mean(np.diff(adjusted) ** 2))
    future = reseasonalize(indices, len(v), H)
    out = Naive2(horizon=H, season_length=M).fit(y).predict(level=95)
    expected = (adjusted[-1] + Z95 * sigma * np.sqrt(np.arange(1, H + 1))) * future
    np.testing.assert_allclose(out["y_hi_95"], expected, rtol=1e-12)


@pytest.mark.parametrize(
    ("cls", "trend", "damped", "k"),
    [(SES, None, False, 2), (Holt, "add", False, 4), (DampedHolt, "add", True, 5)],
    ids=["SES", "Holt", "DampedHolt"],
)
def test_smoothing_matches_statsmodels_ets(cls, trend, damped, k):
    """ETS(A,N,N)/(A,A,N)/(A,Ad,N) with our parameters: statsmodels' variance formula, R's sigma^2.

    statsmodels' sigma^2 is SSE / n, ours (R's ``ets``) SSE / (n - k): the widths differ by exactly
    sqrt(n / (n - k)). Given our smoothing parameters, the initial states are the least-squares ones
    (linear in them), which statsmodels finds by maximum likelihood.
    """
    y = drifting()
    n = len(y)
    model = cls(horizon=H).fit(pd.Series(y))
    state = model.states_[0]
    ours = model.predict(level=[80, 95])
    fixed = {"smoothing_level": state["alpha"]}
    if trend:
        fixed["smoothing_trend"] = state["alpha"] * state["beta"]  # ETS' beta = alpha * beta*
    if damped:
        fixed["damping_trend"] = state["phi"]
    ets = ETSModel(pd.Series(y), error="add", trend=trend, damped_trend=damped)
    with ets.fix_params(fixed), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = ets.fit(disp=False)
    assert state["sigma2"] * (n - k) == pytest.approx(results.sse, rel=1e-5)
    prediction = results.get_prediction(start=n, end=n + H - 1)
    for level in (80, 95):
        frame = prediction.summary_frame(alpha=1 - level / 100)
        np.testing.assert_allclose(ours["y_pred"], frame["mean"], rtol=1e-8)
        theirs = (frame["pi_upper"] - frame["mean"]).to_numpy()
        np.testing.assert_allclose(half_width(ours, level), theirs * np.sqrt(n / (n - k)), rtol=1e-5)


@pytest.mark.parametrize("cls", [Naive2, SES, Holt, DampedHolt, Theta], ids=lambda c: c.__name__)
def test_seasonal_bounds_are_the_adjusted_bounds_times_the_indices(cls):
    y = monthly()
    adjusted, indices = deseasonalize(y.to_numpy(), M)
    seasonal = cls(horizon=H, season_length=M).fit(y).predict(level=95)
    plain = cls(horizon=H).fit(pd.Series(adjusted, index=y.index)).predict(level=95)
    future = reseasonalize(indices, len(y), H)
    for column in seasonal.columns:
        np.testing.assert_allclose(seasonal[column], plain[column] * future, rtol=1e-12)


def test_theta_is_ses_with_drift():
    """Theta's variance is SARIMAX ARIMA(0,1,1)-with-drift's at (alpha - 1, sigma^2), exactly.

    statsmodels' ThetaModel.prediction_intervals uses sigma^2 (1 + (h - 1)(1 + (alpha - 1)^2)), which
    is not the variance of that model (its psi weights are 1, alpha, alpha, ...: 1 + (h - 1) alpha^2);
    the two agree as alpha -> 1, as here, where the widths agree within the sigma^2 estimates.
    """
    y = drifting()
    model = Theta(horizon=H).fit(pd.Series(y))
    state = model.states_[0]
    ours = model.predict(level=95)
    arima = SARIMAX(y, order=(0, 1, 1), trend="c").filter(
        [state["slope"] / 2, state["alpha"] - 1, state["sigma2"]]
    )
    variance = np.asarray(arima.get_forecast(H).var_pred_mean)
    np.testing.assert_allclose((half_width(ours) / Z95) ** 2, variance, rtol=1e-8)
    theta = ThetaModel(y, deseasonalize=False).fit()
    assert theta.params["alpha"] > 0.95 and state["alpha"] > 0.95
    interval = theta.prediction_intervals(H, alpha=0.05)
    np.testing.assert_allclose(half_width(ours), (interval["upper"] - interval["lower"]) / 2, rtol=0.1)


def test_theta_bounds_clipped_at_zero_like_the_point():
    y = pd.Series(np.linspace(30.0, 2.0, 40) + np.random.default_rng(2).normal(0.0, 0.5, 40))
    out = Theta(horizon=10).fit(y).predict(level=95)
    assert (out["y_pred"] == 0).any() and (out["y_lo_95"] >= 0).all()
    assert (out.loc[out["y_pred"] == 0, "y_lo_95"] == 0).all() and (out["y_hi_95"] > 0).all()


def test_auto_ets_additive_matches_statsmodels():
    t = np.arange(120)
    rng = np.random.default_rng(1)
    y = np.cumsum(rng.normal(size=120)) - 50.0 + 3.0 * np.sin(2 * np.pi * t / M)  # negative: additive
    model = AutoETS(horizon=H, season_length=M).fit(pd.Series(y))
    state = model.states_[0]
    assert state["spec"]["error"] == "add" and state["spec"]["seasonal"] == "add"
    k = auto._ets_parameter_count(state["spec"]) - 1  # R's np: all parameters but sigma
    results = ETSModel(pd.Series(y), **state["spec"]).smooth(state["params"])
    frame = results.get_prediction(start=120, end=120 + H - 1).summary_frame(alpha=0.05)
    ours = model.predict(level=95)
    np.testing.assert_array_equal(ours["y_pred"], frame["mean"])
    theirs = (frame["pi_upper"] - frame["mean"]).to_numpy()
    np.testing.assert_allclose(half_width(ours), theirs * np.sqrt(120 / (120 - k)), rtol=1e-12)


def test_auto_ets_multiplicative_simulates_like_statsmodels(fitted):
    model = fitted[AutoETS]
    state, y = model.states_[0], model.training_panel_.values[0]
    assert state["spec"]["error"] == "mul"
    n, k = len(y), auto._ets_parameter_count(state["spec"]) - 1
    results = ETSModel(pd.Series(y), **state["spec"]).smooth(state["params"])
    ours = model.predict(level=95)
    # The same draws (5,000 paths, seed 0, R's sigma^2) give statsmodels' simulated interval exactly.
    draws = np.random.default_rng(0).standard_normal((H, 5000)) * np.sqrt(results.scale * n / (n - k))
    prediction = results.get_prediction(
        start=n, end=n + H - 1, method="simulated", simulate_repetitions=5000, random_errors=draws
    )
    frame = prediction.summary_frame(alpha=0.05)
    np.testing.assert_allclose(ours["y_lo_95"], frame["pi_lower"], rtol=1e-12)
    np.testing.assert_allclose(ours["y_hi_95"], frame["pi_upper"], rtol=1e-12)
    # statsmodels' own draws and sigma^2 (SSE / n): the same up to Monte Carlo error and n / (n - k).
    default = results.get_prediction(
        start=n, end=n + H - 1, method="simulated", simulate_repetitions=5000, rng=np.random.default_rng(1)
    )
    theirs = default.summary_frame(alpha=0.05)
    width = (ours["y_hi_95"] - ours["y_lo_95"]).to_numpy() * np.sqrt((n - k) / n)
    np.testing.assert_allclose(width, theirs["pi_upper"] - theirs["pi_lower"], rtol=0.08)


def _sarimax_variance(state, y, h):
    """SARIMAX's forecast variance of ``y`` at the state's ARIMA parameters and CSS sigma^2."""
    p, q, P, Q, m = state["order"]
    ar, ma, sar, sma = auto._constrained(state["params"], state["order"])
    z = difference(y, state["d"], state["D"], m) - state["mean"]
    residuals = auto._css_residuals(
        z, *auto._arma_polynomials(state["params"], state["order"]), state["ncond"]
    )
    sigma2 = np.mean(residuals[state["ncond"] :] ** 2)
    seasonal = (P, state["D"], Q, m) if m > 1 else (0, 0, 0, 0)
    # Our MA polynomials are 1 - ma_1 B - ..., SARIMAX's 1 + ma_1 B + ...
    results = SARIMAX(y, order=(p, state["d"], q), seasonal_order=seasonal).filter(
        np.r_[ar, -ma, sar, -sma, sigma2]
    )
    return np.asarray(results.get_forecast(h).var_pred_mean)


@pytest.mark.parametrize("seasonal", [False, True], ids=["ARIMA(0,1,1)", "seasonal"])
def test_auto_arima_psi_weights_match_sarimax(seasonal):
    """sigma^2 sum psi_j^2 against SARIMAX's Kalman filter at the same parameters.

    They differ only by the filter's remaining uncertainty about the MA state (below 1e-4 here).
    """
    rng = np.random.default_rng(0)
    if seasonal:
        y, m = monthly(n=144, seed=7).to_numpy(), M
    else:
        shocks = rng.normal(size=300)
        y, m = 50.0 + np.cumsum(shocks[1:] + 0.5 * shocks[:-1]), 1
    model = AutoARIMA(horizon=H, season_length=m).fit(pd.Series(y))
    state = model.states_[0]
    assert (state["D"] == 1) == seasonal and state["d"] + state["D"] >= 1
    variance = (half_width(model.predict(level=95)) / Z95) ** 2
    np.testing.assert_allclose(variance, _sarimax_variance(state, y, H), rtol=1e-4)


def _regression_case(d, seed=0, n=200):
    rng = np.random.default_rng(seed)
    errors = np.zeros(n)
    for t in range(1, n):
        errors[t] = 0.7 * errors[t - 1] + rng.normal()
    X = rng.normal(size=(n + H, 1))
    y = (np.cumsum(errors) if d else 15.0 + errors) + 3.0 * X[:n, 0]
    ds = pd.date_range("2020-01-01", periods=n + H, freq="D")
    model = AutoARIMA(horizon=H, future_covariates=["x"])
    frame = pd.DataFrame({"x": X[:, 0]}, index=ds)
    model.fit(pd.Series(y, index=ds[:n]), X=frame)
    return model, model.predict(X=frame, level=[80, 95]), y, X


def test_regression_without_differences_is_sarimax_conf_int():
    model, ours, y, X = _regression_case(d=0)
    state = model.states_[0]
    assert state["d"] + state["D"] == 0 and "coef" in state
    results, future = filtered_regression(state, y, X)
    for level in (80, 95):
        interval = np.asarray(results.get_forecast(H, exog=future).conf_int(alpha=1 - level / 100))
        np.testing.assert_allclose(ours[f"y_lo_{level}"], interval[:, 0], rtol=1e-9)
        np.testing.assert_allclose(ours[f"y_hi_{level}"], interval[:, 1], rtol=1e-9)


def test_regression_with_differences_integrates_the_errors():
    """Fitted on differences, the level's variance is SARIMAX's on the levels with the same ARMA."""
    model, ours, y, X = _regression_case(d=1)
    state = model.states_[0]
    assert state["d"] == 1 and "coef" in state
    results, _ = filtered_regression(state, y, X)
    p, q, _, _, _ = state["order"]
    arma = state["params"][int(state["has_mean"]) + len(state["columns"]) :]
    levels = SARIMAX(y, order=(p, 1, q)).filter(np.r_[arma, results.scale])
    variance = np.asarray(levels.get_forecast(H).var_pred_mean)
    np.testing.assert_allclose((half_width(ours) / Z95) ** 2, variance, rtol=1e-6)


# --- coverage on the model's own process ---------------------------------------------------------
def _local_trend(n_series, n, rng, alpha, beta, phi=1.0):
    """ETS(A,Ad,N) paths (phi = 1: (A,A,N); beta = 0: (A,N,N) with a constant drift ``trend``)."""
    level, trend = np.full(n_series, 50.0), np.full(n_series, 0.3)
    paths = np.empty((n_series, n))
    for t in range(n):
        error = rng.normal(size=n_series)
        paths[:, t] = level + phi * trend + error
        level = level + phi * trend + alpha * error
        trend = phi * trend + beta * error
    return paths


def _seasonal_walk(n_series, n, rng, m=4):
    paths = np.empty((n_series, n))
    paths[:, :m] = rng.normal(0.0, 5.0, (n_series, m))
    for t in range(m, n):
        paths[:, t] = paths[:, t - m] + rng.normal(size=n_series)
    return paths


def _ar1(n_series, n, rng, phi=0.6):
    paths = np.zeros((n_series, n))
    for t in range(1, n):
        paths[:, t] = phi * paths[:, t - 1] + rng.normal(size=n_series)
    return 20.0 + paths


def _random_walk(n_series, n, rng):
    return 100.0 + np.cumsum(rng.normal(size=(n_series, n)), axis=1)


PROCESSES = {  # forecaster, (series, history length), simulator
    "Naive/random walk": (Naive(horizon=6), (1000, 60), _random_walk),
    "SeasonalNaive/seasonal walk": (SeasonalNaive(horizon=8, season_length=4), (1000, 200), _seasonal_walk),
    "SES/local level": (SES(horizon=6), (300, 80), lambda k, n, rng: _local_trend(k, n, rng, 0.4, 0.0, 0.0)),
    "Theta/SES with drift": (Theta(horizon=6), (300, 80), lambda k, n, r: _local_trend(k, n, r, 0.4, 0.0)),
    "Holt/local trend": (Holt(horizon=6), (300, 400), lambda k, n, rng: _local_trend(k, n, rng, 0.5, 0.05)),
    "DampedHolt/damped trend": (
        DampedHolt(horizon=6), (300, 400), lambda k, n, rng: _local_trend(k, n, rng, 0.5, 0.1, 0.9)
    ),
    "AutoARIMA/AR(1)": (AutoARIMA(horizon=6), (120, 150), _ar1),
}  # fmt: skip


@pytest.mark.parametrize("name", list(PROCESSES))
def test_coverage_on_the_models_own_process(name):
    """Coverage of the 80% and 95% intervals within 3 standard errors, over independent series.

    A series' coverage is averaged over its horizon (the steps are correlated), and the standard
    error taken across series.
    """
    model, (n_series, n), simulate = PROCESSES[name]
    model = clone(model)
    paths = simulate(n_series, n + model.horizon, np.random.default_rng(11))
    forecasts = model.fit(pd.DataFrame(paths[:, :n].T)).predict(level=[80, 95])
    actual = paths[:, n:]
    for level in (80, 95):
        lower, upper = forecasts[f"y_lo_{level}"].to_numpy().T, forecasts[f"y_hi_{level}"].to_numpy().T
        per_series = ((actual >= lower) & (actual <= upper)).mean(axis=1)
        error = per_series.std(ddof=1) / np.sqrt(n_series)
        assert abs(per_series.mean() - level / 100) < 3 * error, (level, per_series.mean(), error)
