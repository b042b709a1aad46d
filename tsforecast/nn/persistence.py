"""Save and load fitted recurrent forecasters: one safetensors file, no pickle.

The file holds the network weights (CPU tensors, so a model trained on a GPU loads anywhere), the
training panel's values, the per-series scaler statistics and the global feature scales as tensors,
and in the safetensors metadata one JSON document with the rest: format and package versions, the
estimator class and parameters, the feature layout, the series ids, the time index of every series
(start, length, frequency), the input layout, the per-epoch training history and a SHA-256 checksum
of every tensor's bytes.

:func:`read` gives the class name, the parameters and the :class:`~tsforecast.nn.state.FittedState`
back; :func:`tsforecast.nn.estimators.load` builds the estimator from them. This module knows no
estimator class, so it imports nothing above the codec.

Loading verifies the checksums and that the weights and statistics are finite, so a file whose
tensor data was damaged (flipped bits, a zeroed or overwritten tail) is refused with
:class:`~tsforecast.exceptions.ModelFileError` instead of forecasting garbage. Files of
format 1 (before checksums) still load, with the finiteness check only.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, astuple, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

import tsforecast
from tsforecast.data import Columns, Layout, Panel
from tsforecast.epochs import EpochRecord, history_frame
from tsforecast.exceptions import InvalidInputError, ModelFileError
from tsforecast.nn.codec import PanelCodec
from tsforecast.nn.modules import NetworkConfig
from tsforecast.nn.state import FittedState
from tsforecast.nn.streams import FeatureSpec, Scales
from tsforecast.scaling import SeriesScaler

FORMAT_VERSION = 3  # 2: per-tensor SHA-256 checksums; 3: the network's configuration
_READABLE_FORMATS = (1, 2, 3)
_KEY = "tsforecast"
_MAY_HOLD_NAN = ("panel.values",)  # interior NaN kept by missing="keep"

__all__ = ["FORMAT_VERSION", "SavedModel", "read", "save"]


@dataclass(frozen=True)
class SavedModel:
    """What a model file holds: the estimator's class name, its parameters and its fitted state."""

    class_name: str
    params: dict
    state: FittedState


def save(estimator, path) -> None:
    """Write a fitted recurrent forecaster to ``path``.

    Parameters
    ----------
    estimator : LSTMForecaster, GRUForecaster or RNNForecaster
        Fitted.
    path : str or Path

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
    tensors.update(
        {
            "panel.values": torch.from_numpy(np.concatenate(panel.values).astype(np.float64)),
            "panel.lengths": torch.from_numpy(panel.lengths),
            "scaler.center": torch.from_numpy(codec.scaler.center),
            "scaler.scale": torch.from_numpy(codec.scaler.scale),
            "scales.features": codec.scales.features.detach().cpu().contiguous(),
            "scales.target": codec.scales.target.detach().cpu().reshape(1),
        }
    )
    params = {k: v for k, v in estimator.get_params(deep=False).items() if k != "callbacks"}
    if isinstance(params.get("device"), torch.device):
        params["device"] = str(params["device"])
    spec = codec.spec
    document = {
        "format_version": FORMAT_VERSION,
        "package_version": tsforecast.__version__,
        "class": type(estimator).__name__,
        "params": _jsonable(params, "parameters"),
        "network": asdict(estimator.network_.config),
        "spec": list(astuple(spec)),  # season_length, long_season_length, horizon
        "quantile_levels": list(estimator.quantile_levels_),
        "scaler_kind": codec.scaler.kind,
        "horizon": estimator.horizon_,
        "ids": _jsonable(list(panel.ids), "series ids"),
        "index": _index_state(panel),
        "layout": _layout_state(panel.layout),
        "training_history": json.loads(estimator.history_.to_json(orient="records")),
        "checksums": {name: _digest(tensor) for name, tensor in tensors.items()},
    }
    save_file(tensors, str(path), metadata={_KEY: json.dumps(document)})


def read(path, device) -> SavedModel:
    """Read and verify a model file written by :func:`save`; the network goes to ``device``.

    Raises
    ------
    ModelFileError
        The file is missing, corrupted (tensor data that no longer matches its checksum, non-finite
        weights), not a tsforecast model, or written by an incompatible version.
    """
    document, tensors = _read(Path(path))
    _check_version(document, path)
    _check_tensors(document, tensors, path)
    try:
        params = dict(document["params"])
        if params.get("quantiles") is not None:
            params["quantiles"] = tuple(params["quantiles"])
        spec = FeatureSpec(*document["spec"])
        levels = tuple(document["quantile_levels"])
        config = _network_config(document, params, spec, levels)
        network = config.build()
        weights = {k[len("network.") :]: v for k, v in tensors.items() if k.startswith("network.")}
        network.load_state_dict(weights, strict=True)
        panel = _panel(document, tensors)
        scaler = SeriesScaler(
            document["scaler_kind"], tensors["scaler.center"].numpy(), tensors["scaler.scale"].numpy()
        )
        scales = Scales(tensors["scales.features"].to(device), tensors["scales.target"][0].to(device))
        records = [EpochRecord.from_dict(row) for row in document["training_history"]]
        state = FittedState(
            network.to(device).eval(),
            PanelCodec(spec, scaler, list(panel.ids), scales),
            levels,
            int(document["horizon"]),
            history_frame(records),
            panel,
        )
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as error:
        raise ModelFileError(f"{path} is not a usable tsforecast model: {error}") from None
    return SavedModel(document["class"], params, state)


def _network_config(document: dict, params: dict, spec: FeatureSpec, levels: tuple) -> NetworkConfig:
    """The saved network configuration (format 3), or the one the parameters imply (formats 1, 2)."""
    if "network" in document:
        return NetworkConfig(**document["network"])
    cell = {"LSTMForecaster": "lstm", "GRUForecaster": "gru", "RNNForecaster": "rnn"}[document["class"]]
    return NetworkConfig(
        cell,
        spec.n_features,
        int(params.get("hidden_size", 64)),
        int(params.get("num_layers", 2)),
        spec.horizon * len(levels),
        float(params.get("dropout", 0.0)),
        bool(params.get("residual", False)),
    )


def _read(path: Path):
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise ModelFileError(
            f"cannot read {path} as a saved tsforecast model ({type(error).__name__}: {error}); the file "
            "is missing, truncated or corrupted. Save the model again with est.save(path)."
        ) from None
    if _KEY not in metadata:
        raise ModelFileError(
            f"{path} is a safetensors file but not a tsforecast model (no '{_KEY}' metadata)."
        )
    try:
        return json.loads(metadata[_KEY]), tensors
    except json.JSONDecodeError as error:
        raise ModelFileError(f"{path}: the model description is corrupted ({error}).") from None


def _check_version(document: dict, path) -> None:
    fmt, saved = document.get("format_version"), str(document.get("package_version", "?"))
    current = tsforecast.__version__
    if fmt not in _READABLE_FORMATS:
        raise ModelFileError(
            f"{path} uses model format {fmt!r} (tsforecast {saved}); this tsforecast {current} reads formats "
            f"{list(_READABLE_FORMATS)}. Load it with tsforecast {saved}, or retrain and save it again."
        )
    if _major_minor(saved) > _major_minor(current) or _major_minor(saved)[0] != _major_minor(current)[0]:
        raise ModelFileError(
            f"{path} was saved by tsforecast {saved}, which is incompatible with this tsforecast {current} "
            "(a different major version, or a newer release). Install the matching version or retrain."
        )


def _check_tensors(document: dict, tensors: dict, path) -> None:
    """Refuse tensors that differ from what was saved (checksums) or hold NaN/inf where none can be."""
    checksums = document.get("checksums")
    if document.get("format_version") != 1:
        if not isinstance(checksums, dict):
            raise ModelFileError(f"{path} is not a usable tsforecast model: it has no tensor checksums.")
        if missing := sorted(set(checksums) - set(tensors)):
            raise ModelFileError(
                f"{path} is not a usable tsforecast model: tensor(s) {missing[:5]} listed when it was saved "
                "are missing (the file was edited or damaged). Save the model again with est.save(path)."
            )
        if changed := sorted(name for name, t in tensors.items() if checksums.get(name) != _digest(t)):
            raise ModelFileError(
                f"{path} is corrupted: the data of tensor(s) {changed[:5]} no longer match the SHA-256 "
                "checksums written when the model was saved (bytes changed on disk or in transfer). "
                "Restore the file from a good copy, or save the model again with est.save(path)."
            )
    for name, tensor in tensors.items():
        if name not in _MAY_HOLD_NAN and tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise ModelFileError(
                f"{path} is corrupted: tensor {name!r} holds NaN or infinite values, which a saved model "
                "never has. Restore the file from a good copy, or retrain and save it again."
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


def _panel(document: dict, tensors: dict) -> Panel:
    lengths = tensors["panel.lengths"].numpy()
    values = np.split(tensors["panel.values"].numpy(), np.cumsum(lengths)[:-1])
    state = document["index"]
    if state["kind"] == "datetime":
        freq = pd.tseries.frequencies.to_offset(state["freq"])
        index = [
            pd.date_range(s, periods=n, freq=freq, tz=state["tz"])
            for s, n in zip(state["starts"], lengths, strict=True)
        ]
    elif state["kind"] == "period":
        freq = pd.tseries.frequencies.to_offset(state["freq"])
        index = [
            pd.period_range(s, periods=n, freq=freq) for s, n in zip(state["starts"], lengths, strict=True)
        ]
    else:
        freq = state["freq"]
        index = [
            pd.Index(s + freq * np.arange(n), dtype="int64")
            for s, n in zip(state["starts"], lengths, strict=True)
        ]
    lay = document["layout"]
    column_index = None if lay["column_index"] is None else pd.Index(lay["column_index"])
    layout = Layout(lay["kind"], Columns(*lay["columns"]), lay["name"], column_index)
    return Panel(list(document["ids"]), [v.copy() for v in values], index, freq, layout)
