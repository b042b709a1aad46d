"""The contract every forecaster shares, run over each forecaster class.

scikit-learn's own checks run through ``parametrize_with_checks``; the checks excused there are
the ones that assume a supervised ``fit(X, y)`` with one prediction per input row, which a
forecaster (``fit(y)``, ``predict(horizon)``) does not have.
"""

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.utils import estimator_checks as checks
from sklearn.utils.estimator_checks import parametrize_with_checks

from tsforecast import baselines
from tsforecast.exceptions import InvalidInputError, InvalidParameterError, NotFittedError

BASELINES = [
    baselines.Naive(),
    baselines.SeasonalNaive(season_length=4),
    baselines.Naive2(season_length=4),
    baselines.SES(),
    baselines.Holt(),
    baselines.DampedHolt(),
    baselines.Theta(season_length=4),
    baselines.AutoETS(season_length=4),
    baselines.AutoARIMA(season_length=1),
]


def _recurrent():
    # torch is a required dependency: an ImportError here must fail the run, never drop these models.
    from tsforecast.nn import estimators

    tiny = dict(
        hidden_size=4,
        num_layers=1,
        max_epochs=2,
        tbptt_steps=8,
        season_length=4,
        horizon=3,
        random_state=0,
        verbose=False,
    )
    return [
        cls(**tiny) for cls in (estimators.LSTMForecaster, estimators.GRUForecaster, estimators.RNNForecaster)
    ]


FORECASTERS = BASELINES + _recurrent()
IDS = [type(f).__name__ for f in FORECASTERS]

NAMED_CHECKS = [
    checks.check_parameters_default_constructible,
    checks.check_no_attributes_set_in_init,
    checks.check_get_params_invariance,
    checks.check_set_params,
    checks.check_estimator_repr,
    checks.check_estimator_cloneable,
    checks.check_valid_tag_types,
    checks.check_estimator_tags_renamed,
    checks.check_mixin_order,
]

# One line each: why the check cannot apply to a forecaster.
NOT_APPLICABLE = {
    "check_estimators_dtypes": "passes exogenous X to fit(X, y); forecasters take fit(y), reject X",
    "check_fit_score_takes_y": "calls fit(X, y) in supervised order",
    "check_estimators_fit_returns_self": "calls fit(X, y) in supervised order",
    "check_pipeline_consistency": "calls fit(X, y) and compares one prediction per input row",
    "check_estimators_overwrite_params": "calls fit(X, y) in supervised order",
    "check_estimators_pickle": "calls fit(X, y) and predict(X) row by row",
    "check_f_contiguous_array_estimator": "calls fit(X, y) and predict(X) row by row",
    "check_n_features_in": "n_features_in_ describes tabular inputs; a forecaster has series, not features",
    "check_fit2d_predict1d": "predict(X) with one row per prediction",
    "check_methods_subset_invariance": "predict(X) with one row per prediction",
    "check_methods_sample_order_invariance": "predict(X) with one row per prediction",
    "check_fit2d_1sample": "calls fit(X, y) in supervised order",
    "check_fit2d_1feature": "calls fit(X, y) in supervised order",
    "check_dict_unchanged": "predict(X) with one row per prediction",
    "check_dont_overwrite_parameters": "calls fit(X, y) in supervised order",
    "check_fit_idempotent": "predict(X) with one row per prediction",
    "check_fit_check_is_fitted": "calls fit(X, y) in supervised order",
    "check_n_features_in_after_fitting": "n_features_in_ describes tabular inputs",
    "check_readonly_memmap_input": "calls fit(X, y) in supervised order",
    "check_positive_only_tag_during_fit": "calls fit(X, y) in supervised order",
    "check_estimators_nan_inf": "NaN/inf rejection passes (tested below); it then refits in fit(X, y) order",
    "check_dtype_object": "expects fit(X, y) to accept a label vector y; forecasters reject it",
}


def expected_failed_checks(estimator):
    return NOT_APPLICABLE


@parametrize_with_checks(FORECASTERS, expected_failed_checks=expected_failed_checks, xfail_strict=True)
def test_sklearn_suite(estimator, check):
    check(estimator)


@pytest.mark.parametrize("check", NAMED_CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("forecaster", FORECASTERS, ids=IDS)
def test_named_sklearn_checks(forecaster, check):
    check(type(forecaster).__name__, clone(forecaster))


def seasonal_panel(n_series=3, length=60, season=4, seed=0):
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(n_series):
        t = np.arange(length - 5 * k)
        y = 20 + 3 * k + 4 * np.sin(2 * np.pi * t / season) + 0.05 * t + rng.normal(0, 0.3, len(t))
        ds = pd.date_range("2024-01-01", periods=len(t), freq="h") + pd.Timedelta(hours=5 * k)
        frames.append(pd.DataFrame({"unique_id": f"s{k}", "ds": ds, "y": y}))
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(params=FORECASTERS, ids=IDS)
def forecaster(request):
    return clone(request.param)


def test_fit_returns_self_and_sets_fitted_attributes(forecaster):
    assert forecaster.fit(seasonal_panel()) is forecaster
    assert forecaster.training_panel_.n_series == 3


def test_predict_before_fit_raises_not_fitted(forecaster):
    with pytest.raises(NotFittedError):
        forecaster.predict(2)


def test_long_in_long_out_with_future_timestamps(forecaster):
    panel = seasonal_panel()
    out = forecaster.fit(panel).predict(3)
    assert list(out.columns)[:3] == ["unique_id", "ds", "y_pred"]
    assert len(out) == 9 and np.isfinite(out["y_pred"]).all()
    for uid, group in out.groupby("unique_id"):
        last = panel.loc[panel["unique_id"] == uid, "ds"].max()
        assert list(group["ds"]) == list(pd.date_range(last, periods=4, freq="h")[1:])


def test_series_in_series_out(forecaster):
    series = seasonal_panel(n_series=1).set_index("ds")["y"].rename("sales")
    out = forecaster.fit(series).predict(2)
    assert isinstance(out, pd.Series) and out.name == "sales"
    assert out.index[0] == series.index[-1] + pd.Timedelta(hours=1)


def test_wide_in_wide_out(forecaster):
    wide = seasonal_panel().pivot(index="ds", columns="unique_id", values="y")
    out = forecaster.fit(wide).predict(2)
    assert list(out.columns) == ["s0", "s1", "s2"]


def test_fit_does_not_mutate_input_or_params(forecaster):
    panel = seasonal_panel()
    before, params = panel.copy(), forecaster.get_params()
    forecaster.fit(panel)
    pd.testing.assert_frame_equal(panel, before)
    assert forecaster.get_params() == params


def test_refit_gives_the_same_result_as_one_fit(forecaster):
    panel = seasonal_panel()
    first = forecaster.fit(panel).predict(3)
    forecaster.fit(seasonal_panel(seed=1))
    again = forecaster.fit(panel).predict(3)
    pd.testing.assert_frame_equal(first, again)


def test_pickle_and_clone_round_trip(forecaster):
    panel = seasonal_panel()
    forecast = forecaster.fit(panel).predict(3)
    restored = pickle.loads(pickle.dumps(forecaster))
    pd.testing.assert_frame_equal(restored.predict(3), forecast)
    cloned = clone(forecaster)
    assert cloned.get_params() == forecaster.get_params()
    assert not hasattr(cloned, "training_panel_")
    pd.testing.assert_frame_equal(cloned.fit(panel).predict(3), forecast)


def test_set_params_reaches_the_fit(forecaster):
    forecaster.set_params(horizon=2)
    assert len(forecaster.fit(seasonal_panel()).predict()) == 6


def test_predict_from_new_history(forecaster):
    panel = seasonal_panel()
    forecaster.fit(panel)
    new = seasonal_panel(n_series=2, seed=3).assign(unique_id=lambda f: "new_" + f["unique_id"])
    out = forecaster.predict(2, y=new)
    assert sorted(out["unique_id"].unique()) == ["new_s0", "new_s1"]
    assert np.isfinite(out["y_pred"]).all()


def test_exogenous_x_is_rejected_with_a_clear_message(forecaster):
    with pytest.raises(InvalidInputError, match="does not use exogenous regressors|declares no covariate"):
        forecaster.fit(seasonal_panel(), X=np.ones((10, 2)))


def test_bad_horizon_parameter_is_named(forecaster):
    forecaster.set_params(horizon=0)
    with pytest.raises(InvalidParameterError, match="horizon"):
        forecaster.fit(seasonal_panel())


def test_nan_inside_series_named_before_work(forecaster):
    panel = seasonal_panel()
    panel.loc[10, "y"] = np.inf
    with pytest.raises(InvalidInputError, match="'s0' contains infinite values"):
        forecaster.fit(panel)


@pytest.mark.parametrize("bad", [np.nan, np.inf], ids=["nan", "inf"])
def test_nan_and_inf_rejected_by_fit_and_predict(forecaster, bad):
    """The part of check_estimators_nan_inf that applies (it is excused only for its supervised refit)."""
    data = np.random.default_rng(0).uniform(1, 2, size=(40, 3))
    fitted = clone(forecaster).fit(data)
    data[0, 0] = bad
    with pytest.raises(InvalidInputError, match="NaN|inf"):
        clone(forecaster).fit(data)
    with pytest.raises(InvalidInputError, match="NaN|inf"):
        fitted.predict(data)


def test_new_history_with_another_kind_of_time_index():
    """A model fitted on monthly periods forecasts month-start datetimes in their own frequency."""
    values = np.tile(np.arange(12.0), 3)
    fitted = baselines.SeasonalNaive(season_length=12).fit(
        pd.Series(values, index=pd.period_range("2020-01", periods=36, freq="M"))
    )
    new = pd.Series(values, index=pd.date_range("2024-01-01", periods=36, freq="MS"))
    forecast = fitted.predict(horizon=3, y=new)
    pd.testing.assert_index_equal(forecast.index, pd.date_range("2027-01-01", periods=3, freq="MS"))
    np.testing.assert_allclose(forecast.to_numpy(), [0.0, 1.0, 2.0])
