"""A nightly pipeline on an M5-sized panel read from parquet: peak memory of the whole ``tsforecast run``.

Data: the M5-shaped synthetic panel of ``benchmarks/scale.py`` (30,490 daily intermittent count series,
1,941 steps each, 59 M rows), written once as a parquet file (``--layout file``) or as a folder of parquet
files of about 2,000 series each (``--layout folder``, as a partitioned export would give).

The pipeline (written beside the data): the default LSTM with ``max_epochs=1, max_steps=--steps``,
a seasonal naive baseline, a backtest of one window of 28 days (the LSTM fitted and scored on it), the
final fit and the forecasts of every series, written as parquet; no gate, no tracking. It runs as
``python -m tsforecast.cli run`` in a child process, timed alone; its peak resident memory is the
child's ``ru_maxrss`` (the whole process, interpreter and torch included), and the step times come from
its ``run.json``. ``--reference csv`` also runs the same pipeline on the same panel written as a CSV file,
which the pipeline reads with pandas: the memory a frame-based load needs, measured in the same run.

Acceptance (issue "Scale on one machine"): the M5-shaped panel from a parquet dataset trains and
forecasts within an absolute peak RSS of 4 GiB.

    python benchmarks/pipeline_scale.py --json outputs/pipeline_scale.json
    python benchmarks/pipeline_scale.py --series 3000 --reference csv     # a quick look
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale import GIB, M5_SERIES, MIB, SHAPES, machine, make_panel  # noqa: E402

PIPELINE = """\
name: m5-shaped
data: {{path: {path}, freq: D, max_staleness: null}}
forecast: {{horizon: {horizon}, season_length: 7}}
model: {{name: lstm, params: {{max_epochs: 1, max_steps: {steps}, random_state: 0}}}}
baselines: [snaive]
backtest: {{n_windows: 1}}
gate: {{enabled: false}}
outputs: {{dir: {outputs}, format: parquet, baseline_forecasts: all}}
tracking: {{enabled: false}}
"""
LIMIT_GIB = 4.0
SERIES_PER_FILE = 2_000


def write_data(folder: Path, n_series: int, layout: str, seed: int) -> tuple[Path, int]:
    """The panel as a parquet file, a folder of parquet files, or a CSV file; its path and row count."""
    frame = make_panel(n_series, "m5", seed)
    rows = len(frame)
    if layout == "csv":
        path = folder / "m5.csv"
        frame.to_csv(path, index=False)
    elif layout == "file":
        path = folder / "m5.parquet"
        frame.to_parquet(path, index=False)
    else:
        path = folder / "m5"
        path.mkdir()
        codes = frame["unique_id"].cat.codes.to_numpy().astype(np.int64)  # series number
        part = codes // SERIES_PER_FILE
        for number, (_, rows_of_part) in enumerate(frame.groupby(part, sort=True)):
            rows_of_part.to_parquet(path / f"part-{number:04d}.parquet", index=False)
    return path, rows


def run_pipeline(folder: Path, data: Path, name: str, steps: int, timeout: float) -> dict:
    """``tsforecast run`` in a child process: exit status, wall time, peak RSS, step times."""
    config = folder / f"{name}.yaml"
    outputs = folder / f"outputs-{name}"
    config.write_text(PIPELINE.format(path=data, horizon=SHAPES["m5"].horizon, steps=steps, outputs=outputs))
    as_of = SHAPES["m5"].end
    command = [sys.executable, "-m", "tsforecast.cli", "run", str(config), "--as-of", as_of]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout:g} s"}
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # kB: the largest child so far
    row = {"exit_status": done.returncode, "seconds": seconds}
    if peak <= before:
        row["error"] = "a child measured earlier had the larger peak: run one case per invocation"
    row["peak_rss_mib"] = peak * 1024 / MIB
    if done.returncode != 0:
        row["error"] = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        return row
    run = json.loads((outputs / as_of / "run.json").read_text())
    manifest = json.loads((outputs / as_of / "manifest.json").read_text())
    row["step_seconds"] = run["step_seconds"]
    row["n_series"], row["n_rows"] = manifest["data"]["n_series"], manifest["data"]["n_rows"]
    return row


def build_parser() -> argparse.ArgumentParser:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--series", type=int, default=M5_SERIES, help="series in the panel (default M5's)")
    parser.add_argument("--layout", choices=("file", "folder"), default="folder", help="parquet layout")
    parser.add_argument("--reference", choices=("none", "csv"), default="none", help="also run from a CSV")
    parser.add_argument("--steps", type=int, default=30, help="max_steps of each LSTM fit (default 30)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic panel")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per pipeline run")
    parser.add_argument("--tmp-dir", type=Path, default=None, help="where the data and outputs go")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    cases = [args.layout] + (["csv"] if args.reference == "csv" else [])
    rows = []
    with tempfile.TemporaryDirectory(dir=args.tmp_dir) as tmp:
        for layout in cases:
            folder = Path(tmp) / layout
            folder.mkdir()
            print(f"{layout}: writing {args.series:,} M5-shaped series ...", file=sys.stderr, flush=True)
            data, n_rows = write_data(folder, args.series, layout, args.seed)
            print(f"{layout}: tsforecast run ...", file=sys.stderr, flush=True)
            # Each run in its own interpreter: ru_maxrss of RUSAGE_CHILDREN is a maximum over children.
            child = [sys.executable, __file__, "--one", layout, str(data), str(folder), str(args.steps)]
            child.append(str(args.timeout))
            done = subprocess.run(child, capture_output=True, text=True, timeout=args.timeout + 60)
            lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
            row = json.loads(lines[-1]) if lines else {"error": done.stderr.strip()[-500:]}
            rows.append({"source": layout, "raw_mib": n_rows * 4 / MIB, **row})
    ok = all("error" not in r for r in rows)
    parquet = rows[0]
    acceptance = {
        "parquet_peak_rss_gib": parquet.get("peak_rss_mib", float("nan")) * MIB / GIB,
        "limit_gib": LIMIT_GIB,
        "within_limit": ok and parquet["peak_rss_mib"] * MIB / GIB <= LIMIT_GIB,
    }
    head = f"{'source':<8} {'series':>8} {'rows':>12} {'raw MiB':>8} {'run s':>7} {'peak RSS MiB':>13}"
    print(f"{head}  steps (s)")
    for r in rows:
        if "error" in r:
            print(f"{r['source']:<8} failed: {r['error']}")
            continue
        steps = ", ".join(f"{k} {v:.0f}" for k, v in r["step_seconds"].items() if v >= 1)
        print(
            f"{r['source']:<8} {r['n_series']:>8,} {r['n_rows']:>12,} {r['raw_mib']:>8.0f} "
            f"{r['seconds']:>7.0f} {r['peak_rss_mib']:>13,.0f}  {steps}"
        )
    verdict = "within" if acceptance["within_limit"] else "NOT within"
    print(f"parquet: peak RSS {acceptance['parquet_peak_rss_gib']:.2f} GiB, {verdict} {LIMIT_GIB:g} GiB")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
        payload = {"settings": settings, "machine": machine(), "cases": rows, "acceptance": acceptance}
        args.json.write_text(json.dumps(payload, indent=2, default=str))
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--one":
        _, _, name, data, folder, steps, timeout = sys.argv
        print(json.dumps(run_pipeline(Path(folder), Path(data), name, int(steps), float(timeout))))
        sys.exit(0)
    sys.exit(main())
