"""The codec between a panel and the network: what encode lays out and what decode gives back."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tsforecast.nn.codec import PREDICT_CHUNK, PanelCodec, SeriesArrays
from tsforecast.nn.streams import FeatureSpec, series_arrays
from tsforecast.windowing import plan_streams

SPEC = FeatureSpec(season_length=4, long_season_length=0, horizon=6)


def _series(n_series=3, length=40, seed=0) -> list:
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    return [
        50.0 * (k + 1) + 5 * np.sin(2 * np.pi * t / 4) + rng.normal(0, 1, length) for k in range(n_series)
    ]


@pytest.mark.parametrize("kind", ["log", "standard", "level"])
def test_a_zero_network_output_decodes_to_the_seasonal_naive_forecast(kind):
    values, ids = _series(), ["a", "b", "c"]
    codec = PanelCodec.fit(SPEC, kind, values, ids, torch.device("cpu"))
    encoded = codec.encode(values, ids, PREDICT_CHUNK, forecast=True)
    zero = torch.zeros(len(values), SPEC.horizon)  # (series, horizon * one level)
    forecast = codec.decode(zero, encoded.base, encoded.scaler)[..., 0]
    naive = np.stack([v[-4:][np.arange(SPEC.horizon) % 4] for v in values])  # last season, repeated
    np.testing.assert_allclose(forecast, naive, rtol=1e-12)


def test_series_are_computed_a_block_at_a_time_with_their_base_and_range(monkeypatch):
    values, ids = _series(), ["a", "b", "c"]
    codec = PanelCodec.fit(SPEC, "log", values, ids, torch.device("cpu"))
    whole = codec.encode(values, ids, 8, forecast=True)
    monkeypatch.setattr(SeriesArrays, "block", 2)  # series 0-1, then 2: two blocks
    blocks = codec.encode(values, ids, 8, forecast=True)
    for k in range(len(values)):
        filled = blocks.series[k][0]
        np.testing.assert_array_equal(filled, np.log(values[k]))  # no gaps: filled = scaled values
        np.testing.assert_array_equal(blocks.ranges[k], [filled.min(), filled.max()])
        np.testing.assert_array_equal(blocks.base[k], codec.base([filled])[0])
    np.testing.assert_array_equal(blocks.base, whole.base)
    rows = torch.arange(3)
    for a, b in zip(blocks.streams.rows(rows, 0, 50), whole.streams.rows(rows, 0, 50), strict=True):
        assert a is None and b is None or torch.equal(a, b)


def test_decode_sorts_quantiles_so_they_never_cross():
    values, ids = _series(), ["a", "b", "c"]
    codec = PanelCodec.fit(SPEC, "standard", values, ids, torch.device("cpu"))
    encoded = codec.encode(values, ids, PREDICT_CHUNK, forecast=True)
    crossed = torch.tensor([[1.0, -1.0] * SPEC.horizon] * 3)  # (series, horizon * 2 levels), descending
    out = codec.decode(crossed, encoded.base, encoded.scaler)  # (series, horizon, levels)
    assert (np.diff(out, axis=-1) >= 0).all()


def test_encode_plans_forecast_training_and_held_out_targets():
    values, ids = _series(length=40), ["a", "b", "c"]
    codec = PanelCodec.fit(SPEC, "standard", values, ids, torch.device("cpu"))
    train = codec.encode(values, ids, 8)
    forecast = codec.encode(values, ids, 8, forecast=True)
    # Training streams end at the last step with a target; forecast streams at the last time stamp.
    assert (train.streams.n_steps_host == 40 - SPEC.context - 1).all()
    assert (forecast.streams.n_steps_host == 40 - SPEC.context).all()
    held = codec.encode(values, ids, 8, holdout=5)
    streams = held.streams
    obs = streams.rows(torch.arange(streams.n_streams), 0, 40)[2].numpy()  # target flags from time 0
    assert obs[:, 35:40].all() and not obs[:, :35].any()
    cut = codec.encode(values, ids, 8, cut=(10, 3))
    assert cut.streams.n_streams > len(values) and (cut.streams.n_steps_host <= 13).all()
    last = codec.encode(values, ids, 8, forecast=True, keep_last=12)
    assert (last.streams.n_steps_host == 12).all()


def test_known_series_keep_their_training_statistics_new_ones_get_their_own():
    values, ids = _series(), ["a", "b", "c"]
    codec = PanelCodec.fit(SPEC, "standard", values, ids, torch.device("cpu"))
    new = [v + 1000.0 for v in values[:2]]
    scaler = codec.scaler_for(["b", "new"], new)
    assert scaler.center[0] == codec.scaler.center[1]  # "b": the training statistics
    assert scaler.center[1] == pytest.approx(new[1].mean())  # "new": its own


@pytest.mark.parametrize("cut", [None, (10, 3)])
def test_rows_compute_the_causal_level_and_targets_of_the_host_arrays(cut):
    """The level made per batch equals series_arrays' (gaps, cut streams, held-out targets)."""
    values, ids = _series(length=40), ["a", "b", "c"]
    values[1] = values[1].copy()
    values[1][[5, 17, 18, 19, 20, 21, 30]] = np.nan  # a gap longer than the season: the level carries
    codec = PanelCodec.fit(SPEC, "standard", values, ids, torch.device("cpu"))
    streams = codec.encode(values, ids, 8, cut=cut, holdout=6).streams
    plan = plan_streams(np.array([len(v) for v in values]) - SPEC.context - 1, *(cut or (None, 0)))
    assert streams.n_streams == plan.n_streams > (3 if cut else 2)
    z, level, obs, _ = streams.rows(torch.arange(plan.n_streams), 0, 40)
    for s, (i, start) in enumerate(zip(plan.series, plan.start, strict=True)):
        scaled = codec.scaler.subset([i]).transform([values[i]])[0]
        _, host_level, host_obs = series_arrays(scaled, SPEC.season_length, target_from=len(scaled) - 6)
        size = int(streams.size[s])
        shift = -float(streams.pad[s])
        np.testing.assert_allclose(
            level[s, :size].numpy(), host_level[start : start + size] - shift, atol=1e-5
        )
        np.testing.assert_array_equal(obs[s, :size].numpy(), host_obs[start : start + size])
        assert not obs[s, size:].any()


def _hourly_panel(n_series: int):
    import pandas as pd

    rng = np.random.default_rng(0)
    t = np.arange(400)
    return pd.concat(
        pd.DataFrame(
            {
                "unique_id": f"s{k:04d}",
                "ds": t,
                "y": 50 + 10 * np.sin(2 * np.pi * t / 24 + k) + rng.normal(0, 1, 400),
            }
        )
        for k in range(n_series)
    )


def test_the_encoded_panel_stays_on_the_host_and_batches_come_out_on_the_device():
    codec = PanelCodec.fit(FeatureSpec(4, 0, 3), "standard", _series(), ["a", "b", "c"], "cpu")
    encoded = codec.encode(_series(), ["a", "b", "c"], 8)
    streams = encoded.streams
    assert streams.device == torch.device("cpu")
    for stored in (streams.z, streams.observed, streams.start, streams.n_steps):
        assert stored.device.type == "cpu" and not stored.is_cuda
    z, level, obs, _ = streams.rows(np.array([2, 0]), 0, 12)
    assert z.shape == level.shape == obs.shape == (2, 12) and z.device == streams.device


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_device_memory_grows_with_the_batch_not_with_the_panel():
    from tsforecast import LSTMForecaster

    peaks = {}
    for n_series in (1024, 4096):  # both fill a prediction batch (PREDICT_BATCH)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        model = LSTMForecaster(
            horizon=24, device="cuda", batch_size=64, max_epochs=1, max_steps=5, random_state=0
        )
        model.fit(_hourly_panel(n_series))
        peaks[n_series] = torch.cuda.max_memory_allocated()
    assert peaks[4096] < 1.25 * peaks[1024], peaks  # 4x the series, the same batches
