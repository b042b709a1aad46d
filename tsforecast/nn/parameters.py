"""The allowed values of the recurrent forecasters' parameters: one declared table, checked at ``fit``.

:data:`PARAMETER_CONSTRAINTS` is scikit-learn's table format (``BaseForecaster.check_params`` runs it);
:func:`quantile_levels` checks what the table cannot (the levels inside ``quantiles``).
"""

from __future__ import annotations

from numbers import Integral, Real

import torch
from sklearn.utils._param_validation import Interval, StrOptions

from tsforecast.exceptions import InvalidParameterError
from tsforecast.metrics.intervals import interval_quantiles
from tsforecast.scaling import SCALERS

__all__ = ["PARAMETER_CONSTRAINTS", "quantile_levels"]


def _positive(kind, closed="left"):
    return Interval(kind, 1 if kind is Integral else 0, None, closed=closed)


PARAMETER_CONSTRAINTS = {
    "horizon": [_positive(Integral)],
    "season_length": [StrOptions({"auto"}), _positive(Integral)],
    "long_season_length": [StrOptions({"auto"}), None, Interval(Integral, 2, None, closed="left")],
    "hidden_size": [_positive(Integral)],
    "num_layers": [_positive(Integral)],
    "dropout": [Interval(Real, 0, 1, closed="left")],
    "residual": ["boolean"],
    "gate_init": [StrOptions({"standard", "chrono"})],
    "training": [StrOptions({"tbptt", "windows"})],
    "tbptt_steps": [_positive(Integral)],
    "lookback": [_positive(Integral)],
    "stream_length": [StrOptions({"auto"}), None, _positive(Integral)],
    "warmup_steps": [None, Interval(Integral, 0, None, closed="left")],
    "scaler": [StrOptions(set(SCALERS))],
    "quantiles": [None, tuple, list],
    "clip_norm": [None, _positive(Real, "neither")],
    "learning_rate": [_positive(Real, "neither")],
    "weight_decay": [Interval(Real, 0, None, closed="left")],
    "max_epochs": [_positive(Integral)],
    "batch_size": [_positive(Integral)],
    "validation_size": [Interval(Integral, 0, None, closed="left")],
    "patience": [None, _positive(Integral)],
    "max_time": [None, _positive(Real, "neither")],
    "callbacks": [None, list, tuple],
    "warm_start": ["boolean"],
    "device": [str, torch.device],
    "precision": [StrOptions({"fp32", "bf16"})],
    "random_state": ["random_state"],
    "verbose": ["verbose"],
    **{f"{role}_covariates": [None, list, tuple] for role in ("future", "past", "static", "categorical")},
    "calendar_features": [None, StrOptions({"auto"}), list, tuple],
    "holidays": [None, str, list, tuple],
}


def quantile_levels(quantiles) -> tuple:
    """The levels a network is trained for: ``quantiles`` (checked) and the median, sorted.

    Examples
    --------
    >>> quantile_levels(None), quantile_levels([0.9, 0.1])
    ((0.5,), (0.1, 0.5, 0.9))
    """
    if quantiles is None:
        return (0.5,)
    try:
        values = [float(q) for q in quantiles]
    except (TypeError, ValueError):
        values = []
    if not values or any(not 0 < q < 1 for q in values) or len(set(values)) != len(values):
        raise InvalidParameterError(
            f"quantiles must be None or distinct levels strictly between 0 and 1, like (0.1, 0.5, 0.9); "
            f"got {quantiles!r}."
        )
    return tuple(sorted(set(values) | {0.5}))


def interval_quantile_pairs(levels: tuple, trained: tuple, name: str) -> dict:
    """Per interval level (percent), the pair of trained quantile levels that bound it.

    A network's intervals are its quantile outputs: ``level=95`` needs the quantiles 0.025 and 0.975
    among those it was trained for (``trained``, from :func:`quantile_levels`).

    Examples
    --------
    >>> interval_quantile_pairs((80.0,), (0.1, 0.5, 0.9), "LSTMForecaster")
    {80.0: (0.1, 0.9)}
    """
    pairs = {level: interval_quantiles(level) for level in levels}
    missing = sorted({q for pair in pairs.values() for q in pair} - set(trained))
    if missing:
        needed = sorted({q for pair in pairs.values() for q in pair})
        quantiles = [q for q in trained if q != 0.5]
        trained_for = f"the quantiles {quantiles}" if quantiles else "the point forecast only"
        raise InvalidParameterError(
            f"{name} was trained for {trained_for}; level={[float(f'{lv:g}') for lv in levels]} needs "
            f"the quantiles {missing}: fit it with quantiles={needed}, or wrap it for calibrated "
            f"intervals: ConformalIntervals({name}(...))."
        )
    return pairs
