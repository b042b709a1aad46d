"""Tests of benchmarks/m4.py: run as a user runs it (a subprocess on the first few M4 Hourly series),
its error exits called in-process, and ``--intervals`` on a small synthetic M4 folder (20 hourly
series and a published-intervals file of our own) run in-process."""

import contextlib
import importlib.util
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "m4.py"
M4_DIR = Path(os.environ.get("TSFORECAST_M4_DIR", REPO.parent / "shared" / "data" / "m4"))
needs_m4 = pytest.mark.skipif(
    not (M4_DIR / "Hourly-train.csv").is_file(), reason=f"M4 Hourly files not found in {M4_DIR}"
)
N_SERIES = 5


def run_benchmark(*args):
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=120, cwd=REPO
    )


def seasonal_naive_smape(n_series, horizon=48, season_length=24):
    """sMAPE of the seasonal naive forecast, straight from the wide files (independent of tsforecast)."""
    train = pd.read_csv(M4_DIR / "Hourly-train.csv", nrows=n_series).iloc[:, 1:].to_numpy(float)
    test = pd.read_csv(M4_DIR / "Hourly-test.csv", nrows=n_series).iloc[:, 1:].to_numpy(float)
    scores = []
    for history, actual in zip(train, test, strict=True):
        history = history[~np.isnan(history)]
        forecast = np.resize(history[-season_length:], horizon)
        scores.append(np.mean(200 * np.abs(actual - forecast) / (np.abs(actual) + np.abs(forecast))))
    return float(np.mean(scores))


@pytest.fixture(scope="module")
def benchmark():
    """The script as a module, for the checks that need no subprocess."""
    spec = importlib.util.spec_from_file_location("m4_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    sys.path.insert(0, str(SCRIPT.parent))  # its sibling m4_report, as when run as a script
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(SCRIPT.parent))
        del sys.modules[spec.name]


@pytest.fixture(scope="module")
def subset_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "results" / "m4.json"
    args = ["--frequency", "hourly", "--data-dir", M4_DIR, "--models", "naive,snaive"]
    completed = run_benchmark(*args, "--limit", N_SERIES, "--json", out, "--quiet")
    return completed, out


@needs_m4
def test_json_has_the_documented_schema(subset_run):
    completed, out = subset_run
    assert completed.returncode == 0, completed.stderr
    document = json.loads(out.read_text())
    assert set(document) == {"frequency", "n_series", "horizon", "results"}
    assert (document["frequency"], document["n_series"], document["horizon"]) == ("hourly", N_SERIES, 48)
    assert list(document["results"]) == ["naive", "snaive"]
    for scores in document["results"].values():
        assert set(scores) == {"smape", "mase", "owa", "seconds"}
        assert all(isinstance(value, float) and np.isfinite(value) for value in scores.values())
    assert not list(out.parent.glob(".*"))  # the atomic write left no temporary file


@needs_m4
def test_seasonal_naive_smape_matches_a_direct_computation(subset_run):
    completed, out = subset_run
    results = json.loads(out.read_text())["results"]
    assert results["snaive"]["smape"] == pytest.approx(seasonal_naive_smape(N_SERIES), rel=1e-12)


@needs_m4
def test_table_is_printed_with_published_columns(subset_run):
    completed, _ = subset_run
    lines = completed.stdout.splitlines()
    header = next(line for line in lines if line.startswith("model")).split()
    assert header[:5] == ["model", "sMAPE", "MASE", "OWA", "seconds"]
    assert any(line.startswith("snaive ") for line in lines)
    assert "sNaive" in completed.stdout  # the published benchmark beside ours
    assert "Naive2 as run here" in completed.stdout  # a subset is not scored against the published Naive2


def test_unknown_model_key_exits_non_zero_and_lists_the_choices(benchmark, capsys):
    with pytest.raises(SystemExit) as info:
        benchmark.main(["--data-dir", str(M4_DIR), "--models", "naive,prophet"])
    assert info.value.code != 0
    message = capsys.readouterr().err
    assert "unknown model key(s) ['prophet']" in message and "snaive" in message


def test_missing_data_exits_non_zero_with_the_folder(benchmark, tmp_path, capsys):
    assert benchmark.main(["--data-dir", str(tmp_path), "--models", "naive"]) == 1
    message = capsys.readouterr().err
    assert "Hourly-train.csv" in message and str(tmp_path) in message


@needs_m4
def test_recurrent_models_run_with_their_flags(tmp_path):
    out = tmp_path / "m4.json"
    completed = run_benchmark(
        "--data-dir", M4_DIR, "--models", "lstm,gru", "--limit", 3, "--epochs", 1, "--hidden-size", 4,
        "--device", "cpu", "--seeds", "0,1", "--json", out,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert "lstm (2 seeds)" in completed.stdout and " ± " in completed.stdout
    results = json.loads(out.read_text())["results"]
    assert list(results) == ["lstm", "gru"]
    for scores in results.values():
        assert np.isfinite([scores["smape"], scores["mase"], scores["owa"], scores["seconds"]]).all()
        seeds = scores["seeds"]
        assert list(seeds) == ["0", "1"] and seeds["0"]["smape"] != seeds["1"]["smape"]
        assert scores["smape"] == pytest.approx(np.mean([seeds["0"]["smape"], seeds["1"]["smape"]]))
        assert scores["smape_sd"] == pytest.approx(np.std([seeds["0"]["smape"], seeds["1"]["smape"]], ddof=1))


# -- --intervals ----------------------------------------------------------------------------------------
PUBLISHED_INTERVALS = """method,team,type,hourly_msis,hourly_acd
238,"Doornik, J.",Combination (S),6.139,0.002
118,"Smyl, S.",Hybrid,7.928,0.04
ARIMA,The M4 Team,Statistical,7.538,0.001
Naive,The M4 Team,Statistical,71.245,0.011
"""
NETWORK = ["--epochs", "1", "--hidden-size", "4", "--device", "cpu"]


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """An M4-like hourly folder: 20 series of 230-240 points with a daily cycle, their next 48 values."""
    folder = tmp_path_factory.mktemp("m4")
    rng = np.random.default_rng(0)
    t = np.arange(288)
    train, test = [], []
    for i in range(20):
        y = 100 + 10 * (i % 5) + 8 * np.sin(2 * np.pi * t / 24 + i) + rng.normal(0, 1.5, t.size)
        end = 240 - 10 * (i % 3)  # ragged, as in M4
        train.append([f"H{i + 1}", *y[:end]])
        test.append([f"H{i + 1}", *y[end : end + 48]])
    for name, rows, width in (("Hourly-train.csv", train, 241), ("Hourly-test.csv", test, 49)):
        lines = [",".join(f'"V{k + 1}"' for k in range(width))]
        for row in rows:
            cells = [f'"{row[0]}"', *(f"{v:.3f}" for v in row[1:])]
            lines.append(",".join(cells + [""] * (width - len(cells))))
        (folder / name).write_text("\n".join(lines) + "\n")
    (folder / "hourly_published_intervals.csv").write_text(PUBLISHED_INTERVALS)
    return folder


def run_in_process(benchmark, *args):
    """``main`` of the script with ``args``: (exit code, stdout)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = benchmark.main([str(a) for a in args])
    return code, out.getvalue()


@pytest.fixture(scope="module")
def interval_run(benchmark, synthetic, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "intervals.json"
    models = "naive,snaive,lstm,lstm-q,lstm-conformal,lstm-cqr"
    args = [
        "--data-dir",
        synthetic,
        "--models",
        models,
        "--intervals",
        95,
        "--seeds",
        "0,1",
        "--conformal-windows",
        "1",
        *NETWORK,
    ]
    code, stdout = run_in_process(benchmark, *args, "--json", out, "--quiet")
    return code, stdout, json.loads(out.read_text())


def _m4_msis_and_coverage(forecasts, test, train, season=24):
    """M4's MSIS (a = 0.05) per series averaged over series, and the coverage of all points pooled."""
    msis, inside = [], []
    for uid, actual in test.groupby("unique_id"):
        f = forecasts[forecasts["unique_id"] == uid].merge(actual, on=["unique_id", "ds"])
        y, lo, hi = f["y"].to_numpy(), f["y_lo_95"].to_numpy(), f["y_hi_95"].to_numpy()
        history = train.loc[train["unique_id"] == uid, "y"].to_numpy()
        score = (hi - lo) + 40 * np.maximum(lo - y, 0) + 40 * np.maximum(y - hi, 0)
        msis.append(score.mean() / np.abs(history[season:] - history[:-season]).mean())
        inside.extend((lo <= y) & (y <= hi))
    return float(np.mean(msis)), float(np.mean(inside))


def test_intervals_are_scored_as_m4_did(interval_run, synthetic):
    from tsforecast.baselines import Naive
    from tsforecast.datasets import load_m4

    code, _, document = interval_run
    assert code == 0
    assert document["level"] == 95.0
    data = load_m4("hourly", synthetic, download=False)
    forecasts = Naive(horizon=48).fit(data.train).predict(level=95)
    msis, coverage = _m4_msis_and_coverage(forecasts, data.test, data.train)
    naive = document["results"]["naive"]
    assert naive["msis"] == pytest.approx(msis, rel=1e-9)  # seasonal period 24, mean over series
    assert naive["coverage"] == pytest.approx(coverage, rel=1e-12)  # all points pooled
    assert naive["acd"] == pytest.approx(abs(coverage - 0.95), rel=1e-12)
    assert naive["m4_intervals"] == {"method": "Naive", "msis": 71.245, "acd": 0.011}
    assert "m4_intervals" not in document["results"]["snaive"]  # M4 published no sNaive intervals


def test_networks_report_interval_scores_over_seeds_and_their_cost_against_the_point_model(interval_run):
    _, _, document = interval_run
    results = document["results"]
    point = results["lstm"]
    assert point["msis"] is None and point["coverage"] is None  # a point model: no intervals asked
    assert all(point["seeds"][s]["fit_seconds"] > 0 for s in ("0", "1"))
    for key in ("lstm-q", "lstm-conformal", "lstm-cqr"):
        row = results[key]
        assert list(row["seeds"]) == ["0", "1"]
        assert np.isfinite([row["msis"], row["coverage"], row["acd"], row["msis_sd"], row["fit_ratio"]]).all()
        ratios = [row["seeds"][s]["fit_seconds"] / point["seeds"][s]["fit_seconds"] for s in ("0", "1")]
        assert [row["seeds"][s]["fit_ratio"] for s in ("0", "1")] == pytest.approx(ratios)
        assert row["fit_ratio"] == pytest.approx(np.mean(ratios))
        assert row["msis"] == pytest.approx(np.mean([row["seeds"][s]["msis"] for s in ("0", "1")]))
    # Conformal intervals from 20 series' errors cover far better than an untrained quantile head.
    assert results["lstm-conformal"]["acd"] < results["lstm-q"]["acd"]


def test_interval_table_sits_beside_the_published_figures(interval_run):
    _, stdout, _ = interval_run
    lines = stdout.splitlines()
    header = next(line for line in lines if line.startswith("model") and "MSIS" in line)
    assert header.split()[:6] == ["model", "MSIS", "coverage", "%", "ACD", "fit"]
    assert "x point" in header and "M4 MSIS" in header and "M4 ACD" in header
    naive = next(line for line in lines[lines.index(header) :] if line.startswith("naive "))
    assert "Naive" in naive and "71.245" in naive and "0.011" in naive
    assert any(line.startswith("lstm-conformal (2 seeds)") and " ± " in line for line in lines)
    assert "best hourly MSIS" in stdout and "6.139" in stdout  # the reference rows under the tables


def test_interval_rows_are_built_as_documented(benchmark, synthetic):
    from tsforecast.datasets import load_m4

    data = load_m4("hourly", synthetic, download=False)
    args = benchmark.build_parser().parse_args(["--intervals", "80", "--conformal-windows", "2", *NETWORK])
    head = benchmark.MODELS["lstm-q"].factory(data, args, 3)
    assert head.quantiles == [0.1, 0.9] and head.random_state == 3 and head.hidden_size == 4
    conformal = benchmark.MODELS["lstm-conformal"].factory(data, args, 0)
    assert (conformal.method, conformal.n_windows, conformal.forecaster.quantiles) == ("absolute", 2, None)
    cqr = benchmark.MODELS["lstm-cqr"].factory(data, args, 0)
    assert (cqr.method, cqr.calibration_levels, cqr.forecaster.quantiles) == ("quantile", [80.0], [0.1, 0.9])
    assert benchmark.MODELS["gru-q"].point == "gru" and not benchmark.MODELS["gru"].intervals


def test_without_intervals_the_output_is_unchanged_and_other_levels_have_no_published_figures(
    benchmark, synthetic, tmp_path
):
    out = tmp_path / "point.json"
    code, stdout = run_in_process(
        benchmark, "--data-dir", synthetic, "--models", "naive", "--json", out, "--quiet"
    )
    assert code == 0 and "MSIS" not in stdout
    document = json.loads(out.read_text())
    assert set(document) == {"frequency", "n_series", "horizon", "results"}
    assert set(document["results"]["naive"]) == {"smape", "mase", "owa", "seconds"}
    args = ["--data-dir", synthetic, "--models", "naive", "--intervals", 80, "--json", out, "--quiet"]
    code, stdout = run_in_process(benchmark, *args)
    assert code == 0 and "MSIS" in stdout and "M4 MSIS" not in stdout  # M4 scored 95% intervals only
    row = json.loads(out.read_text())["results"]["naive"]
    assert "m4_intervals" not in row and row["acd"] == pytest.approx(abs(row["coverage"] - 0.8))


def test_validation_scores_intervals_on_the_training_part(benchmark, synthetic, tmp_path):
    out = tmp_path / "validation.json"
    args = ["--data-dir", synthetic, "--models", "naive", "--intervals", 95, "--json", out, "--quiet"]
    code, stdout = run_in_process(benchmark, *args, "--validation")
    assert code == 0 and "M4 MSIS" not in stdout  # the published figures score the test part
    from tsforecast.baselines import Naive
    from tsforecast.datasets import load_m4

    data = benchmark._validation_split(load_m4("hourly", synthetic, download=False))
    forecasts = Naive(horizon=48).fit(data.train).predict(level=95)
    msis, _ = _m4_msis_and_coverage(forecasts, data.test, data.train)
    assert json.loads(out.read_text())["results"]["naive"]["msis"] == pytest.approx(msis, rel=1e-9)


@pytest.mark.parametrize("level", ["0", "100", "150", "abc"])
def test_a_bad_interval_level_exits_with_a_usage_error(benchmark, synthetic, level, capsys):
    with pytest.raises(SystemExit) as info:
        benchmark.main(["--data-dir", str(synthetic), "--models", "naive", "--intervals", level])
    assert info.value.code == 2
    assert "--intervals" in capsys.readouterr().err


@needs_m4
def test_published_m4_intervals_are_read_from_the_data_folder():
    completed = run_benchmark(
        "--data-dir", M4_DIR, "--models", "naive,autoarima", "--limit", 2, "--intervals", 95, "--quiet"
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    naive = [line for line in lines if line.startswith("naive ")][-1]  # the interval table's row
    assert "71.245" in naive and "0.011" in naive  # M4 Hourly Naive's published MSIS and ACD
    assert "ARIMA" in [line for line in lines if line.startswith("autoarima ")][-1]
    assert "7.538" in completed.stdout and "6.139" in completed.stdout
