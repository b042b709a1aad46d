"""Acceptance benchmark of :func:`tsforecast.tuning.tune` on M4 Hourly.

Runs an Optuna study (default 20 trials, median pruning) of the LSTM forecaster on validation windows
cut from the M4 training part only, then scores on the test part, as M4 did (sMAPE and MASE averaged
over series, OWA relative to Naive2): the best parameters refitted on all training data, the
baselines (seasonal naive, Naive2, AutoETS, Theta), the LSTM with default parameters, and the LSTM
with default parameters under the trials' epoch budget (the like-for-like comparison when
``--epochs`` shortens the trials). Budgets are epochs, never seconds, so the figures do not depend
on how busy the machine was.

    nice -n 10 .venv/bin/python benchmarks/tune_m4.py --data-dir ../shared/data/m4 \\
        --n-trials 20 --epochs 10 --json outputs/tune_m4.json

The study is kept in ``--storage`` (default ``sqlite:///outputs/tune_m4.db``): run the command again
and it resumes. Prints a table a person can read; ``--json`` writes the same figures.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from tsforecast.datasets import load_m4
from tsforecast.tuning import Validation, score_forecasts, tune


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data-dir",
        default=None,
        help="folder holding Hourly-train.csv and Hourly-test.csv (default: $TSFORECAST_DATA_DIR/m4, else "
        "../shared/data/m4, else a one-off download into the user cache)",
    )
    parser.add_argument("--n-trials", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=None, help="seconds after which no trial starts")
    parser.add_argument("--epochs", type=int, default=10, help="max_epochs of every trial's fits")
    parser.add_argument("--n-windows", type=int, default=2, help="validation windows of 48 hours")
    parser.add_argument("--limit", type=int, default=None, help="tune on the first N series only")
    parser.add_argument("--pruner", default="median")
    parser.add_argument(
        "--baselines", default="snaive,naive2,autoets,theta", help="comma-separated registry names"
    )
    parser.add_argument("--metric", default="mase")
    parser.add_argument("--storage", default="sqlite:///outputs/tune_m4.db")
    parser.add_argument("--study-name", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--json", type=Path, default=None)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    import torch

    from tsforecast.nn.estimators import LSTMForecaster

    if args.threads:
        torch.set_num_threads(args.threads)
    data = load_m4("hourly", args.data_dir)  # local files, else a one-off download into the user cache
    train, test = data.train, data.test
    if args.limit:
        keep = train["unique_id"].drop_duplicates().iloc[: args.limit]
        train, test = train[train["unique_id"].isin(keep)], test[test["unique_id"].isin(keep)]
    Path("outputs").mkdir(exist_ok=True)
    common = {"horizon": data.horizon, "season_length": data.season_length, "random_state": args.seed}
    common["device"] = args.device
    budgeted = LSTMForecaster(**common, max_epochs=args.epochs)

    started = time.perf_counter()
    result = tune(
        budgeted,
        train,
        n_trials=args.n_trials,
        timeout=args.timeout,
        storage=args.storage,
        study_name=args.study_name,
        pruner=args.pruner,
        metric=args.metric,
        validation=Validation(n_windows=args.n_windows),
        include_default=True,
        baselines=args.baselines,
        random_state=args.seed,
    )
    study_seconds = time.perf_counter() - started
    print(result.leaderboard.to_string(float_format=lambda v: f"{v:.4f}"))
    print(result.verdict)

    timings = {"study_and_refit": study_seconds}
    forecasts = {"LSTM tuned": result.best_estimator.predict(data.horizon)}
    for name, baseline in result.baselines.items():
        began = time.perf_counter()
        forecasts[name] = baseline.fit(train).predict(data.horizon)
        timings[name] = time.perf_counter() - began
    for name, model in (
        ("LSTM default", LSTMForecaster(**common)),
        (f"LSTM default, max_epochs={args.epochs}", LSTMForecaster(**common, max_epochs=args.epochs)),
    ):
        began = time.perf_counter()
        forecasts[name] = model.fit(train).predict(data.horizon)
        timings[name] = time.perf_counter() - began
    table = score_forecasts(forecasts, train, test, data.season_length, naive2="Naive2")
    print(f"\nM4 Hourly test set ({train['unique_id'].nunique()} series, horizon {data.horizon}):")
    print(table.to_string(float_format=lambda v: f"{v:.4f}"))
    states = result.n_trials
    print(f"\nstudy {result.study.study_name}: {states}; study + refit {study_seconds:.0f} s")
    print(f"best trial {result.best_trial_}: {result.best_params_}")
    if args.json:
        report = {
            "n_series": int(train["unique_id"].nunique()),
            "study": result.study.study_name,
            "trials": states,
            "seconds": timings,
            "best_params": result.best_params_,
            "validation": result.leaderboard.reset_index().astype({"trial": float}).to_dict("records"),
            "test": table.reset_index().to_dict("records"),
            "verdict": result.verdict,
        }
        _write_json(args.json, report)
    return 0


def _write_json(path: Path, report: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as handle:
        json.dump(report, handle, indent=2, default=lambda v: None if pd.isna(v) else str(v))
    os.replace(handle.name, path)


if __name__ == "__main__":
    sys.exit(main())
