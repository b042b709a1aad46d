"""Calibrated prediction intervals around any forecaster: split conformal prediction over time.

:class:`ConformalIntervals` wraps a forecaster (recurrent or statistical). At ``fit`` it cuts
``n_windows`` rolling-origin windows from the end of the training data, forecasts each window from
the history before it and keeps the errors per horizon step: the *calibration scores*. Then it
trains the forecaster on all the data (``refit``). ``predict(level=95)`` puts around each point
forecast for step ``k`` the 95% conformal quantile of the step-``k`` scores.

**Guarantee.** If the calibration errors and the error of a new forecast are exchangeable (any
ordering of them is as likely as any other), the interval holds the actual value with probability at
least ``level`` (Vovk, Gammerman and Shafer 2005; Lei et al. 2018), whatever the model and however
wrong it is: a bad model gets wide intervals, not false ones. The finite-sample quantile is the
``ceil((n + 1) * level / 100)``-th smallest of ``n`` scores; too few scores for a level is an error.

**Assumption, in plain words.** The errors of the calibration windows must look like the errors of
the forecast: the same model quality, the same kind of period. Time series break this when the
series change (a level shift, a new regime, a season not in the windows) or when calibration windows
and forecasts differ in what the model saw. The windows are the latest data, and their forecasts
come from models fitted without them, as the final forecast is, so the errors are honest
out-of-sample errors; pooling the scores of all series (the default) assumes the series' errors are
alike in scale after the forecaster's own scaling is undone, so wrap a model of series on very
different scales with ``per_series=True`` (each series its own scores: this needs ``n_windows``
of at least ``100 / (100 - level) - 1``, e.g. 19 for 95%).

**Scale.** Each error is divided by a scale of its series before the quantile is taken, and the
interval's half-width multiplied back by it, so pooled scores serve a panel whose series differ in
scale by orders of magnitude, and a series the model forecasts well gets a narrower interval than one
it forecasts badly (normalized conformal prediction, Papadopoulos et al. 2008; Lei et al. 2018,
section 5.2). ``scale`` chooses it:

* ``"model"``: the forecaster's own mean absolute error over the ``scale_windows`` horizons before
  the origin (forecast from the history before each, with the fitted model). The interval follows
  how hard each series is *for this model*. A global model (a network) forecasts from new history
  with a forward pass, so this costs ``scale_windows`` forecasts per origin, not fits.
* ``"seasonal"``: the mean absolute seasonal difference of the history (the MASE scale, at the
  forecaster's ``season_length``): how volatile the series is, whatever the model.
* ``"auto"`` (default): ``"model"`` for a global model, ``"seasonal"`` for a local one (a statistical
  baseline refits for every forecast, so its own errors would cost ``scale_windows`` fits).
* ``None``: raw errors.

The scale comes from data before each origin, so exchangeability is kept.

Two scores (``method``):

* ``"absolute"``: ``|y - y_pred|``; symmetric intervals around the point forecast, any level at
  ``predict``.
* ``"quantile"``: conformalized quantile regression (Romano, Patterson and Candes 2019) for a
  forecaster with intervals of its own (a baseline, or a recurrent network fitted with
  ``quantiles``): the score ``max(lo - y, y - hi)`` widens (or narrows) the model's own interval,
  keeping its shape; the levels are those of ``calibration_levels``, calibrated at ``fit``.
"""

from __future__ import annotations

import math
from numbers import Integral

import numpy as np
from sklearn.base import clone
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions

from tsforecast.base import BaseForecaster, has_own_intervals
from tsforecast.data import Panel
from tsforecast.data.frequency import seasonal_periods
from tsforecast.data.labels import series_label
from tsforecast.exceptions import InvalidInputError, InvalidParameterError
from tsforecast.metrics.intervals import interval_columns, interval_levels

__all__ = ["ConformalIntervals"]

# refit="warm" trains on for this fraction of the calibration fit's budget (8 of the default 40
# epochs): 4 epochs left M4 Hourly's validation OWA 2% worse than a full refit, 8 matched it.
WARM_BUDGET = 0.2


class ConformalIntervals(BaseForecaster):
    """Any forecaster with prediction intervals calibrated on its own rolling-origin errors.

    Parameters
    ----------
    forecaster : BaseForecaster
        The model whose forecasts get intervals (cloned; the point forecasts are its own).
    n_windows : int, default=3
        Calibration windows cut from the end of the training data, ``step`` apart. With ``S``
        series, each horizon step has ``S * n_windows`` scores (per series: ``n_windows``).
    step : int, optional
        Distance between the windows' origins (default: the forecaster's ``horizon``).
    method : {"absolute", "quantile"}, default="absolute"
        The calibration score (see the module docstring).
    calibration_levels : list of float, optional
        The levels (percent) ``method="quantile"`` calibrates at ``fit`` (default ``[80, 95]``);
        ``predict`` offers those.
    per_series : bool, default=False
        Calibrate each series on its own scores instead of pooling all series' scores.
    scale : {"auto", "model", "seasonal"} or None, default="auto"
        What each score is divided by (see the module docstring); None: raw errors.
    scale_windows : int, default=6
        Horizons before the origin whose errors make ``scale="model"``'s scale (fewer when the
        shortest series has no room for them).
    refit : {"warm", True, False}, default="warm"
        How the forecaster learns the windows' data once the scores are taken. ``"warm"``: a
        forecaster that can continue its fit (``warm_start``, the recurrent ones) trains on from the
        calibration fit over all the data for a fifth of its budget (``max_epochs``, and
        ``max_steps`` when set), which on M4 Hourly's validation windows gave the point accuracy of a
        full refit at about a fifth of its cost; any other forecaster is fitted anew. True: fitted anew
        on all the data (two whole fits). False: keeps the calibration fit, which forecasts from the
        whole history without having trained on its last windows (one fit; less accurate).
        A statistical baseline refits on the history it forecasts from either way.

    Attributes
    ----------
    forecaster_ : BaseForecaster
        The forecaster trained on all the data (``refit=False``: on the data before the windows).
    scores_ : dict
        Calibration scores, ``(n_series, n_windows, horizon)`` arrays (NaN where a window had no
        actual): under ``"absolute"`` for the absolute errors, else per calibrated level.
    calibration_ids_ : list
        The series the scores belong to.
    scales_ : np.ndarray of shape (n_series, 1)
        Each training series' scale at the end of its history (what ``predict()`` multiplies by).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from tsforecast.baselines import SeasonalNaive
    >>> rng = np.random.default_rng(0)
    >>> y = pd.Series(10 + np.sin(np.arange(600) * 2 * np.pi / 24) + rng.normal(0, 0.1, 600))
    >>> model = ConformalIntervals(SeasonalNaive(horizon=24, season_length=24), n_windows=19).fit(y)
    >>> list(model.predict(level=[80, 95]).columns)
    ['y_pred', 'y_lo_80', 'y_hi_80', 'y_lo_95', 'y_hi_95']
    """

    _parameter_constraints = {
        "forecaster": [HasMethods(["fit", "predict_panel"])],
        "n_windows": [Interval(Integral, 1, None, closed="left")],
        "step": [None, Interval(Integral, 1, None, closed="left")],
        "method": [StrOptions({"absolute", "quantile"})],
        "calibration_levels": [None, list, tuple],
        "per_series": ["boolean"],
        "scale": [StrOptions({"auto", "model", "seasonal"}), None],
        "scale_windows": [Interval(Integral, 1, None, closed="left")],
        "refit": ["boolean", StrOptions({"warm"})],
    }

    def __init__(
        self,
        forecaster=None,
        n_windows=3,
        step=None,
        method="absolute",
        calibration_levels=None,
        per_series=False,
        scale="auto",
        scale_windows=6,
        refit="warm",
    ):
        self.forecaster = forecaster
        self.n_windows = n_windows
        self.step = step
        self.method = method
        self.calibration_levels = calibration_levels
        self.per_series = per_series
        self.scale = scale
        self.scale_windows = scale_windows
        self.refit = refit

    @property
    def horizon(self) -> int:
        """The wrapped forecaster's horizon (the windows' length)."""
        return getattr(self.forecaster, "horizon", 1)

    def check_params(self) -> None:
        """Validate the parameters, and the wrapped forecaster's (see :meth:`BaseForecaster.check_params`)."""
        super().check_params()
        if isinstance(self.forecaster, ConformalIntervals):
            raise InvalidParameterError(
                "ConformalIntervals wraps a forecaster, not another ConformalIntervals."
            )
        if hasattr(self.forecaster, "check_params"):
            self.forecaster.check_params()
        if self.forecaster.covariate_roles():
            raise InvalidParameterError(
                "ConformalIntervals does not pass covariates on yet: wrap a forecaster without "
                "future_covariates, past_covariates or static_covariates."
            )
        if self._levels() and not has_own_intervals(self.forecaster):
            raise InvalidParameterError(
                f"method='quantile' recalibrates the forecaster's own intervals, and "
                f"{type(self.forecaster).__name__} has none: use method='absolute'."
            )

    def _levels(self) -> tuple:
        """The levels ``method="quantile"`` calibrates (empty under ``"absolute"``)."""
        if self.method == "absolute":
            return ()
        levels = [80, 95] if self.calibration_levels is None else self.calibration_levels
        return interval_levels(levels)

    def _length_reason(self) -> str:
        return f"{self.n_windows} calibration windows of {self.horizon} steps"

    def _min_length(self) -> int:
        step = self.horizon if self.step is None else self.step
        return self.forecaster._min_length() + self.horizon + (self.n_windows - 1) * step

    def _fit(self, panel: Panel) -> None:
        horizon, levels = self.horizon, self._levels()
        step = horizon if self.step is None else self.step
        scores, model = [], None
        for window in range(self.n_windows):
            offset = (self.n_windows - 1 - window) * step  # the last window ends at each series' end
            history = panel.head(horizon + offset)
            actual = _after(history, panel, horizon)
            if model is None:  # one fit; later windows forecast from their history (local models refit)
                model = clone(self.forecaster).fit(history)
                history = model.training_panel_
                errors = OriginErrors(model, panel, horizon)  # shared by the windows' scales
            forecasts = model.predict_panel(history, horizon, level=levels or None)
            scores.append(_scores(forecasts, actual, levels, self._scales(errors, cut=horizon + offset)))
        self.scores_ = {key: np.stack([s[key] for s in scores], axis=1) for key in scores[0]}
        self.calibration_ids_ = list(panel.ids)
        self.forecaster_ = self._refitted(model, panel)
        # A warm refit trains `model` itself on: its errors before are not the refitted model's.
        final = errors if self.refit is False else OriginErrors(self.forecaster_, panel, horizon)
        self.scales_ = self._scales(final)

    def _refitted(self, model: BaseForecaster, panel: Panel) -> BaseForecaster:
        """The forecaster trained on all of ``panel``, from the calibration fit ``model`` (see ``refit``)."""
        if self.refit is False:
            return model
        params = model.get_params(deep=False)
        if self.refit is True or "warm_start" not in params:
            return clone(self.forecaster).fit(panel)
        budget = {"warm_start": True, "max_epochs": math.ceil(params["max_epochs"] * WARM_BUDGET)}
        if params.get("max_steps"):
            budget["max_steps"] = math.ceil(params["max_steps"] * WARM_BUDGET)
        return model.set_params(**budget).fit(panel)

    def _history(self, panel: Panel, is_training_history: bool) -> Panel:
        """What the forecasts start from: the forecaster's own copy of the training data, or ``panel``.

        Its own copy when it was fitted on all of the training data (its fast path), else ``panel``.
        """
        return self.forecaster_.training_panel_ if is_training_history and self.refit else panel

    def _predict(self, panel: Panel, horizon: int, is_training_history: bool):
        return self.forecaster_.predict_panel(self._history(panel, is_training_history), horizon)

    def _predict_intervals(self, panel: Panel, horizon: int, is_training_history: bool, levels: tuple):
        calibrated = self._levels()
        if calibrated and set(levels) - set(calibrated):
            raise InvalidParameterError(
                f"ConformalIntervals(method='quantile') calibrated the levels "
                f"{[float(f'{v:g}') for v in calibrated]} at fit; level={[float(f'{v:g}') for v in levels]} "
                "asks for others: refit with "
                f"calibration_levels={sorted({*calibrated, *levels})}."
            )
        history = self._history(panel, is_training_history)
        forecasts = self.forecaster_.predict_panel(history, horizon, level=calibrated or None)
        point = _point(forecasts)
        rows = self._score_rows(panel)
        if is_training_history:
            scale = self.scales_
        else:
            scale = self._scales(OriginErrors(self.forecaster_, history, self.horizon))
        bounds = {}
        for level in levels:
            key = "absolute" if not calibrated else level
            width = conformal_quantile(self.scores_[key][rows][..., :horizon], level, self.per_series) * scale
            if calibrated:
                lo, hi = (forecasts[c] for c in interval_columns(level))
            else:
                lo, hi = point, point
            bounds[level] = (lo - width, hi + width)
        return point, bounds

    def _scale_kind(self) -> str | None:
        if self.scale != "auto":
            return self.scale
        return "seasonal" if getattr(self.forecaster, "_local", False) else "model"

    def _scales(self, errors: OriginErrors, cut: int = 0) -> np.ndarray:
        """Each series' scale ``(n_series, 1)`` at the origin ``cut`` steps before the data's end.

        The data is ``errors.panel``; raw scores have the scale 1. Under ``"model"``, a series
        without a usable error of its own (too short for one window, no actual, or forecast without
        error) takes its seasonal scale.
        """
        history = errors.panel.head(cut) if cut else errors.panel
        kind = self._scale_kind()
        if kind is None:
            return np.ones((history.n_series, 1))
        period = getattr(self.forecaster, "season_length", 1)
        if not isinstance(period, Integral) or isinstance(period, bool):  # "auto", None: from the data
            period = seasonal_periods(history.freq)[0]
        seasonal = np.array([[series_scale(v, period)] for v in history.values])
        if kind == "seasonal":
            return seasonal
        own = errors.mean_before(cut, self.scale_windows)
        return np.where(np.isfinite(own) & (own > 0), own, seasonal)

    def _score_rows(self, panel: Panel):
        """Which calibration series score each series of ``panel`` (all of them when pooled)."""
        if not self.per_series:
            return slice(None)
        where = {sid: k for k, sid in enumerate(self.calibration_ids_)}
        unknown = [sid for sid in panel.ids if sid not in where]
        if unknown:
            raise InvalidInputError(
                f"ConformalIntervals(per_series=True) has no calibration scores for "
                f"{series_label(unknown[0])} ({len(unknown)} series not seen at fit); use "
                "per_series=False to pool all series' scores."
            )
        return [where[sid] for sid in panel.ids]


def _scores(forecasts, actual: np.ndarray, levels: tuple, scale: np.ndarray) -> dict:
    """One window's scores, ``(n_series, horizon)`` each, in units of ``scale`` ``(n_series, 1)``.

    Absolute errors, or per level the CQR scores.
    """
    point = _point(forecasts)
    if not levels:
        return {"absolute": np.abs(actual - point) / scale}
    scores = {}
    for level in levels:
        lo, hi = (forecasts[c] for c in interval_columns(level))
        scores[level] = np.maximum(lo - actual, actual - hi) / scale
    return scores


class OriginErrors:
    """A fitted model's absolute errors over the horizons after origins cut from the end of a panel.

    The error after each origin is forecast once and kept as per-series sums: calibration windows
    ``step`` apart share most of the origins their scales average over.

    Parameters
    ----------
    model : BaseForecaster
        Fitted; forecasts from each origin's history (a local model refits).
    panel : Panel
        The data; an origin ``cut`` steps before its end sees ``panel.head(cut)``.
    horizon : int
        The length of each window of errors.
    """

    def __init__(self, model: BaseForecaster, panel: Panel, horizon: int):
        self.model, self.panel, self.horizon = model, panel, horizon
        self._sums = {}  # cut -> (sum of absolute errors, number of actuals) per series

    def mean_before(self, cut: int, windows: int) -> np.ndarray:
        """Each series' mean absolute error over up to ``windows`` horizons before an origin.

        The origin is ``cut`` steps before the end; each horizon is forecast from the history before
        it. Fewer horizons when the shortest series leaves room for fewer after the model's minimum
        length; NaN for a series without an actual value in them (or when there is no room at all).

        Returns
        -------
        np.ndarray of shape (n_series, 1)
        """
        shortest = int(self.panel.lengths.min()) - cut
        usable = min(windows, (shortest - self.model._min_length()) // self.horizon)
        total, count = np.zeros(self.panel.n_series), np.zeros(self.panel.n_series)
        for k in range(1, usable + 1):
            window_total, window_count = self._window(cut + self.horizon * k)
            total, count = total + window_total, count + window_count
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(count > 0, total / count, np.nan)[:, None]

    def _window(self, cut: int) -> tuple:
        if cut not in self._sums:
            past = self.panel.head(cut)
            forecast = np.asarray(_point(self.model.predict_panel(past, self.horizon)), dtype=float)
            error = np.abs(_after(past, self.panel, self.horizon) - forecast)
            self._sums[cut] = (np.nansum(error, axis=1), np.isfinite(error).sum(axis=1))
        return self._sums[cut]


def _point(forecasts) -> np.ndarray:
    """The point forecasts of ``predict_panel``'s result (a quantile model's is a dict with them)."""
    return forecasts["point"] if isinstance(forecasts, dict) else forecasts


def _after(past: Panel, panel: Panel, horizon: int) -> np.ndarray:
    """The ``horizon`` values of ``panel`` that follow the end of ``past`` (its head), per series."""
    return np.stack([v[len(p) : len(p) + horizon] for v, p in zip(panel.values, past.values, strict=True)])


def series_scale(values: np.ndarray, period: int) -> float:
    """The mean absolute difference of ``values`` at lag ``period``, never 0.

    At lag 1 when the series is shorter or flat at ``period``; a flat series gets the smallest scale
    its magnitude allows.

    Examples
    --------
    >>> series_scale(np.array([1.0, 2.0, 4.0, 7.0]), period=1)
    2.0
    """
    for lag in dict.fromkeys((period, 1)):
        changes = np.abs(values[lag:] - values[:-lag]) if len(values) > lag else np.array([])
        changes = changes[np.isfinite(changes)]
        if changes.size and changes.mean() > 0:
            return float(changes.mean())
    magnitude = float(np.nanmax(np.abs(values), initial=0.0))
    return max(magnitude * 1e-9, np.finfo(float).tiny)


def conformal_quantile(scores: np.ndarray, level: float, per_series: bool) -> np.ndarray:
    """The conformal quantile of calibration scores per horizon step.

    Parameters
    ----------
    scores : np.ndarray of shape (n_series, n_windows, horizon)
        NaN where a window had no actual.
    level : float
        Percent.
    per_series : bool
        One quantile per series (else one per step, of all series' scores).

    Returns
    -------
    np.ndarray of shape (n_series, horizon) or (1, horizon)
        The ``ceil((n + 1) * level / 100)``-th smallest of each step's ``n`` scores.

    Examples
    --------
    >>> scores = np.arange(1.0, 20.0).reshape(1, 19, 1)  # 19 scores, 1..19
    >>> conformal_quantile(scores, 90, per_series=False).tolist()  # the ceil(20 * 0.9) = 18th
    [[18.0]]
    """
    pooled = scores if per_series else scores.reshape(1, -1, scores.shape[-1])  # (groups, n, horizon)
    n = np.isfinite(pooled).sum(axis=1)  # (groups, horizon)
    rank = np.ceil((n + 1) * level / 100.0).astype(int)  # 1-based
    if (rank > n).any():
        fewest = int(n.min())
        needed = math.ceil(100.0 / (100.0 - level) - 1)
        raise InvalidParameterError(
            f"a {level:g}% conformal interval needs at least {needed} calibration scores per horizon "
            f"step{' and series' if per_series else ''}; there are {fewest}. Raise n_windows"
            f"{'' if per_series else ' (or calibrate on more series)'}, or ask for a lower level."
        )
    ordered = np.sort(np.where(np.isfinite(pooled), pooled, np.inf), axis=1)  # NaN sorted last
    return np.take_along_axis(ordered, (rank - 1)[:, None, :], axis=1)[:, 0, :]
