"""Faults of pipelines and of fit / predict / backtest (issue 15, items 6, 7 and 8), asserted on the
message and the exit code of the real command.

- Stale data: a run whose data end too long before ``--as-of`` exits 3 naming the series' last time
  stamps, before any training, and publishes nothing; ``data.max_staleness`` allows it, and the
  manifest records the data file's last time stamps.
- Scientific notation: ``1e-3`` is the float 0.001 in ``-p``, ``--set`` and pipeline files.
- Unusable output locations: exit 2 naming the path, before any work, without a traceback.

Commands run in subprocesses (``python -m tsforecast.cli``) on three small synthetic daily series with
baselines or a tiny LSTM; the helpers underneath are tested in process.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from clitools import cli, cli_together, tree_bytes

from tsforecast.cli.common import parse_params
from tsforecast.data import to_panel
from tsforecast.data.io import check_writable, write_bytes
from tsforecast.exceptions import InvalidInputError, InvalidParameterError
from tsforecast.pipelines import ConfigError, load_config
from tsforecast.pipelines.outputs import OutputStore
from tsforecast.pipelines.staleness import as_of_moment, check_fresh
from tsforecast.pipelines.yaml_loader import parse_value

pytestmark = pytest.mark.timeout(120)

PIPELINE = """\
name: faults
data: {path: sales.csv, freq: D}
forecast: {horizon: 7, season_length: 7}
model: {name: snaive}
baselines: [naive]
backtest: {n_windows: 1}
gate: {metric: mase, margin: 10}
outputs: {dir: outputs, format: csv}
tracking: {enabled: false}
"""
ENDS = {"s0": "2024-04-29", "s1": "2024-04-29", "s2": "2024-04-27"}  # s2 ends two days early
STORE = "sqlite:///unused.db"  # no test here tracks; MLFLOW_TRACKING_URI never points at a real store


def write_daily(path: Path) -> Path:
    """Three weekly-seasonal daily series from 2024-01-01, ending on ``ENDS``."""
    rng = np.random.default_rng(0)
    frames = []
    for k, (sid, end) in enumerate(ENDS.items()):
        times = pd.date_range("2024-01-01", end, freq="D")
        weekly = 3 * np.sin(2 * np.pi * np.arange(len(times)) / 7)
        values = 10 + k + weekly + rng.normal(0, 0.5, len(times))
        frames.append(pd.DataFrame({"unique_id": sid, "ds": times, "y": values}))
    pd.concat(frames, ignore_index=True).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("faults")
    write_daily(folder / "sales.csv")
    (folder / "pipeline.yaml").write_text(PIPELINE)
    (folder / "blocker").write_text("a file where a folder is expected\n")
    return folder


def run(workdir: Path, as_of: str, *settings) -> object:
    return cli("run", "pipeline.yaml", "--as-of", as_of, *settings, cwd=workdir, store=STORE)


def no_traceback(result) -> bool:
    return "Traceback" not in result.stderr and "unexpected" not in result.stderr


# ------------------------------------------------------------------ item 6: stale data, --as-of
def test_stale_data_exit_3_naming_the_last_time_stamps_and_publish_nothing(workdir):
    allowed = run(workdir, "2024-04-29", "--set", "data.max_staleness=2")
    assert allowed.returncode == 0, allowed.stderr
    outputs = workdir / "outputs"
    published = outputs / "2024-04-29"
    manifest = json.loads((published / "manifest.json").read_text())
    assert manifest["inputs"][0]["last_time_stamp"] == {
        "earliest": "2024-04-27 00:00:00",
        "latest": "2024-04-29 00:00:00",
        "earliest_series": "s2",
    }
    assert manifest["config"]["data"]["max_staleness"] == 2
    before, target = tree_bytes(published), published.resolve()

    # By default one missing day is allowed; s2 lacks 2024-04-28 and 2024-04-29.
    stale = run(workdir, "2024-04-29")
    assert stale.returncode == 3, stale.stderr
    assert "step 'validate' failed" in stale.stderr and no_traceback(stale)
    assert "1 of 3 series end too long before the as-of date 2024-04-29" in stale.stderr
    assert "series 's2' ends at 2024-04-27 00:00:00" in stale.stderr and "'s0'" not in stale.stderr
    assert "leave the series that stopped out of the file" in stale.stderr
    assert "data.max_staleness" in stale.stderr
    assert "step 3/9 backtest" not in stale.stderr  # no training started

    future = run(workdir, "2030-01-01")
    assert future.returncode == 3, future.stderr
    assert "3 of 3 series end too long before the as-of date 2030-01-01" in future.stderr
    for sid, end in ENDS.items():
        assert f"series '{sid}' ends at {end} 00:00:00" in future.stderr
    assert "--as-of 2024-04-29" in future.stderr and no_traceback(future)

    assert not (outputs / "2030-01-01").exists()
    assert published.resolve() == target and tree_bytes(published) == before
    assert not [p for p in (outputs / ".versions").iterdir() if p.name.endswith(".tmp")]


def test_max_staleness_allows_a_future_as_of_and_the_manifest_says_where_the_data_end(workdir):
    result = run(workdir, "2030-01-01", "--set", "data.max_staleness=3000D")
    assert result.returncode == 0, result.stderr
    folder = workdir / "outputs" / "2030-01-01"
    manifest = json.loads((folder / "manifest.json").read_text())
    ends = manifest["inputs"][0]["last_time_stamp"]
    assert (ends["earliest"], ends["latest"]) == ("2024-04-27 00:00:00", "2024-04-29 00:00:00")
    assert manifest["config"]["data"]["max_staleness"] == "3000D"
    forecasts = pd.read_csv(folder / "forecasts.csv", parse_dates=["ds"])
    assert forecasts.groupby("unique_id")["ds"].min().to_dict() == {
        "s0": pd.Timestamp("2024-04-30"),
        "s1": pd.Timestamp("2024-04-30"),
        "s2": pd.Timestamp("2024-04-28"),
    }


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


# ------------------------------------------------------------------ item 8: 1e-3 is a float everywhere
@pytest.mark.parametrize(
    ("text", "value"),
    [("1e-3", 0.001), ("1E5", 1e5), (".5e3", 500.0), ("-2e+4", -2e4), ("+1.5e-2", 0.015), ("1.0e+6", 1e6)],
)
def test_scientific_notation_is_a_float_in_every_value(text, value):
    parsed = parse_value(text)
    assert type(parsed) is float and parsed == value
    assert parse_params([f"learning_rate={text}"]) == {"learning_rate": value}  # -p, tune --param
    assert parse_value("8") == 8 and parse_value("2024-05-01") == "2024-05-01"  # ints, dates unchanged
    assert parse_value("1e") == "1e" and parse_value("e3") == "e3"


def test_1e_3_reaches_the_estimator_from_p_set_and_the_yaml_file(workdir):
    from tsforecast import load

    tiny = ["-p", "hidden_size=4", "-p", "max_epochs=1", "-p", "tbptt_steps=28", "-p", "weight_decay=2E-5"]
    yaml_file = (
        PIPELINE.replace(
            "model: {name: snaive}",
            "model: {name: lstm, params: {hidden_size: 4, max_epochs: 1, tbptt_steps: 28,"
            " weight_decay: 2E-5}}",
        )
        .replace("baselines: [naive]", "baselines: []")
        .replace("gate: {metric: mase, margin: 10}", "gate: {enabled: false}")
    )
    (workdir / "lstm.yaml").write_text(
        yaml_file.replace("outputs: {dir: outputs", "outputs: {dir: lstm_outputs")
    )
    fit, pipeline = cli_together(
        ("fit", "sales.csv", "--model", "lstm", "--horizon", "7", "--season-length", "7", *tiny,
         "-p", "learning_rate=1e-3", "--output", "lstm.safetensors"),
        ("run", "lstm.yaml", "--as-of", "2024-04-29", "--set", "data.max_staleness=2",
         "--set", "model.params.learning_rate=1e-3"),
        cwd=workdir, store=STORE,
    )  # fmt: skip
    assert fit.returncode == 0, fit.stderr
    assert pipeline.returncode == 0, pipeline.stderr
    params = load(workdir / "lstm.safetensors").get_params()
    assert (params["learning_rate"], params["weight_decay"]) == (0.001, 2e-5)
    folder = workdir / "lstm_outputs" / "2024-04-29"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["model"]["params"]["learning_rate"] == 0.001  # the fitted estimator's
    assert manifest["model"]["params"]["weight_decay"] == 2e-5  # written 2E-5 in the file
    assert load(folder / "model.safetensors").get_params()["learning_rate"] == 0.001


# ------------------------------------------------------------------ item 7: unusable output locations
def test_unusable_output_locations_exit_2_naming_the_path_before_any_work(workdir):
    models = ["--horizon", "7", "--season-length", "7"]
    real = workdir / "outputs_real"
    (real / "2024-04-29").mkdir(parents=True, exist_ok=True)  # a real folder where a link goes
    (workdir / "taken.csv").mkdir(exist_ok=True)  # a folder where the file goes
    results = cli_together(
        ("fit", "sales.csv", "--model", "snaive", *models, "--output", "blocker/m.joblib"),
        ("fit", "sales.csv", "--model", "snaive", *models, "--output", "m.joblib",
         "--forecast-output", "blocker/sub/f.csv"),
        ("predict", "no-model.joblib", "--output", "blocker/f.csv"),
        ("backtest", "sales.csv", "--models", "snaive", *models, "--output", "blocker/c.csv"),
        ("backtest", "sales.csv", "--models", "snaive", *models, "--forecasts-output", "taken.csv"),
        ("run", "pipeline.yaml", "--as-of", "2024-04-29", "--set", "outputs.dir=blocker/outputs"),
        ("run", "pipeline.yaml", "--as-of", "2024-04-29", "--set", f"outputs.dir={real}"),
        cwd=workdir, store=STORE,
    )  # fmt: skip
    expected = [
        "--output blocker/m.joblib: cannot write there (blocker is not a folder)",
        "--forecast-output blocker/sub/f.csv: cannot write there (blocker is not a folder)",
        "--output blocker/f.csv: cannot write there (blocker is not a folder)",
        "--output blocker/c.csv: cannot write there (blocker is not a folder)",
        "--forecasts-output taken.csv: cannot write there (taken.csv is a folder)",
        "outputs.dir: blocker/outputs: cannot write there (blocker is not a folder)",
        f"outputs.dir: {real / '2024-04-29'} is a real folder",
    ]
    for result, message in zip(results, expected, strict=True):
        assert result.returncode == 2, (result.args, result.stderr)
        assert message in result.stderr, (result.args, result.stderr)
        assert no_traceback(result) and result.stderr.count(" ERROR ") == 1, result.stderr
        assert "step 1/9 load" not in result.stderr  # nothing was read, let alone fitted
    assert not (workdir / "m.joblib").exists()


def test_write_helpers_refuse_unusable_places_with_the_path(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    with pytest.raises(
        InvalidParameterError, match=r"blocker/out\.csv: cannot write there \(.*blocker is not"
    ):
        check_writable(blocker / "out.csv")
    with pytest.raises(InvalidParameterError, match=r"is a folder"):
        check_writable(tmp_path)
    with pytest.raises(InvalidParameterError, match=r"blocker/deep/f\.json: cannot write there"):
        write_bytes(b"{}", blocker / "deep" / "f.json")
    assert check_writable(tmp_path / "new" / "sub" / "f.csv").parent.is_dir()  # created, as documented
    assert check_writable(tmp_path / "new", folder=True) == tmp_path / "new"
    assert sorted(p.name for p in (tmp_path / "new").rglob("*")) == ["sub"]  # no probe left behind
    with pytest.raises(ConfigError, match=r"outputs.dir: .*blocker/out: cannot write there"):
        with OutputStore(blocker / "out").locked():
            pass


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="permission bits do not bind root")
def test_a_read_only_folder_is_refused_with_the_path(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(InvalidParameterError, match=r"Permission denied: .*locked"):
            check_writable(locked / "out.csv")
    finally:
        locked.chmod(0o700)
