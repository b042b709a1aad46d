"""Training checkpoints (``checkpoint_dir``): resume after a kill with the weights of an uninterrupted
fit, refuse a checkpoint from another fit, never leave a half-written file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from tsforecast import LSTMForecaster
from tsforecast.exceptions import InvalidParameterError, TsforecastWarning
from tsforecast.nn.checkpoint import CHECKPOINT_FILE

ROOT = Path(__file__).resolve().parents[1]
SMALL = dict(horizon=12, max_epochs=4, batch_size=2, tbptt_steps=24, hidden_size=16, random_state=3)


def _panel(n_series=6, length=300, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    frames = [
        pd.DataFrame(
            {
                "unique_id": f"s{k}",
                "ds": pd.date_range("2024-01-01", periods=length, freq="h"),
                "y": 50 + k + 10 * np.sin(2 * np.pi * t / 24) + rng.normal(size=length),
            }
        )
        for k in range(n_series)
    ]
    return pd.concat(frames, ignore_index=True)


def _same_weights(a, b) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.values(), b.values(), strict=True))


class _Stop(Exception):
    pass


def _stop_after(epoch: int):
    def callback(estimator, record):
        if record.epoch == epoch:
            raise _Stop  # an interruption before this epoch's checkpoint is written

    return callback


# The child fits the panel with the settings, optionally checkpointing, and saves the weights.
CHILD = """
import sys, pandas as pd, torch
from tsforecast import LSTMForecaster
settings = eval(sys.argv[1])
model = LSTMForecaster(**settings).fit(pd.read_csv(sys.argv[2], parse_dates=["ds"]))
torch.save({"weights": model.network_.state_dict(), "epochs": model.history_["epoch"].tolist()}, sys.argv[3])
"""


def _child(settings: dict, data: Path, out: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-c", CHILD, repr(settings), str(data), str(out)]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _position(path: Path):
    """(epoch, batch, chunk) of the checkpoint at ``path``, or None while there is none."""
    try:
        loop = torch.load(path, weights_only=True)["loop"]
    except FileNotFoundError:
        return None
    return loop["epoch"], loop["batch"], loop["chunk"]


def test_a_fit_killed_mid_epoch_resumes_to_the_weights_of_an_uninterrupted_fit(tmp_path):
    data = tmp_path / "panel.csv"
    _panel().to_csv(data, index=False)
    folder = tmp_path / "checkpoints"
    # A checkpoint at (nearly) every chunk, so the kill lands inside an epoch.
    settings = {**SMALL, "checkpoint_dir": str(folder), "checkpoint_every": 1e-6}
    doomed = _child(settings, data, tmp_path / "doomed.pt")
    deadline, killed_at = time.monotonic() + 120, None
    while time.monotonic() < deadline and doomed.poll() is None:
        position = _position(folder / CHECKPOINT_FILE)
        if position and position[0] >= 1 and (position[1] or position[2]):
            os.kill(doomed.pid, signal.SIGKILL)
            killed_at = position
            break
        time.sleep(0.005)
    assert doomed.wait(timeout=60) == -signal.SIGKILL, doomed.stdout.read().decode()[-2000:]
    assert killed_at is not None
    resumed = _child(settings, data, tmp_path / "resumed.pt")
    plain = _child(SMALL, data, tmp_path / "plain.pt")
    for process in (resumed, plain):
        assert process.wait(timeout=300) == 0, process.stdout.read().decode()[-2000:]
    a, b = torch.load(tmp_path / "resumed.pt"), torch.load(tmp_path / "plain.pt")
    assert _same_weights(a["weights"], b["weights"])
    assert a["epochs"] == b["epochs"] == [1, 2, 3, 4]  # history_ holds the epochs before the kill too
    assert [p.name for p in folder.iterdir()] == [CHECKPOINT_FILE]  # no temporary file left behind


@pytest.mark.parametrize("training", ["tbptt", "windows"])
def test_an_interrupted_fit_resumes_from_the_last_epoch_in_process(tmp_path, training):
    y = _panel()
    settings = {**SMALL, "training": training}
    if training == "windows":  # windows of 48 steps, 64 to a batch: a few dozen steps an epoch
        settings.update(lookback=48, batch_size=64)
        del settings["tbptt_steps"]
    uninterrupted = LSTMForecaster(**settings).fit(y)
    with pytest.raises(_Stop):
        LSTMForecaster(**settings, checkpoint_dir=tmp_path, callbacks=[_stop_after(3)]).fit(y)
    resumed = LSTMForecaster(**settings, checkpoint_dir=tmp_path).fit(y)
    assert _same_weights(resumed.network_.state_dict(), uninterrupted.network_.state_dict())
    machine = ["seconds", "peak_memory_mb"]  # what depends on the machine and the process
    pd.testing.assert_frame_equal(
        resumed.history_.drop(columns=machine), uninterrupted.history_.drop(columns=machine)
    )
    pd.testing.assert_frame_equal(resumed.predict(), uninterrupted.predict())


def test_early_stopping_state_survives_a_resume(tmp_path):
    y = _panel()
    settings = {**SMALL, "max_epochs": 6, "validation_size": 24, "patience": 2}
    uninterrupted = LSTMForecaster(**settings).fit(y)
    with pytest.raises(_Stop):
        LSTMForecaster(**settings, checkpoint_dir=tmp_path, callbacks=[_stop_after(3)]).fit(y)
    resumed = LSTMForecaster(**settings, checkpoint_dir=tmp_path).fit(y)
    assert _same_weights(resumed.network_.state_dict(), uninterrupted.network_.state_dict())
    assert resumed.history_["stopped_by"].tolist() == uninterrupted.history_["stopped_by"].tolist()


def test_rerunning_a_completed_fit_trains_no_further(tmp_path):
    y = _panel()
    first = LSTMForecaster(**SMALL, checkpoint_dir=tmp_path).fit(y)
    written = (tmp_path / CHECKPOINT_FILE).stat().st_mtime_ns
    started = time.perf_counter()
    again = LSTMForecaster(**SMALL, checkpoint_dir=tmp_path, verbose=True).fit(y)  # verbose may differ
    assert _same_weights(again.network_.state_dict(), first.network_.state_dict())
    assert again.history_["epoch"].tolist() == [1, 2, 3, 4]
    assert (tmp_path / CHECKPOINT_FILE).stat().st_mtime_ns == written  # nothing trained, nothing written
    assert time.perf_counter() - started < sum(first.history_["seconds"]) + 5


def test_a_checkpoint_of_another_fit_is_refused_and_kept(tmp_path):
    y = _panel()
    LSTMForecaster(**SMALL, checkpoint_dir=tmp_path).fit(y)
    saved = (tmp_path / CHECKPOINT_FILE).read_bytes()
    with pytest.raises(
        InvalidParameterError, match=r"different fit: hidden_size=16 in the checkpoint, 8 now"
    ):
        LSTMForecaster(**{**SMALL, "hidden_size": 8}, checkpoint_dir=tmp_path).fit(y)
    other = y.assign(y=y["y"] + 1.0)
    with pytest.raises(InvalidParameterError, match="the training data differ"):
        LSTMForecaster(**SMALL, checkpoint_dir=tmp_path).fit(other)
    assert (tmp_path / CHECKPOINT_FILE).read_bytes() == saved  # a refused fit writes nothing


def test_an_unreadable_checkpoint_is_named(tmp_path):
    (tmp_path / CHECKPOINT_FILE).write_bytes(b"not a checkpoint")
    with pytest.raises(
        InvalidParameterError, match=r"checkpoint\.pt' cannot be read \(Unpickling.*damaged\. Remove it"
    ):
        LSTMForecaster(**SMALL, checkpoint_dir=tmp_path).fit(_panel())


def test_checkpoint_settings_that_cannot_act_are_loud(tmp_path):
    with pytest.warns(TsforecastWarning, match="checkpoint_every.*checkpoints are written to checkpoint_dir"):
        LSTMForecaster(**{**SMALL, "max_epochs": 1}, checkpoint_every=5).fit(_panel())
    model = LSTMForecaster(**{**SMALL, "max_epochs": 1}, warm_start=True).fit(_panel())
    model.set_params(checkpoint_dir=str(tmp_path))
    with (
        warnings.catch_warnings(),
        pytest.raises(InvalidParameterError, match="warm_start=True.*checkpoint_dir"),
    ):
        model.fit(_panel())
    with pytest.raises(InvalidParameterError, match="checkpoint_every"):
        LSTMForecaster(**SMALL, checkpoint_dir=tmp_path, checkpoint_every=0).fit(_panel())


def test_a_model_with_a_path_checkpoint_dir_saves_and_loads(tmp_path):
    import tsforecast

    model = LSTMForecaster(**{**SMALL, "max_epochs": 1}, checkpoint_dir=tmp_path / "ckpt").fit(_panel())
    model.save(tmp_path / "model.safetensors")
    loaded = tsforecast.load(tmp_path / "model.safetensors")
    assert loaded.checkpoint_dir == str(tmp_path / "ckpt")
    pd.testing.assert_frame_equal(loaded.predict(), model.predict())


def test_a_fit_with_covariates_resumes_and_other_covariates_are_refused(tmp_path):
    y = _panel()
    stores = {f"s{k}": "ab"[k % 2] for k in range(6)}
    last = y.groupby("unique_id")["ds"].max()
    future = [
        pd.DataFrame({"unique_id": u, "ds": pd.date_range(t, periods=13, freq="h")[1:]})
        for u, t in last.items()
    ]
    X = pd.concat([y[["unique_id", "ds"]], *future], ignore_index=True)
    X["x"], X["store"] = np.arange(len(X)) % 5, X["unique_id"].map(stores)
    settings = {**SMALL, "future_covariates": ["x"], "static_covariates": ["store"]}
    settings["categorical_covariates"] = ["store"]
    uninterrupted = LSTMForecaster(**settings).fit(y, X=X)
    with pytest.raises(_Stop):
        LSTMForecaster(**settings, checkpoint_dir=tmp_path, callbacks=[_stop_after(2)]).fit(y, X=X)
    resumed = LSTMForecaster(**settings, checkpoint_dir=tmp_path).fit(y, X=X)
    assert _same_weights(resumed.network_.state_dict(), uninterrupted.network_.state_dict())
    with pytest.raises(InvalidParameterError, match="the training data differ"):
        LSTMForecaster(**settings, checkpoint_dir=tmp_path).fit(y, X=X.assign(x=X["x"] + 1))
