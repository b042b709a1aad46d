"""Search spaces: the default one of the recurrent forecasters, and the user's own.

A space is either a mapping of estimator parameter names to Optuna distributions
(``{"hidden_size": IntDistribution(8, 128, log=True)}``) or a function of the trial that suggests
values itself and returns them as a dict (``lambda trial: {"hidden_size": trial.suggest_int(...)}``).
Either way :func:`suggest` turns it into the parameters one trial sets on its clone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from numbers import Real

from sklearn.base import clone

from tsforecast.exceptions import InvalidParameterError

# The parameters every default space covers; a forecaster lacking them needs a space of its own.
_RECURRENT_PARAMS = ("hidden_size", "clip_norm", "learning_rate", "num_layers", "dropout", "tbptt_steps")


def default_search_space(estimator, longest_stream: int | None = None, spec=None) -> dict:
    """The default space of a recurrent forecaster (LSTM, GRU or RNN).

    ``hidden_size`` (8 to 128) and ``clip_norm`` (0.1 to 10) on a log scale, ``learning_rate``
    (3e-4 to 1e-2, log), ``num_layers`` (1 to 3), ``dropout`` (0 to 0.3, between layers) and, for TBPTT
    training, ``tbptt_steps`` among multiples of the season (1, 2, 4 and 7 seasons of at least 12
    steps, plus the estimator's own value) that fit in ``longest_stream``.

    Parameters
    ----------
    estimator : LSTMForecaster, GRUForecaster or RNNForecaster
        Read for its ``season_length``, ``training`` and ``tbptt_steps``.
    longest_stream : int, optional
        The most TBPTT steps any training stream of any validation window holds; longer chunks are
        left out of the space (the forecaster would reject them).
    spec : FeatureSpec, optional
        The estimator's feature layout on the data (``estimator.feature_spec(panel)``): its
        ``season_length`` sets the unit of the ``tbptt_steps`` choices (default: the parameter, when
        it is a number).

    Returns
    -------
    dict
        Parameter name -> ``optuna.distributions.BaseDistribution``.

    Raises
    ------
    InvalidParameterError
        If the estimator is not a recurrent forecaster (pass ``search_space`` for other models).

    Examples
    --------
    >>> from tsforecast.nn.estimators import LSTMForecaster  # doctest: +SKIP
    >>> space = default_search_space(LSTMForecaster(season_length=24), longest_stream=500)  # doctest: +SKIP
    >>> space["tbptt_steps"].choices  # doctest: +SKIP
    (24, 48, 96, 168)
    """
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    params = estimator.get_params(deep=False)
    if missing := [name for name in _RECURRENT_PARAMS if name not in params]:
        raise InvalidParameterError(
            f"the default search space is for the recurrent forecasters; {type(estimator).__name__} has no "
            f"parameter(s) {missing}. Pass search_space= (a mapping of Optuna distributions or a function "
            "of the trial)."
        )
    space = {
        "hidden_size": IntDistribution(8, 128, log=True),
        "clip_norm": FloatDistribution(0.1, 10.0, log=True),
        "learning_rate": FloatDistribution(3e-4, 1e-2, log=True),
        "num_layers": IntDistribution(1, 3),
        "dropout": FloatDistribution(0.0, 0.3),
    }
    if params.get("training", "tbptt") == "tbptt":
        season = spec.season_length if spec is not None else params["season_length"]
        unit = max(season if isinstance(season, int) else 1, 12)
        choices = {unit * k for k in (1, 2, 4, 7)} | {int(params["tbptt_steps"])}
        if longest_stream is not None:
            choices = {c for c in choices if c <= longest_stream} or {max(1, int(longest_stream))}
        space["tbptt_steps"] = CategoricalDistribution(sorted(choices))
    return space


def check_space(space, estimator) -> Mapping | Callable:
    """Validate a space before any trial: known parameter names, Optuna distributions, allowed values.

    The ends of every range and every categorical choice are checked against the estimator's own
    parameter table, so a range the estimator rejects (``learning_rate`` from 0) stops the study
    before it starts rather than failing its trials. A function of the trial is checked by the
    first trial it gives a bad value, which then stops the study.
    """
    from optuna.distributions import BaseDistribution, CategoricalDistribution

    if callable(space):
        return space
    if not isinstance(space, Mapping) or not space:
        raise InvalidParameterError(
            "search_space must be a non-empty mapping of parameter name -> Optuna distribution, or a "
            f"function of the trial returning a dict of parameters; got {type(space).__name__}."
        )
    _check_names(space, estimator, "search_space")
    for name, distribution in space.items():
        if not isinstance(distribution, BaseDistribution):
            raise InvalidParameterError(
                f"search_space[{name!r}] must be an optuna.distributions object (IntDistribution, "
                f"FloatDistribution, CategoricalDistribution); got {distribution!r}."
            )
        ends = (
            distribution.choices
            if isinstance(distribution, CategoricalDistribution)
            else (distribution.low, distribution.high)
        )
        for value in ends:
            check_parameters(
                clone(estimator).set_params(**{name: value}),
                f"search_space[{name!r}] allows {value!r}",
                "keep the range or choices inside the values allowed",
            )
    return dict(space)


_FIX = "fix the value (tune --param KEY=VALUE, params: in the YAML file, or the estimator's constructor)"


def check_parameters(estimator, where: str = "the estimator's parameters", fix: str = _FIX) -> None:
    """Check ``estimator``'s parameters against its own table of allowed values, before any trial.

    Raises
    ------
    InvalidParameterError
        Naming ``where`` and the parameter, with the value received and the values allowed.

    Examples
    --------
    >>> from tsforecast.nn.estimators import LSTMForecaster  # doctest: +SKIP
    >>> check_parameters(LSTMForecaster(learning_rate=-1))  # doctest: +SKIP
    Traceback (most recent call last):
    InvalidParameterError: the estimator's parameters: The 'learning_rate' parameter of ...
    """
    check = getattr(estimator, "check_params", None)  # BaseForecaster's: the check fit runs first
    if check is None:
        return
    try:
        check()
    except InvalidParameterError as error:
        raise InvalidParameterError(f"{where}: {error} Nothing was tuned: {fix}.") from None


def suggest(trial, space, estimator) -> dict:
    """Draw one trial's parameters from ``space`` (see the module docstring).

    A mapping is drawn in its order; a parameter that the estimator's ``ineffective_parameters``
    says has no effect given the values so far is not drawn (it keeps the estimator's value).
    """
    if callable(space):
        params = space(trial)
        if not isinstance(params, Mapping):
            raise InvalidParameterError(
                f"a search_space function must return a dict of parameters; it returned {params!r}."
            )
        _check_names(params, estimator, "the search_space function's result")
        return dict(params)
    # Draw in the space's order and skip a parameter the values drawn so far make ineffective
    # (dropout of a one-layer network): TPE then never learns from a value that did nothing.
    ineffective = getattr(estimator, "ineffective_parameters", None)
    fixed, drawn = estimator.get_params(deep=False), {}
    for name, distribution in space.items():
        if ineffective is not None and name in ineffective({**fixed, **drawn}):
            continue
        drawn[name] = _suggest_one(trial, name, distribution)
    return drawn


def default_point(space, estimator) -> dict | None:
    """The estimator's own values of the searched parameters, when ``space`` is a mapping holding them."""
    from optuna.distributions import CategoricalDistribution

    if callable(space):
        return None
    params = estimator.get_params(deep=False)
    point = {name: params[name] for name in space}
    for name, distribution in space.items():
        value = point[name]
        if isinstance(distribution, CategoricalDistribution):
            inside = value in distribution.choices
        else:
            number = isinstance(value, Real) and not isinstance(value, bool)
            inside = number and distribution.low <= value <= distribution.high
        if not inside:
            return None
    return point


def describe(space) -> dict:
    """A JSON-friendly description of a space (for the study's records and MLflow)."""
    if callable(space):
        return {"function": getattr(space, "__qualname__", repr(space))}
    return {name: repr(distribution) for name, distribution in space.items()}


def _check_names(names, estimator, what: str) -> None:
    known = estimator.get_params(deep=False)
    if unknown := [name for name in names if name not in known]:
        raise InvalidParameterError(
            f"{what} names {unknown}, not parameters of {type(estimator).__name__}; its parameters are "
            f"{sorted(known)}."
        )


def _suggest_one(trial, name: str, distribution):
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if isinstance(distribution, IntDistribution):
        return trial.suggest_int(
            name, distribution.low, distribution.high, step=distribution.step, log=distribution.log
        )
    if isinstance(distribution, FloatDistribution):
        return trial.suggest_float(
            name, distribution.low, distribution.high, step=distribution.step, log=distribution.log
        )
    if isinstance(distribution, CategoricalDistribution):
        return trial.suggest_categorical(name, distribution.choices)
    raise InvalidParameterError(f"search_space[{name!r}]: unsupported distribution {distribution!r}.")
