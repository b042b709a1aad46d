"""Calendar features computed from time stamps: future-known covariates nobody has to hand-code.

The calendar of a time stamp is known for any date in the future, so these columns can be used as
future-known covariates over the whole forecast horizon. Each feature is the *phase* of a stamp in
one natural cycle, a number in [0, 1) measured in local wall-clock time:

=============  =========================  ===================================================
feature        cycle                      phase
=============  =========================  ===================================================
``hour``       the day                    (hour + minute / 60 + second / 3600) / 24
``dayofweek``  the week (Monday at 0)     (day of the week + fraction of the day) / 7
``dayofyear``  the year (January 1 at 0)  (day of the year - 1 + fraction of the day) / days
                                          in that year (365, or 366 in a leap year)
=============  =========================  ===================================================

and becomes the pair ``<name>_sin``, ``<name>_cos`` = sin(2 pi phase), cos(2 pi phase). Why a pair
rather than the number itself: a cycle has no edge. As a plain number 23:00 (23) and 00:00 (0) lie
as far apart as they can be although they are an hour apart, and a model would have to learn the
jump at midnight; on the unit circle they are neighbours, and every hour is as far from the next as
any other. One coordinate alone would not do either: the sine gives 03:00 and 09:00 the same
value, and the cosine tells them apart. Because the phase is continuous (minutes count, and so
does the time of day within a week or a year), 15-minute stamps each get their own values, Sunday
23:00 is next to Monday 00:00, and December 31 is next to January 1 in leap years and others
alike.

One feature per cycle (day, week, year) keeps the set small: a month or week-of-year feature would
be a coarser copy of ``dayofyear``.

Public holidays come from the maintained `holidays <https://holidays.readthedocs.io>`_ package (the
``calendar`` extra: ``pip install 'tsforecast[calendar]'``), imported only when they are asked for.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tsforecast.data.frequency import index_kind
from tsforecast.exceptions import InvalidInputError, InvalidParameterError

# The length of the cycle each feature describes: a feature is constant, so useless, on data whose
# step is a whole cycle or more (see default_calendar_features).
_CYCLES = {
    "hour": pd.Timedelta(days=1),
    "dayofweek": pd.Timedelta(days=7),
    "dayofyear": pd.Timedelta(days=365),  # the shorter year: yearly data has no annual cycle either
}
#: The supported calendar features, in the order their columns appear.
CALENDAR_FEATURES = tuple(_CYCLES)
_SECONDS_PER_DAY = 86_400.0
# A holiday flag describes one calendar day; stamps this far apart stand for several days each.
_HOLIDAY_MAX_STEP = pd.Timedelta(days=2)


def calendar_covariates(index, features=("hour", "dayofweek", "dayofyear"), holidays=None) -> pd.DataFrame:
    """Calendar features of each time stamp, as sine/cosine pairs, and a public-holiday flag.

    Parameters
    ----------
    index : pd.DatetimeIndex or pd.PeriodIndex
        The time stamps, for example a series' index or the future index of a forecast. Naive
        stamps are read as local time; tz-aware ones in their own time zone (the wall clock and the
        date there). A period is described by its start. Order and duplicates do not matter.
    features : str or sequence of str, default ("hour", "dayofweek", "dayofyear")
        Names from :data:`CALENDAR_FEATURES`; an empty sequence or None gives none (only the
        holiday flag, if asked for). :func:`default_calendar_features` picks the ones that vary at
        a frequency.
    holidays : str, (str, str), holidays.HolidayBase or None, default None
        Adds a ``holiday`` column, 1.0 on the public holidays of a country and 0.0 elsewhere, by the
        local calendar date of each stamp. A country code (``"US"``, ``"DE"``), a
        ``(country, subdivision)`` pair (``("DE", "BY")``, ``("US", "CA")``), or a calendar built
        with the ``holidays`` package (``holidays.country_holidays("US", observed=False)``, a
        financial market, other categories). Observed days count as the package lists them (the
        US holiday of Sunday 2021-07-04 is observed on Monday 2021-07-05). Needs daily or finer
        stamps, and the ``holidays`` package (``pip install 'tsforecast[calendar]'``).

    Returns
    -------
    pd.DataFrame
        Indexed by ``index`` itself, float64 columns in a fixed order whatever the order asked
        for: ``<name>_sin``, ``<name>_cos`` for each feature in :data:`CALENDAR_FEATURES` order
        (``hour``, ``dayofweek``, ``dayofyear``), then ``holiday``. No NaN.

    Raises
    ------
    InvalidInputError
        The index has no calendar (integers, or not times at all), or holds NaT.
    InvalidParameterError
        An unknown feature name; an unknown country or subdivision; holidays on stamps two or more
        days apart; the ``holidays`` package missing.

    Examples
    --------
    >>> index = pd.date_range("2024-12-31 21:00", periods=3, freq="3h")
    >>> calendar_covariates(index, features=["hour", "dayofweek"]).round(3)
                         hour_sin  hour_cos  dayofweek_sin  dayofweek_cos
    2024-12-31 21:00:00    -0.707     0.707          0.994         -0.112
    2025-01-01 00:00:00     0.000     1.000          0.975         -0.223
    2025-01-01 03:00:00     0.707     0.707          0.944         -0.330
    >>> days = pd.date_range("2024-07-03", periods=3, freq="D")
    >>> calendar_covariates(days, features=(), holidays="US")
                holiday
    2024-07-03      0.0
    2024-07-04      1.0
    2024-07-05      0.0
    """
    names = _check_features(features)
    index = index if isinstance(index, pd.Index) else pd.Index(index)
    stamps = _local_stamps(index)
    phases = _phases(stamps)
    columns = {}
    for name in names:
        angle = 2.0 * np.pi * phases[name]
        columns[f"{name}_sin"] = np.sin(angle)
        columns[f"{name}_cos"] = np.cos(angle)
    if holidays is not None:
        columns["holiday"] = _holiday_flags(index, stamps, holidays)
    return pd.DataFrame(columns, index=index, dtype=np.float64)


def default_calendar_features(freq) -> tuple[str, ...]:
    """The calendar features that vary at frequency ``freq`` (the ones worth asking for).

    A feature is kept when one step of ``freq`` is shorter than the feature's cycle, since
    otherwise every stamp sits at the same point of that cycle:

    ==================================  ==================================
    frequency                           features
    ==================================  ==================================
    sub-daily (``"15min"``, ``"h"``)    hour, dayofweek, dayofyear
    daily, business daily               dayofweek, dayofyear
    weekly, monthly, quarterly          dayofyear
    yearly, integer steps, None         none
    ==================================  ==================================

    Parameters
    ----------
    freq : str, pd.DateOffset, int or None
        A pandas frequency (as stored by :func:`tsforecast.data.infer_frequency`), or the integer
        step of an integer index, which has no calendar.

    Returns
    -------
    tuple of str
        Names from :data:`CALENDAR_FEATURES`, in that order.

    Examples
    --------
    >>> default_calendar_features("h"), default_calendar_features("B"), default_calendar_features("MS")
    (('hour', 'dayofweek', 'dayofyear'), ('dayofweek', 'dayofyear'), ('dayofyear',))
    >>> default_calendar_features(1), default_calendar_features("YE")
    ((), ())
    """
    if freq is None or isinstance(freq, (int, np.integer)):
        return ()
    try:
        offset = pd.tseries.frequencies.to_offset(freq)
    except (TypeError, ValueError):
        raise InvalidParameterError(
            f"freq must be a pandas frequency such as 'h', 'D' or 'MS', or an integer step; got {freq!r}."
        ) from None
    step = _step_length(offset)
    return tuple(name for name, cycle in _CYCLES.items() if step < cycle)


def _check_features(features) -> list[str]:
    """The requested names in :data:`CALENDAR_FEATURES` order, after checking each is known."""
    if features is None:
        return []
    requested = [features] if isinstance(features, str) else list(features)
    unknown = [name for name in requested if name not in _CYCLES]
    if unknown:
        raise InvalidParameterError(
            f"features: unknown calendar feature(s) {unknown}; the supported ones are "
            f"{list(CALENDAR_FEATURES)}."
        )
    return [name for name in CALENDAR_FEATURES if name in requested]


def _local_stamps(index: pd.Index) -> pd.DatetimeIndex:
    """The stamps of ``index`` as a DatetimeIndex in their own (local) time; periods by their start."""
    kind = index_kind(index)  # raises for anything that is not times or integers
    if kind == "integer":
        raise InvalidInputError(
            "calendar features need time stamps, but the index holds integers, which have no calendar "
            "(no hour, weekday or date). Give the series a DatetimeIndex or PeriodIndex, or leave the "
            "calendar features out."
        )
    stamps = index.to_timestamp(how="start") if kind == "period" else index
    missing = np.flatnonzero(np.asarray(stamps.isna()))
    if len(missing):
        raise InvalidInputError(
            f"calendar features: the index holds NaT at position {int(missing[0])} "
            f"({len(missing)} in all); drop or fill those time stamps."
        )
    return stamps


def _phases(stamps: pd.DatetimeIndex) -> dict[str, np.ndarray]:
    """The phase in [0, 1) of each stamp in each feature's cycle (the table of the module docstring)."""

    def part(values):
        return np.asarray(values, dtype=np.float64)

    # Wall-clock time since local midnight, not elapsed time (which a DST change shifts by an hour).
    seconds = (
        part(stamps.hour) * 3600.0
        + part(stamps.minute) * 60.0
        + part(stamps.second)
        + part(stamps.microsecond) / 1e6
        + part(stamps.nanosecond) / 1e9
    )
    day = seconds / _SECONDS_PER_DAY
    days_in_year = np.where(part(stamps.is_leap_year) > 0, 366.0, 365.0)
    return {
        "hour": day,
        "dayofweek": (part(stamps.day_of_week) + day) / 7.0,
        "dayofyear": (part(stamps.day_of_year) - 1.0 + day) / days_in_year,
    }


def _step_length(offset) -> pd.Timedelta:
    """The length of one step of ``offset``, measured from the first stamp on it in 2024."""
    start = offset.rollforward(pd.Timestamp("2024-01-01"))
    return (start + offset) - start


def _index_step(index: pd.Index, stamps: pd.DatetimeIndex) -> pd.Timedelta | None:
    """The step of the index (its frequency's, else its smallest gap); None when it cannot tell."""
    freq = getattr(index, "freq", None)
    if freq is not None:
        return _step_length(freq)
    distinct = stamps.unique().sort_values()
    if len(distinct) < 2:
        return None
    return pd.Series(distinct).diff().min()


def _holiday_flags(index: pd.Index, stamps: pd.DatetimeIndex, spec) -> np.ndarray:
    """1.0 where a stamp's local date is a holiday of the calendar ``spec`` names, else 0.0."""
    step = _index_step(index, stamps)
    if step is not None and step >= _HOLIDAY_MAX_STEP:
        raise InvalidParameterError(
            f"holidays: the time stamps are {step} apart, but a holiday flag marks single days, and "
            "the date of one stamp says nothing of the holidays in the days it stands for. Use daily "
            "or finer stamps, or count holidays per period, e.g. "
            "calendar_covariates(daily_index, features=(), holidays=...).resample('W').sum()."
        )
    days = pd.Index(stamps.date)  # the local calendar date of each stamp, tz-aware or not
    distinct = days.unique()
    years = range(min(distinct).year, max(distinct).year + 1) if len(distinct) else ()
    calendar = _holiday_calendar(spec, years)
    is_holiday = {day: day in calendar for day in distinct}
    return np.fromiter((is_holiday[day] for day in days), dtype=np.float64, count=len(days))


def _holiday_calendar(spec, years):
    """The ``holidays`` calendar ``spec`` names (a country, a (country, subdivision), a calendar)."""
    try:
        import holidays as holidays_lib
    except ImportError:
        raise InvalidParameterError(
            f"holidays={spec!r} needs the 'holidays' package; install it with "
            "pip install 'tsforecast[calendar]' (or pip install holidays)."
        ) from None
    if isinstance(spec, holidays_lib.HolidayBase):
        return spec
    if isinstance(spec, str):
        country, subdivision = spec, None
    elif isinstance(spec, (tuple, list)) and len(spec) == 2 and all(isinstance(s, str) for s in spec):
        country, subdivision = spec
    else:
        raise InvalidParameterError(
            "holidays must be a country code ('US'), a (country, subdivision) pair (('DE', 'BY')), "
            f"a holidays.HolidayBase calendar or None; got {spec!r}."
        )
    try:
        return holidays_lib.country_holidays(country, subdiv=subdivision, years=years)
    except NotImplementedError:  # how the package says it has no such country or subdivision
        supported = holidays_lib.list_supported_countries()
        if country not in supported:
            raise InvalidParameterError(
                f"holidays: unknown country {country!r}; give an ISO 3166-1 alpha-2 code such as 'US' "
                "or 'DE' (the list: holidays.list_supported_countries(), or "
                "https://holidays.readthedocs.io)."
            ) from None
        raise InvalidParameterError(
            f"holidays: {country!r} has no subdivision {subdivision!r}; its subdivisions are "
            f"{supported[country]} (holidays.list_supported_countries()[{country!r}])."
        ) from None


__all__ = ["CALENDAR_FEATURES", "calendar_covariates", "default_calendar_features"]
