"""The baseline estimators: one small model per series, fitted in joblib processes when it pays."""

from __future__ import annotations

from numbers import Integral

from joblib import Parallel, delayed, effective_n_jobs
from sklearn.utils._param_validation import Interval
from tqdm.auto import tqdm

from tsforecast.base import BaseForecaster
from tsforecast.baselines.functions import _METHODS
from tsforecast.baselines.intervals import forecast_panel
from tsforecast.baselines.regression import series_regressors
from tsforecast.exceptions import InvalidParameterError

# Below this estimated sequential time, starting worker processes costs more than it saves.
_MIN_PARALLEL_SECONDS = 2.0


def _map(function, tasks, n_jobs, verbose, seconds, description):
    """``[function(*task) for task in tasks]``, in joblib processes when ``seconds`` of work pays off."""
    if effective_n_jobs(n_jobs) > 1 and len(tasks) > 1 and seconds >= _MIN_PARALLEL_SECONDS:
        results = Parallel(n_jobs=n_jobs, return_as="generator")(delayed(function)(*task) for task in tasks)
    else:
        results = (function(*task) for task in tasks)
    if verbose:
        results = tqdm(results, total=len(tasks), desc=description)
    return list(results)


_HORIZON = {"horizon": [Interval(Integral, 1, None, closed="left")]}
_SEASON = {"season_length": [Interval(Integral, 1, None, closed="left")]}
_JOBS = {
    "n_jobs": [
        Interval(Integral, None, -1, closed="right"),
        Interval(Integral, 1, None, closed="left"),
        None,
    ],
    "verbose": ["verbose"],
}


class _LocalModel:
    """Mixin of the estimators below: one small model per series, forecasts and intervals from its state.

    ``covariates`` reach the hooks only for a class that takes them (AutoARIMA): each series' fit step
    gets its regressors at the history's time stamps, its forecast and bounds steps the horizon's too.
    """

    _local = True
    _method = ""  # key of _METHODS
    _seconds_per_point = 0.0  # rough fitting cost, to decide whether worker processes pay off

    def _fit(self, panel, covariates=None):
        self.states_ = self._fit_states(panel, covariates)

    def _predict(self, panel, horizon, is_training_history, covariates=None):
        return self._predict_intervals(panel, horizon, is_training_history, (), covariates)[0]

    def _predict_intervals(self, panel, horizon, is_training_history, levels, covariates=None):
        states = self.states_ if is_training_history else self._fit_states(panel, covariates)
        name, m = type(self).__name__, getattr(self, "season_length", 1)
        return forecast_panel(name, self._method, states, panel, horizon, levels, covariates, m)

    def _fit_states(self, panel, covariates=None):
        season_length = getattr(self, "season_length", 1)
        regressors = series_regressors(covariates, panel.n_series)
        # With regressors, SARIMAX's exact likelihood costs about five times the CSS search.
        seconds = self._seconds_per_point * panel.lengths.sum() * (5.0 if any(regressors) else 1.0)
        tasks = [  # (y, m) or, with regressors, (y, m, design at the history's time stamps, names)
            (y, season_length, *((r[0][: len(y)], r[1]) if r else ()))
            for y, r in zip(panel.values, regressors, strict=True)
        ]
        return _map(_METHODS[self._method][0], tasks, self.n_jobs, self.verbose, seconds, type(self).__name__)


class _SeasonalModel(_LocalModel):
    """The M4 benchmarks' shared parameters: horizon, seasonal period, jobs, progress bar."""

    _parameter_constraints = {**_HORIZON, **_SEASON, **_JOBS}
    _min_points = 1  # the fewest observations a series needs

    def __init__(self, horizon=1, season_length=1, n_jobs=None, verbose=False):
        self.horizon = horizon
        self.season_length = season_length
        self.n_jobs = n_jobs
        self.verbose = verbose

    def _min_length(self):
        return self._min_points


class Naive(_LocalModel, BaseForecaster):
    """Naive forecaster: the last value of each series (:func:`naive`).

    Parameters
    ----------
    horizon : int, default 1
        Steps forecast when ``predict`` is called without ``horizon``.
    n_jobs : int, default None
        Fitting processes (joblib's convention: None is 1, -1 all cores); small jobs stay in this
        process, where start-up would dominate.
    verbose : bool or int, default False
        Show a progress bar while fitting.

    Attributes
    ----------
    states_ : list of dict
        Per series, ``last``: the last value.

    Examples
    --------
    >>> import pandas as pd
    >>> Naive(horizon=2).fit(pd.Series([1.0, 2.0, 3.0])).predict()
    3    3.0
    4    3.0
    dtype: float64
    """

    _parameter_constraints = {**_HORIZON, **_JOBS}
    _method = "naive"

    def __init__(self, horizon=1, n_jobs=None, verbose=False):
        self.horizon = horizon
        self.n_jobs = n_jobs
        self.verbose = verbose


class SeasonalNaive(_SeasonalModel, BaseForecaster):
    """Seasonal naive: the last season of each series, repeated (:func:`seasonal_naive`).

    Parameters
    ----------
    horizon : int, default 1
        Steps forecast when ``predict`` is called without ``horizon``.
    season_length : int, default 1
        Seasonal period ``m``; every series needs ``m`` values.
    n_jobs : int, default None
        Fitting processes (joblib's convention: None is 1, -1 all cores); small jobs stay in this
        process, where start-up would dominate.
    verbose : bool or int, default False
        Show a progress bar while fitting.

    Attributes
    ----------
    states_ : list of dict
        Per series, ``last``: the last ``season_length`` values.

    Examples
    --------
    >>> import pandas as pd
    >>> SeasonalNaive(horizon=3, season_length=2).fit(pd.Series([1.0, 2.0, 3.0, 4.0])).predict()
    4    3.0
    5    4.0
    6    3.0
    dtype: float64
    """

    _method = "seasonal_naive"

    def _min_length(self):
        return self.season_length


class Naive2(_SeasonalModel, BaseForecaster):
    """M4 ``Naive2`` benchmark: naive on the seasonally adjusted series (:func:`naive2`).

    Parameters
    ----------
    horizon : int, default 1
        Steps forecast when ``predict`` is called without ``horizon``.
    season_length : int, default 1
        Seasonal period ``m`` of the M4 adjustment (24 for hourly data); 1 turns it off.
    n_jobs : int, default None
        Fitting processes (joblib's convention: None is 1, -1 all cores); small jobs stay in this
        process, where start-up would dominate.
    verbose : bool or int, default False
        Show a progress bar while fitting.

    Attributes
    ----------
    states_ : list of dict
        Per series: ``level`` (the last adjusted value), ``trend`` (0), ``phi`` (1), the seasonal
        ``indices`` of each phase (ones when not seasonal) and the length ``n``.

    Examples
    --------
    >>> import pandas as pd
    >>> Naive2(horizon=2).fit(pd.Series([1.0, 2.0, 3.0])).predict()
    3    3.0
    4    3.0
    dtype: float64
    """

    _method = "naive2"
    _seconds_per_point = 2e-06


class SES(_SeasonalModel, BaseForecaster):
    """M4 ``SES`` benchmark: simple exponential smoothing of the adjusted series (:func:`ses`).

    Parameters
    ----------
    horizon : int, default 1
        Steps forecast when ``predict`` is called without ``horizon``.
    season_length : int, default 1
        Seasonal period ``m`` of the M4 adjustment (24 for hourly data); 1 turns it off.
    n_jobs : int, default None
        Fitting processes (joblib's convention: None is 1, -1 all cores); small jobs stay in this
        process, where start-up would dominate.
    verbose : bool or int, default False
        Show a progress bar while fitting.

    Attributes
    ----------
    states_ : list of dict
        Per series: the final ``level``, ``trend`` (0), ``phi`` (1), ``alpha``, ``beta`` (0), the residual
        variance ``sigma2`` (for intervals), the seasonal ``indices`` and the length ``n``.

    Examples
    --------
    >>> import pandas as pd
    >>> SES(horizon=2).fit(pd.Series([10.0, 12.0, 11.0, 13.0, 12.0, 12.5])).predict().round(2)
    6    11.75
    7    11.75
    dtype: float64
    """

    _method = "ses"
    _seconds_per_point = 1e-05
    _min_points = 2


class Holt(_SeasonalModel, BaseForecaster):
    """M4 ``Holt`` benchmark: Holt's linear trend on the adjusted series (:func:`holt`).

    Parameters
    ----------
    horizon : int, default 1
        Steps forecast when ``predict`` is called without ``horizon``.
    season_length : int, default 1
        Seasonal period ``m`` of the M4 adjustment (24 for hourly data); 1 turns it off.
    n_jobs : int, default None
        Fitting processes (joblib's convention: None is 1, -1 all cores); small jobs stay in this
        process, where start-up would dominate.
    verbose : bool or int, default False
        Show a progress bar while fitting.

    Attributes
    ----------
    states_ : list of dict
        Per series: the final ``level`` and ``trend``, ``phi`` (1), ``alpha``, ``beta`` (statsmodels'
        trend smoothing: R's beta / alpha), ``sigma2``, the seasonal ``indices`` and the length ``n``.

    Examples
    --------
    >>> import pandas as pd
    >>> Holt(horizon=2).fit(pd.Series([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])).predict().round(2)
    6    7.0
    7    8.0
    dtype: float64
    """

    _method = "holt"
    _seconds_per_point = 3e-05
    _min_points = 3


class DampedHolt(_SeasonalModel, BaseForecaster):
    """M4 ``Damped`` benchmark: damped-trend Holt on the adjusted series (:func:`damped`).

    Parameters
    ----------
    horizon : int, default 1
        Steps forecast when ``predict`` is called without ``horizon``.
    season_length : int, default 1
        Seasonal period ``m`` of the M4 adjustment (24 for hourly data); 1 turns it off.
    n_jobs : int, default None
        Fitting processes (joblib's convention: None is 1, -1 all cores); small jobs stay in this
        process, where start-up would dominate.
    verbose : bool or int, default False
        Show a progress bar while fitting.

    Attributes
    ----------
    states_ : list of dict
        Per series: the final ``level`` and ``trend``, the damping ``phi`` (0.8 to 0.98), ``alpha``,
        ``beta``, the residual variance ``sigma2``, the seasonal ``indices`` and the length ``n``.

    Examples
    --------
    >>> import pandas as pd
    >>> model = DampedHolt(horizon=3).fit(pd.Series([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]))
    >>> bool(0.8 <= model.states_[0]["phi"] <= 0.98)
    True
    """

    _method = "damped"
    _seconds_per_point = 3e-05
    _min_points = 3


class Theta(_SeasonalModel, BaseForecaster):
    """M4 ``Theta`` benchmark: the classic Theta method on the adjusted series (:func:`theta`).

    Parameters
    ----------
    horizon : int, default 1
        Steps forecast when ``predict`` is called without ``horizon``.
    season_length : int, default 1
        Seasonal period ``m`` of the M4 adjustment (24 for hourly data); 1 turns it off.
    n_jobs : int, default None
        Fitting processes (joblib's convention: None is 1, -1 all cores); small jobs stay in this
        process, where start-up would dominate.
    verbose : bool or int, default False
        Show a progress bar while fitting.

    Attributes
    ----------
    states_ : list of dict
        Per series: the theta=0 line's ``intercept`` and ``slope`` (time counted from 1), the SES
        ``level`` and ``alpha`` of the theta=2 line, ``sigma2``, the seasonal ``indices`` and ``n``.

    Examples
    --------
    >>> import pandas as pd
    >>> Theta(horizon=2).fit(pd.Series([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])).predict().round(2)
    6    6.5
    7    7.0
    dtype: float64
    """

    _method = "theta"
    _seconds_per_point = 1e-05
    _min_points = 3


class AutoETS(_SeasonalModel, BaseForecaster):
    """ETS per series, its form chosen by AICc (:func:`auto_ets`).

    Parameters
    ----------
    horizon : int, default 1
        Steps forecast when ``predict`` is called without ``horizon``.
    season_length : int, default 1
        Seasonal period ``m``; seasonal forms are tried for series with ``3 * m`` values.
    n_jobs : int, default None
        Fitting processes (joblib's convention: None is 1, -1 all cores); small jobs stay in this
        process, where start-up would dominate.
    verbose : bool or int, default False
        Show a progress bar while fitting.

    Attributes
    ----------
    states_ : list of dict
        Per series: the chosen ``form`` (e.g. ``"ETS(M,Ad,M)"``), its statsmodels ``spec``, ``params``
        and ``aicc``, and the final ``level``, ``trend``, ``phi``, ``seasonal`` type and ``season``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> y = pd.Series(10.0 + np.tile([0.0, 2.0, 4.0, 2.0], 8))
    >>> AutoETS(horizon=4, season_length=4).fit(y).states_[0]["form"]
    'ETS(M,N,M)'
    """

    _method = "auto_ets"
    _seconds_per_point = 0.001
    _min_points = 10


_COVARIATES = {
    name: [list, tuple, None]
    for name in ("future_covariates", "past_covariates", "static_covariates", "categorical_covariates")
}


class AutoARIMA(_SeasonalModel, BaseForecaster):
    """Seasonal ARIMA per series, its orders chosen by AICc (:func:`auto_arima`), with regressors.

    With future-known covariates it is regression with ARIMA errors (R's ``auto.arima(xreg=)``).
    Without covariates the orders and coefficients come from conditional sums of squares. With
    ``future_covariates``, each series is ``y_t = x_t' beta + u_t`` with ARIMA errors ``u_t``: the
    differences are chosen on the residuals of the regression of ``y`` on ``x``, the order search
    runs on the residuals of the differenced regression, and the chosen orders are fitted jointly
    with ``beta`` by statsmodels' ``SARIMAX`` (maximum likelihood). A categorical covariate enters as
    one 0/1 column per category but the first. A regressor that does not vary over a series'
    history, or is a linear combination of the constant and the regressors before it (after
    differencing), is dropped for that series (logged at DEBUG level)
    (:mod:`tsforecast.baselines.regression`). ``predict`` needs ``X`` for the ``horizon`` steps
    after each history; ``predict(y=..., X=...)`` refits on the new history, as without covariates.

    Parameters
    ----------
    horizon : int, default 1
        Steps forecast when ``predict`` is called without ``horizon``.
    season_length : int, default 1
        Seasonal period ``m``; seasonal orders are tried for series seasonal by the M4 test.
    n_jobs : int, default None
        Fitting processes (joblib's convention: None is 1, -1 all cores); small jobs stay in this
        process, where start-up would dominate.
    verbose : bool or int, default False
        Show a progress bar while fitting.
    future_covariates : list of str, default None
        Columns of ``X`` known over the forecast period too (a published load forecast, a planned
        price, calendar dummies): the regressors.
    categorical_covariates : list of str, default None
        Those of ``future_covariates`` that hold categories (one-hot encoded).
    past_covariates, static_covariates : None
        Not supported, and refused with an :class:`~tsforecast.exceptions.InvalidParameterError`:
        past-observed covariates have no values over the horizon for a regression to use, and a
        static covariate is constant within a series, where it cannot be told from the mean. The
        recurrent forecasters take both.

    Attributes
    ----------
    states_ : list of dict
        Per series: the chosen ``form`` (e.g. ``"ARIMA(1,0,1)(0,1,1)[24]"``), ``order``
        ``(p, q, P, Q, m)``, the differences ``d`` and ``D``, and the ``aicc``. Without regressors:
        the ``mean`` of the differenced series, the unconstrained CSS ``params`` and ``ncond``. With
        them (``form`` ``"Regression with ARIMA(...) errors"``): ``coef`` (regressor name ->
        coefficient, in the units of ``y`` per unit of the regressor), the indices of the regressor
        ``columns`` kept, SARIMAX's ``params`` and whether its optimiser ``converged``.
    covariate_categories_ : dict or None
        The categories of each categorical covariate seen at ``fit`` (None without covariates).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> y = pd.Series(np.cumsum(np.random.default_rng(0).normal(size=60)))
    >>> AutoARIMA(horizon=3).fit(y).states_[0]["form"]
    'ARIMA(1,1,0)'

    With a future-known covariate: ``X`` covers the history at ``fit``, and the horizon too at
    ``predict`` (one frame may hold both).

    >>> rng = np.random.default_rng(0)
    >>> ds = pd.date_range("2024-01-01", periods=130, freq="D")
    >>> X = pd.DataFrame({"price": rng.normal(10.0, 1.0, 130)}, index=ds)
    >>> noise = rng.normal(0.0, 0.5, 120)
    >>> sales = pd.Series(50.0 - 3.0 * X["price"].iloc[:120].to_numpy() + noise, index=ds[:120])
    >>> model = AutoARIMA(horizon=10, future_covariates=["price"]).fit(sales, X=X)
    >>> round(model.states_[0]["coef"]["price"], 1)
    -2.9
    >>> model.predict(X=X).index[0]
    Timestamp('2024-04-30 00:00:00')
    """

    _parameter_constraints = {**_SeasonalModel._parameter_constraints, **_COVARIATES}
    _takes_covariates = True
    _method = "auto_arima"
    _seconds_per_point = 0.0005
    _min_points = 10

    def __init__(
        self,
        horizon=1,
        season_length=1,
        n_jobs=None,
        verbose=False,
        future_covariates=None,
        categorical_covariates=None,
        past_covariates=None,
        static_covariates=None,
    ):
        self.horizon = horizon
        self.season_length = season_length
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.future_covariates = future_covariates
        self.categorical_covariates = categorical_covariates
        self.past_covariates = past_covariates
        self.static_covariates = static_covariates

    def check_params(self) -> None:
        """Validate the parameters (:meth:`BaseForecaster.check_params`), refusing past and static covariates.

        Raises
        ------
        InvalidParameterError
            Naming the parameter, the allowed values and the value received.
        """
        super().check_params()
        if self.past_covariates:
            raise InvalidParameterError(
                f"AutoARIMA takes future-known covariates only; got past_covariates="
                f"{list(self.past_covariates)}. A regression needs its regressors over the forecast "
                "horizon, where past-observed covariates have no values. Declare them in "
                "future_covariates if they are known for the forecast period, or use a recurrent "
                "forecaster (LSTMForecaster, GRUForecaster), which takes past covariates."
            )
        if self.static_covariates:
            raise InvalidParameterError(
                f"AutoARIMA takes no static covariates; got static_covariates="
                f"{list(self.static_covariates)}. It fits one model per series, where a value constant "
                "within the series cannot be told from the mean. Leave them out, or use a recurrent "
                "forecaster (LSTMForecaster, GRUForecaster), which learns across series from them."
            )
        self.covariate_roles()  # names are strings, each with one role
