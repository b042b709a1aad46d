"""Frequency inference and future time indexes.

A series' time axis is one of three kinds, and its "frequency" is stored in the form that kind needs:

============  ==========================  =============================================
index kind    stored frequency            future index
============  ==========================  =============================================
datetime      pandas offset (``"h"``)     ``pd.date_range(last + freq, periods=h)``
period        pandas offset of the period ``pd.period_range(last + 1, periods=h)``
integer       step as ``int`` (usually 1) ``last + step * (1..h)``
============  ==========================  =============================================
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from tsforecast.data.labels import series_label
from tsforecast.exceptions import InvalidInputError


def index_kind(index: pd.Index) -> str:
    """Return ``"datetime"``, ``"period"`` or ``"integer"`` for a time index, else raise."""
    if isinstance(index, pd.DatetimeIndex):
        return "datetime"
    if isinstance(index, pd.PeriodIndex):
        return "period"
    if pd.api.types.is_integer_dtype(index.dtype):
        return "integer"
    raise InvalidInputError(
        f"the time index must be datetimes, periods or integers; got dtype {index.dtype}. "
        "Convert it with pd.to_datetime(...) or reset it to a RangeIndex."
    )


def infer_frequency(index: pd.Index, series_id, freq=None):
    """Return the frequency of one series' index, checking the spacing is regular.

    Parameters
    ----------
    index : pd.Index
        Sorted, duplicate-free time index of one series.
    series_id : hashable
        Named in error messages.
    freq : str, pd.DateOffset or int, optional
        The frequency the caller declared. When given, the index must follow it.
    """
    kind = index_kind(index)
    if kind == "integer":
        return _integer_step(index, series_id, freq)
    if kind == "period":
        period_freq = index.freq
        if freq is not None and pd.tseries.frequencies.to_offset(freq) != period_freq:
            raise InvalidInputError(
                f"{series_label(series_id)}: freq={freq!r} contradicts its PeriodIndex frequency "
                f"{period_freq.freqstr!r}."
            )
        _check_regular(index, pd.period_range(index[0], periods=len(index), freq=period_freq), series_id)
        return period_freq
    offset = _datetime_offset(index, series_id, freq)
    _check_regular(index, pd.date_range(index[0], periods=len(index), freq=offset), series_id)
    return offset


def future_index(last, freq, horizon: int) -> pd.Index:
    """The ``horizon`` time stamps that follow ``last`` at frequency ``freq``."""
    if isinstance(freq, (int, np.integer)):
        return pd.Index(last + freq * np.arange(1, horizon + 1), dtype="int64")
    if isinstance(last, pd.Period):
        return pd.period_range(last + 1, periods=horizon, freq=freq)
    return pd.date_range(last + freq, periods=horizon, freq=freq)


def _integer_step(index: pd.Index, series_id, freq) -> int:
    values = np.asarray(index, dtype=np.int64)
    if freq is not None and not isinstance(freq, (int, np.integer)):
        raise InvalidInputError(
            f"{series_label(series_id)} has an integer index, so freq must be an integer step; got {freq!r}."
        )
    if len(values) < 2:
        return int(freq or 1)
    steps = np.diff(values)
    step = int(freq) if freq is not None else int(steps.min())
    bad = np.flatnonzero(steps != step)
    if step <= 0 or len(bad):
        position = bad[0] if len(bad) else 0
        raise InvalidInputError(
            f"{series_label(series_id)}: irregular integer index, expected a constant step of {step} but "
            f"found a jump from {values[position]} to {values[position + 1]}. Fill the gap with NaN "
            "rows or reindex the series."
        )
    return step


def _datetime_offset(index: pd.DatetimeIndex, series_id, freq):
    if freq is not None:
        return pd.tseries.frequencies.to_offset(freq)
    if index.freq is not None:
        return index.freq
    if len(index) >= 3:
        with warnings.catch_warnings():
            # pandas 3 warns that infer_freq will return an offset; to_offset accepts either.
            warnings.simplefilter("ignore")
            inferred = pd.infer_freq(index)
        if inferred is not None:
            return pd.tseries.frequencies.to_offset(inferred)
    if len(index) == 2:
        offset = _offset_of_two(index[0], index[1])
        if offset is not None:
            return offset
    raise InvalidInputError(
        f"{series_label(series_id)}: cannot infer a frequency from its time stamps "
        f"(first ones: {list(index[:4].astype(str))}); they are irregular or too few. "
        "Pass freq= (for example freq='h') or fill the gaps."
    )


# Calendar frequencies whose steps vary in length: from two time stamps a step of 28 days or more
# is read as one of these when both stamps lie on it, never as a fixed number of days.
_CALENDAR_OFFSETS = ("MS", "ME", "QS", "QE", "YS", "YE")


def _offset_of_two(first: pd.Timestamp, second: pd.Timestamp):
    """The frequency two time stamps imply, or None when they could mean several."""
    step = second - first
    if step < pd.Timedelta(days=28):
        return pd.tseries.frequencies.to_offset(step)  # fixed-length steps: hours, days, weeks
    for name in _CALENDAR_OFFSETS:
        offset = pd.tseries.frequencies.to_offset(name)
        if offset.is_on_offset(first) and first + offset == second:
            return offset
    return None  # 28+ days off every calendar frequency (e.g. 30 days): ask for freq=


def _check_regular(index: pd.Index, expected: pd.Index, series_id) -> None:
    if len(index) == len(expected) and (index == expected).all():
        return
    mismatch = int(np.flatnonzero(index != expected)[0])
    raise InvalidInputError(
        f"{series_label(series_id)}: time stamps are not regular at frequency {expected.freqstr!r}: "
        f"expected {expected[mismatch]} at position {mismatch}, found {index[mismatch]}. "
        "Fill the missing time stamps with NaN rows or give the right freq."
    )


# Seasonal periods by the frequency's base unit: (season, long season) in steps of one unit.
# Multiples of a unit (15min, 30min, 2h) divide them: a day of 15-minute steps is 96 steps.
_SEASONS = {
    "min": (24 * 60, 7 * 24 * 60),  # minutely data: day, week
    "h": (24, 168),  # hourly: day, week
    "D": (7, 365),  # daily: week, year
    "B": (5, 260),  # business days: week, year
    "W": (52, None),  # weekly: year
    "M": (12, None),  # monthly: year
    "Q": (4, None),  # quarterly: year
}
_ALIASES = {
    "T": "min",
    "H": "h",
    "BH": "h",
    "ME": "M",
    "MS": "M",
    "BME": "M",
    "BMS": "M",
    "QE": "Q",
    "QS": "Q",
}


def seasonal_periods(freq) -> tuple[int, int | None]:
    """The season and the long season (in steps) of data at frequency ``freq``; ``(1, None)``: none.

    ======================  ===========  ============
    frequency               season       long season
    ======================  ===========  ============
    15 minutes              96 (day)     672 (week)
    30 minutes              48 (day)     336 (week)
    hourly                  24 (day)     168 (week)
    daily                   7 (week)     365 (year)
    business daily          5 (week)     260 (year)
    weekly                  52 (year)    none
    monthly                 12 (year)    none
    quarterly               4 (year)     none
    yearly, integer index   none         none
    ======================  ===========  ============

    A multiple of a unit divides the periods (``"2h"``: 12 and 84) when it divides them evenly;
    otherwise that period is dropped.

    Examples
    --------
    >>> seasonal_periods("30min"), seasonal_periods("h"), seasonal_periods("MS"), seasonal_periods(1)
    ((48, 336), (24, 168), (12, None), (1, None))
    """
    if freq is None or isinstance(freq, (int, np.integer)):
        return 1, None
    offset = pd.tseries.frequencies.to_offset(freq)
    name = offset.rule_code.split("-")[0]  # "W-SUN" -> "W", "QE-DEC" -> "QE"
    periods, n = _SEASONS.get(_ALIASES.get(name, name), (1, None)), offset.n
    divided = [p / n if p and (p / n).is_integer() and p / n > 1 else None for p in periods]
    return int(divided[0] or 1), (int(divided[1]) if divided[1] else None)


def long_season_for(season_length: int, freq) -> int | None:
    """The long season paired with ``season_length`` at ``freq`` (None: none).

    The frequency's long season when ``season_length`` is the frequency's own season (see
    :func:`seasonal_periods`). Without that agreement (an integer index, or a custom season), a
    season of 24, 48 or 96 steps is read as a day of hourly, half-hourly or 15-minute data and gets a
    week (7 times it), as on M4 Hourly's integer axis; any other season gets none.

    Examples
    --------
    >>> long_season_for(24, "h"), long_season_for(24, 1), long_season_for(12, "MS"), long_season_for(7, 1)
    (168, 168, None, None)
    """
    season, long = seasonal_periods(freq)
    if season_length == season and season > 1:
        return long
    return 7 * season_length if season_length in (24, 48, 96) else None
