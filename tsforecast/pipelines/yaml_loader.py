"""The one YAML reader of the command line and the pipelines: files, ``--set``, ``-p`` and ``--param``.

Safe YAML (PyYAML's ``SafeLoader``, YAML 1.1) with two changes, so that a value reads the same
wherever it is written:

* numbers in scientific notation are floats, as in the YAML 1.2 core schema: ``1e-3``, ``1E5``,
  ``.5e3``, ``-2e+4`` (YAML 1.1 wants a dot and a signed exponent, and reads ``1e-3`` as the string
  ``'1e-3'``, which a ``float`` field then refuses);
* dates stay strings: ``2024-05-01`` is ``'2024-05-01'``, as ``--as-of`` and pandas take it.

Examples
--------
>>> load_yaml("{learning_rate: 1e-3, hidden_size: 8, start: 2024-05-01}")
{'learning_rate': 0.001, 'hidden_size': 8, 'start': '2024-05-01'}
>>> parse_value("-2e+4"), parse_value(".5e3"), parse_value("1E5"), parse_value("1e")
(-20000.0, 500.0, 100000.0, '1e')
"""

from __future__ import annotations

import re

import yaml

_FLOAT_TAG = "tag:yaml.org,2002:float"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"

# YAML 1.1's float rule with the exponent's sign optional and, with an exponent, the dot too (YAML
# 1.2 core). An integer (no dot, no exponent) must not match: this rule is tried before the int rule.
FLOAT = re.compile(
    r"""^(?:[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
    |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)


class Loader(yaml.SafeLoader):
    """Safe YAML with YAML 1.2's floats (``1e-3``) and without implicit dates (see the module)."""


Loader.yaml_implicit_resolvers = {
    first: [(tag, FLOAT if tag == _FLOAT_TAG else rule) for tag, rule in resolvers if tag != _TIMESTAMP_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_yaml(text: str):
    """A YAML document as Python values; raises ``yaml.YAMLError`` when it is not valid YAML."""
    return yaml.load(text, Loader=Loader)  # noqa: S506 (Loader is a SafeLoader)


def parse_value(text: str):
    """A ``--set``, ``-p`` or ``--param`` value read as YAML; text that is not YAML stays as it is.

    ``8`` is an int, ``1e-3`` a float, ``null`` None, ``[a, b]`` a list; dates stay strings.
    """
    try:
        return load_yaml(text)
    except yaml.YAMLError:
        return text


__all__ = ["FLOAT", "Loader", "load_yaml", "parse_value"]
