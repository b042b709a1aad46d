"""Helpers of the model-file tests: read a saved model's parts and write edited ones back.

:func:`write_model_file` seals a file with the whole-file SHA-256 of format 4, computed here from the
rule :mod:`tsforecast.nn.persistence` documents (the hash of the file's bytes with the 64 digits of
``"tsforecast.sha256"`` replaced by zeros), not with the library's writer: a test that edits a
description and re-seals it plays a faulty writer, and these helpers pin the documented rule.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save

KEY, DIGEST_KEY = "tsforecast", "tsforecast.sha256"
ZEROS = b"0" * 64


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
