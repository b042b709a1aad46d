"""``BaseForecaster``: the fit / predict contract every forecaster shares.

A concrete forecaster declares its parameters in ``__init__`` (stored untouched), their allowed
values in ``_parameter_constraints`` (scikit-learn's table format) and implements three hooks:

* ``_fit(panel)``: learn from a validated :class:`~tsforecast.data.Panel`, set attributes ending in ``_``;
* ``_predict(panel, horizon, is_training_history)``: return forecasts of shape ``(n_series, horizon)``
  (or a dict with a ``"point"`` array and extra columns such as quantiles);
* ``_min_length()``: the fewest observations a series needs.

A forecaster with intervals of its own also implements
``_predict_intervals(panel, horizon, is_training_history, levels)``: the point forecasts and, per
level (percent), the lower and upper bounds of the central interval, each ``(n_series, horizon)``.
``predict(level=...)`` calls it; the others refuse ``level`` and point to
:class:`~tsforecast.conformal.ConformalIntervals`, which gives any forecaster calibrated intervals.

A forecaster that takes covariates sets ``_takes_covariates = True``, has the parameters
``future_covariates``, ``past_covariates``, ``static_covariates`` and ``categorical_covariates``
(and, to offer calendar features built from the time stamps, ``calendar_features`` and ``holidays``),
and its hooks receive the aligned :class:`~tsforecast.data.covariates.Covariates` as a last
argument (``_fit(panel, covariates)``, ``_predict(panel, horizon, is_training_history, covariates)``;
None when it declares none). Every other forecaster refuses ``X`` with an error saying so.

The base class does the rest: parameter validation, input validation before any work, the
``NotFittedError`` check, ``predict(y=...)`` on new history and the conversion back to pandas.
"""

from __future__ import annotations

import warnings
from numbers import Integral

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval
from sklearn.utils._param_validation import InvalidParameterError as SklearnParameterError
from sklearn.utils.validation import check_is_fitted

from tsforecast.data import (
    Columns,
    Panel,
    check_min_length,
    conform_missing,
    from_panel,
    time_axis_kind,
    to_panel,
)
from tsforecast.data.covariates import CovariateRoles, Covariates, align_covariates
from tsforecast.data.frequency import index_kind
from tsforecast.data.labels import series_label
from tsforecast.exceptions import InvalidInputError, InvalidParameterError, TsforecastWarning
from tsforecast.metrics.intervals import interval_columns, interval_levels


class BaseForecaster(BaseEstimator):
    """Base class of all tsforecast forecasters (not used directly).

    Subclasses get ``fit(y, X=None)`` and ``predict(horizon=None, X=None, y=None)``, where ``y`` is a
    pandas Series, a wide DataFrame or a long DataFrame (``unique_id``, ``ds``, ``y``); forecasts come
    back in the same layout. Covariates (``X``) go to the forecasters that declare some.
    """

    _parameter_constraints: dict = {"horizon": [Interval(Integral, 1, None, closed="left")]}

    # Whether the forecaster takes covariates (X); the ``compare``/``backtest``/``tune`` helpers pass
    # X only to those that do.
    _takes_covariates = False

    # Local models refit on the history given to predict(y=...); global models condition on it, so
    # a forecast from new history costs them a forward pass, not a fit.
    _local = False

    # What validation does with interior missing values: "error" names them; "keep" passes them on.
    _missing_policy = "error"

    def fit(self, y, X=None, *, freq=None, id_col="unique_id", time_col="ds", target_col="y"):
        """Fit the forecaster on the history ``y``.

        Parameters
        ----------
        y : pd.Series, pd.DataFrame, np.ndarray or Panel
            One series, a wide frame (one column per series) or a long frame; or a
            :class:`~tsforecast.data.Panel` already validated (backtests and tuning pass one per
            window instead of converting pandas again).
        X : pd.DataFrame, optional
            Covariates, for a forecaster that declares some (``future_covariates``, ...): a long
            frame with the id and time columns, or a frame indexed by time shared by every series
            (:mod:`tsforecast.data.covariates`). Forecasters without covariates refuse it.
        freq : str, pd.DateOffset or int, optional
            Frequency of the time index, inferred when omitted.
        id_col, time_col, target_col : str
            Column names of the long layout.

        Returns
        -------
        self
        """
        self.check_params()
        if isinstance(y, Panel):
            panel = conform_missing(y, self._missing_policy)
        else:
            columns = Columns(id_col, time_col, target_col)
            panel = to_panel(y, freq=freq, columns=columns, missing=self._missing_policy)
        check_min_length(panel, self._min_length(), _describe(self))
        if self._takes_covariates:
            covariates = self._align_covariates(X, panel, horizon=0, categories=None)
            self._fit(panel, covariates)
            self.covariate_categories_ = None if covariates is None else covariates.categories
        else:
            _reject_exogenous(X, type(self).__name__)
            self._fit(panel)
        self._set_training_panel(panel)
        return self

    def covariate_roles(self) -> CovariateRoles:
        """The covariate columns of each role, from the ``*_covariates`` parameters (empty: none).

        Raises
        ------
        InvalidParameterError
            A name is not a string, or a column has two roles.
        """
        if not self._takes_covariates:
            return CovariateRoles()
        return CovariateRoles.from_params(
            self.future_covariates,
            self.past_covariates,
            self.static_covariates,
            self.categorical_covariates,
            # Calendar features are built from the time stamps, by the forecasters that offer them.
            getattr(self, "calendar_features", None),
            getattr(self, "holidays", None),
        )

    def _align_covariates(self, X, panel: Panel, horizon: int, categories) -> Covariates | None:
        """``X`` validated and aligned with ``panel`` (None when no covariate is declared)."""
        roles = self.covariate_roles()
        name = type(self).__name__
        if not roles:
            if X is not None:
                raise InvalidInputError(
                    f"{name} got X but declares no covariate: name its columns in future_covariates, "
                    "past_covariates or static_covariates."
                )
            return None
        if X is None and roles.names:
            raise InvalidInputError(
                f"{name} declares the covariates {list(roles.names)}; pass them as X (to fit, and to "
                "predict with the future-known ones for the horizon)."
            )
        return align_covariates(X, panel, roles, horizon=horizon, categories=categories)

    def _set_training_panel(self, panel: Panel) -> None:
        """The fitted attributes every forecaster shares (``fit`` and model loading set them here)."""
        self.training_panel_ = panel
        self.n_series_ = panel.n_series
        self.freq_ = panel.freq

    def predict(self, horizon=None, X=None, y=None, level=None):
        """Forecast ``horizon`` steps after the end of each series.

        Parameters
        ----------
        horizon : int, optional
            Number of steps; defaults to the ``horizon`` parameter.
        X : pd.DataFrame, optional
            Covariates, as for ``fit``, covering each history and, for the future-known ones, the
            ``horizon`` steps after it.
        y : pd.Series, pd.DataFrame or Panel, optional
            History to forecast from instead of the training data, in any accepted layout (updated
            series, or series never seen in training).
        level : float or list of float, optional
            Central prediction intervals to add, in percent (``level=[80, 95]``): the columns
            ``y_lo_80``, ``y_hi_80``, ``y_lo_95``, ``y_hi_95`` beside ``y_pred``. The bounds contain the
            point forecast and are nested (a wider level never lies inside a narrower one).

        Returns
        -------
        pd.Series or pd.DataFrame
            In the layout of the history the forecasts continue. With ``level``, a Series history
            gives a frame indexed by time (``y_pred`` and the bounds), a wide history a frame whose
            column levels are the output (``y_pred``, ``y_lo_95``...) and the series, a long history
            the bound columns beside ``y_pred``. Other extra outputs (the quantile columns ``q0.1``...
            of a forecaster fitted with ``quantiles``) come only in the long layout; a Series or wide
            frame holds the point forecasts alone, and a
            :class:`~tsforecast.exceptions.TsforecastWarning` says so.
        """
        check_is_fitted(self, "training_panel_")
        horizon = self._resolve_horizon(horizon)
        levels = interval_levels(level)
        if not self._takes_covariates:
            _reject_exogenous(X, type(self).__name__)
        panel = self.training_panel_ if y is None else self.validate_history(y)
        forecasts = self._checked_predict(panel, horizon, y is None, X, levels)
        if not isinstance(forecasts, dict):
            return from_panel(panel, forecasts)
        bounds = [name for lv in levels for name in interval_columns(lv)]
        extra = {k: v for k, v in forecasts.items() if k != "point"}
        if panel.layout.kind != "long":
            if set(extra) - set(bounds):
                warnings.warn(
                    f"{type(self).__name__} forecasts {sorted(set(extra) - set(bounds))} besides the point "
                    f"forecast, but a {'pd.Series' if panel.layout.kind == 'series' else 'wide frame'} "
                    "history only gets the point forecasts and intervals; pass the history as a long "
                    "frame (unique_id, ds, y) to get them as columns.",
                    TsforecastWarning,
                    stacklevel=2,
                )
            extra = {name: extra[name] for name in bounds}
        return from_panel(panel, forecasts["point"], extra)

    def predict_panel(self, panel: Panel, horizon=None, X=None, level=None):
        """Forecasts from a validated history panel, as arrays (what ``predict`` converts to pandas).

        Parameters
        ----------
        panel : Panel
            From :meth:`validate_history` (or the training panel).
        horizon : int, optional
            Number of steps; defaults to the ``horizon`` parameter.
        X : pd.DataFrame, optional
            Covariates of a forecaster that declares some (as for :meth:`predict`).
        level : float or list of float, optional
            Central prediction intervals, in percent (as for :meth:`predict`).

        Returns
        -------
        np.ndarray of shape (n_series, horizon), or a dict with the ``"point"`` array and extra
        arrays of that shape (quantiles; the interval bounds named by
        :func:`~tsforecast.metrics.intervals.interval_columns`).
        """
        check_is_fitted(self, "training_panel_")
        horizon = self._resolve_horizon(horizon)
        levels = interval_levels(level)
        return self._checked_predict(panel, horizon, panel is self.training_panel_, X, levels)

    def _checked_predict(self, panel: Panel, horizon: int, is_training_history: bool, X=None, levels=()):
        """``_predict`` (or ``_predict_intervals``), refusing non-finite forecasts.

        Non-finite forecasts never leave ``predict`` silently.
        """
        if levels and not has_own_intervals(self):
            name = type(self).__name__
            raise InvalidParameterError(
                f"{name} has no prediction intervals of its own; wrap it to get calibrated ones: "
                f"ConformalIntervals({name}(...)).fit(y).predict(level={list(levels)})."
            )
        covariates = ()
        if self._takes_covariates:
            covariates = (self._align_covariates(X, panel, horizon, self.covariate_categories_),)
        if levels:
            point, bounds = self._predict_intervals(panel, horizon, is_training_history, levels, *covariates)
            forecasts = {"point": point, **nested_bounds(point, bounds)}
        else:
            forecasts = self._predict(panel, horizon, is_training_history, *covariates)
        arrays = forecasts.values() if isinstance(forecasts, dict) else [forecasts]
        bad_rows = np.flatnonzero(~np.all([np.isfinite(a).all(axis=1) for a in arrays], axis=0))
        if bad_rows.size:
            first = bad_rows[0]
            peak = np.nanmax(np.abs(panel.values[first]), initial=0.0)
            raise InvalidInputError(
                f"{type(self).__name__} forecasts {series_label(panel.ids[first])} as NaN or infinite "
                f"({bad_rows.size} of {panel.n_series} series): its history reaches |y| = {peak:.3g}, "
                "and the forecast leaves float64's range. Divide the data by a constant (forecasts "
                "scale back exactly) or choose another model for that series."
            )
        return forecasts

    def validate_history(self, y) -> Panel:
        """Validate ``y`` as history to forecast from and return it as a :class:`Panel`.

        ``y`` takes the training data's column names and, for the same kind of time axis, its
        frequency; a :class:`Panel` is only re-checked for missing values and length.
        """
        check_is_fitted(self, "training_panel_")
        if isinstance(y, Panel):
            panel = conform_missing(y, self._missing_policy)
            check_min_length(panel, self._min_length(), _describe(self))
            return panel
        layout = self.training_panel_.layout
        same_kind = time_axis_kind(y, layout.columns) == index_kind(self.training_panel_.index[0])
        panel = to_panel(
            y, freq=self.freq_ if same_kind else None, columns=layout.columns, missing=self._missing_policy
        )
        check_min_length(panel, self._min_length(), _describe(self))
        return panel

    def _resolve_horizon(self, horizon) -> int:
        horizon = self.horizon if horizon is None else horizon
        if np.ndim(horizon) > 0 or isinstance(horizon, (pd.Series, pd.DataFrame)):
            # Data passed where the number of steps belongs: report what is wrong with it as data
            # first (NaN, inf, ...), then point to predict(y=...).
            to_panel(horizon)
            raise InvalidParameterError(
                f"horizon must be an integer >= 1; got {type(horizon).__name__} data. To forecast "
                "from new history, call predict(y=history)."
            )
        if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or horizon < 1:
            raise InvalidParameterError(f"horizon must be an integer >= 1; got {horizon!r}.")
        return int(horizon)

    def check_params(self) -> None:
        """Validate the parameters against ``_parameter_constraints`` (scikit-learn's checker).

        ``fit`` runs it first; the registry, tuning and model loading run it before any data is read.

        Raises
        ------
        InvalidParameterError
            Naming the parameter, the allowed values and the value received.
        """
        try:
            self._validate_params()
        except SklearnParameterError as error:
            raise InvalidParameterError(str(error)) from None

    def _min_length(self) -> int:
        return 1

    def _fit(self, panel: Panel) -> None:
        raise NotImplementedError

    def _predict(self, panel: Panel, horizon: int, is_training_history: bool):
        raise NotImplementedError

    def _predict_intervals(self, panel: Panel, horizon: int, is_training_history: bool, levels: tuple):
        """``(point, {level: (lower, upper)})``, each ``(n_series, horizon)`` (see the module docstring)."""
        raise NotImplementedError


def nested_bounds(point: np.ndarray, bounds: dict) -> dict:
    """Interval bounds as forecast columns, made to contain ``point`` and to nest across levels.

    Bounds computed level by level (or from separately trained quantiles) can cross: each lower bound
    is lowered to the point forecast at most and sorted with the others (the monotone rearrangement
    of quantile estimates, Chernozhukov, Fernandez-Val and Galichon 2010), the upper ones likewise.
    The point forecast itself is never changed.

    Parameters
    ----------
    point : np.ndarray of shape (n_series, horizon)
    bounds : dict of float -> (np.ndarray, np.ndarray)
        Per level (percent), the lower and upper bounds.

    Returns
    -------
    dict of str -> np.ndarray
        ``{"y_lo_80": ..., "y_hi_80": ..., "y_lo_95": ...}``, levels in increasing order.
    """
    levels = sorted(bounds)
    lower = np.sort(np.minimum([bounds[lv][0] for lv in levels], point), axis=0)[::-1]  # widest last
    upper = np.sort(np.maximum([bounds[lv][1] for lv in levels], point), axis=0)
    columns = {}
    for k, level in enumerate(levels):
        lo, hi = interval_columns(level)
        columns[lo], columns[hi] = lower[k], upper[k]
    return columns


def takes_covariates(estimator) -> bool:
    """Whether a forecaster (an instance or its class) can take covariates ``X``.

    The forecasters that can declare ``future_covariates`` (and the other roles) and accept ``X``
    in ``fit`` and ``predict``; every other one refuses ``X`` with an
    :class:`~tsforecast.exceptions.InvalidInputError`. Whether an instance uses covariates is
    ``bool(estimator.covariate_roles())``. Anything that is not a tsforecast forecaster: False.

    Parameters
    ----------
    estimator : BaseForecaster or type
        A forecaster, or a forecaster class.

    Returns
    -------
    bool

    Examples
    --------
    >>> from tsforecast.baselines import AutoARIMA, Theta
    >>> takes_covariates(AutoARIMA), takes_covariates(Theta())
    (True, False)
    """
    cls = estimator if isinstance(estimator, type) else type(estimator)
    return issubclass(cls, BaseForecaster) and bool(cls._takes_covariates)


def _reject_exogenous(X, estimator_name: str) -> None:
    if X is not None:
        raise InvalidInputError(
            f"{estimator_name} does not use exogenous regressors; got X of type {type(X).__name__}. "
            "Call fit(y) with the target series only (note the argument order: fit(y, X=None))."
        )


def _describe(estimator) -> str:
    """The estimator's name, with what sets its minimum length when it says (``_length_reason``)."""
    reason = getattr(estimator, "_length_reason", None)
    return type(estimator).__name__ + (f" ({reason()})" if reason else "")


def has_own_intervals(estimator) -> bool:
    """Whether a forecaster (an instance or its class) computes prediction intervals of its own.

    True for the statistical baselines, the recurrent forecasters (from their trained quantiles:
    which levels they give depends on ``quantiles``) and
    :class:`~tsforecast.conformal.ConformalIntervals`; a forecaster without them refuses
    ``predict(level=...)`` and can be wrapped in the latter.

    Examples
    --------
    >>> from tsforecast.baselines import Naive
    >>> has_own_intervals(Naive), has_own_intervals(BaseForecaster)
    (True, False)
    """
    cls = estimator if isinstance(estimator, type) else type(estimator)
    # The base class's hook is the one that raises: a forecaster without intervals keeps it.
    return issubclass(cls, BaseForecaster) and cls._predict_intervals is not BaseForecaster._predict_intervals
