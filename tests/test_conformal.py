"""Prediction intervals: ``predict(level=...)`` in every layout, and ConformalIntervals' calibration
(tsforecast/base.py, tsforecast/conformal.py)."""

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from tsforecast.base import BaseForecaster, nested_bounds
from tsforecast.baselines import Naive, SeasonalNaive
from tsforecast.conformal import ConformalIntervals, conformal_quantile
from tsforecast.exceptions import InvalidInputError, InvalidParameterError


def iid_panel(n_series, length, seed, level=10.0):
    """Series of independent N(level, 1) draws: every forecast error is exchangeable with the others."""
    rng = np.random.default_rng(seed)
    values = level + rng.normal(0.0, 1.0, (n_series, length))
    return values, pd.DataFrame(
        {
            "unique_id": np.repeat([f"s{i:03d}" for i in range(n_series)], length),
            "ds": np.tile(np.arange(length), n_series),
            "y": values.ravel(),
        }
    )


class LastValue(BaseForecaster):
    """The naive forecast, with no intervals of its own."""

    def __init__(self, horizon=1):
        self.horizon = horizon

    def _fit(self, panel):
        self.last_ = [v[-1] for v in panel.values]

    def _predict(self, panel, horizon, is_training_history):
        return np.repeat([[v[-1]] for v in panel.values], horizon, axis=1)


class LastValueBand(LastValue):
    """The naive forecast with a fixed band of +-``width`` as its own interval, whatever the level."""

    _parameter_constraints = {**LastValue._parameter_constraints, "width": [float]}

    def __init__(self, horizon=1, width=0.1):
        super().__init__(horizon=horizon)
        self.width = width

    def _predict_intervals(self, panel, horizon, is_training_history, levels):
        point = self._predict(panel, horizon, is_training_history)
        return point, {level: (point - self.width, point + self.width) for level in levels}


@pytest.mark.parametrize("level", [80.0, 95.0])
def test_conformal_coverage_on_exchangeable_errors_is_within_sampling_error_of_the_level(level):
    # 20 independent calibrations, each on 200 series (200 scores per step), each checked on the
    # next 3 values of the same series: the mean coverage has a standard error of about 0.004.
    coverages = []
    for seed in range(20):
        values, frame = iid_panel(200, 40, seed)
        train = frame[frame["ds"] < 37]
        model = ConformalIntervals(Naive(horizon=3), n_windows=1).fit(train)
        forecast = model.predict(level=level)
        lo, hi = (forecast[c].to_numpy().reshape(200, 3) for c in (f"y_lo_{level:g}", f"y_hi_{level:g}"))
        actual = values[:, 37:]
        coverages.append(np.mean((actual >= lo) & (actual <= hi)))
    # Split conformal covers at least `level` and at most level + 1/(n+1) in expectation.
    assert level / 100 - 0.015 <= np.mean(coverages) <= level / 100 + 1 / 201 + 0.015


def test_the_width_is_the_conformal_quantile_of_each_steps_absolute_errors():
    values, frame = iid_panel(30, 50, seed=1)
    model = ConformalIntervals(Naive(horizon=2), n_windows=2, scale=None).fit(frame)
    # By hand: windows end 2 steps before the end and at the end; naive errors per step.
    errors = {1: [], 2: []}
    for end in (46, 48):
        for row in values:
            for step in (1, 2):
                errors[step].append(abs(row[end + step - 1] - row[end - 1]))
    forecast = model.predict(level=90).groupby("unique_id").nth(slice(None))
    for step in (1, 2):
        scores = np.sort(errors[step])  # 60 scores: the ceil(61 * 0.9) = 55th smallest
        width = forecast["y_hi_90"].to_numpy()[step - 1 :: 2] - forecast["y_pred"].to_numpy()[step - 1 :: 2]
        np.testing.assert_allclose(width, scores[54])
        np.testing.assert_allclose(
            model.scores_["absolute"][:, :, step - 1].ravel(),
            np.ravel([np.abs(values[:, end + step - 1] - values[:, end - 1]) for end in (46, 48)], order="F"),
        )


def test_normalized_scores_give_each_series_intervals_on_its_own_scale():
    # Half the series in units, half in thousands: pooled raw errors would give the small series
    # intervals a thousand times too wide; scaled errors give each series its level.
    coverage = {"raw": [], "scaled": []}
    for seed in range(10):
        values, frame = iid_panel(200, 40, seed + 300)
        factor = np.where(np.arange(200) < 100, 1.0, 1000.0)[:, None]
        values = values * factor
        frame["y"] = values.ravel()
        train = frame[frame["ds"] < 37]
        for name, scale in (("raw", None), ("scaled", "seasonal")):
            model = ConformalIntervals(Naive(horizon=3), n_windows=1, scale=scale).fit(train)
            forecast = model.predict(level=90)
            lo, hi = (forecast[c].to_numpy().reshape(200, 3) for c in ("y_lo_90", "y_hi_90"))
            inside = (values[:, 37:] >= lo) & (values[:, 37:] <= hi)
            coverage[name].append((inside[:100].mean(), inside[100:].mean()))
    small, large = np.mean(coverage["scaled"], axis=0)
    assert abs(small - 0.9) < 0.03 and abs(large - 0.9) < 0.03
    small, large = np.mean(coverage["raw"], axis=0)
    assert small == 1.0 and large < 0.85  # the pooled raw quantile suits neither group


class HistoryMean(BaseForecaster):
    """A global model: forecasts each series' mean of the history it is given, without a refit."""

    def __init__(self, horizon=1):
        self.horizon = horizon

    def _fit(self, panel):
        pass

    def _predict(self, panel, horizon, is_training_history):
        return np.repeat([[np.mean(v)] for v in panel.values], horizon, axis=1)


def iid_and_persistent_panel(seed, n_series=200, length=80, phi=0.95):
    """Half the series independent N(10, 1) draws, half a persistent AR(1) around 10 (stationary)."""
    rng = np.random.default_rng(seed)
    half = n_series // 2
    ar, state = np.zeros((half, length)), np.zeros(half)
    for t in range(-200, length):  # 200 steps of burn-in to the stationary distribution
        state = phi * state + rng.normal(0.0, 1.0, half)
        if t >= 0:
            ar[:, t] = state
    values = 10.0 + np.vstack([rng.normal(0.0, 1.0, (half, length)), ar])
    frame = pd.DataFrame(
        {
            "unique_id": np.repeat([f"s{i:03d}" for i in range(n_series)], length),
            "ds": np.tile(np.arange(length), n_series),
            "y": values.ravel(),
        }
    )
    return values, frame


def test_the_models_own_error_scale_gives_each_kind_of_series_its_level():
    # The history mean errs by ~3x the step-to-step change on the persistent half and ~0.7x on the
    # iid half. Scaled by that change (the seasonal scale), pooled scores over-cover one half and
    # under-cover the other; scaled by the model's own recent error, both halves get near the level.
    coverage = {"model": [], "seasonal": []}
    for seed in range(10):
        values, frame = iid_and_persistent_panel(seed)
        train = frame[frame["ds"] < 77]
        for scale in coverage:
            model = ConformalIntervals(HistoryMean(horizon=3), n_windows=2, scale=scale).fit(train)
            forecast = model.predict(level=90)
            lo, hi = (forecast[c].to_numpy().reshape(200, 3) for c in ("y_lo_90", "y_hi_90"))
            inside = (values[:, 77:] >= lo) & (values[:, 77:] <= hi)
            coverage[scale].append((inside[:100].mean(), inside[100:].mean()))
    iid, persistent = np.mean(coverage["model"], axis=0)
    assert abs(iid - 0.9) < 0.05 and abs(persistent - 0.9) < 0.05
    iid, persistent = np.mean(coverage["seasonal"], axis=0)
    assert iid > 0.98 and persistent < 0.85


def test_the_model_scale_is_its_mean_absolute_error_over_the_windows_before_the_origin():
    values, frame = iid_panel(20, 60, seed=4)
    model = ConformalIntervals(HistoryMean(horizon=4), n_windows=1, scale="model", scale_windows=3).fit(frame)
    # By hand: the windows end at the end of the history; each forecast is the mean before it.
    errors = [np.abs(row[end : end + 4] - row[:end].mean()) for row in values for end in (48, 52, 56)]
    by_hand = np.reshape(errors, (20, 3, 4)).mean(axis=(1, 2))
    np.testing.assert_allclose(model.scales_.ravel(), by_hand)
    forecast = model.predict(level=80)
    half_width = (forecast["y_hi_80"] - forecast["y_pred"]).to_numpy().reshape(20, 4)
    quantile = conformal_quantile(model.scores_["absolute"], 80, per_series=False)
    np.testing.assert_allclose(half_width, quantile * by_hand[:, None])


def test_auto_scale_is_the_models_error_for_a_global_model_and_seasonal_for_a_local_one():
    _, frame = iid_panel(10, 60, seed=5)
    for forecaster, kind in ((HistoryMean(horizon=3), "model"), (Naive(horizon=3), "seasonal")):
        auto = ConformalIntervals(forecaster, n_windows=2).fit(frame)
        explicit = ConformalIntervals(forecaster, n_windows=2, scale=kind).fit(frame)
        np.testing.assert_array_equal(auto.scales_, explicit.scales_)
    model_scale = ConformalIntervals(Naive(horizon=3), n_windows=2, scale="model").fit(frame).scales_
    assert not np.allclose(model_scale, auto.scales_)  # the two scales differ on this data


def test_point_forecasts_are_the_wrapped_models_own():
    _, frame = iid_panel(5, 60, seed=2)
    wrapped = ConformalIntervals(SeasonalNaive(horizon=4, season_length=7), n_windows=5).fit(frame)
    plain = SeasonalNaive(horizon=4, season_length=7).fit(frame)
    pd.testing.assert_series_equal(wrapped.predict(level=80)["y_pred"], plain.predict()["y_pred"])
    pd.testing.assert_frame_equal(wrapped.predict(), plain.predict())


def test_quantile_method_widens_a_too_narrow_band_to_the_level():
    coverages = []
    for seed in range(10):
        values, frame = iid_panel(200, 40, seed + 100)
        train = frame[frame["ds"] < 37]
        model = ConformalIntervals(
            LastValueBand(horizon=3, width=0.1), n_windows=1, method="quantile", calibration_levels=[90]
        ).fit(train)
        forecast = model.predict(level=90)
        lo, hi = (forecast[c].to_numpy().reshape(200, 3) for c in ("y_lo_90", "y_hi_90"))
        coverages.append(np.mean((values[:, 37:] >= lo) & (values[:, 37:] <= hi)))
        assert (hi - lo > 0.2).all()  # widened from the model's own 0.2
    assert 0.885 <= np.mean(coverages) <= 0.925
    with pytest.raises(
        InvalidParameterError, match=r"calibrated the levels \[90.0\].*calibration_levels=\[80"
    ):
        model.predict(level=80)


def test_too_few_scores_for_a_level_say_how_many_are_needed():
    _, frame = iid_panel(1, 200, seed=3)
    model = ConformalIntervals(Naive(horizon=5), n_windows=5).fit(frame)
    model.predict(level=80)  # 5 scores: ceil(6 * 0.8) = 5 is enough
    with pytest.raises(
        InvalidParameterError, match="95% conformal interval needs at least 19 calibration scores"
    ):
        model.predict(level=95)


def test_per_series_scores_stay_with_their_series():
    rng = np.random.default_rng(4)
    quiet, loud = 10 + rng.normal(0, 0.1, 300), 10 + rng.normal(0, 10.0, 300)
    frame = pd.DataFrame(
        {"unique_id": ["quiet"] * 300 + ["loud"] * 300, "ds": list(range(300)) * 2, "y": np.r_[quiet, loud]}
    )
    model = ConformalIntervals(Naive(horizon=2), n_windows=19, per_series=True).fit(frame)
    forecast = model.predict(level=90).set_index("unique_id")
    width = (forecast["y_hi_90"] - forecast["y_lo_90"]).groupby(level=0).mean()
    assert width["loud"] > 20 * width["quiet"]
    other = frame.assign(unique_id=frame["unique_id"].map({"quiet": "new", "loud": "loud"}))
    with pytest.raises(InvalidInputError, match="no calibration scores for series 'new'"):
        model.predict(y=other, level=90)
    pooled = ConformalIntervals(Naive(horizon=2), n_windows=19).fit(frame)
    assert len(pooled.predict(y=other, level=90)) == 4  # pooled scores serve any series


def test_estimator_contract_clone_params_and_pickle():
    _, frame = iid_panel(4, 80, seed=5)
    model = ConformalIntervals(SeasonalNaive(horizon=3, season_length=7), n_windows=10)
    assert model.get_params()["forecaster__season_length"] == 7
    model.set_params(forecaster__season_length=5)
    assert clone(model).get_params()["forecaster__season_length"] == 5
    fitted = model.fit(frame)
    assert fitted is model and hasattr(model, "forecaster_") and not hasattr(clone(model), "scores_")
    pd.testing.assert_frame_equal(
        pickle.loads(pickle.dumps(model)).predict(level=80), model.predict(level=80)
    )


def test_bad_settings_are_refused_before_any_fit():
    _, frame = iid_panel(2, 30, seed=6)
    with pytest.raises(InvalidParameterError, match="LastValue has none: use method='absolute'"):
        ConformalIntervals(LastValue(horizon=2), method="quantile").fit(frame)
    with pytest.raises(InvalidParameterError, match="n_windows"):
        ConformalIntervals(Naive(horizon=2), n_windows=0).fit(frame)
    with pytest.raises(InvalidParameterError, match="level must be"):
        ConformalIntervals(LastValueBand(horizon=2), method="quantile", calibration_levels=[100]).fit(frame)
    with pytest.raises(
        InvalidInputError, match=r"ConformalIntervals \(15 calibration windows of 2 steps\) needs at least 31"
    ):
        ConformalIntervals(Naive(horizon=2), n_windows=15).fit(frame)


# --------------------------------------------------------------------------- predict(level=...)
@pytest.mark.parametrize("bad", [0, 100, 150, -5, "95", [80, "x"], True, float("nan"), []])
def test_bad_levels_get_a_clear_error(bad):
    _, frame = iid_panel(2, 100, seed=7)
    model = ConformalIntervals(Naive(horizon=2), n_windows=19).fit(frame)
    with pytest.raises(
        InvalidParameterError, match="level must be a number or a list of numbers strictly between 0 and 100"
    ):
        model.predict(level=bad)


def test_a_forecaster_without_intervals_points_to_the_wrapper():
    _, frame = iid_panel(2, 30, seed=8)
    with pytest.raises(
        InvalidParameterError, match=r"LastValue has no prediction intervals.*ConformalIntervals"
    ):
        LastValue(horizon=2).fit(frame).predict(level=90)


def test_every_layout_gets_the_bounds():
    rng = np.random.default_rng(9)
    index = pd.date_range("2024-01-01", periods=120, freq="D")
    wide = pd.DataFrame({"a": 5 + rng.normal(0, 1, 120), "b": 50 + rng.normal(0, 5, 120)}, index=index)
    model = ConformalIntervals(Naive(horizon=3), n_windows=19)
    series_forecast = clone(model).fit(wide["a"]).predict(level=[95, 80])
    assert list(series_forecast.columns) == ["y_pred", "y_lo_80", "y_hi_80", "y_lo_95", "y_hi_95"]
    assert list(series_forecast.index) == list(pd.date_range("2024-04-30", periods=3, freq="D"))
    wide_forecast = clone(model).fit(wide).predict(level=80)
    assert list(wide_forecast.columns) == [
        (c, s) for c in ("y_pred", "y_lo_80", "y_hi_80") for s in ("a", "b")
    ]
    assert (wide_forecast["y_lo_80"] < wide_forecast["y_pred"]).all().all()
    long = wide.stack().rename("y").rename_axis(["ds", "unique_id"]).reset_index()
    long_forecast = clone(model).fit(long).predict(level=80)
    assert list(long_forecast.columns) == ["unique_id", "ds", "y_pred", "y_lo_80", "y_hi_80"]
    np.testing.assert_allclose(long_forecast["y_hi_80"], wide_forecast["y_hi_80"].T.to_numpy().ravel())


def test_bounds_are_nested_and_contain_the_point_even_when_given_crossed():
    point = np.array([[0.0, 0.0]])
    crossed = {
        80.0: (np.array([[-2.0, 0.5]]), np.array([[1.0, 3.0]])),
        95.0: (np.array([[-1.0, -1.0]]), np.array([[2.0, 0.5]])),
    }
    columns = nested_bounds(point, crossed)
    assert list(columns) == ["y_lo_80", "y_hi_80", "y_lo_95", "y_hi_95"]
    stacked = np.stack(
        [columns["y_lo_95"], columns["y_lo_80"], point, columns["y_hi_80"], columns["y_hi_95"]]
    )
    assert (np.diff(stacked, axis=0) >= 0).all()
    assert columns["y_lo_95"].tolist() == [[-2.0, -1.0]] and columns["y_hi_95"].tolist() == [[2.0, 3.0]]


def test_the_base_hook_is_what_a_forecaster_implements():
    assert BaseForecaster._predict_intervals is not LastValueBand._predict_intervals
    scores = np.arange(1.0, 20.0).reshape(1, 19, 1)
    assert conformal_quantile(scores, 90, per_series=False).tolist() == [[18.0]]


class CountedLastValue(LastValue):
    """LastValue that counts its fits (class-wide: clones share the count)."""

    fits = 0

    def _fit(self, panel):
        type(self).fits += 1
        super()._fit(panel)


def test_without_refit_one_fit_serves_calibration_and_forecasts_from_the_whole_history():
    values, frame = iid_panel(6, 80, seed=4)
    counted = {}
    for refit in (True, False):
        CountedLastValue.fits = 0
        model = ConformalIntervals(CountedLastValue(horizon=3), n_windows=4, refit=refit).fit(frame)
        counted[refit] = (CountedLastValue.fits, model.predict(level=[80, 95]))
    assert counted[True][0] == 2 and counted[False][0] == 1
    # Forecasts start from the end of the whole history, and the same scores give the same bands.
    pd.testing.assert_frame_equal(counted[False][1], counted[True][1])
    np.testing.assert_allclose(counted[False][1]["y_pred"].to_numpy(), np.repeat(values[:, -1], 3))


def test_without_refit_a_recurrent_model_is_the_calibration_fit_and_conditions_on_all_the_data():
    from tsforecast import LSTMForecaster

    _, frame = iid_panel(4, 120, seed=5)
    settings = dict(horizon=6, hidden_size=8, max_epochs=2, tbptt_steps=24, season_length=1, random_state=0)
    model = ConformalIntervals(LSTMForecaster(**settings), n_windows=3, refit=False).fit(frame)
    assert set(model.forecaster_.training_panel_.lengths) == {120 - 3 * 6}  # fitted without the windows
    forecast = model.predict(level=90)
    assert forecast["ds"].min() == 120 and len(forecast) == 4 * 6
    direct = model.forecaster_.predict(y=frame)
    np.testing.assert_allclose(forecast["y_pred"].to_numpy(), direct["y_pred"].to_numpy())
    assert (forecast["y_lo_90"] < forecast["y_pred"]).all() and (
        forecast["y_pred"] < forecast["y_hi_90"]
    ).all()


def test_a_warm_refit_trains_the_calibration_network_on_over_all_the_data_for_a_fifth_of_its_budget():
    import torch

    from tsforecast import LSTMForecaster

    _, frame = iid_panel(4, 120, seed=6)
    settings = dict(horizon=6, hidden_size=8, max_epochs=10, tbptt_steps=24, season_length=1, random_state=0)
    calibration_only = ConformalIntervals(LSTMForecaster(**settings), n_windows=3, refit=False).fit(frame)
    warm = ConformalIntervals(LSTMForecaster(**settings), n_windows=3).fit(frame)
    network = warm.forecaster_
    assert set(network.training_panel_.lengths) == {120}  # it learned the windows' data
    assert len(network.history_) == 2 and network.get_params()["warm_start"]  # 2 of 10 epochs
    # It went on from the calibration fit: the same weights before the last two epochs.
    before = calibration_only.forecaster_.network_.state_dict()
    after = network.network_.state_dict()
    assert before.keys() == after.keys() and any(not torch.equal(before[k], after[k]) for k in before)
    continued = LSTMForecaster(**settings).fit(frame.groupby("unique_id").head(120 - 18))
    continued.set_params(warm_start=True, max_epochs=2).fit(frame)
    for name, tensor in continued.network_.state_dict().items():
        torch.testing.assert_close(after[name], tensor)
    # The calibration is the same either way; only the model the forecasts come from differs.
    np.testing.assert_array_equal(warm.scores_["absolute"], calibration_only.scores_["absolute"])


def test_a_warm_refit_of_a_model_that_cannot_continue_is_a_new_fit():
    _, frame = iid_panel(6, 80, seed=7)
    counted = {}
    for refit in ("warm", True):
        CountedLastValue.fits = 0
        model = ConformalIntervals(CountedLastValue(horizon=3), n_windows=2, refit=refit).fit(frame)
        counted[refit] = (CountedLastValue.fits, model.predict(level=90))
    assert counted["warm"][0] == counted[True][0] == 2
    pd.testing.assert_frame_equal(counted["warm"][1], counted[True][1])


class CountedHistoryMean(HistoryMean):
    """HistoryMean that counts its forecasts."""

    forecasts = 0

    def _predict(self, panel, horizon, is_training_history):
        CountedHistoryMean.forecasts += 1
        return super()._predict(panel, horizon, is_training_history)


def test_the_model_scale_forecasts_each_origin_once():
    _, frame = iid_panel(5, 60, seed=8)
    CountedHistoryMean.forecasts = 0
    ConformalIntervals(CountedHistoryMean(horizon=3), n_windows=3, scale="model", refit=False).fit(frame)
    # 3 calibration windows (origins 9, 6, 3 steps before the end), and the scales' origins: 6 to 21
    # steps before the first window's, ..., 12 to 27 before the last's, 3 to 18 before the end for
    # the forecast: 3..27 in steps of 3, each once.
    assert CountedHistoryMean.forecasts == 3 + 9
