"""Issue 15, item 1 and the standard-scaler half of item 9: diverged training is never silent.

The divergence rule (:mod:`tsforecast.nn.divergence`) through the public API and the real command
(``python -m tsforecast.cli`` in a subprocess): a fit that diverges raises ``TrainingError`` (exit
code 5), writes no model file and leaves the estimator unfitted; ``predict`` never returns a
non-finite forecast. Tiny settings and two short series around 10, so each test takes seconds.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from clitools import cli, main_in_process

from tsforecast import LSTMForecaster
from tsforecast.cli.exit_codes import ExitCode
from tsforecast.data import to_panel
from tsforecast.exceptions import InvalidInputError, NotFittedError, TrainingError, TsforecastWarning
from tsforecast.nn.divergence import check_forecast_range, check_forecasts, parameters_finite
from tsforecast.scaling import SeriesScaler

torch.set_num_threads(1)

TINY = dict(horizon=12, season_length=24, hidden_size=8, max_epochs=3, tbptt_steps=48, random_state=0)
DIVERGING = {
    "learning_rate=1e6": {"learning_rate": 1.0e6},
    "weight_decay=1e6": {"weight_decay": 1.0e6},
    "learning_rate=1000": {"learning_rate": 1000.0},
}


def around_ten(n=240) -> pd.DataFrame:
    """Two hourly series around 10 with a daily cycle and a little noise (wide layout)."""
    t = np.arange(n)
    noise = np.random.default_rng(0).normal(0, 0.1, (n, 2))
    values = 10 + np.stack([np.sin(2 * np.pi * t / 24), np.cos(2 * np.pi * t / 24)], 1) + noise
    return pd.DataFrame(values, columns=["a", "b"], index=pd.date_range("2024-01-01", periods=n, freq="h"))


@pytest.mark.parametrize("settings", DIVERGING.values(), ids=DIVERGING.keys())
def test_a_diverging_fit_raises_training_error_and_leaves_no_fitted_model(settings):
    model = LSTMForecaster(**TINY, **settings)
    with pytest.raises(TrainingError, match=r"training diverged in epoch \d of 3: .*Lower learning_rate"):
        model.fit(around_ten())
    assert not hasattr(model, "network_") and not hasattr(model, "training_panel_")
    with pytest.raises(NotFittedError):
        model.predict()
    assert len(model.history_) >= 1  # what went wrong stays visible: the diverged epoch is the last row
    assert model.history_["train_loss"].iloc[-1] > 100


def test_healthy_fit_passes_the_rule_and_forecasts_inside_the_data_range():
    model = LSTMForecaster(**TINY).fit(around_ten())
    forecasts = model.predict()
    assert np.isfinite(forecasts.to_numpy()).all()
    assert forecasts.to_numpy().min() > 8 and forecasts.to_numpy().max() < 12


def test_predict_refuses_a_network_whose_weights_are_not_finite():
    model = LSTMForecaster(**TINY).fit(around_ten())
    with torch.no_grad():
        model.network_.head.bias.fill_(float("nan"))
    assert not parameters_finite(model.network_)
    with pytest.raises(TrainingError, match=r"weights are not finite \(head.bias\).*Refit"):
        model.predict()


def test_predict_names_the_series_whose_history_makes_the_forecast_non_finite():
    model = LSTMForecaster(**TINY, scaler="none").fit(around_ten())
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
    history = [np.array([0.0, 1.0])]  # log values: the data are 1 and e
    panel = to_panel(pd.DataFrame({"s": np.exp(history[0])}, index=pd.RangeIndex(2)))
    far = np.array([[[12.0]]])  # 11 spans above the range [0, 1]
    with pytest.raises(TrainingError, match=r"series 's' range from .*11 spans beyond .*allows 10"):
        check_forecast_range(far, np.exp(far), history, panel, 1.0, LSTMForecaster())
    with pytest.warns(TsforecastWarning, match=r"11 spans beyond"):
        check_forecast_range(far, np.exp(far), history, panel, 1.0)
    check_forecast_range(np.array([[[10.9]]]), None, history, panel, 1.0)  # 9.9 spans: fine


def test_standard_scaler_around_1e300_gives_finite_forecasts():
    model = LSTMForecaster(**TINY, scaler="standard").fit(around_ten() * 1e300)
    scaler = model.codec_.scaler
    assert np.isfinite(scaler.center).all() and np.isfinite(scaler.scale).all()
    forecasts = model.predict().to_numpy() / 1e300
    assert np.isfinite(forecasts).all() and forecasts.min() > 8 and forecasts.max() < 12


# --------------------------------------------------------------------------- the real command
@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("divergence")
    long = around_ten().rename_axis("ds").reset_index().melt("ds", var_name="unique_id", value_name="y")
    long[["unique_id", "ds", "y"]].to_csv(folder / "data.csv", index=False)
    return folder


def fit_args(param: str) -> list:
    name = param.split("=")[0]
    return [
        "fit", "data.csv", "--model", "lstm", "--horizon", 12, "--season-length", 24,
        "-p", "hidden_size=8", "-p", "max_epochs=3", "-p", "tbptt_steps=48", "-p", "random_state=0",
        "-p", param, "--output", f"{name}.safetensors", "--forecast-output", f"{name}.csv",
    ]  # fmt: skip


def assert_diverged(code: int, stderr: str, folder, param: str) -> None:
    name = param.split("=")[0]
    assert code == ExitCode.TRAINING == 5, stderr
    assert "training diverged in epoch" in stderr and "Lower learning_rate" in stderr
    assert "Traceback" not in stderr
    assert not (folder / f"{name}.safetensors").exists() and not (folder / f"{name}.csv").exists()


def test_cli_fit_that_diverges_exits_5_and_writes_nothing(workdir):
    """The issue's command, in a subprocess: it used to exit 0 and write inf and 0.0 forecasts."""
    param = "learning_rate=1.0e+6"
    result = cli(*fit_args(param), cwd=workdir, store=f"sqlite:///{workdir / 'mlflow.db'}")
    assert_diverged(result.returncode, result.stderr, workdir, param)


@pytest.mark.parametrize("param", ["weight_decay=1.0e+6", "learning_rate=1000"])
def test_cli_fit_with_other_diverging_settings_exits_5(workdir, param, monkeypatch, capsys):
    monkeypatch.chdir(workdir)  # the command in this process (torch already imported: fast)
    code = main_in_process(*fit_args(param))
    assert_diverged(code, capsys.readouterr().err, workdir, param)
