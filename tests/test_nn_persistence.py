"""save/load (safetensors + JSON), pickle and clone round trips of the recurrent forecasters."""

import json
import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from modelfiles import as_legacy, rewrite
from safetensors import safe_open
from safetensors.torch import save_file
from sklearn.base import clone

import tsforecast
from tsforecast.exceptions import InvalidParameterError, ModelFileError, TsforecastWarning
from tsforecast.nn import GRUForecaster, LSTMForecaster, load

torch.set_num_threads(1)

TINY = dict(
    horizon=3, season_length=4, hidden_size=4, num_layers=2, max_epochs=2, tbptt_steps=8, random_state=0
)


def series(length=50, seed=0, index=None):
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    return pd.Series(
        30 + 4 * np.sin(2 * np.pi * t / 4) + rng.normal(0, 0.3, length),
        index=index if index is not None else pd.RangeIndex(length),
        name="sales",
    )


def layouts():
    hourly = pd.date_range("2024-03-01", periods=50, freq="h", tz="Europe/Paris")
    wide = pd.DataFrame({"a": series(50), "b": series(50, seed=1)})
    wide.index = pd.period_range("2020-01", periods=50, freq="M")
    long = pd.concat(
        [
            series(50 - 4 * k, seed=k).rename("y").rename_axis("ds").reset_index().assign(unique_id=f"s{k}")
            for k in range(3)
        ],
        ignore_index=True,
    )
    return {"series": series(index=hourly), "wide": wide, "long": long}


@pytest.mark.filterwarnings("ignore:GRUForecaster forecasts .* only holds the point forecasts")
@pytest.mark.parametrize("layout", ["series", "wide", "long"])
def test_save_load_gives_identical_forecasts(tmp_path, layout):
    data = layouts()[layout]
    model = GRUForecaster(**{**TINY, "quantiles": (0.2, 0.8)}).fit(data)
    path = tmp_path / "model.safetensors"
    model.save(path)
    loaded = tsforecast.load(path)
    assert type(loaded) is GRUForecaster and loaded.get_params() == model.get_params()
    expected, got = model.predict(), loaded.predict()
    if isinstance(expected, pd.DataFrame):
        pd.testing.assert_frame_equal(got, expected)
    else:
        pd.testing.assert_series_equal(got, expected)
    pd.testing.assert_frame_equal(loaded.history_, model.history_, check_dtype=False)
    # New history: doubled values (series layouts), or unseen series (long, scaled by their own statistics).
    new = data * 2 if layout != "long" else data.assign(y=data["y"] * 2, unique_id="n" + data["unique_id"])
    new_expected, new_got = model.predict(y=new), loaded.predict(y=new)
    assert type(new_got) is type(new_expected)
    if isinstance(new_expected, pd.DataFrame):
        pd.testing.assert_frame_equal(new_got, new_expected)
    else:
        pd.testing.assert_series_equal(new_got, new_expected)
    assert np.isfinite(np.asarray(new_got.select_dtypes("number") if layout == "long" else new_got)).all()
    assert not np.allclose(  # the doubled history really is forecast anew
        np.asarray(new_got.select_dtypes("number") if layout == "long" else new_got),
        np.asarray(got.select_dtypes("number") if layout == "long" else got),
    )


def test_file_holds_no_pickle_and_cpu_tensors(tmp_path):
    model = LSTMForecaster(**TINY).fit(series())
    path = tmp_path / "m.safetensors"
    model.save(path)
    with safe_open(str(path), framework="pt") as handle:
        document = json.loads(handle.metadata()["tsforecast"])
        assert all(handle.get_tensor(k).device.type == "cpu" for k in handle.keys())  # noqa: SIM118
    assert document["package_version"] == tsforecast.__version__ and document["class"] == "LSTMForecaster"
    assert b"\x80\x04" not in path.read_bytes()[:8]  # not a pickle stream


def test_pickle_and_clone_round_trips():
    data = series()
    model = LSTMForecaster(**TINY).fit(data)
    expected = model.predict()
    pd.testing.assert_series_equal(pickle.loads(pickle.dumps(model)).predict(), expected)
    unfitted = clone(model)
    assert not hasattr(unfitted, "network_")
    pd.testing.assert_series_equal(unfitted.fit(data).predict(), expected)


def _saved(tmp_path):
    path = tmp_path / "m.safetensors"
    LSTMForecaster(**TINY).fit(series()).save(path)
    return path


def test_corrupted_files_are_refused_clearly(tmp_path):
    path = _saved(tmp_path)
    raw = path.read_bytes()
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(raw[: len(raw) // 2])
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00\x01not a model" * 10)
    for bad in (truncated, garbage, tmp_path / "missing.safetensors"):
        with pytest.raises(ModelFileError, match="cannot read"):
            load(bad)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(ModelFileError, match="not a tsforecast model"):
        load(foreign)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda d, t: d.update(package_version="99.0.0"), "saved by tsforecast 99.0.0"),
        (lambda d, t: d.update(format_version=7), "uses model format 7"),
        (lambda d, t: t.pop("network.head.bias"), "not a usable tsforecast model"),
        (lambda d, t: d.update({"class": "TransformerForecaster"}), "not a usable tsforecast model"),
    ],
)
def test_incompatible_versions_and_contents_are_refused(tmp_path, edit, match):
    bad = rewrite(_saved(tmp_path), tmp_path / "edited.safetensors", edit)  # re-sealed: a faulty writer
    with pytest.raises(ModelFileError, match=match):
        load(bad)


def _data_start(raw: bytes) -> int:
    """Offset of the tensor data area: 8-byte header length, JSON header, then the data."""
    return 8 + int.from_bytes(raw[:8], "little")


@pytest.mark.parametrize("damage", ["flipped byte", "zeroed tail", "flipped date"])
def test_damaged_files_are_refused_clearly(tmp_path, damage):
    path = _saved(tmp_path)
    raw = bytearray(path.read_bytes())
    start = _data_start(bytes(raw))
    if damage == "flipped byte":
        raw[(start + len(raw)) // 2] ^= 0xFF
    elif damage == "zeroed tail":
        raw[-20:] = bytes(20)
    else:
        field = b'\\"starts\\": ['
        raw[raw.index(field) + len(field)] ^= 0x01  # the first start's first digit
    assert bytes(raw) != path.read_bytes()
    bad = tmp_path / "damaged.safetensors"
    bad.write_bytes(bytes(raw))
    with pytest.raises(
        ModelFileError, match=r"damaged.safetensors is corrupted: its bytes no longer match the SHA-256"
    ):
        load(bad)


def test_format_1_files_without_checksums_still_load_but_non_finite_weights_are_refused(tmp_path):
    path = _saved(tmp_path)
    expected = load(path).predict()
    old = rewrite(path, tmp_path / "old.safetensors", lambda d, t: as_legacy(d, t, 1), seal=False)
    with pytest.warns(TsforecastWarning, match="format-1 model file"):
        pd.testing.assert_series_equal(load(old).predict(), expected)

    def nan_weight(document, tensors):
        as_legacy(document, tensors, 1)
        tensors["network.head.weight"][0] = float("nan")

    with (
        pytest.warns(TsforecastWarning),
        pytest.raises(ModelFileError, match="'network.head.weight' holds NaN"),
    ):
        load(rewrite(path, tmp_path / "nan.safetensors", nan_weight, seal=False))


def test_format_3_files_keep_their_per_tensor_checksums(tmp_path):
    path = _saved(tmp_path)
    expected = load(path).predict()
    old = rewrite(path, tmp_path / "old.safetensors", lambda d, t: as_legacy(d, t, 3), seal=False)
    with pytest.warns(TsforecastWarning, match="format-3 model file .* checksums its tensors but not"):
        pd.testing.assert_series_equal(load(old).predict(), expected)

    def changed_weight(document, tensors):
        as_legacy(document, tensors, 3)
        tensors["network.head.weight"][0] += 1.0  # after the checksums were taken

    damaged = rewrite(path, tmp_path / "damaged.safetensors", changed_weight, seal=False)
    with (
        pytest.warns(TsforecastWarning),
        pytest.raises(ModelFileError, match=r"tensor\(s\) \['network.head.weight'\]"),
    ):
        load(damaged)


def test_unavailable_device_error_is_not_reported_as_a_bad_file(tmp_path):
    path = _saved(tmp_path)
    with pytest.raises(InvalidParameterError, match="device='cuda:99'") as raised:
        load(path, device="cuda:99")
    assert not isinstance(raised.value, ModelFileError)
