"""What every trial and every baseline is scored on: the objective, and the intervals asked for.

A point objective (``"mase"``, ``"smape"``, ``"mae"``, ``"rmse"``, ``"owa"``) scores the point
forecasts. A probabilistic one scores the prediction intervals that every trial, baseline and the
default row is asked for on the validation windows (``predict(..., level=level)``):

* ``"msis"``: M4's mean scaled interval score of the ``level`` % interval (default 95), each series'
  interval score divided by its in-sample seasonal naive error at the validation ``season_length``,
  averaged over series, then windows. Its leaderboard column is ``msis_95``; ``metric="msis_95"`` is
  the same objective spelled with its level. One level only.
* ``"crps"``: the scaled CRPS approximated from the quantiles a model's forecasts hold: the bounds of
  every ``level`` (default 95: the 0.025 and 0.975 quantiles), the point forecast as the median, and
  the quantile columns a recurrent forecaster adds (:func:`~tsforecast.metrics.quantile_crps`).
  ``level=[50, 80, 95]`` gives it more quantiles; models are comparable on it only when they forecast
  the same quantiles, so give the trials ``quantiles`` that match the levels.

With intervals asked for (a probabilistic objective, or a ``level`` beside a point objective, to see
the intervals of the models tuned for their points), each model's scores also hold ``msis_<L>``,
``coverage_<L>`` and ``acd_<L>`` of every level (coverage and ACD pooled over all series and steps,
as M4 computed them) and ``crps``. The levels are part of what defines a study.

A model that cannot give the intervals is refused before any study opens
(:func:`check_intervals`): a recurrent forecaster without the ``quantiles`` that bound the level (set
them as a fixed parameter: ``LSTMForecaster(quantiles=[0.025, 0.975])``), a forecaster without
intervals of its own (wrap it in :class:`~tsforecast.conformal.ConformalIntervals`), a conformal
wrapper with too few calibration scores for the level.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from tsforecast.exceptions import InvalidParameterError
from tsforecast.metrics import interval_levels, interval_quantiles, owa

POINT_METRICS = ("smape", "mase", "mae", "rmse", "owa")
INTERVAL_METRICS = ("msis", "crps")
METRICS = (*POINT_METRICS, *INTERVAL_METRICS)
SCORED = ("smape", "mase", "mae", "rmse")  # what each backtest computes; OWA is derived from two of them
INTERVAL_SCORED = ("msis", "coverage", "acd", "crps")  # added when intervals are asked for
PER_LEVEL = ("msis", "coverage", "acd")  # one column per level: msis_95, coverage_95, acd_95
DEFAULT_LEVEL = 95.0
_NAMED_LEVEL = re.compile(r"msis_(\d*\.?\d+)")


@dataclass(frozen=True)
class Scoring:
    """The objective and the interval levels every model is asked for (see the module docstring).

    Parameters
    ----------
    metric : str
        One of :data:`METRICS`, lower case.
    levels : tuple of float
        Interval levels in percent, sorted (empty: point forecasts only).

    Examples
    --------
    >>> Scoring.resolve("msis")
    Scoring(metric='msis', levels=(95.0,))
    >>> Scoring.resolve("msis_80").column, Scoring.resolve("crps", [80, 95]).label
    ('msis_80', 'crps_80_95')
    >>> Scoring.resolve("mase").backtest_args()
    {'metrics': ('smape', 'mase', 'mae', 'rmse'), 'level': None}
    """

    metric: str = "mase"
    levels: tuple = ()

    @classmethod
    def resolve(cls, metric, level=None) -> Scoring:
        """``tune``'s ``metric`` and ``level`` checked: the level a probabilistic objective defaults to.

        Raises
        ------
        InvalidParameterError
            An unknown metric, a bad level (0, 100, 150, text), several levels for ``"msis"``, or a
            ``level`` that contradicts the one in ``"msis_<L>"``.
        """
        key = str(metric).lower()
        named = _NAMED_LEVEL.fullmatch(key)
        if key not in METRICS and named is None:
            raise InvalidParameterError(
                f"metric must be one of {METRICS} (or 'msis_<level>', like 'msis_95'); got {metric!r}."
            )
        levels = interval_levels(level)
        if named is not None:
            key, own = "msis", interval_levels(float(named[1]))
            if levels and levels != own:
                raise InvalidParameterError(
                    f"metric={metric!r} scores the {own[0]:g}% interval but level={level!r} asks for "
                    f"{_percent(levels)}: pass metric='msis' with level={own[0]:g}, or one of them."
                )
            levels = own
        if key in INTERVAL_METRICS and not levels:
            levels = (DEFAULT_LEVEL,)
        if key == "msis" and len(levels) > 1:
            raise InvalidParameterError(
                f"metric='msis' scores one interval; level={level!r} gives {len(levels)}. Pass one "
                "level (M4 scored 95), or metric='crps' to score several together."
            )
        return cls(key, levels)

    @property
    def column(self) -> str:
        """The leaderboard column the study minimises (``"msis_95"``, ``"crps"``, ``"mase"``)."""
        return f"msis_{self.levels[0]:g}" if self.metric == "msis" else self.metric

    @property
    def label(self) -> str:
        """The objective with its levels, for default study names (``"msis_95"``, ``"crps_80_95"``)."""
        return "_".join([self.metric, *(f"{level:g}" for level in self.levels)])

    def backtest_args(self) -> dict:
        """The metrics and levels of :func:`~tsforecast.backtesting.backtest` that give these scores."""
        metrics = (*SCORED, *INTERVAL_SCORED) if self.levels else SCORED
        return {"metrics": metrics, "level": list(self.levels) or None}

    def score_names(self) -> tuple:
        """The columns of a backtest summary that :meth:`scores_of` keeps."""
        if not self.levels:
            return SCORED
        per_level = [f"{name}_{level:g}" for level in self.levels for name in PER_LEVEL]
        return (*SCORED, *per_level, "crps")

    def scores_of(self, summary_row, reference: dict | None) -> dict:
        """One model's validation scores as a plain dict, with OWA when Naive2's ``reference`` is known."""
        scores = {name: float(summary_row[name]) for name in self.score_names()}
        if reference is not None:
            scores["owa"] = owa(scores["smape"], scores["mase"], reference["smape"], reference["mase"])
        return scores

    def record(self) -> dict:
        """What the study records of the objective: the metric, and the levels when there are some."""
        return {"metric": self.metric} | ({"level": list(self.levels)} if self.levels else {})


def check_intervals(estimator, levels: tuple, *, space=None, n_series=None, role="the estimator") -> None:
    """Refuse, before any trial, a model that cannot give the ``levels`` % intervals.

    Parameters
    ----------
    estimator : BaseForecaster
        The prototype (or a baseline).
    levels : tuple of float
        The levels asked for; empty: nothing to check.
    space : mapping, optional
        The search space: a conformal wrapper's searched ``n_windows`` is checked at its smallest.
    n_series : int, optional
        Series in the data, for the count of a pooled conformal wrapper's calibration scores.
    role : str
        How the message names the model.

    Raises
    ------
    InvalidParameterError
        Naming the model, what it lacks and the fix.
    """
    if not levels:
        return
    problem = _interval_problem(estimator, tuple(levels), space if isinstance(space, dict) else {}, n_series)
    if problem is not None:
        raise InvalidParameterError(
            f"the tuning objective scores {_percent(levels)} prediction intervals, but {role} "
            f"({type(estimator).__name__}) cannot give them: {problem} Nothing was tuned."
        )


def _interval_problem(estimator, levels: tuple, space: dict, n_series) -> str | None:
    from tsforecast.base import has_own_intervals
    from tsforecast.conformal import ConformalIntervals

    name = type(estimator).__name__
    params = estimator.get_params(deep=False)
    if isinstance(estimator, ConformalIntervals):
        return _conformal_problem(estimator, levels, space, n_series)
    if "quantiles" in params:  # a recurrent forecaster: its intervals are its trained quantiles
        needed = sorted({q for level in levels for q in interval_quantiles(level)})
        trained = {round(float(q), 12) for q in params["quantiles"] or ()}
        if missing := [q for q in needed if q not in trained]:
            return (
                f"its intervals are its quantile outputs, and it is fitted with "
                f"quantiles={params['quantiles']!r}, without {missing}. Set them as a fixed parameter: "
                f"{name}(..., quantiles={needed}) (or wrap it: ConformalIntervals({name}(...)))."
            )
        return None
    if not has_own_intervals(estimator):
        return f"it has no prediction intervals of its own; wrap it: ConformalIntervals({name}(...))."
    return None


def _conformal_problem(wrapper, levels: tuple, space: dict, n_series) -> str | None:
    wrapper.check_params()  # a nested wrapper, or method="quantile" around a model without intervals
    calibrated = wrapper._levels()  # empty under method="absolute": any level
    if calibrated and set(levels) - set(calibrated):
        return (
            f"method='quantile' calibrates the levels {list(calibrated)} at fit; set "
            f"calibration_levels={sorted({*calibrated, *levels})}."
        )
    if calibrated:
        inner = _interval_problem(wrapper.forecaster, calibrated, {}, n_series)
        if inner is not None:
            return f"its forecaster {type(wrapper.forecaster).__name__}: {inner}"
    searched = space.get("n_windows")
    n_windows = wrapper.n_windows if searched is None else _smallest(searched)
    scores = n_windows * (1 if wrapper.per_series or n_series is None else n_series)
    needed = math.ceil(100.0 / (100.0 - max(levels)) - 1)
    if n_series is not None or wrapper.per_series:
        if scores < needed:
            per = "per series" if wrapper.per_series else f"over {n_series} series"
            return (
                f"a {max(levels):g}% conformal interval needs {needed} calibration scores per horizon "
                f"step, and n_windows={n_windows} gives {scores} {per}. Raise n_windows"
                f"{' (the low end of its search range)' if searched is not None else ''}."
            )
    return None


def _smallest(distribution) -> int:
    choices = getattr(distribution, "choices", None)
    return int(min(choices)) if choices is not None else int(distribution.low)


def _percent(levels) -> str:
    return " and ".join(f"{level:g}%" for level in levels)
