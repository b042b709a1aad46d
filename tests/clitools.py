"""Helpers of the end-to-end CLI and pipeline tests: small real data and the command in a subprocess.

The data are the first M4 Hourly series (read from ``$TSFORECAST_M4_DIR``, default
``../shared/data/m4`` next to the repository), given hourly time stamps so that ``--as-of`` cuts them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
M4_DIR = Path(os.environ.get("TSFORECAST_M4_DIR", REPO.parent / "shared" / "data" / "m4"))
requires_m4 = pytest.mark.skipif(
    not (M4_DIR / "Hourly-train.csv").is_file(), reason=f"M4 Hourly files not found in {M4_DIR}"
)
START = pd.Timestamp("2024-01-01")


def m4_hourly_csv(path: Path, n_series: int = 6, length: int = 360) -> Path:
    """The last ``length`` hours of the first ``n_series`` M4 Hourly series as a long CSV."""
    wide = pd.read_csv(M4_DIR / "Hourly-train.csv", nrows=n_series)
    frames = []
    for _, row in wide.iterrows():
        values = row.iloc[1:].dropna().to_numpy(dtype=np.float64)[-length:]
        ds = pd.date_range(START, periods=len(values), freq="h")
        frames.append(pd.DataFrame({"unique_id": row.iloc[0], "ds": ds, "y": values}))
    pd.concat(frames, ignore_index=True).to_csv(path, index=False)
    return path


def store_uri(tmp_path_factory) -> str:
    """One throw-away SQLite MLflow store for the whole session (creating one takes seconds)."""
    return f"sqlite:///{(tmp_path_factory.getbasetemp() / 'mlflow.db').as_posix()}"


def cli_env(store: str) -> dict:
    """One torch thread, and MLflow in the store ``store`` (never the repository's)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", MLFLOW_TRACKING_URI=store)
    return env


def cli(*args, cwd: Path, store: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m tsforecast.cli ARGS`` in ``cwd``; text output captured."""
    command = [sys.executable, "-m", "tsforecast.cli", *map(str, args)]
    return subprocess.run(
        command, cwd=cwd, env=cli_env(store), capture_output=True, text=True, timeout=timeout, check=False
    )


def cli_together(*commands, cwd: Path, store: str, timeout: float = 180) -> list:
    """Several independent commands at once (each a tuple of arguments), in the order given."""
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "tsforecast.cli", *map(str, args)],
            cwd=cwd,
            env=cli_env(store),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for args in commands
    ]
    results = []
    for process in processes:
        out, err = process.communicate(timeout=timeout)
        results.append(subprocess.CompletedProcess(process.args, process.returncode, out, err))
    return results


def tree_bytes(folder: Path, skip=()) -> dict:
    """File name -> bytes of a folder's files (for comparing two runs' outputs)."""
    return {p.name: p.read_bytes() for p in sorted(Path(folder).iterdir()) if p.name not in skip}


def main_in_process(*args) -> int:
    """``tsforecast.cli.main(args)`` in this process; the test session's logging and signals are kept.

    Faster than a subprocess once torch and mlflow are imported, and monkeypatch reaches inside.
    """
    import logging
    import signal

    from tsforecast.cli import main

    root, package = logging.getLogger(), logging.getLogger("tsforecast")
    handlers, levels = root.handlers[:], (root.level, package.level)
    sigterm = signal.getsignal(signal.SIGTERM)
    try:
        return main([str(a) for a in args])
    finally:
        root.handlers[:] = handlers
        root.setLevel(levels[0])
        package.setLevel(levels[1])
        logging.captureWarnings(False)
        signal.signal(signal.SIGTERM, sigterm)
