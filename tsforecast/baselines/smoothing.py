"""Naive family, exponential smoothing and Theta on one seasonally adjusted series (pure numpy fits).

Starting values follow R's ``forecast::ets`` so the M4 benchmarks reproduce; see the package docstring.
"""

from __future__ import annotations

import warnings

import numpy as np
from statsmodels.tsa.holtwinters import ExponentialSmoothing

from tsforecast.baselines.seasonality import (
    deseasonalize,
    reseasonalize,
)

# forecast::ets' starting values for non-seasonal models (initparam, bounds 1e-4..0.9999, 0.8..0.98).
_R_ALPHA = 1e-4 + 0.2 * (0.9999 - 1e-4)
_R_BETA_STAR = (1e-4 + 0.1 * (_R_ALPHA - 1e-4)) / _R_ALPHA  # statsmodels' beta is R's beta / alpha
_R_PHI = 0.8 + 0.99 * (0.98 - 0.8)


def _fit_last(y, season_length=1):
    return {"last": y[-season_length:]}


def _forecast_last(state, y, h):
    return np.resize(state["last"], h)


def _smooth(y, trend=False, damped=False):
    """Least-squares SES / Holt / damped Holt from forecast::ets' start; the final states."""
    head = y[: min(10, len(y))]  # forecast::ets initialises from the first 10 points (initstate)
    if trend:
        slope, intercept = np.polyfit(np.arange(1, len(head) + 1), head, 1)
        start = [_R_ALPHA, _R_BETA_STAR, intercept, slope] + [_R_PHI] * damped
    else:
        start = [_R_ALPHA, head.mean()]
    model = ExponentialSmoothing(
        y,
        trend="add" if trend else None,
        damped_trend=damped,
        initialization_method="estimated",
        bounds={"damping_trend": (0.8, 0.98)} if damped else None,  # forecast::ets' phi range
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Powell's "did not converge" on flat SSE surfaces is harmless
        fit = model.fit(method="Powell", use_brute=False, start_params=start)
    return {
        "level": float(fit.level[-1]),
        "trend": float(fit.trend[-1]) if trend else 0.0,
        "phi": float(fit.params["damping_trend"]) if damped else 1.0,
        "alpha": float(fit.params["smoothing_level"]),
        "beta": float(fit.params["smoothing_trend"]) if trend else 0.0,
        "sse": float(fit.sse),  # of the one-step errors, for the intervals' residual variance
    }


def _residual_variance(sse, n, n_params):
    """``sse / (n - n_params)``: forecast::ets' sigma2 (FPP3's T - K); at least ``sse / 1``."""
    return sse / max(n - n_params, 1)


def _fit_adjusted(y, season_length=1, trend=False, damped=False, smooth=True):
    adjusted, indices = deseasonalize(y, season_length)
    if not smooth:
        return {"level": adjusted[-1], "trend": 0.0, "phi": 1.0, "indices": indices, "n": len(y)}
    states = _smooth(adjusted, trend, damped)
    # forecast::ets counts alpha and the initial level, beta and the initial trend, phi.
    sigma2 = _residual_variance(states.pop("sse"), len(y), 2 + 2 * trend + damped)
    return {**states, "sigma2": sigma2, "indices": indices, "n": len(y)}


def _forecast_adjusted(state, y, h):
    """``(level + (phi + ... + phi^k) * trend) * seasonal index`` for k = 1..h."""
    path = state["level"] + np.cumsum(state["phi"] ** np.arange(1, h + 1)) * state["trend"]
    return path * reseasonalize(state["indices"], state["n"], h)


def _fit_theta(y, season_length=1):
    adjusted, indices = deseasonalize(y, season_length)
    time = np.arange(1, len(y) + 1)
    slope, intercept = np.polyfit(time, adjusted, 1)  # the theta=0 line
    ses = _smooth(2.0 * adjusted - (intercept + slope * time))  # SES of the theta=2 line
    # The one-step error is half the SES error of the line; 4 parameters: the line (2), alpha, level.
    sigma2 = _residual_variance(0.25 * ses["sse"], len(y), 4)
    return {
        "intercept": intercept, "slope": slope, "level": ses["level"], "alpha": ses["alpha"],
        "sigma2": sigma2, "indices": indices, "n": len(y),
    }  # fmt: skip


def _theta_path(state, h):
    """The equal-weight average of the two lines' forecasts on the adjusted series, before clipping."""
    line = state["intercept"] + state["slope"] * (state["n"] + np.arange(1, h + 1))
    return 0.5 * line + 0.5 * state["level"]


def _forecast_theta(state, y, h):
    path = np.maximum(_theta_path(state, h), 0.0)  # the M4 code sets negatives to 0
    return path * reseasonalize(state["indices"], state["n"], h)


# --- AutoETS -------------------------------------------------------------------------------------
