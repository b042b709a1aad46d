"""Covariates: validated, and aligned with the time stamps of a :class:`~tsforecast.data.Panel`.

A covariate is a column of ``X`` with one of three roles, declared by the estimator's parameters:

* **future-known** (``future_covariates``): known for the forecast period too (a published load
  forecast, a planned price, the calendar). ``fit`` needs a value at every time stamp of each
  series' history; ``predict`` also at each of the ``horizon`` steps after it.
* **past-observed** (``past_covariates``): observed only up to the forecast origin (yesterday's
  temperature, another market's price). Needed at every history time stamp; rows after a series'
  last time stamp are ignored, so they cannot leak into its forecast.
* **static** (``static_covariates``): one value per series (a store's region, a zone's size).

``X`` comes in one of two shapes, whatever the layout of ``y``:

* **per series**: a long frame with the id and time columns of ``y`` (``unique_id``, ``ds``) and
  one column per covariate;
* **shared**: a frame indexed by time (or with the time column and no id column): every series
  gets the same values (a market-wide driver, calendar features). Static covariates need the id.

Rows outside a series' span (before its first time stamp, or after its last + ``horizon``) are
ignored, so one covariate file can serve every as-of date. Columns of ``X`` that are neither the id
nor the time column must all have a role: an undeclared column is an error, never silently unused.
Columns declared ``categorical_covariates`` hold categories (any hashable values), coded as
integers in the order of the categories seen at ``fit``; a category never seen at ``fit`` is an
error at ``predict``. Every other covariate must be numeric and finite: NaN or inf is an error
naming the series, the column and the time stamp (fill or drop them; no policy fills silently).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from tsforecast.data.frequency import future_index
from tsforecast.data.labels import series_label
from tsforecast.data.panel import Columns, Panel
from tsforecast.exceptions import InvalidInputError, InvalidParameterError

ROLES = ("future", "past", "static")


@dataclass(frozen=True)
class CovariateRoles:
    """The covariate columns of each role, as an estimator's parameters declare them.

    Attributes
    ----------
    future, past, static : tuple of str
        Column names of the future-known, past-observed and static covariates.
    categorical : tuple of str
        Those of the columns above whose values are categories.
    calendar : tuple of str or "auto"
        Calendar features built from the time stamps as future-known covariates
        (:func:`tsforecast.data.calendar.calendar_covariates`; "auto": those that vary at the data's
        frequency, :func:`~tsforecast.data.calendar.default_calendar_features`).
    holidays : str, (str, str) or None
        A country (and subdivision) whose public holidays become a future-known ``holiday`` column.
    """

    future: tuple = ()
    past: tuple = ()
    static: tuple = ()
    categorical: tuple = ()
    calendar: tuple | str = ()
    holidays: object = None

    @classmethod
    def from_params(
        cls, future=None, past=None, static=None, categorical=None, calendar=None, holidays=None
    ) -> CovariateRoles:
        """Roles from the estimator's ``*_covariates`` parameters, checked.

        Raises
        ------
        InvalidParameterError
            A name is not a string, appears twice or in two roles, or a categorical column has no role.

        Examples
        --------
        >>> roles = CovariateRoles.from_params(future=["price"], static=["region"], categorical=["region"])
        >>> roles.names, roles.categorical
        (('price', 'region'), ('region',))
        """
        given = {"future_covariates": future, "past_covariates": past, "static_covariates": static}
        given["categorical_covariates"] = categorical
        names = {}
        for parameter, value in given.items():
            if value is None:
                names[parameter] = ()
                continue
            if isinstance(value, str) or not all(isinstance(v, str) for v in value):
                raise InvalidParameterError(
                    f"{parameter} must be a list of column names (str); got {value!r}."
                )
            names[parameter] = tuple(value)
        seen = {}
        for parameter in ("future_covariates", "past_covariates", "static_covariates"):
            for name in names[parameter]:
                if name in seen:
                    raise InvalidParameterError(
                        f"covariate {name!r} is declared in {seen[name]} and again in {parameter}; "
                        "give each column one role."
                    )
                seen[name] = parameter
        unknown = [name for name in names["categorical_covariates"] if name not in seen]
        if unknown:
            raise InvalidParameterError(
                f"categorical_covariates {unknown} are not in future_covariates, past_covariates or "
                "static_covariates; declare their role too."
            )
        if calendar is None:
            calendar = ()
        elif calendar != "auto":
            if isinstance(calendar, str) or not all(isinstance(v, str) for v in calendar):
                raise InvalidParameterError(
                    f"calendar_features must be 'auto' or a list of feature names; got {calendar!r}."
                )
            calendar = tuple(calendar)
        return cls(
            names["future_covariates"],
            names["past_covariates"],
            names["static_covariates"],
            names["categorical_covariates"],
            calendar,
            holidays,
        )

    @property
    def names(self) -> tuple:
        """Every covariate column, future first, then past, then static."""
        return self.future + self.past + self.static

    @property
    def has_calendar(self) -> bool:
        """Whether calendar features or holidays are built from the time stamps."""
        return bool(self.calendar) or self.holidays is not None

    def __bool__(self) -> bool:
        return bool(self.names) or self.has_calendar


@dataclass(frozen=True)
class Covariates:
    """Covariates aligned with the series of one panel.

    Attributes
    ----------
    roles : CovariateRoles
        The columns of each role; ``roles.future`` ends with the calendar columns built for this
        panel (``hour_sin``, ..., ``holiday``), so it names every column of ``future``.
    future : list of np.ndarray of shape (n_i + horizon, n_future)
        Per series, the future-known covariates at its history time stamps, then at the ``horizon``
        steps after them.
    past : list of np.ndarray of shape (n_i, n_past)
        Per series, the past-observed covariates at its history time stamps.
    static : np.ndarray of shape (n_series, n_static)
        One row per series.
    categories : dict of str -> tuple
        The categories of each categorical column, in code order (code ``k`` is ``categories[k]``).
    horizon : int
        The steps of future-known covariates after each history.
    """

    roles: CovariateRoles
    future: list
    past: list
    static: np.ndarray
    categories: dict = field(default_factory=dict)
    horizon: int = 0


def align_covariates(
    X,
    panel: Panel,
    roles: CovariateRoles,
    *,
    horizon: int = 0,
    categories: dict | None = None,
    columns: Columns | None = None,
) -> Covariates:
    """Validate ``X`` against ``panel`` and lay it out per series (see the module docstring).

    Parameters
    ----------
    X : pd.DataFrame
        Per-series (id and time columns) or shared (indexed by time, or a time column) covariates.
    panel : Panel
        The history the covariates belong to.
    roles : CovariateRoles
        The covariate columns of each role.
    horizon : int
        Steps after each history for which future-known covariates are required (0 in ``fit``).
    categories : dict, optional
        The categories seen at ``fit`` (``Covariates.categories``); None learns them from ``X``.
    columns : Columns, optional
        The id and time column names (default: the panel's).

    Returns
    -------
    Covariates

    Raises
    ------
    InvalidInputError
        Naming the series, the column and the time stamp: a required time stamp without a row, a
        time stamp inside a history that ``y`` does not have, NaN or inf, a static covariate that
        varies within a series, a category not seen at ``fit``, a non-numeric column not declared
        categorical, a declared column missing or an undeclared one present.

    Examples
    --------
    >>> import pandas as pd
    >>> from tsforecast.data import to_panel
    >>> ds = pd.date_range("2024-01-01", periods=4, freq="D")
    >>> panel = to_panel(pd.Series([1.0, 2.0, 3.0], index=ds[:3], name="sales"))
    >>> X = pd.DataFrame({"price": [9.0, 9.5, 9.0, 8.0]}, index=ds)
    >>> aligned = align_covariates(X, panel, CovariateRoles(future=("price",)), horizon=1)
    >>> aligned.future[0].ravel().tolist()
    [9.0, 9.5, 9.0, 8.0]
    """
    columns = columns or panel.layout.columns
    calendar = _calendar_features(roles, panel)
    if X is None and not roles.names:  # calendar features only: nothing to read from X
        return _with_calendar(_empty(panel, roles, horizon), panel, calendar, roles.holidays)
    if X is None:
        raise InvalidInputError(f"the covariates {list(roles.names)} are declared; pass them as X.")
    frame, by_series = _as_frame(X, columns, roles)
    if isinstance(panel.index[0], pd.DatetimeIndex) and not pd.api.types.is_datetime64_any_dtype(
        frame[columns.time_col]
    ):
        try:  # time stamps read from a CSV as text, as y's are converted
            frame[columns.time_col] = pd.to_datetime(frame[columns.time_col])
        except (ValueError, TypeError) as error:
            raise InvalidInputError(
                f"X's time column {columns.time_col!r} holds no time stamps: {error}"
            ) from None
    _check_columns(frame, roles, columns, by_series)
    categories = dict(categories) if categories is not None else _learn_categories(frame, roles)
    coded = _encode(frame, roles, categories, columns, by_series)
    groups = _groups(coded, columns, by_series)
    future, past, static = [], [], []
    for series_id, index in zip(panel.ids, panel.index, strict=True):
        rows = groups.get(series_id) if by_series else groups.get(None)
        if rows is None:
            raise InvalidInputError(
                f"X has no rows for {series_label(series_id)}; give covariates for every series of y."
            )
        label = series_label(series_id)
        needed = index.append(future_index(index[-1], panel.freq, horizon)) if horizon else index
        _check_no_extra_stamps(rows, index, label)
        if roles.future:
            future.append(_values_at(rows, needed, roles.future, label, horizon, index[-1]))
        if roles.past:
            past.append(_values_at(rows, index, roles.past, label, 0, index[-1]))
        if roles.static:
            static.append(_static_values(rows.loc[rows.index.isin(index)], roles.static, label))
    n = panel.n_series
    aligned = Covariates(
        roles,
        future if roles.future else [np.empty((len(v) + horizon, 0)) for v in panel.values],
        past if roles.past else [np.empty((len(v), 0)) for v in panel.values],
        np.asarray(static, dtype=np.float64).reshape(n, len(roles.static)),
        categories,
        horizon,
    )
    return _with_calendar(aligned, panel, calendar, roles.holidays)


def _empty(panel: Panel, roles: CovariateRoles, horizon: int) -> Covariates:
    return Covariates(
        roles,
        [np.empty((len(v) + horizon, 0)) for v in panel.values],
        [np.empty((len(v), 0)) for v in panel.values],
        np.empty((panel.n_series, 0)),
        {},
        horizon,
    )


def _calendar_features(roles: CovariateRoles, panel: Panel) -> tuple:
    if roles.calendar != "auto":
        return tuple(roles.calendar)
    from tsforecast.data.calendar import default_calendar_features

    return tuple(default_calendar_features(panel.freq))


def _with_calendar(aligned: Covariates, panel: Panel, features: tuple, holidays) -> Covariates:
    """``aligned`` with the calendar columns appended to its future-known covariates."""
    if not features and holidays is None:
        return aligned
    from tsforecast.data.calendar import calendar_covariates

    future, names = [], None
    for values, index in zip(aligned.future, panel.index, strict=True):
        extra = len(values) - len(index)
        stamps = index.append(future_index(index[-1], panel.freq, extra)) if extra else index
        table = calendar_covariates(stamps, features, holidays)
        clash = sorted(set(table.columns) & set(aligned.roles.names))
        if clash:
            raise InvalidInputError(
                f"X column {clash[0]!r} has the name of a calendar feature; rename it or drop the "
                "calendar feature."
            )
        names = tuple(table.columns)
        future.append(np.hstack([values, table.to_numpy(dtype=np.float64)]))
    roles = replace(aligned.roles, future=aligned.roles.future + names)
    return replace(aligned, roles=roles, future=future)


def _as_frame(X, columns: Columns, roles: CovariateRoles) -> tuple[pd.DataFrame, bool]:
    """``X`` as a frame with a time column (and an id column when per series)."""
    if isinstance(X, pd.Series):
        X = X.to_frame()
    if not isinstance(X, pd.DataFrame):
        raise InvalidInputError(
            f"X must be a pandas DataFrame of covariates; got {type(X).__name__}. Give a long frame "
            f"({columns.id_col}, {columns.time_col}, covariate columns) or a frame indexed by time."
        )
    by_series = columns.id_col in X.columns
    if columns.time_col in X.columns:
        frame = X.reset_index(drop=True)
    elif by_series:
        raise InvalidInputError(
            f"X has the id column {columns.id_col!r} but no time column {columns.time_col!r}."
        )
    else:
        frame = X.rename_axis(columns.time_col).reset_index()
    if roles.static and not by_series:
        raise InvalidInputError(
            f"static covariates {list(roles.static)} need X per series: a long frame with the id column "
            f"{columns.id_col!r}."
        )
    return frame, by_series


def _check_columns(frame: pd.DataFrame, roles: CovariateRoles, columns: Columns, by_series: bool) -> None:
    keys = {columns.id_col, columns.time_col} if by_series else {columns.time_col}
    present = [c for c in frame.columns if c not in keys]
    missing = [c for c in roles.names if c not in present]
    if missing:
        raise InvalidInputError(
            f"X has no column {missing[0]!r} (declared as a covariate; X has {present}). Give every "
            "declared covariate, at fit and at predict."
        )
    undeclared = [c for c in present if c not in roles.names]
    if undeclared:
        raise InvalidInputError(
            f"X column {undeclared[0]!r} has no role: declare it in future_covariates, past_covariates "
            "or static_covariates, or drop it from X (the columns must be the same at fit and predict)."
        )
    for name in roles.names:
        if name in roles.categorical:
            continue
        values = frame[name]
        if not (pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)):
            raise InvalidInputError(
                f"X column {name!r} is not numeric (dtype {values.dtype}); declare it in "
                "categorical_covariates, or convert it to numbers."
            )


def _learn_categories(frame: pd.DataFrame, roles: CovariateRoles) -> dict:
    found = {}
    for name in roles.categorical:
        values = frame[name].dropna().unique()
        try:
            found[name] = tuple(sorted(values))
        except TypeError:  # mixed types: keep the order of appearance
            found[name] = tuple(values)
    return found


def _encode(frame, roles, categories, columns: Columns, by_series: bool) -> pd.DataFrame:
    """Categorical columns as float codes; an unseen category names where it is."""
    coded = frame.copy()
    for name in roles.categorical:
        levels = categories.get(name, ())
        codes = frame[name].map({level: float(k) for k, level in enumerate(levels)}).to_numpy(np.float64)
        unseen = np.flatnonzero(np.isnan(codes) & frame[name].notna().to_numpy())
        if len(unseen):
            row = frame.iloc[unseen[0]]
            where = f"{series_label(row[columns.id_col])} at " if by_series else ""
            raise InvalidInputError(
                f"X column {name!r} holds the category {row[name]!r} ({where}{row[columns.time_col]}), "
                f"not seen at fit (categories: {list(levels)[:10]}); refit with data that has it."
            )
        coded[name] = codes  # a missing category stays NaN, refused where the column is needed
    return coded


def _groups(frame: pd.DataFrame, columns: Columns, by_series: bool) -> dict:
    """Rows per series id (None: shared), indexed by time stamp, duplicates refused."""
    keyed = frame.groupby(columns.id_col, sort=False) if by_series else [(None, frame)]
    groups = {}
    for series_id, rows in keyed:
        rows = rows.set_index(columns.time_col).sort_index()
        duplicated = rows.index.duplicated()
        if duplicated.any():
            who = f"{series_label(series_id)}: " if by_series else ""
            raise InvalidInputError(
                f"X, {who}time stamp {rows.index[duplicated][0]} appears more than once; keep one row "
                "per time stamp."
            )
        groups[series_id] = rows
    return groups


def _check_no_extra_stamps(rows: pd.DataFrame, index: pd.Index, label: str) -> None:
    inside = rows.index[(rows.index > index[0]) & (rows.index < index[-1])]
    extra = inside[~inside.isin(index)]
    if len(extra):
        raise InvalidInputError(
            f"X is not aligned with y for {label}: time stamp {extra[0]} lies inside its history but is "
            "not one of its time stamps; X must use the time stamps of y."
        )


def _values_at(rows, needed: pd.Index, names, label: str, horizon: int, last) -> np.ndarray:
    """The ``names`` columns at the ``needed`` time stamps, every one present and finite."""
    present = needed.isin(rows.index)
    if not present.all():
        stamp = needed[~present][0]
        when = "in the forecast horizon" if stamp > last else "in its history"
        need = f" and at the {horizon} steps after it" if horizon else ""
        raise InvalidInputError(
            f"X has no row for {label} at {stamp} ({when}); covariates {list(names)} are needed at every "
            f"time stamp of its history{need}."
        )
    values = rows.loc[needed, list(names)].to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        step, column = np.argwhere(bad)[0]
        raise InvalidInputError(
            f"X column {names[column]!r} of {label} is {values[step, column]} at {needed[step]}; "
            "covariates must be finite: fill or drop those rows."
        )
    return values


def _static_values(rows: pd.DataFrame, names, label: str) -> np.ndarray:
    values = rows[list(names)].to_numpy(dtype=np.float64)
    if not len(values):
        raise InvalidInputError(f"X has no row for {label} inside its history, so no static covariates.")
    if not np.isfinite(values).all():
        column = int(np.argwhere(~np.isfinite(values))[0][1])
        raise InvalidInputError(f"static covariate {names[column]!r} of {label} is missing or not finite.")
    varies = np.flatnonzero((values != values[0]).any(axis=0))
    if len(varies):
        column = names[varies[0]]
        changed = rows.index[(rows[column].to_numpy(dtype=np.float64) != values[0, varies[0]])][0]
        raise InvalidInputError(
            f"static covariate {column!r} varies within {label} (from {values[0, varies[0]]:g} at "
            f"{rows.index[0]} to another value at {changed}); a static covariate has one value per series."
        )
    return values[0]


__all__ = ["ROLES", "CovariateRoles", "Covariates", "align_covariates"]
