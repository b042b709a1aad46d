"""Interval and probabilistic metrics: MSIS, ACD, coverage, CRPS from quantiles, on arrays and panels."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from test_metrics import M4_DIR, m4_hourly_long

from tsforecast.exceptions import InvalidInputError, InvalidParameterError
from tsforecast.metrics import (
    acd,
    coverage,
    evaluate,
    evaluate_by_horizon,
    interval_score,
    mae,
    mase,
    msis,
    pinball_loss,
    pooled_coverage,
    quantile_crps,
    quantiles_from_intervals,
    scaled_crps,
)

# --- interval score and MSIS: hand-computed ------------------------------------------------------


def test_interval_score_hand_value_with_a_miss_on_each_side():
    y = [5.0, 2.0, 13.0]
    lower, upper = [4.0, 3.0, 8.0], [6.0, 7.0, 10.0]
    # level 80: a = 0.2, penalty 2 / a = 10 per unit of miss.
    # inside: width 2; below by 1: 4 + 10; above by 3: 2 + 30.
    assert interval_score(y, lower, upper, level=80) == pytest.approx((2 + 14 + 32) / 3)


def test_msis_hand_value_with_seasonal_scale_and_nan_actual():
    y_train = [10.0, 20.0, 13.0, 24.0, 10.0]  # lag 2: |13-10|, |24-20|, |10-13| -> scale 10/3
    y = [12.0, 30.0, np.nan]
    lower, upper = [10.0, 21.0, 0.0], [14.0, 25.0, 1.0]
    # 95%: a = 0.05, penalty 40 per unit. 12 inside [10, 14]: 4; 30 above 25 by 5: 4 + 200.
    expected = (4 + 204) / 2 / (10 / 3)
    assert msis(y, lower, upper, y_train, season_length=2, level=95) == pytest.approx(expected)


def test_msis_of_a_perfect_zero_width_interval_is_zero():
    y = [3.0, 7.0, 5.0]
    assert msis(y, y, y, y_train=[1.0, 2.0, 4.0]) == 0.0


def test_msis_of_a_zero_width_miss_is_the_penalty_alone():
    # Off by 2 with no width: (2 / 0.05) * 2 = 80, over the scale mean(1, 2) = 1.5.
    assert msis([10.0], [12.0], [12.0], y_train=[1.0, 2.0, 4.0], level=95) == pytest.approx(80 / 1.5)


def test_msis_of_a_zero_width_interval_at_the_point_is_2_over_a_times_mase():
    rng = np.random.default_rng(1)
    y, f, train = rng.normal(50, 5, 12), rng.normal(50, 5, 12), rng.normal(50, 5, 60)
    for level in (50, 80, 95):
        a = 1 - level / 100
        expected = 2 / a * mase(y, f, train, season_length=12)
        assert msis(y, f, f, train, season_length=12, level=level) == pytest.approx(expected)


def test_msis_scale_errors_match_mase():
    with pytest.raises(InvalidInputError, match="scale is 0.0") as flat:
        msis([1.0], [0.0], [2.0], y_train=[5.0, 5.0, 5.0])
    with pytest.raises(InvalidInputError, match="scale is 0.0") as flat_mase:
        mase([1.0], [1.0], y_train=[5.0, 5.0, 5.0])
    assert str(flat.value) == str(flat_mase.value)
    with pytest.raises(InvalidInputError, match="no two observed values season_length=4 steps apart"):
        msis([1.0], [0.0], [2.0], y_train=[1.0, 2.0, 3.0], season_length=4)


@pytest.mark.parametrize("metric", [interval_score, coverage, acd])
def test_interval_metrics_reject_crossed_bounds(metric):
    with pytest.raises(InvalidInputError, match="lower exceeds upper at 1 position"):
        metric([1.0, 2.0], [0.0, 3.0], [2.0, 2.5])


@pytest.mark.parametrize("level", [0, 100, 120, -5, [80, 95], "95", True])
def test_interval_metrics_reject_a_bad_level(level):
    with pytest.raises(InvalidParameterError, match="level must be"):
        acd([1.0], [0.0], [2.0], level=level)
    with pytest.raises(InvalidParameterError, match="level must be"):
        interval_score([1.0], [0.0], [2.0], level=level)


# --- coverage and ACD: M4 pools the coverage -------------------------------------------------------


def test_acd_hand_value():
    y = [1.0, 5.0, 3.0, 2.0, np.nan]
    lower, upper = [0.0, 0.0, 2.0, 1.0, 9.0], [2.0, 4.0, 4.0, 3.0, 9.0]
    assert coverage(y, lower, upper) == pytest.approx(0.75)
    assert acd(y, lower, upper, level=80) == pytest.approx(0.05)
    assert acd(y, lower, upper, level=50) == pytest.approx(0.25)


def test_pooled_acd_is_not_the_mean_of_per_series_acds():
    # Series a is always covered, b never: each misses 95% by far, the panel by 0.45.
    y = [1.0, 1.0, 9.0, 9.0]
    lower, upper = [0.0] * 4, [2.0] * 4
    assert acd(y[:2], lower[:2], upper[:2]) == pytest.approx(0.05)
    assert acd(y[2:], lower[2:], upper[2:]) == pytest.approx(0.95)
    assert acd(y, lower, upper) == pytest.approx(0.45)
    points = pd.DataFrame({"y": y, "y_lo_95": lower, "y_hi_95": upper, "id": list("aabb")})
    assert pooled_coverage(points).to_dict() == pytest.approx({"coverage_95": 0.5, "acd_95": 0.45})
    by_series = pooled_coverage(points, by="id")
    assert by_series["acd_95"].tolist() == pytest.approx([0.05, 0.95])


# --- CRPS from quantiles ---------------------------------------------------------------------------


def test_quantile_crps_hand_value():
    y = [10.0, 10.0]
    forecasts = {0.1: [8.0, 8.0], 0.5: [10.0, 11.0], 0.9: [12.0, 14.0]}
    # pinball: 0.1 -> 0.1 * 2 = 0.2; 0.5 -> (0 + 0.5) / 2 = 0.25; 0.9 -> 0.1 * (2 + 4) / 2 = 0.3
    assert quantile_crps(y, forecasts) == pytest.approx(2 * (0.2 + 0.25 + 0.3) / 3)


def test_quantile_crps_of_the_median_alone_is_the_mae():
    rng = np.random.default_rng(2)
    y, f = rng.normal(size=20), rng.normal(size=20)
    assert quantile_crps(y, {0.5: f}) == pytest.approx(mae(y, f))


def _normal_crps(y, mu, sigma):
    """Closed form of the CRPS of N(mu, sigma^2) at y (Gneiting and Raftery 2007, eq. 21)."""
    z = (y - mu) / sigma
    return sigma * (z * (2 * stats.norm.cdf(z) - 1) + 2 * stats.norm.pdf(z) - 1 / np.sqrt(np.pi))


def test_quantile_crps_of_many_normal_quantiles_approaches_the_closed_form():
    rng = np.random.default_rng(3)
    mu, sigma = rng.normal(0, 1, 40), rng.uniform(0.5, 2.0, 40)
    y = rng.normal(0, 1.5, 40)
    exact = float(np.mean(_normal_crps(y, mu, sigma)))
    errors = []
    for k in (19, 199, 1999):
        levels = np.arange(1, k + 1) / (k + 1)
        forecasts = {q: mu + sigma * stats.norm.ppf(q) for q in levels}
        errors.append(abs(quantile_crps(y, forecasts) - exact) / exact)
    assert errors[-1] < 1e-3
    assert errors[0] > errors[1] > errors[2]  # the quadrature converges as levels are added


def test_scaled_crps_divides_by_the_seasonal_naive_scale_and_point_mass_gives_mase():
    rng = np.random.default_rng(4)
    y, f, train = rng.normal(20, 3, 8), rng.normal(20, 3, 8), rng.normal(20, 3, 30)
    forecasts = {0.05: f - 4, 0.5: f, 0.95: f + 4}
    scale = mae(train[4:], train[:-4])
    assert scaled_crps(y, forecasts, train, season_length=4) == pytest.approx(
        quantile_crps(y, forecasts) / scale
    )
    # every quantile on the point forecast: twice the mean pinball over levels is the MAE
    point_mass = {q: f for q in (0.1, 0.3, 0.5, 0.7, 0.9)}
    assert scaled_crps(y, point_mass, train, season_length=4) == pytest.approx(mase(y, f, train, 4))


def test_quantiles_from_intervals_uses_interval_quantiles_and_the_point_as_median():
    forecasts = quantiles_from_intervals({95: ([1.0], [9.0]), 80.0: ([2.0], [8.0])}, point=[5.0])
    assert list(forecasts) == [0.025, 0.1, 0.5, 0.9, 0.975]
    assert [float(v[0]) for v in forecasts.values()] == [1.0, 2.0, 5.0, 8.0, 9.0]
    assert list(quantiles_from_intervals({50: ([1.0], [2.0])})) == [0.25, 0.75]


@pytest.mark.parametrize(
    ("forecasts", "message"),
    [
        ({}, "non-empty mapping"),
        ([0.5], "non-empty mapping"),
        ({1.0: [1.0]}, "strictly between 0 and 1"),
        ({0.5: [np.nan]}, "q0.5 has 1 NaN"),
        ({0.5: [1.0, 2.0]}, "same length"),
    ],
)
def test_quantile_crps_rejects_bad_quantile_forecasts(forecasts, message):
    with pytest.raises(InvalidInputError, match=message):
        quantile_crps([1.0], forecasts)


def test_quantiles_from_intervals_rejects_bad_intervals():
    with pytest.raises(InvalidInputError, match="mapping of level"):
        quantiles_from_intervals([(1.0, 2.0)])
    with pytest.raises(InvalidInputError, match=r"intervals\[95\] must be a \(lower, upper\) pair"):
        quantiles_from_intervals({95: 3.0})


# --- panels: two series of different lengths -------------------------------------------------------


@pytest.fixture
def interval_panel():
    """Series a forecast 3 steps, b 2 steps (b is shorter), with 80% and 95% intervals."""
    train = pd.DataFrame(
        {
            "unique_id": ["a"] * 4 + ["b"] * 3,
            "ds": [0, 1, 2, 3, 0, 1, 2],
            "y": [10.0, 12, 11, 13, 100, 90, 95],
        }
    )
    actuals = pd.DataFrame({"unique_id": list("aaabb"), "ds": [4, 5, 6, 3, 4], "y": [14.0, 12, 15, 80, 88]})
    forecasts = pd.DataFrame(
        {
            "unique_id": list("aaabb"),
            "ds": [4, 5, 6, 3, 4],
            "y_pred": [13.0, 13, 13, 85, 85],
            "y_lo_80": [12.0, 12.5, 12, 82, 82],
            "y_hi_80": [14.0, 14, 14, 90, 90],
            "y_lo_95": [11.0, 11, 11, 78, 78],
            "y_hi_95": [15.0, 15, 15, 92, 92],
        }
    )
    return forecasts, actuals, train


def _series(frame, uid):
    return frame[frame["unique_id"] == uid]


def test_evaluate_scores_interval_columns_per_series(interval_panel):
    forecasts, actuals, train = interval_panel
    metrics = ["mae", "msis", "coverage", "acd", "crps"]
    result = evaluate(forecasts, actuals, train, metrics=metrics)
    assert list(result.columns) == [
        "mae", "msis_80", "msis_95", "coverage_80", "coverage_95", "acd_80", "acd_95", "crps",
    ]  # fmt: skip
    for uid in ("a", "b"):
        f, y, h = _series(forecasts, uid), _series(actuals, uid)["y"], _series(train, uid)["y"]
        for level in (80, 95):
            lo, hi = f[f"y_lo_{level}"], f[f"y_hi_{level}"]
            assert result.loc[uid, f"msis_{level}"] == pytest.approx(msis(y, lo, hi, h, level=level))
            assert result.loc[uid, f"acd_{level}"] == pytest.approx(acd(y, lo, hi, level))
        quantiles = quantiles_from_intervals(
            {lv: (f[f"y_lo_{lv}"], f[f"y_hi_{lv}"]) for lv in (80, 95)}, point=f["y_pred"]
        )
        assert result.loc[uid, "crps"] == pytest.approx(scaled_crps(y, quantiles, h))
    # a: 14 in [12, 14], 12 not in [12.5, 14], 15 not in [12, 14]; b: 80 not in [82, 90], 88 in
    assert result["coverage_80"].tolist() == pytest.approx([1 / 3, 1 / 2])
    assert result["coverage_95"].tolist() == pytest.approx([1.0, 1.0])
    # b, 80%: width 8 twice, 80 below 82 by 2 -> + 10 * 2; scale mean(10, 5) = 7.5
    assert result.loc["b", "msis_80"] == pytest.approx((8 + 28) / 2 / 7.5)


def test_evaluate_by_horizon_scales_each_point_by_its_series_and_pools_coverage(interval_panel):
    forecasts, actuals, train = interval_panel
    result = evaluate_by_horizon(forecasts, actuals, train, metrics=["msis", "coverage", "acd"], level=80)
    assert list(result.columns) == ["msis_80", "coverage_80", "acd_80"]
    assert list(result.index) == [1, 2, 3]
    scale_a, scale_b = 5 / 3, 7.5
    # step 1: a 14 in [12, 14] -> 2; b 80 below 82 -> 8 + 20
    assert result.loc[1, "msis_80"] == pytest.approx((2 / scale_a + 28 / scale_b) / 2)
    assert result.loc[1, "coverage_80"] == pytest.approx(0.5)
    assert result.loc[1, "acd_80"] == pytest.approx(0.3)
    # step 3: only a (b has two steps); 15 above 14 by 1 -> 2 + 10
    assert result.loc[3, "msis_80"] == pytest.approx(12 / scale_a)
    assert result.loc[3, "acd_80"] == pytest.approx(0.8)


def test_evaluate_pinball_scores_each_bound_as_its_quantile(interval_panel):
    forecasts, actuals, _ = interval_panel
    result = evaluate(forecasts, actuals, metrics=["pinball"], level=95)
    assert list(result.columns) == ["pinball_y_lo_95", "pinball_y_hi_95"]
    a, y = _series(forecasts, "a"), _series(actuals, "a")["y"]
    assert result.loc["a", "pinball_y_lo_95"] == pytest.approx(pinball_loss(y, a["y_lo_95"], 0.025))
    assert result.loc["a", "pinball_y_hi_95"] == pytest.approx(pinball_loss(y, a["y_hi_95"], 0.975))


def test_evaluate_crps_prefers_a_median_column_to_the_point_forecast(interval_panel):
    forecasts, actuals, train = interval_panel
    with_median = forecasts.assign(**{"q0.5": forecasts["y_pred"] + 1.0})
    base = evaluate(forecasts, actuals, train, metrics=["crps"], level=95)
    shifted = evaluate(with_median, actuals, train, metrics=["crps"], level=95)
    a, y, h = _series(with_median, "a"), _series(actuals, "a")["y"], _series(train, "a")["y"]
    expected = scaled_crps(y, {0.025: a["y_lo_95"], 0.5: a["q0.5"], 0.975: a["y_hi_95"]}, h)
    assert shifted.loc["a", "crps"] == pytest.approx(expected)
    assert shifted.loc["a", "crps"] != pytest.approx(base.loc["a", "crps"])


def test_evaluate_scores_quantile_pairs_and_intervals_side_by_side(interval_panel):
    forecasts, actuals, _ = interval_panel
    both = forecasts.assign(**{"q0.1": forecasts["y_lo_80"], "q0.9": forecasts["y_hi_80"]})
    result = evaluate(both, actuals, metrics=["coverage"])
    assert list(result.columns) == ["coverage_q0.1_q0.9", "coverage_80", "coverage_95"]
    np.testing.assert_allclose(result["coverage_q0.1_q0.9"], result["coverage_80"])


@pytest.mark.parametrize(
    ("mutate", "kwargs", "message"),
    [
        (
            lambda f: f.drop(columns=["y_lo_80", "y_hi_80", "y_lo_95", "y_hi_95"]),
            {"metrics": ["msis"]},
            r"metrics \['msis'\] need interval forecast columns named like 'y_lo_95' and 'y_hi_95'",
        ),
        (
            lambda f: f.drop(columns=["y_lo_80", "y_hi_80", "y_lo_95", "y_hi_95"]),
            {"metrics": ["coverage"]},
            "need quantile forecast columns named like 'q0.1'.* or interval columns like 'y_lo_95'",
        ),
        (lambda f: f, {"metrics": ["acd"], "level": [90, 95]},
         r"lacks the interval column\(s\) \['y_lo_90', 'y_hi_90'\] asked for by level=\[90, 95\]"),
        (lambda f: f.drop(columns="y_hi_95"), {"metrics": ["acd"]}, r"\['y_lo_95'\] without the other bound"),
        (lambda f: f, {"metrics": ["msis"]}, "metric 'msis' needs train"),
        (lambda f: f, {"metrics": ["crps", "mase"]}, "metrics 'crps', 'mase' need train"),
        (lambda f: f.assign(y_lo_95=f["y_lo_95"].where(f["ds"] != 4, 99.0)), {"metrics": ["coverage"]},
         r"y_lo_95 exceeds its y_hi_95 at 2 point\(s\), first in series 'a' at ds=4"),
        (lambda f: f.assign(y_lo_80=np.where(f.index == 4, np.nan, f["y_lo_80"])), {"metrics": ["msis"]},
         r"(series 'b'|horizon step 2) \(msis_80\): lower has 1 NaN"),
    ],
)  # fmt: skip
def test_evaluate_interval_errors_name_what_is_missing(interval_panel, mutate, kwargs, message):
    forecasts, actuals, train = interval_panel
    train = None if "train" in message else train
    for score in (evaluate, evaluate_by_horizon):
        with pytest.raises(InvalidInputError, match=message):
            score(mutate(forecasts.copy()), actuals, train, **kwargs)


def test_pooled_coverage_by_step_matches_evaluate_by_horizon(interval_panel):
    forecasts, actuals, _ = interval_panel
    points = actuals.merge(forecasts).assign(step=lambda f: f.groupby("unique_id").cumcount() + 1)
    pooled = pooled_coverage(points, by="step", level=[80, 95])
    by_step = evaluate_by_horizon(forecasts, actuals, metrics=["coverage", "acd"])
    np.testing.assert_allclose(pooled.to_numpy(), by_step.to_numpy())
    with pytest.raises(InvalidInputError, match="metrics must be a non-empty sequence of"):
        pooled_coverage(points, metrics=["msis"])


# --- M4 Hourly: the published MSIS and ACD of the Naive benchmark ----------------------------------


@pytest.mark.skipif(not (M4_DIR / "Hourly-test.csv").exists(), reason="M4 Hourly data not present")
def test_m4_hourly_naive_intervals_match_published_msis_and_acd():
    """Naive's 95% intervals as the M4 benchmark made them (R forecast 8.2: last value
    +- 1.96 * sqrt(h * mean of squared one-step changes)) score M4's published MSIS and ACD."""
    train, test = m4_hourly_long("train"), m4_hourly_long("test")
    test["ds"] += test["unique_id"].map(train.groupby("unique_id").size())
    history = train.groupby("unique_id")["y"]
    sigma = history.apply(lambda s: np.sqrt(np.mean(np.diff(s.to_numpy()) ** 2)))
    half = (
        stats.norm.ppf(0.975)
        * test["unique_id"].map(sigma)
        * np.sqrt(test.groupby("unique_id").cumcount() + 1)
    )
    point = test["unique_id"].map(history.last())
    forecasts = test[["unique_id", "ds"]].assign(y_pred=point, y_lo_95=point - half, y_hi_95=point + half)
    published = pd.read_csv(M4_DIR / "hourly_published_intervals.csv").set_index("method").loc["Naive"]

    per_series = evaluate(forecasts, test, train, season_length=24, metrics=["msis", "acd"])
    assert round(per_series["msis_95"].mean(), 3) == published["hourly_msis"]
    pooled = pooled_coverage(test.merge(forecasts), level=95)
    assert round(pooled["acd_95"], 3) == round(published["hourly_acd"], 3)
    # the mean of per-series ACDs is another number altogether
    assert per_series["acd_95"].mean() > 5 * pooled["acd_95"]
