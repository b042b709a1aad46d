"""Model names used by the CLI, the pipelines and tuning, mapped to the forecaster classes.

The one table of model names (:data:`MODELS`): ``tsforecast fit --model``, a pipeline's ``model`` and
``baselines``, and :func:`tsforecast.tuning.tune`'s ``baselines=["naive2", ...]`` all look names up
here. ``build_estimator("lstm", {"hidden_size": 32}, defaults={"horizon": 48})`` creates the class with
its own defaults, applies ``defaults`` (settings shared by every model of a job: horizon, season
length, seed, ...) where the class has such a parameter, then the model's own ``params`` through
``set_params``, and validates the result before any data is read. Classes are imported on first use
(the table holds module paths, not classes), so naming a baseline never imports torch.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from importlib import import_module
from numbers import Integral, Real

from tsforecast.exceptions import InvalidParameterError


@dataclass(frozen=True)
class ModelEntry:
    """Where a model's class lives, the other names it answers to and how the M4 competition named it.

    Attributes
    ----------
    module, class_name : str
        The class, imported by :func:`estimator_class` on first use.
    m4_name : str, optional
        Its row in the published M4 results, if M4 ran it.
    aliases : tuple of str
        Other names :func:`entry` accepts for it (``"ets"`` for ``"autoets"``); the lower-cased class
        name is always one.
    """

    module: str
    class_name: str
    m4_name: str | None = None
    aliases: tuple[str, ...] = ()

    @property
    def neural(self) -> bool:
        """Whether the class is a recurrent network (it imports torch)."""
        return self.module.startswith("tsforecast.nn")

    @property
    def baseline(self) -> bool:
        """Whether the class is a statistical baseline (a reference row in backtests and tuning)."""
        return self.module == "tsforecast.baselines"

    def names(self) -> tuple[str, ...]:
        """Every spelling of this model that :func:`entry` finds, normalised (see :func:`entry`)."""
        return tuple(dict.fromkeys(_normal(a) for a in (self.class_name, *self.aliases)))


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
    "autoets": ModelEntry("tsforecast.baselines", "AutoETS", aliases=("ets",)),
    "autoarima": ModelEntry("tsforecast.baselines", "AutoARIMA", aliases=("arima",)),
}


def entry(name: str, where: str = "model") -> ModelEntry:
    """The registry entry of ``name``, or an error naming ``where`` and the known names.

    ``name`` is a key of :data:`MODELS`, the model's class name or one of its aliases, in any case and
    with or without ``_``/``-`` (``"SeasonalNaive"``, ``"seasonal_naive"``, ``"ets"``).

    Raises
    ------
    InvalidParameterError
        For a name no entry answers to.
    """
    key = _normal(name) if isinstance(name, str) else None
    if key in MODELS:
        return MODELS[key]
    found = next((e for e in MODELS.values() if key in e.names()), None)
    if found is None:
        raise InvalidParameterError(f"{where}: unknown model {name!r}; choose from {', '.join(MODELS)}.")
    return found


def baseline_names() -> list[str]:
    """The registry names of the statistical baselines, in table order."""
    return [name for name, found in MODELS.items() if found.baseline]


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
        estimator.check_params()
    except InvalidParameterError as error:
        bad = next((key for key in accepted if f"'{key}' parameter" in str(error)), None)
        prefix = f"{where}.params.{bad}" if bad in params else where
        raise InvalidParameterError(f"{prefix}: {error}") from None
    return estimator


def _normal(name: str) -> str:
    return name.strip().lower().replace("_", "").replace("-", "")


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


__all__ = [
    "MODELS",
    "ModelEntry",
    "baseline_names",
    "build_estimator",
    "entry",
    "estimator_class",
    "parameter_names",
]
