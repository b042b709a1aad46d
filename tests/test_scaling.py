"""Per-series scalers (numpy only)."""

import numpy as np
import pytest

from tsforecast.exceptions import InvalidInputError
from tsforecast.scaling import SCALERS, SeriesScaler, resolve_kind

SERIES = [np.array([1.0, 2.0, np.nan, 4.0, 8.0]), np.array([100.0, 300.0, 200.0])]


@pytest.mark.parametrize("kind", [k for k in SCALERS if k != "auto"])
def test_inverse_undoes_transform(kind):
    scaler = SeriesScaler(kind).fit(SERIES)
    z = scaler.transform(SERIES)
    for row, (original, scaled) in enumerate(zip(SERIES, z, strict=True)):
        back = scaler.subset([row]).inverse(scaled[None])[0]
        np.testing.assert_allclose(back, original)
    assert np.isnan(z[0][2])


def test_statistics_per_kind():
    y = [np.array([1.0, 2.0, 3.0, 4.0, 10.0])]
    assert SeriesScaler("standard").fit(y).center[0] == pytest.approx(4.0)
    assert SeriesScaler("standard").fit(y).scale[0] == pytest.approx(np.std(y[0]))
    robust = SeriesScaler("robust").fit(y)
    assert (robust.center[0], robust.scale[0]) == (3.0, 2.0)
    minmax = SeriesScaler("minmax").fit(y)
    assert (minmax.center[0], minmax.scale[0]) == (1.0, 9.0)
    assert SeriesScaler("level").fit(y).scale[0] == pytest.approx(4.0)
    assert SeriesScaler("standard").fit([np.full(4, 3.0)]).scale[0] == 1.0  # constant: no division by 0


def test_auto_is_log_only_when_every_training_value_is_positive():
    assert resolve_kind("auto", SERIES) == "log"
    assert resolve_kind("auto", [*SERIES, np.array([0.0, 1.0])]) == "level"
    assert resolve_kind("robust", [np.array([-1.0])]) == "robust"


def test_log_rejects_non_positive_values_naming_the_series():
    scaler = SeriesScaler("log").fit(SERIES)
    with pytest.raises(InvalidInputError, match="'b' has values <= 0"):
        scaler.transform([np.array([1.0]), np.array([0.0, 2.0])], names=["a", "b"])


def test_fit_sees_only_the_values_it_is_given():
    y = np.array([1.0, 2.0, 3.0, 50.0, 60.0])
    head = SeriesScaler("standard").fit([y[:3]])
    changed = y.copy()
    changed[3:] = -1e6
    again = SeriesScaler("standard").fit([changed[:3]])
    assert head.state() == again.state()
    assert SeriesScaler.from_state(head.state()).state() == head.state()


@pytest.mark.parametrize("kind", ["level", "standard", "robust", "minmax"])
@pytest.mark.parametrize("size", [1e300, 1e307, 1e-300])
def test_statistics_are_finite_anywhere_in_the_float64_range(kind, size):
    # Around 1e300 the squares of the standard deviation used to overflow (a NaN/inf forecast);
    # around 1e-300 they underflowed to a zero spread. The statistics scale with the data.
    y = np.array([1.0, 2.0, 3.0, 4.0, 10.0])
    scaler, reference = SeriesScaler(kind).fit([y * size]), SeriesScaler(kind).fit([y])
    np.testing.assert_allclose(scaler.center, reference.center * size, rtol=1e-12)
    np.testing.assert_allclose(scaler.scale, reference.scale * size, rtol=1e-12)
    z = scaler.transform([y * size])[0]
    np.testing.assert_allclose(z, reference.transform([y])[0], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(scaler.inverse(z[None])[0], y * size, rtol=1e-12)


def test_statistics_of_ordinary_data_keep_their_exact_bits():
    y = np.random.default_rng(0).normal(1234.5, 67.8, 500)
    scaler = SeriesScaler("standard").fit([y])
    assert (scaler.center[0], scaler.scale[0]) == (np.mean(y), np.std(y))
