"""Helpers of the model-file tests: a tiny fitted LSTM, flipping every bit of a file, reading a saved
model's parts and writing edited ones back.

:func:`write_model_file` seals a file with the whole-file SHA-256 of format 4, computed here from the
rule :mod:`tsforecast.nn.persistence` documents (the hash of the file's bytes with the 64 digits of
``"tsforecast.sha256"`` replaced by zeros), not with the library's writer: a test that edits a
description and re-seals it plays a faulty writer, and these helpers pin the documented rule.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors import safe_open
from safetensors.torch import save

from tsforecast.exceptions import ModelFileError
from tsforecast.nn import LSTMForecaster

KEY, DIGEST_KEY = "tsforecast", "tsforecast.sha256"
ZEROS = b"0" * 64
TINY = dict(horizon=3, season_length=4, hidden_size=4, max_epochs=1, tbptt_steps=8, random_state=0)


def two_series() -> pd.DataFrame:
    """Two hourly series of 40 steps, ``A`` and ``B`` (wide layout)."""
    t = np.arange(40)
    index = pd.date_range("2024-01-01", periods=40, freq="h")
    return pd.DataFrame({"A": 30 + 4 * np.sin(t), "B": 20 + np.cos(t)}, index=index)


def fit_tiny() -> LSTMForecaster:
    """A tiny LSTM fitted on :func:`two_series`."""
    return LSTMForecaster(**TINY).fit(two_series())


def saved_in(model, folder: Path) -> Path:
    """``model`` saved as ``folder/model.safetensors``."""
    path = Path(folder) / "model.safetensors"
    model.save(path)
    return path


def flip_every_bit(path, loader) -> list:
    """Flip each bit of ``path`` in place in turn and load; the outcomes that were not a ModelFileError."""
    raw = path.read_bytes()
    others = []
    fd = os.open(path, os.O_RDWR)
    try:
        for bit in range(8 * len(raw)):
            at = bit // 8
            os.pwrite(fd, bytes([raw[at] ^ (1 << bit % 8)]), at)
            try:
                loader(path)
                others.append((bit, "loaded"))
            except ModelFileError as error:
                if str(path) not in str(error):
                    others.append((bit, f"message without the path: {error}"))
            except Exception as error:  # noqa: BLE001 - any other exception is what the test looks for
                others.append((bit, f"{type(error).__name__}: {error}"))
            os.pwrite(fd, raw[at : at + 1], at)
    finally:
        os.close(fd)
    assert path.read_bytes() == raw
    return others


def read_model_file(path) -> tuple[dict, dict]:
    """The description (a dict) and the tensors of a model file."""
    with safe_open(str(path), framework="pt") as handle:
        document = json.loads(handle.metadata()[KEY])
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118
    return document, tensors


def write_model_file(path, document: dict, tensors: dict, *, seal: bool = True) -> Path:
    """Write a model file; ``seal``: with the whole-file checksum of format 4, else without one."""
    metadata = {KEY: json.dumps(document)}
    if seal:
        metadata[DIGEST_KEY] = ZEROS.decode()
    data = bytearray(save({k: v.contiguous() for k, v in tensors.items()}, metadata=metadata))
    if seal:
        field = b'"' + DIGEST_KEY.encode() + b'":"' + ZEROS + b'"'
        assert data.count(field) == 1
        start = data.index(field) + len(field) - 65
        data[start : start + 64] = hashlib.sha256(data).hexdigest().encode()
    Path(path).write_bytes(bytes(data))
    return Path(path)


def stored_and_computed_digest(path) -> tuple[str, str]:
    """The digest a sealed file holds, and the one the documented rule computes from its bytes."""
    data = bytearray(Path(path).read_bytes())
    prefix = b'"' + DIGEST_KEY.encode() + b'":"'
    start = data.index(prefix) + len(prefix)
    stored = data[start : start + 64].decode()
    data[start : start + 64] = ZEROS
    return stored, hashlib.sha256(data).hexdigest()


def rewrite(path, target, edit, *, seal: bool = True) -> Path:
    """``target``: the model file ``path`` after ``edit(document, tensors)`` (in place), re-sealed."""
    document, tensors = read_model_file(path)
    edit(document, tensors)
    return write_model_file(target, document, tensors, seal=seal)


def as_legacy(document: dict, tensors: dict, fmt: int) -> None:
    """Turn a format-4 description into the one format ``fmt`` (1-3) wrote (no whole-file checksum)."""
    document["format_version"] = fmt
    if fmt < 3:
        document.pop("network")
    if fmt > 1:
        document["checksums"] = {name: _digest(t) for name, t in tensors.items()}


def _digest(tensor: torch.Tensor) -> str:
    raw = tensor.contiguous().reshape(-1).view(torch.uint8)
    return hashlib.sha256(raw.numpy().tobytes()).hexdigest()
