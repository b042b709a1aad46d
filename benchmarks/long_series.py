"""Few long series: the default recurrent forecasters against seasonal naive and MSTL on PJM load.

Data: ``pjm_in_zone.csv`` (5 hourly load series, one year each; ``--data-dir``, default
``../shared/data/long``). Protocol (``--period test``): fit once on all but the last 14 days, then
forecast each of the last 14 days (24 hours) from the history up to its start with
``predict(y=history)``, no refit; MAE averaged over zones and origins. ``--period validation``
runs the same protocol on the 14 days before those (fitting on all but the last 28 days): settings
are chosen there, never on the test days. ``--folds 1,2,3`` adds the blocks of 14 days before that
(fold ``k`` fitted on everything before it), for comparisons steadier than one block allows.

Models: the LSTM and GRU with only ``horizon=24`` given (everything else their defaults: seasons
from the frequency, the training budget from the data), over ``--seeds``; seasonal naive at 24 and
at 168 (weekly) steps; MSTL (statsmodels: seasons 24 and 168, the seasonally adjusted series
forecast by a damped additive-trend exponential smoothing, the seasons by their last cycle),
refitted at every origin on the last ``--mstl-weeks`` weeks.

    python benchmarks/long_series.py --seeds 0,1,2 --json outputs/long_series.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

DAY, WEEK, ORIGINS = 24, 168, 14


def load(data_dir: Path) -> pd.DataFrame:
    frame = pd.read_csv(data_dir / "pjm_in_zone.csv", parse_dates=["ds"])
    return frame.sort_values(["unique_id", "ds"]).reset_index(drop=True)


def split(frame: pd.DataFrame, period: str, fold: int = 1):
    """Training frame, and per origin the history up to it and the 24 actual values after it.

    Validation fold ``k`` is the ``k``-th block of 14 days before the test days (1: just before them).
    """
    skip = 0 if period == "test" else fold * ORIGINS * DAY
    frames = {sid: g.reset_index(drop=True) for sid, g in frame.groupby("unique_id", sort=True)}
    train, origins = [], []
    for g in frames.values():
        end = len(g) - skip  # the period's last hour + 1
        start = end - ORIGINS * DAY
        train.append(g.iloc[:start])
    for k in range(ORIGINS):
        history, actual = [], []
        for g in frames.values():
            cut = len(g) - skip - (ORIGINS - k) * DAY
            history.append(g.iloc[:cut])
            actual.append(g.iloc[cut : cut + DAY])
        origins.append((pd.concat(history, ignore_index=True), pd.concat(actual, ignore_index=True)))
    return pd.concat(train, ignore_index=True), origins


def mae(forecast: pd.DataFrame, actual: pd.DataFrame) -> float:
    merged = actual.merge(forecast, on=["unique_id", "ds"], how="left")
    if merged["y_pred"].isna().any():
        raise RuntimeError("a forecast is missing for some actual value")
    return float((merged["y"] - merged["y_pred"]).abs().mean())


def neural(class_name: str, seed: int, periods, settings: dict) -> dict:
    """Fit once per period (its training frame), forecast its origins; MAE over all origins."""
    import tsforecast

    errors, fit_seconds, fold_maes = [], 0.0, []
    for train, origins in periods:
        model = getattr(tsforecast, class_name)(horizon=DAY, random_state=seed, **settings)
        started = time.perf_counter()
        model.fit(train)
        fit_seconds += time.perf_counter() - started
        fold = [mae(model.predict(y=history), actual) for history, actual in origins]
        errors += fold
        fold_maes.append(float(np.mean(fold)))
    return {
        "mae": float(np.mean(errors)),
        "fold_maes": fold_maes,
        "fit_seconds": fit_seconds / len(periods),
        "epochs": len(model.history_),
        "steps": int(model.history_["steps"].sum()),
        "season": model.codec_.spec.season_length,
        "long_season": model.codec_.spec.long_season_length,
    }


def seasonal_naive(season: int, origins) -> float:
    errors = []
    for history, actual in origins:
        rows = []
        for sid, g in history.groupby("unique_id", sort=True):
            last = g["y"].to_numpy()[-season:]
            ds = actual.loc[actual["unique_id"] == sid, "ds"].to_numpy()
            rows.append(pd.DataFrame({"unique_id": sid, "ds": ds, "y_pred": last[np.arange(DAY) % season]}))
        errors.append(mae(pd.concat(rows, ignore_index=True), actual))
    return float(np.mean(errors))


def mstl_forecast(y: np.ndarray) -> np.ndarray:
    """MSTL (24, 168) with a damped-trend exponential smoothing of the seasonally adjusted series."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing
    from statsmodels.tsa.seasonal import MSTL

    fit = MSTL(y, periods=(DAY, WEEK)).fit()
    seasonal = np.asarray(fit.seasonal)  # (n, 2)
    adjusted = y - seasonal.sum(axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trend = ExponentialSmoothing(adjusted, trend="add", damped_trend=True).fit().forecast(DAY)
    steps = np.arange(DAY)
    future_seasons = sum(seasonal[len(y) - p + (steps % p), k] for k, p in enumerate((DAY, WEEK)))
    return np.asarray(trend) + future_seasons


def mstl(origins, weeks: int) -> float:
    errors = []
    for history, actual in origins:
        rows = []
        for sid, g in history.groupby("unique_id", sort=True):
            y = g["y"].to_numpy()[-weeks * WEEK :]
            ds = actual.loc[actual["unique_id"] == sid, "ds"].to_numpy()
            rows.append(pd.DataFrame({"unique_id": sid, "ds": ds, "y_pred": mstl_forecast(y)}))
        errors.append(mae(pd.concat(rows, ignore_index=True), actual))
    return float(np.mean(errors))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data/long"))
    parser.add_argument("--period", choices=("test", "validation"), default="test")
    parser.add_argument(
        "--folds",
        default="1",
        help="validation folds, comma-separated: fold k is the k-th block of 14 days before the test days, "
        "fitted on everything before it (more folds: steadier comparisons)",
    )
    parser.add_argument("--models", default="lstm,gru,snaive24,snaive168,mstl")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds of the neural rows")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a parameter of the neural models (repeatable; to compare settings on validation)",
    )
    parser.add_argument("--mstl-weeks", type=int, default=8, help="weeks of history MSTL is fitted on")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    return parser


def _value(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"None": None, "True": True, "False": False}.get(text, text)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    settings = dict(item.split("=", 1) for item in args.param)
    settings = {key: _value(value) for key, value in settings.items()}
    seeds = [int(s) for s in args.seeds.split(",") if s]
    frame = load(args.data_dir)
    folds = [1] if args.period == "test" else [int(k) for k in args.folds.split(",") if k]
    periods = [split(frame, args.period, fold) for fold in folds]
    origins = [origin for _, fold_origins in periods for origin in fold_origins]
    results = {}
    for name in args.models.split(","):
        started = time.perf_counter()
        if name in ("lstm", "gru"):
            class_name = {"lstm": "LSTMForecaster", "gru": "GRUForecaster"}[name]
            runs = {seed: neural(class_name, seed, periods, settings) for seed in seeds}
            maes = [r["mae"] for r in runs.values()]
            results[name] = {
                "mae": statistics.mean(maes),
                "sd": statistics.stdev(maes) if len(maes) > 1 else 0.0,
                "seeds": runs,
            }
        elif name.startswith("snaive"):
            results[name] = {"mae": seasonal_naive(int(name[len("snaive") :]), origins)}
        elif name == "mstl":
            results[name] = {"mae": mstl(origins, args.mstl_weeks)}
        else:
            raise SystemExit(f"unknown model {name!r}")
        results[name]["seconds"] = time.perf_counter() - started
        print(f"{name}: {results[name]['mae']:.1f} ({results[name]['seconds']:.0f} s)", file=sys.stderr)
    naive = (
        min(results[k]["mae"] for k in results if k.startswith("snaive"))
        if any(k.startswith("snaive") for k in results)
        else float("nan")
    )
    where = args.period if args.period == "test" else f"validation folds {folds}"
    print(f"\nPJM hourly load, 5 zones, {len(origins)} day-ahead origins ({where}); MAE (MW)")
    if settings:
        print(f"neural settings: {settings}")
    print(f"{'model':<10} {'MAE':>16} {'vs best naive':>14} {'seconds':>8}")
    for name, r in results.items():
        spread = f" ± {r['sd']:.1f}" if "sd" in r else ""
        print(f"{name:<10} {r['mae']:>9.1f}{spread:>7} {r['mae'] / naive - 1:>+13.1%} {r['seconds']:>8.0f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "period": args.period,
            "folds": folds,
            "settings": settings,
            "origins": len(origins),
            "results": results,
        }
        args.json.write_text(json.dumps(payload, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
