"""Global recurrent forecasters: :class:`LSTMForecaster`, :class:`GRUForecaster`, :class:`RNNForecaster`.

One network is trained on all series of a panel. By default (the M4 Hourly recipe) each series is
moved to log space (``scaler="auto"``; an additive ``y / mean|y|`` space when some value is <= 0),
each step sees its last season and, with a long season, the values one long season before each
forecast step, all relative to the causal level (see :mod:`tsforecast.nn.streams`); at every step the
head emits a correction of the seasonal naive forecast for all ``horizon`` steps at once (direct
multi-output), trained with a masked absolute (or pinball) loss.

Training is truncated back-propagation through time (``training="tbptt"``): the panel is laid out
once on the device as parallel streams and the network walks them ``tbptt_steps`` at a time,
carrying its state (detached) from chunk to chunk and starting every series from a zero state.
Series longer than ``stream_length`` steps are cut into several streams (more, shorter streams per
batch); a cut stream starts ``warmup_steps`` early from a zero state and the outputs of those
warm-up steps are masked (see :mod:`tsforecast.windowing`). ``training="windows"`` trains the same
network on classic sliding windows of ``lookback`` steps instead.

Forecasts run the network over the whole history of every series (no truncation), all series in one
batched pass, and read the outputs at the last step.
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from numbers import Integral, Real

import numpy as np
import pandas as pd
import torch
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions

from tsforecast.base import BaseForecaster
from tsforecast.data import Panel, check_min_length
from tsforecast.data.labels import series_label
from tsforecast.exceptions import InvalidInputError, InvalidParameterError, TsforecastWarning
from tsforecast.nn.modules import RecurrentNetwork
from tsforecast.nn.streams import (
    FeatureSpec,
    Scales,
    TBPTTSource,
    WindowSource,
    build_streams,
    feature_moments,
    run_streams,
    series_arrays,
)
from tsforecast.nn.training import LoopConfig, fit_network, quantile_loss
from tsforecast.scaling import SCALERS, SeriesScaler, resolve_kind
from tsforecast.windowing import plan_streams

__all__ = ["GRUForecaster", "LSTMForecaster", "RNNForecaster"]

_PREDICT_BATCH = 4096  # series per forward pass at prediction (bounds activation memory)


def _positive(kind, closed="left"):
    return Interval(kind, 1 if kind is Integral else 0, None, closed=closed)


class _RecurrentMixin:
    """Everything the three recurrent forecasters share; the concrete class names the cell."""

    _cell = "lstm"
    _missing_policy = "keep"  # interior NaN reach the model and are masked out of the loss
    _parameter_constraints: dict = {
        "horizon": [_positive(Integral)],
        "season_length": [_positive(Integral)],
        "long_season_length": [StrOptions({"auto"}), None, Interval(Integral, 2, None, closed="left")],
        "hidden_size": [_positive(Integral)],
        "num_layers": [_positive(Integral)],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "residual": ["boolean"],
        "gate_init": [StrOptions({"standard", "chrono"})],
        "training": [StrOptions({"tbptt", "windows"})],
        "tbptt_steps": [_positive(Integral)],
        "lookback": [_positive(Integral)],
        "stream_length": [StrOptions({"auto"}), None, _positive(Integral)],
        "warmup_steps": [None, Interval(Integral, 0, None, closed="left")],
        "scaler": [StrOptions(set(SCALERS))],
        "quantiles": [None, tuple, list],
        "clip_norm": [None, _positive(Real, "neither")],
        "learning_rate": [_positive(Real, "neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "max_epochs": [_positive(Integral)],
        "batch_size": [_positive(Integral)],
        "validation_size": [Interval(Integral, 0, None, closed="left")],
        "patience": [None, _positive(Integral)],
        "max_time": [None, _positive(Real, "neither")],
        "callbacks": [None, list, tuple],
        "warm_start": ["boolean"],
        "device": [str, torch.device],
        "precision": [StrOptions({"fp32", "bf16"})],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        horizon=48,
        season_length=24,
        long_season_length="auto",
        hidden_size=64,
        num_layers=2,
        dropout=0.0,
        residual=False,
        gate_init="standard",
        training="tbptt",
        tbptt_steps=96,
        lookback=168,
        stream_length="auto",
        warmup_steps=None,
        scaler="auto",
        quantiles=None,
        clip_norm=1.0,
        learning_rate=3e-3,
        weight_decay=0.0,
        max_epochs=40,
        batch_size=256,
        validation_size=0,
        patience=10,
        max_time=None,
        callbacks=None,
        warm_start=False,
        device="auto",
        precision="fp32",
        random_state=None,
        verbose=False,
    ):
        self.horizon = horizon
        self.season_length = season_length
        self.long_season_length = long_season_length
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.dropout = dropout
        self.residual = residual
        self.gate_init = gate_init
        self.training = training
        self.tbptt_steps = tbptt_steps
        self.lookback = lookback
        self.stream_length = stream_length
        self.warmup_steps = warmup_steps
        self.scaler = scaler
        self.quantiles = quantiles
        self.clip_norm = clip_norm
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.validation_size = validation_size
        self.patience = patience
        self.max_time = max_time
        self.callbacks = callbacks
        self.warm_start = warm_start
        self.device = device
        self.precision = precision
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    def _min_length(self) -> int:
        long = self.long_season_length if isinstance(self.long_season_length, Integral) else 0
        return max(self.season_length, long) + 1

    def _fit(self, panel: Panel) -> None:
        device = resolve_device(self.device)
        levels = _quantile_levels(self.quantiles)
        spec = FeatureSpec(self.season_length, self._long_season(panel), self.horizon)
        train_parts = self._check_lengths(panel, spec)
        reuse = self._can_warm_start(self._architecture(spec, levels))
        kind = self.scaler_.kind if reuse else resolve_kind(self.scaler, train_parts)
        scaler, streams = self._training_streams(train_parts, panel.ids, spec, kind, device)
        chunk = self.tbptt_steps if self.training == "tbptt" else self.lookback
        scales = self.scales_ if reuse else feature_moments(streams, chunk, self.batch_size)
        scales = Scales(scales.features.to(device), scales.target.to(device))
        if self.training == "tbptt":
            source = TBPTTSource(streams, self.batch_size, self.tbptt_steps, scales)
        else:
            source = WindowSource(streams, self.batch_size, self.lookback, scales)

        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        forked = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=forked):
            torch.manual_seed(seed)
            if reuse:
                network = self.network_.to(device)
            else:
                network = self._build_network(spec, levels).to(device)
            self.network_, self.scaler_, self.scales_, self.spec_ = network, scaler, scales, spec
            self.quantile_levels_, self.device_, self.horizon_ = levels, device, self.horizon
            self._architecture_ = self._architecture(spec, levels)
            self._train_rows_ = {sid: row for row, sid in enumerate(panel.ids)}
            self.history_ = pd.DataFrame()
            validate = self._validator(panel, scaler, spec, scales, chunk) if self.validation_size else None
            history = fit_network(
                network,
                source,
                self._loop_config(),
                quantile_loss(torch.as_tensor(levels, device=device)),
                torch.Generator().manual_seed(seed),
                self._autocast,
                validate,
                self._on_epoch,
            )
        self.history_ = pd.DataFrame(history)

    def _build_network(self, spec: FeatureSpec, levels: tuple) -> RecurrentNetwork:
        sizes = (spec.n_features, self.hidden_size, self.num_layers, spec.horizon * len(levels))
        # Chrono spreads the gates' memory over what one gradient can reach: a chunk or a window.
        span = self.tbptt_steps if self.training == "tbptt" else self.lookback
        chrono_span = span if self.gate_init == "chrono" else None
        return RecurrentNetwork(self._cell, *sizes, self.dropout, self.residual, chrono_span)

    def _training_streams(self, train_parts: list, ids: list, spec: FeatureSpec, kind: str, device):
        """Fit the scaler on the training parts and lay them out as streams on the device."""
        scaler = SeriesScaler(kind).fit(train_parts, names=ids)
        train_z = scaler.transform(train_parts, names=ids)
        arrays = [series_arrays(z, spec.season_length) for z in train_z]
        n_steps = np.array([len(z) - spec.context - 1 for z in train_z])
        if self.training == "tbptt":
            plan, chunk = plan_streams(n_steps, *self._stream_cut(n_steps)), self.tbptt_steps
        else:
            plan, chunk = plan_streams(n_steps), self.lookback
        return scaler, build_streams(arrays, plan, spec, chunk, device)

    def _long_season(self, panel: Panel) -> int:
        if self.long_season_length != "auto":
            return int(self.long_season_length or 0)
        # Hourly data: add the weekly cycle when every series holds at least three weeks.
        long = 7 * self.season_length if self.season_length == 24 else 0
        return long if long and panel.lengths.min() >= 3 * long + self.validation_size else 0

    def _check_lengths(self, panel: Panel, spec: FeatureSpec) -> list:
        extra = self.lookback if self.training == "windows" else 1
        need = spec.context + 1 + extra + self.validation_size
        what = (
            f"{type(self).__name__} (context of {spec.context} steps = max(season_length, long season), "
            f"{'lookback ' + str(self.lookback) if self.training == 'windows' else 'one target'}, "
            f"validation_size {self.validation_size})"
        )
        check_min_length(panel, need, what)
        train_parts = [v[: len(v) - self.validation_size] for v in panel.values]
        longest = max(len(v) for v in train_parts) - spec.context - 1
        if self.training == "tbptt" and self.tbptt_steps > longest:
            raise InvalidInputError(
                f"tbptt_steps={self.tbptt_steps} is longer than the longest training stream ({longest} steps "
                f"after the {spec.context}-step context and validation_size={self.validation_size}); lower "
                "tbptt_steps so that the series span several chunks."
            )
        observed = [np.isfinite(v[spec.context + 1 :]).any() for v in train_parts]
        if not all(observed):
            bad = panel.ids[observed.index(False)]
            raise InvalidInputError(
                f"{series_label(bad)} has no observed value after its first {spec.context} steps."
            )
        return train_parts

    def _stream_cut(self, n_steps: np.ndarray) -> tuple:
        warmup = self.tbptt_steps // 2 if self.warmup_steps is None else self.warmup_steps
        return (2 * self.tbptt_steps if self.stream_length == "auto" else self.stream_length), warmup

    def _validator(self, panel, scaler, spec, scales, chunk):
        z = scaler.transform(panel.values, names=panel.ids)
        arrays = [series_arrays(v, spec.season_length, target_from=len(v) - self.validation_size) for v in z]
        plan = plan_streams(panel.lengths - spec.context - 1)
        streams = build_streams(arrays, plan, spec, chunk, self.device_)
        loss_fn = quantile_loss(torch.as_tensor(self.quantile_levels_, device=self.device_))
        return lambda: run_streams(
            self.network_, streams, chunk, _PREDICT_BATCH, scales, self._autocast, loss_fn
        )

    def _loop_config(self) -> LoopConfig:
        return LoopConfig(
            max_epochs=self.max_epochs,
            learning_rate=self.learning_rate,
            weight_decay=self.weight_decay,
            clip_norm=self.clip_norm,
            patience=self.patience,
            max_time=self.max_time,
            verbose=bool(self.verbose),
        )

    def _on_epoch(self, record: dict) -> bool:
        self.history_ = pd.concat([self.history_, pd.DataFrame([record])], ignore_index=True)
        stop = False
        for callback in self.callbacks or ():
            stop = bool(callback(self, dict(record))) or stop
        return stop

    def _can_warm_start(self, architecture: dict) -> bool:
        """Whether ``warm_start`` continues the fitted network; warns when it cannot."""
        if not (self.warm_start and hasattr(self, "network_")):
            return False
        changed = {k: (self._architecture_.get(k), v) for k, v in architecture.items()}
        changed = {k: pair for k, pair in changed.items() if pair[0] != pair[1]}
        if changed:
            what = ", ".join(f"{k} {old!r} -> {new!r}" for k, (old, new) in changed.items())
            warnings.warn(
                f"warm_start=True, but the network's architecture changed since the last fit ({what}; "
                "spec is [season_length, long season, horizon]), so the fitted weights cannot be reused: "
                "training starts from a new network. Keep those settings (and series long enough for the "
                "same long season) to continue training, or set warm_start=False.",
                TsforecastWarning,
                stacklevel=4,
            )
        return not changed

    def _architecture(self, spec: FeatureSpec, levels: tuple) -> dict:
        return {
            "cell": self._cell,
            "spec": [spec.season_length, spec.long_season_length, spec.horizon],
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "residual": self.residual,
            "levels": list(levels),
        }

    def _autocast(self):
        if self.precision == "bf16" and self.device_.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    # -------------------------------------------------------------- predict
    def _predict(self, panel: Panel, horizon: int, is_training_history: bool):
        if horizon > self.horizon_:
            raise InvalidParameterError(
                f"horizon={horizon} exceeds the horizon the network was trained for ({self.horizon_}); it "
                f"predicts all steps at once (direct multi-output). Pass horizon <= {self.horizon_}, or "
                f"refit with horizon={horizon}."
            )
        spec = self.spec_
        check_min_length(panel, spec.context + 1, f"{type(self).__name__} (its {spec.context}-step context)")
        scaler = self.scaler_ if is_training_history else self._scaler_for(panel)
        arrays = [
            series_arrays(z, spec.season_length) for z in scaler.transform(panel.values, names=panel.ids)
        ]
        if self.training == "windows":
            # The network learned from `lookback` steps started from a zero state: forecast the same
            # way, from the last window of each series (features computed on the full history).
            keep = spec.context + self.lookback
            arrays = [tuple(part[-keep:] for part in parts) for parts in arrays]
        plan = plan_streams(np.array([len(filled) for filled, _, _ in arrays]) - spec.context)
        chunk = max(self.tbptt_steps, 256)
        streams = build_streams(arrays, plan, spec, chunk, self.device_)
        self.network_.eval()
        out = run_streams(self.network_, streams, chunk, _PREDICT_BATCH, self.scales_, self._autocast)
        levels = self.quantile_levels_
        out = (out * self.scales_.target).double().cpu().numpy()  # (n_series, horizon * levels)
        out = out.reshape(panel.n_series, spec.horizon, len(levels))
        base = np.stack([spec.base(filled) for filled, _, _ in arrays])  # (n_series, horizon)
        forecast = scaler.inverse(np.sort(base[..., None] + out, axis=-1))[
            :, :horizon
        ]  # no quantile crossing
        point = forecast[..., levels.index(0.5)]
        if self.quantiles is None:
            return point
        return {"point": point, **{f"q{q:g}": forecast[..., levels.index(q)] for q in self.quantiles}}

    def _scaler_for(self, panel: Panel) -> SeriesScaler:
        """Training statistics for known series, each new series' own statistics otherwise."""
        parts = []
        for sid, values in zip(panel.ids, panel.values, strict=True):
            row = self._train_rows_.get(sid)
            parts.append(
                self.scaler_.subset([row])
                if row is not None
                else SeriesScaler(self.scaler_.kind).fit([values], names=[sid])
            )
        return SeriesScaler.concat(parts)

    # ---------------------------------------------------------- diagnostics
    def diagnose(self, y=None, **kwargs):
        """Gradient flow, gate statistics, hidden-state norms, training history and errors, with findings.

        ``y`` (default: the training data) and the keywords are those of
        :func:`tsforecast.nn.diagnostics.diagnose`; returns its ``DiagnosticReport``.
        """
        from tsforecast.nn.diagnostics import diagnose

        return diagnose(self, y, **kwargs)

    # ---------------------------------------------------------- persistence
    def save(self, path) -> None:
        """Save the fitted forecaster to ``path`` (safetensors weights + JSON; no pickle).

        Load it back with :func:`tsforecast.load`.
        """
        from tsforecast.nn.persistence import save

        save(self, path)

    def __getstate__(self):
        state = super().__getstate__()
        if "network_" in state and self.device_.type != "cpu":
            state["network_"] = copy.deepcopy(self.network_).cpu()
            state["scales_"] = Scales(self.scales_.features.cpu(), self.scales_.target.cpu())
            state["device_"] = torch.device("cpu")
        return state


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


def _quantile_levels(quantiles) -> tuple:
    if quantiles is None:
        return (0.5,)
    try:
        values = [float(q) for q in quantiles]
    except (TypeError, ValueError):
        values = []
    if not values or any(not 0 < q < 1 for q in values) or len(set(values)) != len(values):
        raise InvalidParameterError(
            f"quantiles must be None or distinct levels strictly between 0 and 1, like (0.1, 0.5, 0.9); "
            f"got {quantiles!r}."
        )
    return tuple(sorted(set(values) | {0.5}))


_PARAMETERS_DOC = """
    Parameters
    ----------
    horizon : int, default=48
        Steps forecast at once; ``predict`` may ask for fewer, not more.
    season_length : int, default=24
        Seasonal period: the lag window of the inputs, the level window and the seasonal naive
        forecast the network corrects.
    long_season_length : int, "auto" or None, default="auto"
        A second, longer period (168 for hourly data) whose values before each forecast step are
        inputs too. "auto": ``7 * season_length`` when ``season_length == 24`` and every series
        holds three long seasons, else none.
    hidden_size, num_layers : int, default=64, 2
    dropout : float, default=0.0
        Between recurrent layers.
    residual : bool, default=False
        Skip connections around the layers after the first (equal widths).
    gate_init : {"standard", "chrono"}, default="standard"
        "standard": LSTM forget-gate bias 1, other biases 0. "chrono": gate biases drawn so memory
        time scales spread up to ``tbptt_steps`` (``lookback`` for windows), Tallec & Ollivier
        (2018); use it for dependencies of hundreds of steps (see ``benchmarks/long_memory.py``).
    training : {"tbptt", "windows"}, default="tbptt"
    tbptt_steps : int, default=96
        Chunk length of truncated back-propagation through time.
    lookback : int, default=168
        Window length for ``training="windows"``; such a model also forecasts from the last
        ``lookback`` steps of each series (from a zero state, as it was trained), where a TBPTT model
        warms its state up over the whole history.
    stream_length : int, "auto" or None, default="auto"
        Cut longer series into streams of at most this many scored steps (TBPTT), so that the
        batches hold more, shorter streams (more optimisation steps per epoch). "auto":
        ``2 * tbptt_steps``; None: one stream per series.
    warmup_steps : int, optional
        Leading steps of a cut stream that only warm the state up (their outputs are masked);
        default ``tbptt_steps // 2``.
    scaler : {"auto", "log", "level", "standard", "robust", "minmax", "none"}, default="auto"
        Per-series transform fitted on the training part (see :mod:`tsforecast.scaling`). "auto":
        log when every training value is > 0, else "level" (``y / mean|y|``).
    quantiles : tuple of float, optional
        Extra quantile outputs trained with the pinball loss; ``predict`` then adds columns
        ``q0.1``... to long-layout forecasts. A Series or wide frame has no room for them: forecasts
        in those layouts hold the point forecasts only (with a warning); pass the history as a long
        frame (``predict(y=long_frame)``) to get the quantiles.
    clip_norm : float or None, default=1.0
        Global gradient-norm clip.
    learning_rate : float, default=3e-3
        Peak of the one-cycle schedule.
    weight_decay : float, default=0.0
        AdamW weight decay (0: Adam).
    max_epochs : int, default=40
    batch_size : int, default=256
        Streams (or windows) per batch.
    validation_size : int, default=0
        Steps cut from the end of each training series to score every epoch; > 0 enables early
        stopping and restores the best weights.
    patience : int or None, default=10
        Epochs without validation improvement before stopping.
    max_time : float, optional
        Training budget in seconds (the learning-rate schedule is compressed to fit it).
    callbacks : list of callable, optional
        Called after each epoch as ``callback(estimator, record)``; returning True stops training,
        an exception propagates out of ``fit``.
    warm_start : bool, default=False
        Continue from the fitted network (same architecture) instead of a new one.
    device : str, default="auto"
        "auto" (CUDA if available), "cpu", "cuda" or "cuda:N".
    precision : {"fp32", "bf16"}, default="fp32"
        "bf16" autocasts on CUDA; on CPU computation stays in fp32.
    random_state : int, RandomState or None
        Seeds initialisation, dropout and batch order (same seed on CPU: same forecasts).
    verbose : bool, default=False
        A progress bar with the loss, validation loss and gradient norm.

    Attributes
    ----------
    network_ : RecurrentNetwork
    scaler_ : SeriesScaler
    spec_ : FeatureSpec
    history_ : pd.DataFrame
        One row per epoch: epoch, train_loss, val_loss, grad_norm_mean, grad_norm_max (pre-clip
        global norms), clipped_fraction, learning_rate, seconds, skipped_steps (non-finite steps),
        targets (forecast targets in the loss).
    device_ : torch.device
    training_panel_ : Panel
        The training panel (``predict()`` without ``y`` continues it).
"""


def _example(name: str) -> str:
    return f"""
    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> t = np.arange(120)
    >>> index = pd.date_range("2024-01-01", periods=120, freq="h")
    >>> y = pd.Series(10 + np.sin(2 * np.pi * t / 12), index=index)
    >>> model = {name}(horizon=6, season_length=12, hidden_size=8, max_epochs=2, tbptt_steps=24,
    ...                random_state=0).fit(y)
    >>> model.predict().shape
    (6,)
"""


class LSTMForecaster(_RecurrentMixin, BaseForecaster):
    __doc__ = (
        "Global LSTM forecaster (TBPTT training by default).\n" + _PARAMETERS_DOC + _example("LSTMForecaster")
    )
    _cell = "lstm"


class GRUForecaster(_RecurrentMixin, BaseForecaster):
    __doc__ = (
        "Global GRU forecaster (TBPTT training by default).\n" + _PARAMETERS_DOC + _example("GRUForecaster")
    )
    _cell = "gru"


class RNNForecaster(_RecurrentMixin, BaseForecaster):
    __doc__ = (
        "Global vanilla (tanh) RNN forecaster (TBPTT training by default).\n"
        + _PARAMETERS_DOC
        + _example("RNNForecaster")
    )
    _cell = "rnn"
