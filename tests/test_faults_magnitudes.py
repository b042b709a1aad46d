"""Issue 15, item 9: extreme magnitudes are computed safely, never NaN or inf."""

import numpy as np
import pandas as pd
import pytest

from tsforecast import baselines
from tsforecast.exceptions import InvalidInputError

BASELINE_CLASSES = [
    baselines.Naive,
    baselines.SeasonalNaive,
    baselines.Naive2,
    baselines.SES,
    baselines.Holt,
    baselines.DampedHolt,
    baselines.Theta,
    baselines.AutoETS,
    baselines.AutoARIMA,
]


def _seasonal_series(scale: float) -> pd.Series:
    # Its largest value lies in [1, 2), so dividing a scaled copy by the power of two that the
    # baselines use gives back exactly these numbers.
    rng = np.random.default_rng(0)
    t = np.arange(96)
    values = 1.5 + 0.2 * np.sin(2 * np.pi * t / 4) + rng.normal(0, 0.02, t.size)
    values = values / values.max() * 1.9
    return pd.Series(values * scale, index=pd.date_range("2024-01-01", periods=t.size, freq="h"))


def _params(cls):
    params = {"horizon": 6}
    if "season_length" in cls().get_params():
        params["season_length"] = 4
    return params


@pytest.mark.parametrize("cls", BASELINE_CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("exponent", [-1000, -600, 600, 1000, 1020])
def test_baselines_forecast_extreme_magnitudes_exactly_as_the_same_series_near_one(cls, exponent):
    # 2**1020 is about 1e307 and 2**-1000 about 1e-301: sums of squares at those magnitudes overflow
    # or vanish; the forecasts must be those of the series near 1, scaled by the same power of two.
    reference = cls(**_params(cls)).fit(_seasonal_series(1.0)).predict()
    scale = float(np.ldexp(1.0, exponent))
    forecast = cls(**_params(cls)).fit(_seasonal_series(scale)).predict()
    assert np.isfinite(forecast.to_numpy()).all()
    np.testing.assert_array_equal(forecast.to_numpy(), reference.to_numpy() * scale)


@pytest.mark.parametrize("cls", [baselines.Theta, baselines.AutoARIMA], ids=lambda c: c.__name__)
def test_theta_and_autoarima_at_1e307_give_finite_forecasts_in_the_data_range(cls):
    rng = np.random.default_rng(1)
    y = pd.Series(1e307 * (5 + rng.normal(0, 0.3, 120)), index=pd.date_range("2024", periods=120, freq="D"))
    forecast = cls(horizon=7, season_length=7).fit(y).predict()
    assert np.isfinite(forecast).all()
    assert (forecast.abs() < 1e308).all() and (forecast > 0).all()


def test_a_forecast_beyond_float64_range_is_refused_naming_the_series():
    y = pd.DataFrame({"ramp": np.linspace(1e307, 1.7e308, 50)}, index=pd.date_range("2024", periods=50))
    with pytest.raises(InvalidInputError, match=r"series 'ramp'.*NaN or infinite.*1\.7e\+308"):
        baselines.Holt(horizon=30).fit(y).predict()
