"""The ``tsforecast`` command: help, file input/output, and fit / predict / backtest end to end.

Commands run in subprocesses (``python -m tsforecast.cli``) on six M4 Hourly series, with one torch
thread and MLflow in a throw-away SQLite store; the file helpers are tested in process.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from clitools import M4_DIR, cli, cli_together, m4_hourly_csv, main_in_process, requires_m4, store_uri

from tsforecast.cli import build_parser, main
from tsforecast.cli.common import check_output
from tsforecast.cli.exit_codes import ExitCode, for_error
from tsforecast.data.io import PARQUET_SUFFIXES, WRITTEN_CSV_SUFFIXES, read_frame, write_frame
from tsforecast.exceptions import InvalidInputError, InvalidParameterError, TrackingError
from tsforecast.pipelines.models import load_model, save_model

LSTM = [
    "--model",
    "lstm",
    "--horizon",
    "24",
    "--season-length",
    "24",
    "-p",
    "hidden_size=8",
    "-p",
    "max_epochs=2",
]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    if (M4_DIR / "Hourly-train.csv").is_file():  # the tests that need it are marked requires_m4
        m4_hourly_csv(folder / "sales.csv")
    return folder


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return store_uri(tmp_path_factory)


def test_help_lists_the_commands_and_the_exit_codes(capsys):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for command in ("fit", "predict", "backtest", "run"):
        assert f"\n    {command} " in text
    assert "4  quality gate failed" in text
    for command in ("fit", "predict", "backtest", "run"):
        assert main([command, "--help"]) == 0
        assert f"usage: tsforecast {command}" in capsys.readouterr().out
    assert main(["fit"]) == 2  # usage error: the data file and --model are required


def test_every_subcommand_has_a_handler():
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    assert {"fit", "predict", "backtest", "run"} <= set(commands)
    assert all(sub.get_default("handler") is not None for sub in commands.values())


def test_error_types_map_to_documented_exit_codes():
    assert for_error(InvalidParameterError("x")) == ExitCode.CONFIG
    assert for_error(InvalidInputError("x")) == ExitCode.DATA
    assert for_error(TrackingError("x")) == ExitCode.UNAVAILABLE
    assert for_error(RuntimeError("x")) == ExitCode.UNEXPECTED


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".csv.gz"])
def test_frames_round_trip_in_every_layout(tmp_path, suffix):
    times = pd.date_range("2024-01-01", periods=5, freq="D")
    wide = pd.DataFrame({"a": np.arange(5.0), "b": np.arange(5.0) * 2}, index=times.rename("ds"))
    long = wide.reset_index().melt(id_vars="ds", var_name="unique_id", value_name="y")
    single = wide[["a"]]
    for name, frame in {"wide": wide, "long": long, "single": single}.items():
        path = write_frame(frame, tmp_path / f"{name}{suffix}")
        back = read_frame(path)
        if name == "long":
            assert back["ds"].dtype.kind == "M"
            pd.testing.assert_frame_equal(back, long, check_dtype=False)
        else:
            assert isinstance(back.index, pd.DatetimeIndex)
            np.testing.assert_array_equal(back.to_numpy(), frame.to_numpy())
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # no temporary file left


def test_read_frame_errors_name_the_file(tmp_path):
    with pytest.raises(InvalidInputError, match="unknown file type"):
        read_frame(tmp_path / "data.xlsx")
    with pytest.raises(InvalidInputError, match="no such file"):
        read_frame(tmp_path / "missing.csv")
    (tmp_path / "bad.csv").write_text("ds,a\nyesterday,1\ntoday,2\n")
    with pytest.raises(InvalidInputError, match="time column 'ds' cannot be read as time stamps"):
        read_frame(tmp_path / "bad.csv")


def test_a_numeric_first_column_is_not_read_as_time_stamps(tmp_path):
    # A wide file whose time column is last and not named ds: the first column holds floats.
    path = tmp_path / "wide.csv"
    path.write_text("store_a,store_b,date\n1.5,2.0,2024-01-01\n2.5,3.0,2024-01-02\n3.5,4.0,2024-01-03\n")
    with pytest.raises(InvalidInputError) as error:
        read_frame(path)
    message = str(error.value)
    assert "time column 'store_a' (no column is named 'ds', so the first column is taken)" in message
    assert "holds float64 numbers, neither dates nor integer steps" in message
    assert "look like they are in ['date']" in message and "--time-col (pipelines: data.time_col)" in message
    assert list(read_frame(path, time_col="date").columns) == ["store_a", "store_b"]


def test_every_accepted_output_suffix_is_written_and_no_other(tmp_path):
    frame = pd.DataFrame(
        {"unique_id": ["a", "a"], "ds": pd.date_range("2024-01-01", periods=2), "y": [1.0, 2.0]}
    )
    for suffix in PARQUET_SUFFIXES + WRITTEN_CSV_SUFFIXES:
        path = check_output(tmp_path / f"out{suffix}")
        pd.testing.assert_frame_equal(read_frame(write_frame(frame, path)), frame, check_dtype=False)
    for suffix in (".csv.zst", ".csv.zip", ".xlsx"):  # read (zst, zip) or unknown: refused before any work
        with pytest.raises(InvalidParameterError, match="--output: .*out"):
            check_output(tmp_path / f"out{suffix}")


def test_wide_forecasts_keep_the_time_column_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    times = pd.date_range("2024-01-01", periods=40, freq="D")
    wide = pd.DataFrame({"date": times, "s0": np.arange(40.0) % 7, "s1": np.arange(40.0) % 5})
    wide[["s0", "s1", "date"]].to_csv("wide.csv", index=False)  # the time column last
    args = ["--model", "snaive", "--horizon", "7", "--season-length", "7", "--time-col", "date"]
    assert main_in_process("fit", "wide.csv", *args, "-o", "m.joblib", "--forecast-output", "f.csv") == 0
    assert (tmp_path / "f.csv").read_text().splitlines()[0] == "date,s0,s1"
    on_wide = ["--data", "wide.csv", "--time-col", "date"]
    assert main_in_process("predict", "m.joblib", *on_wide, "-o", "p.csv") == 0
    assert (tmp_path / "p.csv").read_text().startswith("date,s0,s1\n")
    assert main_in_process("predict", "m.joblib", "--output", "default.csv") == 0
    assert (tmp_path / "default.csv").read_text().startswith("ds,s0,s1\n")


def test_baseline_saved_with_joblib_round_trips(tmp_path):
    from tsforecast.baselines import SeasonalNaive

    y = pd.Series(np.arange(30.0) % 7, index=pd.date_range("2024-01-01", periods=30, freq="D"))
    model = SeasonalNaive(horizon=7, season_length=7).fit(y)
    with pytest.raises(InvalidParameterError, match="name the file \\*.joblib"):
        save_model(model, tmp_path / "model.safetensors")
    path = save_model(model, tmp_path / "model.joblib")
    pd.testing.assert_series_equal(load_model(path).predict(), model.predict())


@requires_m4
def test_fit_then_predict_from_the_file_and_from_mlflow(workdir, store):
    fitted = cli(
        "fit", "sales.csv", *LSTM, "--output", "lstm.safetensors", "--forecast-output", "fit.csv",
        "--register", "cli-lstm", cwd=workdir, store=store,
    )  # fmt: skip
    assert fitted.returncode == 0, fitted.stderr
    expected = pd.read_csv(workdir / "fit.csv")
    assert len(expected) == 6 * 24 and list(expected.columns) == ["unique_id", "ds", "y_pred"]

    history = pd.read_csv(workdir / "sales.csv").groupby("unique_id").head(300)  # new, shorter history
    history.to_csv(workdir / "history.csv", index=False)
    on_history = ("--data", "history.csv", "--horizon", 12)
    from_file, from_uri = cli_together(
        ("predict", "lstm.safetensors", *on_history, "--output", "file.parquet"),
        ("predict", "models:/cli-lstm/latest", *on_history, "--output", "uri.csv"),
        cwd=workdir,
        store=store,
    )
    assert from_file.returncode == 0, from_file.stderr
    assert from_uri.returncode == 0, from_uri.stderr
    got = read_frame(workdir / "uri.csv")
    assert len(got) == 6 * 12 and got["ds"].min() == pd.Timestamp("2024-01-13 12:00")  # after hour 300
    same = pd.read_parquet(workdir / "file.parquet")
    np.testing.assert_allclose(got["y_pred"], same["y_pred"], rtol=1e-10)  # the MLflow model is the file's


@requires_m4
def test_backtest_prints_the_comparison_and_writes_it(workdir, store):
    args = ["--models", "snaive,naive2", "--horizon", "24", "--season-length", "24", "--n-windows", "2"]
    result = cli("backtest", "sales.csv", *args, "--output", "comparison.csv", cwd=workdir, store=store)
    assert result.returncode == 0, result.stderr
    assert "owa" in result.stdout and "snaive" in result.stdout
    table = pd.read_csv(workdir / "comparison.csv", index_col="model")
    assert list(table.index) == ["snaive", "naive2"] and table.loc["naive2", "owa"] == 1.0


def test_bad_parameter_and_missing_model_name_the_culprit(tmp_path):
    from tsforecast.exceptions import ModelFileError
    from tsforecast.registry import build_estimator

    with pytest.raises(InvalidParameterError, match="snaive.params.season_length: expected int, got 'abc'"):
        build_estimator("snaive", {"season_length": "abc"}, where="snaive")
    with pytest.raises(ModelFileError, match="nowhere.safetensors: no such model file") as error:
        load_model(tmp_path / "nowhere.safetensors")
    assert for_error(error.value) == ExitCode.DATA
