"""Save and load fitted recurrent forecasters: one safetensors file, no pickle, checksummed as a whole.

The file holds the network weights (CPU tensors, so a model trained on a GPU loads anywhere), the
training panel's values, the per-series scaler statistics and the global feature scales as tensors,
and in the safetensors metadata one JSON document with the rest (key ``"tsforecast"``): format and
package versions, the estimator class and parameters, the network's configuration, the feature
layout, the series ids, the time index of every series (start, frequency), the input layout and the
per-epoch training history. Its schema is :class:`~tsforecast.nn.model_schema.ModelDocument`.

**Covariates (format 5).** A model fitted with covariates also holds their roles and the categories
of each categorical column (key ``"covariates"``), the network's covariate inputs (in ``"network"``)
and the mean and standard deviation of each numeric covariate as the tensors ``covariates.center``
and ``covariates.scale``; such a file is format 5, which tsforecast versions before covariates refuse
by its number. A model without covariates is written in format 4, as before.

**The checksum (format 4).** The metadata key ``"tsforecast.sha256"`` holds the SHA-256 of the whole
file's bytes (length prefix, JSON header, metadata, tensor data) computed with those 64 hex digits
replaced by 64 ASCII zeros. To verify a file by hand: read it, replace the digest's 64 characters by
``0``, hash, compare. :func:`read` does that before it parses anything else, so any change to the
bytes (a flipped bit in a date, a series id, a scaler name, a weight, the header) is refused with
:class:`~tsforecast.exceptions.ModelFileError` at load, naming the file. The description is then
checked against its schema and the tensors against the description (types, allowed values,
consistent sizes, finite weights), so a file written by a faulty program is refused at load too,
with the field that is wrong. The checksum detects damage, not tampering: anyone can recompute it.

**Older files.** Formats 1-3 (tsforecast before this format) still load, with a
:class:`~tsforecast.exceptions.TsforecastWarning` saying what is not protected: format 2 and 3
checksum each tensor, not the description; format 1 checksums nothing. They pass the same schema
and tensor checks. Re-save one to protect it: ``tsforecast.load(path).save(path)``.

**Writing.** :func:`save` refuses a network with NaN or infinite weights
(:class:`~tsforecast.exceptions.TrainingError`, naming the tensor) and checks the description
against the schema before writing anything; it writes a temporary file in the target folder and
renames it over ``path``, so a failed save leaves any existing file as it was. A missing folder is
created; one that cannot be created or written to is an
:class:`~tsforecast.exceptions.InvalidParameterError` (the command's exit code 2) naming the folder.

:func:`read` gives the class name, the parameters and the :class:`~tsforecast.nn.state.FittedState`
back; :func:`tsforecast.nn.estimators.load` builds the estimator from them. This module knows no
estimator class, so it imports nothing above the codec.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import warnings
from dataclasses import asdict, astuple, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_tensors
from safetensors.torch import save as serialize

import tsforecast
from tsforecast.data import Columns, Layout, Panel
from tsforecast.data.io import write_bytes
from tsforecast.epochs import EpochRecord, history_frame
from tsforecast.exceptions import (
    InvalidInputError,
    ModelFileError,
    TrainingError,
    TsforecastWarning,
)
from tsforecast.nn.codec import PanelCodec
from tsforecast.nn.covariates import CovariateCodec
from tsforecast.nn.model_schema import (
    FORMATS,
    ModelDocument,
    ValidationError,
    check_tensors,
    describe,
    validate,
)
from tsforecast.nn.modules import NetworkConfig
from tsforecast.nn.state import FittedState
from tsforecast.nn.streams import Scales
from tsforecast.scaling import SeriesScaler

# 2: per-tensor SHA-256; 3: the network's configuration; 4: one SHA-256 of the whole file; 5: covariates
FORMAT_VERSION = 5
_WITHOUT_COVARIATES = 4  # the format of a model without covariates: older versions read it
_KEY = "tsforecast"
_DIGEST_KEY = "tsforecast.sha256"
_PLACEHOLDER = b"0" * 64
# The digest as the safetensors header spells it (compact JSON); an escaped copy inside the
# description's string cannot match, since its quotes are preceded by a backslash.
_DIGEST_FIELD = re.compile(rb'"tsforecast\.sha256":"([0-9a-f]{64})"')
_COVARIATE_FIELDS = ("embeddings", "future_steps", "future_size", "future_codes")  # of NetworkConfig
_RESAVE = "Restore the file from a good copy, or save the model again with est.save(path)."

__all__ = ["FORMAT_VERSION", "SavedModel", "read", "save"]


@dataclass(frozen=True)
class SavedModel:
    """What a model file holds: the estimator's class name, its parameters and its fitted state."""

    class_name: str
    params: dict
    state: FittedState


def save(estimator, path) -> None:
    """Write a fitted recurrent forecaster to ``path``, atomically.

    Parameters
    ----------
    estimator : LSTMForecaster, GRUForecaster or RNNForecaster
        Fitted.
    path : str or Path
        The file; a missing folder is created.

    Raises
    ------
    TrainingError
        A weight or statistic of the network is NaN or infinite (training diverged); nothing is written.
    InvalidParameterError
        The folder cannot be created or written to (permissions, a file in the way, ``path`` is a
        folder); nothing is written.
    InvalidInputError
        Something the file must hold is not a JSON value of the schema (a series id that is a tuple).

    Examples
    --------
    >>> import numpy as np, pandas as pd, tempfile, os, tsforecast
    >>> y = pd.Series(10 + np.sin(np.arange(80) / 2), index=pd.RangeIndex(80))
    >>> model = tsforecast.LSTMForecaster(horizon=4, season_length=6, hidden_size=4, max_epochs=1,
    ...                                   tbptt_steps=16, random_state=0).fit(y)
    >>> path = os.path.join(tempfile.mkdtemp(), "model.safetensors")
    >>> model.save(path)
    >>> bool((tsforecast.load(path).predict() == model.predict()).all())
    True
    """
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator, "training_panel_")
    panel, codec = estimator.training_panel_, estimator.codec_
    tensors = {
        f"network.{k}": v.detach().cpu().contiguous() for k, v in estimator.network_.state_dict().items()
    }
    _refuse_non_finite(tensors, path)
    tensors.update(
        {
            "panel.values": torch.from_numpy(np.concatenate(panel.values).astype(np.float64)),
            "panel.lengths": torch.from_numpy(np.asarray(panel.lengths, dtype=np.int64)),
            "scaler.center": torch.from_numpy(codec.scaler.center),
            "scaler.scale": torch.from_numpy(codec.scaler.scale),
            "scales.features": codec.scales.features.detach().cpu().contiguous(),
            "scales.target": codec.scales.target.detach().cpu().reshape(1),
        }
    )
    params = {k: v for k, v in estimator.get_params(deep=False).items() if k != "callbacks"}
    if params.get("checkpoint_dir") is not None:  # a path-like folder: its text
        params["checkpoint_dir"] = os.fspath(params["checkpoint_dir"])
    if isinstance(params.get("device"), torch.device):
        params["device"] = str(params["device"])
    network, covariates = asdict(estimator.network_.config), codec.covariates
    if covariates is None:  # format 4 has no covariate inputs
        network = {k: v for k, v in network.items() if k not in _COVARIATE_FIELDS}
    else:
        tensors["covariates.center"] = torch.from_numpy(np.asarray(covariates.center, np.float64))
        tensors["covariates.scale"] = torch.from_numpy(np.asarray(covariates.scale, np.float64))
    document = {
        "format_version": _WITHOUT_COVARIATES if covariates is None else FORMAT_VERSION,
        "package_version": tsforecast.__version__,
        "class": type(estimator).__name__,
        "params": _jsonable(params, "parameters"),
        "network": _jsonable(network, "network configuration"),
        "spec": list(astuple(codec.spec)),  # season_length, long_season_length, horizon
        "quantile_levels": list(estimator.quantile_levels_),
        "scaler_kind": codec.scaler.kind,
        "horizon": estimator.horizon_,
        "ids": _jsonable(list(panel.ids), "series ids"),
        "index": _index_state(panel),
        "layout": _layout_state(panel.layout),
        "training_history": json.loads(estimator.history_.to_json(orient="records")),
    }
    if covariates is not None:
        document["covariates"] = _jsonable(covariates.state(), "covariate categories")
    try:
        problems = check_tensors(validate(document), tensors)
    except ValidationError as error:
        problems = [describe(error)]
    if problems:
        non_finite = [p for p in problems if "NaN or infinite" in p]
        raise (TrainingError if non_finite else InvalidInputError)(
            f"cannot save the model to {path}: {'; '.join(problems[:3])}. Nothing was written."
        )
    write_bytes(_sealed(tensors, json.dumps(document)), path)  # atomic; InvalidParameterError if unusable


def read(path, device) -> SavedModel:
    """Read and verify a model file written by :func:`save`; the network goes to ``device``.

    Raises
    ------
    ModelFileError
        The file is missing, corrupted (bytes that no longer match its checksum), not a tsforecast
        model, written by an incompatible version, or its description breaks the schema.
    """
    raw = _raw(path)
    checked = _verify(raw, path)
    metadata, tensors = _contents(raw, path)
    try:
        document = json.loads(metadata[_KEY])
    except json.JSONDecodeError as error:
        raise ModelFileError(f"{path}: the model description is corrupted ({error}). {_RESAVE}") from None
    if not isinstance(document, dict):
        raise ModelFileError(f"{path}: the model description is not a JSON object. {_RESAVE}")
    _check_version(document, path)
    fmt = document["format_version"]
    if not checked and fmt >= 4:
        raise ModelFileError(
            f"{path} is corrupted: a format-{fmt} model file carries its SHA-256 checksum in the metadata "
            f"key {_DIGEST_KEY!r}, and this one has none (damaged, or written by another program). {_RESAVE}"
        )
    if not checked:
        _warn_legacy(fmt, document.get("package_version"), path)
        _check_legacy_checksums(document, tensors, path)
    try:
        doc = validate(document)
    except ValidationError as error:
        raise ModelFileError(
            f"{path} is not a usable tsforecast model: its description breaks the model-file schema: "
            f"{describe(error)}. The file was written by a faulty program or edited after saving. {_RESAVE}"
        ) from None
    if problems := check_tensors(doc, tensors):
        raise ModelFileError(
            f"{path} is not a usable tsforecast model: {'; '.join(problems[:3])}. "
            f"The file was written by a faulty program or edited after saving. {_RESAVE}"
        )
    try:
        params = dict(doc.params)
        if isinstance(params.get("quantiles"), list):
            params["quantiles"] = tuple(params["quantiles"])
        spec, levels = doc.feature_spec, tuple(doc.quantile_levels)
        network = _network_config(doc, params).build()
        weights = {k[len("network.") :]: v for k, v in tensors.items() if k.startswith("network.")}
        network.load_state_dict(weights, strict=True)
        panel = _panel(doc, tensors)
        scaler = SeriesScaler(
            doc.scaler_kind, tensors["scaler.center"].numpy(), tensors["scaler.scale"].numpy()
        )
        scales = Scales(tensors["scales.features"].to(device), tensors["scales.target"][0].to(device))
        covariates = None
        if doc.covariates is not None:
            center, scale = (tensors[f"covariates.{k}"].numpy() for k in ("center", "scale"))
            covariates = CovariateCodec.from_state(doc.covariates.model_dump(), center, scale)
        records = [EpochRecord.from_dict(row.model_dump()) for row in doc.training_history]
        state = FittedState(
            network.to(device).eval(),
            PanelCodec(spec, scaler, list(panel.ids), scales, covariates),
            levels,
            doc.horizon,
            history_frame(records),
            panel,
        )
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError, OverflowError) as error:
        raise ModelFileError(f"{path} is not a usable tsforecast model: {error}") from None
    return SavedModel(doc.class_name, params, state)


def _refuse_non_finite(weights: dict, path) -> None:
    for name, tensor in weights.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise TrainingError(
                f"cannot save the model to {path}: its parameter tensor {name!r} holds NaN or infinite "
                "values, so training diverged and the network forecasts garbage. Nothing was written. Refit "
                "with a lower learning_rate or weight_decay, or with clip_norm set."
            )


def _sealed(tensors: dict, description: str) -> bytes:
    """The file's bytes, with the SHA-256 of the whole file in the metadata."""
    data = bytearray(serialize(tensors, metadata={_KEY: description, _DIGEST_KEY: _PLACEHOLDER.decode()}))
    start, end = _digest_span(bytes(data))
    data[start:end] = hashlib.sha256(data).hexdigest().encode()
    return bytes(data)


def _digest_span(raw: bytes) -> tuple | None:
    """Where the digest's 64 hex digits lie in the header; None without one (or with several)."""
    size = int.from_bytes(raw[:8], "little")
    found = list(_DIGEST_FIELD.finditer(raw, 8, 8 + size))
    return found[0].span(1) if len(found) == 1 else None


def _raw(path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise ModelFileError(
            f"cannot read {path} as a saved tsforecast model ({type(error).__name__}: "
            f"{error.strerror or error}); the file is missing or unreadable."
        ) from None


def _verify(raw: bytes, path) -> bool:
    """Check the whole-file SHA-256 when the file has one; whether it had one."""
    size = int.from_bytes(raw[:8], "little") if len(raw) >= 8 else -1
    if not 2 <= size <= len(raw) - 8:
        raise ModelFileError(
            f"cannot read {path} as a saved tsforecast model: its header length ({size} bytes) does not fit "
            f"the file's {len(raw)} bytes; the file is truncated or corrupted. {_RESAVE}"
        )
    span = _digest_span(raw)
    if span is None:
        return False
    digest = hashlib.sha256()
    digest.update(memoryview(raw)[: span[0]])
    digest.update(_PLACEHOLDER)
    digest.update(memoryview(raw)[span[1] :])
    if digest.hexdigest().encode() != raw[span[0] : span[1]]:
        raise ModelFileError(
            f"{path} is corrupted: its bytes no longer match the SHA-256 checksum written when the model was "
            f"saved (changed on disk or in transfer). {_RESAVE}"
        )
    return True


def _contents(raw: bytes, path) -> tuple:
    """The metadata and the tensors (from the bytes already read: what was verified is what is used)."""
    try:
        header = json.loads(raw[8 : 8 + int.from_bytes(raw[:8], "little")])
        tensors = load_tensors(raw)
    except (SafetensorError, ValueError, RuntimeError, UnicodeDecodeError) as error:
        raise ModelFileError(
            f"cannot read {path} as a saved tsforecast model ({type(error).__name__}: {error}); the file "
            f"is truncated or corrupted. {_RESAVE}"
        ) from None
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(metadata, dict) or not isinstance(metadata.get(_KEY), str):
        raise ModelFileError(
            f"{path} is a safetensors file but not a tsforecast model (no '{_KEY}' metadata)."
        )
    return metadata, tensors


def _check_version(document: dict, path) -> None:
    fmt, saved = document.get("format_version"), str(document.get("package_version", "?"))
    current = tsforecast.__version__
    if isinstance(fmt, bool) or fmt not in FORMATS:
        raise ModelFileError(
            f"{path} uses model format {fmt!r} (tsforecast {saved}); this tsforecast {current} reads formats "
            f"{list(FORMATS)}. Load it with tsforecast {saved}, or retrain and save it again."
        )
    if _major_minor(saved) > _major_minor(current) or _major_minor(saved)[0] != _major_minor(current)[0]:
        raise ModelFileError(
            f"{path} was saved by tsforecast {saved}, which is incompatible with this tsforecast {current} "
            "(a different major version, or a newer release). Install the matching version or retrain."
        )


def _warn_legacy(fmt: int, saved, path) -> None:
    unprotected = "its description (dates, series ids, scaler, ...)" if fmt > 1 else "nothing in it"
    protected = "checksums its tensors but not" if fmt > 1 else "checksums"
    warnings.warn(
        f"{path} is a format-{fmt} model file (tsforecast {saved}), which {protected} {unprotected}: damage "
        "there may go unnoticed. It was loaded after the schema checks. Re-save it in the current format "
        "(one checksum over the whole file): tsforecast.load(path).save(path).",
        TsforecastWarning,
        stacklevel=4,
    )


def _check_legacy_checksums(document: dict, tensors: dict, path) -> None:
    """Formats 2 and 3: a SHA-256 per tensor."""
    checksums = document.get("checksums")
    if document["format_version"] == 1:
        return
    if not isinstance(checksums, dict):
        raise ModelFileError(f"{path} is not a usable tsforecast model: it has no tensor checksums.")
    if missing := sorted(set(checksums) - set(tensors)):
        raise ModelFileError(
            f"{path} is not a usable tsforecast model: tensor(s) {missing[:5]} listed when it was saved "
            f"are missing (the file was edited or damaged). {_RESAVE}"
        )
    if changed := sorted(name for name, t in tensors.items() if checksums.get(name) != _digest(t)):
        raise ModelFileError(
            f"{path} is corrupted: the data of tensor(s) {changed[:5]} no longer match the SHA-256 "
            f"checksums written when the model was saved (bytes changed on disk or in transfer). {_RESAVE}"
        )


def _network_config(doc: ModelDocument, params: dict) -> NetworkConfig:
    """The saved network configuration (format 3 on), or the one the parameters imply (formats 1, 2)."""
    if doc.network is not None:
        return NetworkConfig(**doc.network.model_dump())
    cell = {"LSTMForecaster": "lstm", "GRUForecaster": "gru", "RNNForecaster": "rnn"}[doc.class_name]
    spec = doc.feature_spec
    return NetworkConfig(
        cell,
        spec.n_features,
        int(params.get("hidden_size", 64)),
        int(params.get("num_layers", 2)),
        spec.horizon * len(doc.quantile_levels),
        float(params.get("dropout", 0.0)),
        bool(params.get("residual", False)),
    )


def _digest(tensor: torch.Tensor) -> str:
    """SHA-256 of a tensor's raw bytes (any dtype)."""
    raw = tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8)
    return hashlib.sha256(raw.numpy().tobytes()).hexdigest()


def _major_minor(version: str) -> tuple:
    try:
        return tuple(int(part) for part in version.split(".")[:2])
    except ValueError:
        return (math.inf, math.inf)


def _jsonable(value, what: str):
    try:
        return json.loads(json.dumps(value, default=_default))
    except TypeError as error:
        raise InvalidInputError(f"cannot save the model: its {what} are not JSON values ({error}).") from None


def _default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} {value!r}")


def _index_state(panel: Panel) -> dict:
    freq = panel.freq
    first = panel.index[0]
    if isinstance(first, pd.DatetimeIndex):
        return {
            "kind": "datetime",
            "freq": freq.freqstr,
            "tz": str(first.tz) if first.tz else None,
            "starts": [str(ix[0].tz_localize(None)) for ix in panel.index],
        }
    if isinstance(first, pd.PeriodIndex):
        return {"kind": "period", "freq": freq.freqstr, "starts": [str(ix[0]) for ix in panel.index]}
    return {"kind": "integer", "freq": int(freq), "starts": [int(ix[0]) for ix in panel.index]}


def _layout_state(layout: Layout) -> dict:
    columns = layout.columns
    return {
        "kind": layout.kind,
        "columns": [columns.id_col, columns.time_col, columns.target_col, columns.pred_col],
        "name": _jsonable(layout.name, "series name"),
        "column_index": None
        if layout.column_index is None
        else _jsonable(list(layout.column_index), "columns"),
    }


def _panel(doc: ModelDocument, tensors: dict) -> Panel:
    lengths = tensors["panel.lengths"].numpy()
    values = np.split(tensors["panel.values"].numpy(), np.cumsum(lengths)[:-1])
    state = doc.index
    if state.kind == "datetime":
        freq = pd.tseries.frequencies.to_offset(state.freq)
        index = [
            pd.date_range(s, periods=n, freq=freq, tz=state.tz)
            for s, n in zip(state.starts, lengths, strict=True)
        ]
    elif state.kind == "period":
        freq = pd.tseries.frequencies.to_offset(state.freq)
        index = [pd.period_range(s, periods=n, freq=freq) for s, n in zip(state.starts, lengths, strict=True)]
    else:
        freq = state.freq
        index = [
            pd.Index(s + freq * np.arange(n), dtype="int64")
            for s, n in zip(state.starts, lengths, strict=True)
        ]
    lay = doc.layout
    column_index = None if lay.column_index is None else pd.Index(lay.column_index)
    layout = Layout(lay.kind, Columns(*lay.columns), lay.name, column_index)
    return Panel(list(doc.ids), [v.copy() for v in values], index, freq, layout)
