"""The schema of a model file: the JSON description and the tensors it must agree with.

A model file (:mod:`tsforecast.nn.persistence`) holds tensors and one JSON document describing them.
:func:`validate` checks the document against :class:`ModelDocument`: JSON types (strict: no string
where a number belongs, no float where an integer belongs), allowed values (scaler kinds, cells,
index kinds, frequencies and time stamps that pandas parses, time zones it knows), and the sizes
that must agree (one index start per series id, the network's input width and outputs against the
feature layout, horizon and quantile levels; the covariate columns, their categories and the
network's covariate inputs). :func:`check_tensors` then checks the tensors against the validated
document: names, dtypes, shapes, and values no fitted model has (NaN or infinite weights and
statistics, scales <= 0, series lengths < 1).

Both run when a file is read, after its checksum, and when one is written, so that a writer's bug
is caught at ``save`` instead of in a file nothing can load. Only fitted-state invariants are
checked: the estimator's parameters are checked by the estimator (:func:`tsforecast.nn.estimators.load`),
since ``set_params`` after ``fit`` may legitimately make them differ from the fitted network.
"""

from __future__ import annotations

import math
import typing
from dataclasses import MISSING, fields
from typing import Annotated, Literal

import pandas as pd
import torch
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from tsforecast.data.covariates import ROLES
from tsforecast.epochs import STOP_REASONS, EpochRecord
from tsforecast.nn.streams import FeatureSpec
from tsforecast.scaling import SCALERS

__all__ = [
    "COVARIATE_TENSORS",
    "FORMATS",
    "TENSORS",
    "ModelDocument",
    "ValidationError",
    "check_tensors",
    "describe",
    "validate",
]

# 2: per-tensor checksums; 3: the network's configuration; 4: whole-file checksum; 5: covariates (a
# model without covariates is still written in format 4, which older tsforecast versions read).
FORMATS = (1, 2, 3, 4, 5)
# The tensors besides the network's weights (``network.<state_dict key>``): name -> dtype.
TENSORS = {
    "panel.values": torch.float64,
    "panel.lengths": torch.int64,
    "scaler.center": torch.float64,
    "scaler.scale": torch.float64,
    "scales.features": torch.float32,
    "scales.target": torch.float32,
}
# The covariates' statistics (models with covariates only, format 5): name -> dtype.
COVARIATE_TENSORS = {"covariates.center": torch.float64, "covariates.scale": torch.float64}
_MAY_HOLD_NAN = ("panel.values",)  # interior NaN kept by missing="keep"

PositiveInt = Annotated[int, Field(gt=0)]
SeriesId = str | int | float | None  # what a pandas label becomes in JSON (None: an unnamed Series)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class NetworkDoc(_Strict):
    """:class:`~tsforecast.nn.modules.NetworkConfig` as saved."""

    cell: Literal["lstm", "gru", "rnn"]
    input_size: PositiveInt
    hidden_size: PositiveInt
    num_layers: PositiveInt
    n_outputs: PositiveInt
    dropout: Annotated[float, Field(ge=0, lt=1)]
    residual: bool
    chrono_span: PositiveInt | None = None
    # The covariate inputs (format 5; absent without covariates).
    embeddings: list[Annotated[list[PositiveInt], Field(min_length=2, max_length=2)]] = []
    future_steps: Annotated[int, Field(ge=0)] = 0
    future_size: Annotated[int, Field(ge=0)] = 0
    future_codes: Annotated[int, Field(ge=0)] = 0


Category = str | bool | int | float  # a category of a categorical covariate, as JSON holds it


class CovariatesDoc(_Strict):
    """:class:`~tsforecast.nn.covariates.CovariateCodec` as saved (its statistics are tensors)."""

    future: list[str]
    past: list[str]
    static: list[str]
    categorical: list[str]
    categories: dict[str, Annotated[list[Category], Field(min_length=1)]]

    @model_validator(mode="after")
    def _roles(self):
        names = self.future + self.past + self.static
        if not names:
            raise ValueError("covariates: no column has a role")
        if len(set(names)) != len(names):
            raise ValueError(f"covariates: a column has two roles or appears twice ({names})")
        if not set(self.categorical) <= set(names):
            raise ValueError(f"covariates.categorical {self.categorical} are not all covariate columns")
        if sorted(self.categories) != sorted(self.categorical):
            raise ValueError(
                f"covariates.categories has the columns {sorted(self.categories)}, the categorical ones "
                f"are {sorted(self.categorical)}"
            )
        for name, levels in self.categories.items():
            if len({(type(v), v) for v in levels}) != len(levels):
                raise ValueError(f"covariates.categories[{name!r}]: a category appears twice")
        return self

    def counts(self) -> dict:
        """Numeric and categorical columns per role, and the categories of each code in row order."""
        numeric = {r: [n for n in getattr(self, r) if n not in self.categorical] for r in ROLES}
        codes = [n for r in ROLES for n in getattr(self, r) if n in self.categorical]
        future_codes = [n for n in self.future if n in self.categorical]
        return {
            "numeric": sum(len(v) for v in numeric.values()),
            "future_numeric": 2 * len(numeric["future"]),  # each value and its change
            "future_codes": len(future_codes),
            "sizes": [len(self.categories[n]) for n in codes],
        }


class DatetimeIndexDoc(_Strict):
    """Time stamps: a pandas frequency, an optional time zone, each series' first (naive) stamp."""

    kind: Literal["datetime"]
    freq: str
    tz: str | None
    starts: list[str]

    @field_validator("freq")
    @classmethod
    def _frequency(cls, value):
        return _offset(value)

    @field_validator("tz")
    @classmethod
    def _known_zone(cls, value):
        if value is not None:
            try:
                pd.Timestamp("2000-01-01").tz_localize(value)
            except Exception as error:  # pytz, zoneinfo and dateutil raise their own types
                raise ValueError(f"unknown time zone ({type(error).__name__})") from None
        return value

    @field_validator("starts")
    @classmethod
    def _stamps(cls, starts):
        for i, start in enumerate(starts):
            try:
                stamp = pd.Timestamp(start)
            except (ValueError, OverflowError) as error:
                raise ValueError(f"starts[{i}] = {start!r} is not a time stamp ({error})") from None
            if stamp is pd.NaT or stamp.tz is not None:
                raise ValueError(f"starts[{i}] = {start!r} is not a time stamp without a time zone")
        return starts


class PeriodIndexDoc(_Strict):
    """Periods: a pandas frequency and each series' first period."""

    kind: Literal["period"]
    freq: str
    starts: list[str]

    @field_validator("freq")
    @classmethod
    def _frequency(cls, value):
        return _offset(value)

    @model_validator(mode="after")
    def _periods(self):
        for i, start in enumerate(self.starts):
            try:
                pd.period_range(start, periods=1, freq=pd.tseries.frequencies.to_offset(self.freq))
            except (ValueError, TypeError, OverflowError) as error:
                raise ValueError(
                    f"index.starts[{i}] = {start!r} is not a {self.freq} period ({error})"
                ) from None
        return self


class IntegerIndexDoc(_Strict):
    """Integer steps: the step and each series' first position."""

    kind: Literal["integer"]
    freq: PositiveInt
    starts: list[int]


class LayoutDoc(_Strict):
    """:class:`~tsforecast.data.Layout` as saved."""

    kind: Literal["series", "wide", "long"]
    columns: Annotated[list[str], Field(min_length=4, max_length=4)]  # id, time, target, prediction
    name: JsonValue
    column_index: list[JsonValue] | None

    @model_validator(mode="after")
    def _wide_has_columns(self):
        if (self.kind == "wide") != (self.column_index is not None):
            raise ValueError(
                f"layout.column_index must be a list for the wide layout and null otherwise; the layout is "
                f"{self.kind!r} and column_index is {'null' if self.column_index is None else 'a list'}"
            )
        return self


def _epoch_row() -> type[BaseModel]:
    """One history row, with :class:`~tsforecast.epochs.EpochRecord`'s fields (one list of them)."""
    hints = typing.get_type_hints(EpochRecord)
    optional = ("val_loss", "skipped_steps", "steps", "targets", "stopped_by")  # absent in older files
    spec = {}
    for field in fields(EpochRecord):
        kind = hints[field.name]
        if kind is float:
            kind = float | None  # JSON writes NaN as null
        if field.name == "stopped_by":
            kind = Literal[tuple(STOP_REASONS)] | None
        required = field.name not in optional and field.default is MISSING
        spec[field.name] = (kind, ... if required else None)
    return create_model("EpochRow", __base__=_Strict, **spec)


EpochRow = _epoch_row()


class ModelDocument(_Strict):
    """The JSON description of a model file (``"class"`` is ``class_name`` here)."""

    model_config = ConfigDict(populate_by_name=True)

    format_version: Literal[FORMATS]
    package_version: Annotated[str, Field(pattern=r"^\d+\.\d+")]
    class_name: Annotated[str, Field(alias="class", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
    params: dict[str, JsonValue]
    network: NetworkDoc | None = None
    spec: Annotated[list[int], Field(min_length=3, max_length=3)]  # season, long season (0: none), horizon
    quantile_levels: Annotated[list[Annotated[float, Field(gt=0, lt=1)]], Field(min_length=1)]
    scaler_kind: Literal[tuple(k for k in SCALERS if k != "auto")]
    horizon: PositiveInt
    ids: Annotated[list[SeriesId], Field(min_length=1)]
    index: Annotated[DatetimeIndexDoc | PeriodIndexDoc | IntegerIndexDoc, Field(discriminator="kind")]
    layout: LayoutDoc
    training_history: list[EpochRow]
    covariates: CovariatesDoc | None = None
    checksums: dict[str, Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]] | None = None

    @model_validator(mode="after")
    def _consistent(self):
        for problem in _inconsistencies(self):
            raise ValueError(problem)
        return self

    @property
    def feature_spec(self) -> FeatureSpec:
        """The feature layout (season, long season, horizon)."""
        return FeatureSpec(*self.spec)


def _inconsistencies(doc: ModelDocument):
    """Yield what disagrees inside a document whose fields each have the right type."""
    fmt = doc.format_version
    if (doc.network is None) != (fmt < 3):
        yield f"network must be {'absent' if fmt < 3 else 'present'} in format {fmt}"
    if (doc.checksums is None) != (fmt == 1 or fmt >= 4):
        yield f"checksums must be {'absent' if fmt == 1 or fmt >= 4 else 'present'} in format {fmt}"
    if doc.covariates is not None and fmt < 5:
        yield f"covariates need format 5 or later (the file says format {fmt})"
    season, long, horizon = doc.spec
    if season < 1 or long < 0 or long == 1:
        yield f"spec = {doc.spec}: the season must be >= 1 and the long season 0 (none) or >= 2"
    if horizon != doc.horizon:
        yield f"spec[2] (the features' horizon) is {horizon} but horizon is {doc.horizon}"
    levels = doc.quantile_levels
    if 0.5 not in levels or any(a >= b for a, b in zip(levels, levels[1:], strict=False)):
        yield f"quantile_levels = {levels}: must increase strictly and hold 0.5"
    if any(isinstance(sid, float) and not math.isfinite(sid) for sid in doc.ids):
        yield "ids: a series id is NaN or infinite"
    elif len(set(doc.ids)) != len(doc.ids):
        yield "ids: the series ids are not unique"
    if len(doc.index.starts) != len(doc.ids):
        yield f"index.starts has {len(doc.index.starts)} entries for {len(doc.ids)} series ids"
    if doc.layout.kind == "series" and len(doc.ids) != 1:
        yield f"layout.kind is 'series' but there are {len(doc.ids)} series ids"
    if doc.layout.column_index is not None and len(doc.layout.column_index) != len(doc.ids):
        yield f"layout.column_index has {len(doc.layout.column_index)} columns for {len(doc.ids)} series ids"
    if doc.network is not None and season >= 1 and long >= 0:
        spec = doc.feature_spec
        yield from _covariate_inputs(doc, spec.n_features)
        if doc.network.n_outputs != doc.horizon * len(levels):
            yield (
                f"network.n_outputs is {doc.network.n_outputs} but horizon x quantile levels is "
                f"{doc.horizon} x {len(levels)}"
            )


def _covariate_inputs(doc: ModelDocument, n_features: int):
    """Yield where the network's inputs disagree with the features and the covariates."""
    network, covariates = doc.network, doc.covariates
    counts = {"numeric": 0, "future_numeric": 0, "future_codes": 0, "sizes": []}
    if covariates is not None:
        counts = covariates.counts()
    if network.input_size != n_features + counts["numeric"]:
        yield (
            f"network.input_size is {network.input_size}; spec {doc.spec} gives {n_features} features and "
            f"the covariates {counts['numeric']} numeric columns"
        )
    if [n for n, _ in network.embeddings] != counts["sizes"]:
        yield (
            f"network.embeddings {network.embeddings} do not match the categorical covariates' numbers of "
            f"categories {counts['sizes']}"
        )
    future = bool(covariates and covariates.future)
    expected = (doc.horizon if future else 0, counts["future_numeric"], counts["future_codes"])
    found = (network.future_steps, network.future_size, network.future_codes)
    if found != expected:
        yield (
            f"network.future_steps, future_size, future_codes are {list(found)}; the horizon and the "
            f"future-known covariates give {list(expected)}"
        )


def validate(document) -> ModelDocument:
    """The document as a :class:`ModelDocument`; raises pydantic's ``ValidationError`` (:func:`describe`)."""
    return ModelDocument.model_validate(document)


def describe(error: ValidationError, limit: int = 3) -> str:
    """The first ``limit`` problems of a ``ValidationError``, each naming its field (``index.starts[0]``)."""
    parts = []
    for item in error.errors(include_url=False)[:limit]:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in item["loc"]).lstrip(".")
        message = item["msg"].removeprefix("Value error, ")
        shown = "" if item["type"] in ("missing", "value_error") else f" (got {_short(item.get('input'))})"
        parts.append(f"{where}: {message}{shown}" if where else message)
    more = len(error.errors()) - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def check_tensors(doc: ModelDocument, tensors: dict) -> list:
    """What is wrong with the tensors given the validated document (empty when nothing is)."""
    expected = {**TENSORS, **(COVARIATE_TENSORS if doc.covariates is not None else {})}
    names = {name for name in tensors if not name.startswith("network.")}
    problems = [f"tensor {name!r} is missing" for name in sorted(set(expected) - names)]
    problems += [f"tensor {name!r} is not part of a model" for name in sorted(names - set(expected))]
    if problems:
        return problems
    n_series = len(doc.ids)
    shapes = {
        "panel.lengths": (n_series,),
        "scaler.center": (n_series,),
        "scaler.scale": (n_series,),
        "scales.features": (doc.feature_spec.n_features,),
        "scales.target": (1,),
    }
    if doc.covariates is not None:
        n_numeric = doc.covariates.counts()["numeric"]
        shapes.update({name: (n_numeric,) for name in COVARIATE_TENSORS})
    for name, dtype in expected.items():
        tensor = tensors[name]
        if tensor.dtype != dtype:
            problems.append(f"tensor {name!r} is {tensor.dtype}, not {dtype}")
        elif name in shapes and tuple(tensor.shape) != shapes[name]:
            problems.append(f"tensor {name!r} has shape {tuple(tensor.shape)}, not {shapes[name]}")
    if problems:
        return problems
    lengths, values = tensors["panel.lengths"], tensors["panel.values"]
    if values.dim() != 1 or (lengths < 1).any() or int(lengths.sum()) != values.numel():
        problems.append(
            f"tensors 'panel.lengths' and 'panel.values' disagree: {values.numel()} values for series "
            f"lengths summing to {int(lengths.sum())} (each must be >= 1)"
        )
    if values.isinf().any():
        problems.append("tensor 'panel.values' holds infinite values")
    for name, tensor in tensors.items():
        if name not in _MAY_HOLD_NAN and tensor.is_floating_point() and not torch.isfinite(tensor).all():
            problems.append(f"tensor {name!r} holds NaN or infinite values")
    for name in ("scaler.scale", "scales.features", "scales.target", "covariates.scale"):
        if name in tensors and (tensors[name] <= 0).any():
            problems.append(f"tensor {name!r} holds values <= 0 (they divide)")
    return problems


def _offset(value: str) -> str:
    try:
        pd.tseries.frequencies.to_offset(value)
    except (ValueError, TypeError) as error:
        raise ValueError(f"{value!r} is not a pandas frequency ({error})") from None
    return value


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
