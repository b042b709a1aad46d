"""Parquet datasets as input (issue 18): a file or a hive-partitioned folder, read in record batches,
gives the same panel, fits and forecasts as the pandas frame; errors name the file and the series."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tsforecast import LSTMForecaster
from tsforecast.baselines import SeasonalNaive
from tsforecast.data import read_parquet_panel, to_panel
from tsforecast.data.io import read_frame
from tsforecast.exceptions import InvalidInputError


def _long(n_series=5, seed=0, tz=None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(n_series):
        length = int(rng.integers(60, 120))
        ds = pd.date_range(end="2024-03-01 23:00", periods=length, freq="h", tz=tz)
        y = 30 + k + 5 * np.sin(2 * np.pi * np.arange(length) / 24) + rng.normal(0, 0.3, length)
        frames.append(pd.DataFrame({"unique_id": f"s{k}", "ds": ds, "y": y}))
    return pd.concat(frames, ignore_index=True).sample(frac=1.0, random_state=seed)  # rows shuffled


def _same_panels(a, b) -> None:
    assert a.ids == b.ids and a.freq == b.freq and a.layout.kind == b.layout.kind
    for x, y in zip(a.values, b.values, strict=True):
        np.testing.assert_array_equal(x, y)
    for x, y in zip(a.index, b.index, strict=True):
        pd.testing.assert_index_equal(x, y)


@pytest.mark.parametrize("tz", [None, "Europe/Paris"])
def test_a_parquet_file_reads_as_the_frame_does(tmp_path, tz):
    frame = _long(tz=tz)
    frame.to_parquet(tmp_path / "panel.parquet", index=False)
    _same_panels(to_panel(tmp_path / "panel.parquet"), to_panel(frame))
    _same_panels(to_panel(str(tmp_path / "panel.parquet")), to_panel(frame))


def test_small_record_batches_and_a_partitioned_folder_give_the_same_panel(tmp_path):
    from tsforecast.data.panel import Columns
    from tsforecast.data.parquet import read_parquet_series

    frame = _long(n_series=7)
    frame.to_parquet(tmp_path / "by_series", partition_cols=["unique_id"], index=False)
    _same_panels(to_panel(tmp_path / "by_series"), to_panel(frame))
    frame.to_parquet(tmp_path / "one.parquet", index=False)
    tiny = read_parquet_series(tmp_path / "one.parquet", Columns(), batch_rows=17)  # many batches
    whole = read_parquet_series(tmp_path / "one.parquet", Columns())
    for (a, ia, va), (b, ib, vb) in zip(tiny, whole, strict=True):
        assert a == b
        pd.testing.assert_index_equal(ia, ib)
        np.testing.assert_array_equal(va, vb)


def test_fit_and_predict_take_a_parquet_path(tmp_path):
    frame = _long()
    frame.to_parquet(tmp_path / "panel.parquet", index=False)
    settings = dict(horizon=6, hidden_size=8, max_epochs=2, tbptt_steps=24, random_state=0)
    from_file = LSTMForecaster(**settings).fit(tmp_path / "panel.parquet")
    from_frame = LSTMForecaster(**settings).fit(frame)
    pd.testing.assert_frame_equal(from_file.predict(), from_frame.predict())
    pd.testing.assert_frame_equal(
        from_frame.predict(y=tmp_path / "panel.parquet"), from_frame.predict(y=frame)
    )
    naive = SeasonalNaive(horizon=6, season_length=24).fit(str(tmp_path / "panel.parquet"))
    pd.testing.assert_frame_equal(
        naive.predict(), SeasonalNaive(horizon=6, season_length=24).fit(frame).predict()
    )


def test_bad_parquet_input_is_named(tmp_path):
    frame = _long()
    with pytest.raises(InvalidInputError, match="no such parquet file or folder"):
        to_panel(tmp_path / "absent.parquet")
    frame.to_csv(tmp_path / "panel.csv", index=False)
    with pytest.raises(InvalidInputError, match=r"must be a parquet file .*pd\.read_csv"):
        to_panel(tmp_path / "panel.csv")
    frame.rename(columns={"y": "sales"}).to_parquet(tmp_path / "renamed.parquet", index=False)
    with pytest.raises(InvalidInputError, match=r"lacks column\(s\) \['y'\].*target_col="):
        to_panel(tmp_path / "renamed.parquet")
    holed = frame.copy()
    holed.loc[holed["unique_id"] == "s3", "y"] = holed.loc[holed["unique_id"] == "s3", "y"].where(
        lambda v: v.index % 7 != 0
    )
    holed.to_parquet(tmp_path / "holed.parquet", index=False)
    with pytest.raises(InvalidInputError, match="'s3'.*missing value"):
        to_panel(tmp_path / "holed.parquet")
    frame.assign(unique_id=frame["unique_id"].where(frame.index != frame.index[5])).to_parquet(
        tmp_path / "unlabelled.parquet", index=False
    )
    with pytest.raises(InvalidInputError, match="1 row.* without a series id"):
        to_panel(tmp_path / "unlabelled.parquet")


def test_the_predict_command_reads_a_partitioned_parquet_folder(tmp_path):
    from clitools import cli

    frame = _long()
    frame.to_parquet(tmp_path / "history", partition_cols=["unique_id"], index=False)
    model = LSTMForecaster(horizon=6, hidden_size=8, max_epochs=1, tbptt_steps=24, random_state=0).fit(frame)
    model.save(tmp_path / "model.safetensors")
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    done = cli(
        "predict", "model.safetensors", "--data", "history", "--output", "f.csv", cwd=tmp_path, store=store
    )
    assert done.returncode == 0, done.stderr[-2000:]
    written = pd.read_csv(tmp_path / "f.csv")
    expected = model.predict(y=frame)
    np.testing.assert_allclose(written["y_pred"], expected["y_pred"], rtol=1e-6)
    assert written["unique_id"].tolist() == expected["unique_id"].tolist()


def test_the_fit_command_takes_a_partitioned_parquet_folder_tracked(tmp_path):
    """The same fit from a parquet folder (a path, tracked; forecasts written to parquet block by block)
    and from a CSV file (a frame; forecasts to CSV)."""
    from clitools import cli

    frame = _long()
    frame.to_parquet(tmp_path / "history", partition_cols=["unique_id"], index=False)
    frame.to_csv(tmp_path / "history.csv", index=False)
    settings = ["--model", "lstm", "--horizon", "6", "--param", "hidden_size=8", "--param", "max_epochs=1"]
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    written = {}
    for data, extra, out in (("history", ["--track"], "f.parquet"), ("history.csv", [], "f.csv")):
        done = cli(
            "fit", data, *settings, "--output", f"{data}.safetensors", "--forecast-output", out,
            *extra, cwd=tmp_path, store=store,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        written[data] = read_frame(tmp_path / out)
    pd.testing.assert_frame_equal(written["history"], written["history.csv"], check_dtype=False)
    assert len(written["history"]) == 6 * frame["unique_id"].nunique()


@pytest.mark.parametrize("tz", [None, "Europe/Paris"])  # the compact panel, and the series-by-series one
def test_forecast_blocks_join_into_the_forecast_frame(tz):
    from tsforecast.data.frames import from_panel, long_forecast_blocks
    from tsforecast.data.long_layout import SeriesIndexes

    panel = to_panel(_long(n_series=7, tz=tz))
    assert isinstance(panel.index, SeriesIndexes) == (tz is None)
    point = np.arange(7 * 4, dtype=float).reshape(7, 4)
    extra = {"y_lo_80": point - 1, "y_hi_80": point + 1}
    blocks = list(long_forecast_blocks(panel, point, extra, block=3))
    assert [len(b) for b in blocks] == [12, 12, 4]
    joined = pd.concat(blocks, ignore_index=True)
    pd.testing.assert_frame_equal(joined, from_panel(panel, point, extra))


def test_parquet_frames_are_written_whole_or_not_at_all(tmp_path):
    from tsforecast.data.io import write_parquet_frames

    target = tmp_path / "out.parquet"
    frames = [pd.DataFrame({"unique_id": [f"s{k}"] * 2, "ds": [1, 2], "y_pred": [0.5, k]}) for k in range(3)]
    write_parquet_frames(iter(frames), target)
    pd.testing.assert_frame_equal(pd.read_parquet(target), pd.concat(frames, ignore_index=True))

    def failing():
        yield frames[0]
        raise RuntimeError("the forecast of the second block failed")

    with pytest.raises(RuntimeError, match="second block"):
        write_parquet_frames(failing(), target)
    pd.testing.assert_frame_equal(pd.read_parquet(target), pd.concat(frames, ignore_index=True))
    assert [p.name for p in tmp_path.iterdir()] == ["out.parquet"]  # no temporary file left


def test_predict_writes_a_parquet_history_block_by_block(tmp_path, monkeypatch):
    """``predict --data DATASET --output F.parquet`` with blocks of one series equals ``predict``."""
    from clitools import main_in_process

    import tsforecast.data.frames

    frame = _long()
    frame.to_parquet(tmp_path / "history", partition_cols=["unique_id"], index=False)
    from tsforecast.pipelines.models import save_model

    model = SeasonalNaive(horizon=6, season_length=24).fit(frame)
    save_model(model, tmp_path / "snaive.joblib")
    monkeypatch.setattr(tsforecast.data.frames, "FORECAST_BLOCK_SERIES", 1)
    out = tmp_path / "f.parquet"
    assert main_in_process("predict", tmp_path / "snaive.joblib", "--data", tmp_path / "history",
                           "--level", "80", "-o", out) == 0  # fmt: skip
    import pyarrow.parquet as pq

    assert pq.ParquetFile(out).metadata.num_row_groups == frame["unique_id"].nunique()
    expected = model.predict(y=frame.sort_values(["unique_id", "ds"]), level=80)
    pd.testing.assert_frame_equal(pd.read_parquet(out), expected, check_dtype=False)


def test_backtest_and_tune_take_a_parquet_dataset(tmp_path):
    """The backtest command and ``tune`` read a dataset once, as a path; results equal the frame's."""
    from clitools import main_in_process

    from tsforecast.backtesting import compare
    from tsforecast.baselines import Naive2
    from tsforecast.tuning import tune

    frame = _long(n_series=3)
    frame.to_parquet(tmp_path / "panel.parquet", index=False)
    out = tmp_path / "summary.csv"
    settings = ("--horizon", 6, "--season-length", 24, "--n-windows", 2)
    data = tmp_path / "panel.parquet"
    assert main_in_process("backtest", data, "--models", "snaive,naive2", *settings, "-o", out) == 0
    expected = compare(
        {"snaive": SeasonalNaive(horizon=6, season_length=24), "naive2": Naive2(horizon=6, season_length=24)},
        frame, 6, 2, season_length=24,
    ).summary  # fmt: skip
    written = pd.read_csv(out, index_col=0)
    pd.testing.assert_frame_equal(written[expected.columns], expected, check_names=False, atol=1e-9)

    tiny = dict(horizon=6, hidden_size=4, max_epochs=1, tbptt_steps=24, random_state=0)
    settings = dict(
        n_trials=2, pruner="none", baselines=["naive2"], include_default=False, validation=1, random_state=0
    )
    results = {
        name: tune(LSTMForecaster(**tiny), data, storage=tmp_path / f"{name}.db", **settings)
        for name, data in (("path", tmp_path / "panel.parquet"), ("frame", frame))
    }
    pd.testing.assert_frame_equal(results["path"].leaderboard, results["frame"].leaderboard)
    pd.testing.assert_frame_equal(
        results["path"].best_estimator.predict(), results["frame"].best_estimator.predict()
    )


@pytest.mark.parametrize("tz", [None, "Europe/Paris"])
def test_read_until_leaves_out_the_later_rows_as_the_frame_cut_does(tmp_path, tz):
    frame = _long(tz=tz)
    frame.to_parquet(tmp_path / "p.parquet", index=False)
    until = pd.Timestamp("2024-03-01 05:00")  # naive: read in the column's zone, as a pipeline's as-of
    cut = frame[frame["ds"] <= (until.tz_localize(tz) if tz else until)]
    _same_panels(read_parquet_panel(tmp_path / "p.parquet", until=until), to_panel(cut))
    with pytest.raises(InvalidInputError, match="holds no rows at or before 2020-01-01"):
        read_parquet_panel(tmp_path / "p.parquet", until=pd.Timestamp("2020-01-01"))


def test_read_until_cuts_a_date_column_and_refuses_integer_time(tmp_path):
    days = pd.DataFrame(
        {"unique_id": "a", "ds": pd.date_range("2024-01-01", periods=10).date, "y": np.arange(10.0)}
    )
    days.to_parquet(tmp_path / "days.parquet", index=False)
    panel = read_parquet_panel(tmp_path / "days.parquet", until=pd.Timestamp("2024-01-04 23:59"))
    assert panel.values[0].tolist() == [0.0, 1.0, 2.0, 3.0]
    steps = days.assign(ds=np.arange(10))
    steps.to_parquet(tmp_path / "steps.parquet", index=False)
    with pytest.raises(InvalidInputError, match="holds int64, not time stamps"):
        read_parquet_panel(tmp_path / "steps.parquet", until=pd.Timestamp("2024-01-04"))
