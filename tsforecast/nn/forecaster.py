"""``RecurrentForecaster``: what the LSTM, GRU and RNN forecasters share (the cell is the difference).

One network is trained on all series of a panel. The life of a fit: the panel's training parts fit
a :class:`~tsforecast.nn.codec.PanelCodec` (per-series scaler, then global feature scales), which
encodes them as device streams; :func:`~tsforecast.nn.training.fit_network` walks the streams
(TBPTT chunks, or sliding windows) for a number of epochs fixed before training starts; the fitted
state is set through :meth:`RecurrentForecaster.set_fitted_state`, the one door that model loading
uses too. A forecast encodes the history with the same codec, runs the network over it and decodes
the outputs at each series' last step. Covariates (``X``) follow the targets through the same codec
(:mod:`tsforecast.nn.covariates`).
"""

from __future__ import annotations

import copy
import inspect
import warnings
from dataclasses import astuple, replace
from numbers import Integral
from pathlib import Path

import numpy as np
import torch
from sklearn.utils import check_random_state

from tsforecast.base import BaseForecaster
from tsforecast.data import Panel, check_min_length
from tsforecast.data.covariates import Covariates
from tsforecast.data.frequency import long_season_for, seasonal_periods
from tsforecast.data.labels import series_label
from tsforecast.epochs import history_frame
from tsforecast.exceptions import InvalidInputError, InvalidParameterError, TsforecastWarning
from tsforecast.nn.batches import TBPTTSource, WindowSource, run_streams
from tsforecast.nn.checkpoint import Checkpoint, data_digest
from tsforecast.nn.codec import PREDICT_CHUNK, PanelCodec
from tsforecast.nn.covariates import CovariateCodec
from tsforecast.nn.device import autocast_for, resolve_device
from tsforecast.nn.distributed import Shard, current_group
from tsforecast.nn.divergence import check_forecast_range, check_forecasts
from tsforecast.nn.losses import quantile_loss
from tsforecast.nn.modules import NetworkConfig
from tsforecast.nn.parameters import (
    PARAMETER_CONSTRAINTS,
    ineffective_parameters,
    inert_parameters,
    interval_quantile_pairs,
    quantile_levels,
)
from tsforecast.nn.persistence import save
from tsforecast.nn.state import FittedState
from tsforecast.nn.streams import FeatureSpec
from tsforecast.nn.training import LoopConfig, fit_network
from tsforecast.scaling import resolve_kind

__all__ = [
    "RecurrentForecaster",
]

PREDICT_BATCH = 1024  # series per forward pass at prediction (bounds activation memory)


class RecurrentForecaster(BaseForecaster):
    """Base class of the global recurrent forecasters; the subclass names the cell (``_cell``)."""

    _cell = "lstm"
    _takes_covariates = True
    _missing_policy = "keep"  # interior NaN reach the model and are masked out of the loss
    _parameter_constraints: dict = PARAMETER_CONSTRAINTS

    def __init__(
        self,
        horizon=48,
        season_length="auto",
        long_season_length="auto",
        hidden_size=64,
        num_layers=1,
        dropout=0.0,
        residual=False,
        gate_init="standard",
        training="tbptt",
        tbptt_steps=72,
        lookback=168,
        stream_length="auto",
        warmup_steps=None,
        scaler="auto",
        quantiles=None,
        clip_norm=1.0,
        learning_rate=5e-3,
        weight_decay=0.0,
        max_epochs=40,
        max_steps=None,
        batch_size=256,
        validation_size=0,
        patience=10,
        max_time=None,
        callbacks=None,
        checkpoint_dir=None,
        checkpoint_every=None,
        warm_start=False,
        device="auto",
        precision="fp32",
        random_state=None,
        verbose=False,
        future_covariates=None,
        past_covariates=None,
        static_covariates=None,
        categorical_covariates=None,
        calendar_features=None,
        holidays=None,
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
        self.max_steps = max_steps
        self.batch_size = batch_size
        self.validation_size = validation_size
        self.patience = patience
        self.max_time = max_time
        self.callbacks = callbacks
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self.warm_start = warm_start
        self.device = device
        self.precision = precision
        self.random_state = random_state
        self.verbose = verbose
        self.future_covariates, self.past_covariates = future_covariates, past_covariates
        self.static_covariates, self.categorical_covariates = static_covariates, categorical_covariates
        self.calendar_features, self.holidays = calendar_features, holidays

    # ------------------------------------------------------------------ fit
    def _min_length(self) -> int:
        seasons = [v for v in (self.season_length, self.long_season_length) if isinstance(v, Integral)]
        return max(seasons, default=1) + 1

    def _fit(self, panel: Panel, covariates: Covariates | None = None) -> None:
        device = resolve_device(self.device)
        _warn_inert(self, device)
        levels = quantile_levels(self.quantiles)
        codec_spec = self.feature_spec(panel)
        train_parts = self._check_lengths(panel, codec_spec)
        # Covariate statistics from the training rows only (before the validation tail).
        drivers = covariates and CovariateCodec.fit(covariates, [len(v) for v in train_parts])
        config = self.network_config(codec_spec.n_features, codec_spec.horizon * len(levels), drivers)
        reuse = self._can_warm_start(config, codec_spec, drivers)
        kind = self.codec_.scaler.kind if reuse else resolve_kind(self.scaler, train_parts)
        drivers = self.codec_.covariates if reuse else drivers
        codec = PanelCodec.fit(codec_spec, kind, train_parts, panel.ids, device, drivers)
        chunk = self.tbptt_steps if self.training == "tbptt" else self.lookback
        cut = self._stream_cut() if self.training == "tbptt" else None
        group = current_group()  # data-parallel: this process trains on its shard of the series
        mine = Shard.of(group, panel.ids, codec.scaler, covariates)
        train = codec.encode(
            mine.take(train_parts), mine.ids, chunk, scaler=mine.scaler, cut=cut, covariates=mine.covariates
        )
        if reuse:
            codec.scales = self.codec_.to(device).scales
        else:
            codec.fit_scales(train, chunk, self.batch_size, group)
        if self.training == "tbptt":
            source = TBPTTSource(train.streams, self.batch_size, self.tbptt_steps, codec.scales)
        else:
            source = WindowSource(train.streams, self.batch_size, self.lookback, codec.scales)

        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        forked = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=forked):
            torch.manual_seed(seed)
            network = self.network_.to(device) if reuse else config.build().to(device)
            self.set_fitted_state(FittedState(network, codec, levels, self.horizon, history_frame([]), panel))
            loss_fn = quantile_loss(torch.as_tensor(levels, device=device))
            validate = held_out = None
            if self.validation_size:
                held_out = codec.encode(
                    mine.take(panel.values),
                    mine.ids,
                    chunk,
                    scaler=mine.scaler,
                    holdout=self.validation_size,
                    covariates=mine.covariates,
                )
                validate = lambda: run_streams(  # noqa: E731
                    network,
                    held_out.streams,
                    chunk,
                    PREDICT_BATCH,
                    codec.scales,
                    self._autocast(),
                    loss_fn,
                    group,
                )
            try:
                history = fit_network(
                    network,
                    source,
                    replace(self._loop_config(), n_series=panel.n_series),
                    loss_fn,
                    torch.Generator().manual_seed(seed),
                    self._autocast(),
                    validate,
                    self._epoch_callback(),
                    self._checkpoint(panel, covariates, codec, reuse, group),
                    group,
                )
                self.history_ = history_frame(history)
                source = train = validate = held_out = None  # free the training streams before the forecast
                # The last rule of tsforecast.nn.divergence: forecasts far outside the training range.
                scaled, forecast, encoded = self._forecast(panel, covariates)
                unit = float(codec.scales.target)
                check_forecast_range(scaled, forecast, encoded.ranges, panel, unit, self._loop_config())
                # predict() from the training data returns this forecast instead of computing it again
                # (without covariates: at predict, future-known ones may reach further than at fit).
                key = _weights_key(network)
                self._training_forecast = None if covariates is not None else (key, scaled, forecast)
            except Exception:
                self._clear_fitted_state()  # a failed fit leaves nothing that predict or save could use
                raise

    def _checkpoint(self, panel, covariates, codec, reuse, group=None) -> Checkpoint | None:
        if self.checkpoint_dir is None:
            return None
        if reuse:
            raise InvalidParameterError(
                "warm_start=True continues the fitted network, and checkpoint_dir resumes an interrupted "
                "fit from its file: together the two starting points would be mixed. Set one of them."
            )
        fitted = {"scales": [codec.scales.features, codec.scales.target]}
        folder = self.checkpoint_dir  # data-parallel: each process keeps its own position
        if group is not None:
            folder = Path(folder) / f"rank-{group.rank}-of-{group.world_size}"
        return Checkpoint(
            folder,
            self.get_params(deep=False),
            data_digest(panel, covariates),
            self.checkpoint_every,
            fitted,
            keep_previous=group is not None,
        )

    def set_fitted_state(self, state: FittedState) -> None:
        """Set every fitted attribute at once: the one door of ``fit`` and of model loading."""
        self.__dict__.pop("_training_forecast", None)  # it was another network's
        self.network_ = state.network
        self.codec_ = state.codec
        self.device_ = state.codec.device
        self.quantile_levels_ = tuple(state.quantile_levels)
        self.horizon_ = int(state.horizon)
        self.history_ = state.history
        drivers = state.codec.covariates
        self.covariate_categories_ = None if drivers is None else dict(drivers.categories)
        self._set_training_panel(state.panel)

    def _clear_fitted_state(self) -> None:
        """Remove what :meth:`set_fitted_state` set, except ``history_`` (it shows what went wrong)."""
        fitted = ("network_", "codec_", "device_", "quantile_levels_", "horizon_", "training_panel_")
        for name in (*fitted, "covariate_categories_", "n_series_", "freq_", "_training_forecast"):
            self.__dict__.pop(name, None)

    def feature_spec(self, panel: Panel) -> FeatureSpec:
        """The feature layout for ``panel``: its seasons (``"auto"``: from the frequency) and the horizon."""
        season, _ = seasonal_periods(panel.freq)
        m = season if self.season_length == "auto" else int(self.season_length)
        if self.long_season_length != "auto":
            return FeatureSpec(m, int(self.long_season_length or 0), self.horizon)
        long = long_season_for(m, panel.freq) or 0
        # A long season is used when every series holds three of them (after the validation tail).
        fits = long and panel.lengths.min() >= 3 * long + self.validation_size
        return FeatureSpec(m, long if fits else 0, self.horizon)

    def network_config(self, n_features: int, n_outputs: int, covariates=None) -> NetworkConfig:
        """The network for ``n_features`` inputs, ``n_outputs`` outputs and a ``CovariateCodec``'s inputs."""
        # Chrono spreads the gates' memory over what one gradient can reach: a chunk or a window.
        span = self.tbptt_steps if self.training == "tbptt" else self.lookback
        chrono_span = span if self.gate_init == "chrono" else None
        config = NetworkConfig(
            self._cell,
            n_features,
            self.hidden_size,
            self.num_layers,
            n_outputs,
            self.dropout,
            self.residual,
            chrono_span,
        )
        if covariates is None:
            return config
        return replace(config, **covariates.network_inputs(n_features, self.horizon))

    def _check_lengths(self, panel: Panel, spec) -> list:
        extra = self.lookback if self.training == "windows" else 1
        need = spec.context + 1 + extra + self.validation_size
        what = (
            f"{type(self).__name__} (context of {spec.context} steps = max(season_length, long season), "
            f"{'lookback ' + str(self.lookback) if self.training == 'windows' else 'one target'}, "
            f"validation_size {self.validation_size})"
        )
        check_min_length(panel, need, what)
        train_parts = [v[: len(v) - self.validation_size] for v in panel.values]
        longest, at = max((len(v) - spec.context - 1, -i) for i, v in enumerate(train_parts))
        if self.training == "tbptt" and self.tbptt_steps > longest:
            raise InvalidInputError(
                f"tbptt_steps={self.tbptt_steps} is longer than the longest training stream, of "
                f"{series_label(panel.ids[-at])} ({longest} steps after the {spec.context}-step context and "
                f"validation_size={self.validation_size}); lower tbptt_steps so series span several chunks."
            )
        observed = [np.isfinite(v[spec.context + 1 :]).any() for v in train_parts]
        if not all(observed):
            bad = panel.ids[observed.index(False)]
            raise InvalidInputError(
                f"{series_label(bad)} has no observed value after its first {spec.context} steps."
            )
        return train_parts

    def _stream_cut(self) -> tuple:
        warmup = self.tbptt_steps // 2 if self.warmup_steps is None else self.warmup_steps
        return (2 * self.tbptt_steps if self.stream_length == "auto" else self.stream_length), warmup

    def _loop_config(self) -> LoopConfig:
        return LoopConfig(
            max_epochs=self.max_epochs,
            max_steps=self.max_steps,
            learning_rate=self.learning_rate,
            weight_decay=self.weight_decay,
            clip_norm=self.clip_norm,
            patience=self.patience,
            max_time=self.max_time,
            verbose=bool(self.verbose),
        )

    def _epoch_callback(self):
        """After each epoch: set ``history_`` (callbacks see it), then call the callbacks."""

        def on_epoch(records) -> bool:
            self.history_ = history_frame(records)
            stop = False
            for callback in self.callbacks or ():
                stop = bool(callback(self, records[-1])) or stop
            return stop

        return on_epoch

    def _can_warm_start(self, config: NetworkConfig, spec: FeatureSpec, covariates) -> bool:
        """Whether ``warm_start`` continues the fitted network; warns when it cannot."""
        if not (self.warm_start and hasattr(self, "network_")):
            return False
        old, new = self.network_.config.layout(), config.layout()
        old["spec"], new["spec"] = list(astuple(self.codec_.spec)), list(astuple(spec))
        old["covariates"] = self.codec_.covariates and self.codec_.covariates.state()
        new["covariates"] = covariates and covariates.state()
        changed = {k: (old[k], new[k]) for k in new if old[k] != new[k]}
        if changed:
            what = ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in changed.items())
            warnings.warn(
                f"warm_start=True, but the network's architecture changed since the last fit ({what}; "
                "spec is [season_length, long season, horizon]), so the fitted weights cannot be reused: "
                "training starts from a new network. Keep those settings (and series long enough for the "
                "same long season) to continue training, or set warm_start=False.",
                TsforecastWarning,
                stacklevel=4,
            )
        return not changed

    def _autocast(self):
        return autocast_for(self.device_, self.precision)

    # -------------------------------------------------------------- predict
    def _predict(self, panel: Panel, horizon: int, is_training_history: bool, covariates=None):
        if horizon > self.horizon_:
            raise InvalidParameterError(
                f"horizon={horizon} exceeds the horizon the network was trained for ({self.horizon_}); it "
                f"predicts all steps at once (direct multi-output). Pass horizon <= {self.horizon_}, or "
                f"refit with horizon={horizon}."
            )
        context = self.codec_.spec.context
        check_min_length(panel, context + 1, f"{type(self).__name__} (its {context}-step context)")
        reuse = is_training_history and covariates is None
        cached = self.__dict__.get("_training_forecast") if reuse else None
        if cached and cached[0] == _weights_key(self.network_):  # the weights it came from, untouched
            # Copies: the caller may change what it gets, and the kept forecast must not change.
            scaled, forecast, encoded = cached[1][:, :horizon].copy(), cached[2][:, :horizon].copy(), None
        else:
            scaled, forecast, encoded = self._forecast(panel, covariates)
            scaled, forecast = scaled[:, :horizon], forecast[:, :horizon]  # (series, h, levels)
        if not is_training_history:  # fit checked the training history (and raised)
            unit = float(self.codec_.scales.target)
            check_forecast_range(scaled, forecast, encoded.ranges, panel, unit)
        levels = self.quantile_levels_
        point = forecast[..., levels.index(0.5)]
        if self.quantiles is None:
            return point
        return {"point": point, **{f"q{q:g}": forecast[..., levels.index(q)] for q in self.quantiles}}

    def _predict_intervals(self, panel, horizon, is_training_history, levels, covariates=None):
        """The quantile outputs that bound each level (trained with ``quantiles``) as its interval."""
        pairs = interval_quantile_pairs(levels, self.quantile_levels_, type(self).__name__)
        q = self._predict(panel, horizon, is_training_history, covariates)
        return q["point"], {lv: (q[f"q{lo:g}"], q[f"q{hi:g}"]) for lv, (lo, hi) in pairs.items()}

    def _forecast(self, panel: Panel, covariates: Covariates | None = None):
        """Forecasts of the full horizon from the end of ``panel``, never non-finite.

        Future-known covariates missing for part of the horizon (a shorter ``horizon`` at predict, the
        end of ``fit``) count as their training mean: the forecast for step ``k`` reads them up to ``k``.

        Returns ``(scaled, forecast, encoded)``: the forecasts in the scaler's space and in the data's
        units, both ``(series, horizon, levels)``, and the encoded history. Raises ``TrainingError``
        (non-finite weights) or ``InvalidInputError`` naming the series instead of a non-finite one.
        """
        codec = self.codec_
        # A windows-trained network learned from `lookback` steps started from a zero state: it
        # forecasts the same way, from the last window of each series.
        keep_last = self.lookback if self.training == "windows" else None
        encoded = codec.encode(
            panel.values, panel.ids, PREDICT_CHUNK, forecast=True, keep_last=keep_last, covariates=covariates
        )
        self.network_.eval()
        out = run_streams(
            self.network_, encoded.streams, PREDICT_CHUNK, PREDICT_BATCH, codec.scales, self._autocast()
        )
        scaled = codec.decode_scaled(out, encoded.base)
        with np.errstate(over="ignore", invalid="ignore"):  # checked just below
            forecast = encoded.scaler.inverse(scaled)
        check_forecasts(self.network_, scaled, forecast, panel.ids, encoded.scaler.kind)
        return scaled, forecast, encoded

    def ineffective_parameters(self, params: dict | None = None) -> dict:
        """The parameters that have no effect given the others (``params`` override this estimator's).

        See :func:`ineffective_parameters`; tuning skips drawing them.
        """
        return ineffective_parameters({**self.get_params(deep=False), **(params or {})}, self._cell)

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
        save(self, path)

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_training_forecast", None)  # recomputed on demand; not worth a model's bytes
        if "network_" in state and self.device_.type != "cpu":
            state["network_"] = copy.deepcopy(self.network_).cpu()
            state["codec_"] = self.codec_.to("cpu")
            state["device_"] = torch.device("cpu")
        return state


def _weights_key(network) -> tuple:
    """The network and its weights' version counters: any change to them (a step, a fill) moves them."""
    return (id(network), *(p._version for p in network.parameters()))


def _defaults() -> dict:
    signature = inspect.signature(RecurrentForecaster.__init__)
    return {name: p.default for name, p in signature.parameters.items() if name != "self"}


def _warn_inert(estimator: RecurrentForecaster, device: torch.device) -> None:
    inert = inert_parameters(estimator.get_params(deep=False), _defaults(), estimator._cell, device.type)
    if inert:
        what = "; ".join(f"{name}={getattr(estimator, name)!r}: {why}" for name, why in inert.items())
        warnings.warn(
            f"{type(estimator).__name__}: these parameters have no effect with the others ({what}). "
            "Leave them at their defaults, or change the settings they depend on.",
            TsforecastWarning,
            stacklevel=4,
        )
