"""Scale on one machine: training and prediction cost of ``LSTMForecaster`` as the number of series grows.

Data: synthetic panels from :func:`make_panel` (long layout: ``unique_id`` categorical strings
``s0000001``..., ``ds``, ``y`` float32), vectorised with numpy:

- ``hourly``: thirds of seasonal series (daily 24 h and weekly 168 h cycles, noise), trending series
  (the same plus a linear trend of random slope) and intermittent counts (zero-inflated Poisson, >= 0);
  lengths uniform in 100..2,000; every series ends at 2024-12-31 23:00; levels 10..1,000.
- ``m5``: M5-shaped: daily intermittent counts, all 1,941 steps long from 2011-01-29 (30,490 series in
  the real M5).
- ``short``: as ``hourly``, lengths 100..300 (the 1,000,000-series predict-only case).

The counts hold zeros, so the default ``scaler="auto"`` resolves to "level" on every shape (the JSON
records it as ``train.scaler``).

Protocol: every case runs in a fresh process (``--child``), so that its memory figures are its own.
The child builds the panel (or, with ``--parquet``, passes the path of a parquet file the parent had
written once, which ``fit`` and ``predict`` read in record batches: then the absolute peak counts),
then fits ``LSTMForecaster(horizon=H, max_epochs=1, max_steps=--steps, random_state=0)`` (H = 24
hourly, 28 M5) and calls ``predict()`` for every series. Each call is measured alone: its wall time;
its *added memory*, the peak resident memory during the call minus the resident memory just before it
(the peak is reset before the call: ``tsforecast.memory``, Linux ``VmHWM``); and the absolute peak.
Training throughput is forecast targets in the loss per second of the training loop
(``history_["targets"].sum() / history_["seconds"].sum()``, data preparation excluded); the fit's wall
time includes it. Prediction: series per second. ``--m5-epoch`` also times one full epoch on the M5
panel (``max_steps=None``), then the time a checkpoint saves (:func:`resume_case`): the same epoch
with a checkpoint every fifth of it, killed with SIGKILL after the third, rerun to the end. A watchdog
in the child stops it above ``--max-rss-gb`` of resident memory and the case is reported as "over N
GB", as is any failure or timeout; the other cases still run.

``--sizes`` lists the cases: ``N`` is an ``hourly`` panel of N series (30,490: ``m5``), ``N:shape``
any shape. ``--full`` adds the predict-only case: fit on 1,000 ``short`` series, ``save`` the model;
then, in a fresh process, ``tsforecast.load`` it, read ``--full-size`` (1,000,000) ``short`` series
from parquet and ``predict(y=panel)``.

The table has one row per case; ``--json PATH`` writes ``{"settings", "machine", "cases",
"acceptance"}``, each case with its panel (``n_series``, ``total_steps``, ``raw_mib``), ``fit`` and
``predict`` (``seconds``, ``added_mib``, ``peak_rss_mib``; ``series_per_second``), ``train`` (steps,
targets, ``targets_per_second``), ``throughput_ratio``, ``memory_ok``, or ``error`` for a failed case.
Exit status 1 when a case failed.

Acceptance (issue "Scale on one machine"): the added memory of fit and of predict <= 2 x the raw
float32 size of the panel (total steps x 4 bytes) + 1.5 GiB (from ``--parquet``, the absolute peak,
and for the M5 shape 4 GiB); training throughput at 100,000 series
>= 0.8 x that at the smallest N; the 1,000,000-series prediction's peak resident memory < 8 GiB.

    python benchmarks/scale.py --json outputs/scale.json
    python benchmarks/scale.py --full --parquet --m5-epoch --json outputs/scale_full.json
    python benchmarks/scale.py --sizes 1000,2000 --steps 10        # a quick look
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from tsforecast.memory import current_rss_bytes, peak_rss_bytes, reset_peak_rss

MIB, GIB = 2**20, 2**30
M5_SERIES, FULL_TRAIN_SERIES = 30_490, 1_000
KINDS = ("seasonal", "trending", "intermittent")  # series i has kind i % 3 (M5: all intermittent)
SEASONAL, TRENDING, INTERMITTENT = range(3)


@dataclass(frozen=True)
class Shape:
    freq: str
    end: str  # the last time stamp of every series
    lengths: tuple[int, int]  # inclusive bounds of the series' lengths
    periods: tuple[float, float]  # the two seasonal cycles, in steps
    counts_only: bool  # every series intermittent
    horizon: int


SHAPES = {
    "hourly": Shape("h", "2024-12-31 23:00", (100, 2_000), (24, 168), False, 24),
    "m5": Shape("D", "2016-05-22", (1_941, 1_941), (7, 365.25), True, 28),  # 2011-01-29 + 1,940 days
    "short": Shape("h", "2024-12-31 23:00", (100, 300), (24, 168), False, 24),
}


def series_kinds(n_series: int, shape: str) -> np.ndarray:
    """Each series' kind, an index into ``KINDS``: thirds in turn (``m5``: all intermittent)."""
    if SHAPES[shape].counts_only:
        return np.full(n_series, INTERMITTENT, dtype=np.int8)
    return (np.arange(n_series) % len(KINDS)).astype(np.int8)


def make_panel(n_series: int, shape: str = "hourly", seed: int = 0) -> pd.DataFrame:
    """A synthetic long panel (``unique_id``, ``ds``, ``y``) of ``n_series`` series of ``shape``.

    Built as whole arrays (no per-series loop): row r of series i sits ``back[r]`` steps before the
    common end, every per-series parameter is gathered to the rows with ``param[series]``.
    """
    if shape not in SHAPES:
        raise ValueError(f"shape must be one of {sorted(SHAPES)}; got {shape!r}")
    if n_series < 1:
        raise ValueError(f"n_series must be >= 1; got {n_series}")
    spec, rng, f32 = SHAPES[shape], np.random.default_rng(seed), np.float32
    lengths = rng.integers(spec.lengths[0], spec.lengths[1] + 1, n_series)  # (n_series,)
    total = int(lengths.sum())
    index = np.int32 if total < 2**31 else np.int64
    series = np.repeat(np.arange(n_series, dtype=index), lengths)  # (total,) the row's series
    back = np.repeat((np.cumsum(lengths) - 1).astype(index), lengths)
    back -= np.arange(total, dtype=index)  # (total,) steps before the common end: len - 1 .. 0

    step = pd.Timedelta(1, unit=spec.freq).value  # ns
    ds = back.astype(np.int64)
    ds *= -step
    ds += pd.Timestamp(spec.end).as_unit("ns").value
    ds = ds.view("datetime64[ns]")

    # Seasonal profile around 1 (>= 0.55): the cycles follow the shared calendar, each series its phase.
    clock = back.astype(f32)
    clock *= -1
    base = np.ones(total, dtype=f32)
    for period, (low, high) in zip(spec.periods, ((0.1, 0.3), (0.05, 0.15)), strict=True):
        amplitude, phase = rng.uniform(low, high, n_series).astype(f32), rng.uniform(0, 2 * np.pi, n_series)
        wave = clock * f32(2 * np.pi / period)
        wave += phase.astype(f32)[series]
        np.sin(wave, out=wave)
        wave *= amplitude[series]
        base += wave
    del clock, wave

    kinds = series_kinds(n_series, shape)
    y = rng.standard_normal(total, dtype=f32)
    y *= rng.uniform(0.01, 0.05, n_series).astype(f32)[series]
    y += base
    slope = np.where(kinds == TRENDING, rng.uniform(-0.25, 1.0, n_series), 0).astype(f32)
    progress = back.astype(f32)
    progress /= np.maximum(lengths - 1, 1).astype(f32)[series]  # 1 at the start .. 0 at the end
    progress -= 1
    progress *= -slope[series]  # the trend: 0 at the start, slope at the end (in levels)
    y += progress
    del progress
    np.maximum(y, 0.01, out=y)  # positive, so that a log scaler applies
    y *= np.exp(rng.uniform(np.log(10), np.log(1_000), n_series)).astype(f32)[series]

    rate = np.exp(rng.uniform(np.log(0.05 if spec.counts_only else 0.2), np.log(20), n_series))
    zeros = rng.uniform(0.1, 0.7, n_series) if spec.counts_only else rng.uniform(0.2, 0.8, n_series)
    rows = slice(None) if spec.counts_only else np.flatnonzero(kinds[series] == INTERMITTENT)
    owner = series[rows]
    counts = rng.poisson(base[rows] * rate[owner])  # zero-inflated Poisson with the seasonal profile
    counts[rng.random(counts.size, dtype=f32) < zeros[owner]] = 0
    y[rows] = counts
    del base, owner, counts

    ids = np.char.add("s", np.char.zfill((np.arange(n_series) + 1).astype(str), 7))
    unique_id = pd.Categorical.from_codes(series, categories=pd.Index(ids, dtype="str"))
    return pd.DataFrame({"unique_id": unique_id, "ds": ds, "y": y}, copy=False)


# -- the child: one case in a fresh process ----------------------------------------------------------------
def _watchdog(limit_gb: float) -> None:
    """Stop this process, with a JSON error line, once its resident memory passes ``limit_gb``."""

    def watch():
        while True:
            rss = current_rss_bytes()
            if rss > limit_gb * GIB:
                line = {"error": f"over {limit_gb:g} GB", "rss_mib": rss / MIB}
                print(json.dumps(line), flush=True)
                os._exit(3)
            time.sleep(0.2)

    threading.Thread(target=watch, daemon=True).start()


def measured(call) -> tuple:
    """``call()``'s result and its cost: wall seconds, added and absolute peak resident memory (MiB)."""
    gc.collect()
    before = current_rss_bytes()
    reset = reset_peak_rss()
    started = time.perf_counter()
    result = call()
    seconds = time.perf_counter() - started
    peak = peak_rss_bytes()
    cost = {
        "seconds": seconds,
        "rss_before_mib": before / MIB,
        "added_mib": (peak - before) / MIB,
        "peak_rss_mib": peak / MIB,
        "peak_reset": reset,  # False: the peak is the process's lifetime peak (not Linux)
    }
    return result, cost


def run_child(spec: dict) -> dict:
    """One case: build or read the panel, then fit and predict (or load and predict), measured."""
    _watchdog(spec["max_rss_gb"])
    started = time.perf_counter()
    if spec["mode"] == "write":
        frame = make_panel(spec["n_series"], spec["shape"], spec["seed"])
        frame.to_parquet(spec["parquet"])
        return {"seconds": time.perf_counter() - started, "bytes": Path(spec["parquet"]).stat().st_size}
    import torch

    import tsforecast

    if spec["threads"]:
        torch.set_num_threads(spec["threads"])
    if spec["parquet"]:  # the path itself: fit and predict read it in record batches (pyarrow)
        import pyarrow.parquet as pq

        frame = spec["parquet"]
        total = pq.ParquetFile(frame).metadata.num_rows
    else:
        frame = make_panel(spec["n_series"], spec["shape"], spec["seed"])
        total = len(frame)
    row = {
        "n_series": spec["n_series"],
        "total_steps": total,
        "raw_mib": total * 4 / MIB,
        "data_seconds": time.perf_counter() - started,
        "data_source": "parquet" if spec["parquet"] else "make_panel",
        "rss_with_data_mib": current_rss_bytes() / MIB,
        "threads": torch.get_num_threads(),
    }
    horizon = SHAPES[spec["shape"]].horizon
    if spec["mode"] == "epoch":  # one full epoch with checkpoints (the parent may kill it, then rerun it)
        every = spec["checkpoint_every"]
        model = tsforecast.LSTMForecaster(
            horizon=horizon, max_epochs=1, random_state=0, checkpoint_dir=spec["checkpoint_dir"],
            checkpoint_every=every,
        )  # fmt: skip
        _, cost = measured(lambda: model.fit(frame))
        return {**row, "fit": cost, "steps": int(model.history_["steps"].sum())}
    if spec["mode"] == "predict":
        model = tsforecast.load(spec["model"])
        forecast, row["predict"] = measured(lambda: model.predict(y=frame))
    else:
        settings = dict(horizon=horizon, max_epochs=1, random_state=0)
        model = tsforecast.LSTMForecaster(**settings, max_steps=spec["steps"])
        _, row["fit"] = measured(lambda: model.fit(frame))
        history = model.history_
        row["train"] = {
            "steps": int(history["steps"].sum()),
            "targets": int(history["targets"].sum()),
            "loop_seconds": float(history["seconds"].sum()),
            "targets_per_second": float(history["targets"].sum() / history["seconds"].sum()),
            "stopped_by": history["stopped_by"].iloc[-1],
            "history_peak_memory_mib": float(history["peak_memory_mb"].max()),
            "scaler": model.codec_.scaler.kind,
        }
        # predict() right after fit returns the fit's own forecast; drop it to time a real pass.
        model.__dict__.pop("_training_forecast", None)
        forecast, row["predict"] = measured(model.predict)
        if spec.get("save"):
            model.save(spec["save"])
    row["predict"]["series_per_second"] = row["n_series"] / row["predict"]["seconds"]
    row["predict"]["forecast_rows"] = len(forecast)
    if spec.get("m5_epoch"):
        del model, forecast
        epoch = tsforecast.LSTMForecaster(**settings, max_steps=None)
        _, cost = measured(lambda: epoch.fit(frame))
        row["m5_epoch"] = {
            "fit_seconds": cost["seconds"],
            "loop_seconds": float(epoch.history_["seconds"].sum()),
            "steps": int(epoch.history_["steps"].sum()),
            "added_mib": cost["added_mib"],
        }
    return row


# -- the parent: cases, subprocesses, table ----------------------------------------------------------------
def parse_sizes(text: str) -> list:
    """``"1000,30490,500:short"`` -> ``[(1000, "hourly"), (30490, "m5"), (500, "short")]``."""
    cases = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        number, _, shape = item.partition(":")
        n = int(number.replace("_", ""))
        shape = shape or ("m5" if n == M5_SERIES else "hourly")
        if shape not in SHAPES or n < 1:
            raise argparse.ArgumentTypeError(f"bad case {item!r}: N >= 1, shape one of {sorted(SHAPES)}")
        cases.append((n, shape))
    if not cases:
        raise argparse.ArgumentTypeError("--sizes lists no case")
    return cases


def spawn(spec: dict, timeout: float) -> dict:
    """Run ``spec`` in a fresh interpreter; its JSON line, or ``{"error": why}``."""
    command = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout:g} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    result = json.loads(lines[-1]) if lines else {}
    if done.returncode != 0 and "error" not in result:
        tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        code = done.returncode
        status = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
        result = {"error": f"{status}: {tail}"}
    elif not lines:
        result = {"error": "the child printed no result"}
    return result


def run_case(name: str, spec: dict, args) -> dict:
    print(f"{name} ...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    if spec["parquet"]:
        written = spawn({**spec, "mode": "write"}, args.timeout)
        if "error" in written:
            return {"case": name, "n_series": spec["n_series"], "shape": spec["shape"], **written}
        spec = {**spec, "parquet_seconds": written["seconds"], "parquet_bytes": written["bytes"]}
    row = {"case": name, "shape": spec["shape"], **spawn(spec, args.timeout)}
    row.setdefault("n_series", spec["n_series"])
    for key in ("parquet_seconds", "parquet_bytes"):
        if key in spec:
            row[key] = spec[key]
    if spec.get("m5_epoch") and "m5_epoch" in row:
        row["m5_resume"] = resume_case(spec, row["m5_epoch"]["fit_seconds"], args)
    if spec["parquet"]:
        Path(spec["parquet"]).unlink(missing_ok=True)
    outcome = row.get("error", "done")
    print(f"{name}: {outcome} ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
    return row


def resume_case(spec: dict, epoch_seconds: float, args, kill_after: int = 3) -> dict:
    """The time a checkpoint saves: one full epoch with checkpoints, killed, then rerun to the end.

    The first run writes a checkpoint every fifth of ``epoch_seconds`` (the uninterrupted epoch's fit
    time, measured just before in the same run) and is killed with SIGKILL right after its
    ``kill_after``-th checkpoint; the rerun resumes from it. Saved: the uninterrupted fit's seconds
    minus the rerun's.
    """
    import signal

    folder = Path(spec["workdir"]) / "m5_checkpoints"
    every = epoch_seconds / 5 / 60  # minutes
    epoch = {**spec, "mode": "epoch", "checkpoint_dir": str(folder), "checkpoint_every": every}
    command = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(epoch)]
    started, writes, last = time.perf_counter(), 0, None
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = folder / "checkpoint.pt"
    while child.poll() is None and writes < kill_after:
        time.sleep(0.5)
        stamp = checkpoint.stat().st_mtime_ns if checkpoint.exists() else None
        if stamp is not None and stamp != last:
            writes, last = writes + 1, stamp
    if child.poll() is not None:
        return {"error": f"the checkpointed epoch ended after {writes} checkpoint(s), before the kill"}
    child.send_signal(signal.SIGKILL)
    child.wait()
    killed_after = time.perf_counter() - started
    resumed = spawn(epoch, args.timeout)
    if "error" in resumed:
        return resumed
    return {
        "checkpoints_before_kill": writes,
        "killed_after_seconds": killed_after,
        "resumed_fit_seconds": resumed["fit"]["seconds"],
        "uninterrupted_fit_seconds": epoch_seconds,
        "saved_seconds": epoch_seconds - resumed["fit"]["seconds"],
    }


def judge(rows: list) -> dict:
    """Add each row's memory limit and throughput ratio; the acceptance verdicts (a failed case fails)."""
    sized = [r for r in rows if r.get("from_sizes")]
    trained = [r for r in sized if "train" in r]
    smallest = min(trained, key=lambda r: r["n_series"], default=None)  # the smallest N that ran
    for r in rows:
        if "error" in r:
            continue
        limit = 2 * r["raw_mib"] + 1.5 * GIB / MIB
        # From parquet the caller holds no frame: the absolute peak counts (the M5 shape: 4 GiB).
        measure = "peak_rss_mib" if r.get("data_source") == "parquet" else "added_mib"
        if measure == "peak_rss_mib" and r.get("shape") == "m5":
            limit = 4 * GIB / MIB
        used = [r[k][measure] for k in ("fit", "predict") if k in r]
        r["memory_limit_mib"], r["memory_ok"] = limit, max(used) <= limit
        if r.get("from_sizes") and "train" in r:
            r["throughput_ratio"] = r["train"]["targets_per_second"] / smallest["train"]["targets_per_second"]
    # The predict-only case has its own bar (peak < 8 GiB, below), not the rule for fit and predict.
    sized_ok = all(r.get("memory_ok") for r in rows if not r.get("predict_only"))
    acceptance = {"added memory <= 2 x raw + 1.5 GiB, every case": sized_ok}
    at_100k = [r for r in sized if r["n_series"] == 100_000]
    if at_100k:
        ratios = [r.get("throughput_ratio", 0.0) for r in at_100k]
        acceptance["throughput at 100,000 >= 0.8 x smallest N"] = min(ratios) >= 0.8
    for r in rows:
        if r.get("predict_only"):
            peak = r["predict"]["peak_rss_mib"] if "predict" in r else float("inf")
            acceptance[f"{r['case']}: predict peak RSS < 8 GiB"] = peak < 8 * 1024
    return acceptance


def _cell(value, width: int, spec: str) -> str:
    return "-".rjust(width) if value is None else format(value, f">{width}{spec}")


def print_table(rows: list, acceptance: dict) -> None:
    print(
        f"{'N':>9} {'shape':<7} {'steps':>11} {'raw MiB':>8} {'targets/s':>10} {'ratio':>6} {'fit s':>7} "
        f"{'fit +MiB':>9} {'fit peak':>9} {'series/s':>9} {'pred +MiB':>9} {'pred peak':>9} {'mem ok':>6}"
    )
    for r in rows:
        head = f"{r['n_series']:>9,} {r['shape']:<7}"
        if "error" in r:
            print(f"{head} failed: {r['error']}", *([f"({r['note']})"] if "note" in r else []))
            continue
        fit, train, pred = r.get("fit", {}), r.get("train", {}), r["predict"]
        cells = [
            _cell(r["total_steps"], 11, ","),
            _cell(r["raw_mib"], 8, ".0f"),
            _cell(train.get("targets_per_second"), 10, ",.0f"),
            _cell(r.get("throughput_ratio"), 6, ".2f"),
            _cell(fit.get("seconds"), 7, ".1f"),
            _cell(fit.get("added_mib"), 9, ",.0f"),
            _cell(fit.get("peak_rss_mib"), 9, ",.0f"),
            _cell(pred["series_per_second"], 9, ",.0f"),
            _cell(pred["added_mib"], 9, ",.0f"),
            _cell(pred["peak_rss_mib"], 9, ",.0f"),
            f"{'yes' if r['memory_ok'] else 'NO':>6}",
            *([f"({r['note']})"] if "note" in r else []),
        ]
        print(head, *cells)
        if "m5_epoch" in r:
            epoch = r["m5_epoch"]
            print(f"{'':>9} one full M5 epoch: {epoch['fit_seconds']:.0f} s fit, {epoch['steps']:,} steps")
        if "error" in r.get("m5_resume", {}):
            print(f"{'':>9} resume after a kill: failed: {r['m5_resume']['error']}")
        elif "m5_resume" in r:
            resume = r["m5_resume"]
            print(
                f"{'':>9} killed after {resume['checkpoints_before_kill']} checkpoints "
                f"({resume['killed_after_seconds']:.0f} s), rerun resumed in "
                f"{resume['resumed_fit_seconds']:.0f} s: {resume['saved_seconds']:.0f} s saved"
            )
    print("targets/s: forecast targets per second of the training loop; ratio: against the smallest N;")
    print("+MiB: peak resident memory during the call minus that just before it; peak: absolute peak.")
    print(", ".join(f"{k}: {'pass' if v else 'FAIL'}" for k, v in acceptance.items()))


def machine() -> dict:
    try:
        torch_version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch_version = None
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 0
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "memory_gib": pages / GIB,
        "torch": torch_version,
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes",
        type=parse_sizes,
        default="1000,10000,30490,100000",
        help="comma-separated cases: N (hourly; 30490: m5) or N:shape (default: %(default)s)",
    )
    parser.add_argument("--steps", type=int, default=30, help="max_steps of each fit (default 30)")
    parser.add_argument("--full", action="store_true", help="add the predict-only case of --full-size series")
    parser.add_argument("--full-size", type=int, default=1_000_000, help="series of the --full case")
    parser.add_argument("--parquet", action="store_true", help="children read the panels from parquet")
    parser.add_argument("--m5-epoch", action="store_true", help="also time one full epoch on M5 panels")
    parser.add_argument("--max-rss-gb", type=float, default=16.0, help="stop a child above this (GiB)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per child process")
    parser.add_argument("--threads", type=int, default=None, help="torch threads in the children")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic panels")
    parser.add_argument("--tmp-dir", type=Path, default=None, help="where parquet and model files go")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.child:
        print(json.dumps(run_child(json.loads(args.child)), default=float), flush=True)
        return 0
    common = {"steps": args.steps, "seed": args.seed, "threads": args.threads, "max_rss_gb": args.max_rss_gb}
    rows = []
    with tempfile.TemporaryDirectory(prefix="tsforecast-scale-", dir=args.tmp_dir) as tmp:
        workdir = Path(tmp)
        for n, shape in args.sizes:
            parquet = str(workdir / f"{shape}_{n}.parquet") if args.parquet else None
            spec = {**common, "mode": "fit", "n_series": n, "shape": shape, "parquet": parquet}
            spec["workdir"] = tmp
            spec["m5_epoch"] = args.m5_epoch and shape == "m5"
            rows.append({**run_case(f"{n:,} {shape}", spec, args), "from_sizes": True})
        if args.full:
            model = str(workdir / "short_model")
            parquet = str(workdir / f"short_{FULL_TRAIN_SERIES}.parquet") if args.parquet else None
            spec = {**common, "mode": "fit", "n_series": FULL_TRAIN_SERIES, "shape": "short"}
            row = run_case("model for --full", {**spec, "parquet": parquet, "save": model}, args)
            rows.append({**row, "model_for": "full", "note": "the model of the predict-only case"})
            if "error" not in row:
                parquet = str(workdir / f"short_{args.full_size}.parquet")  # always from parquet
                spec = {**spec, "mode": "predict", "n_series": args.full_size, "parquet": parquet}
                row = run_case(f"{args.full_size:,} short", {**spec, "model": model}, args)
                rows.append({**row, "predict_only": True, "note": "predict only, from parquet"})
    acceptance = judge(rows)
    print_table(rows, acceptance)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        settings = {k: v for k, v in vars(args).items() if k not in ("child", "json", "tmp_dir")}
        settings["sizes"] = [f"{n}:{shape}" for n, shape in args.sizes]
        payload = {"settings": settings, "machine": machine(), "cases": rows, "acceptance": acceptance}
        args.json.write_text(json.dumps(payload, indent=2, default=float))
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
