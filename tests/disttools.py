"""Helpers of the data-parallel tests: a small panel and what each training process runs.

Run by ``torch.multiprocessing.spawn`` (:func:`train_rank`) or as a script under ``torchrun``
(``python tests/disttools.py OUT [--die-at-epoch E]``), so it imports nothing from the test modules.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd

SETTINGS = dict(horizon=6, season_length=12, hidden_size=8, max_epochs=6, tbptt_steps=24, random_state=0)
SETTINGS |= dict(device="cpu", learning_rate=0.01, validation_size=12)


def panel(n_series: int = 12, seed: int = 0) -> pd.DataFrame:
    """Seasonal series of different lengths (80 to 200 steps), long layout."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n_series):
        length = int(rng.integers(80, 200))
        t = np.arange(length)
        y = 50 + 10 * np.sin(2 * np.pi * t / 12 + i) + 0.05 * i * t + rng.normal(0, 1, length)
        frames.append(pd.DataFrame({"unique_id": f"s{i:02d}", "ds": t, "y": y}))
    return pd.concat(frames, ignore_index=True)


def fit_and_write(out: Path, batch_size: int, die_at_epoch: int | None = None, checkpoint_dir=None) -> None:
    """Fit the LSTM on :func:`panel`; rank 0 (or a lone process) writes the model, history and scales.

    ``die_at_epoch``: rank 1 kills itself (SIGKILL) at the end of that epoch.
    """
    import torch
    import torch.distributed as dist

    from tsforecast import LSTMForecaster

    torch.set_num_threads(1)
    rank = dist.get_rank() if dist.is_initialized() else 0

    def die(estimator, record):
        if die_at_epoch is not None and rank == 1 and record.epoch == die_at_epoch:
            os.kill(os.getpid(), signal.SIGKILL)

    extra = {} if checkpoint_dir is None else {"checkpoint_dir": checkpoint_dir, "checkpoint_every": 1e-9}
    model = LSTMForecaster(**SETTINGS, batch_size=batch_size, callbacks=[die], **extra).fit(panel())
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        model.save(out / "model.safetensors")
        model.history_.to_csv(out / "history.csv", index=False)
        model.predict().to_csv(out / "forecasts.csv", index=False)
        scales = model.codec_.scales
        (out / "scales.json").write_text(json.dumps([scales.features.tolist(), float(scales.target)]))
        weights = torch.cat([p.detach().ravel() for p in model.network_.parameters()])
        np.save(out / "weights.npy", weights.numpy())


def train_rank(rank: int, world_size: int, port: int, out: str, batch_size: int) -> None:
    """One process of a ``torch.multiprocessing.spawn`` job: join the gloo group, fit, leave."""
    import torch.distributed as dist

    dist.init_process_group(
        "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=world_size,
        timeout=timedelta(seconds=60),
    )
    try:
        fit_and_write(Path(out), batch_size)
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":  # under torchrun: python tests/disttools.py OUT BATCH [DIE_AT_EPOCH [CHECKPOINTS]]
    from tsforecast.nn.distributed import init_from_environment

    init_from_environment("cpu", timeout_seconds=60)
    die_at = int(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[3] != "-" else None
    fit_and_write(Path(sys.argv[1]), int(sys.argv[2]), die_at, sys.argv[4] if len(sys.argv) > 4 else None)


def reduce_after_peer_dies(rank: int, port: int, out: str) -> None:
    """Rank 1 dies (SIGKILL) once the group stands; rank 0 then reduces and writes what it raised."""
    import time

    import torch
    import torch.distributed as dist

    from tsforecast.nn.distributed import current_group

    wait = timedelta(seconds=20)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2, timeout=wait
    )
    if rank == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(1.0)
    try:
        current_group().reduce(torch.ones(3), what="a training step")
        Path(out).write_text("no error")
    except Exception as error:  # what a training process would show
        Path(out).write_text(f"{type(error).__name__}: {error}")
