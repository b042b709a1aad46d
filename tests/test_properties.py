"""Property-based tests of bad and odd input over every forecaster class (Hypothesis).

Each generated panel (a long frame of series of different lengths, with gaps in the time stamps,
NaN runs, constant runs and scales from 1e-30 to 1e30, under odd ids and several frequencies) is
fitted and forecast by every registered model with tiny settings. Every example must either raise
:class:`~tsforecast.exceptions.InvalidInputError` that names a series of the panel, or return finite
forecasts of the right shape whose time stamps continue each series; never another exception, never
a NaN or an infinity.

Profiles (``HYPOTHESIS_PROFILE``): ``ci`` (the default, 25 examples per model so the suite stays in
its budget) and ``thorough`` (hundreds per model, for a run on demand:
``HYPOTHESIS_PROFILE=thorough pytest tests/test_properties.py``).
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tsforecast.data.labels import series_label
from tsforecast.exceptions import InvalidInputError
from tsforecast.registry import MODELS, build_estimator

settings.register_profile(
    "ci", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
settings.register_profile(
    "thorough", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

HORIZON = 3
TINY_NETWORK = {"hidden_size": 4, "max_epochs": 2, "tbptt_steps": 8, "batch_size": 4, "verbose": False}
FREQUENCIES = ["h", "D", "W-SUN", "MS", "15min"]

ids = st.one_of(
    st.text(min_size=1, max_size=6),
    st.integers(-5, 10**12),
    st.sampled_from(["A", "a b", "série-1", "0", "None", "nan", " "]),
)


@st.composite
def series_values(draw, length: int) -> np.ndarray:
    """A seasonal walk at a scale from 1e-30 to 1e30, with NaN runs and constant runs spliced in."""
    scale = 10.0 ** draw(st.integers(-30, 30))
    shape = draw(st.sampled_from(["level", "walk", "trend", "positive", "sign"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    t = np.arange(length)
    base = {
        "level": 10 + np.sin(2 * np.pi * t / 4) + rng.normal(0, 0.2, length),
        "walk": np.cumsum(rng.normal(0, 1, length)),
        "trend": 5 + 0.3 * t + rng.normal(0, 0.5, length),
        "positive": rng.gamma(2.0, 1.0, length),
        "sign": rng.normal(0, 1, length),
    }[shape]
    values = base * scale
    for _ in range(draw(st.integers(0, 2))):
        start = draw(st.integers(0, length - 1))
        stop = draw(st.integers(start + 1, min(length, start + 12)))
        kind = draw(st.sampled_from(["nan", "constant", "zero"]))
        values[start:stop] = {"nan": np.nan, "constant": values[start], "zero": 0.0}[kind]
    return values


@st.composite
def panels(draw) -> tuple[pd.DataFrame, str]:
    """A long frame (unique_id, ds, y) of 1 to 3 series of 1 to 60 steps, some time stamps dropped,
    the frequency it was generated with, and whether to declare that frequency to ``fit``."""
    freq = draw(st.sampled_from(FREQUENCIES))
    series_ids = draw(st.lists(ids, min_size=1, max_size=3, unique_by=lambda i: str(i)))
    if len({type(i) for i in series_ids}) > 1:
        series_ids = [str(i) for i in series_ids]  # one id type per column, as a file would hold
    frames = []
    for series_id in series_ids:
        length = draw(st.integers(1, 60))
        start = pd.Timestamp("2024-01-01") + draw(st.integers(0, 30)) * pd.tseries.frequencies.to_offset(freq)
        frame = pd.DataFrame(
            {
                "unique_id": [series_id] * length,
                "ds": pd.date_range(start, periods=length, freq=freq),
                "y": draw(series_values(length)),
            }
        )
        if length > 3 and draw(st.integers(0, 4)) == 0:  # a gap: a time stamp missing inside the series
            gap = draw(st.integers(1, length - 2))
            frame = frame.drop(index=gap)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True), freq, draw(st.booleans())


def _estimator(name: str):
    params = dict(TINY_NETWORK) if MODELS[name].neural else {}
    defaults = {"horizon": HORIZON, "season_length": 2, "random_state": 0}
    return build_estimator(name, params, defaults=defaults)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(MODELS))
@given(example=panels())
def test_bad_input_is_refused_by_name_or_forecast_finitely(name, example):
    frame, freq, declared = example
    estimator = _estimator(name)
    labels = [series_label(i) for i in frame["unique_id"].unique()]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence and setting warnings are not the subject
            forecast = estimator.fit(frame, freq=freq if declared else None).predict()
    except InvalidInputError as error:
        message = str(error)
        assert any(label in message for label in labels), f"the error names no series: {message}"
        for label in labels:
            message = message.replace(label, "<series>")
        event(f"refused: {message[:60]}")
        return
    event("forecast")
    assert np.isfinite(forecast["y_pred"].to_numpy(dtype=np.float64)).all(), forecast
    assert list(forecast.columns[:3]) == ["unique_id", "ds", "y_pred"]
    assert len(forecast) == HORIZON * frame["unique_id"].nunique()
    freq = pd.tseries.frequencies.to_offset(freq)
    for series_id, rows in forecast.groupby("unique_id", sort=False):
        # Trailing NaN rows are missing values after the series' end: forecasts start after the
        # last observation.
        last = frame.loc[(frame["unique_id"] == series_id) & frame["y"].notna(), "ds"].max()
        expected = pd.date_range(last + freq, periods=HORIZON, freq=freq)
        assert list(rows["ds"]) == list(expected), series_id
