"""Speed and memory of the recurrent forecasters' training on M4 Hourly.

Three measurements in one run:

1. **Framework overhead**: one TBPTT epoch of ``LSTMForecaster(hidden_size=64, num_layers=2,
   tbptt_steps=96)`` against a plain PyTorch loop written here that does the same work (the same
   streams and features, laid out once on the device; the same network shape; the same 96-step
   chunks, state carried and detached; masked MAE, backward, clipping, Adam). Acceptance: <= 1.2x.
2. **TBPTT vs sliding windows**: training examples (forecast targets in the loss) per second with
   ``training="tbptt"`` and ``training="windows"`` (``lookback=168``). Acceptance: >= 20x.
3. **Per-epoch cost against a minimal loop**: ``LSTMForecaster`` with the settings of the simplest
   TBPTT loop (one input value per step: ``season_length=1``, ``long_season_length=None``,
   ``scaler="standard"``; all series in one batch, one stream each; 64x2 LSTM, 96-step chunks,
   clipping, Adam) against that loop written here in plain PyTorch (inputs and targets built once as
   tensors). The marginal time of an epoch is (time of 6 epochs - time of 2 epochs) / 4, so the
   set-up cancels. Acceptance: <= 1.3x.
4. **Covariates**: case 1 with ten numeric future-known covariates (synthetic daily and weekly
   waves with noise): the LSTM reads them at every step and its head the covariates of each forecast
   step and their changes, against the plain loop doing the same (the same encoded inputs, laid out
   once; an LSTM over the step inputs, a head plus a masked map from the covariates ahead).
   Acceptance: <= 1.2x.
5. **Memory**: peak resident memory of a fresh process that trains with TBPTT on one synthetic
   series of 10,000 and of 1,000,000 steps (one stream, no cutting, a 15-second budget; CPU: the
   process's ``VmHWM``, CUDA: ``torch.cuda.max_memory_allocated``). Acceptance: within 1.5x.

Timings are medians over repeats. Usage::

    python benchmarks/speed.py --data-dir ../shared/data/m4 --json speed.json
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from tsforecast.data import to_panel
from tsforecast.data.covariates import align_covariates
from tsforecast.nn import LSTMForecaster
from tsforecast.nn.streams import stream_chunks

MODEL = dict(horizon=48, season_length=24, hidden_size=64, num_layers=2, tbptt_steps=96, random_state=0)


def load_train(data_dir: str | None) -> pd.DataFrame:
    """M4 Hourly training series as a long frame (the package loader, else the CSV directly)."""
    try:
        from tsforecast.datasets import load_m4

        return load_m4("hourly", data_dir).train  # local files, else a one-off download
    except ImportError:
        wide = pd.read_csv(Path(data_dir or "../shared/data/m4") / "Hourly-train.csv", index_col=0)
        frames = [
            pd.DataFrame({"unique_id": sid, "ds": np.arange(row.notna().sum()), "y": row.dropna().to_numpy()})
            for sid, row in wide.iterrows()
        ]
        return pd.concat(frames, ignore_index=True)


N_COVARIATES = 10


def covariate_frame(train: pd.DataFrame) -> pd.DataFrame:
    """Ten numeric covariates beside ``train``: daily and weekly waves of several phases, with noise."""
    rng = np.random.default_rng(0)
    t = train.groupby("unique_id").cumcount().to_numpy()
    waves = {
        f"x{k}": np.sin(2 * np.pi * t / (24 if k % 2 else 168) + k) + rng.normal(0, 0.1, len(t))
        for k in range(N_COVARIATES)
    }
    return train[["unique_id", "ds"]].assign(**waves)


def framework_epochs(train: pd.DataFrame, epochs: int, X=None, **settings) -> LSTMForecaster:
    model = LSTMForecaster(**{**MODEL, "max_epochs": epochs, **settings})
    return model.fit(train, X=X)


def plain_step(lstm, head, optimizer, params, batch, state, ahead=None):
    """One TBPTT step of the plain loops: forward a chunk, masked MAE, backward, clip, Adam, detach.

    ``ahead`` (covariates): ``(n_recurrent, weight, mask)``; the inputs after the first
    ``n_recurrent`` are the covariates of the forecast steps, read through ``weight * mask``.
    """
    x, y, m = batch
    if ahead is None:
        out, state = lstm(x, state)  # (batch, chunk, 64)
        pred = head(torch.cat([out, x], -1))  # (batch, chunk, horizon)
    else:
        n_recurrent, weight, mask = ahead
        recurrent = x[..., :n_recurrent]
        out, state = lstm(recurrent, state)  # (batch, chunk, 64)
        pred = head(torch.cat([out, recurrent], -1)) + F.linear(x[..., n_recurrent:], weight * mask)
    loss = ((pred - y).abs() * m).sum() / m.sum().clamp_min(1)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    optimizer.step()
    return loss, tuple(s.detach() for s in state)


def plain_epochs(model: LSTMForecaster, train: pd.DataFrame, epochs: int, X=None) -> list:
    """The same TBPTT work as ``model``'s training, written as a bare PyTorch loop; seconds per epoch."""
    panel = to_panel(train)  # the framework's own encoding below, so that the inputs are identical
    codec = model.codec_
    covariates = None if X is None else align_covariates(X, panel, model.covariate_roles())
    cut = (2 * model.tbptt_steps, model.tbptt_steps // 2)  # the default stream_length and warm-up
    encoded = codec.encode(
        panel.values, panel.ids, model.tbptt_steps, scaler=codec.scaler, cut=cut, covariates=covariates
    )
    streams = encoded.streams
    rows = np.arange(streams.n_streams)
    xs, ys, ms = zip(
        *[(x, y, m) for x, y, m, _ in stream_chunks(streams, rows, 96, codec.scales)], strict=True
    )
    x_all, y_all, m_all = torch.cat(xs, 1), torch.cat(ys, 1), torch.cat(ms, 1)  # (streams, steps, ...)
    torch.manual_seed(0)
    n_features, horizon = x_all.shape[-1], y_all.shape[-1]
    n_recurrent, ahead = n_features, None
    if X is not None:  # the step inputs, then (value, change) of each covariate per forecast step
        n_recurrent = n_features - horizon * 2 * N_COVARIATES
        step = torch.arange(n_features - n_recurrent) // (2 * N_COVARIATES)  # forecast step of a column
        mask = (step[None, :] <= torch.arange(horizon)[:, None]).float().to(x_all.device)  # (H, ahead)
        weight = torch.nn.Parameter(torch.zeros(horizon, n_features - n_recurrent, device=x_all.device))
        ahead = (n_recurrent, weight, mask)
    lstm = torch.nn.LSTM(n_recurrent, 64, 2, batch_first=True).to(x_all.device)
    head = torch.nn.Linear(64 + n_recurrent, horizon).to(x_all.device)
    params = [*lstm.parameters(), *head.parameters(), *([ahead[1]] if ahead else [])]
    optimizer = torch.optim.Adam(params, lr=1e-3, fused=True)
    batch, chunk, times = model.batch_size, model.tbptt_steps, []
    for _ in range(epochs):
        start = time.perf_counter()
        order = torch.randperm(len(rows))
        for b in range(0, len(rows), batch):
            idx = order[b : b + batch]
            xb, yb, mb = x_all[idx], y_all[idx], m_all[idx]
            state = None
            for c in range(0, xb.shape[1], chunk):
                chunk_batch = (xb[:, c : c + chunk], yb[:, c : c + chunk], mb[:, c : c + chunk])
                loss, state = plain_step(lstm, head, optimizer, params, chunk_batch, state, ahead)
        loss.item()
        times.append(time.perf_counter() - start)
    return times


MINIMAL = dict(
    horizon=48,
    season_length=1,
    long_season_length=None,
    scaler="standard",
    hidden_size=64,
    num_layers=2,
    tbptt_steps=96,
    stream_length=None,
    clip_norm=1.0,
    random_state=0,
)


def minimal_framework(train: pd.DataFrame, epochs: int) -> float:
    """Seconds of a whole ``fit`` with the minimal settings (all series in one batch)."""
    n_series = train["unique_id"].nunique()
    model = LSTMForecaster(**{**MINIMAL, "batch_size": n_series, "max_epochs": epochs})
    start = time.perf_counter()
    model.fit(train)
    return time.perf_counter() - start


def minimal_plain(train: pd.DataFrame, epochs: int) -> float:
    """Seconds of the simplest TBPTT loop, set-up included: standardised values in, next 48 out."""
    start = time.perf_counter()
    torch.manual_seed(0)
    series = [g.to_numpy() for _, g in train.groupby("unique_id", sort=False)["y"]]
    horizon, chunk = MINIMAL["horizon"], MINIMAL["tbptt_steps"]
    longest = max(len(v) for v in series)
    z = np.full((len(series), longest + horizon), np.nan, dtype=np.float32)
    for i, v in enumerate(series):
        z[i, : len(v)] = (v - v.mean()) / v.std()
    values = torch.from_numpy(z)  # (series, time + horizon), NaN after each series' end
    n_steps = math.ceil((longest - 1) / chunk) * chunk
    values = torch.nn.functional.pad(values, (0, n_steps + horizon + 1 - values.shape[1]), value=math.nan)
    x = torch.nan_to_num(values[:, :n_steps, None])  # (series, steps, 1)
    y = values[:, 1:].unfold(1, horizon, 1)[:, :n_steps]  # (series, steps, horizon): the next 48 values
    mask = torch.isfinite(y)
    y = torch.nan_to_num(y)
    lstm = torch.nn.LSTM(1, 64, 2, batch_first=True)
    head = torch.nn.Linear(64 + 1, horizon)
    params = [*lstm.parameters(), *head.parameters()]
    optimizer = torch.optim.Adam(params, lr=1e-3, fused=True)
    for _ in range(epochs):
        state = None
        for c in range(0, n_steps, chunk):
            batch = (x[:, c : c + chunk], y[:, c : c + chunk], mask[:, c : c + chunk])
            loss, state = plain_step(lstm, head, optimizer, params, batch, state)
        loss.item()
    return time.perf_counter() - start


def covariates_case(train: pd.DataFrame, epochs: int) -> dict:
    """Median seconds per TBPTT epoch with ten covariates (the first epoch left out), both loops."""
    X = covariate_frame(train)
    model = framework_epochs(train, epochs, X=X, future_covariates=list(X.columns[2:]))
    framework = statistics.median(model.history_["seconds"].to_numpy()[1:])
    plain = statistics.median(plain_epochs(model, train, epochs, X=X)[1:])
    return {"framework": float(framework), "plain": plain, "ratio": float(framework / plain)}


def minimal_case(train: pd.DataFrame, repeats: int) -> dict:
    """Marginal seconds per epoch ((6 - 2) / 4) of the framework and of the minimal loop, medians."""
    framework, plain = [], []
    for _ in range(repeats):  # interleaved, so that a busy moment hits both
        framework.append((minimal_framework(train, 6) - minimal_framework(train, 2)) / 4)
        plain.append((minimal_plain(train, 6) - minimal_plain(train, 2)) / 4)
    return {"framework": statistics.median(framework), "plain": statistics.median(plain)}


def peak_rss_mib() -> float:
    """This process's peak resident memory: ``VmHWM`` on Linux (``ru_maxrss`` would carry the parent's
    peak over fork and exec), else ``ru_maxrss``."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_case(steps: int) -> dict:
    """Train on one series of ``steps`` steps in this process; report its peak memory."""
    rng = np.random.default_rng(0)
    t = np.arange(steps)
    y = pd.Series(
        100 + 10 * np.sin(2 * np.pi * t / 24) + 5 * np.sin(2 * np.pi * t / 168) + rng.normal(0, 1, steps)
    )
    before = peak_rss_mib()
    model = LSTMForecaster(**{**MODEL, "max_epochs": 1, "stream_length": None, "max_time": 15.0})
    start = time.perf_counter()
    model.fit(y)
    seconds = time.perf_counter() - start
    history = model.history_
    result = {
        "steps": steps,
        "peak_rss_mib": peak_rss_mib(),
        "before_fit_rss_mib": before,
        "seconds": seconds,
        "targets_trained": int(history["targets"].sum()),
    }
    if model.device_.type == "cuda":
        result["cuda_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return result


def run_memory(steps: int, threads: int | None) -> dict:
    """:func:`memory_case` in a fresh process, so that each peak is its own."""
    command = [sys.executable, str(Path(__file__).resolve()), "--memory-case", str(steps)]
    if threads:
        command += ["--threads", str(threads)]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--data-dir",
        default=None,
        help="folder of Hourly-train.csv (default: $TSFORECAST_DATA_DIR/m4, else ../shared/data/m4, "
        "else a one-off download into the user cache)",
    )
    parser.add_argument("--json", default=None, help="write the results here")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--window-seconds", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--memory-case", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument(
        "--only-covariates", action="store_true", help="run only the comparison with ten covariates"
    )
    parser.add_argument(
        "--only-minimal", action="store_true", help="run only the per-epoch comparison with the minimal loop"
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_case:
        print(json.dumps(memory_case(args.memory_case)))
        return {}
    train = load_train(args.data_dir)
    if args.only_minimal:
        minimal = minimal_case(train, args.repeats)
        ratio = minimal["framework"] / minimal["plain"]
        framework, plain = minimal["framework"], minimal["plain"]
        print(f"marginal epoch: LSTMForecaster {framework:.3f} s, plain {plain:.3f} s, ratio {ratio:.3f}")
        return minimal

    epochs = args.repeats + 1  # the first epoch warms caches up and is left out
    if args.only_covariates:
        covariates = covariates_case(train, epochs)
        print(f"10 covariates: framework / plain {covariates['ratio']:.3f} ({covariates})")
        return covariates
    model = framework_epochs(train, epochs)
    framework = model.history_["seconds"].to_numpy()[1:]
    plain = plain_epochs(model, train, epochs)[1:]
    ratio = statistics.median(framework) / statistics.median(plain)

    covariates = covariates_case(train, epochs)

    tbptt_rate = statistics.median((model.history_["targets"] / model.history_["seconds"]).to_numpy()[1:])
    window_rates = []
    for _ in range(args.repeats):
        windows = framework_epochs(train, 1, training="windows", lookback=168, max_time=args.window_seconds)
        record = windows.history_.iloc[-1]
        window_rates.append(record.targets / record.seconds)
    window_rate = statistics.median(window_rates)

    minimal = minimal_case(train, args.repeats)
    minimal_ratio = minimal["framework"] / minimal["plain"]

    memory = [run_memory(n, args.threads) for n in (10_000, 1_000_000)]
    key = "cuda_peak_mib" if "cuda_peak_mib" in memory[0] else "peak_rss_mib"
    memory_ratio = memory[1][key] / memory[0][key]

    results = {
        "device": str(model.device_),
        "threads": torch.get_num_threads(),
        "tbptt_epoch_seconds_framework": float(statistics.median(framework)),
        "tbptt_epoch_seconds_plain": statistics.median(plain),
        "framework_over_plain": ratio,
        "covariates_epoch_seconds_framework": covariates["framework"],
        "covariates_epoch_seconds_plain": covariates["plain"],
        "covariates_framework_over_plain": covariates["ratio"],
        "tbptt_targets_per_second": float(tbptt_rate),
        "windows_targets_per_second": float(window_rate),
        "tbptt_over_windows": float(tbptt_rate / window_rate),
        "minimal_epoch_seconds_framework": minimal["framework"],
        "minimal_epoch_seconds_plain": minimal["plain"],
        "minimal_framework_over_plain": minimal_ratio,
        "memory": memory,
        "memory_metric": key,
        "memory_ratio_1m_over_10k": memory_ratio,
        "acceptance": {
            "framework_over_plain <= 1.2": bool(ratio <= 1.2),
            "covariates_framework_over_plain <= 1.2": bool(covariates["ratio"] <= 1.2),
            "tbptt_over_windows >= 20": bool(tbptt_rate / window_rate >= 20),
            "minimal_framework_over_plain <= 1.3": bool(minimal_ratio <= 1.3),
            "memory_ratio <= 1.5": bool(memory_ratio <= 1.5),
        },
    }
    _print_table(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return results


def _print_table(r: dict) -> None:
    rows = [
        ("TBPTT epoch, LSTMForecaster (s)", f"{r['tbptt_epoch_seconds_framework']:.3f}", ""),
        ("TBPTT epoch, plain PyTorch loop (s)", f"{r['tbptt_epoch_seconds_plain']:.3f}", ""),
        ("framework / plain", f"{r['framework_over_plain']:.3f}", "<= 1.2"),
        (
            "10 covariates: TBPTT epoch, LSTMForecaster (s)",
            f"{r['covariates_epoch_seconds_framework']:.3f}",
            "",
        ),
        ("10 covariates: TBPTT epoch, plain loop (s)", f"{r['covariates_epoch_seconds_plain']:.3f}", ""),
        ("10 covariates: framework / plain", f"{r['covariates_framework_over_plain']:.3f}", "<= 1.2"),
        ("targets/s, tbptt", f"{r['tbptt_targets_per_second']:,.0f}", ""),
        ("targets/s, windows (lookback 168)", f"{r['windows_targets_per_second']:,.0f}", ""),
        ("tbptt / windows", f"{r['tbptt_over_windows']:.1f}", ">= 20"),
        (
            "minimal settings: marginal epoch, LSTMForecaster (s)",
            f"{r['minimal_epoch_seconds_framework']:.3f}",
            "",
        ),
        ("minimal settings: marginal epoch, plain loop (s)", f"{r['minimal_epoch_seconds_plain']:.3f}", ""),
        ("minimal: framework / plain", f"{r['minimal_framework_over_plain']:.3f}", "<= 1.3"),
    ]
    for case in r["memory"]:
        rows.append(
            (
                f"peak memory, {case['steps']:,} steps (MiB, {r['memory_metric']})",
                f"{case[r['memory_metric']]:.0f}",
                f"before fit {case['before_fit_rss_mib']:.0f}",
            )
        )
    rows.append(("memory 1M / 10k", f"{r['memory_ratio_1m_over_10k']:.2f}", "<= 1.5"))
    width = max(len(name) for name, _, _ in rows)
    print(f"device {r['device']}, {r['threads']} threads")
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:>14}  {target}")
    verdicts = ", ".join(f"{k}: {'pass' if v else 'FAIL'}" for k, v in r["acceptance"].items())
    print(verdicts)


if __name__ == "__main__":
    main()
