"""How out of date a pipeline's data may be at its as-of date (``data.max_staleness``).

A run for 2030-01-01 on data that end on 2024-05-29 would forecast from 2024-05-30 and publish the
result as the forecasts of 2030: a stale file that nobody notices. So the validate step counts, for
every series, the time stamps that should be in the data by the as-of moment and are not, and stops
the run (:class:`~tsforecast.exceptions.InvalidInputError`, exit 3) when a series lacks too many.

The as-of moment is the end of the ``--as-of`` date (or its time stamp), or now when that is earlier:
no data can hold time stamps from the future, so a run for today only counts those already past. The
limit, ``data.max_staleness``, is

* an int ``k >= 0``: at most ``k`` time stamps of the data's frequency may be missing after a series'
  last one (the default, 1: the as-of date's own step may still be missing; 0: none may be);
* a duration (``"2D"``, ``"36h"``, any :class:`pandas.Timedelta` text): the first missing time stamp
  may be at most that long before the as-of moment (``"1D"`` on daily data is the same as 1);
* None: no check.

Only datetime time stamps are checked: integer steps (M4's) have no date to compare with.

Examples
--------
>>> import pandas as pd
>>> from tsforecast.data import to_panel
>>> y = pd.DataFrame({"unique_id": "a", "ds": pd.date_range("2024-05-20", "2024-05-29"), "y": 1.0})
>>> check_fresh(to_panel(y), 1, pd.Timestamp("2024-05-30 23:59"), "2024-05-30")  # one day missing
>>> check_fresh(to_panel(y), 1, pd.Timestamp("2030-01-01 23:59"), "2030-01-01")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
tsforecast.exceptions.InvalidInputError: the data are out of date: 1 of 1 series end too long ...
"""

from __future__ import annotations

import re
from typing import Annotated

import numpy as np
import pandas as pd
from pydantic import BeforeValidator

from tsforecast.data.labels import series_label
from tsforecast.exceptions import InvalidInputError

_EXPECTED = "expected a number of time stamps (an int >= 0), a duration such as '2D' or '36h', or null"
_LISTED = 10  # stale series named in the message; the rest are counted


def staleness_limit(value):
    """``data.max_staleness`` checked: an int >= 0, a duration string, or None (returned as given).

    Raises
    ------
    ValueError
        Saying what is expected and what was received (pydantic reports it under the field's path).
    """
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
        return value
    if not isinstance(value, str) or not re.search(r"[A-Za-z]", value):  # "2" would be 2 nanoseconds
        raise ValueError(f"{_EXPECTED}; got {value!r}.")
    try:
        duration = pd.Timedelta(value)
    except ValueError as error:
        raise ValueError(f"{_EXPECTED}; got {value!r} ({str(error).rstrip('.')}).") from None
    if pd.isna(duration) or duration < pd.Timedelta(0):
        raise ValueError(f"{_EXPECTED}; got {value!r}, which is not a duration >= 0.")
    return value


MaxStaleness = Annotated[int | str | None, BeforeValidator(staleness_limit)]


def series_ends(panel) -> dict:
    """The earliest and the latest last time stamp across the panel's series (for the manifest)."""
    ends = [index[-1] for index in panel.index]
    first = int(np.argmin(ends))
    return {
        "earliest": str(ends[first]),
        "latest": str(max(ends)),
        "earliest_series": str(panel.ids[first]),
    }


def as_of_moment(last_moment: pd.Timestamp, zone=None, now: pd.Timestamp | None = None) -> tuple:
    """The moment the data are checked against, and whether it is ``now``.

    ``last_moment`` (the end of the as-of date, or its time stamp) or ``now``, whichever is earlier;
    ``zone`` is the time zone of the data's time stamps (None: naive, local time).
    """
    if zone is not None:
        last_moment = (
            last_moment.tz_localize(zone) if last_moment.tzinfo is None else last_moment.tz_convert(zone)
        )
    now = pd.Timestamp.now(tz=zone) if now is None else now
    return (now, True) if now < last_moment else (last_moment, False)


def check_fresh(panel, limit, moment: pd.Timestamp, as_of: str, when: str | None = None) -> None:
    """Raise unless every series of ``panel`` is recent enough at ``moment`` (see the module).

    Parameters
    ----------
    panel : Panel
        Validated series with datetime time stamps and a frequency.
    limit : int, str or None
        ``data.max_staleness``; None checks nothing.
    moment : pd.Timestamp
        The as-of moment (:func:`as_of_moment`), in the data's time zone.
    as_of : str
        The ``--as-of`` label, for the message.
    when : str, optional
        How the message names ``moment`` (default: the moment itself).

    Raises
    ------
    InvalidInputError
        Naming the stale series (the stalest first) with their last time stamps, and how to go on.
    """
    if limit is None or not panel.ids:
        return
    ends = pd.DatetimeIndex([index[-1] for index in panel.index])
    if isinstance(limit, str):
        due = ends + panel.freq + pd.Timedelta(limit)  # the first missing stamp, plus the allowance
        allowed = f"time stamps missing for more than {limit}"
    else:
        due = ends + (limit + 1) * panel.freq  # the first stamp beyond the allowance
        freq = getattr(panel.freq, "freqstr", panel.freq)
        allowed = f"more than {limit} time stamp(s) of frequency {freq} missing"
    stale = np.flatnonzero(np.asarray(due <= moment))
    if not len(stale):
        return
    stale = stale[np.argsort(np.asarray(ends[stale]), kind="stable")]
    listed = ", ".join(f"{series_label(panel.ids[i])} ends at {ends[i]}" for i in stale[:_LISTED])
    if len(stale) > _LISTED:
        listed += f", and {len(stale) - _LISTED} more"
    if len(stale) == len(ends):
        latest = ends.max().date().isoformat()
        remedy = f"run for the date the data are for (--as-of {latest})"
    else:
        remedy = "leave the series that stopped out of the file"
    raise InvalidInputError(
        f"the data are out of date: {len(stale)} of {len(ends)} series end too long before the as-of date "
        f"{as_of} ({allowed} by {when or moment}): {listed}. Forecasts would start after the data's end, "
        f"not after the as-of date. Update the data file, {remedy}, or allow it with data.max_staleness "
        "(a number of time stamps, a duration such as '7D', or null for no check)."
    )


__all__ = ["MaxStaleness", "as_of_moment", "check_fresh", "series_ends", "staleness_limit"]
