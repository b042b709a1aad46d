"""Regression with ARIMA errors: AutoARIMA given future-known covariates (R's ``auto.arima(xreg=)``).

The model of one series is ``y_t = x_t' beta + u_t``, where ``u_t`` is ARIMA(p,d,q)(P,D,Q)[m] with a
mean (or a drift) when ``d + D <= 1``. It is fitted in four steps:

1. **differences**: ``D`` and ``d`` are chosen as without covariates (the M4 seasonality test, then
   KPSS), but on the residuals of the least-squares regression of ``y`` on the regressors and a
   constant, as ``auto.arima`` does: a regressor that explains a trend or a season takes it away.
2. **regressors**: ``y`` and every regressor are differenced alike (``(1 - B)^d (1 - B^m)^D``); a
   regressor whose differenced column is zero or a linear combination of the constant (when the
   model has one) and of the regressors before it is dropped for that series, with a debug log: a
   column constant over the history, a second copy of a column, a trend beside the drift, the
   dummy of a category the history never shows. A series left with no regressor is fitted as
   AutoARIMA without covariates.
3. **orders**: the differenced series is regressed on the differenced regressors (and the
   constant), and AutoARIMA's order search (CSS, AICc) runs on the residuals of that regression.
4. **joint fit**: the chosen orders and the regressors are estimated together by statsmodels'
   ``SARIMAX`` (exact Gaussian likelihood of the differenced data, i.e. conditional on the first
   ``d + mD`` values, as R's ``arima``), started from the CSS and least-squares estimates. If the
   optimiser fails, the starting estimates are kept (logged).

Forecasts are SARIMAX's for the differenced series, given the differenced future regressors,
integrated back. The differenced regressors are standardised before the fit (centred only when
the model has a constant), so the optimiser sees coefficients of comparable size; ``coef`` in the
state is in the caller's units.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
from statsmodels.tsa.statespace.sarimax import SARIMAX

from tsforecast.baselines.auto import (
    _arima_form,
    _arma_polynomials,
    _choose_differences,
    _constrained,
    _fit_auto_arima,
    _forecast_arima,
    _search_orders,
)
from tsforecast.baselines.seasonality import difference, differencing_polynomial

logger = logging.getLogger(__name__)

# A differenced regressor is kept when the part of it that the constant and the regressors kept
# before it do not explain has at least this share of its norm (about sqrt of float64's epsilon).
_COLLINEAR_TOLERANCE = 1.5e-8


def regressor_design(future, roles, categories):
    """The regressors of one series: numeric covariates as they are, categorical ones one-hot.

    Parameters
    ----------
    future : np.ndarray of shape (n_rows, n_future)
        One series' future-known covariates (``Covariates.future[i]``), categorical columns as
        integer codes.
    roles : CovariateRoles
        The column names (``roles.future``) and which of them are categorical.
    categories : dict of str -> tuple
        The categories of each categorical column, in code order.

    Returns
    -------
    design : np.ndarray of shape (n_rows, n_regressors)
        A categorical column becomes one 0/1 column per category but the first (the model's
        constant stands for it).
    names : list of str
        ``"price"`` for a numeric column, ``"day=sat"`` for a category's column.

    Examples
    --------
    >>> from tsforecast.data.covariates import CovariateRoles
    >>> roles = CovariateRoles(future=("price", "day"), categorical=("day",))
    >>> design, names = regressor_design(
    ...     np.array([[9.0, 0.0], [9.5, 1.0], [8.0, 2.0]]), roles, {"day": ("fri", "sat", "sun")}
    ... )
    >>> names, design.tolist()
    (['price', 'day=sat', 'day=sun'], [[9.0, 0.0, 0.0], [9.5, 1.0, 0.0], [8.0, 0.0, 1.0]])
    """
    columns, names = [], []
    for j, name in enumerate(roles.future):
        if name not in roles.categorical:
            columns.append(future[:, j])
            names.append(name)
            continue
        for code, level in enumerate(categories[name][1:], start=1):
            columns.append((future[:, j] == code).astype(np.float64))
            names.append(f"{name}={level}")
    return np.column_stack(columns) if columns else np.empty((len(future), 0)), names


def series_regressors(covariates, n_series):
    """Per series, ``(design, names)`` from :func:`regressor_design`, or ``()`` without covariates.

    A design has the rows of the series' history, then those of the horizon.
    """
    if covariates is None or not covariates.roles.future:
        return [()] * n_series
    return [regressor_design(f, covariates.roles, covariates.categories) for f in covariates.future]


def _differenced(X, d, D, m):
    """Every column of ``X`` (n, k) differenced: (n - d - mD, k)."""
    return np.column_stack([difference(x, d, D, m) for x in X.T]) if X.shape[1] else X[d + m * D :]


def _independent_columns(X, with_constant, names):
    """Indices of the columns of ``X`` kept by step 2 of the module docstring, in order."""
    n = len(X)
    basis = [np.full(n, 1.0 / np.sqrt(n))] if with_constant and n else []
    kept = []
    for j, column in enumerate(X.T):
        norm = np.linalg.norm(column)
        residual = column.copy()
        for _ in range(2):  # Gram-Schmidt twice: orthogonal to rounding error
            for vector in basis:
                residual -= (vector @ residual) * vector
        left = np.linalg.norm(residual)
        if norm == 0 or left <= _COLLINEAR_TOLERANCE * norm:
            why = "is zero" if norm == 0 else "is a combination of the constant and the regressors before it"
            logger.debug("AutoARIMA: regressor %r dropped: differenced, it %s", names[j], why)
        elif len(basis) >= n - 2:
            logger.debug("AutoARIMA: regressor %r dropped: too few observations", names[j])
        else:
            basis.append(residual / left)
            kept.append(j)
    return kept


def _sarimax(w, exog, orders, m, seasonal, has_mean):
    p, q, P, Q = orders
    return SARIMAX(
        w,
        exog=exog,
        order=(p, 0, q),
        seasonal_order=(P, 0, Q, m) if seasonal and P + Q else (0, 0, 0, 0),
        trend="c" if has_mean else "n",
        concentrate_scale=True,  # sigma^2 in closed form: one parameter fewer to search
    )


def _start_params(css_params, order, intercept, beta):
    """SARIMAX's start: trend, regression, AR, MA, seasonal AR, seasonal MA from CSS and least squares.

    SARIMAX writes the MA polynomials as ``1 + theta_1 B + ...``, the CSS fit as ``1 - ma_1 B - ...``.
    """
    ar, ma, sar, sma = _constrained(css_params, order)
    # SARIMAX's trend enters the ARMA equation: the mean times phi(1) Phi(1).
    trend = [] if intercept is None else [intercept * _arma_polynomials(css_params, order)[0].sum()]
    return np.r_[trend, beta, ar, -ma, sar, -sma]


def fit_regression_arima(y, season_length=1, X=None, names=None):
    """Regression with ARIMA errors of one series (module docstring); a dict of numbers and arrays.

    ``X`` is (n, k), the regressors at the history's time stamps; ``names`` label them in logs and
    in the state's ``coef``. Without a usable regressor: AutoARIMA's state without covariates.
    """
    if X is None or not X.shape[1]:
        return _fit_auto_arima(y, season_length)
    m, n = season_length, len(y)
    names = list(names) if names is not None else [f"x{j}" for j in range(X.shape[1])]
    levels = np.column_stack([np.ones(n), X])
    residuals = y - levels @ np.linalg.lstsq(levels, y, rcond=None)[0]
    seasonal, d, D = _choose_differences(residuals, m)
    has_mean = d + D <= 1  # a mean, or a drift after one difference; none after two
    w, Xd = difference(y, d, D, m), _differenced(X, d, D, m)
    columns = _independent_columns(Xd, has_mean, names)
    if not columns:
        logger.debug("AutoARIMA: no regressor left for a series; fitted without covariates.")
        return _fit_auto_arima(y, season_length)
    # Standardised regressors (centred only beside the constant, which takes their mean): the
    # optimiser then sees coefficients of comparable size, none tied to the constant.
    center = Xd[:, columns].mean(axis=0) if has_mean else np.zeros(len(columns))
    scale = np.sqrt(np.mean((Xd[:, columns] - center) ** 2, axis=0))
    exog = (Xd[:, columns] - center) / scale
    design = np.column_stack([np.ones(len(w)), exog]) if has_mean else exog
    coefficients = np.linalg.lstsq(design, w, rcond=None)[0]
    z = w - design @ coefficients
    ncond = 2 + (m if seasonal else 0)
    orders, css_params, _ = _search_orders(z, m, seasonal, ncond, has_mean + len(columns))
    order = (*orders, m)
    intercept, beta = (coefficients[0], coefficients[1:]) if has_mean else (None, coefficients)
    start = _start_params(css_params, order, intercept, beta)
    params, aicc, converged = start, np.nan, False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence warnings: the state's "converged" says it
            fit = _sarimax(w, exog, orders, m, seasonal, has_mean).fit(start_params=start, disp=False)
        if np.isfinite(fit.llf) and np.all(np.isfinite(fit.params)):
            params, aicc = np.asarray(fit.params, dtype=np.float64), float(fit.aicc)
            converged = bool(fit.mle_retvals.get("converged", True))
    except (ValueError, ArithmeticError, np.linalg.LinAlgError) as error:
        logger.debug("AutoARIMA: SARIMAX failed (%s); the CSS and least-squares estimates are kept.", error)
    beta = params[int(has_mean) : int(has_mean) + len(columns)] / scale  # in the caller's units
    return {
        "form": f"Regression with {_arima_form(orders, d, D, m, seasonal)} errors",
        "order": order, "d": d, "D": D, "seasonal": seasonal, "has_mean": has_mean,
        "columns": np.asarray(columns), "regressor_center": center, "regressor_scale": scale,
        "params": params, "aicc": aicc, "converged": converged,
        "coef": {names[j]: float(b) for j, b in zip(columns, beta, strict=True)},
    }  # fmt: skip


def filtered_regression(state, y, X):
    """SARIMAX's results for the differenced ``y`` given a regression state, and the horizon's regressors.

    ``X`` (n + h, k) holds the history's rows, then the horizon's; the second value is the horizon's
    rows differenced and standardised as at the fit, (h, r).
    """
    m, d, D = state["order"][-1], state["d"], state["D"]
    Xd = _differenced(X[:, state["columns"]], d, D, m)  # (n + h - d - mD, r)
    Xd = (Xd - state["regressor_center"]) / state["regressor_scale"]
    w = difference(y, d, D, m)
    model = _sarimax(w, Xd[: len(w)], state["order"][:4], m, state["seasonal"], state["has_mean"])
    return model.filter(state["params"]), Xd[len(w) :]


def forecast_regression_arima(state, y, h, X=None):
    """Forecasts of one series from its state; ``X`` (n + h, k) holds the history's rows, then the horizon's.

    A state without regressors is AutoARIMA's own and ignores ``X``.
    """
    if "columns" not in state:
        return _forecast_arima(state, y, h)
    results, future = filtered_regression(state, y, X)
    path = np.asarray(results.forecast(h, exog=future), dtype=np.float64)
    delta = differencing_polynomial(state["d"], state["D"], state["order"][-1])
    y_path = np.r_[y, np.zeros(h)]
    for step in range(h):  # undo the differences: y_t = w_t - delta_1 y_(t-1) - delta_2 y_(t-2) ...
        s = len(y) + step
        y_path[s] = path[step] - delta[1:] @ y_path[s - len(delta) + 1 : s][::-1]
    return y_path[len(y) :]
