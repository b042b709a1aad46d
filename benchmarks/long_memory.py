"""Long-memory benchmark: can a recurrent forecaster learn a dependency ``lag`` steps long?

The task (:func:`echo_series`): noise (N(0, 0.05)) with, now and then, a spike of ±3 (random sign);
``lag - 1`` steps later a small cue (+1) announces the echo, and ``lag`` steps after the spike the
echo repeats the spike's value. The cue says *when*; only memory can say *which sign*: a model that
ignores the spike can do no better at the echo than the noise level (0), an absolute error of 3.
Episodes do not overlap (gaps of 1 to ``lag / 4`` steps), so one thing has to be remembered at a
time. The forecasters see the last 4 values (``season_length=4``, no long season, so no input lag
reaches back to the spike) and are trained to forecast one step ahead (``horizon=1``,
``scaler="none"``: the values are noise around 0) with truncated back-propagation through time.

For each lag and each of ``RNNForecaster``, ``GRUForecaster`` and ``LSTMForecaster``, two fits:
``tbptt_steps = lag / 2`` (the truncation window shorter than the lag: gradients never connect the
echo to its spike) and ``2 * lag`` (longer: half of the echoes share a chunk with their spike).
Reported, on fresh series:

* **echo MAE**: error of the one-step forecasts made at the cue for the echo
  (:func:`tsforecast.nn.diagnostics.step_forecasts`), against the **reference** that ignores the
  spike (the noise level, 0); **x better** is their ratio and a model **learned** the dependency
  when it is at least 5;
* **grad ratio**: the far/near gradient ratio of :func:`tsforecast.nn.diagnostics.diagnose` at
  ``max_lag = lag``: the gradient of the loss at a step with respect to the state ``lag`` steps
  earlier, relative to the state at that step.

Initialisation: gated models are built with ``gate_init="chrono"``, the *chrono* initialisation
of their gates (Tallec & Ollivier, 2018): per unit a forget-gate (LSTM; update gate for the GRU)
bias of ``log(u)``,
``u ~ U(1, tbptt_steps - 1)``, and the LSTM's input-gate bias ``-log(u)``, so that the memory time
constants at the start span the truncation window. With the library's default (forget-gate bias 1,
a memory of a few steps) the gradient over 200 steps is ~1e-27 at the start of training and the
LSTM does not learn lag 200 in this budget; the ``lstm-default`` model key shows it. The vanilla
RNN has no gates to initialise.

Usage (the full grid took 9 minutes with one torch thread on a shared 2-core machine, ``--quick``,
lags 10 and 50 only, about 2; the measured table is in ``benchmarks/README.md``)::

    nice .venv/bin/python benchmarks/long_memory.py --json long_memory.json
    nice .venv/bin/python benchmarks/long_memory.py --quick
    .venv/bin/python benchmarks/long_memory.py --smoke     # seconds: runs every step, measures nothing
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from tsforecast.exceptions import ClippingWarning
from tsforecast.nn import GRUForecaster, LSTMForecaster, RNNForecaster
from tsforecast.nn.diagnostics import compare_gradient_flow, diagnose, step_forecasts

NOISE, SPIKE, CUE = 0.05, 3.0, 1.0
LEARNED = 5.0  # echo error this many times below the reference: the dependency is learned
MODELS = {  # key -> (class, initialisation of the gates)
    "rnn": (RNNForecaster, "standard"),
    "gru": (GRUForecaster, "chrono"),
    "lstm": (LSTMForecaster, "chrono"),
    "lstm-default": (LSTMForecaster, "standard"),
}
NETWORK = dict(
    horizon=1,
    season_length=4,
    long_season_length=None,
    scaler="none",
    hidden_size=32,
    num_layers=1,
    learning_rate=0.03,
    batch_size=32,
    patience=None,
)


@dataclass(frozen=True)
class Budget:
    """Training data and epochs of every fit at one lag."""

    n_series: int
    length: int
    epochs: int


SMOKE = Budget(4, 100, 1)  # --smoke: the whole script in seconds, too little training to learn


# The GRU finds the echo later than the chrono LSTM: at lag 50 it is at 2.8x after 60 epochs and at
# 62x after 180; at lag 200, 2.0x after 80 and 64x after 200 (measured, seed 0). It gets 2.5x the epochs.
EPOCH_FACTOR = {"gru": 2.5}


def budget(lag: int, key: str = "lstm") -> Budget:
    """Training series, their length and epochs at ``lag`` for model ``key``.

    Enough for the chrono-initialised LSTM to find the dependency when its window covers the lag
    (at lag 200 it does around epoch 50 of 80), times ``EPOCH_FACTOR`` for slower learners; smaller
    at lag 400 to keep the grid near a quarter of an hour.
    """
    if lag <= 10:
        plan = Budget(32, 300, 20)
    elif lag <= 50:
        plan = Budget(64, 300, 60)
    elif lag <= 200:
        plan = Budget(64, 6 * lag, 80)
    else:
        plan = Budget(32, 6 * lag, 40)
    return replace(plan, epochs=round(plan.epochs * EPOCH_FACTOR.get(key, 1.0)))


def echo_series(n_series: int, length: int, lag: int, seed: int):
    """Noise with spikes whose echo follows ``lag`` steps later, announced by a cue one step before.

    Returns
    -------
    y : pd.DataFrame
        Wide frame, one column per series, integer time index.
    echoes : np.ndarray of shape (n_echoes, 2)
        ``(series, time)`` of every echo.
    """
    rng = np.random.default_rng(seed)
    y = rng.normal(0.0, NOISE, size=(n_series, length))
    echoes = []
    for i in range(n_series):
        t = int(rng.integers(8, 8 + max(lag // 2, 2)))
        while t + lag < length:
            value = SPIKE * rng.choice([-1.0, 1.0])
            y[i, t] += value
            y[i, t + lag - 1] += CUE
            y[i, t + lag] += value
            echoes.append((i, t + lag))
            t += lag + 1 + int(rng.integers(1, max(lag // 4, 2) + 1))
    columns = [f"s{i}" for i in range(n_series)]
    return pd.DataFrame(y.T, columns=columns), np.array(echoes, dtype=np.int64)


def forecaster(key: str, tbptt: int, epochs: int, seed: int):
    cls, gate_init = MODELS[key]
    return cls(**NETWORK, gate_init=gate_init, tbptt_steps=tbptt, max_epochs=epochs, random_state=seed)


def run_one(key: str, lag: int, tbptt: int, plan: Budget, seed: int) -> tuple[dict, object]:
    """Fit on training series, score the echoes of fresh series, measure the gradient flow."""
    train, _ = echo_series(plan.n_series, plan.length, lag, seed)
    test, echoes = echo_series(32, plan.length, lag, seed + 1)
    model = forecaster(key, tbptt, plan.epochs, seed)
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClippingWarning)  # its share is in the JSON: clipped_fraction
        model.fit(train)
    seconds = time.perf_counter() - started
    forecasts = np.stack(step_forecasts(model, test))[..., 0]  # (series, time): forecast of time t + 1
    actual = test.to_numpy().T[echoes[:, 0], echoes[:, 1]]
    predicted = forecasts[echoes[:, 0], echoes[:, 1] - 1]  # made at the cue
    echo_mae = float(np.mean(np.abs(predicted - actual)))
    reference = float(np.mean(np.abs(actual)))  # the noise level, 0, as the forecast
    report = diagnose(model, test, max_lag=lag, warmup=min(lag, 50), max_series=16)
    row = dict(
        model=key,
        init=MODELS[key][1],
        lag=lag,
        tbptt_steps=tbptt,
        echo_mae=echo_mae,
        reference_mae=reference,
        improvement=reference / echo_mae,
        learned=bool(reference / echo_mae >= LEARNED),
        grad_ratio=report.far_near_ratio,
        clipped_fraction=float(model.history_["clipped_fraction"].mean()),
        epochs=plan.epochs,
        n_series=plan.n_series,
        fit_seconds=seconds,
    )
    return row, report


def format_table(rows: list) -> str:
    frame = pd.DataFrame(rows)
    shown = pd.DataFrame(
        {
            "model": frame["model"],
            "lag": frame["lag"],
            "tbptt": frame["tbptt_steps"],
            "echo MAE": frame["echo_mae"].map("{:.3f}".format),
            "reference": frame["reference_mae"].map("{:.2f}".format),
            "x better": frame["improvement"].map("{:.1f}".format),
            "learned": frame["learned"].map({True: "yes", False: "no"}),
            "grad ratio": frame["grad_ratio"].map(lambda v: f"{v:.0e}" if math.isfinite(v) else "n/a"),
            "fit s": frame["fit_seconds"].map("{:.0f}".format),
        }
    )
    return shown.to_string(index=False)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--lags", default="10,50,200,400", help="comma-separated dependency lengths")
    parser.add_argument("--models", default="rnn,gru,lstm,lstm-default", help=f"from {', '.join(MODELS)}")
    parser.add_argument("--default-init-lags", default="50,200", help="lags at which lstm-default runs")
    parser.add_argument("--quick", action="store_true", help="only lags 10 and 50 (about two minutes)")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="lag 10 with 4 short series and 1 epoch: checks that the script runs (seconds), learns nothing",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    lags = [10] if args.smoke else [10, 50] if args.quick else [int(v) for v in args.lags.split(",")]
    keys = [k.strip() for k in args.models.split(",")]
    if unknown := [k for k in keys if k not in MODELS]:
        print(f"unknown model key(s) {unknown}; known: {list(MODELS)}", file=sys.stderr)
        return 2
    default_lags = {int(v) for v in args.default_init_lags.split(",")}
    rows, reports, started = [], {}, time.perf_counter()
    plans = {(lag, key): SMOKE if args.smoke else budget(lag, key) for lag in lags for key in keys}
    for lag in lags:
        for key in keys:
            plan = plans[lag, key]
            if key == "lstm-default" and lag not in default_lags:
                continue
            for tbptt in (max(lag // 2, 2), 2 * lag):
                if key == "lstm-default" and tbptt < lag:
                    continue  # the short window cannot learn it whatever the initialisation
                row, report = run_one(key, lag, tbptt, plan, args.seed)
                rows.append(row)
                reports[(key, lag, tbptt)] = report
                if not args.quiet:
                    print(
                        f"{key:>12} lag {lag:>3} tbptt {tbptt:>3}: echo MAE {row['echo_mae']:.3f} "
                        f"({row['improvement']:.1f}x better), grad ratio {row['grad_ratio']:.0e}, "
                        f"{row['fit_seconds']:.0f}s",
                        file=sys.stderr,
                        flush=True,
                    )
    total = time.perf_counter() - started
    comparison = _comparison(reports, lags)
    print(format_table(rows))
    for lag, sentence in comparison:
        print(f"\nlag {lag}, tbptt_steps {2 * lag}: {sentence}")
    print(f"\ntotal {total:.0f}s ({args.threads} thread(s))")
    if args.json is not None:
        document = {
            "settings": {"network": NETWORK, "noise": NOISE, "spike": SPIKE, "cue": CUE, "learned": LEARNED},
            "budgets": {f"{key} lag {lag}": asdict(plan) for (lag, key), plan in plans.items()},
            "results": rows,
            "comparison": [{"lag": lag, "text": text} for lag, text in comparison],
            "seconds": total,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(document, indent=2, default=float) + "\n")
    return 0


def _comparison(reports: dict, lags: list) -> list:
    """RNN against LSTM on the same data with the long window, in the diagnostics' own words."""
    found = []
    for lag in lags:
        pair = {
            name: reports.get((key, lag, 2 * lag))
            for name, key in (("RNNForecaster", "rnn"), ("LSTMForecaster", "lstm"))
        }
        if all(pair.values()):
            found += [(lag, s) for s in compare_gradient_flow(pair)[1]]
    return found


if __name__ == "__main__":
    sys.exit(main())
