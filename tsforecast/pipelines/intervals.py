"""The ``intervals:`` section of a pipeline and the settings of its coverage gate (``gate.coverage``).

With the section, every step carries prediction intervals besides the point forecasts: the backtest
scores the model's intervals (and those of the baselines that have intervals of their own) with
MSIS, coverage and ACD per level, the gate can require a minimum coverage, the published forecasts
get the ``y_lo_<level>`` / ``y_hi_<level>`` columns and the test-set evaluation scores them too.

Example::

    intervals:
      levels: [80, 95]          # percent; one number or a list
      method: model             # the model's own intervals; or conformal
      # n_windows: 3            # conformal: calibration windows cut from each training history
      # per_series: false       # conformal: each series calibrated on its own errors
    gate:
      coverage: {level: 95, min: 0.90}   # the backtest's pooled 95% coverage must reach 90%

``method: model`` asks the model for its own intervals: every statistical baseline has them, a
recurrent forecaster those its ``quantiles`` bound (``quantiles: [0.025, 0.975]`` for 95%); a model
without them is refused when the file is read. ``method: conformal`` wraps the model in
:class:`~tsforecast.conformal.ConformalIntervals`, which calibrates intervals on the model's own
rolling-origin errors (no covariates yet).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Annotated, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from tsforecast.base import has_own_intervals
from tsforecast.exceptions import InvalidParameterError
from tsforecast.metrics.intervals import interval_columns, interval_quantiles
from tsforecast.pipelines.covariates import covariates_for

logger = logging.getLogger(__name__)

#: The backtest metrics added for each interval level (``msis_95``, ``coverage_95``, ``acd_95``).
INTERVAL_METRICS = ("msis", "coverage", "acd")


def _levels(value):
    values = value if isinstance(value, list) else [value]
    bad = [v for v in values if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < 100]
    if not values or bad:
        shown = [repr(v) for v in bad]
        got = " and ".join([", ".join(shown[:-1]), shown[-1]] if len(shown) > 1 else shown) or "an empty list"
        raise ValueError(f"expected percentages strictly between 0 and 100, like [80, 95]; got {got}.")
    return sorted({float(v) for v in values})


def _one_level(value):
    if isinstance(value, list):
        raise ValueError(f"expected one level (percent, like 95), got {value!r}.")
    return _levels(value)[0]


def _fraction(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        hint = (
            f" ({value / 100:g} for {value:g}%)"
            if isinstance(value, (int, float)) and 1 < value <= 100
            else ""
        )
        raise ValueError(f"expected a fraction of the actuals between 0 and 1{hint}, got {value!r}.")
    return float(value)


class IntervalSettings(BaseModel):
    """The ``intervals:`` section (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    levels: Annotated[list[float], BeforeValidator(_levels)]
    method: Literal["model", "conformal"] = "model"
    n_windows: Annotated[int, Field(ge=1)] = 3
    per_series: bool = False


class CoverageGate(BaseModel):
    """``gate.coverage``: the model's backtest coverage at ``level`` must lie in ``[min, max]``."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    level: Annotated[float, BeforeValidator(_one_level)]
    min: Annotated[float, BeforeValidator(_fraction)]
    max: Annotated[float, BeforeValidator(_fraction)] | None = None


def interval_problems(config) -> list:
    """The problems of the ``intervals:`` section and of ``gate.coverage``, each naming its field."""
    settings, coverage = config.intervals, config.gate.coverage
    problems = []
    if coverage is not None:
        if settings is None:
            problems.append(
                f"gate.coverage: needs an intervals: section with the level {coverage.level:g} "
                f"(intervals: {{levels: [{coverage.level:g}]}})."
            )
        elif coverage.level not in settings.levels:
            problems.append(
                f"gate.coverage.level: {coverage.level:g} is not one of intervals.levels "
                f"{[float(f'{lv:g}') for lv in settings.levels]}; add it there or gate on one of them."
            )
        if coverage.max is not None and coverage.max < coverage.min:
            problems.append(f"gate.coverage: min {coverage.min:g} is above max {coverage.max:g}.")
    if settings is None:
        return problems
    if settings.method == "model":
        unused = sorted({"n_windows", "per_series"} & settings.model_fields_set)
        problems += [
            f"intervals.{key}: only method: conformal uses it (the model's own intervals need no "
            "calibration); remove it or set intervals.method: conformal."
            for key in unused
        ]
    elif settings.per_series:
        problems += filter(None, [calibration_problem(settings, 1)])
    model = _built_model(config)
    if model is None:  # invalid parameters: reported by the parameter check
        return problems
    if settings.method == "model" and (reason := own_interval_problem(model, settings.levels)):
        if "quantiles" in model.get_params(deep=False):
            needed = sorted({q for lv in settings.levels for q in interval_quantiles(lv)})
            fix = f"set model.params.quantiles: {needed}"
        else:
            fix = "choose a model with intervals of its own"
        # A recurrent model cannot be saved inside the conformal wrapper yet (see below).
        other = "" if hasattr(model, "save") else ", or set intervals.method: conformal"
        own = "intervals.method: 'model' takes the model's own intervals"
        problems.append(f"{own}, but {reason}; {fix}{other}.")
    if settings.method == "conformal" and hasattr(model, "save"):
        # A recurrent model's file holds its network and codec only (safetensors); the wrapper's
        # calibration scores have no place there yet, and pickling the network is not an option.
        problems.append(
            f"intervals.method: conformal cannot be saved around a recurrent model "
            f"({type(model).__name__}) yet; use method: model with model.params.quantiles (e.g. "
            "[0.025, 0.975] for 95%), or conformal around a statistical model."
        )
    if settings.method == "conformal" and model.covariate_roles():
        problems.append(
            f"intervals.method: conformal does not pass covariates on yet, and the model "
            f"({type(model).__name__}) takes {list(model.covariate_roles().names)}; use method: model "
            "(the statistical models have intervals of their own) or leave the covariates out."
        )
    return problems


def _built_model(config):
    from tsforecast.registry import build_estimator

    defaults = {k: v for k, v in config.estimator_defaults().items() if v is not None}
    try:
        return build_estimator(config.model.name, config.model.params, defaults=defaults)
    except InvalidParameterError:
        return None


def own_interval_problem(estimator, levels) -> str | None:
    """Why ``estimator`` cannot forecast the ``levels`` % intervals of its own; None when it can.

    Known from the class and its parameters, before any fit: whether the class has intervals of
    its own (:func:`~tsforecast.base.has_own_intervals`), and for a recurrent forecaster whether its
    trained ``quantiles`` bound the levels.

    Examples
    --------
    >>> from tsforecast.baselines import Naive
    >>> own_interval_problem(Naive(), [95]) is None
    True
    """
    name = type(estimator).__name__
    if not has_own_intervals(estimator):
        return f"{name} has no prediction intervals of its own"
    params = estimator.get_params(deep=False)
    if "quantiles" in params:  # the recurrent forecasters: their intervals are trained quantiles
        from tsforecast.nn.parameters import interval_quantile_pairs, quantile_levels

        try:
            interval_quantile_pairs(tuple(levels), quantile_levels(params["quantiles"]), name)
        except InvalidParameterError as error:
            return str(error).split(":")[0]  # what it was trained for and the quantiles it lacks
    return None


def levels_for(estimator, levels) -> list | None:
    """``levels`` as ``predict(level=...)`` takes them when ``estimator`` offers them, else None."""
    return list(levels) if levels and own_interval_problem(estimator, levels) is None else None


def with_intervals(estimator, settings: IntervalSettings | None):
    """The model as the pipeline fits it: wrapped in ``ConformalIntervals`` for ``method: conformal``."""
    if settings is None or settings.method != "conformal":
        return estimator
    from tsforecast.conformal import ConformalIntervals

    return ConformalIntervals(estimator, n_windows=settings.n_windows, per_series=settings.per_series)


def run_problem(settings: IntervalSettings | None, model, n_series: int) -> str | None:
    """The validate step's check: intervals the model (as the pipeline fits it) cannot give.

    ``load_config`` refuses them already; this holds for a configuration built in code, and checks the
    number of conformal calibration scores, which depends on the number of series.
    """
    if settings is None:
        return None
    if settings.method == "conformal":
        return calibration_problem(settings, n_series)
    reason = own_interval_problem(model, settings.levels)
    return (
        None
        if reason is None
        else f"intervals.method: 'model' takes the model's own intervals, but {reason}."
    )


def calibration_problem(settings: IntervalSettings, n_series: int) -> str | None:
    """Too few conformal calibration scores for the widest level (``n_series`` series pooled)."""
    level = max(settings.levels)
    needed = math.ceil(100.0 / (100.0 - level) - 1)  # ConformalIntervals' rule (conformal_quantile)
    per_window = 1 if settings.per_series else n_series
    if settings.n_windows * per_window >= needed:
        return None
    given = f"{settings.n_windows} window(s)" + ("" if settings.per_series else f" x {n_series} series")
    return (
        f"intervals.n_windows: a {level:g}% conformal interval needs at least {needed} calibration "
        f"scores per horizon step{' and series' if settings.per_series else ''}; {given} give "
        f"{settings.n_windows * per_window}. Set intervals.n_windows to at least "
        f"{math.ceil(needed / per_window)}, or lower the levels."
    )


def coverage_column(level) -> str:
    """The backtest summary's coverage column of ``level`` (``coverage_95``)."""
    return "coverage_" + interval_columns(level)[0].removeprefix("y_lo_")


def backtest(compare, estimators: dict, levels, *, metrics, X=None, **options):
    """``compare`` with the interval levels asked of the models that offer them.

    The others (a recurrent baseline without the quantiles) are compared on the same windows with
    the point metrics only, their interval columns left empty; Naive2 is backtested with them too, so
    that their OWA is relative to it as everywhere else, and its duplicate rows are dropped.
    """
    if not levels:
        return compare(estimators, metrics=metrics, X=_covariates(estimators, X), **options)
    bounded = {k: e for k, e in estimators.items() if levels_for(e, levels) is not None}
    rest = {k: e for k, e in estimators.items() if k not in bounded}
    wanted = [*metrics, *INTERVAL_METRICS]
    result = compare(bounded, metrics=wanted, level=list(levels), X=_covariates(bounded, X), **options)
    if not rest:
        return result
    logger.info("%s: no intervals of their own; backtested on the point metrics only", ", ".join(rest))
    naive2 = [k for k, e in bounded.items() if type(e).__name__ == "Naive2"][:1]
    group = rest | {k: bounded[k] for k in naive2}
    points = compare(group, metrics=metrics, X=_covariates(group, X), **options)
    order = list(estimators)

    def merged(ours, theirs):
        theirs = _in_order(theirs, [k for k in order if k not in naive2])  # Naive2's rows are ours
        return _in_order(pd.concat([ours, theirs]), order)

    return dataclasses.replace(
        result,
        forecasts=merged(result.forecasts, points.forecasts).reset_index(drop=True),
        per_series=merged(result.per_series, points.per_series),
        by_horizon=merged(result.by_horizon, points.by_horizon).sort_index(),  # sorted, as compare's
        summary=merged(result.summary, points.summary),
    )


def _covariates(estimators: dict, X):
    """``X`` when a model of the group declares covariates (``compare`` refuses it otherwise)."""
    return X if any(covariates_for(e, X) is not None for e in estimators.values()) else None


def _in_order(frame: pd.DataFrame, order: list) -> pd.DataFrame:
    """The rows of the models in ``order`` (a column or an index level ``model``), in that order."""
    models = frame["model"] if "model" in frame.columns else frame.index.get_level_values("model")
    rank = pd.Index(order).get_indexer(models)
    kept = np.flatnonzero(rank >= 0)
    return frame.iloc[kept[np.argsort(rank[kept], kind="stable")]]


__all__ = [
    "INTERVAL_METRICS",
    "CoverageGate",
    "IntervalSettings",
    "backtest",
    "calibration_problem",
    "coverage_column",
    "interval_problems",
    "levels_for",
    "own_interval_problem",
    "with_intervals",
]
