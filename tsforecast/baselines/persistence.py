r"""Model files of the forecasters without a format of their own (the baselines): joblib, checksummed.

:func:`dump` writes the joblib pickle followed by one trailer line,
``b"\n#tsforecast-sha256:" + <64 hex digits> + b"\n"``: the SHA-256 of every byte before it.
Unpickling stops at the pickle's end, so ``joblib.load`` still reads such a file as it is; and
:func:`load` checks the digest before it unpickles anything, so a changed byte anywhere (a flipped
bit in a parameter, a state array, the trailer itself) is a
:class:`~tsforecast.exceptions.ModelFileError` naming the file, never a silently different model.

A file without the trailer (written before it existed, or by ``joblib.dump`` directly) loads with a
:class:`~tsforecast.exceptions.TsforecastWarning` when it ends as a plain pickle does (``b"."``, the
STOP opcode), since nothing can tell whether it was damaged; re-save it with :func:`dump` to protect
it. A damaged trailer never passes for a missing one: the trailer ends with ``b"\n"``, which no
single flipped bit turns into ``b"."``.

The checksum detects damage, not tampering: a pickle runs code when it is loaded, so load model
files only from places you trust.
"""

from __future__ import annotations

import hashlib
import io
import re
import warnings
from pathlib import Path

from tsforecast.data.io import write_bytes
from tsforecast.exceptions import ModelFileError, TsforecastWarning

__all__ = ["dump", "load"]

_PREFIX = b"\n#tsforecast-sha256:"
_TRAILER = re.compile(rb"\n#tsforecast-sha256:([0-9a-f]{64})\n\Z")
_TRAILER_SIZE = len(_PREFIX) + 64 + 1


def dump(estimator, path) -> Path:
    """Pickle ``estimator`` to ``path`` with joblib, a SHA-256 trailer after it, atomically.

    A missing folder is created; one that cannot be created or written to is an
    :class:`~tsforecast.exceptions.InvalidParameterError` naming it. Nothing is written on failure.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from tsforecast.baselines import SeasonalNaive
    >>> model = SeasonalNaive(horizon=2, season_length=2).fit(np.array([1.0, 2.0, 1.0, 2.0]))
    >>> path = dump(model, os.path.join(tempfile.mkdtemp(), "snaive.joblib"))
    >>> load(path).predict().tolist()
    [1.0, 2.0]
    """
    import joblib

    buffer = io.BytesIO()
    joblib.dump(estimator, buffer)
    payload = buffer.getvalue()
    data = payload + _PREFIX + hashlib.sha256(payload).hexdigest().encode() + b"\n"
    return write_bytes(data, path)  # atomic; InvalidParameterError naming an unusable location


def load(path):
    """The estimator in a file written by :func:`dump` (or, with a warning, by ``joblib.dump``).

    Raises
    ------
    ModelFileError
        The file is missing, its bytes no longer match the checksum, or it cannot be unpickled.
    """
    import joblib

    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise ModelFileError(f"{path}: cannot read the model file ({error.strerror or error}).") from None
    if match := _TRAILER.search(raw, len(raw) - _TRAILER_SIZE if len(raw) > _TRAILER_SIZE else 0):
        payload = raw[: match.start()]
        if hashlib.sha256(payload).hexdigest().encode() != match.group(1):
            raise ModelFileError(
                f"{path} is corrupted: its bytes no longer match the SHA-256 checksum written when the model "
                "was saved (changed on disk or in transfer). Restore it from a good copy or fit it again."
            )
    elif raw.endswith(b"."):
        payload = raw
        warnings.warn(
            f"{path} has no tsforecast checksum (written by an older tsforecast or by joblib.dump), so "
            "damage to it cannot be detected; it was loaded as is. Save it again to protect it: "
            "tsforecast.pipelines.models.save_model(model, path).",
            TsforecastWarning,
            stacklevel=2,
        )
    else:
        raise ModelFileError(
            f"{path} is corrupted or not a tsforecast joblib model: it ends neither with the SHA-256 "
            "trailer tsforecast writes nor as a plain pickle. Restore it from a good copy or fit it again."
        )
    try:
        return joblib.load(io.BytesIO(payload))
    except Exception as error:  # unpickling raises whatever the damaged stream makes it raise
        raise ModelFileError(
            f"{path} is not a usable joblib model: {type(error).__name__}: {error}"
        ) from None
