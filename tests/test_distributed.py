"""Data-parallel training (issue "Beyond one machine"): two CPU processes on gloo, as torchrun or
``torch.multiprocessing`` start them, against one process with the same global batch.

Every process passes the whole panel and trains on its shard of the series
(:mod:`tsforecast.nn.distributed`). The tolerance of the loss curve: the two runs see the same
global batches in a different grouping (series ``rank::2`` per process), so their per-epoch training
losses agree within 10% and both fall. With every stream in one batch the two runs take the very same
steps: losses, gradient norms and weights agree to float32 rounding, as do the feature scales.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
import torch.multiprocessing as mp  # noqa: E402
from conftest import free_port  # noqa: E402
from disttools import SETTINGS, fit_and_write, panel, train_rank  # noqa: E402

from tsforecast import load  # noqa: E402

pytestmark = pytest.mark.timeout(240)
HERE = Path(__file__).resolve().parent
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
BATCH = 4  # per process; the single process takes the global batch of 2 x 4


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two-process fits (rank 0's files) and one-process fits with the same global batch.

    ``whole``: every stream in one batch (256 a process), so each step sees the very same targets in
    both; ``split``: batches of 4 a process against 8, grouped differently.
    """
    folder = tmp_path_factory.mktemp("ddp")
    for name, batch in (("whole", 256), ("split", 4)):
        mp.spawn(train_rank, args=(2, free_port(), str(folder / name / "two"), batch), nprocs=2, join=True)
        fit_and_write(folder / name / "one", 2 * batch)
    return folder


def _histories(folder: Path) -> tuple:
    return tuple(pd.read_csv(folder / name / "history.csv") for name in ("two", "one"))


def test_two_processes_take_the_steps_of_one_on_the_same_global_batch(runs):
    two, one = _histories(runs / "whole")
    assert len(two) == len(one) == SETTINGS["max_epochs"]
    assert two["steps"].tolist() == one["steps"].tolist()
    assert two["targets"].tolist() == one["targets"].tolist()  # every target, counted over the processes
    for column in ("train_loss", "val_loss", "grad_norm_mean", "clipped_fraction"):
        np.testing.assert_allclose(two[column], one[column], rtol=1e-4, atol=1e-6, err_msg=column)
    weights = [np.load(runs / "whole" / name / "weights.npy") for name in ("two", "one")]
    np.testing.assert_allclose(weights[0], weights[1], rtol=1e-3, atol=1e-5)
    scales = [json.loads((runs / "whole" / name / "scales.json").read_text()) for name in ("two", "one")]
    np.testing.assert_allclose(scales[0][0], scales[1][0], rtol=1e-5)
    assert scales[0][1] == pytest.approx(scales[1][1], rel=1e-5)


def test_with_other_batch_groupings_the_loss_curves_agree_within_ten_percent(runs):
    two, one = _histories(runs / "split")
    assert two["targets"].tolist() == one["targets"].tolist()
    np.testing.assert_allclose(two["train_loss"], one["train_loss"], rtol=0.10)
    np.testing.assert_allclose(two["val_loss"], one["val_loss"], rtol=0.10)
    for loss in (two["train_loss"], one["train_loss"]):
        assert loss.iloc[-1] < 0.8 * loss.iloc[0]


def test_the_model_of_rank_0_predicts_the_same_in_one_process(runs):
    model = load(runs / "split" / "two" / "model.safetensors", device="cpu")
    in_group = pd.read_csv(runs / "split" / "two" / "forecasts.csv")
    pd.testing.assert_frame_equal(model.predict().reset_index(drop=True), in_group, check_dtype=False)
    assert model.n_series_ == panel()["unique_id"].nunique()  # the whole panel, not rank 0's shard


def test_torchrun_fits_through_the_command_and_rank_0_alone_writes(tmp_path):
    panel().to_csv(tmp_path / "panel.csv", index=False)
    params = [
        f"-p{k}={v}" for k, v in SETTINGS.items() if k not in ("horizon", "season_length", "random_state")
    ]
    command = [
        *TORCHRUN, "--master-port", str(free_port()), "-m", "tsforecast", "fit", "panel.csv",
        "--model", "lstm", "--horizon", "6", "--season-length", "12", *params, "-pbatch_size=4",
        "--output", "model.safetensors", "--forecast-output", "forecasts.csv",
    ]  # fmt: skip
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=200)
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["forecasts.csv", "model.safetensors", "panel.csv"]
    model = load(tmp_path / "model.safetensors", device="cpu")
    written = pd.read_csv(tmp_path / "forecasts.csv")
    np.testing.assert_allclose(written["y_pred"], model.predict()["y_pred"], rtol=1e-6)


def test_a_killed_rank_ends_the_job_with_its_number_within_the_timeout(tmp_path):
    command = [
        *TORCHRUN, "--master-port", str(free_port()),
        str(HERE / "disttools.py"), str(tmp_path / "out"), "4", "2",
    ]  # fmt: skip
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, timeout=200)
    assert done.returncode != 0
    assert time.monotonic() - started < 120
    output = done.stdout + done.stderr
    assert "rank: 1" in output and "Signal 9 (SIGKILL)" in output, output[-3000:]
    assert not (tmp_path / "out" / "model.safetensors").exists()


def test_a_killed_job_rerun_resumes_from_its_checkpoints_to_the_uninterrupted_weights(tmp_path):
    """A checkpoint after every chunk; rank 1 killed after epoch 2; the rerun ends as an unkilled run."""
    script = [*TORCHRUN, str(HERE / "disttools.py")]
    checkpoints = tmp_path / "checkpoints"
    runs = {
        "killed": ("2", checkpoints),
        "resumed": ("-", checkpoints),
        "uninterrupted": ("-", tmp_path / "fresh"),
    }
    for name, (die_at, folder) in runs.items():
        command = [
            *script[:-1],
            "--master-port",
            str(free_port()),
            script[-1],
            str(tmp_path / name),
            "4",
            die_at,
            str(folder),
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=200)
        assert (done.returncode != 0) == (name == "killed"), done.stderr[-3000:]
    assert sorted(p.name for p in checkpoints.iterdir()) == ["rank-0-of-2", "rank-1-of-2"]
    weights = [np.load(tmp_path / name / "weights.npy") for name in ("resumed", "uninterrupted")]
    np.testing.assert_array_equal(weights[0], weights[1])
    histories = [pd.read_csv(tmp_path / name / "history.csv") for name in ("resumed", "uninterrupted")]
    pd.testing.assert_frame_equal(histories[0].drop(columns=["seconds", "peak_memory_mb"]),
                                  histories[1].drop(columns=["seconds", "peak_memory_mb"]))  # fmt: skip


def test_a_process_waiting_on_a_dead_peer_raises_naming_its_rank_within_the_timeout(tmp_path):
    """Started without torchrun (nothing stops the survivor): its collective fails, naming its rank."""
    from disttools import reduce_after_peer_dies

    context = mp.get_context("spawn")
    port, out = free_port(), tmp_path / "rank0.txt"
    ranks = [context.Process(target=reduce_after_peer_dies, args=(r, port, str(out))) for r in (0, 1)]
    started = time.monotonic()
    for process in ranks:
        process.start()
    for process in ranks:
        process.join(timeout=90)
    assert time.monotonic() - started < 60 and not any(p.is_alive() for p in ranks)
    message = out.read_text()
    assert message.startswith("TrainingError: rank 0 of 2: the process group failed during a training step")
    assert "another training process died or stopped answering" in message


def test_a_process_group_with_more_processes_than_series_is_refused():
    from tsforecast.exceptions import InvalidInputError
    from tsforecast.nn.distributed import Group

    with pytest.raises(InvalidInputError, match="3 series for 4 training processes"):
        Group(0, 4, torch.device("cpu")).shard(3)
    assert Group(1, 3, torch.device("cpu")).shard(8).tolist() == [1, 4, 7]
