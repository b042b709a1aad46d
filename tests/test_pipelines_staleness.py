"""How stale the data may be (:mod:`tsforecast.pipelines.staleness`): ``check_fresh`` counts the
missing time stamps (or a duration) up to the as-of moment and names the series that end too early;
``data.max_staleness`` is checked with the pipeline schema.

Issue 15's cases through ``tsforecast run`` (a future ``--as-of`` exit 3, ``data.max_staleness``
allowing it, the manifest's last time stamps) are in ``test_faults.py``.
"""

from __future__ import annotations

import pandas as pd
import pytest
from faulttools import DAILY_PIPELINE

from tsforecast.data import to_panel
from tsforecast.exceptions import InvalidInputError
from tsforecast.pipelines import ConfigError, load_config
from tsforecast.pipelines.staleness import as_of_moment, check_fresh


@pytest.fixture
def workdir(tmp_path):
    (tmp_path / "pipeline.yaml").write_text(DAILY_PIPELINE)
    return tmp_path


def daily_panel(ends: dict, freq: str = "D", tz=None):
    frames = [
        pd.DataFrame({"unique_id": sid, "ds": pd.date_range(end=end, periods=20, freq=freq, tz=tz), "y": 1.0})
        for sid, end in ends.items()
    ]
    return to_panel(pd.concat(frames, ignore_index=True))


@pytest.mark.parametrize(
    ("limit", "stale"),
    [(0, ["b", "a"]), (1, ["b"]), (2, ["b"]), (3, []), ("1D", ["b"]), ("2D", ["b"]), ("3D", []), (None, [])],
)
def test_staleness_counts_missing_time_stamps_or_a_duration(limit, stale):
    panel = daily_panel({"a": "2024-05-29", "b": "2024-05-27", "c": "2024-05-30"})
    moment = pd.Timestamp("2024-05-30 23:59:59.999999999")  # the end of --as-of 2024-05-30
    if not stale:
        check_fresh(panel, limit, moment, "2024-05-30")
        return
    with pytest.raises(InvalidInputError, match=f"{len(stale)} of 3 series") as error:
        check_fresh(panel, limit, moment, "2024-05-30")
    named = [s for s in "abc" if f"series '{s}' ends at" in str(error.value)]
    assert sorted(named) == sorted(stale)


def test_staleness_of_hourly_zoned_data_counts_only_the_past_and_summarises_thousands():
    zone = "Europe/Paris"
    panel = daily_panel({"a": "2024-05-30 01:00"}, freq="h", tz=zone)
    end_of_day = pd.Timestamp("2024-05-30 23:59:59.999999999")
    now = pd.Timestamp("2024-05-30 02:30", tz=zone)  # a run for today, at 02:30: only 02:00 is due
    moment, is_now = as_of_moment(end_of_day, zone, now=now)
    assert is_now and moment == now
    check_fresh(panel, 1, moment, "2024-05-30")
    moment, is_now = as_of_moment(end_of_day, zone, now=pd.Timestamp("2024-06-02", tz=zone))
    assert not is_now and moment == end_of_day.tz_localize(zone)
    with pytest.raises(InvalidInputError, match="ends at 2024-05-30 01:00:00\\+02:00"):
        check_fresh(panel, 1, moment, "2024-05-30")

    many = daily_panel({f"s{i}": "2024-05-01" for i in range(1200)})
    with pytest.raises(InvalidInputError, match="1200 of 1200 series") as error:
        check_fresh(many, 1, moment.tz_localize(None), "2024-05-30")
    assert "and 1190 more" in str(error.value) and len(str(error.value)) < 1200


def test_max_staleness_is_checked_with_the_schema(workdir):
    for bad in ("-1", "1.5", "true", "abc", "1M", "'2'", "[1]"):  # '2': 2 ns, surely not meant
        with pytest.raises(ConfigError, match=r"data\.max_staleness: expected a number of time stamps"):
            load_config(workdir / "pipeline.yaml", [f"data.max_staleness={bad}"])
    assert load_config(workdir / "pipeline.yaml").data.max_staleness == 1  # the default
    for good, parsed in (("0", 0), ("7", 7), ("36h", "36h"), ("2D", "2D"), ("null", None)):
        config = load_config(workdir / "pipeline.yaml", [f"data.max_staleness={good}"])
        assert config.data.max_staleness == parsed
