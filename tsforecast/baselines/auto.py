"""AutoETS (statsmodels ETS forms chosen by AICc) and AutoARIMA (a small order grid, CSS fits)."""

from __future__ import annotations

import logging
import warnings

import numpy as np
from statsmodels.base.model import GenericLikelihoodModel
from statsmodels.tsa.exponential_smoothing.ets import ETSModel
from statsmodels.tsa.filters.filtertools import recursive_filter
from statsmodels.tsa.statespace.tools import constrain_stationary_univariate

from tsforecast.baselines.seasonality import (
    difference,
    differencing_polynomial,
    n_differences,
    seasonality_test,
)

logger = logging.getLogger(__name__)


def _aicc(loglik, n, k):
    return -2.0 * loglik + 2.0 * k + 2.0 * k * (k + 1) / (n - k - 1) if n - k - 1 > 0 else np.inf


def _ets_forms(y, season_length):
    """Candidate ETS forms, as forecast::ets with restrict=TRUE and no multiplicative trend."""
    positive = bool(np.all(y > 0))
    seasonals = [None]
    if season_length > 1 and len(y) >= 3 * season_length:
        seasonals += ["add", "mul"] if positive else ["add"]
    for error in ("add", "mul") if positive else ("add",):
        for trend, damped in ((None, False), ("add", False), ("add", True)):
            for seasonal in seasonals:
                if error == "add" and seasonal == "mul":
                    continue  # numerically unstable (Hyndman et al. 2008), excluded by forecast::ets
                yield {
                    "error": error, "trend": trend, "damped_trend": damped, "seasonal": seasonal,
                    "seasonal_periods": season_length if seasonal else None,
                    # Estimating m initial seasonal states makes L-BFGS 10-40x slower at m = 24; with
                    # 3+ cycles the heuristic start (decomposition of the first cycles) is close enough.
                    "initialization_method": "heuristic" if seasonal else "estimated",
                }  # fmt: skip


def _ets_parameter_count(spec):
    """Parameters as forecast::ets counts them: every initial state, estimated or not, and sigma."""
    smoothing = 1 + bool(spec["trend"]) + bool(spec["seasonal"]) + spec["damped_trend"]
    initial = 1 + bool(spec["trend"]) + ((spec["seasonal_periods"] - 1) if spec["seasonal"] else 0)
    return smoothing + initial + 1


def _ets_name(spec):
    letters = {None: "N", "add": "A", "mul": "M"}
    trend = letters[spec["trend"]] + ("d" if spec["damped_trend"] else "")
    return f"ETS({letters[spec['error']]},{trend},{letters[spec['seasonal']]})"


def _fit_auto_ets(y, season_length=1):
    best, best_aicc = None, np.inf
    for spec in _ets_forms(y, season_length):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # convergence and overflow warnings of weak candidates
                fit = ETSModel(y, **spec).fit(disp=False)
        except (ValueError, ArithmeticError, np.linalg.LinAlgError) as error:
            logger.debug("%s failed: %s", _ets_name(spec), error)
            continue
        aicc = _aicc(fit.llf, len(y), _ets_parameter_count(spec))
        if np.isfinite(aicc) and aicc < best_aicc:
            best, best_aicc = (spec, fit), aicc
    if best is None:
        logger.warning("AutoETS: no ETS form could be fitted to a series of length %d; using naive.", len(y))
        return {"form": "Naive", "level": y[-1], "trend": 0.0, "phi": 1.0, "seasonal": None, "aicc": np.nan}
    spec, fit = best
    return {
        "form": _ets_name(spec),
        "spec": spec,
        "params": np.asarray(fit.params, dtype=np.float64),
        "aicc": best_aicc,
        "level": float(fit.level[-1]),
        "trend": float(fit.slope[-1]) if spec["trend"] else 0.0,
        "phi": float(fit.damping_trend) if spec["damped_trend"] else 1.0,
        "seasonal": spec["seasonal"],
        "season": fit.season[-season_length:] if spec["seasonal"] else None,
    }


def _forecast_ets(state, y, h):
    """Point forecasts from the final states (the same for additive and multiplicative errors)."""
    path = state["level"] + np.cumsum(state["phi"] ** np.arange(1, h + 1)) * state["trend"]
    if state["seasonal"] is None:
        return path
    season = np.resize(state["season"], h)  # the last m seasonal states, oldest first, repeat
    return path + season if state["seasonal"] == "add" else path * season


# --- AutoARIMA -----------------------------------------------------------------------------------
class _ConditionalSumOfSquares(GenericLikelihoodModel):
    """Gaussian likelihood of a seasonal ARMA given the first ``ncond`` values (R's CSS).

    The parameters are unconstrained and mapped to a stationary AR and an invertible MA the way
    SARIMAX maps them, so every optimiser step is a valid model.
    """

    def __init__(self, w, order, ncond):
        super().__init__(w)
        self.order, self.ncond = order, ncond

    def loglike(self, params):
        residuals = _css_residuals(self.endog, *_arma_polynomials(params, self.order), self.ncond)
        n = len(residuals) - self.ncond
        sigma2 = residuals[self.ncond :] @ residuals[self.ncond :] / n
        return -0.5 * n * (np.log(2.0 * np.pi * sigma2) + 1.0)


def _lag_polynomial(coefficients, step):
    polynomial = np.zeros(len(coefficients) * step + 1)
    polynomial[0] = 1.0
    polynomial[step::step] = coefficients
    return polynomial


def _constrained(params, order):
    """The constrained ``(ar, ma, sar, sma)`` coefficients of the unconstrained ``params``.

    They are the coefficients of ``1 - ar_1 B - ...`` (and ``1 - ma_1 B - ...``): all four
    polynomials are stationary.
    """
    p, q, P, Q, m = order
    parts = np.split(np.asarray(params, dtype=np.float64), np.cumsum([p, q, P]))
    return tuple(constrain_stationary_univariate(x) if len(x) else x for x in parts)


def _arma_polynomials(params, order):
    """Expanded ``phi(B) Phi(B^m)`` (AR, as 1 - ...) and ``theta(B) Theta(B^m)`` (MA, as 1 + ...)."""
    m = order[-1]
    ar, ma, sar, sma = _constrained(params, order)
    ar_poly = np.convolve(_lag_polynomial(-ar, 1), _lag_polynomial(-sar, m))
    ma_poly = np.convolve(_lag_polynomial(-ma, 1), _lag_polynomial(-sma, m))  # invertible: MA = -AR map
    return ar_poly, ma_poly


def _css_residuals(w, ar_poly, ma_poly, ncond):
    x = np.convolve(w, ar_poly)[: len(w)]  # phi(B) Phi(B^m) w_t
    x[:ncond] = 0.0  # no residual before the conditioning values, as in R's ARIMA_CSS
    return recursive_filter(x, -ma_poly[1:]) if len(ma_poly) > 1 else x


def _fit_arima_order(z, order, ncond, n_fixed, start=None):
    """CSS fit of one ARMA order to the centred, differenced series; returns (params, AICc).

    ``n_fixed`` counts the parameters estimated before the search (the mean, the regression
    coefficients), which AICc charges every candidate alike.
    """
    k = sum(order[:4])
    model = _ConditionalSumOfSquares(z, order, ncond)
    params = np.zeros(k) if start is None else np.asarray(start, dtype=np.float64)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a fit stopped at maxiter still ranks by its AICc
            if k:
                fit = model.fit(start_params=params, method="bfgs", maxiter=100, disp=0, skip_hessian=True)
                params, loglik = np.asarray(fit.params), fit.llf
            else:
                loglik = model.loglike(params)
    except (ValueError, ArithmeticError, np.linalg.LinAlgError) as error:
        logger.debug("ARMA%s failed: %s", order, error)
        return None, np.inf
    return params, _aicc(loglik, len(z) - ncond, k + n_fixed + 1)


def _choose_differences(y, m):
    """``(seasonal, d, D)``: ``D = 1`` when the M4 test finds ``y`` seasonal, then ``d <= 2`` by KPSS."""
    seasonal = m > 1 and seasonality_test(y, m)
    D = int(seasonal)
    return seasonal, n_differences(difference(y, 0, D, m)), D


def _search_orders(z, m, seasonal, ncond, n_fixed):
    """The ARMA orders of the centred, differenced series ``z`` with the lowest AICc, by CSS.

    Returns ``((p, q, P, Q), params, aicc)``: ``((0, 0, 0, 0), [], nan)`` when ``z`` is constant,
    too short, or no order could be fitted (the last logged as a warning).
    """
    fits = {}
    if np.ptp(z) > 0 and len(z) - ncond >= 10:
        # Stepwise in the spirit of auto.arima: the non-seasonal orders under a seasonal MA(1) (the
        # usual seasonal term), then the other seasonal forms for the best of them, warm-started.
        base = (0, 1) if seasonal else (0, 0)
        for p in range(3):
            for q in range(3):
                fits[(p, q, *base)] = _fit_arima_order(z, (p, q, *base, m), ncond, n_fixed)
        if seasonal:
            (p, q, _, _), (params, _) = min(fits.items(), key=lambda item: item[1][1])
            arma, sma = (params[: p + q], params[p + q :]) if params is not None else (np.zeros(p + q), [0.0])
            for P, Q, start in ((0, 0, arma), (1, 0, np.r_[arma, 0.0]), (1, 1, np.r_[arma, 0.0, sma])):
                fits[(p, q, P, Q)] = _fit_arima_order(z, (p, q, P, Q, m), ncond, n_fixed, start)
    finite = {key: value for key, value in fits.items() if np.isfinite(value[1])}
    if finite:
        orders, (params, aicc) = min(finite.items(), key=lambda item: item[1][1])
        return orders, params, aicc
    if fits:
        logger.warning("AutoARIMA: no ARMA order could be fitted; using white-noise errors (p = q = 0).")
    return (0, 0, 0, 0), np.zeros(0), np.nan


def _arima_form(orders, d, D, m, seasonal):
    p, q, P, Q = orders
    return f"ARIMA({p},{d},{q})" + (f"({P},{D},{Q})[{m}]" if seasonal else "")


def _fit_auto_arima(y, season_length=1):
    m = season_length
    seasonal, d, D = _choose_differences(y, m)
    w = difference(y, d, D, m)
    has_mean = d + D <= 1  # a mean, or a drift after one difference; none after two
    mean = float(w.mean()) if has_mean else 0.0
    z = w - mean
    ncond = 2 + (m if seasonal else 0)  # one conditioning for all candidates keeps AICc comparable
    (p, q, P, Q), params, aicc = _search_orders(z, m, seasonal, ncond, has_mean)
    return {
        "form": _arima_form((p, q, P, Q), d, D, m, seasonal),
        "order": (p, q, P, Q, m), "d": d, "D": D, "mean": mean, "params": params, "ncond": ncond,
        "aicc": aicc,
    }  # fmt: skip


def _forecast_arima(state, y, h):
    """CSS forecasts of the differenced series (future shocks zero), integrated back."""
    m = state["order"][-1]
    delta = differencing_polynomial(state["d"], state["D"], m)
    z = difference(y, state["d"], state["D"], m) - state["mean"]
    ar_poly, ma_poly = _arma_polynomials(state["params"], state["order"])
    residuals = _css_residuals(z, ar_poly, ma_poly, state["ncond"])
    pad = max(len(ar_poly), len(ma_poly))  # zeros before the start keep every lag window in range
    z_path = np.r_[np.zeros(pad), z, np.zeros(h)]
    shocks = np.r_[np.zeros(pad), residuals, np.zeros(h)]
    y_path = np.r_[y, np.zeros(h)]
    for step in range(h):
        t, s = pad + len(z) + step, len(y) + step
        past_z = z_path[t - len(ar_poly) + 1 : t][::-1]  # z[t-1], z[t-2], ...
        z_path[t] = -ar_poly[1:] @ past_z + ma_poly[1:] @ shocks[t - len(ma_poly) + 1 : t][::-1]
        y_path[s] = z_path[t] + state["mean"] - delta[1:] @ y_path[s - len(delta) + 1 : s][::-1]
    return y_path[len(y) :]
