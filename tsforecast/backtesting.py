"""Rolling-origin evaluation of any forecaster, and comparison of several on identical windows.

Windows are aligned on each series' end: with ``n_windows`` windows ``step`` apart, the last window
forecasts the final ``horizon`` points of every series, the one before it the ``horizon`` points that
end ``step`` earlier, and so on. Each window's history is everything before its first target, so
series of different lengths are all scored on their own latest data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from sklearn.base import clone
from tqdm.auto import tqdm

from tsforecast.data import Columns, Panel, check_min_length, to_long, to_panel
from tsforecast.data.covariates import align_covariates
from tsforecast.exceptions import InvalidInputError, InvalidParameterError
from tsforecast.metrics import POOLED_METRICS, evaluate, evaluate_by_horizon, owa, pooled_coverage
from tsforecast.metrics.intervals import interval_levels

DEFAULT_METRICS = ("smape", "mase", "mae", "rmse")


@dataclass(frozen=True)
class BacktestResult:
    """What a backtest measured.

    Attributes
    ----------
    forecasts : pd.DataFrame
        Tidy: ``model, window, unique_id, ds, step, actual, forecast`` (one row per target), plus
        the models' quantile columns (``q0.1``...) when they forecast quantiles and the interval
        bounds (``y_lo_95``, ``y_hi_95``...) when a ``level`` was asked.
    per_series : pd.DataFrame
        Metrics per ``(model, window, unique_id)``.
    by_horizon : pd.DataFrame
        Metrics per ``(model, step)``, averaged over series and windows, plus ``owa`` per step
        (from that step's sMAPE and MASE and Naive2's) when a Naive2 model was among those compared.
        Coverage and ACD are those of the step's points over all series and windows pooled.
    summary : pd.DataFrame
        One row per model: metrics averaged over series, then windows (M4's convention), plus
        ``owa`` when a Naive2 model was among those compared. Coverage and ACD, as in M4, are those
        of all the model's points pooled (:func:`~tsforecast.metrics.pooled_coverage`), not means
        of per-series values.
    """

    forecasts: pd.DataFrame
    per_series: pd.DataFrame
    by_horizon: pd.DataFrame
    summary: pd.DataFrame


def backtest(
    estimator,
    y,
    horizon: int,
    n_windows: int = 1,
    step: int | None = None,
    refit: bool = True,
    X=None,
    level=None,
    **options,
) -> BacktestResult:
    """Rolling-origin evaluation of one forecaster.

    Parameters
    ----------
    estimator : BaseForecaster
        Cloned for each fit; the caller's object is left untouched.
    y : pd.Series or pd.DataFrame
        Full history in any layout the forecasters accept.
    horizon : int
        Steps forecast from each origin.
    n_windows : int
        Number of origins.
    step : int, optional
        Distance between origins (defaults to ``horizon``, non-overlapping windows).
    refit : bool
        Refit at every origin; with ``False`` fit once on the first window's history and forecast
        later origins through ``predict(y=history)``.
    X : pd.DataFrame, optional
        Covariates over the whole history (see :mod:`tsforecast.data.covariates`), given to the
        forecasters that declare covariates. Each window's fit sees only the rows up to its origin
        and its forecast the future-known rows of its horizon: the covariate layer ignores the rest.
    level : float or list of float, optional
        Prediction intervals to forecast, in percent: each model is asked ``predict(..., level=level)``
        (a model without intervals of its own raises, naming it), and the forecasts carry the bounds
        ``y_lo_<level>``/``y_hi_<level>`` that the interval metrics score. None: point forecasts only.
    **options
        ``season_length`` (the seasonal naive scale of MASE, MSIS and CRPS), ``metrics`` (those of
        :func:`~tsforecast.metrics.evaluate`; ``"pinball"``, ``"coverage"`` and ``"crps"`` need
        quantile columns or a ``level``, ``"msis"`` and ``"acd"`` a ``level``), ``freq``,
        ``verbose``, ``name`` and the long layout's ``id_col``/``time_col``/``target_col``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from tsforecast.baselines import Naive
    >>> y = pd.Series(np.arange(30.0))
    >>> backtest(Naive(), y, horizon=3, n_windows=2).summary.round(2)["mae"].tolist()
    [2.0]
    """
    name = options.pop("name", type(estimator).__name__)
    return compare({name: estimator}, y, horizon, n_windows, step, refit, X=X, level=level, **options)


def compare(
    estimators: Mapping,
    y,
    horizon: int,
    n_windows: int = 1,
    step: int | None = None,
    refit: bool = True,
    X=None,
    *,
    level=None,
    season_length: int = 1,
    metrics=DEFAULT_METRICS,
    freq=None,
    verbose: bool = False,
    id_col: str = "unique_id",
    time_col: str = "ds",
    target_col: str = "y",
) -> BacktestResult:
    """Backtest several forecasters on identical windows (see :func:`backtest`).

    Parameters
    ----------
    estimators : mapping of str -> BaseForecaster
        Models by the name they get in the result.
    X : pd.DataFrame, optional
        Covariates, passed only to the models that declare covariates (the others never see them).
    level : float or list of float, optional
        Prediction intervals asked of every model (see :func:`backtest`).
    """
    step = horizon if step is None else step
    _check_window_params(estimators, horizon, n_windows, step)
    interval_levels(level)  # a bad level stops before any fit
    columns = Columns(id_col, time_col, target_col)
    panel = to_panel(y, freq=freq, columns=columns)
    check_min_length(panel, horizon + (n_windows - 1) * step + 1, f"a backtest of {n_windows} windows")
    windows = [_window(panel, horizon, (n_windows - 1 - w) * step) for w in range(n_windows)]
    covariates = _covariates_by_model(estimators, X, panel)

    frames, per_series, by_horizon = [], [], []
    progress = tqdm(total=len(estimators) * n_windows, disable=not verbose, desc="backtest")
    for model_name, estimator in estimators.items():
        fitted, x = None, covariates[model_name]
        for number, (history, actual) in enumerate(windows):
            # The validated window itself goes to fit and predict: no pandas round trip per model.
            fresh = refit or fitted is None
            if fresh:
                fitted = clone(estimator).fit(history, X=x)
            forecast = _predict(fitted, model_name, horizon, x, None if fresh else history, level)
            scored = _score(forecast, actual, history, columns, season_length, metrics, level)
            frames.append(scored[0].assign(model=model_name, window=number))
            per_series.append(scored[1].assign(model=model_name, window=number))
            by_horizon.append(scored[2].assign(model=model_name, window=number))
            progress.update()
    progress.close()
    return _assemble(estimators, frames, per_series, by_horizon, metrics, id_col, level)


def _predict(fitted, model_name: str, horizon: int, x, history: Panel | None, level):
    """One window's forecasts; with ``level``, an error of the model's names it as compared."""
    options = {} if history is None else {"y": history}
    if level is None:
        return fitted.predict(horizon, X=x, **options)
    try:
        return fitted.predict(horizon, X=x, level=level, **options)
    except InvalidParameterError as err:
        if str(err).startswith(f"{model_name} ") or repr(model_name) in str(err):
            raise  # it names the model already
        raise InvalidParameterError(f"model {model_name!r}: {err}") from err


def _covariates_by_model(estimators: Mapping, X, panel: Panel) -> dict:
    """``X`` for the models that declare covariates, None for the others.

    ``X`` is checked over the whole history first, so a bad covariate stops before any model is fitted.
    """
    wanted = {name: bool(estimator.covariate_roles()) for name, estimator in estimators.items()}
    if X is not None and not any(wanted.values()):
        raise InvalidInputError(
            f"X was given but none of the models {list(estimators)} declares covariates "
            "(future_covariates, past_covariates, static_covariates)."
        )
    for name, estimator in estimators.items():
        if wanted[name]:
            roles = estimator.covariate_roles()
            if X is None and roles.names:
                raise InvalidInputError(
                    f"model {name!r} declares the covariates {list(roles.names)}; pass X."
                )
            align_covariates(X, panel, roles)
    return {name: X if wanted[name] else None for name in estimators}


def _check_window_params(estimators, horizon, n_windows, step) -> None:
    for label, value in {"horizon": horizon, "n_windows": n_windows, "step": step}.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise InvalidParameterError(f"{label} must be an integer >= 1; got {value!r}.")
    if not estimators:
        raise InvalidParameterError("pass at least one estimator to compare.")


def _window(panel: Panel, horizon: int, offset: int):
    """The window whose targets end ``offset`` before the end.

    Its history as a panel answering in the long layout (fitted on and scored against: no long
    frame of the history is built), and its actuals as a long frame.
    """
    history = panel.head(horizon + offset)
    targets = panel.head(offset)
    actual = Panel(
        targets.ids,
        [v[-horizon:] for v in targets.values],
        [i[-horizon:] for i in targets.index],
        panel.freq,
        panel.layout,
    )
    long_layout = replace(panel.layout, kind="long")
    return history.replace_layout(long_layout), to_long(actual.replace_layout(long_layout))


def _names(columns: Columns) -> dict:
    return {"id_col": columns.id_col, "time_col": columns.time_col, "target_col": columns.target_col}


def _score(forecast, actual, history, columns: Columns, season_length, metrics, level):
    keys = dict(_names(columns), pred_col=columns.pred_col, level=level)
    per_series = evaluate(forecast, actual, history, season_length, metrics, **keys).reset_index()
    per_step = evaluate_by_horizon(forecast, actual, history, season_length, metrics, **keys).reset_index()
    tidy = actual.merge(forecast, on=[columns.id_col, columns.time_col], how="left")
    tidy = tidy.rename(columns={columns.target_col: "actual", columns.pred_col: "forecast"})
    tidy.insert(2, "step", tidy.groupby(columns.id_col).cumcount() + 1)
    return tidy, per_series, per_step


def _assemble(estimators, frames, per_series, by_horizon, metrics, id_col, level) -> BacktestResult:
    order = list(estimators)
    forecasts = pd.concat(frames, ignore_index=True)
    forecasts = forecasts[
        ["model", "window", *[c for c in forecasts.columns if c not in ("model", "window")]]
    ]
    series = pd.concat(per_series, ignore_index=True).set_index(["model", "window", id_col])
    scored = list(series.columns)  # the metrics, "pinball" and "coverage" expanded per quantile
    steps = pd.concat(by_horizon, ignore_index=True).groupby(["model", "horizon"])[scored].mean()
    steps = steps.rename_axis(["model", "step"])
    summary = series.groupby(["model", "window"])[scored].mean().groupby("model").mean()
    summary = summary.loc[order]
    if pooled := [m for m in metrics if m in POOLED_METRICS]:
        _pool_coverage(forecasts, pooled, level, summary, steps)
    naive2 = [name for name, est in estimators.items() if type(est).__name__ == "Naive2"]
    if naive2 and {"smape", "mase"} <= set(metrics):
        reference = summary.loc[naive2[0]]
        summary["owa"] = [
            owa(row.smape, row.mase, reference.smape, reference.mase) for row in summary.itertuples()
        ]
        steps["owa"] = _owa_by_step(steps, naive2[0])
    return BacktestResult(forecasts, series, steps, summary)


def _pool_coverage(forecasts: pd.DataFrame, metrics, level, summary, steps) -> None:
    """Replace the averaged coverage and ACD of ``summary`` and ``steps`` by pooled ones (M4's way).

    A mean of per-series coverages weighs a series with few observed actuals like a full one, and a
    mean of per-series ACDs lets no over-covered series offset an under-covered one; M4 pooled.
    """
    for model, points in forecasts.groupby("model", sort=False):
        points = points.dropna(axis=1, how="all")  # the columns of the other models
        options = {"metrics": metrics, "target_col": "actual", "level": level}
        overall = pooled_coverage(points, **options)
        summary.loc[model, overall.index] = overall.to_numpy()
        per_step = pooled_coverage(points, by="step", **options)
        steps.loc[(model, per_step.index), per_step.columns] = per_step.to_numpy()


def _owa_by_step(steps: pd.DataFrame, naive2: str) -> list:
    """OWA of every (model, step) row against Naive2 at the same step (NaN where Naive2 is exact)."""
    reference = steps.loc[naive2]
    values = []
    for (_, step), row in steps.iterrows():
        ref = reference.loc[step]
        try:
            values.append(owa(row["smape"], row["mase"], ref["smape"], ref["mase"]))
        except InvalidInputError:  # Naive2's error is 0 at this step: the ratio is undefined
            values.append(np.nan)
    return values
