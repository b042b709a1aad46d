"""Calendar features: exact phases, continuity across every wrap, holidays by local date, errors."""

import sys

import holidays as holidays_lib
import numpy as np
import pandas as pd
import pytest

from tsforecast.data.calendar import CALENDAR_FEATURES, calendar_covariates, default_calendar_features
from tsforecast.exceptions import InvalidInputError, InvalidParameterError


def pair(frame, name):
    """The (sin, cos) points of one feature, shape (n, 2)."""
    return frame[[f"{name}_sin", f"{name}_cos"]].to_numpy()


def steps(points):
    """Distances between consecutive points on the unit circle."""
    return np.linalg.norm(np.diff(points, axis=0), axis=1)


def chord(fraction):
    """The distance between two points of the unit circle a ``fraction`` of a turn apart."""
    return 2 * np.sin(np.pi * fraction)


class TestPhases:
    def test_hour_at_midnight_six_noon_and_eighteen(self):
        index = pd.date_range("2024-03-05", periods=4, freq="6h")
        frame = calendar_covariates(index, features="hour")
        expected = [[0, 1], [1, 0], [0, -1], [-1, 0]]
        np.testing.assert_allclose(pair(frame, "hour"), expected, atol=1e-12)

    def test_hour_counts_minutes_so_15_minute_stamps_are_distinct(self):
        index = pd.date_range("2024-03-05", periods=96, freq="15min")
        points = pair(calendar_covariates(index, features=["hour"]), "hour")
        assert len(np.unique(points.round(12), axis=0)) == 96
        np.testing.assert_allclose(points[1], [np.sin(np.pi / 48), np.cos(np.pi / 48)])  # 00:15

    def test_hour_wraps_from_23_to_00_like_any_other_hour(self):
        index = pd.date_range("2024-03-05 20:00", periods=8, freq="h")
        np.testing.assert_allclose(steps(pair(calendar_covariates(index), "hour")), chord(1 / 24))

    def test_dayofweek_monday_is_zero_and_sunday_wraps_to_monday(self):
        monday = pd.Timestamp("2024-03-04")
        assert monday.day_of_week == 0
        daily = calendar_covariates(pd.date_range(monday, periods=15, freq="D"), features="dayofweek")
        np.testing.assert_allclose(pair(daily, "dayofweek")[0], [0, 1], atol=1e-12)
        np.testing.assert_allclose(steps(pair(daily, "dayofweek")), chord(1 / 7))  # Sun -> Mon too
        # Hourly: the phase moves through the week hour by hour, Sunday 23:00 next to Monday 00:00.
        hourly = calendar_covariates(pd.date_range("2024-03-10 20:00", periods=8, freq="h"))
        assert hourly.index[3] == pd.Timestamp("2024-03-10 23:00") and hourly.index[3].day_of_week == 6
        np.testing.assert_allclose(steps(pair(hourly, "dayofweek")), chord(1 / 168))

    def test_dayofyear_dec_31_is_next_to_jan_1_in_leap_years_and_others(self):
        index = pd.date_range("2023-12-30", "2025-01-02", freq="D")
        frame = calendar_covariates(index, features="dayofyear")
        gaps = steps(pair(frame, "dayofyear"))
        assert gaps.min() == pytest.approx(chord(1 / 366)) and gaps.max() == pytest.approx(chord(1 / 365))
        jan_1 = frame.loc["2024-01-01"]
        np.testing.assert_allclose([jan_1.dayofyear_sin, jan_1.dayofyear_cos], [0, 1], atol=1e-12)
        dec_31 = frame.loc["2024-12-31"]  # day 366 of a leap year: one step before the turn
        angle = 2 * np.pi * 365 / 366
        np.testing.assert_allclose(
            [dec_31.dayofyear_sin, dec_31.dayofyear_cos], [np.sin(angle), np.cos(angle)]
        )
        assert not np.allclose(frame.loc["2024-02-29"], frame.loc["2024-03-01"])

    def test_tz_aware_stamps_use_local_wall_clock_across_a_dst_change(self):
        # Berlin skips 02:00 on 2024-03-31: the stamp after 01:00 is 03:00 local, three hours into the day.
        index = pd.date_range("2024-03-31 00:00", periods=3, freq="h", tz="Europe/Berlin")
        assert list(index.hour) == [0, 1, 3]
        angle = 2 * np.pi * 3 / 24
        frame = calendar_covariates(index, features="hour")
        np.testing.assert_allclose(pair(frame, "hour")[2], [np.sin(angle), np.cos(angle)])

    def test_period_index_is_read_by_each_period_start(self):
        periods = pd.period_range("2024-03-05 00:00", periods=48, freq="h")
        from_periods = calendar_covariates(periods)
        from_stamps = calendar_covariates(periods.to_timestamp())
        np.testing.assert_array_equal(from_periods.to_numpy(), from_stamps.to_numpy())
        assert from_periods.index.equals(periods)
        months = calendar_covariates(pd.period_range("2024-01", periods=12, freq="M"), features="dayofyear")
        np.testing.assert_allclose(pair(months, "dayofyear")[0], [0, 1], atol=1e-12)


class TestFrame:
    def test_columns_in_fixed_order_whatever_the_request_order(self):
        index = pd.date_range("2024-01-01", periods=5, freq="h")
        one = calendar_covariates(index, features=["dayofyear", "hour", "dayofweek"], holidays="US")
        other = calendar_covariates(index, features=("hour", "dayofweek", "dayofyear", "hour"), holidays="US")
        expected = [f"{name}_{part}" for name in CALENDAR_FEATURES for part in ("sin", "cos")] + ["holiday"]
        assert list(one.columns) == list(other.columns) == expected
        pd.testing.assert_frame_equal(one, other)

    @pytest.mark.parametrize(
        "index",
        [
            pd.date_range("2024-01-01", periods=500, freq="h", name="ds"),
            pd.date_range("2024-01-01", periods=50, freq="D", tz="America/New_York"),
            pd.period_range("2020Q1", periods=9, freq="Q"),
            pd.DatetimeIndex(["2024-05-01 10:00", "2024-01-01", "2024-05-01 10:00"]),  # unsorted, repeated
            pd.DatetimeIndex([]),
        ],
        ids=["hourly-named", "daily-tz", "quarterly-periods", "unsorted-duplicates", "empty"],
    )
    def test_indexed_by_the_input_float64_and_finite(self, index):
        frame = calendar_covariates(index)
        assert frame.index is index or frame.index.equals(index)
        assert frame.index.name == index.name and type(frame.index) is type(index)
        assert all(dtype == np.float64 for dtype in frame.dtypes)
        assert np.isfinite(frame.to_numpy()).all()
        assert frame.shape == (len(index), 6)

    def test_no_features_gives_no_columns(self):
        frame = calendar_covariates(pd.date_range("2024-01-01", periods=3, freq="D"), features=())
        assert frame.shape == (3, 0)


class TestHolidays:
    def test_us_holidays_flag_every_hourly_stamp_of_the_day(self):
        index = pd.date_range("2024-07-03", "2024-12-26 23:00", freq="h")
        flag = calendar_covariates(index, features=(), holidays="US")["holiday"]
        assert set(flag.unique()) == {0.0, 1.0}
        for day in ("2024-07-04", "2024-12-25"):
            assert (flag.loc[day] == 1.0).all() and len(flag.loc[day]) == 24
        assert (flag.loc["2024-07-05"] == 0.0).all() and (flag.loc["2024-07-03"] == 0.0).all()
        assert flag.sum() == 24 * 6  # July 4, Labor, Columbus, Veterans, Thanksgiving, Christmas

    def test_tz_aware_stamps_are_flagged_by_their_own_local_date(self):
        new_york = pd.date_range("2024-07-04", periods=24, freq="h", tz="America/New_York")
        assert (calendar_covariates(new_york, features=(), holidays="US")["holiday"] == 1.0).all()
        # The same instants in UTC: 00:00-03:00 UTC on July 4 are still July 3 in New York, but the
        # flag follows the index's own dates, so those four stamps are July 4 (UTC) and flagged,
        # and the last four (July 5 UTC) are not.
        utc = new_york.tz_convert("UTC")
        flag = calendar_covariates(utc, features=(), holidays="US")["holiday"].to_numpy()
        np.testing.assert_array_equal(flag, [1.0] * 20 + [0.0] * 4)

    def test_a_subdivision_adds_its_own_holidays(self):
        index = pd.date_range("2024-01-05", periods=3, freq="D")  # 2024-01-06: Epiphany in Bavaria
        bavaria = calendar_covariates(index, features=(), holidays=("DE", "BY"))["holiday"]
        germany = calendar_covariates(index, features=(), holidays="DE")["holiday"]
        assert list(bavaria) == [0.0, 1.0, 0.0] and list(germany) == [0.0, 0.0, 0.0]

    def test_a_holidays_calendar_is_used_as_given(self):
        index = pd.date_range("2021-07-03", periods=3, freq="D")  # July 4 2021 was a Sunday
        observed = calendar_covariates(index, features=(), holidays="US")["holiday"]
        strict = calendar_covariates(
            index, features=(), holidays=holidays_lib.country_holidays("US", observed=False)
        )["holiday"]
        assert list(observed) == [0.0, 1.0, 1.0] and list(strict) == [0.0, 1.0, 0.0]

    def test_unknown_country_is_named_with_where_to_look(self):
        index = pd.date_range("2024-01-01", periods=3, freq="D")
        with pytest.raises(InvalidParameterError, match=r"unknown country 'XX'.*list_supported_countries"):
            calendar_covariates(index, holidays="XX")

    def test_unknown_subdivision_lists_the_countrys_subdivisions(self):
        index = pd.date_range("2024-01-01", periods=3, freq="D")
        with pytest.raises(InvalidParameterError, match=r"'DE' has no subdivision 'ZZ'.*'BY'"):
            calendar_covariates(index, holidays=("DE", "ZZ"))

    @pytest.mark.parametrize("spec", [5, ("US",), ("US", "CA", "x"), ["US", 1]])
    def test_a_spec_of_the_wrong_shape_is_refused(self, spec):
        with pytest.raises(InvalidParameterError, match="country code"):
            calendar_covariates(pd.date_range("2024-01-01", periods=3, freq="D"), holidays=spec)

    @pytest.mark.parametrize("freq", ["W", "MS", "QE"])
    def test_weekly_or_coarser_stamps_are_refused(self, freq):
        index = pd.date_range("2024-01-01", periods=6, freq=freq)
        with pytest.raises(InvalidParameterError, match="marks single days.*resample"):
            calendar_covariates(index, holidays="US")
        unset = pd.DatetimeIndex(list(index))  # no freq attribute: the gaps tell
        with pytest.raises(InvalidParameterError, match="marks single days"):
            calendar_covariates(unset, holidays="US")

    def test_business_days_are_fine(self):
        index = pd.date_range("2024-07-01", periods=5, freq="B")
        assert list(calendar_covariates(index, features=(), holidays="US")["holiday"]) == [0, 0, 0, 1, 0]

    def test_missing_package_names_the_extra(self, monkeypatch):
        monkeypatch.setitem(sys.modules, "holidays", None)  # import holidays now raises ImportError
        with pytest.raises(InvalidParameterError, match=r"tsforecast\[calendar\]"):
            calendar_covariates(pd.date_range("2024-01-01", periods=3, freq="D"), holidays="US")


class TestErrors:
    def test_unknown_feature_lists_the_supported_ones(self):
        index = pd.date_range("2024-01-01", periods=3, freq="D")
        with pytest.raises(InvalidParameterError, match=r"\['month'\].*'hour', 'dayofweek', 'dayofyear'"):
            calendar_covariates(index, features=["hour", "month"])

    def test_integer_index_has_no_calendar(self):
        with pytest.raises(InvalidInputError, match="integers, which have no calendar"):
            calendar_covariates(pd.RangeIndex(10))

    def test_non_time_index_is_refused(self):
        with pytest.raises(InvalidInputError, match="datetimes, periods or integers"):
            calendar_covariates(pd.Index(["a", "b"]))

    def test_nat_is_refused_with_its_position(self):
        with pytest.raises(InvalidInputError, match="NaT at position 1"):
            calendar_covariates(pd.DatetimeIndex(["2024-01-01", None, "2024-01-03"]))


class TestDefaultFeatures:
    @pytest.mark.parametrize(
        ("freq", "expected"),
        [
            ("15min", ("hour", "dayofweek", "dayofyear")),
            ("h", ("hour", "dayofweek", "dayofyear")),
            ("bh", ("hour", "dayofweek", "dayofyear")),
            ("D", ("dayofweek", "dayofyear")),
            ("B", ("dayofweek", "dayofyear")),
            ("24h", ("dayofweek", "dayofyear")),
            ("W-SUN", ("dayofyear",)),
            ("7D", ("dayofyear",)),
            ("MS", ("dayofyear",)),
            ("ME", ("dayofyear",)),
            ("QE", ("dayofyear",)),
            ("YE", ()),
            (pd.offsets.Hour(2), ("hour", "dayofweek", "dayofyear")),
            (1, ()),
            (None, ()),
        ],
    )
    def test_per_frequency(self, freq, expected):
        assert default_calendar_features(freq) == expected

    @pytest.mark.parametrize("freq", ["30min", "h", "D", "B", "W", "7D", "MS", "QS"])
    def test_the_defaults_vary(self, freq):
        frame = calendar_covariates(pd.date_range("2021-01-01", periods=800, freq=freq))
        for name in default_calendar_features(freq):
            assert np.ptp(pair(frame, name), axis=0).max() > 0.1, name

    @pytest.mark.parametrize("freq", ["D", "24h", "W", "7D"])
    def test_features_left_out_at_a_whole_cycle_per_step_are_constant(self, freq):
        # (The weekday of a month's or a year's first day varies too, but only as noise.)
        frame = calendar_covariates(pd.date_range("2021-01-01", periods=800, freq=freq))
        left_out = [name for name in CALENDAR_FEATURES if name not in default_calendar_features(freq)]
        assert left_out
        for name in left_out:
            assert np.ptp(pair(frame, name), axis=0).max() < 1e-12, name

    def test_yearly_stamps_sit_at_one_point_of_the_year(self):
        frame = calendar_covariates(pd.date_range("2021-01-01", periods=10, freq="YS"), features="dayofyear")
        np.testing.assert_allclose(pair(frame, "dayofyear"), [[0, 1]] * 10, atol=1e-12)

    def test_a_bad_frequency_is_named(self):
        with pytest.raises(InvalidParameterError, match="'fortnightly'"):
            default_calendar_features("fortnightly")
