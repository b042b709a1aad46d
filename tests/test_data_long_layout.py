"""The whole-column validation of clean long frames gives the series-by-series panel, compactly."""

import pickle

import numpy as np
import pandas as pd
import pytest

import tsforecast.data.panel as panel_module
from tsforecast.data import from_panel, to_panel
from tsforecast.data.long_layout import SeriesIndexes


def long_frame(n_series=7, seed=0, time="datetime", ids="str"):
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(n_series):
        n = int(rng.integers(5, 40))
        if time == "datetime":
            ds = pd.date_range("2024-01-01", periods=n + k, freq="h")[k:]
        else:
            ds = np.arange(3 * k, 3 * k + 3 * n, 3)
        sid = {"str": f"s{(k * 5) % n_series}", "int": (k * 5) % n_series}[ids]
        rows.append(pd.DataFrame({"unique_id": sid, "ds": ds, "y": rng.normal(size=n).astype(np.float32)}))
    return pd.concat(rows, ignore_index=True)


def series_by_series(frame, monkeypatch, **kwargs):
    with monkeypatch.context() as patch:
        patch.setattr(panel_module, "compact_long", lambda *args, **kw: None)
        return to_panel(frame, **kwargs)


def assert_same_panel(fast, slow):
    assert isinstance(fast.index, SeriesIndexes)
    assert not isinstance(slow.index, SeriesIndexes)
    assert fast.ids == slow.ids and [type(i) for i in fast.ids] == [type(i) for i in slow.ids]
    assert fast.freq == slow.freq and fast.layout == slow.layout
    for a, b in zip(fast.values, slow.values, strict=True):
        assert a.dtype == b.dtype == np.float64
        np.testing.assert_array_equal(a, b)
    for a, b in zip(fast.index, slow.index, strict=True):
        pd.testing.assert_index_equal(a, b, exact=True)


@pytest.mark.parametrize("time", ["datetime", "integer"])
@pytest.mark.parametrize("ids", ["str", "int"])
def test_a_clean_frame_gives_the_series_by_series_panel(monkeypatch, time, ids):
    frame = long_frame(time=time, ids=ids)
    assert_same_panel(to_panel(frame), series_by_series(frame, monkeypatch))
    shuffled = frame.sample(frac=1.0, random_state=1)  # rows in any order are sorted the same way
    assert_same_panel(to_panel(shuffled), series_by_series(frame, monkeypatch))


def test_categorical_ids_keep_the_sorted_id_order(monkeypatch):
    frame = long_frame()
    shuffled_categories = sorted(frame["unique_id"].unique(), reverse=True) + ["unused"]
    frame["unique_id"] = pd.Categorical(frame["unique_id"], categories=shuffled_categories)
    assert_same_panel(to_panel(frame), series_by_series(frame, monkeypatch))
    frame["unique_id"] = frame["unique_id"].cat.reorder_categories(sorted(shuffled_categories))
    assert_same_panel(to_panel(frame), series_by_series(frame, monkeypatch))
    assert "unused" not in to_panel(frame).ids


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda f: f.assign(y=f["y"].where(f.index != 3)), "missing value"),
        (lambda f: f.assign(y=f["y"].where(f.index != 3, np.inf)), "infinite"),
        (lambda f: pd.concat([f, f.iloc[[2]]]), "duplicated time stamp"),
        (lambda f: f.drop(index=4), "irregular|cannot infer|does not follow|frequency"),
        (lambda f: f.assign(unique_id=f["unique_id"].where(f.index != 5)), "without a series id"),
    ],
)
def test_a_frame_that_fails_a_check_gets_the_series_by_series_message(damage, message):
    with pytest.raises(Exception, match=message) as raised:
        to_panel(damage(long_frame()))
    assert "s" in str(raised.value)


def test_the_panel_does_not_change_when_the_callers_frame_does():
    frame = long_frame()
    frame["y"] = frame["y"].astype(np.float64)  # the column could be shared without a copy
    panel = to_panel(frame)
    before = [v.copy() for v in panel.values], [i.copy() for i in panel.index]
    frame.loc[:, "y"] = 0.0
    frame.loc[:, "ds"] = pd.Timestamp("2000-01-01")
    for a, b in zip(panel.values, before[0], strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(panel.index, before[1], strict=True):
        pd.testing.assert_index_equal(a, b)


def test_series_indexes_behave_as_a_list_and_pickle_as_two_arrays():
    frame = long_frame()
    panel = to_panel(frame)
    indexes = panel.index
    as_list = list(indexes)
    assert len(indexes) == len(as_list) == panel.n_series
    pd.testing.assert_index_equal(indexes[-1], as_list[-1])
    assert [len(i) for i in indexes[1:3]] == [len(i) for i in as_list[1:3]]
    for a, b in zip(indexes, as_list, strict=True):
        assert a.equals(b)
    with pytest.raises(IndexError):
        indexes[len(indexes)]
    restored = pickle.loads(pickle.dumps(indexes))
    assert isinstance(restored, SeriesIndexes) and all(map(pd.Index.equals, restored, as_list))
    # A first stamp and a length per series, not one stamp per step: longer series pickle the same.
    stretched = SeriesIndexes(indexes.firsts, indexes.lengths * 1_000, indexes.step, indexes.dtype, "ds")
    assert len(pickle.dumps(stretched)) == len(pickle.dumps(indexes))
    assert len(stretched[0]) == 1_000 * len(indexes[0])


@pytest.mark.parametrize("time", ["datetime", "integer"])
def test_a_clean_parquet_dataset_gives_the_compact_panel(tmp_path, monkeypatch, time):
    frame = long_frame(time=time).sample(frac=1.0, random_state=2)  # rows in any order
    frame.to_parquet(tmp_path / "panel.parquet", index=False)
    assert_same_panel(to_panel(tmp_path / "panel.parquet"), series_by_series(frame, monkeypatch))


@pytest.mark.parametrize("time", ["datetime", "integer"])
def test_forecast_frames_of_a_compact_panel_are_those_of_the_series_by_series_one(monkeypatch, time):
    frame = long_frame(time=time)
    fast, slow = to_panel(frame), series_by_series(frame, monkeypatch)
    point = np.arange(fast.n_series * 5, dtype=float).reshape(-1, 5)
    extra = {"y_pred_lo_95": point - 1}
    pd.testing.assert_frame_equal(from_panel(fast, point, extra), from_panel(slow, point, extra))


@pytest.mark.parametrize("time", ["datetime", "integer"])
def test_select_tail_head_and_digest_of_a_compact_panel_are_those_of_the_series_by_series_one(
    monkeypatch, time
):
    frame = long_frame(time=time)
    fast, slow = to_panel(frame), series_by_series(frame, monkeypatch)
    assert fast.digest() == slow.digest()
    for cut in (
        lambda p: p.select([4, 0, 2]),
        lambda p: p.tail(6),
        lambda p: p.head(3),
        lambda p: p.tail(100),
    ):
        assert_same_panel(cut(fast), cut(slow))
        assert cut(fast).digest() == cut(slow).digest()
    assert fast.select([0]).ids == [fast.ids[0]] and fast.tail(6).lengths.max() == 6
    assert fast.head(1).digest() != fast.digest()  # other data, another digest
    shifted = fast.replace_values([v + 1.0 for v in fast.values])
    assert shifted.digest() != fast.digest()
