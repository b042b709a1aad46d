"""The data layer: every accepted layout round-trips, every bad input is named."""

import numpy as np
import pandas as pd
import pytest

from tsforecast.data import Columns, check_min_length, from_panel, to_long, to_panel
from tsforecast.exceptions import InvalidInputError


def hourly(values, start="2024-01-01", name="load"):
    return pd.Series(values, index=pd.date_range(start, periods=len(values), freq="h"), name=name)


def long_frame():
    return pd.DataFrame(
        {
            "unique_id": ["b"] * 3 + ["a"] * 5,
            "ds": list(pd.date_range("2024-01-03", periods=3, freq="D"))
            + list(pd.date_range("2024-01-01", periods=5, freq="D")),
            "y": [1.0, 2, 3, 10, 11, 12, 13, 14],
        }
    )


class TestLayouts:
    def test_series_in_series_out_with_future_timestamps(self):
        panel = to_panel(hourly([1.0, 2, 3]))
        out = from_panel(panel, np.array([[4.0, 5.0]]))
        assert isinstance(out, pd.Series) and out.name == "load"
        assert list(out.index) == list(pd.date_range("2024-01-01 03:00", periods=2, freq="h"))
        assert out.index.freqstr == "h"

    def test_integer_index_continues_the_integers(self):
        panel = to_panel(pd.Series([1.0, 2, 3], index=[10, 12, 14]))
        out = from_panel(panel, np.zeros((1, 3)))
        assert list(out.index) == [16, 18, 20]

    def test_period_index_continues_periods(self):
        series = pd.Series([1.0, 2, 3], index=pd.period_range("2020-01", periods=3, freq="M"))
        out = from_panel(to_panel(series), np.zeros((1, 2)))
        assert list(out.index.astype(str)) == ["2020-04", "2020-05"]

    def test_wide_trims_ragged_columns_and_returns_wide(self):
        wide = pd.DataFrame({"x": [1.0, 2, 3, np.nan], "z": [np.nan, 5.0, 6, 7]}, index=range(4))
        panel = to_panel(wide)
        assert [len(v) for v in panel.values] == [3, 3]
        out = from_panel(panel, np.array([[1.0, 1.0], [2.0, 2.0]]))
        assert list(out.columns) == ["x", "z"]
        assert list(out.index) == [3, 4, 5]
        assert np.isnan(out.loc[5, "x"]) and np.isnan(out.loc[3, "z"])

    def test_long_sorted_by_series_and_time_and_returned_long(self):
        panel = to_panel(long_frame().sample(frac=1.0, random_state=0))
        assert panel.ids == ["a", "b"]
        np.testing.assert_array_equal(panel.values[0], [10, 11, 12, 13, 14])
        out = from_panel(panel, np.arange(4.0).reshape(2, 2))
        assert list(out.columns) == ["unique_id", "ds", "y_pred"]
        assert list(out["ds"].dt.strftime("%m-%d")) == ["01-06", "01-07", "01-06", "01-07"]

    def test_long_with_custom_column_names(self):
        frame = long_frame().rename(columns={"unique_id": "store", "ds": "day", "y": "sales"})
        panel = to_panel(frame, columns=Columns("store", "day", "sales"))
        out = from_panel(panel, np.zeros((2, 1)))
        assert list(out.columns) == ["store", "day", "y_pred"]

    def test_to_long_round_trip(self):
        frame = long_frame().sort_values(["unique_id", "ds"], ignore_index=True)
        pd.testing.assert_frame_equal(to_long(to_panel(frame)), frame, check_dtype=False)

    def test_input_is_not_mutated(self):
        frame = long_frame()
        before = frame.copy()
        to_panel(frame)
        pd.testing.assert_frame_equal(frame, before)

    def test_interpolate_policy_fills_interior_gaps(self):
        panel = to_panel(pd.Series([1.0, np.nan, 3.0]), missing="interpolate")
        np.testing.assert_array_equal(panel.values[0], [1.0, 2.0, 3.0])

    def test_keep_policy_keeps_nan(self):
        panel = to_panel(pd.Series([1.0, np.nan, 3.0]), missing="keep")
        assert np.isnan(panel.values[0][1])

    def test_numpy_arrays_are_accepted(self):
        assert to_panel(np.arange(5.0)).n_series == 1
        assert to_panel(np.ones((6, 3))).n_series == 3


BAD_INPUTS = {
    "empty": (pd.Series([], dtype=float), "empty"),
    "empty frame": (pd.DataFrame(), "empty"),
    "non-numeric": (
        pd.DataFrame({"unique_id": ["s1", "s1"], "ds": [1, 2], "y": ["3", "x"]}),
        "s1.*non-numeric",
    ),
    "infinite": (
        pd.DataFrame({"unique_id": ["s2"] * 3, "ds": [1, 2, 3], "y": [1, np.inf, 2]}),
        "s2.*infinite",
    ),
    "duplicated": (
        pd.DataFrame({"unique_id": ["s3"] * 3, "ds": [1, 2, 2], "y": [1.0, 2, 3]}),
        "s3.*duplicated",
    ),
    "unsorted": (pd.Series([1.0, 2, 3], index=[3, 1, 2], name="s4"), "s4.*not sorted"),
    "irregular": (
        pd.Series(
            [1.0, 2, 3, 4],
            index=pd.DatetimeIndex(["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-05"]),
            name="s5",
        ),
        "s5",
    ),
    "irregular integers": (pd.Series([1.0, 2, 3], index=[1, 2, 4], name="s6"), "s6.*irregular"),
    "all nan": (pd.DataFrame({"ok": [1.0, 2], "s7": [np.nan, np.nan]}), "s7.*only NaN"),
    "missing columns": (pd.DataFrame({"unique_id": ["a"], "y": [1.0]}), r"lacks column\(s\) \['ds'\]"),
    "interior nan": (pd.Series([1.0, np.nan, 2.0], name="s8"), "s8.*missing value.*interpolate"),
    "complex": (pd.Series([1 + 1j, 2 + 0j], name="s9"), "s9.*complex"),
    "mixed tz": (
        pd.DataFrame(
            {
                "unique_id": ["a", "a", "b", "b"],
                "ds": [
                    pd.Timestamp("2024-01-01", tz="UTC"),
                    pd.Timestamp("2024-01-02", tz="UTC"),
                    pd.Timestamp("2024-01-01"),
                    pd.Timestamp("2024-01-02"),
                ],
                "y": [1.0, 2, 3, 4],
            }
        ),
        "series 'a' has time zone 'UTC' but series 'b' has naive",
    ),
    "different zones": (
        pd.DataFrame(
            {
                "unique_id": ["a", "a", "b", "b"],
                "ds": [
                    pd.Timestamp("2024-01-01", tz="UTC"),
                    pd.Timestamp("2024-01-02", tz="UTC"),
                    pd.Timestamp("2024-01-01", tz="Europe/Paris"),
                    pd.Timestamp("2024-01-02", tz="Europe/Paris"),
                ],
                "y": [1.0, 2, 3, 4],
            }
        ),
        "series 'a' has time zone 'UTC' but series 'b' has time zone 'Europe/Paris'",
    ),
    "zones mixed in one series": (
        pd.DataFrame(
            {
                "unique_id": ["a", "a", "b", "b"],
                "ds": [pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-02")]
                + [pd.Timestamp("2024-01-01", tz="UTC"), pd.Timestamp("2024-01-02")],
                "y": [1.0, 2, 3, 4],
            }
        ),
        "series 'b' mixes naive time stamps.*and time zone 'UTC'",
    ),
    "missing ids": (
        pd.DataFrame({"unique_id": ["a", None, "a", np.nan], "ds": [1, 2, 3, 4], "y": [1.0, 2, 3, 4]}),
        r"2 row\(s\) without a series id.*first at row 1",
    ),
    "duplicated columns": (
        pd.DataFrame(np.ones((3, 3)), columns=["x", "z", "x"]),
        r"duplicated column name\(s\) \['x'\]",
    ),
    "unnamed series": (pd.Series([1.0, 2, 2], index=[1, 2, 2]), "^the unnamed series has duplicated"),
    "integer ids": (
        pd.DataFrame({"unique_id": [3, 3, 3], "ds": [1, 2, 2], "y": [1.0, 2, 3]}),
        "^series 3 has duplicated",
    ),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_names_problem_and_series(case):
    data, pattern = BAD_INPUTS[case]
    with pytest.raises(InvalidInputError, match=pattern):
        to_panel(data)


def test_declared_frequency_contradicted_by_index():
    with pytest.raises(InvalidInputError, match="load.*not regular"):
        to_panel(hourly([1.0, 2, 3]), freq="D")


def test_interior_nan_advice_is_true_for_fit():
    """The message's fix (interpolate inside the series) makes the same data acceptable."""
    y = pd.Series([1.0, np.nan, 3.0, np.nan], name="s8")
    with pytest.raises(InvalidInputError, match=r"y.interpolate\(limit_area='inside'\)"):
        to_panel(y)
    np.testing.assert_array_equal(to_panel(y.interpolate(limit_area="inside")).values[0], [1.0, 2.0, 3.0])


def test_unnamed_series_is_written_as_series_in_long_frames():
    long = to_long(to_panel(pd.Series([1.0, 2.0])))
    assert long["unique_id"].tolist() == ["series", "series"]


def test_error_is_a_value_error():
    with pytest.raises(ValueError):
        to_panel(pd.Series([], dtype=float))


def test_too_short_series_named():
    panel = to_panel(pd.DataFrame({"long": np.arange(10.0), "tiny": [np.nan] * 8 + [1.0, 2.0]}))
    with pytest.raises(InvalidInputError, match="'tiny' has 2 observations but Model needs at least 5"):
        check_min_length(panel, 5, "Model")


@pytest.mark.parametrize(
    ("first", "second", "expected_next"),
    [
        ("2024-01-01", "2024-02-01", "2024-03-01"),  # month starts: not 31 days
        ("2024-01-31", "2024-02-29", "2024-03-31"),  # month ends
        ("2024-01-01", "2024-04-01", "2024-07-01"),  # quarter starts
        ("2024-01-01 00:00", "2024-01-01 06:00", "2024-01-01 12:00"),  # a fixed step
    ],
)
def test_two_time_stamps_imply_their_calendar_frequency(first, second, expected_next):
    panel = to_panel(pd.Series([1.0, 2.0], index=pd.DatetimeIndex([first, second])))
    forecast = from_panel(panel, np.zeros((1, 1)))
    assert forecast.index[0] == pd.Timestamp(expected_next)


def test_two_time_stamps_off_every_calendar_frequency_ask_for_freq():
    y = pd.Series([1.0, 2.0], index=pd.DatetimeIndex(["2024-01-05", "2024-02-04"]), name="y")
    with pytest.raises(InvalidInputError, match=r"cannot infer a frequency.*Pass freq="):
        to_panel(y)
