"""Tests of benchmarks/scale.py: the synthetic panels of ``make_panel`` in-process, and the benchmark's
entry point on tiny cases (its children are fresh interpreters, as in a real run): the JSON's fields and
values, the predict-only case read from parquet, and failed children reported as rows."""

import contextlib
import importlib.util
import io
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "scale.py"
MIB = 2**20


@pytest.fixture(scope="module")
def benchmark():
    """The script as a module."""
    spec = importlib.util.spec_from_file_location("scale_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def run_in_process(benchmark, *args):
    """``main`` of the script with ``args``: (exit code, stdout)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = benchmark.main([str(a) for a in args])
    return code, out.getvalue()


def per_series(frame: pd.DataFrame) -> pd.DataFrame:
    grouped = frame.groupby("unique_id", observed=True, sort=True)
    return grouped.agg(length=("y", "size"), first=("ds", "min"), last=("ds", "max"), low=("y", "min"))


@pytest.mark.parametrize(
    ("shape", "n", "bounds", "end"),
    [
        ("hourly", 300, (100, 2_000), "2024-12-31 23:00"),
        ("short", 300, (100, 300), "2024-12-31 23:00"),
        ("m5", 30, (1_941, 1_941), "2016-05-22"),
    ],
)
def test_panels_have_the_requested_shape(benchmark, shape, n, bounds, end):
    frame = benchmark.make_panel(n, shape, seed=1)
    assert list(frame.columns) == ["unique_id", "ds", "y"] and frame["y"].dtype == np.float32
    series = per_series(frame)
    assert list(series.index) == [f"s{i + 1:07d}" for i in range(n)]
    assert series["length"].between(*bounds).all()
    assert (series["last"] == pd.Timestamp(end)).all()  # every series ends at the same time stamp
    step = pd.Timedelta(1, unit=benchmark.SHAPES[shape].freq)
    assert (series["first"] == series["last"] - (series["length"] - 1) * step).all()  # no gap
    assert (frame["ds"].diff()[frame["unique_id"].eq(frame["unique_id"].shift())] == step).all()
    if shape == "m5":
        assert (series["first"] == pd.Timestamp("2011-01-29")).all()
    else:
        assert series["length"].nunique() > 50  # drawn, not fixed

    kinds = benchmark.series_kinds(n, shape)
    intermittent = kinds == benchmark.INTERMITTENT
    zero_share = frame.assign(zero=frame["y"] == 0).groupby("unique_id", observed=True)["zero"].mean()
    assert (series["low"] >= 0).all()
    assert (zero_share.to_numpy()[intermittent] > 0).all()  # every intermittent series has zeros
    counts = frame.loc[frame["unique_id"].isin(series.index[intermittent]), "y"].to_numpy()
    assert np.array_equal(counts, np.round(counts))
    if shape == "m5":
        assert intermittent.all()
    else:
        assert np.bincount(kinds).tolist() == [n // 3] * 3  # thirds
        assert (series["low"].to_numpy()[~intermittent] > 0).all()  # positive levels elsewhere


def test_panels_are_seeded(benchmark):
    first, again = benchmark.make_panel(20, "hourly", seed=3), benchmark.make_panel(20, "hourly", seed=3)
    pd.testing.assert_frame_equal(first, again)
    assert not benchmark.make_panel(20, "hourly", seed=4)["y"].equals(first["y"])


def test_sizes_name_the_cases(benchmark):
    assert benchmark.parse_sizes("1000, 30490,50:short") == [(1000, "hourly"), (30490, "m5"), (50, "short")]
    with pytest.raises(Exception, match="shape one of"):
        benchmark.parse_sizes("10:weekly")


@pytest.fixture(scope="module")
def tiny_run(benchmark, tmp_path_factory):
    out = tmp_path_factory.mktemp("scale") / "results" / "scale.json"
    args = ["--sizes", "60,40:m5", "--steps", 3, "--threads", 1, "--full", "--full-size", 50, "--json", out]
    code, stdout = run_in_process(benchmark, *args)
    return code, stdout, json.loads(out.read_text())


@pytest.mark.slow
def test_json_has_the_settings_the_machine_and_one_row_per_case(tiny_run):
    code, stdout, document = tiny_run
    assert code == 0, stdout
    assert document["settings"]["sizes"] == ["60:hourly", "40:m5"] and document["settings"]["steps"] == 3
    assert {"platform", "cpu_count", "torch"} <= set(document["machine"])
    assert [r["case"] for r in document["cases"]] == ["60 hourly", "40 m5", "model for --full", "50 short"]
    assert [(r["n_series"], r["shape"]) for r in document["cases"]] == [
        (60, "hourly"), (40, "m5"), (1_000, "short"), (50, "short"),
    ]  # fmt: skip
    assert not any("error" in r for r in document["cases"])
    assert "added memory <= 2 x raw + 1.5 GiB, every case" in document["acceptance"]
    assert "50 short: predict peak RSS < 8 GiB" in document["acceptance"]
    assert "failed" not in stdout and "targets/s" in stdout and "predict only, from parquet" in stdout


@pytest.mark.slow
def test_each_case_reports_sane_measurements(benchmark, tiny_run):
    _, _, document = tiny_run
    for row in document["cases"]:
        n, shape = row["n_series"], row["shape"]
        assert row["total_steps"] == len(benchmark.make_panel(n, shape))  # the default seed 0
        assert row["raw_mib"] == pytest.approx(4 * row["total_steps"] / MIB)
        assert row["memory_limit_mib"] == pytest.approx(2 * row["raw_mib"] + 1536)
        assert isinstance(row["memory_ok"], bool)
        predict = row["predict"]
        assert predict["seconds"] > 0
        assert predict["series_per_second"] == pytest.approx(n / predict["seconds"])
        assert predict["added_mib"] >= 0 and predict["peak_rss_mib"] > 100  # torch alone takes more
        assert predict["forecast_rows"] == n * benchmark.SHAPES[shape].horizon
        if row.get("predict_only"):
            assert "fit" not in row and row["data_source"] == "parquet" and row["parquet_bytes"] > 0
            continue
        fit, train = row["fit"], row["train"]
        assert row["data_source"] == "make_panel" and row["threads"] == 1
        assert fit["seconds"] > train["loop_seconds"] > 0
        assert fit["added_mib"] > 0 and fit["peak_rss_mib"] > fit["rss_before_mib"] > 0
        assert 0 < train["steps"] <= 3 and train["targets"] > 0
        assert train["targets_per_second"] == pytest.approx(train["targets"] / train["loop_seconds"])
    larger, smallest = document["cases"][:2]
    assert smallest["throughput_ratio"] == 1.0  # the smallest N (40) is the reference
    assert larger["throughput_ratio"] == pytest.approx(
        larger["train"]["targets_per_second"] / smallest["train"]["targets_per_second"]
    )
    assert "throughput_ratio" not in document["cases"][2]  # the predict-only case's model: not a size


def test_a_child_over_the_memory_cap_or_the_time_limit_is_a_row_and_the_run_goes_on(benchmark, tmp_path):
    out = tmp_path / "failed.json"
    code, stdout = run_in_process(benchmark, "--sizes", "10,20", "--max-rss-gb", 0.01, "--json", out)
    assert code == 1
    rows = json.loads(out.read_text())["cases"]
    assert [(r["n_series"], r["error"]) for r in rows] == [(10, "over 0.01 GB"), (20, "over 0.01 GB")]
    assert "failed: over 0.01 GB" in stdout
    assert json.loads(out.read_text())["acceptance"]["added memory <= 2 x raw + 1.5 GiB, every case"] is False
    code, stdout = run_in_process(benchmark, "--sizes", "10", "--timeout", 0.2)
    assert code == 1 and "failed: timeout after 0.2 s" in stdout


def test_the_pipeline_benchmark_runs_the_pipeline_from_parquet_and_csv(tmp_path):
    """benchmarks/pipeline_scale.py on 40 series: both sources, the same panel, a peak per run."""
    import subprocess

    out = tmp_path / "pipeline.json"
    script = REPO / "benchmarks" / "pipeline_scale.py"
    command = [sys.executable, str(script), "--series", "40", "--steps", "2", "--reference", "csv",
               "--tmp-dir", str(tmp_path), "--json", str(out)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    folder, csv = result["cases"]
    assert (folder["source"], csv["source"]) == ("folder", "csv")
    for case in (folder, csv):
        assert case["exit_status"] == 0 and case["n_series"] == 40 and case["n_rows"] == 40 * 1941
        assert set(case["step_seconds"]) >= {"load", "validate", "backtest", "fit", "forecast"}
        assert 100 < case["peak_rss_mib"] < 4096
    assert result["acceptance"]["within_limit"] is True
    assert "peak RSS" in done.stdout and "folder" in done.stdout
