"""Data, settings and a silent server shared by ``test_faults.py`` and the module tests beside it.

Each part serves one item of issue 15 and the module tests that go deeper into it: the divergence
rule (``test_nn_divergence.py``), the tracking pre-flight (``test_tracking_store.py``), study settings
and storages (``test_tuning_settings.py``), staleness (``test_pipelines_staleness.py``). The helpers of
the model-file tests are in ``modelfiles.py``.
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import numpy as np
import pandas as pd

from tsforecast.tracking import store

# -- item 1: diverged training ----------------------------------------------------------------------
LSTM_TINY = dict(horizon=12, season_length=24, hidden_size=8, max_epochs=3, tbptt_steps=48, random_state=0)


def around_ten(n=240) -> pd.DataFrame:
    """Two hourly series around 10 with a daily cycle and a little noise (wide layout)."""
    t = np.arange(n)
    noise = np.random.default_rng(0).normal(0, 0.1, (n, 2))
    values = 10 + np.stack([np.sin(2 * np.pi * t / 24), np.cos(2 * np.pi * t / 24)], 1) + noise
    return pd.DataFrame(values, columns=["a", "b"], index=pd.date_range("2024-01-01", periods=n, freq="h"))


# -- item 2: a tracking server that accepts connections and never answers --------------------------
class SilentServer:
    """Accepts TCP connections on 127.0.0.1 and never answers; counts the connections."""

    def __init__(self):
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.uri = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        self.connections = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:  # closed
                return
            self.connections.append(connection)

    def close(self):
        self.socket.close()
        for connection in self.connections:
            connection.close()


def without_mlflow_settings(folder: Path, monkeypatch) -> Path:
    """``folder`` as the working directory, without the user's MLflow store or pre-flight limits."""
    monkeypatch.chdir(folder)
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", *store.PREFLIGHT_LIMITS):
        monkeypatch.delenv(name, raising=False)
    return folder


# -- item 3 and 4: tiny tuning jobs ----------------------------------------------------------------
TUNE_TINY = dict(horizon=6, season_length=12, max_epochs=1, batch_size=8, tbptt_steps=24, patience=None)
TUNE_TINY |= dict(device="cpu", random_state=0, hidden_size=4)
TUNE_QUICK = dict(pruner="none", baselines=None, include_default=False, refit=False, validation=1)


def tune_cli_config(**changes) -> dict:
    """A ``tsforecast tune --config`` file's settings: a one-parameter space (``clip_norm``), no
    baselines, one validation window, one epoch per trial; each keyword replaces a setting."""
    config = {
        "model": "lstm",
        "horizon": 6,
        "season_length": 12,
        "n_windows": 1,
        "baselines": "none",
        "include_default": False,
        "pruner": "none",
        "params": {"max_epochs": 1, "batch_size": 8, "tbptt_steps": 24, "device": "cpu"},
        "search_space": {"clip_norm": {"type": "float", "low": 0.1, "high": 10, "log": True}},
        "quiet": True,
    }
    return config | changes


def clip_space() -> dict:
    """A one-parameter search space (optuna is imported here: the tuning extra is optional)."""
    from optuna.distributions import FloatDistribution

    return {"clip_norm": FloatDistribution(0.1, 10.0, log=True)}


def tuning_panel(n_series=2, length=72) -> pd.DataFrame:
    """``n_series`` noisy sines of period 12 around 20 (long layout, integer time stamps)."""
    rng = np.random.default_rng(0)
    t = np.arange(length)
    frames = [
        pd.DataFrame({"unique_id": f"s{i}", "ds": t, "y": 20 + 5 * np.sin(2 * np.pi * t / 12 + i)})
        for i in range(n_series)
    ]
    frame = pd.concat(frames, ignore_index=True)
    frame["y"] += rng.normal(0, 0.3, len(frame))
    return frame


# -- item 6: a daily pipeline ----------------------------------------------------------------------
DAILY_SECTIONS = {
    "name": "faults",
    "data": "{path: sales.csv, freq: D}",
    "forecast": "{horizon: 7, season_length: 7}",
    "model": "{name: snaive}",
    "baselines": "[naive]",
    "backtest": "{n_windows: 1}",
    "gate": "{metric: mase, margin: 10}",
    "outputs": "{dir: outputs, format: csv}",
    "tracking": "{enabled: false}",
}


def daily_pipeline(**sections: str | None) -> str:
    """The YAML text of a daily pipeline on ``sales.csv``; each keyword replaces that section's text
    (YAML flow style, written as a user would type it), ``None`` leaves the section out."""
    merged = DAILY_SECTIONS | sections
    return "".join(f"{key}: {text}\n" for key, text in merged.items() if text is not None)


DAILY_PIPELINE = daily_pipeline()
