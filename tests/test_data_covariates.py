"""Covariates validated and aligned with a panel (tsforecast/data/covariates.py)."""

import numpy as np
import pandas as pd
import pytest

from tsforecast.data import to_panel
from tsforecast.data.covariates import CovariateRoles, align_covariates
from tsforecast.exceptions import InvalidInputError, InvalidParameterError

DAYS = pd.date_range("2024-01-01", periods=10, freq="D")


def _long_y():
    # "a" covers the 10 days, "b" starts on day 3: series of different lengths.
    a = pd.DataFrame({"unique_id": "a", "ds": DAYS, "y": np.arange(10.0)})
    b = pd.DataFrame({"unique_id": "b", "ds": DAYS[3:], "y": np.arange(7.0)})
    return pd.concat([a, b], ignore_index=True)


def _long_x(extra_days=2):
    days = pd.date_range(DAYS[0], periods=10 + extra_days, freq="D")
    frames = []
    for k, sid in enumerate(["a", "b"]):
        frames.append(
            pd.DataFrame(
                {
                    "unique_id": sid,
                    "ds": days,
                    "price": 10.0 * (k + 1) + np.arange(len(days)),
                    "temp": np.linspace(0, 1, len(days)),
                    "region": "north" if sid == "a" else "south",
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


ROLES = CovariateRoles(future=("price",), past=("temp",), static=("region",), categorical=("region",))


def test_per_series_covariates_follow_each_series_and_its_horizon():
    panel = to_panel(_long_y())
    aligned = align_covariates(_long_x(), panel, ROLES, horizon=2)
    assert [f.shape for f in aligned.future] == [(12, 1), (9, 1)]  # history + 2 steps
    assert [p.shape for p in aligned.past] == [(10, 1), (7, 1)]
    assert aligned.future[1][:, 0].tolist() == [20.0 + d for d in range(3, 12)]  # from b's first day
    assert aligned.categories == {"region": ("north", "south")}
    assert aligned.static.tolist() == [[0.0], [1.0]]


def test_shared_covariates_indexed_by_time_serve_every_series():
    panel = to_panel(_long_y())
    X = pd.DataFrame({"load": np.arange(12.0)}, index=pd.date_range(DAYS[0], periods=12, freq="D"))
    aligned = align_covariates(X, panel, CovariateRoles(future=("load",)), horizon=2)
    assert aligned.future[0][:, 0].tolist() == list(range(12))
    assert aligned.future[1][:, 0].tolist() == list(range(3, 12))


def test_rows_after_the_origin_do_not_reach_past_covariates():
    panel = to_panel(_long_y())
    X = _long_x()
    changed = X.copy()
    changed.loc[changed["ds"] > DAYS[-1], "temp"] = 1e6  # after both series end
    first = align_covariates(X, panel, ROLES, horizon=2)
    second = align_covariates(changed, panel, ROLES, horizon=2)
    for a, b in zip(first.past, second.past, strict=True):
        np.testing.assert_array_equal(a, b)


def test_time_stamps_read_as_text_are_converted():
    panel = to_panel(_long_y())
    X = _long_x()
    X["ds"] = X["ds"].dt.strftime("%Y-%m-%d")
    assert align_covariates(X, panel, ROLES).future[0].shape == (10, 1)


def _nan_price(X):
    return X.assign(price=X["price"].where(X.index != 15))


def _inf_temp(X):
    return X.assign(temp=X["temp"].replace(X["temp"].iloc[2], np.inf))


def _region_changes(X):
    return X.assign(region=np.where(X.index == 5, "south", X["region"]))


def _half_day(X):
    return pd.concat([X, X.iloc[[1]].assign(ds=pd.Timestamp("2024-01-02 12:00"))])


BAD = {  # case: (edit of X, horizon, message)
    "missing-stamp": (lambda X: X.drop(index=4), 0, r"no row for series 'a' at 2024-01-05 00:00:00 \(in its"),
    "missing-horizon": (lambda X: X[X["ds"] <= DAYS[-1]], 1, r"'a' at 2024-01-11 .*in the forecast horizon"),
    "nan": (_nan_price, 0, r"'price' of series 'b' is nan at 2024-01-04"),
    "inf": (_inf_temp, 0, "'temp' of series 'a' is inf"),
    "missing-column": (lambda X: X.drop(columns="temp"), 0, r"X has no column 'temp'"),
    "undeclared": (lambda X: X.assign(extra=1.0), 0, r"X column 'extra' has no role"),
    "static-varies": (_region_changes, 0, r"'region' varies within series 'a'"),
    "missing-series": (lambda X: X[X["unique_id"] == "a"], 0, r"X has no rows for series 'b'"),
    "duplicate": (
        lambda X: pd.concat([X, X.iloc[[0]]]),
        0,
        r"'a': time stamp 2024-01-01 00:00:00 appears more",
    ),
    "extra-stamp": (_half_day, 0, r"not aligned with y for series 'a': time stamp 2024-01-02 12:00:00 lies"),
}


@pytest.mark.parametrize(("edit", "horizon", "match"), BAD.values(), ids=BAD.keys())
def test_bad_covariates_name_the_series_the_column_and_the_time_stamp(edit, horizon, match):
    panel = to_panel(_long_y())
    with pytest.raises(InvalidInputError, match=match):
        align_covariates(edit(_long_x()), panel, ROLES, horizon=horizon)


def test_an_unseen_category_at_predict_is_refused_naming_it():
    panel = to_panel(_long_y())
    fitted = align_covariates(_long_x(), panel, ROLES)
    X = _long_x()
    X.loc[X["unique_id"] == "b", "region"] = "east"
    with pytest.raises(InvalidInputError, match=r"category 'east' \(series 'b' at .*not seen at fit"):
        align_covariates(X, panel, ROLES, categories=fitted.categories)


def test_non_numeric_columns_must_be_declared_categorical():
    panel = to_panel(_long_y())
    roles = CovariateRoles(future=("price",), past=("temp",), static=("region",))
    with pytest.raises(InvalidInputError, match=r"'region' is not numeric .*categorical_covariates"):
        align_covariates(_long_x(), panel, roles)


def test_static_covariates_need_an_id_column():
    panel = to_panel(_long_y())
    X = pd.DataFrame({"size": 1.0}, index=DAYS)
    with pytest.raises(InvalidInputError, match=r"static covariates \['size'\] need X per series"):
        align_covariates(X, panel, CovariateRoles(static=("size",)))


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"future": "price"}, "future_covariates must be a list of column names"),
        ({"future": ["price"], "past": ["price"]}, "'price' is declared in future_covariates and again"),
        ({"future": ["price"], "categorical": ["kind"]}, r"categorical_covariates \['kind'\] are not in"),
    ],
)
def test_roles_are_checked(params, match):
    with pytest.raises(InvalidParameterError, match=match):
        CovariateRoles.from_params(**params)


def test_calendar_features_are_future_known_columns_built_from_the_time_stamps():
    hours = pd.date_range("2024-07-03 00:00", periods=48, freq="h")
    panel = to_panel(pd.Series(np.arange(48.0), index=hours, name="load"))
    roles = CovariateRoles.from_params(calendar=["hour"], holidays="US")
    aligned = align_covariates(None, panel, roles, horizon=24)
    assert aligned.roles.future == ("hour_sin", "hour_cos", "holiday")
    future = aligned.future[0]
    assert future.shape == (72, 3)
    assert future[:24, 2].sum() == 0 and future[24:48, 2].tolist() == [1.0] * 24  # 4 July
    np.testing.assert_allclose(future[48, :2], [0.0, 1.0], atol=1e-12)  # the horizon's first midnight


def test_calendar_auto_follows_the_frequency_and_joins_the_given_covariates():
    panel = to_panel(_long_y())
    roles = CovariateRoles.from_params(future=["price"], past=["temp"], calendar="auto")
    X = _long_x().drop(columns="region")
    aligned = align_covariates(X, panel, roles, horizon=2)
    assert aligned.roles.future == (
        "price",
        "dayofweek_sin",
        "dayofweek_cos",
        "dayofyear_sin",
        "dayofyear_cos",
    )
    assert aligned.future[1].shape == (9, 5)


def test_a_covariate_named_like_a_calendar_feature_is_refused():
    panel = to_panel(_long_y())
    X = _long_x().drop(columns=["region", "temp"]).rename(columns={"price": "dayofweek_sin"})
    roles = CovariateRoles.from_params(future=["dayofweek_sin"], calendar=["dayofweek"])
    with pytest.raises(InvalidInputError, match="'dayofweek_sin' has the name of a calendar feature"):
        align_covariates(X, panel, roles)
