"""The one codec between a panel of series and the network: encode to device streams, decode forecasts.

Every path from data to the network goes through :meth:`PanelCodec.encode`: training (TBPTT streams or
the rows sliding windows are cut from), the validation tail, forecasting, and the diagnostics' probes.
It applies the per-series scaler, computes the filled values / causal level / target mask of each
series (:func:`~tsforecast.nn.streams.series_arrays`), plans the streams and lays them out once on
the device (:func:`~tsforecast.nn.streams.build_streams`). Every path back goes through
:meth:`PanelCodec.decode`: network output times the target scale, plus the seasonal naive base,
sorted across quantile levels (no crossing), then the inverse of the per-series scaler.

A codec is fitted once per ``fit``: the scaler on the training parts, then the global feature and
target scales on the encoded training streams (:meth:`PanelCodec.fit_scales`). A model with
covariates carries a :class:`~tsforecast.nn.covariates.CovariateCodec` too, fitted on the same
training parts, and :meth:`PanelCodec.encode` lays the covariates out with the targets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from tsforecast.data.covariates import Covariates
from tsforecast.nn.covariates import CovariateCodec, check_roles
from tsforecast.nn.streams import FeatureSpec, Scales, Streams, build_streams, feature_moments, series_arrays
from tsforecast.scaling import SeriesScaler
from tsforecast.windowing import plan_streams

__all__ = ["PREDICT_CHUNK", "Encoded", "PanelCodec", "SeriesArrays"]

PREDICT_CHUNK = 128  # steps per forward pass without gradients: bounds activation memory, not results


@dataclass(frozen=True)
class Encoded:
    """A panel encoded for the network.

    Attributes
    ----------
    streams : Streams
        The device rows (one stream per series unless the plan cut them).
    scaler : SeriesScaler
        The per-series statistics used, one row per series (decoding inverts them).
    base : np.ndarray of shape (n_series, horizon)
        The seasonal naive forecast from each series' last step, in the scaled space.
    ranges : np.ndarray of shape (n_series, 2)
        The smallest and largest scaled value of each series (gaps filled).
    series : SeriesArrays
        Each series' ``(filled, observed)`` arrays, computed again on demand (the diagnostics).
    """

    streams: Streams
    scaler: SeriesScaler
    base: np.ndarray
    ranges: np.ndarray
    series: SeriesArrays


class SeriesArrays(Sequence):
    """Each series' scaled ``(filled, observed)`` (:func:`series_arrays`), a block of series at a time.

    The streams are laid out series after series, so each block is computed once and only one block
    is held: the host never keeps float64 copies of the whole panel. As a block is computed, each
    series' seasonal naive base and range are kept (:class:`Encoded`).
    """

    block = 1024  # series per block: bounds the float64 copies held at once

    def __init__(self, values: list, ids: list, scaler: SeriesScaler, spec, holdout: int, keep_last):
        self.values, self.ids, self.scaler, self.spec, self.keep_last = values, ids, scaler, spec, keep_last
        self.lengths = np.array([len(v) for v in values], dtype=np.int64)
        # Validation: only the last ``holdout`` values are targets.
        self.target_from = self.lengths - holdout if holdout else np.zeros_like(self.lengths)
        if keep_last is not None:
            self.lengths = np.minimum(self.lengths, spec.context + keep_last)
        self.base = np.full((len(values), spec.horizon), np.nan)
        self.ranges = np.full((len(values), 2), np.nan)
        self._first, self._arrays = None, []

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, i: int):
        first = i - i % self.block
        if first != self._first:
            rows = np.arange(first, min(first + self.block, len(self)))
            self._first, self._arrays = first, self._compute(rows)
        return self._arrays[i - first]

    def _compute(self, rows: np.ndarray) -> list:
        spec = self.spec
        values = [self.values[r] for r in rows]
        z = self.scaler.subset(rows).transform(values, names=[self.ids[r] for r in rows])
        arrays = []
        for r, v in zip(rows, z, strict=True):
            parts = series_arrays(v, spec.season_length)[0], np.isfinite(v)  # filled, observed
            if self.keep_last is not None:
                parts = tuple(part[-(spec.context + self.keep_last) :] for part in parts)
            filled = parts[0]
            self.base[r] = spec.base(filled)
            self.ranges[r] = np.nanmin(filled), np.nanmax(filled)
            arrays.append(parts)
        return arrays


@dataclass
class PanelCodec:
    """Fitted encoder/decoder between series values and network tensors.

    Parameters
    ----------
    spec : FeatureSpec
        The per-step feature layout.
    scaler : SeriesScaler
        Training statistics, row ``k`` for the training series ``ids[k]``.
    ids : list
        The training series, in the scaler's row order.
    scales : Scales
        Global feature and target divisors on the device (identity until :meth:`fit_scales`).
    covariates : CovariateCodec, optional
        The covariates' scaling and layout (None: a model without covariates).
    """

    spec: FeatureSpec
    scaler: SeriesScaler
    ids: list
    scales: Scales
    covariates: CovariateCodec | None = None
    _rows: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        self._rows = {sid: row for row, sid in enumerate(self.ids)}

    @classmethod
    def fit(
        cls, spec: FeatureSpec, kind: str, values: list, ids: list, device, covariates=None
    ) -> PanelCodec:
        """A codec with the per-series scaler of ``kind`` fitted on the training ``values``.

        Feature scales are identity (until :meth:`fit_scales`); ``covariates`` is the
        :class:`CovariateCodec` fitted on the same training parts, if any.
        """
        scaler = SeriesScaler(kind).fit(values, names=ids)
        return cls(spec, scaler, list(ids), Scales.identity(spec, device), covariates)

    @property
    def device(self) -> torch.device:
        """Where the scales, and so the encoded streams, live."""
        return self.scales.features.device

    def to(self, device) -> PanelCodec:
        """The same codec with its scales on ``device``."""
        scales = Scales(self.scales.features.to(device), self.scales.target.to(device))
        return PanelCodec(self.spec, self.scaler, self.ids, scales, self.covariates)

    def fit_scales(self, encoded: Encoded, chunk: int, batch_size: int, group=None) -> None:
        """Set the global feature and target scales from the encoded training streams (all processes')."""
        self.scales = feature_moments(encoded.streams, chunk, batch_size, group)

    def scaler_for(self, ids: list, values: list) -> SeriesScaler:
        """Training statistics for known series, each new series' own statistics otherwise."""
        if list(ids) == self.ids:  # the training panel (predict() without y): no per-series copies
            return self.scaler
        parts = [
            self.scaler.subset([self._rows[sid]])
            if sid in self._rows
            else SeriesScaler(self.scaler.kind).fit([v], names=[sid])
            for sid, v in zip(ids, values, strict=True)
        ]
        return SeriesScaler.concat(parts)

    def encode(
        self,
        values: list,
        ids: list,
        chunk: int,
        *,
        forecast: bool = False,
        scaler: SeriesScaler | None = None,
        cut: tuple | None = None,
        holdout: int = 0,
        keep_last: int | None = None,
        covariates: Covariates | None = None,
    ) -> Encoded:
        """Scale ``values`` and lay them out as device streams padded to whole ``chunk`` s.

        Parameters
        ----------
        values, ids : list
            The series (float64 arrays, NaN where missing) and their ids.
        chunk : int
            Steps per chunk (``tbptt_steps``, ``lookback`` or :data:`PREDICT_CHUNK`).
        forecast : bool, default=False
            Streams end at the last time stamp (the forecast origin) instead of the last step with a
            target.
        scaler : SeriesScaler, optional
            Per-series statistics to use (default: :meth:`scaler_for` the ids).
        cut : (stream_length, warmup), optional
            Cut long series into several streams (TBPTT training).
        holdout : int, default=0
            Only the last ``holdout`` values of each series are targets (validation).
        keep_last : int, optional
            Run only the last ``keep_last`` steps of each series (windows-trained models forecast from
            their last window, from a zero state, as they were trained).
        covariates : Covariates, optional
            Aligned with the series (required when the codec has covariates). Each series takes its
            rows up to its last value (training: nothing after the cut), plus the future-known rows of
            the horizon when ``forecast``.
        """
        spec = self.spec
        scaler = self.scaler_for(ids, values) if scaler is None else scaler
        series = SeriesArrays(values, ids, scaler, spec, holdout, keep_last)
        starts = [0] * len(values)
        if keep_last is not None:
            starts = [max(len(v) - spec.context - keep_last, 0) for v in values]
        n_steps = series.lengths - spec.context - (0 if forecast else 1)
        plan = plan_streams(n_steps, *(cut or (None, 0)))
        rows, ahead = None, None
        check_roles(self.covariates, covariates)
        if self.covariates is not None:
            ends = [len(v) + (spec.horizon if forecast else 0) for v in values]
            rows = self.covariates.transform(covariates, ends, starts)  # (rows, n_covariates) per series
            ahead = self.covariates.ahead_columns()
        streams = build_streams(
            series, plan, spec, chunk, self.device, rows, ahead, series.lengths, series.target_from
        )
        return Encoded(streams, scaler, series.base, series.ranges, series)

    def base(self, filled: list, times: np.ndarray | None = None) -> np.ndarray:
        """The seasonal naive forecasts (scaled space) from the ``filled`` series (``Encoded.series``).

        Made at each series' last step: ``(n_series, horizon)``; or at the steps ``times`` of every
        series: ``(n_series, len(times), horizon)``.
        """
        return np.stack([self.spec.base(f, times) for f in filled])

    def decode(self, out: torch.Tensor, base: np.ndarray, scaler: SeriesScaler) -> np.ndarray:
        """Network outputs -> forecasts in the data's units: :meth:`decode_scaled`, then un-scaled.

        Parameters
        ----------
        out : torch.Tensor of shape (n_series, ..., horizon * n_levels)
            Normalised head outputs (corrections of the seasonal naive forecast).
        base : np.ndarray of shape (n_series, ..., horizon)
            The seasonal naive forecasts in the scaled space (:meth:`base`).
        scaler : SeriesScaler
            The statistics of those series.

        Returns
        -------
        np.ndarray of shape (n_series, ..., horizon, n_levels)
            Sorted along the levels, so quantiles never cross.
        """
        return scaler.inverse(self.decode_scaled(out, base))

    def decode_scaled(self, out: torch.Tensor, base: np.ndarray) -> np.ndarray:
        """Network outputs -> forecasts in the scaled space ``(n_series, ..., horizon, n_levels)``.

        The outputs times the target scale, plus the seasonal naive ``base``, sorted along the levels.
        """
        horizon = self.spec.horizon
        corrections = (out.float() * self.scales.target).double().cpu().numpy()
        corrections = corrections.reshape(*corrections.shape[:-1], horizon, -1)  # (..., horizon, levels)
        return np.sort(base[..., None] + corrections, axis=-1)
