"""Checkpoints through the commands (issue 18): a pipeline killed during its final fit resumes when
the same as-of is rerun (same forecasts as a run never killed, checkpoints gone once it has
published); ``tsforecast fit --checkpoint-dir`` resumes too."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from clitools import cli, cli_env
from faulttools import daily_pipeline

from tsforecast.nn.checkpoint import CHECKPOINT_FILE
from tsforecast.pipelines.models import CHECKPOINTS

AS_OF = "2024-07-18"
LSTM = (
    "{name: lstm, params: {max_epochs: 30, hidden_size: 8, tbptt_steps: 28, batch_size: 2, random_state: 0}}"
)


def _write_daily(path: Path) -> None:
    t = pd.date_range("2024-01-01", AS_OF, freq="D")
    rng = np.random.default_rng(0)
    frames = [
        pd.DataFrame(
            {"unique_id": f"s{i}", "ds": t, "y": 50 + 8 * np.sin(2 * np.pi * np.arange(len(t)) / 7 + i)}
        )
        for i in range(6)
    ]
    frame = pd.concat(frames, ignore_index=True)
    frame["y"] += rng.normal(0, 0.5, len(frame))
    frame.to_csv(path, index=False)


def _folder(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    _write_daily(folder / "sales.csv")
    (folder / "pipeline.yaml").write_text(daily_pipeline(model=LSTM, gate="{metric: mase, margin: 1000}"))
    return folder


def test_a_killed_final_fit_resumes_when_the_same_as_of_is_rerun(tmp_path):
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    killed = _folder(tmp_path, "killed")
    command = [sys.executable, "-m", "tsforecast.cli", "run", "pipeline.yaml", "--as-of", AS_OF]
    process = subprocess.Popen(
        command, cwd=killed, env=cli_env(store), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    checkpoints = killed / "outputs" / CHECKPOINTS / AS_OF / "lstm"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        try:
            (checkpoint,) = checkpoints.glob(f"*/{CHECKPOINT_FILE}")  # in a folder named after the fit
            epoch = torch.load(checkpoint, weights_only=True)["loop"]["epoch"]
        except (ValueError, FileNotFoundError):
            epoch = 0
        if epoch >= 2:
            os.kill(process.pid, signal.SIGKILL)
            break
        time.sleep(0.02)
    assert process.wait(timeout=60) == -signal.SIGKILL, process.stdout.read().decode()[-2000:]
    assert not (killed / "outputs" / AS_OF).exists()  # nothing published by the killed run

    rerun = cli("run", "pipeline.yaml", "--as-of", AS_OF, cwd=killed, store=store, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "resuming training from the checkpoint" in rerun.stderr
    assert not (killed / "outputs" / CHECKPOINTS).exists()  # a completed run leaves no checkpoint
    plain = _folder(tmp_path, "plain")
    reference = cli("run", "pipeline.yaml", "--as-of", AS_OF, cwd=plain, store=store, timeout=300)
    assert reference.returncode == 0, reference.stderr[-2000:]
    for name in ("forecasts.csv",):
        resumed = (killed / "outputs" / AS_OF / name).read_bytes()
        assert resumed == (plain / "outputs" / AS_OF / name).read_bytes(), name


def test_fit_command_resumes_from_its_checkpoint_dir(tmp_path):
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    _write_daily(tmp_path / "sales.csv")
    fit = [
        "fit",
        "sales.csv",
        "--model",
        "lstm",
        "--horizon",
        "7",
        "--season-length",
        "7",
        "-p",
        "max_epochs=3",
    ]
    fit += ["-p", "hidden_size=8", "--checkpoint-dir", "ckpt", "--forecast-output"]
    first = cli(*fit, "a.csv", "--output", "a.safetensors", cwd=tmp_path, store=store)
    assert first.returncode == 0, first.stderr[-2000:]
    assert (tmp_path / "ckpt" / CHECKPOINT_FILE).exists()
    again = cli(*fit, "b.csv", "--output", "b.safetensors", cwd=tmp_path, store=store)
    assert again.returncode == 0 and "resuming training from the checkpoint" in again.stderr
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    baseline = cli("fit", "sales.csv", "--model", "naive", "--horizon", "7", "--output", "n.joblib",
                   "--checkpoint-dir", "ckpt", cwd=tmp_path, store=store)  # fmt: skip
    assert baseline.returncode == 2 and "--checkpoint-dir: naive trains no network" in baseline.stderr
