"""``--level`` of ``tsforecast predict`` and ``backtest``: interval columns in the files, interval metrics.

Two hourly series with a daily season in long and wide files; the baselines run in process
(:func:`main_in_process`), the one tiny LSTM in a subprocess as a user runs it. Every expected value
comes from the library itself (``predict(level=...)``, ``compare(..., level=...)``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.clitools import cli, main_in_process
from tsforecast.backtesting import compare
from tsforecast.baselines import Naive2, SeasonalNaive
from tsforecast.data.io import read_frame
from tsforecast.exceptions import InvalidParameterError
from tsforecast.pipelines.models import load_model

pytestmark = pytest.mark.timeout(120)

HORIZON, SEASON, LENGTH = 6, 24, 120
SNAIVE = ["--model", "snaive", "--horizon", HORIZON, "--season-length", SEASON]
BOUNDS_80_95 = ["y_lo_80", "y_hi_80", "y_lo_95", "y_hi_95"]


def long_frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    t = np.arange(LENGTH)
    ds = pd.date_range("2024-01-01", periods=LENGTH, freq="h")
    frames = [
        pd.DataFrame({"unique_id": sid, "ds": ds, "y": 10 + k + 3 * np.sin(2 * np.pi * t / SEASON)})
        for k, sid in enumerate(("b", "a"))  # not in sorted order: the files keep the series' order
    ]
    frame = pd.concat(frames, ignore_index=True)
    return frame.assign(y=frame["y"] + rng.normal(0, 0.5, len(frame)))


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """The data files and ``snaive.joblib`` (long) and ``wide.joblib`` fitted by the command."""
    folder = tmp_path_factory.mktemp("intervals")
    frame = long_frame()
    frame.to_csv(folder / "long.csv", index=False)
    frame.groupby("unique_id", sort=False).head(LENGTH - 10).to_csv(folder / "history.csv", index=False)
    frame.pivot(index="ds", columns="unique_id", values="y")[["b", "a"]].to_csv(folder / "wide.csv")
    for data, model in (("long.csv", "snaive.joblib"), ("wide.csv", "wide.joblib")):
        assert main_in_process("fit", folder / data, *SNAIVE, "-o", folder / model) == 0
    return folder


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_predict_writes_the_bounds_the_library_gives(work, suffix):
    model = load_model(work / "snaive.joblib")
    out = work / f"bands{suffix}"
    assert main_in_process("predict", work / "snaive.joblib", "--level", "95,80", "-o", out) == 0
    written = read_frame(out)
    assert list(written.columns) == ["unique_id", "ds", "y_pred", *BOUNDS_80_95]
    pd.testing.assert_frame_equal(written, model.predict(level=[80, 95]), check_dtype=False)
    assert (written["y_lo_95"] < written["y_lo_80"]).all() and (written["y_hi_80"] < written["y_hi_95"]).all()

    history = read_frame(work / "history.csv")
    on_history = ("--data", work / "history.csv", "--horizon", 3, "--level", "90")
    assert main_in_process("predict", work / "snaive.joblib", *on_history, "-o", out) == 0
    expected = model.predict(3, y=history, level=90)
    pd.testing.assert_frame_equal(read_frame(out), expected, check_dtype=False)
    assert list(expected.columns)[-2:] == ["y_lo_90", "y_hi_90"]


def test_a_wide_history_gets_its_forecasts_in_the_long_layout(work):
    out = work / "wide_bands.csv"
    assert main_in_process("predict", work / "wide.joblib", "--level", "95", "-o", out) == 0
    written = pd.read_csv(out, parse_dates=["ds"])
    assert list(written.columns) == ["unique_id", "ds", "y_pred", "y_lo_95", "y_hi_95"]
    assert list(written["unique_id"].unique()) == ["b", "a"] and len(written) == 2 * HORIZON
    wide = load_model(work / "wide.joblib").predict(level=95)  # columns (output, series)
    for sid, rows in written.groupby("unique_id", sort=False):
        for column in ("y_pred", "y_lo_95", "y_hi_95"):
            np.testing.assert_allclose(rows[column], wide[(column, sid)], rtol=1e-12)
        np.testing.assert_array_equal(rows["ds"], wide.index)
    assert main_in_process("predict", work / "wide.joblib", "-o", out) == 0  # without --level: wide
    assert out.read_text().startswith("ds,b,a\n")


@pytest.mark.parametrize("command", ["predict", "backtest"])
@pytest.mark.parametrize(
    ("levels", "named"),
    [
        (["0"], "--level 0: '0' is not a level"),
        (["100"], "--level 100: '100' is not a level"),
        (["80,150"], "--level 80,150: '150' is not a level"),
        (["abc"], "--level abc: 'abc' is not a level"),
        (["80,"], "--level 80,: '' is not a level"),
        (["80", "--level", "95"], "--level given 2 times (80, 95); give the levels once, comma-separated"),
    ],
)
def test_a_bad_level_exits_2_before_the_model_or_data_is_read(tmp_path, capsys, command, levels, named):
    # Neither the model file nor the data file exists: reading either first would exit 3.
    out = tmp_path / "out.csv"
    if command == "predict":
        args = ["predict", tmp_path / "absent.joblib", "--data", tmp_path / "absent.csv", "-o", out]
    else:
        args = ["backtest", tmp_path / "absent.csv", "--models", "snaive", "--horizon", 2, "-o", out]
    assert main_in_process(*args, "--level", *levels) == 2
    assert named in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.iterdir())


def test_model_without_intervals_at_the_level_exits_2_with_the_library_message(work):
    """The one LSTM: quantiles 0.1 and 0.9 give the 80% interval and no other."""
    lstm = ["--model", "lstm", "--horizon", HORIZON, "--season-length", SEASON, "-p", "hidden_size=4"]
    lstm += ["-p", "max_epochs=1", "-p", "tbptt_steps=24", "-p", "quantiles=[0.1,0.9]", "-p", "device=cpu"]
    store = f"sqlite:///{(work / 'unused.db').as_posix()}"
    fitted = cli("fit", "long.csv", *lstm, "-o", "lstm.safetensors", cwd=work, store=store)
    assert fitted.returncode == 0, fitted.stderr
    model = load_model(work / "lstm.safetensors")

    assert main_in_process("predict", work / "lstm.safetensors", "--level", "80", "-o", work / "l80.csv") == 0
    expected = model.predict(level=80)
    assert {"y_lo_80", "y_hi_80"} <= set(expected.columns)
    pd.testing.assert_frame_equal(read_frame(work / "l80.csv"), expected, check_dtype=False)

    with pytest.raises(InvalidParameterError) as raised:  # exit 2
        model.predict(level=95)
    (work / "l95.csv").write_text("previous forecasts\n")
    refused = cli("predict", "lstm.safetensors", "--level", "95", "-o", "l95.csv", cwd=work, store=store)
    assert refused.returncode == 2, refused.stderr
    assert str(raised.value) in refused.stderr
    assert (work / "l95.csv").read_text() == "previous forecasts\n"  # left as it was
    assert not [p for p in work.iterdir() if p.name.endswith(".tmp")]


def test_backtest_level_adds_m4_interval_metrics_to_the_table_and_files(work, capsys):
    out, forecasts = work / "comparison.csv", work / "backtest.parquet"
    args = ["--models", "snaive,naive2", "--horizon", HORIZON, "--season-length", SEASON, "--n-windows", 2]
    code = main_in_process(
        "backtest", work / "long.csv", *args, "--level", "95", "-o", out, "--forecasts-output", forecasts
    )
    assert code == 0
    printed = capsys.readouterr().out
    table = pd.read_csv(out, index_col="model")
    models = {"snaive": SeasonalNaive, "naive2": Naive2}
    expected = compare(
        {name: kind(horizon=HORIZON, season_length=SEASON) for name, kind in models.items()},
        read_frame(work / "long.csv"), HORIZON, 2, level=[95.0], season_length=SEASON,
        metrics=["smape", "mase", "mae", "rmse", "msis", "coverage", "acd"],
    )  # fmt: skip
    assert list(table.columns) == ["smape", "mase", "mae", "rmse", "msis_95", "coverage_95", "acd_95", "owa"]
    pd.testing.assert_frame_equal(table, expected.summary, check_names=False, rtol=1e-10)
    assert "msis_95" in printed and "coverage_95" in printed
    written = pd.read_parquet(forecasts)
    assert {"y_lo_95", "y_hi_95"} <= set(written.columns) and len(written) == 2 * 2 * 2 * HORIZON


def test_backtest_metrics_choose_among_the_interval_metrics(work, capsys):
    args = ["--models", "snaive", "--horizon", HORIZON, "--season-length", SEASON, "-o", work / "m.csv"]
    code = main_in_process(
        "backtest", work / "long.csv", *args, "--metrics", "mase,crps,pinball,coverage", "--level", "80,95"
    )
    assert code == 0
    table = pd.read_csv(work / "m.csv", index_col="model")
    pinball = [f"pinball_{c}" for c in BOUNDS_80_95]
    assert list(table.columns) == ["mase", "crps", *pinball, "coverage_80", "coverage_95"]
    assert table.notna().all(axis=None) and (table[pinball] > 0).all(axis=None)


@pytest.mark.parametrize("metrics", ["mase,msis", "coverage", "crps,acd"])
def test_interval_metrics_without_level_exit_2_before_the_data_is_read(tmp_path, capsys, metrics):
    args = ["--models", "snaive", "--horizon", 2, "--metrics", metrics]
    assert main_in_process("backtest", tmp_path / "absent.csv", *args) == 2
    assert (
        "interval metrics score the intervals of --level; add it, e.g. --level 95." in capsys.readouterr().err
    )


@pytest.mark.parametrize("command", ["predict", "backtest"])
def test_help_documents_the_level_option(command, capsys):
    assert main_in_process(command, "--help") == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--level L[,L...]" in text and "given once (e.g. --level 80,95)" in text
