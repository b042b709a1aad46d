"""The one YAML loader of pipeline files, ``--set``, ``-p`` and ``tune --param``
(:mod:`tsforecast.pipelines.yaml_loader`): scientific notation is a float (issue 15, item 8), where
YAML 1.1 reads ``1e-3`` as a string.

The same values through the real commands are in ``test_faults.py``.
"""

import pytest

from tsforecast.cli.common import parse_params
from tsforecast.pipelines.yaml_loader import parse_value


@pytest.mark.parametrize(
    ("text", "value"),
    [("1e-3", 0.001), ("1E5", 1e5), (".5e3", 500.0), ("-2e+4", -2e4), ("+1.5e-2", 0.015), ("1.0e+6", 1e6)],
)
def test_scientific_notation_is_a_float_in_every_value(text, value):
    parsed = parse_value(text)
    assert type(parsed) is float and parsed == value
    assert parse_params([f"learning_rate={text}"]) == {"learning_rate": value}  # -p, tune --param
    assert parse_value("8") == 8 and parse_value("2024-05-01") == "2024-05-01"  # ints, dates unchanged
    assert parse_value("1e") == "1e" and parse_value("e3") == "e3"
