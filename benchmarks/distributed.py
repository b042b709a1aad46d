"""Beyond one machine: the cost of data-parallel training, and Spark scoring against one process.

Training (synthetic hourly panel of ``--series`` series from ``benchmarks/scale.py``'s generator, the
default ``LSTMForecaster(horizon=24)`` for ``--steps`` optimizer steps, each case in fresh processes):

- ``1 process, 2 threads``: the machine's reference, global batch ``2 x --batch``;
- ``1 process, 1 thread``: batch ``--batch``: the work one process of the pair does per step, alone;
- ``2 independent processes, 1 thread each``: two such fits at once, no process group: the same
  work and the same contention for the two cores and the memory as the pair, without DDP;
- ``2 processes (gloo), 1 thread each``: batch ``--batch`` each (global ``2 x --batch``), started with
  ``torch.multiprocessing`` in one process group (:mod:`tsforecast.nn.distributed`).

Reported: training targets per second (``history_``: targets / loop seconds; for the pair, the
targets of both processes) and seconds per optimizer step. The DDP overhead is the pair's seconds per
step over the independent processes' minus 1: the same local work and the same sharing of the
machine, plus what DDP adds (the gradient all-reduce, the step's reductions, the lined-up batches).
The pair against the lone 1-thread process is reported too: that gap adds the two processes'
contention for the machine. On 2 CPU cores two processes cannot do more than one process with two
threads; what matters is that DDP's own overhead stays small (acceptance: below 15%) and that the
results match: the pair's final training loss against the 2-thread process's, which trains on the
same global batch size (the batches group series differently, so they agree within a few percent,
not exactly; ``tests/test_distributed.py`` checks the exact case).

Spark (``--spark-series``, default 100,000 ``short`` series from parquet): scoring throughput in
series per second of :func:`tsforecast.spark.forecast` on a ``local[2]`` session against
``model.predict`` in one process on the same parquet data (the model: fitted on 1,000 series).
``--no-spark`` leaves it out; it needs pyspark and Java.

    python benchmarks/distributed.py --json outputs/distributed.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale import make_panel  # noqa: E402  the same synthetic panels as the scale benchmark


def _fit(n_series: int, batch_size: int, steps: int, threads: int, seed: int) -> dict:
    import torch

    import tsforecast

    torch.set_num_threads(threads)
    frame = make_panel(n_series, "hourly", seed)
    model = tsforecast.LSTMForecaster(
        horizon=24, batch_size=batch_size, max_epochs=1000, max_steps=steps, random_state=0, device="cpu"
    )
    model.fit(frame)
    history = model.history_
    return {
        "steps": int(history["steps"].sum()),
        "targets": int(history["targets"].sum()),
        "loop_seconds": float(history["seconds"].sum()),
        "final_train_loss": float(history["train_loss"].iloc[-1]),
    }


def _rank(rank: int, port: int, args: dict, out: str) -> None:
    import torch.distributed as dist

    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2, timeout=timedelta(seconds=600)
    )
    try:
        result = _fit(args["series"], args["batch"], args["steps"], 1, args["seed"])
        if rank == 0:
            Path(out).write_text(json.dumps(result))
    finally:
        dist.destroy_process_group()


def _child(spec: dict) -> dict:
    """One training case in this (fresh) process."""
    if spec["processes"] == 1:
        return _fit(spec["series"], spec["batch"], spec["steps"], spec["threads"], spec["seed"])
    if spec.get("independent"):  # two single-process fits at once
        from concurrent.futures import ProcessPoolExecutor

        one = {**spec, "processes": 1, "independent": False}
        with ProcessPoolExecutor(2) as pool:
            results = list(pool.map(_child, [one, one]))
        return {**results[0], "seconds_per_step_other": results[1]["loop_seconds"] / results[1]["steps"]}
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with tempfile.TemporaryDirectory() as folder:
        out = str(Path(folder) / "rank0.json")
        mp.spawn(_rank, args=(port, spec, out), nprocs=2, join=True)
        return json.loads(Path(out).read_text())


def _spawn(spec: dict) -> dict:
    import subprocess

    command = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)]
    done = subprocess.run(command, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        return {"error": (done.stderr.strip().splitlines() or ["(no output)"])[-1]}
    return json.loads(lines[-1])


def training(args) -> list:
    base = {"series": args.series, "steps": args.steps, "seed": args.seed}
    cases = [
        ("1 process, 2 threads", {"processes": 1, "threads": 2, "batch": 2 * args.batch}),
        ("1 process, 1 thread", {"processes": 1, "threads": 1, "batch": args.batch}),
        (
            "2 independent processes, 1 thread each",
            {"processes": 2, "threads": 1, "batch": args.batch, "independent": True},
        ),
        ("2 processes (gloo), 1 thread each", {"processes": 2, "threads": 1, "batch": args.batch}),
    ]
    rows = []
    for name, spec in cases:
        print(f"{name} ...", file=sys.stderr, flush=True)
        result = _spawn({**base, **spec})
        if "error" not in result:
            processes = 2 if spec.get("independent") else 1  # the pair's targets already count both
            result["targets_per_second"] = processes * result["targets"] / result["loop_seconds"]
            result["seconds_per_step"] = result["loop_seconds"] / result["steps"]
        rows.append({"case": name, **spec, **result})
    return rows


def spark_scoring(args, folder: Path) -> dict:
    """Series per second of Spark local[2] and of one process on the same parquet panel."""
    import tsforecast
    from tsforecast.spark import forecast

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    model = tsforecast.LSTMForecaster(horizon=24, max_epochs=1, max_steps=20, random_state=0, device="cpu")
    model.fit(make_panel(1_000, "short", args.seed))
    path = folder / "panel.parquet"
    # Spark reads parquet time stamps in microseconds at the finest (pandas writes nanoseconds).
    panel = make_panel(args.spark_series, "short", args.seed + 1)
    panel.to_parquet(path, index=False, coerce_timestamps="us")
    del panel
    started = time.perf_counter()
    single = model.predict(y=path)
    single_seconds = time.perf_counter() - started
    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.memory", "4g")
        .getOrCreate()
    )
    try:
        started = time.perf_counter()
        result = forecast(model, str(path)).toPandas()
        spark_seconds = time.perf_counter() - started
    finally:
        spark.stop()
    merged = single.merge(result, on=["unique_id", "ds"], suffixes=("", "_spark"))
    return {
        "series": args.spark_series,
        "single_process_seconds": single_seconds,
        "spark_seconds": spark_seconds,
        "single_process_series_per_second": args.spark_series / single_seconds,
        "spark_series_per_second": args.spark_series / spark_seconds,
        "rows_matched": len(merged),
        "max_abs_difference": float((merged["y_pred"] - merged["y_pred_spark"]).abs().max()),
    }


def judge(rows: list) -> dict:
    by = {r["case"]: r for r in rows}
    names = ("1 process, 1 thread", "2 independent processes, 1 thread each")
    names += ("2 processes (gloo), 1 thread each", "1 process, 2 threads")
    one, both, pair, machine = (by.get(k, {}) for k in names)
    if any("error" in r or not r for r in (one, both, pair, machine)):
        return {"every training case ran": False}
    shared = (both["seconds_per_step"] + both["seconds_per_step_other"]) / 2
    overhead = pair["seconds_per_step"] / shared - 1
    return {
        "ddp_overhead": overhead,
        "ddp overhead below 15%": overhead < 0.15,
        "pair_vs_lone_process": pair["seconds_per_step"] / one["seconds_per_step"] - 1,
        "final loss gap": abs(pair["final_train_loss"] / machine["final_train_loss"] - 1),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--series", type=int, default=2_000, help="series of the training panel")
    parser.add_argument("--steps", type=int, default=60, help="optimizer steps of each training case")
    parser.add_argument("--batch", type=int, default=256, help="batch size of one process of the pair")
    parser.add_argument("--spark-series", type=int, default=100_000, help="series Spark scores")
    parser.add_argument("--no-spark", action="store_true", help="leave the Spark case out")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(json.loads(args.child))), flush=True)
        return 0
    rows = training(args)
    verdict = judge(rows)
    print(f"{'case':<36} {'targets/s':>11} {'s/step':>8} {'final loss':>10}")
    for r in rows:
        if "error" in r:
            print(f"{r['case']:<36} failed: {r['error']}")
            continue
        print(
            f"{r['case']:<36} {r['targets_per_second']:>11,.0f} {r['seconds_per_step']:>8.4f} "
            f"{r['final_train_loss']:>10.4f}"
        )
    if "ddp_overhead" in verdict:
        print(f"DDP overhead per step: {verdict['ddp_overhead']:+.1%} against two independent processes "
              f"(bar: below 15%), {verdict['pair_vs_lone_process']:+.1%} against one process alone; final "
              f"loss of the pair vs the 2-thread process: {verdict['final loss gap']:.1%} apart")  # fmt: skip
    spark = None
    if not args.no_spark:
        with tempfile.TemporaryDirectory(prefix="tsforecast-distributed-") as folder:
            spark = spark_scoring(args, Path(folder))
        print(
            f"scoring {spark['series']:,} series: Spark local[2] "
            f"{spark['spark_series_per_second']:,.0f} series/s, "
            f"one process {spark['single_process_series_per_second']:,.0f} series/s; "
            f"{spark['rows_matched']:,} rows matched, max |difference| {spark['max_abs_difference']:.2e}"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"training": rows, "verdict": verdict, "spark": spark}, indent=2))
    return 0 if verdict.get("ddp overhead below 15%") else 1


if __name__ == "__main__":
    sys.exit(main())
