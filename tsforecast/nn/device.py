"""Where the network runs: resolving ``device="auto"`` and the mixed-precision context."""

from __future__ import annotations

import contextlib

import torch

from tsforecast.exceptions import InvalidParameterError

__all__ = ["autocast_for", "resolve_device"]


def resolve_device(device) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; reject unknown or unavailable devices."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise InvalidParameterError(
            f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got {device!r}."
        ) from None
    if resolved.type not in ("cpu", "cuda"):
        raise InvalidParameterError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got {device!r}.")
    if resolved.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (resolved.index or 0) >= count:
            raise InvalidParameterError(
                f"device={device!r} but this machine has {count} CUDA device(s) visible to torch "
                f"(torch {torch.__version__}); use device='cpu' or 'auto'."
            )
    return resolved


def autocast_for(device: torch.device, precision: str):
    """A context-manager factory: bf16 autocast on CUDA for ``precision="bf16"``, else a no-op."""
    if precision == "bf16" and device.type == "cuda":
        return lambda: torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext
