"""The divergence rule (:mod:`tsforecast.nn.divergence`): a healthy fit passes it, a network with
non-finite weights or a forecast that is not finite or far outside the data's range is refused
naming the series. Tiny settings and two short series around 10, so each test takes seconds.

Issue 15's cases through the command (exit 5) are in ``test_faults.py``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from faulttools import LSTM_TINY, around_ten

from tsforecast import LSTMForecaster
from tsforecast.data import to_panel
from tsforecast.exceptions import InvalidInputError, TrainingError, TsforecastWarning
from tsforecast.nn.divergence import check_forecast_range, check_forecasts, parameters_finite
from tsforecast.scaling import SeriesScaler

torch.set_num_threads(1)


def test_healthy_fit_passes_the_rule_and_forecasts_inside_the_data_range():
    model = LSTMForecaster(**LSTM_TINY).fit(around_ten())
    forecasts = model.predict()
    assert np.isfinite(forecasts.to_numpy()).all()
    assert forecasts.to_numpy().min() > 8 and forecasts.to_numpy().max() < 12


def test_predict_refuses_a_network_whose_weights_are_not_finite():
    model = LSTMForecaster(**LSTM_TINY).fit(around_ten())
    with torch.no_grad():
        model.network_.head.bias.fill_(float("nan"))
    assert not parameters_finite(model.network_)
    with pytest.raises(TrainingError, match=r"weights are not finite \(head.bias\).*Refit"):
        model.predict()


def test_predict_names_the_series_whose_history_makes_the_forecast_non_finite():
    model = LSTMForecaster(**LSTM_TINY, scaler="none").fit(around_ten())
    history = around_ten()
    history["b"] *= 1e299  # beyond float32 once scaled: the network's output is NaN
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's overflow of the float32 cast
        with pytest.raises(InvalidInputError, match=r"series 'b': the network's forecast .* not finite"):
            model.predict(y=history)


def test_forecasts_that_overflow_when_unscaled_name_the_series():
    network = torch.nn.Linear(1, 1)
    scaled = np.array([[[2.0]], [[710.0]]])  # log space: exp(710) overflows float64
    with np.errstate(over="ignore"):
        forecast = SeriesScaler("log").inverse(scaled)
    with pytest.raises(InvalidInputError, match=r"series 'y': its forecasts overflow float64 .*scaler='log'"):
        check_forecasts(network, scaled, forecast, ["x", "y"], "log")


def test_forecasts_far_outside_the_training_range_fail_fit_and_warn_at_predict():
    history = np.array([[0.0, 1.0]])  # the range of the log values: the data are 1 and e
    panel = to_panel(pd.DataFrame({"s": np.exp(history[0])}, index=pd.RangeIndex(2)))
    far = np.array([[[12.0]]])  # 11 spans above the range [0, 1]
    with pytest.raises(TrainingError, match=r"series 's' range from .*11 spans beyond .*allows 10"):
        check_forecast_range(far, np.exp(far), history, panel, 1.0, LSTMForecaster())
    with pytest.warns(TsforecastWarning, match=r"11 spans beyond"):
        check_forecast_range(far, np.exp(far), history, panel, 1.0)
    check_forecast_range(np.array([[[10.9]]]), None, history, panel, 1.0)  # 9.9 spans: fine
