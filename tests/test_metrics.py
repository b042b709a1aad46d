import doctest
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from tsforecast import metrics
from tsforecast.exceptions import InvalidInputError
from tsforecast.metrics import (
    coverage,
    evaluate,
    evaluate_by_horizon,
    mae,
    mape,
    mase,
    owa,
    pinball_loss,
    rmse,
    smape,
)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.mark.parametrize(
    "module", [metrics.point, metrics.intervals, metrics.panel], ids=lambda m: m.__name__
)
def test_docstring_examples_run(module):
    result = doctest.testmod(module, raise_on_error=False)
    assert result.attempted > 0 and result.failed == 0


# --- point metrics: hand-computed values -------------------------------------------------------


def test_smape_hand_value():
    assert smape([100.0], [110.0]) == pytest.approx(200 * 10 / 210)


def test_smape_zero_over_zero_counts_as_no_error():
    assert smape([0.0, 100.0], [0.0, 110.0]) == pytest.approx(200 * 10 / 210 / 2)


def test_smape_is_bounded_by_200_when_one_side_is_zero():
    assert smape([0.0, 5.0], [3.0, 0.0]) == pytest.approx(200.0)


def test_mae_rmse_mape_hand_values():
    y, f = [1.0, 2.0, 4.0], [2.0, 2.0, 2.0]
    assert mae(y, f) == pytest.approx(1.0)
    assert rmse(y, f) == pytest.approx(np.sqrt(5 / 3))
    assert mape(y, f) == pytest.approx(100 * (1 / 1 + 0 + 2 / 4) / 3)


@pytest.mark.parametrize(
    ("ours", "theirs", "factor"),
    [
        (mae, skm.mean_absolute_error, 1),
        (rmse, skm.root_mean_squared_error, 1),
        (mape, skm.mean_absolute_percentage_error, 100),
    ],
)
def test_agrees_with_sklearn(rng, ours, theirs, factor):
    y, f = rng.uniform(1, 10, 50), rng.uniform(1, 10, 50)
    assert ours(y, f) == pytest.approx(factor * theirs(y, f))


def test_returns_python_float():
    assert type(mae(np.array([1.0]), np.array([2.0]))) is float


# --- NaN handling ------------------------------------------------------------------------------


@pytest.mark.parametrize("metric", [mae, rmse, mape, smape])
def test_nan_actuals_are_ignored(metric):
    y = np.array([10.0, np.nan, 20.0, np.nan])
    f = np.array([12.0, 99.0, 15.0, np.nan])
    assert metric(y, f) == pytest.approx(metric([10.0, 20.0], [12.0, 15.0]))


def test_nan_forecast_where_actual_observed_raises():
    with pytest.raises(InvalidInputError, match=r"y_pred has 1 NaN or infinite value"):
        mae([1.0, 2.0], [1.0, np.nan])


def test_all_nan_actuals_raise():
    with pytest.raises(InvalidInputError, match="only NaN"):
        smape([np.nan, np.nan], [1.0, 2.0])


# --- validation --------------------------------------------------------------------------------


def test_mismatched_lengths_raise_with_lengths():
    with pytest.raises(InvalidInputError, match=r"same length.*'y_true': 3.*'y_pred': 2"):
        mae([1.0, 2.0, 3.0], [1.0, 2.0])


def test_empty_input_raises():
    with pytest.raises(InvalidInputError, match="y_true is empty"):
        rmse([], [])


def test_two_dimensional_input_raises():
    with pytest.raises(InvalidInputError, match=r"y_pred must be 1-D.*\(2, 2\)"):
        mae([1.0, 2.0], [[1.0, 2.0], [3.0, 4.0]])


def test_non_numeric_input_raises():
    with pytest.raises(InvalidInputError, match="y_true must be numeric"):
        mae(["a", "b"], [1.0, 2.0])


def test_mape_with_zero_actual_raises():
    with pytest.raises(InvalidInputError, match=r"y_true is 0 \(1 point"):
        mape([0.0, 1.0], [1.0, 1.0])


def test_errors_are_value_errors():
    with pytest.raises(ValueError):
        mae([], [])


# --- MASE and OWA ------------------------------------------------------------------------------


def test_mase_season_24_matches_direct_numpy(rng):
    hours = np.arange(24 * 10)
    y_train = 50 + 10 * np.sin(2 * np.pi * hours / 24) + rng.normal(0, 1, hours.size)
    y_train[[5, 100, 101]] = np.nan
    y_true = 50 + 10 * np.sin(2 * np.pi * np.arange(48) / 24)
    y_pred = y_true + rng.normal(0, 2, 48)

    lagged = np.abs(y_train[24:] - y_train[:-24])
    expected = np.mean(np.abs(y_true - y_pred)) / np.nanmean(lagged)
    assert mase(y_true, y_pred, y_train, season_length=24) == pytest.approx(expected)


def test_mase_hand_value_and_nan_actuals():
    # scale = mean(|9-8|, |11-9|) = 1.5; errors at the observed points are 1 and 2.
    assert mase([10.0, np.nan, 14.0], [11.0, 0.0, 12.0], [8.0, 9.0, 11.0]) == pytest.approx(1.5 / 1.5)


def test_mase_constant_history_raises():
    with pytest.raises(InvalidInputError, match="MASE scale is 0.0"):
        mase([1.0], [2.0], y_train=[5.0, 5.0, 5.0])


def test_mase_history_shorter_than_season_raises():
    with pytest.raises(InvalidInputError, match=r"undefined.*3 values.*season_length=4"):
        mase([1.0], [2.0], y_train=[1.0, 2.0, 3.0], season_length=4)


@pytest.mark.parametrize("season_length", [0, 1.5, True, "12"])
def test_mase_bad_season_length_raises(season_length):
    with pytest.raises(InvalidInputError, match="season_length must be an int >= 1"):
        mase([1.0], [2.0], y_train=[1.0, 2.0, 3.0], season_length=season_length)


def test_owa_of_naive2_against_itself_is_one():
    y, naive2, y_train = [10.0, 12.0, 9.0], [11.0, 11.0, 11.0], [8.0, 10.0, 9.0, 12.0]
    s, m = smape(y, naive2), mase(y, naive2, y_train)
    assert owa(s, m, s, m) == pytest.approx(1.0)


def test_owa_hand_value():
    assert owa(smape=10.0, mase=2.0, naive2_smape=20.0, naive2_mase=1.0) == pytest.approx(1.25)


@pytest.mark.parametrize("bad", [0.0, -1.0, np.nan, np.inf])
def test_owa_rejects_unusable_naive2(bad):
    with pytest.raises(InvalidInputError, match="naive2_mase must be a positive finite number"):
        owa(1.0, 1.0, 1.0, bad)


# --- pinball and coverage ----------------------------------------------------------------------


def test_pinball_hand_value():
    # under-forecast by 2 costs 0.9 * 2; over-forecast by 3 costs 0.1 * 3
    assert pinball_loss([10.0, 10.0], [8.0, 13.0], quantile=0.9) == pytest.approx((1.8 + 0.3) / 2)


def test_pinball_median_is_half_mae_and_agrees_with_sklearn(rng):
    y, q = rng.normal(size=30), rng.normal(size=30)
    assert pinball_loss(y, q, 0.5) == pytest.approx(mae(y, q) / 2)
    assert pinball_loss(y, q, 0.1) == pytest.approx(skm.mean_pinball_loss(y, q, alpha=0.1))


@pytest.mark.parametrize("quantile", [0.0, 1.0, -0.2, 1.5])
def test_pinball_rejects_quantile_outside_open_unit_interval(quantile):
    with pytest.raises(InvalidInputError, match="quantile must lie strictly between 0 and 1"):
        pinball_loss([1.0], [1.0], quantile)


def test_coverage_counts_closed_interval_and_ignores_nan():
    y = [1.0, 2.0, 5.0, np.nan, 0.0]
    lower = [0.0, 2.0, 3.0, 0.0, 1.0]
    upper = [2.0, 3.0, 4.0, 0.0, 2.0]
    # inside: 1 in [0, 2], 2 on the lower edge of [2, 3]; outside: 5 and 0.
    assert coverage(y, lower, upper) == pytest.approx(2 / 4)


def test_coverage_rejects_crossed_bounds():
    with pytest.raises(InvalidInputError, match="lower exceeds upper at 1 position"):
        coverage([1.0, 2.0], [0.0, 3.0], [2.0, 2.5])


def test_coverage_rejects_mismatched_bounds():
    with pytest.raises(InvalidInputError, match="'upper': 1"):
        coverage([1.0, 2.0], [0.0, 0.0], [2.0])


# --- panel evaluation --------------------------------------------------------------------------


@pytest.fixture
def panel():
    """Two series, horizon 3; series b's last actual is missing."""
    train = pd.DataFrame(
        {
            "unique_id": ["a"] * 4 + ["b"] * 4,
            "ds": [0, 1, 2, 3] * 2,
            "y": [10.0, 12.0, 11.0, 13.0, 100.0, 90.0, 95.0, 85.0],
        }
    )
    actuals = pd.DataFrame(
        {
            "unique_id": ["a"] * 3 + ["b"] * 3,
            "ds": [4, 5, 6] * 2,
            "y": [14.0, 12.0, 15.0, 80.0, 88.0, np.nan],
        }
    )
    forecasts = pd.DataFrame(
        {
            "unique_id": ["a"] * 3 + ["b"] * 3,
            "ds": [4, 5, 6] * 2,
            "y_pred": [13.0, 13.0, 13.0, 85.0, 85.0, 85.0],
        }
    )
    return forecasts, actuals, train


def test_evaluate_one_row_per_series_matching_point_metrics(panel):
    forecasts, actuals, train = panel
    result = evaluate(forecasts, actuals, train)

    assert list(result.columns) == ["smape", "mase", "mae", "rmse"]
    assert list(result.index) == ["a", "b"]
    assert result.index.name == "unique_id"
    a_true, a_pred, a_train = [14.0, 12.0, 15.0], [13.0] * 3, [10.0, 12.0, 11.0, 13.0]
    assert result.loc["a", "smape"] == pytest.approx(smape(a_true, a_pred))
    assert result.loc["a", "mase"] == pytest.approx(mase(a_true, a_pred, a_train))
    assert result.loc["a", "rmse"] == pytest.approx(rmse(a_true, a_pred))
    # b's NaN actual at ds=6 is ignored: errors 5 and 3; scale = mean(10, 5, 10) = 25/3.
    assert result.loc["b", "mae"] == pytest.approx(4.0)
    assert result.loc["b", "mase"] == pytest.approx(4.0 / (25 / 3))


def test_evaluate_panel_mean_is_mean_of_series(panel):
    forecasts, actuals, train = panel
    result = evaluate(forecasts, actuals, train, metrics=["smape"])
    pooled = smape(actuals["y"], forecasts["y_pred"])
    per_series = [smape([14.0, 12.0, 15.0], [13.0] * 3), smape([80.0, 88.0], [85.0, 85.0])]
    assert result["smape"].mean() == pytest.approx(np.mean(per_series))
    assert result["smape"].mean() != pytest.approx(pooled)


def test_evaluate_season_length_and_custom_columns(panel):
    forecasts, actuals, train = panel
    rename = {"unique_id": "item", "ds": "date", "y": "sales", "y_pred": "fcst"}
    result = evaluate(
        forecasts.rename(columns=rename),
        actuals.rename(columns=rename),
        train.rename(columns=rename),
        season_length=2,
        metrics=("mase", "mape"),
        id_col="item",
        time_col="date",
        target_col="sales",
        pred_col="fcst",
    )
    # a: lag-2 scale = mean(|11-10|, |13-12|) = 1, MAE = 4/3.
    assert result.loc["a", "mase"] == pytest.approx(4 / 3)
    assert result.index.name == "item"
    assert list(result.columns) == ["mase", "mape"]


def test_evaluate_ignores_forecasts_beyond_actuals_and_row_order(panel):
    forecasts, actuals, train = panel
    extra = pd.DataFrame({"unique_id": ["a"], "ds": [7], "y_pred": [1e6]})
    shuffled = pd.concat([forecasts, extra]).sample(frac=1, random_state=1)
    pd.testing.assert_frame_equal(evaluate(shuffled, actuals, train), evaluate(forecasts, actuals, train))


def test_evaluate_missing_series_raises_naming_it(panel):
    forecasts, actuals, train = panel
    with pytest.raises(InvalidInputError, match=r"no rows for 1 series of actuals: \['b'\]"):
        evaluate(forecasts[forecasts["unique_id"] == "a"], actuals, train)


def test_evaluate_missing_timestamp_raises_naming_series(panel):
    forecasts, actuals, train = panel
    with pytest.raises(InvalidInputError, match=r"lack 1 observed timestamp.*series 'a' at ds=5"):
        evaluate(forecasts.drop(index=1), actuals, train)


def test_evaluate_mase_needs_train(panel):
    forecasts, actuals, _ = panel
    with pytest.raises(InvalidInputError, match="'mase' needs train"):
        evaluate(forecasts, actuals)
    assert list(evaluate(forecasts, actuals, metrics=["mae"]).columns) == ["mae"]


def test_evaluate_train_missing_series_raises(panel):
    forecasts, actuals, train = panel
    with pytest.raises(InvalidInputError, match=r"train has no rows for 1 scored series: \['b'\]"):
        evaluate(forecasts, actuals, train[train["unique_id"] == "a"])


def test_evaluate_constant_history_raises_naming_series(panel):
    forecasts, actuals, train = panel
    flat = train.assign(y=np.where(train["unique_id"] == "b", 7.0, train["y"]))
    with pytest.raises(InvalidInputError, match=r"series 'b': MASE scale is 0.0"):
        evaluate(forecasts, actuals, flat)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda f: f.iloc[:0], "forecasts is empty"),
        (lambda f: f.drop(columns="y_pred"), r"forecasts lacks column\(s\) \['y_pred'\]"),
        (lambda f: pd.concat([f, f.iloc[:1]]), r"1 duplicate \('unique_id', 'ds'\) row.*series 'a'"),
        (lambda f: f["y_pred"].to_numpy(), "forecasts must be a pandas DataFrame"),
    ],
)
def test_evaluate_rejects_malformed_forecasts(panel, mutate, message):
    forecasts, actuals, train = panel
    with pytest.raises(InvalidInputError, match=message):
        evaluate(mutate(forecasts), actuals, train)


@pytest.mark.parametrize("bad", [("smape", "owa"), [], "smape"])
def test_evaluate_rejects_unknown_metrics(panel, bad):
    forecasts, actuals, train = panel
    with pytest.raises(InvalidInputError, match="metrics must be a non-empty sequence of"):
        evaluate(forecasts, actuals, train, metrics=bad)


def test_evaluate_nan_forecast_raises_naming_series(panel):
    forecasts, actuals, train = panel
    forecasts.loc[4, "y_pred"] = np.nan
    with pytest.raises(InvalidInputError, match=r"series 'b': y_pred has 1 NaN"):
        evaluate(forecasts, actuals, train)


# --- per-horizon breakdown ---------------------------------------------------------------------


def test_evaluate_by_horizon_shape_and_values(panel):
    forecasts, actuals, train = panel
    result = evaluate_by_horizon(forecasts, actuals, train)

    assert result.shape == (3, 4)
    assert list(result.index) == [1, 2, 3]
    assert result.index.name == "horizon"
    assert list(result.columns) == ["smape", "mase", "mae", "rmse"]
    scale_a, scale_b = 5 / 3, 25 / 3
    # step 1: |14-13| = 1 (a), |80-85| = 5 (b)
    assert result.loc[1, "mae"] == pytest.approx(3.0)
    assert result.loc[1, "rmse"] == pytest.approx(np.sqrt((1 + 25) / 2))
    assert result.loc[1, "smape"] == pytest.approx((200 / 27 + 200 * 5 / 165) / 2)
    assert result.loc[1, "mase"] == pytest.approx((1 / scale_a + 5 / scale_b) / 2)
    # step 3: b's actual is NaN, so only a counts: |15-13| = 2
    assert result.loc[3, "mae"] == pytest.approx(2.0)
    assert result.loc[3, "mase"] == pytest.approx(2 / scale_a)


def test_evaluate_by_horizon_ranks_datetimes_per_series():
    # Series start at different dates; step is the rank within each series, not the date.
    actuals = pd.DataFrame(
        {
            "unique_id": ["a", "a", "b", "b"],
            "ds": pd.to_datetime(["2024-01-02", "2024-01-01", "2024-03-01", "2024-03-02"]),
            "y": [20.0, 10.0, 30.0, 40.0],
        }
    )
    forecasts = actuals.assign(y_pred=actuals["y"] + [2.0, 1.0, 3.0, 4.0]).drop(columns="y")
    result = evaluate_by_horizon(forecasts, actuals, metrics=["mae"])
    assert result["mae"].to_dict() == pytest.approx({1: 2.0, 2: 3.0})


def test_evaluate_by_horizon_mase_scales_each_series_by_its_own_history(panel):
    forecasts, actuals, train = panel
    by_step = evaluate_by_horizon(forecasts, actuals, train, metrics=["mase"])
    scaled_a = np.array([1, 1, 2]) / (5 / 3)
    scaled_b = np.array([5, 3]) / (25 / 3)
    expected = [(scaled_a[0] + scaled_b[0]) / 2, (scaled_a[1] + scaled_b[1]) / 2, scaled_a[2]]
    assert by_step["mase"].tolist() == pytest.approx(expected)


def test_the_train_history_may_be_its_validated_panel(panel):
    from tsforecast.data import to_panel

    forecasts, actuals, train = panel
    as_panel = to_panel(train.sample(frac=1.0, random_state=0))  # rows in any order, as a frame's
    wanted = ["mase", "smape"]
    pd.testing.assert_frame_equal(
        evaluate(forecasts, actuals, as_panel, metrics=wanted),
        evaluate(forecasts, actuals, train, metrics=wanted),
    )
    pd.testing.assert_frame_equal(
        evaluate_by_horizon(forecasts, actuals, as_panel, metrics=["mase"]),
        evaluate_by_horizon(forecasts, actuals, train, metrics=["mase"]),
    )
    with pytest.raises(InvalidInputError, match="train has no rows for 1 scored series"):
        evaluate(forecasts, actuals, as_panel.select([0]), metrics=["mase"])


# --- quantile forecasts: pinball loss and coverage per series and per step ------------------------


@pytest.fixture
def quantile_panel(panel):
    forecasts, actuals, train = panel
    # a: actuals 14, 12, 15; b: 80, 88, NaN
    bands = {"q0.1": [12.0, 12.5, 12.0, 82.0, 82.0, 82.0], "q0.9": [14.0, 14.0, 14.0, 90.0, 90.0, 90.0]}
    return forecasts.assign(**bands), actuals, train


def test_evaluate_scores_quantile_columns_per_series(quantile_panel):
    forecasts, actuals, train = quantile_panel
    result = evaluate(forecasts, actuals, train, metrics=["mae", "pinball", "coverage"])
    assert list(result.columns) == ["mae", "pinball_q0.1", "pinball_q0.9", "coverage_q0.1_q0.9"]
    a, b = forecasts[forecasts["unique_id"] == "a"], forecasts[forecasts["unique_id"] == "b"][:2]
    a_true, b_true = [14.0, 12.0, 15.0], [80.0, 88.0]
    for level in (0.1, 0.9):
        column = f"q{level}"
        assert result.loc["a", f"pinball_{column}"] == pytest.approx(pinball_loss(a_true, a[column], level))
        assert result.loc["b", f"pinball_{column}"] == pytest.approx(pinball_loss(b_true, b[column], level))
    assert result.loc["a", "coverage_q0.1_q0.9"] == pytest.approx(1 / 3)  # only 14 lies in [12, 14]
    assert result.loc["b", "coverage_q0.1_q0.9"] == pytest.approx(1 / 2)  # 88 in [82, 90], 80 not


def test_evaluate_by_horizon_coverage_and_pinball_values(quantile_panel):
    forecasts, actuals, train = quantile_panel
    result = evaluate_by_horizon(forecasts, actuals, metrics=["coverage", "pinball"], quantiles=(0.1, 0.9))
    assert list(result.columns) == ["coverage_q0.1_q0.9", "pinball_q0.1", "pinball_q0.9"]
    # step 1: a 14 in [12, 14], b 80 not in [82, 90]; step 2: 12 not in [12.5, 14], 88 in; step 3: a only
    assert result["coverage_q0.1_q0.9"].tolist() == pytest.approx([0.5, 0.5, 0.0])
    # step 3, a only: actual 15 above q0.9 = 14 by 1 -> 0.9; above q0.1 = 12 by 3 -> 0.3
    assert result.loc[3, "pinball_q0.9"] == pytest.approx(0.9)
    assert result.loc[3, "pinball_q0.1"] == pytest.approx(0.3)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metrics": ["pinball"], "quantiles": [0.25]}, r"lacks the quantile column\(s\) \['q0.25'\]"),
        ({"metrics": ["pinball"], "quantiles": [1.5]}, "strictly between 0 and 1"),
        ({"metrics": ["coverage"], "quantiles": [0.9]}, "coverage' needs the two bounds of a central"),
    ],
)
def test_evaluate_quantile_arguments_are_checked(quantile_panel, kwargs, message):
    forecasts, actuals, _ = quantile_panel
    with pytest.raises(InvalidInputError, match=message):
        evaluate(forecasts, actuals, **kwargs)


def test_evaluate_quantile_metrics_need_quantile_columns(panel):
    forecasts, actuals, train = panel
    with pytest.raises(InvalidInputError, match="need quantile forecast columns named like 'q0.1'"):
        evaluate(forecasts, actuals, metrics=["pinball"])


def test_quantile_columns_are_named_as_the_recurrent_forecasters_name_them():
    pytest.importorskip("torch")
    from tsforecast.nn import GRUForecaster

    y = pd.DataFrame({"unique_id": "a", "ds": range(48), "y": 10 + np.sin(np.arange(48.0))})
    model = GRUForecaster(
        horizon=2, season_length=4, hidden_size=2, num_layers=1, max_epochs=1, tbptt_steps=8,
        quantiles=(0.05, 0.95), random_state=0,
    ).fit(y)  # fmt: skip
    assert {metrics.quantile_column(0.05), metrics.quantile_column(0.95)} <= set(model.predict().columns)


# --- M4 Hourly: reproduce the published benchmark scores -----------------------------------------

M4_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "m4"


def m4_hourly_long(name):
    """One of the M4 Hourly files as a long frame, ``ds`` counting from 0 in each series."""
    wide = pd.read_csv(M4_DIR / f"Hourly-{name}.csv", index_col=0)
    # Trailing empty cells pad the shorter series; stacking keeps them as NaN, so drop them.
    long = wide.stack().dropna().rename("y").rename_axis(["unique_id", "ds"]).reset_index()
    long["ds"] = long.groupby("unique_id").cumcount()
    return long


@pytest.mark.skipif(not (M4_DIR / "Hourly-test.csv").exists(), reason="M4 Hourly data not present")
def test_m4_hourly_naive_and_snaive_match_published_scores():
    train, test = m4_hourly_long("train"), m4_hourly_long("test")
    test["ds"] += test["unique_id"].map(train.groupby("unique_id").size())
    step = test.groupby("unique_id").cumcount()
    last_day = train.groupby("unique_id").tail(24)["y"].to_numpy().reshape(-1, 24)  # (414, 24)
    series_row = pd.Index(train["unique_id"].unique()).get_indexer(test["unique_id"])  # rows of last_day
    models = {
        "Naive": last_day[series_row, -1],
        "sNaive": last_day[series_row, step % 24],
    }
    # (sMAPE, MASE) from the competition's evaluation workbook
    published = {"Naive": (43.003, 11.608), "sNaive": (13.912, 1.193)}

    for name, point in models.items():
        forecasts = test[["unique_id", "ds"]].assign(y_pred=point)
        scores = evaluate(forecasts, test, train, season_length=24, metrics=["smape", "mase"]).mean()
        assert (round(scores["smape"], 3), round(scores["mase"], 3)) == published[name]
    by_step = evaluate_by_horizon(forecasts, test, train, season_length=24, metrics=["mase"])
    assert list(by_step.index) == list(range(1, 49))
    # every series has all 48 steps, so the mean over steps equals the mean over series
    assert by_step["mase"].mean() == pytest.approx(scores["mase"])
