"""The typed schema of a pipeline YAML file, and loading one with overrides.

:func:`load_config` reads the YAML (one reader, :mod:`tsforecast.pipelines.yaml_loader`: ``1e-3`` is a
float, dates stay strings), applies ``--set key=value`` overrides (dotted paths), expands
``${VAR}`` and ``${VAR:-default}`` from the environment in string values, and validates the result
against :class:`PipelineConfig` before anything runs. Every problem is reported with the dotted path
of the offending field (``model.params.hidden_size: expected int, got 'abc'``), including the model
parameters, which are checked against the forecaster classes (:func:`tsforecast.registry.build_estimator`).

Relative paths in a pipeline are relative to the working directory of the command.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, model_validator

from tsforecast.exceptions import InvalidParameterError
from tsforecast.pipelines.covariates import CovariateSettings, covariate_problems
from tsforecast.pipelines.intervals import CoverageGate, IntervalSettings, interval_problems
from tsforecast.pipelines.staleness import MaxStaleness
from tsforecast.pipelines.yaml_loader import Loader, parse_value
from tsforecast.registry import MODELS, build_estimator

METRICS = ("smape", "mase", "mae", "rmse")
_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"


class ConfigError(InvalidParameterError):
    """A pipeline file, ``--set`` override or ``--as-of`` is invalid (names the field)."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class FileData(_Section):
    """A CSV or parquet file in the long, wide or single-series layout."""

    kind: Literal["file"] = "file"
    path: str
    id_col: str = "unique_id"
    time_col: str = "ds"
    target_col: str = "y"
    freq: str | int | None = None
    missing: Literal["error", "interpolate", "keep"] = "error"
    short_series: Literal["error", "drop"] = "error"
    limit_series: Annotated[int, Field(ge=1)] | None = None
    max_staleness: MaxStaleness = 1  # see tsforecast.pipelines.staleness


class M4DataSource(_Section):
    """One frequency subset of the M4 competition, found as :func:`tsforecast.datasets.load_m4` does.

    From ``dir`` (absent or empty: ``$TSFORECAST_DATA_DIR/m4``, else ``../shared/data/m4``); when that
    folder lacks the files, from the user cache, where they are downloaded once.
    """

    kind: Literal["m4"]
    frequency: Literal["yearly", "quarterly", "monthly", "weekly", "daily", "hourly"] = "hourly"
    dir: str | None = None  # "" (${M4_DIR:-} with M4_DIR unset) is no folder
    limit_series: Annotated[int, Field(ge=1)] | None = None


def _data_kind(value) -> str:
    return value.get("kind", "file") if isinstance(value, dict) else getattr(value, "kind", "file")


class ModelSpec(_Section):
    """A forecaster by registry name, with its own parameters and the label it gets in tables."""

    name: Literal[tuple(MODELS)]  # type: ignore[valid-type]
    params: dict[str, Any] = Field(default_factory=dict)
    label: Annotated[str, Field(pattern=_NAME)] | None = None

    @property
    def key(self) -> str:
        return self.label or self.name


def _as_spec(value):
    return {"name": value} if isinstance(value, str) else value


BaselineSpec = Annotated[ModelSpec, Field(description="a registry name or {name, params, label}")]


class ForecastSettings(_Section):
    horizon: Annotated[int, Field(ge=1)] | None = None
    season_length: Annotated[int, Field(ge=1)] | None = None


class BacktestSettings(_Section):
    n_windows: Annotated[int, Field(ge=1)] = 1
    step: Annotated[int, Field(ge=1)] | None = None
    metrics: list[Literal[METRICS]] = Field(default_factory=lambda: list(METRICS))  # type: ignore[valid-type]


class GateSettings(_Section):
    enabled: bool = True
    metric: Literal["smape", "mase", "mae", "rmse", "owa"] = "mase"
    margin: Annotated[float, Field(ge=0)] = 0.0
    compare_current: bool = False
    coverage: CoverageGate | None = None  # see tsforecast.pipelines.intervals


class EvaluationSettings(_Section):
    enabled: bool = True
    test_path: str | None = None
    published: bool = True


class OutputSettings(_Section):
    dir: str
    format: Literal["parquet", "csv"] = "parquet"
    baseline_forecasts: Literal["none", "best", "all"] = "best"
    save_model: bool = True


class RegisterSettings(_Section):
    name: Annotated[str, Field(min_length=1)]
    alias: str | None = "champion"


class TrackingSettings(_Section):
    enabled: bool = True
    experiment: str | None = None
    tracking_uri: str | None = None
    # "register" in the YAML; the attribute is renamed because BaseModel has a ``register`` method.
    registry: RegisterSettings | None = Field(default=None, alias="register")
    plots: bool = True
    diagnostics: bool = True


class PipelineConfig(_Section):
    """A whole pipeline; see ``pipelines/README.md`` for every field."""

    name: Annotated[str, Field(pattern=_NAME)]
    description: str = ""
    seed: int = 0
    data: Annotated[
        Union[Annotated[FileData, Tag("file")], Annotated[M4DataSource, Tag("m4")]],  # noqa: UP007
        Discriminator(_data_kind),
    ]
    forecast: ForecastSettings = Field(default_factory=ForecastSettings)
    covariates: CovariateSettings | None = None  # see tsforecast.pipelines.covariates
    model: ModelSpec
    baselines: list[BaselineSpec] = Field(default_factory=list)
    intervals: IntervalSettings | None = None  # see tsforecast.pipelines.intervals
    backtest: BacktestSettings = Field(default_factory=BacktestSettings)
    gate: GateSettings = Field(default_factory=GateSettings)
    evaluation: EvaluationSettings | None = None
    outputs: OutputSettings
    tracking: TrackingSettings = Field(default_factory=TrackingSettings)

    @model_validator(mode="before")
    @classmethod
    def _baseline_shorthand(cls, values):
        if isinstance(values, dict) and isinstance(values.get("baselines"), list):
            values = {**values, "baselines": [_as_spec(v) for v in values["baselines"]]}
        return values

    @property
    def horizon(self) -> int:
        """Steps forecast (M4 data: the competition's horizon, filled in by ``load_config``)."""
        return self.forecast.horizon  # filled in for M4 data by load_config

    @property
    def season_length(self) -> int:
        """The seasonal period shared by the models and MASE (1: none)."""
        return self.forecast.season_length or 1

    def estimator_defaults(self) -> dict:
        """Settings every model of the pipeline shares (applied where a class has the parameter)."""
        shared = {"horizon": self.horizon, "season_length": self.season_length, "random_state": self.seed}
        return shared | (self.covariates.params() if self.covariates is not None else {})


def load_config(path, overrides=(), environ=None) -> PipelineConfig:
    """Read, override, expand and validate a pipeline file.

    Parameters
    ----------
    path : str or Path
        The YAML file.
    overrides : sequence of str
        ``key=value`` items; ``key`` is a dotted path (``model.params.hidden_size``, ``baselines.0``),
        ``value`` is parsed as YAML (``8`` is an int, ``1e-3`` a float, ``null`` None, ``[a, b]`` a
        list; :func:`tsforecast.pipelines.yaml_loader.parse_value`).
    environ : mapping, optional
        Variables for ``${VAR}`` expansion (default: ``os.environ``).

    Raises
    ------
    ConfigError
        Listing every problem with the path of its field.

    Examples
    --------
    >>> config = load_config("pipelines/m4_hourly.yaml", ["model.params.max_epochs=2"])  # doctest: +SKIP
    >>> config.model.params["max_epochs"]  # doctest: +SKIP
    2
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the pipeline file: {error.strerror or error}") from None
    raw, problems = _read_yaml(path, text)
    if isinstance(raw.get("baselines"), list):  # so that --set baselines.0.params.x=... reaches a mapping
        raw["baselines"] = [_as_spec(value) for value in raw["baselines"]]
    for item in overrides:
        _apply_override(raw, item)
    raw = _expand(raw, os.environ if environ is None else environ, "")
    try:
        config = _fill_dataset_defaults(PipelineConfig.model_validate(raw))
    except ValidationError as error:
        config = None
        problems += [_describe(item) for item in error.errors()]
    if config is not None:
        problems += _semantic_problems(config)
    # Always, so that one run of --check lists every problem, the model parameters' too.
    problems += _parameter_problems(raw, config)
    if problems:
        raise ConfigError(_bulleted(path, problems))
    return config


def _read_yaml(path: Path, text: str) -> tuple[dict, list]:
    """The YAML document as a dict, and its duplicated keys as problems (YAML keeps the last one)."""
    loader = Loader(text)
    try:
        node = loader.get_single_node()
        raw = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    finally:
        loader.dispose()
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top, got {type(raw).__name__}.")
    return raw, _duplicated_keys(node, "")


def _duplicated_keys(node, where: str) -> list:
    problems = []
    if isinstance(node, yaml.MappingNode):
        lines: dict = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            path = f"{where}.{key}" if where else key
            line = key_node.start_mark.line + 1
            if key in lines and key != "<<":
                problems.append(
                    f"{path}: duplicated key (lines {lines[key]} and {line}); YAML would silently keep "
                    "the last one, so merge the two or delete one."
                )
            lines.setdefault(key, line)
            problems += _duplicated_keys(value_node, path)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            problems += _duplicated_keys(item, f"{where}.{i}")
    return problems


def _apply_override(raw: dict, item: str) -> None:
    key, sep, text = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {item!r}: expected key=value, for example model.params.hidden_size=32.")
    parts = key.strip().split(".")
    node = raw
    for depth, part in enumerate(parts[:-1]):
        child = _child(node, part)
        if child is None:
            child = {}
            _assign(node, part, child, ".".join(parts[: depth + 1]))
        if not isinstance(child, (dict, list)):
            raise ConfigError(f"--set {key}: {'.'.join(parts[: depth + 1])} is a value, not a section.")
        node = child
    _assign(node, parts[-1], parse_value(text), key)


def _child(node, part):
    if isinstance(node, list):
        return node[int(part)] if part.isdigit() and int(part) < len(node) else None
    return node.get(part)


def _assign(node, part, value, where) -> None:
    if isinstance(node, list):
        if not part.isdigit() or int(part) > len(node):
            raise ConfigError(f"--set {where}: {part!r} is not an index of a list of {len(node)} item(s).")
        if int(part) == len(node):
            node.append(value)
        else:
            node[int(part)] = value
    else:
        node[part] = value


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _expand(value, environ, where: str):
    if isinstance(value, dict):
        return {k: _expand(v, environ, f"{where}.{k}" if where else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, environ, f"{where}.{i}") for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def substitute(match):
        name, default = match.group(1), match.group(2)
        if name in environ and environ[name] != "":
            return environ[name]
        if default is not None:
            return default
        raise ConfigError(
            f"{where}: environment variable {name} is not set (used as ${{{name}}}); export it, pass "
            f"--set {where}=..., or write ${{{name}:-default}}."
        )

    return _VAR.sub(substitute, value)


def _fill_dataset_defaults(config: PipelineConfig) -> PipelineConfig:
    forecast = config.forecast
    if config.data.kind == "m4":
        from tsforecast.datasets import M4_FREQUENCIES

        spec = M4_FREQUENCIES[config.data.frequency]
        forecast = ForecastSettings(
            horizon=forecast.horizon or spec.horizon,
            season_length=forecast.season_length or spec.season_length,
        )
    return config.model_copy(update={"forecast": forecast})


def _semantic_problems(config: PipelineConfig) -> list:
    problems = []
    if config.forecast.horizon is None:
        problems.append("forecast.horizon: required for file data (the number of steps to forecast).")
    labels = [config.model.key] + [b.key for b in config.baselines]
    duplicated = sorted({label for label in labels if labels.count(label) > 1})
    if duplicated:
        problems.append(f"baselines: label {duplicated[0]!r} is used twice; give one a `label:`.")
    if "current" in labels:
        problems.append("model.label: 'current' is reserved for the current model in comparisons.")
    gate = config.gate
    if gate.enabled and gate.metric == "owa" and not any(b.name == "naive2" for b in config.baselines):
        problems.append("gate.metric: 'owa' is relative to Naive2, so baselines must include naive2.")
    if gate.enabled and gate.metric != "owa" and gate.metric not in config.backtest.metrics:
        problems.append(
            f"gate.metric: {gate.metric!r} must be one of backtest.metrics {config.backtest.metrics}."
        )
    if gate.enabled and not config.baselines and not gate.compare_current:
        problems.append("gate.enabled: the gate needs baselines or compare_current: true to compare with.")
    evaluation = config.evaluation
    if (
        evaluation is not None
        and evaluation.enabled
        and config.data.kind == "file"
        and not evaluation.test_path
    ):
        problems.append("evaluation.test_path: required to evaluate file data (the actuals that follow it).")
    problems += covariate_problems(config) + interval_problems(config)
    if config.tracking.registry is not None and not config.tracking.enabled:
        problems.append("tracking.register: registering a model needs tracking.enabled: true.")
    if config.tracking.enabled and config.tracking.tracking_uri is not None:
        from tsforecast.tracking.store import check_tracking_uri  # no mlflow import: a string check

        try:
            check_tracking_uri(config.tracking.tracking_uri, "tracking.tracking_uri")
        except InvalidParameterError as error:
            problems.append(str(error))
    return problems


def _parameter_problems(raw: dict, config: PipelineConfig | None) -> list:
    """Each model's parameters checked against its class, also when other fields are invalid.

    Then against the class's own defaults: a parameter's type and range do not depend on the shared ones.
    """
    if config is not None:
        defaults = config.estimator_defaults()
        specs = [("model", config.model.name, config.model.params)]
        specs += [(f"baselines.{i}", b.name, b.params) for i, b in enumerate(config.baselines)]
    else:
        defaults = {}
        items = [("model", raw.get("model"))]
        if isinstance(raw.get("baselines"), list):
            items += [(f"baselines.{i}", spec) for i, spec in enumerate(raw["baselines"])]
        specs = [
            (where, spec["name"], spec.get("params") or {})
            for where, spec in items
            if isinstance(spec, dict)
            and spec.get("name") in MODELS
            and isinstance(spec.get("params") or {}, dict)
        ]
    defaults = {key: value for key, value in defaults.items() if value is not None}
    problems = []
    for where, name, params in specs:
        try:
            build_estimator(name, params, defaults=defaults, where=where)
        except InvalidParameterError as error:
            problems.append(str(error))
    return problems


def _bulleted(path: Path, problems: list) -> str:
    if len(problems) == 1:
        return f"{path}: {problems[0]}"
    return f"{path}: {len(problems)} problems:\n" + "\n".join(f"  {problem}" for problem in problems)


_EXPECTED = {
    "int_type": "int",
    "int_parsing": "int",
    "int_from_float": "int",
    "float_type": "float",
    "float_parsing": "float",
    "bool_type": "bool",
    "bool_parsing": "bool",
    "string_type": "str",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
}


def _describe(item: dict) -> str:
    raw = item["loc"]
    loc = [str(p) for i, p in enumerate(raw) if not (i == 1 and raw[0] == "data" and p in _DATA_TAGS)]
    where = ".".join(loc) or "(top level)"
    kind, got = item["type"], item.get("input")
    if kind == "union_tag_invalid":
        return f"{where}.kind: expected {item['ctx']['expected_tags']}, got {item['ctx']['tag']!r}."
    if kind == "extra_forbidden":
        allowed = _allowed_keys(item["loc"][:-1])
        return f"{where}: unknown key" + (f"; allowed keys: {', '.join(allowed)}." if allowed else ".")
    if kind == "missing":
        return f"{where}: required field is missing."
    if kind in _EXPECTED:
        return f"{where}: expected {_EXPECTED[kind]}, got {got!r}."
    if kind == "value_error":  # from a field validator: its message says what was expected
        return f"{where}: {item['ctx']['error']}"
    if kind == "literal_error":
        return f"{where}: expected {item['ctx']['expected']}, got {got!r}."
    message = item["msg"][0].lower() + item["msg"][1:]
    return f"{where}: {message}, got {got!r}."


def _allowed_keys(loc) -> list:
    """The keys a section accepts, found by walking the schema along the error's location."""
    section: Any = PipelineConfig
    for part in loc:
        if isinstance(part, int):
            continue  # a list item has the list's section type
        if section is _DATA_UNION:
            section = _DATA_TAGS.get(part)
        elif section is not None and part in _keys(section):
            is_data = section is PipelineConfig and part == "data"
            section = _DATA_UNION if is_data else _section_of(_keys(section)[part].annotation)
        else:
            return []
    if section is _DATA_UNION:
        return sorted(set(_keys(FileData)) | set(_keys(M4DataSource)))
    return list(_keys(section)) if section is not None else []


def _keys(section) -> dict:
    """The section's fields by the key a YAML file uses (the alias where there is one)."""
    return {field.alias or name: field for name, field in section.model_fields.items()}


_DATA_UNION = object()
_DATA_TAGS = {"file": FileData, "m4": M4DataSource}


def _section_of(annotation):
    """The BaseModel inside ``X``, ``X | None``, ``Annotated[X, ...]`` or ``list[X]``, if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _section_of(arg)
        if found is not None:
            return found
    return None


__all__ = ["ConfigError", "PipelineConfig", "load_config", "parse_value"]
