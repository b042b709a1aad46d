""":func:`diagnose`: every diagnostic of a fitted recurrent forecaster, in one report."""

from __future__ import annotations

from numbers import Integral

import numpy as np
import pandas as pd
import torch
from sklearn.utils.validation import check_is_fitted

from tsforecast.data import Panel
from tsforecast.data.covariates import align_covariates
from tsforecast.exceptions import InvalidInputError, InvalidParameterError
from tsforecast.metrics import evaluate_by_horizon
from tsforecast.nn.diagnostics.findings import Thresholds, describe
from tsforecast.nn.diagnostics.probe import analyse_windows, panel_forecasts, probe_windows
from tsforecast.nn.diagnostics.report import DiagnosticReport
from tsforecast.nn.streams import series_arrays

__all__ = ["diagnose", "horizon_errors", "step_forecasts"]

_HISTORY_COLUMNS = (
    "epoch",
    "train_loss",
    "val_loss",
    "grad_norm_mean",
    "grad_norm_max",
    "clipped_fraction",
    "skipped_steps",
)


def diagnose(
    forecaster,
    y=None,
    *,
    X=None,  # noqa: N803 (scikit-learn's name for the covariates)
    max_lag=None,
    warmup=None,
    max_series=64,
    holdout=None,
    thresholds=None,
) -> DiagnosticReport:
    """Why a fitted recurrent forecaster learns what it learns: gradients, gates, states, errors.

    Parameters
    ----------
    forecaster : LSTMForecaster, GRUForecaster or RNNForecaster
        Fitted.
    y : pd.Series or pd.DataFrame, optional
        Data to run the network on, in any layout ``fit`` accepts (series seen in training use
        their training scaling, new ones their own); default: the training data.
    X : pd.DataFrame, optional
        The covariates over ``y`` (or the training data), for a forecaster fitted with some (as
        ``fit`` takes them).
    max_lag : int, optional
        Gradient flow is measured for lags 0..``max_lag``; default ``tbptt_steps`` (``lookback`` with
        ``training="windows"``): the longest span training could connect.
    warmup : int, optional
        Steps the network runs from a zero state before the measured span (fewer when the series
        are shorter); default ``max_lag``.
    max_series : int, default=64
        Series analysed by the gradient, gate and hidden-state passes (evenly spread over the data).
    holdout : int, optional
        Last steps of each series held out and forecast from the rest for the error by horizon
        step; default the forecaster's horizon.
    thresholds : Thresholds, optional
        When the findings speak up (see :class:`~tsforecast.nn.diagnostics.findings.Thresholds`).

    Returns
    -------
    DiagnosticReport

    Raises
    ------
    NotFittedError
        When ``forecaster`` is not fitted.
    InvalidParameterError
        For a forecaster that is not recurrent, or an argument out of range.
    InvalidInputError
        When ``y`` is not usable data or no series is long enough for ``max_lag``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from tsforecast.nn import GRUForecaster
    >>> y = pd.Series(np.sin(np.arange(200) / 3), index=pd.RangeIndex(200))
    >>> model = GRUForecaster(horizon=4, season_length=6, hidden_size=8, max_epochs=2, tbptt_steps=24,
    ...                       scaler="standard", random_state=0).fit(y)
    >>> report = diagnose(model)
    >>> int(report.gradient_flow["lag"].max())
    24
    >>> "findings" in report.to_text()
    True
    """
    _check_forecaster(forecaster)
    default_lag = forecaster.tbptt_steps if forecaster.training == "tbptt" else forecaster.lookback
    max_lag = _check_int(default_lag if max_lag is None else max_lag, "max_lag", 1)
    warmup = _check_int(max_lag if warmup is None else warmup, "warmup", 0)
    max_series = _check_int(max_series, "max_series", 1)
    horizon = forecaster.horizon_
    holdout = _check_int(horizon if holdout is None else holdout, "holdout", 1)
    if holdout > horizon:
        raise InvalidParameterError(
            f"holdout={holdout} exceeds the forecaster's horizon ({horizon}): the held-out tail is "
            f"forecast in one shot. Pass holdout <= {horizon}."
        )
    thresholds = Thresholds() if thresholds is None else thresholds
    if not isinstance(thresholds, Thresholds):
        raise InvalidParameterError(
            f"thresholds must be a Thresholds instance; got {type(thresholds).__name__}."
        )

    panel = forecaster.training_panel_ if y is None else forecaster.validate_history(y)
    scaler = forecaster.codec_.scaler_for(panel.ids, panel.values)
    covariates = _covariates(forecaster, panel, X)
    windows = probe_windows(forecaster, panel, scaler, max_lag, warmup, max_series, covariates)
    analysis = analyse_windows(forecaster.network_, windows, forecaster.quantile_levels_)
    training = forecaster.history_[[c for c in _HISTORY_COLUMNS if c in forecaster.history_]].copy()
    errors = horizon_errors(forecaster, panel, holdout, X)
    report = DiagnosticReport(
        model=type(forecaster).__name__,
        cell=forecaster.network_.cell,
        tbptt_steps=forecaster.tbptt_steps if forecaster.training == "tbptt" else None,
        clip_norm=forecaster.clip_norm,
        series=windows.ids,
        gradient_flow=analysis.gradient_flow,
        gates=analysis.gates,
        hidden_norms=analysis.hidden_norms,
        training=training.reset_index(drop=True),
        horizon_errors=errors,
        findings=[],
    )
    report.findings = describe(report, thresholds)
    return report


def step_forecasts(forecaster, y=None, X=None) -> list:  # noqa: N803
    """The forecasts the network makes at every step of every series, in one pass over the data.

    Parameters
    ----------
    forecaster : LSTMForecaster, GRUForecaster or RNNForecaster
        Fitted.
    y : pd.Series or pd.DataFrame, optional
        Series in any layout ``fit`` accepts; default: the training data.
    X : pd.DataFrame, optional
        Their covariates, for a forecaster fitted with some.

    Returns
    -------
    list of np.ndarray
        One array per series (in the panel's order) of shape ``(length, horizon)``: row ``t`` holds
        the median forecasts of steps ``t + 1 .. t + horizon`` made from the values up to ``t`` (NaN
        before the forecaster's context). It is what ``predict`` answers on the history cut at
        ``t``, up to float32 rounding and, for series unseen in training, the scaler (fitted here on
        the whole series rather than on the cut history). With future-known covariates, the steps
        after the end of ``y`` take their training mean (``X`` there is not read).
    """
    _check_forecaster(forecaster)
    panel = forecaster.training_panel_ if y is None else forecaster.validate_history(y)
    scaler = forecaster.codec_.scaler_for(panel.ids, panel.values)
    return panel_forecasts(forecaster, panel, scaler, _covariates(forecaster, panel, X))


def horizon_errors(forecaster, panel, holdout: int, X=None) -> pd.DataFrame:  # noqa: N803
    """MAE, RMSE and sMAPE per horizon step of the forecasts of each series' last ``holdout`` steps.

    The forecasts come from the history without that tail (``predict(y=history)``); the seasonal
    naive forecast from the same history is scored beside them (``snaive_mae``). Series too short
    to lose the tail are left out; with none left the table is empty. ``X``: the covariates over
    ``panel``, for a forecaster fitted with some.
    """
    spec = forecaster.codec_.spec
    keep = np.flatnonzero(panel.lengths - holdout >= spec.context + 1)
    columns = ["mae", "rmse", "smape", "snaive_mae"]
    if len(keep) == 0:
        return pd.DataFrame(columns=columns, index=pd.Index([], name="horizon"))
    subset = panel.select(keep)
    history = subset.head(holdout)
    with torch.no_grad():
        forecasts = forecaster.predict_panel(history, holdout, X=X)
    point = forecasts["point"] if isinstance(forecasts, dict) else forecasts  # (series, holdout)
    naive = np.stack([spec.base(series_arrays(v, spec.season_length)[0])[:holdout] for v in history.values])
    frames = {"actual": [], "model": [], "snaive": []}
    for row, v in enumerate(subset.values):  # rows, not ids, name the series: an id may be None
        ds = np.arange(len(v) - holdout, len(v))
        frames["actual"].append(pd.DataFrame({"unique_id": row, "ds": ds, "y": v[-holdout:]}))
        frames["model"].append(pd.DataFrame({"unique_id": row, "ds": ds, "y_pred": point[row]}))
        frames["snaive"].append(pd.DataFrame({"unique_id": row, "ds": ds, "y_pred": naive[row]}))
    actual, model, snaive = (pd.concat(frames[k], ignore_index=True) for k in ("actual", "model", "snaive"))
    if actual["y"].isna().all():
        return pd.DataFrame(columns=columns, index=pd.Index([], name="horizon"))
    table = evaluate_by_horizon(model, actual, metrics=("mae", "rmse", "smape"))
    table["snaive_mae"] = evaluate_by_horizon(snaive, actual, metrics=("mae",))["mae"]
    return table


def _check_forecaster(forecaster) -> None:
    # Duck-typed: the forecasters import this package (their diagnose method), not the reverse.
    if not hasattr(forecaster, "network_config"):
        raise InvalidParameterError(
            "diagnose needs a fitted LSTMForecaster, GRUForecaster or RNNForecaster; got "
            f"{type(forecaster).__name__}. Baselines have no gradients or gates to inspect."
        )
    check_is_fitted(forecaster, ["network_", "training_panel_"])


def _covariates(forecaster, panel: Panel, X):  # noqa: N803
    """``X`` aligned with ``panel`` as the forecaster declares its covariates (None without any)."""
    roles = forecaster.covariate_roles()
    if not roles:
        if X is not None:
            raise InvalidInputError(
                f"X was given, but this {type(forecaster).__name__} declares no covariates; leave X out."
            )
        return None
    return align_covariates(X, panel, roles, categories=forecaster.covariate_categories_)


def _check_int(value, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
        raise InvalidParameterError(f"{name} must be an integer >= {low}; got {value!r}.")
    return int(value)
