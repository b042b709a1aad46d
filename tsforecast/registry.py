"""Model names used by the CLI and the pipelines, mapped to the forecaster classes.

``build_estimator("lstm", {"hidden_size": 32}, defaults={"horizon": 48})`` creates the class with its
own defaults, applies ``defaults`` (settings shared by every model of a job: horizon, season length,
seed, ...) where the class has such a parameter, then the model's own ``params`` through
``set_params``, and validates the result before any data is read. Classes are imported on first use,
so naming a baseline never imports torch.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from importlib import import_module
from numbers import Integral, Real

from tsforecast.exceptions import InvalidParameterError


@dataclass(frozen=True)
class ModelEntry:
    """Where a model's class lives and how the M4 competition named it."""

    module: str
    class_name: str
    m4_name: str | None = None  # its row in the published M4 results, if M4 ran it

    @property
    def neural(self) -> bool:
        return self.module.startswith("tsforecast.nn")


MODELS: dict[str, ModelEntry] = {
    "lstm": ModelEntry("tsforecast.nn.estimators", "LSTMForecaster"),
    "gru": ModelEntry("tsforecast.nn.estimators", "GRUForecaster"),
    "rnn": ModelEntry("tsforecast.nn.estimators", "RNNForecaster"),
    "naive": ModelEntry("tsforecast.baselines", "Naive", "Naive"),
    "snaive": ModelEntry("tsforecast.baselines", "SeasonalNaive", "sNaive"),
    "naive2": ModelEntry("tsforecast.baselines", "Naive2", "Naive2"),
    "ses": ModelEntry("tsforecast.baselines", "SES", "SES"),
    "holt": ModelEntry("tsforecast.baselines", "Holt", "Holt"),
    "damped": ModelEntry("tsforecast.baselines", "DampedHolt", "Damped"),
    "theta": ModelEntry("tsforecast.baselines", "Theta", "Theta"),
    "autoets": ModelEntry("tsforecast.baselines", "AutoETS"),
    "autoarima": ModelEntry("tsforecast.baselines", "AutoARIMA"),
}


def entry(name: str, where: str = "model") -> ModelEntry:
    """The registry entry of ``name``, or an error naming ``where`` and the known names."""
    if not isinstance(name, str) or name.lower() not in MODELS:
        raise InvalidParameterError(f"{where}: unknown model {name!r}; choose from {', '.join(MODELS)}.")
    return MODELS[name.lower()]


def estimator_class(name: str, where: str = "model") -> type:
    """The forecaster class registered under ``name`` (imported now)."""
    found = entry(name, where)
    return getattr(import_module(found.module), found.class_name)


def parameter_names(name: str, where: str = "model") -> list[str]:
    """The parameters the class of ``name`` accepts."""
    return list(estimator_class(name, where)._get_param_names())


def build_estimator(name: str, params: dict | None = None, *, defaults: dict | None = None, where="model"):
    """Create and validate the forecaster registered under ``name``.

    Parameters
    ----------
    name : str
        A key of :data:`MODELS` (case-insensitive).
    params : dict, optional
        The model's own settings; every key must be a parameter of the class.
    defaults : dict, optional
        Shared settings applied first, only where the class has the parameter (a baseline has no
        ``random_state``, so a job-wide seed skips it).
    where : str
        How errors name the model's settings (``"model"``, ``"baselines[1]"``, ...); parameter errors
        read ``{where}.params.{key}: ...``.

    Returns
    -------
    BaseForecaster
        Unfitted, with its parameters validated.

    Raises
    ------
    InvalidParameterError
        Naming the offending setting: unknown model or parameter, wrong type, value out of range.

    Examples
    --------
    >>> build_estimator("snaive", defaults={"horizon": 24, "season_length": 24, "random_state": 0})
    SeasonalNaive(horizon=24, season_length=24)
    """
    cls = estimator_class(name, where)
    accepted = cls._get_param_names()
    params = dict(params or {})
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise InvalidParameterError(
            f"{where}.params.{unknown[0]}: not a parameter of {cls.__name__}; it takes {', '.join(accepted)}."
        )
    estimator = cls()
    defaults_of = {key: p.default for key, p in inspect.signature(cls.__init__).parameters.items()}
    for key, value in params.items():
        _check_type(f"{where}.params.{key}", value, defaults_of.get(key))
    estimator.set_params(**{k: v for k, v in (defaults or {}).items() if k in accepted and k not in params})
    estimator.set_params(**params)
    try:
        estimator._check_params()
    except InvalidParameterError as error:
        bad = next((key for key in accepted if f"'{key}' parameter" in str(error)), None)
        prefix = f"{where}.params.{bad}" if bad in params else where
        raise InvalidParameterError(f"{prefix}: {error}") from None
    return estimator


def _check_type(path: str, value, default) -> None:
    """The plain type check a YAML user needs first: a number where the default is a number."""
    if value is None or default is None:
        return
    if isinstance(default, bool):
        expected, ok = "bool", isinstance(value, bool)
    elif isinstance(default, Integral):
        expected, ok = "int", isinstance(value, Integral) and not isinstance(value, bool)
    elif isinstance(default, Real):
        expected, ok = "float", isinstance(value, Real) and not isinstance(value, bool)
    else:
        return  # strings with alternatives, tuples, ...: the class's own constraints say what fits
    if not ok:
        raise InvalidParameterError(f"{path}: expected {expected}, got {value!r}.")


__all__ = ["MODELS", "ModelEntry", "build_estimator", "entry", "estimator_class", "parameter_names"]
