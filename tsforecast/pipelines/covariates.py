"""The ``covariates:`` section of a pipeline: the file, the roles of its columns, calendar features.

The section names the columns once for the whole pipeline; every model of it that takes covariates
gets the roles through ``set_params`` (``future_covariates``, ``past_covariates``,
``static_covariates``, ``categorical_covariates``, and ``calendar_features`` / ``holidays`` where the
model offers them), unless its own ``params`` set that parameter. Models that take no covariates get
none, so the baselines compare as without them. A section whose main model cannot take covariates
is a configuration error naming the model.

The file (read in the load step, :func:`tsforecast.pipelines.data.load`) is not cut at the as-of
date: the covariate layer uses each series' history rows and, for the future-known columns, the
``horizon`` rows after its end, and ignores the others (:mod:`tsforecast.data.covariates`). Its
future-known columns must reach ``horizon`` steps past the end of every series after the as-of cut;
the validate step checks that, and every other covariate rule, before any model is fitted.

Example::

    covariates:
      path: data/prices.csv                      # may be the data file itself
      future: [load_forecast, wind_forecast]     # known for the forecast period
      past: [temperature]                        # observed up to the forecast origin
      static: [region]                           # one value per series
      categorical: [region]
      calendar: auto                             # or [hour, dayofweek]
      holidays: DE                               # or [US, CA]
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tsforecast.data.calendar import CALENDAR_FEATURES
from tsforecast.data.covariates import CovariateRoles, align_covariates
from tsforecast.exceptions import InvalidInputError, InvalidParameterError


class CovariateSettings(BaseModel):
    """The ``covariates:`` section (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    path: str | None = None
    future: list[str] = Field(default_factory=list)
    past: list[str] = Field(default_factory=list)
    static: list[str] = Field(default_factory=list)
    categorical: list[str] = Field(default_factory=list)
    calendar: Literal["auto"] | list[str] = Field(default_factory=list)
    holidays: str | list[str] | None = None

    def roles(self) -> CovariateRoles:
        """The roles as the estimators' parameters declare them (checked: one role per column)."""
        holidays = tuple(self.holidays) if isinstance(self.holidays, list) else self.holidays
        return CovariateRoles.from_params(
            self.future, self.past, self.static, self.categorical, self.calendar or None, holidays
        )

    def params(self) -> dict:
        """The estimator parameters the section sets (only those it gives a value)."""
        values = {
            "future_covariates": self.future,
            "past_covariates": self.past,
            "static_covariates": self.static,
            "categorical_covariates": self.categorical,
            "calendar_features": self.calendar,
            "holidays": self.holidays,
        }
        return {key: value for key, value in values.items() if value}


def covariate_problems(config) -> list:
    """The section's configuration problems (each naming its field), for ``load_config``."""
    from tsforecast.base import takes_covariates
    from tsforecast.registry import estimator_class, parameter_names

    section = config.covariates
    if section is None:
        return []
    problems = []
    columns = section.future + section.past + section.static
    if columns and not section.path:
        problems.append(
            f"covariates.path: required for the covariate columns {columns} (a CSV or parquet file; "
            "it may be the data file itself)."
        )
    if section.path and not columns:
        problems.append(
            "covariates.path: name the roles of its columns in covariates.future, covariates.past or "
            "covariates.static."
        )
    try:
        roles = section.roles()
    except InvalidParameterError as error:
        return [*problems, f"covariates: {error}"]
    unknown = [] if section.calendar == "auto" else sorted(set(section.calendar) - set(CALENDAR_FEATURES))
    if unknown:
        problems.append(
            f"covariates.calendar: unknown feature(s) {unknown}; write 'auto' or a list from "
            f"{list(CALENDAR_FEATURES)}."
        )
    if isinstance(section.holidays, list) and len(section.holidays) != 2:
        problems.append(
            f"covariates.holidays: expected a country code (DE) or [country, subdivision] ([US, CA]), "
            f"got {section.holidays!r}."
        )
    model = config.model
    cls = estimator_class(model.name)
    name = cls.__name__
    if roles and not takes_covariates(cls):
        problems.append(
            f"covariates: the model {model.key!r} ({name}) takes no covariates; choose a model that does "
            "(such as autoarima), or remove the covariates section."
        )
    elif roles.has_calendar and "calendar_features" not in parameter_names(model.name):
        problems.append(
            f"covariates.calendar: the model {model.key!r} ({name}) builds no calendar features; give "
            "them as columns of the covariates file instead."
        )
    return problems


def covariates_for(estimator, X):
    """``X`` for a model that declares covariates, None for the others (they never see it)."""
    roles = getattr(estimator, "covariate_roles", None)
    return X if roles is not None and roles() else None


def check_covariates(inputs, estimators: dict, config) -> None:
    """The validate step's check: the covariates fit every model that declares some, horizon included.

    Parameters
    ----------
    inputs : tsforecast.pipelines.data.Inputs
        The validated history (a panel: ``unique_id``, ``ds``, ``y``), its frequency and the covariates file's
        rows (canonical id and time column names; None without a file).
    estimators : dict of str -> BaseForecaster
        The pipeline's models.
    config : PipelineConfig
        Its horizon (the future-known columns must reach that far past each series' end) and the
        covariates file, named in the errors.

    Raises
    ------
    InvalidInputError
        Naming the file, the model, the series, the column and the time stamp (see
        :func:`tsforecast.data.covariates.align_covariates`).
    """
    declaring = {label: e.covariate_roles() for label, e in estimators.items()}
    declaring = {label: roles for label, roles in declaring.items() if roles}
    if not declaring:
        return
    panel = inputs.history
    source = config.covariates.path if config.covariates is not None else None
    for label, roles in declaring.items():
        try:
            align_covariates(inputs.covariates, panel, roles, horizon=config.horizon)
        except InvalidInputError as error:
            where = f"covariates file {source}" if source else "covariates"
            raise InvalidInputError(f"{where} (model {label!r}): {error}") from None


__all__ = ["CovariateSettings", "check_covariates", "covariate_problems", "covariates_for"]
