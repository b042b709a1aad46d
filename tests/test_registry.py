"""The one table of model names: keys, aliases and class names resolve to the same entry."""

import pytest

from tsforecast.exceptions import InvalidParameterError
from tsforecast.registry import MODELS, baseline_names, entry, estimator_class


@pytest.mark.parametrize("name", ["autoets", "AutoETS", "auto_ets", "ets", " ETS "])
def test_keys_class_names_and_aliases_find_one_entry(name):
    assert entry(name) is MODELS["autoets"]


def test_seasonal_naive_answers_to_its_class_name():
    assert entry("seasonal-naive") is MODELS["snaive"] and entry("DampedHolt") is MODELS["damped"]


def test_baselines_are_the_statistical_models():
    assert baseline_names() == [
        "naive", "snaive", "naive2", "ses", "holt", "damped", "theta", "autoets", "autoarima",
    ]  # fmt: skip
    assert not any(MODELS[name].neural for name in baseline_names())
    assert estimator_class("naive2").__name__ == "Naive2"


def test_every_spelling_names_one_model():
    spellings = [(key, spelling) for key, found in MODELS.items() for spelling in (key, *found.names())]
    owners = {}
    for key, spelling in spellings:
        owners.setdefault(spelling, set()).add(key)
    assert {spelling: keys for spelling, keys in owners.items() if len(keys) > 1} == {}


def test_unknown_name_lists_the_known_ones():
    message = r"baselines\[0\]: unknown model 'prophet'; choose from lstm, gru"
    with pytest.raises(InvalidParameterError, match=message):
        entry("prophet", "baselines[0]")
