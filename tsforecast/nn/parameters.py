"""The allowed values of the recurrent forecasters' parameters: one declared table, checked at ``fit``.

:data:`PARAMETER_CONSTRAINTS` is scikit-learn's table format (``BaseForecaster.check_params`` runs it);
:func:`quantile_levels` checks what the table cannot (the levels inside ``quantiles``).
"""

from __future__ import annotations

import os
from numbers import Integral, Real

import torch
from sklearn.utils._param_validation import Interval, StrOptions

from tsforecast.exceptions import InvalidParameterError
from tsforecast.metrics.intervals import interval_quantiles
from tsforecast.scaling import SCALERS

__all__ = ["PARAMETER_CONSTRAINTS", "ineffective_parameters", "inert_parameters", "quantile_levels"]


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
    "max_steps": [None, _positive(Integral)],
    "batch_size": [_positive(Integral)],
    "validation_size": [Interval(Integral, 0, None, closed="left")],
    "patience": [None, _positive(Integral)],
    "max_time": [None, _positive(Real, "neither")],
    "callbacks": [None, list, tuple],
    "checkpoint_dir": [None, str, os.PathLike],
    "checkpoint_every": [None, _positive(Real, "neither")],
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


def ineffective_parameters(params: dict, cell: str = "lstm", device_type: str | None = None) -> dict:
    """The parameters whose value has no effect given the others, whatever it is: name -> why.

    Parameters
    ----------
    params : dict
        Every parameter of a recurrent forecaster (its ``get_params()``).
    cell : {"lstm", "gru", "rnn"}
    device_type : {"cpu", "cuda"}, optional
        Where it trains, when known.

    Examples
    --------
    >>> from tsforecast import LSTMForecaster
    >>> sorted(ineffective_parameters(LSTMForecaster(training="windows").get_params()))
    ['checkpoint_every', 'dropout', 'patience', 'residual', 'stream_length', 'tbptt_steps', 'warmup_steps']
    """
    value = params  # every parameter, by name
    rules = {
        "dropout": (
            value["num_layers"] == 1,
            "dropout acts between stacked recurrent layers, and num_layers=1 has none",
        ),
        "residual": (value["num_layers"] == 1, "residual connections skip the layers after the first"),
        "tbptt_steps": (value["training"] == "windows", "training='windows' trains on windows of lookback"),
        "stream_length": (value["training"] == "windows", "streams are cut for training='tbptt' only"),
        "warmup_steps": (
            value["training"] == "windows" or value["stream_length"] is None,
            "warm-up steps start streams cut from a longer series (training='tbptt', stream_length set)",
        ),
        "lookback": (value["training"] == "tbptt", "lookback is the window length of training='windows'"),
        "patience": (value["validation_size"] == 0, "early stopping needs validation_size > 0"),
        "gate_init": (cell == "rnn", "a vanilla RNN has no gates"),
        "precision": (device_type == "cpu", "bf16 autocasts on CUDA only; on CPU training stays fp32"),
        "checkpoint_every": (value["checkpoint_dir"] is None, "checkpoints are written to checkpoint_dir"),
    }
    return {name: why for name, (inert, why) in rules.items() if inert}


def inert_parameters(
    params: dict, defaults: dict, cell: str = "lstm", device_type: str | None = None
) -> dict:
    """The parameters set away from their ``defaults`` that have no effect with the others: name -> why.

    Examples
    --------
    >>> from tsforecast import LSTMForecaster
    >>> defaults = LSTMForecaster().get_params()
    >>> inert_parameters({**defaults, "dropout": 0.2, "num_layers": 1}, defaults)
    {'dropout': 'dropout acts between stacked recurrent layers, and num_layers=1 has none'}
    """
    return {
        name: why
        for name, why in ineffective_parameters(params, cell, device_type).items()
        if _differs(params[name], defaults[name])
    }


def _differs(value, default) -> bool:
    try:
        return bool(value != default)
    except (TypeError, ValueError):
        return True
