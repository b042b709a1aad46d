"""Pipelines read a long parquet dataset in record batches, straight into a panel.

The same data as a CSV file and as a parquet folder partitioned by series give the same outputs;
the as-of cut is applied as the dataset is read; bad data still names the series.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from clitools import main_in_process

from tsforecast.data import Panel
from tsforecast.pipelines import load_config
from tsforecast.pipelines.data import AsOf, describe_file, load

pytestmark = pytest.mark.timeout(240)

PIPELINE = """\
name: parquet
data: {{path: {path}, freq: h}}
forecast: {{horizon: 24, season_length: 24}}
model: {{name: lstm, params: {{hidden_size: 8, max_epochs: 2, tbptt_steps: 48, random_state: 0}}}}
baselines: [snaive, naive2]
backtest: {{n_windows: 2}}
gate: {{metric: mase, margin: 10}}
evaluation: {{test_path: test.csv}}
outputs: {{dir: outputs-{name}, format: parquet}}
tracking: {{enabled: false}}
"""
AS_OF = "2024-01-20"


def hourly(n_series: int = 5, days: int = 24) -> pd.DataFrame:
    """Daily-seasonal hourly series of different lengths, ids ``s0``... (the last one is shortest)."""
    rng = np.random.default_rng(1)
    frames = []
    for k in range(n_series):
        times = pd.date_range("2024-01-01", periods=days * 24, freq="h")[24 * k :]
        daily = 5 * np.sin(2 * np.pi * np.arange(len(times)) / 24)
        frames.append(
            pd.DataFrame(
                {"unique_id": f"s{k}", "ds": times, "y": 50 + k + daily + rng.normal(0, 1, len(times))}
            )
        )
    return pd.concat(frames, ignore_index=True)


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """history.csv and history/ (parquet, one folder per series) up to AS_OF; test.csv the day after."""
    monkeypatch.chdir(tmp_path)
    frame = hourly()
    end = pd.Timestamp(AS_OF) + pd.Timedelta(days=1)
    history, test = (
        frame[frame["ds"] < end],
        frame[(frame["ds"] >= end) & (frame["ds"] < end + pd.Timedelta(days=1))],
    )
    history.to_csv(tmp_path / "history.csv", index=False)
    frame.to_parquet(tmp_path / "history", partition_cols=["unique_id"], index=False)  # rows after AS_OF too
    test.to_csv(tmp_path / "test.csv", index=False)
    for name, path in (("csv", "history.csv"), ("parquet", "history")):
        (tmp_path / f"{name}.yaml").write_text(PIPELINE.format(path=path, name=name))
    return tmp_path


def _outputs(folder: Path, name: str) -> Path:
    return folder / f"outputs-{name}" / AS_OF


def test_a_parquet_folder_runs_as_its_csv_does(folder):
    assert main_in_process("run", "csv.yaml", "--as-of", AS_OF) == 0
    assert main_in_process("run", "parquet.yaml", "--as-of", AS_OF) == 0
    csv, parquet = _outputs(folder, "csv"), _outputs(folder, "parquet")
    for name in ("forecasts.parquet", "baseline_forecasts.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(parquet / name), pd.read_parquet(csv / name))
    for name in ("comparison.csv", "backtest_by_horizon.csv", "evaluation.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(parquet / name), pd.read_csv(csv / name))
    forecasts = pd.read_parquet(parquet / "forecasts.parquet")
    assert forecasts["ds"].min() == pd.Timestamp(AS_OF) + pd.Timedelta(days=1) and len(forecasts) == 5 * 24

    manifests = {
        name: json.loads((_outputs(folder, name) / "manifest.json").read_text())
        for name in ("csv", "parquet")
    }
    data = {name: manifest["data"] for name, manifest in manifests.items()}
    assert data["parquet"]["n_rows"] == data["csv"]["n_rows"] == sum(24 * (20 - k) for k in range(5))
    # The parquet folder holds 4 more days than the CSV: cut as it was read.
    assert data["parquet"]["rows_after_as_of"] == 5 * 4 * 24 and data["csv"]["rows_after_as_of"] == 0
    (record,) = [item for item in manifests["parquet"]["inputs"] if item["role"] == "data"]
    parts = sorted((folder / "history").rglob("*.parquet"))
    assert len(parts) == 5 and record["bytes"] == sum(p.stat().st_size for p in parts)


def test_the_load_step_reads_parquet_into_a_panel_cut_at_the_as_of(folder):
    config = load_config(folder / "parquet.yaml")
    inputs = load(config, AsOf.parse("2024-01-10T12:00"))
    assert isinstance(inputs.history, Panel) and inputs.history.ids == [f"s{k}" for k in range(5)]
    assert [index[-1] for index in inputs.history.index] == [pd.Timestamp("2024-01-10 12:00")] * 5
    assert inputs.stats["rows_after_as_of"] == inputs.stats["rows_read"] - int(inputs.history.lengths.sum())

    limited = load(load_config(folder / "parquet.yaml", ["data.limit_series=2"]), AsOf.parse(AS_OF))
    assert limited.history.ids == ["s0", "s1"] and set(limited.test["unique_id"]) == {"s0", "s1"}


def test_bad_parquet_data_stops_the_run_naming_the_series(folder, capsys):
    frame = hourly()
    frame = frame.drop(index=frame.index[(frame["unique_id"] == "s3") & (frame["ds"] == "2024-01-12 05:00")])
    frame.to_parquet(folder / "gappy.parquet", index=False)
    assert main_in_process("run", "parquet.yaml", "--as-of", AS_OF, "--set", "data.path=gappy.parquet") == 3
    message = capsys.readouterr().err
    assert "'s3'" in message and "2024-01-12 05:00" in message
    assert not _outputs(folder, "parquet").exists()
    # After the as-of date the same gap is never read.
    assert main_in_process("run", "parquet.yaml", "--as-of", "2024-01-11", "--set", "data.path=gappy.parquet",
                           "--set", "evaluation.enabled=false") == 0  # fmt: skip


def test_a_changed_part_changes_the_folder_checksum(folder):
    before = describe_file("data", folder / "history")
    part = sorted((folder / "history").rglob("*.parquet"))[2]
    frame = pd.read_parquet(part)
    frame.assign(y=frame["y"] + 1).to_parquet(part, index=False)
    after = describe_file("data", folder / "history")
    assert before["sha256"] != after["sha256"] and before["path"] == after["path"]
