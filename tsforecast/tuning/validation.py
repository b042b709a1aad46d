"""The validation windows every trial and every baseline is scored on (their metrics: ``scoring``)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from numbers import Integral

import numpy as np

from tsforecast.data.covariates import align_covariates
from tsforecast.exceptions import InvalidInputError, InvalidParameterError


@dataclass(frozen=True)
class Validation:
    """Rolling-origin validation windows cut from the training data (see :mod:`tsforecast.backtesting`).

    The last window forecasts the final ``horizon`` points of every series, the ones before it end
    ``step`` points earlier; each window's history is everything before its first target. Every
    trial and every baseline is scored on these same windows.

    Parameters
    ----------
    n_windows : int, default=2
        Number of forecast origins.
    step : int, optional
        Distance between origins; default ``horizon`` (windows that do not overlap).
    horizon : int, optional
        Steps forecast from each origin; default the estimator's ``horizon``.
    season_length : int, optional
        Lag of MASE's seasonal-naive scale and the baselines' season; default the estimator's
        ``season_length``, else 1.

    Examples
    --------
    >>> Validation(n_windows=3).resolve(horizon=48, season_length=24)
    Validation(n_windows=3, step=48, horizon=48, season_length=24)
    """

    n_windows: int = 2
    step: int | None = None
    horizon: int | None = None
    season_length: int | None = None

    @classmethod
    def coerce(cls, value) -> Validation:
        """None, an int (``n_windows``), a mapping of the fields or a Validation."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, Integral) and not isinstance(value, bool):
            return cls(n_windows=int(value))
        if isinstance(value, Mapping):
            unknown = set(value) - set(cls.__dataclass_fields__)
            if unknown:
                raise InvalidParameterError(
                    f"validation has unknown key(s) {sorted(unknown)}; "
                    f"allowed: {list(cls.__dataclass_fields__)}."
                )
            return cls(**value)
        raise InvalidParameterError(
            "validation must be None, an int (number of windows), a dict of n_windows/step/horizon/"
            f"season_length or a Validation; got {type(value).__name__}."
        )

    def resolve(self, horizon=None, season_length=None) -> Validation:
        """Fill the defaults from the estimator's ``horizon`` and ``season_length``; check the values."""
        horizon = self.horizon if self.horizon is not None else horizon
        if horizon is None:
            raise InvalidParameterError(
                "the estimator has no horizon parameter; pass validation={'horizon': H, ...}."
            )
        season = self.season_length if self.season_length is not None else (season_length or 1)
        resolved = Validation(self.n_windows, horizon if self.step is None else self.step, horizon, season)
        for name, value in asdict(resolved).items():
            if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
                raise InvalidParameterError(f"validation {name} must be an integer >= 1; got {value!r}.")
        return Validation(*(int(v) for v in asdict(resolved).values()))

    @property
    def span(self) -> int:
        """Points cut from the end of the series before the first window's origin."""
        return self.horizon + (self.n_windows - 1) * self.step

    def backtest_args(self, scoring=None) -> dict:
        """The windows (and ``scoring``'s metrics and levels) as arguments of ``backtest``."""
        windows = {
            "horizon": self.horizon,
            "n_windows": self.n_windows,
            "step": self.step,
            "season_length": self.season_length,
        }
        return windows if scoring is None else windows | scoring.backtest_args()


def fingerprint(panel) -> str:
    """A short hash of the series (ids, lengths and values): studies on other data get other names.

    Not :meth:`Panel.digest`: the default study name holds this hash, and studies stored under it
    must resume under the same name.
    """
    digest = hashlib.sha1()
    digest.update(repr([str(i) for i in panel.ids]).encode())
    digest.update(panel.lengths.tobytes())
    for values in panel.values:
        digest.update(np.ascontiguousarray(values, dtype=np.float64))  # its buffer: no copy
    return digest.hexdigest()[:10]


def longest_stream(history, context: int, validation_size: int = 0) -> int:
    """The most TBPTT steps a recurrent forecaster with a ``context``-step context can use in ``history``."""
    return int(history.lengths.max()) - context - 1 - int(validation_size or 0)


def check_covariates(estimator, X, panel, columns) -> None:
    """``X`` against the covariates ``estimator`` declares, as its ``fit`` would check them.

    Raises
    ------
    InvalidInputError
        X given to an estimator that declares no covariate, or X missing, misaligned or not finite
        (the message names the series, the column and the time stamp).
    """
    roles = estimator.covariate_roles()
    if X is None and not roles:
        return
    if not roles:
        raise InvalidInputError(
            f"{type(estimator).__name__} got X but declares no covariate: name its columns in "
            "future_covariates, past_covariates or static_covariates."
        )
    align_covariates(X, panel, roles, columns=columns)
