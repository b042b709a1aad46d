"""LSTM/GRU/RNN forecasters: behaviour beyond the shared contract (tests/test_contract.py)."""

import numpy as np
import pandas as pd
import pytest
import torch

from tsforecast.exceptions import InvalidInputError, InvalidParameterError, TsforecastWarning
from tsforecast.nn import GRUForecaster, LSTMForecaster, RNNForecaster

torch.set_num_threads(1)

TINY = dict(
    horizon=3, season_length=4, hidden_size=4, num_layers=1, max_epochs=2, tbptt_steps=8, random_state=0
)


def panel(n_series=3, length=60, seed=0, offset=0.0):
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(n_series):
        t = np.arange(length - 5 * k)
        y = offset + 20 + 3 * k + 4 * np.sin(2 * np.pi * t / 4) + rng.normal(0, 0.3, len(t))
        frames.append(pd.DataFrame({"unique_id": f"s{k}", "ds": t, "y": y}))
    return pd.concat(frames, ignore_index=True)


@pytest.mark.parametrize("cls", [LSTMForecaster, GRUForecaster, RNNForecaster])
def test_each_cell_fits_and_forecasts(cls):
    model = cls(**TINY).fit(panel())
    assert model.network_.cell == cls._cell
    out = model.predict()
    assert len(out) == 9 and np.isfinite(out["y_pred"]).all()
    assert list(model.history_["epoch"]) == [1, 2]


def test_an_untrained_network_is_the_seasonal_naive_forecast():
    data = panel()
    model = LSTMForecaster(**{**TINY, "learning_rate": 1e-12}).fit(data)
    last = data[data["unique_id"] == "s0"]["y"].to_numpy()[-4:]
    np.testing.assert_allclose(model.predict()["y_pred"][:3], last[:3], rtol=1e-6)


def test_horizon_beyond_the_fitted_one_is_refused_and_shorter_is_a_prefix():
    model = LSTMForecaster(**TINY).fit(panel())
    with pytest.raises(InvalidParameterError, match="exceeds the horizon the network was trained for"):
        model.predict(4)
    full, short = model.predict(3), model.predict(2)
    np.testing.assert_array_equal(short["y_pred"], full.groupby("unique_id").head(2)["y_pred"])


def test_same_seed_same_forecast_other_seed_other_forecast():
    a = LSTMForecaster(**{**TINY, "dropout": 0.2, "num_layers": 2}).fit(panel()).predict()
    b = LSTMForecaster(**{**TINY, "dropout": 0.2, "num_layers": 2}).fit(panel()).predict()
    c = LSTMForecaster(**{**TINY, "random_state": 1, "dropout": 0.2, "num_layers": 2}).fit(panel()).predict()
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["y_pred"], c["y_pred"])


def test_new_series_are_scaled_by_their_own_statistics():
    data = panel()
    model = LSTMForecaster(**TINY).fit(data)
    new = data.assign(unique_id="new_" + data["unique_id"], y=data["y"] * 1000)
    known = model.predict()
    scaled = model.predict(y=new)
    np.testing.assert_allclose(scaled["y_pred"].to_numpy(), known["y_pred"].to_numpy() * 1000, rtol=1e-4)


def test_scaler_sees_only_the_training_part():
    data = panel(n_series=1)
    cutoff = len(data) - 6
    changed = data.copy()
    changed.loc[cutoff:, "y"] = 1e4
    settings = {**TINY, "scaler": "standard", "validation_size": 6, "max_epochs": 1}
    a, b = LSTMForecaster(**settings).fit(data), LSTMForecaster(**settings).fit(changed)
    assert a.codec_.scaler.state() == b.codec_.scaler.state()
    np.testing.assert_allclose(a.codec_.scaler.center, data["y"][:cutoff].mean())
    history = data.iloc[:cutoff].assign(unique_id="at_cutoff")
    pd.testing.assert_frame_equal(a.predict(y=history), b.predict(y=history))


def test_interior_missing_values_are_masked_and_zeros_switch_to_the_level_space():
    data = panel()
    data.loc[[20, 21, 70], "y"] = np.nan
    data.loc[5, "y"] = 0.0
    model = LSTMForecaster(**TINY).fit(data)
    assert model.codec_.scaler.kind == "level"
    assert np.isfinite(model.predict()["y_pred"]).all()
    assert LSTMForecaster(**TINY).fit(panel()).codec_.scaler.kind == "log"


@pytest.mark.parametrize("scaler", ["standard", "robust", "minmax", "none", "level"])
def test_alternative_scalers(scaler):
    out = LSTMForecaster(**{**TINY, "scaler": scaler, "max_epochs": 1}).fit(panel()).predict()
    assert np.isfinite(out["y_pred"]).all()


def test_quantiles_add_ordered_columns():
    model = GRUForecaster(**{**TINY, "quantiles": (0.1, 0.9)}).fit(panel())
    out = model.predict()
    assert list(out.columns) == ["unique_id", "ds", "y_pred", "q0.1", "q0.9"]
    assert (out["q0.1"] <= out["y_pred"]).all() and (out["y_pred"] <= out["q0.9"]).all()


def test_windows_training_residual_layers_and_validation():
    model = LSTMForecaster(
        **{
            **TINY,
            "training": "windows",
            "lookback": 10,
            "num_layers": 2,
            "residual": True,
            "validation_size": 3,
            "max_epochs": 3,
        }
    ).fit(panel())
    history = model.history_
    assert len(history) == 3 and history["val_loss"].notna().all()
    assert np.isfinite(model.predict()["y_pred"]).all()


@pytest.mark.parametrize("training, early_history_matters", [("windows", False), ("tbptt", True)])
def test_windows_models_forecast_from_their_last_window_tbptt_from_the_whole_history(
    training, early_history_matters
):
    """A windows model saw `lookback` steps from a zero state in training, so it forecasts that way."""
    model = LSTMForecaster(**{**TINY, "training": training, "lookback": 10}).fit(panel())
    history = panel()
    from_end = history.iloc[::-1].groupby("unique_id").cumcount().iloc[::-1]
    # Everything before the last window, its context and the season the first level feature averages.
    early = from_end >= model.codec_.spec.context + 10 + model.codec_.spec.season_length
    changed = history.assign(y=history["y"].where(~early, history["y"] + 10.0))
    gap = np.abs(model.predict(y=history)["y_pred"] - model.predict(y=changed)["y_pred"]).max()
    same = gap < 1e-9
    assert same != early_history_matters


def test_long_season_and_stream_cutting():
    t = np.arange(400)
    y = pd.Series(
        50
        + 5 * np.sin(2 * np.pi * t / 24)
        + 3 * np.sin(2 * np.pi * t / 168)
        + np.random.default_rng(0).normal(0, 0.5, 400)
    )
    model = LSTMForecaster(
        horizon=6,
        season_length=24,
        long_season_length=48,
        hidden_size=4,
        max_epochs=1,
        tbptt_steps=16,
        batch_size=64,
        random_state=0,
    ).fit(y)
    assert model.codec_.spec.long_season_length == 48 and model.codec_.spec.n_features == 24 + 1 + 6 + 1
    assert len(model.predict()) == 6
    auto = LSTMForecaster(horizon=6, season_length=24, hidden_size=4, max_epochs=1, tbptt_steps=16).fit(y)
    assert auto.codec_.spec.long_season_length == 0  # 400 steps < three weeks


def test_callbacks_max_time_and_warm_start():
    records = []
    model = LSTMForecaster(**{**TINY, "max_epochs": 5, "callbacks": [lambda est, rec: records.append(rec)]})
    model.fit(panel())
    assert [r.epoch for r in records] == [1, 2, 3, 4, 5]
    stop = LSTMForecaster(**{**TINY, "max_epochs": 5, "callbacks": [lambda est, rec: rec.epoch >= 2]})
    assert len(stop.fit(panel()).history_) == 2

    def prune(est, rec):
        raise KeyboardInterrupt("pruned")

    with pytest.raises(KeyboardInterrupt, match="pruned"):
        LSTMForecaster(**{**TINY, "callbacks": [prune]}).fit(panel())
    with pytest.warns(TsforecastWarning, match=r"stopped by max_time=0.5 s after \d+ of 1000 epochs"):
        seen = []
        settings = {**TINY, "max_epochs": 1000, "max_time": 0.5, "callbacks": [lambda e, r: seen.append(r)]}
        budget = LSTMForecaster(**settings).fit(panel())
    assert len(budget.history_) < 1000
    assert seen[-1].stopped_by == "max_time"  # callbacks (logs, pruning) learn why it is the last epoch
    assert budget.history_["stopped_by"].iloc[-1] == "max_time"
    assert budget.history_["stopped_by"].iloc[:-1].isna().all()
    warm = LSTMForecaster(**{**TINY, "warm_start": True, "max_epochs": 1}).fit(panel())
    first = {k: v.clone() for k, v in warm.network_.state_dict().items()}
    network = warm.network_
    warm.fit(panel())
    assert warm.network_ is network and not torch.equal(
        first["head.weight"], network.state_dict()["head.weight"]
    )


def test_warm_start_with_another_architecture_warns_and_starts_over():
    model = LSTMForecaster(**{**TINY, "warm_start": True, "max_epochs": 1}).fit(panel())
    network = model.network_
    model.set_params(hidden_size=6)
    with pytest.warns(
        TsforecastWarning, match=r"architecture changed.*hidden_size 4 -> 6.*starts from a new"
    ):
        model.fit(panel())
    assert model.network_ is not network and model.network_.layers[0].hidden_size == 6


def test_log_scale_errors_name_the_series_by_id():
    data = panel()
    data.loc[data["unique_id"] == "s1", "y"] -= 100.0  # s1 goes below 0
    with pytest.raises(InvalidInputError, match="series 's1' has values <= 0"):
        LSTMForecaster(**{**TINY, "scaler": "log"}).fit(data)
    model = LSTMForecaster(**TINY).fit(panel())  # "auto" resolves to log
    new = panel(n_series=2).assign(unique_id=lambda f: "new_" + f["unique_id"])
    new.loc[new["unique_id"] == "new_s1", "y"] -= 100.0
    with pytest.raises(InvalidInputError, match="series 'new_s1' has values <= 0"):
        model.predict(y=new)
    unnamed = pd.Series(np.linspace(-1.0, 1.0, 40))
    with pytest.raises(InvalidInputError, match="^the unnamed series has values <= 0"):
        LSTMForecaster(**{**TINY, "scaler": "log"}).fit(unnamed)


def test_quantiles_are_not_dropped_silently_from_series_and_wide_forecasts():
    model = GRUForecaster(**{**TINY, "quantiles": (0.1, 0.9)})
    wide = panel().pivot(index="ds", columns="unique_id", values="y").iloc[-50:]
    with pytest.warns(TsforecastWarning, match=r"\['q0.1', 'q0.9'\].*wide frame history only gets the point"):
        out = model.fit(wide).predict()
    assert list(out.columns) == ["s0", "s1", "s2"]
    with pytest.warns(TsforecastWarning, match="pd.Series history only gets the point"):
        model.fit(wide["s0"]).predict()


@pytest.mark.parametrize(
    ("settings", "error", "match"),
    [
        ({"device": "tpu"}, InvalidParameterError, "device must be"),
        ({"device": "quantum:0"}, InvalidParameterError, "device must be"),
        ({"quantiles": (0.5, 1.5)}, InvalidParameterError, "quantiles must be"),
        ({"training": "windows", "lookback": 80}, InvalidInputError, "needs at least"),
        ({"validation_size": 60}, InvalidInputError, "validation_size 60"),
        ({"tbptt_steps": 500}, InvalidInputError, "tbptt_steps=500 is longer"),
        ({"horizon": 0}, InvalidParameterError, "horizon"),
        ({"dropout": 1.5}, InvalidParameterError, "dropout"),
    ],
)
def test_bad_settings_fail_before_training(settings, error, match):
    calls = []
    model = LSTMForecaster(**{**TINY, **settings, "callbacks": [lambda est, rec: calls.append(rec)]})
    with pytest.raises(error, match=match):
        model.fit(panel())
    assert calls == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without CUDA")
def test_cuda_without_cuda_is_a_parameter_error():
    with pytest.raises(InvalidParameterError, match="CUDA device"):
        LSTMForecaster(**{**TINY, "device": "cuda"}).fit(panel())


def test_non_finite_and_too_short_data_are_named():
    data = panel()
    data.loc[3, "y"] = np.inf
    with pytest.raises(InvalidInputError, match="infinite"):
        LSTMForecaster(**TINY).fit(data)
    with pytest.raises(InvalidInputError, match="'s0' has 4 observations"):
        LSTMForecaster(**TINY).fit(panel().groupby("unique_id").head(4))
    model = LSTMForecaster(**TINY).fit(panel())
    with pytest.raises(InvalidInputError, match="needs at least 5"):
        model.predict(y=panel().groupby("unique_id").head(3))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_fit_bf16_then_cpu_pickle_and_load(tmp_path):
    import pickle

    import tsforecast

    model = LSTMForecaster(**{**TINY, "device": "cuda", "precision": "bf16"}).fit(panel())
    assert model.device_.type == "cuda"
    forecast = model.predict()
    restored = pickle.loads(pickle.dumps(model))
    assert restored.device_.type == "cpu"
    path = tmp_path / "gpu.safetensors"
    model.save(path)
    loaded = tsforecast.load(path)
    np.testing.assert_allclose(loaded.predict()["y_pred"], forecast["y_pred"], rtol=1e-2)
    np.testing.assert_allclose(restored.predict()["y_pred"], loaded.predict()["y_pred"], rtol=1e-6)


_FIT_IN_A_FRESH_PROCESS = """
import hashlib, sys
import numpy as np, pandas as pd
from tsforecast import LSTMForecaster
rng = np.random.default_rng(0)
t = np.arange(300)
frame = pd.concat(
    pd.DataFrame({"unique_id": f"s{k}", "ds": pd.date_range("2024-01-01", periods=300, freq="h"),
                  "y": 50 + 10 * np.sin(2 * np.pi * t / 24 + k) + rng.normal(0, 1, 300)})
    for k in range(6)
)
max_time = None if sys.argv[1] == "none" else float(sys.argv[1])
model = LSTMForecaster(horizon=6, hidden_size=8, max_epochs=3, tbptt_steps=24, max_time=max_time,
                       random_state=7).fit(frame)
forecast = model.predict()["y_pred"].to_numpy()
print(hashlib.sha256(forecast.tobytes()).hexdigest(), repr(forecast[:3].tolist()))
"""


def test_same_seed_gives_bit_identical_forecasts_across_processes_and_an_unfired_max_time():
    """Two fresh interpreters, same data and random_state: the same bytes; a max_time that does not
    fire changes nothing (the schedule is a function of the step, never of the clock)."""
    import subprocess
    import sys

    def run(max_time: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", _FIT_IN_A_FRESH_PROCESS, max_time],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return done.stdout.strip()

    plain, again, capped = run("none"), run("none"), run("60")
    assert plain == again
    assert plain == capped


def test_predict_after_fit_reuses_the_fits_forecast_of_the_training_data(monkeypatch):
    import pickle

    from tsforecast.nn import forecaster
    from tsforecast.nn.batches import run_streams

    model = LSTMForecaster(**{**TINY, "quantiles": [0.1, 0.9]}).fit(panel())
    calls = []
    monkeypatch.setattr(forecaster, "run_streams", lambda *a, **k: calls.append(1) or run_streams(*a, **k))
    first = model.predict(level=80)
    assert calls == []  # the end-of-fit forecast, not a second pass over every series
    again = model.predict(y=panel(), level=80)  # new history: computed
    assert calls == [1]
    pd.testing.assert_frame_equal(first, again)
    shorter = again.groupby("unique_id").head(3).reset_index(drop=True)
    pd.testing.assert_frame_equal(model.predict(3, level=80), shorter)
    first.loc[0, "y_pred"] = -1.0  # the caller's copy
    assert model.predict().loc[0, "y_pred"] != -1.0
    restored = pickle.loads(pickle.dumps(model))
    assert "_training_forecast" not in restored.__dict__
    pd.testing.assert_frame_equal(restored.predict(level=80), again)
