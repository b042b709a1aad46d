"""What defines a study: the settings its trials are scored under, recorded with it, checked on resume.

Trials of one study are ranked by their scores, so every setting that changes what a score means is
recorded in the study when it is created (Optuna user attribute ``tsforecast.settings``): the
estimator class, its parameters that are not searched (``hidden_size`` held with ``--param``,
``max_epochs``, ``horizon``, ``scaler``, ...), the search space, the metric and the interval levels
the models are asked for (:mod:`tsforecast.tuning.scoring`), the validation windows, and the data's
fingerprint and frequency. A later run against the same study (a resume, another
worker) with any of them different is refused, naming each difference: its trials would be ranked
against trials scored under other rules, and the best "trial" refitted with parameters that were
never scored.

What only changes how many trials run, where or how fast is not recorded, so workers with other
budgets or machines join one study: ``n_trials``, ``timeout``, ``n_jobs``, the number of workers,
progress output, the pruner and sampler, the seed, and the estimator parameters in
:data:`OPERATIONAL_PARAMS`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

import pandas as pd

# Estimator parameters that change how a trial runs, not what its score means: the device a worker
# has, a per-fit safety time cap, the seed of the networks, progress output and epoch callbacks.
OPERATIONAL_PARAMS = ("callbacks", "device", "max_time", "random_state", "verbose")


def study_settings(estimator, fixed: dict, space, scoring, validation, panel, covariates=None) -> dict:
    """The settings that define a study of ``estimator`` (see the module docstring), as plain JSON.

    Parameters
    ----------
    estimator : BaseForecaster
        The prototype.
    fixed : dict
        Parameters tuning sets on every trial besides the sampled ones (``validation_size``).
    space : mapping or callable
        The checked search space; its parameters are left out of the recorded parameters.
    scoring : Scoring or str
        The objective (a point metric's name, or a :class:`~tsforecast.tuning.scoring.Scoring` that
        records its interval levels too).
    validation : Validation
        The resolved windows.
    panel : Panel
        The training data.
    covariates : pd.DataFrame, optional
        The covariates the trials get (their hash is recorded: other covariates, another study).

    Returns
    -------
    dict
        ``estimator``, ``params``, ``search_space``, ``metric``, ``validation``, ``data``, ``freq``,
        ``level`` when intervals are scored (a list of percents) and ``covariates`` when there are
        some.

    Examples
    --------
    >>> from tsforecast.baselines import Naive2  # doctest: +SKIP
    >>> study_settings(Naive2(horizon=6), {}, space, "mase", validation, panel)["params"]  # doctest: +SKIP
    {'horizon': 6, 'season_length': 1}
    """
    from tsforecast.tuning.validation import fingerprint

    searched = () if callable(space) else tuple(space)
    objective = scoring.record() if hasattr(scoring, "record") else {"metric": scoring}
    params = {**estimator.get_params(deep=False), **fixed}
    return plain(
        {
            "estimator": type(estimator).__name__,
            "params": {
                k: v for k, v in sorted(params.items()) if k not in OPERATIONAL_PARAMS and k not in searched
            },
            "search_space": space_record(space),
            **objective,
            "validation": {
                "n_windows": validation.n_windows,
                "step": validation.step,
                "horizon": validation.horizon,
                "season_length": validation.season_length,
            },
            "data": fingerprint(panel),
            "freq": getattr(panel.freq, "freqstr", panel.freq),
        }
        | ({} if covariates is None else {"covariates": _frame_hash(covariates)})
    )


def _frame_hash(frame) -> str:
    """A short hash of a frame's columns, index and values."""
    digest = hashlib.sha1(repr(list(frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
    return digest.hexdigest()[:10]


def space_record(space) -> dict:
    """A search space as Optuna stores distributions (JSON); a function by its qualified name."""
    from optuna.distributions import distribution_to_json

    if callable(space):
        return {"function": getattr(space, "__qualname__", repr(space))}
    return {name: distribution_to_json(distribution) for name, distribution in space.items()}


def differences(recorded: Mapping, settings: Mapping) -> list[str]:
    """One ``"what: study has OLD, now NEW"`` line per setting that differs (one level deep).

    Examples
    --------
    >>> differences({"metric": "mase", "params": {"hidden_size": 8}},
    ...             {"metric": "mase", "params": {"hidden_size": 16}})
    ['params.hidden_size: study has 8, now 16']
    """
    lines = []
    for key in _keys(recorded, settings):
        old, new = recorded.get(key, _ABSENT), settings.get(key, _ABSENT)
        if old == new:
            continue
        if isinstance(old, Mapping) and isinstance(new, Mapping) and key != "validation":
            for name in _keys(old, new):
                was, now = old.get(name, _ABSENT), new.get(name, _ABSENT)
                if was != now:
                    lines.append(f"{key}.{name}: study has {_show(was)}, now {_show(now)}")
        else:
            lines.append(f"{key}: study has {_show(old)}, now {_show(new)}")
    return lines


def plain(value):
    """``value`` as the JSON the study stores and gives back (tuples as lists, numpy scalars as numbers).

    Examples
    --------
    >>> plain({"quantiles": (0.1, 0.9), "layers": [1, 2]})
    {'quantiles': [0.1, 0.9], 'layers': [1, 2]}
    """
    return json.loads(json.dumps(value, default=_jsonable))


class _Absent:
    def __repr__(self) -> str:
        return "(not set)"


_ABSENT = _Absent()


def _keys(*mappings) -> list:
    seen = {}
    for mapping in mappings:
        seen.update(dict.fromkeys(mapping))
    return list(seen)


def _show(value) -> str:
    """A value of a difference, distributions as Optuna writes them."""
    if isinstance(value, str) and value.startswith('{"name":'):
        from optuna.distributions import json_to_distribution

        try:
            return repr(json_to_distribution(value))
        except (ValueError, KeyError):
            pass
    return repr(value)


def _jsonable(value):
    if hasattr(value, "item") and not hasattr(value, "__len__"):  # numpy scalars
        return value.item()
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    return repr(value)
