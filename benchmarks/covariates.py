"""Covariates: the recurrent forecasters with and without drivers, beside the baselines.

Three datasets (``--data-dir``, default ``../shared/data``; see its README):

* ``electricity``: four day-ahead power markets, hourly (``exog/electricity-short-with-ex-vars.csv``),
  future-known covariates ``Exogenous1``, ``Exogenous2`` (the published day-ahead load and generation
  forecasts) and ``day_0``..``day_6``. Fit on all but the last 14 days; forecast each of the last 14
  days (24 hours) from the history up to its start with the true covariates of that day, no refit.
  MAE, RMSE and sMAPE per market and averaged.
* ``m5``: eight M5 food items, daily (``exog/m5_sales_exog_small.csv``), future-known covariates
  ``sell_price`` and the four event-type dummies; the last 28 days forecast from the rest (one
  origin); MASE against the seasonal naive forecast at 7 days (scaled by its in-sample error).
* ``pjm``: five PJM load zones, hourly (``long/pjm_in_zone.csv``), calendar features (hour, day of week,
  day of year) and US public holidays against the same LSTM without them; the protocol of
  ``benchmarks/long_series.py`` (14 day-ahead origins).

Rows: seasonal naive at one and (hourly) seven days; AutoARIMA with the covariates (regression with
ARIMA errors, refitted at every origin as a local model; not on ``pjm``); the LSTM and GRU without and
with the covariates, everything else their defaults, over ``--seeds`` (mean and sd).

    python benchmarks/covariates.py --datasets electricity --seeds 0,1,2 --json outputs/covariates.json

``--validation`` drops the test period and scores the same number of origins just before it: the
place to compare settings, so that no choice is made on the test scores.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tsforecast.metrics import mae, rmse, smape


@dataclass(frozen=True)
class Dataset:
    path: str
    horizon: int
    origins: int
    seasons: tuple  # seasonal naive periods, the first one also AutoARIMA's season
    future: tuple = ()
    calendar: tuple = ()
    holidays: str | None = None
    arima: bool = True


DATASETS = {
    "electricity": Dataset(
        "exog/electricity-short-with-ex-vars.csv",
        horizon=24,
        origins=14,
        seasons=(24, 168),
        future=("Exogenous1", "Exogenous2", *(f"day_{d}" for d in range(7))),
    ),
    "m5": Dataset(
        "exog/m5_sales_exog_small.csv",
        horizon=28,
        origins=1,
        seasons=(7,),
        future=(
            "sell_price",
            *(f"event_type_{e}" for e in ("Cultural", "National", "Religious", "Sporting")),
        ),
    ),
    "pjm": Dataset(
        "long/pjm_in_zone.csv",
        horizon=24,
        origins=14,
        seasons=(24, 168),
        calendar=("hour", "dayofweek", "dayofyear"),
        holidays="US",
        arima=False,
    ),
}


def load(data_dir: Path, dataset: Dataset) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``y`` (unique_id, ds, y) and ``X`` (unique_id, ds, covariates) of a dataset."""
    frame = pd.read_csv(data_dir / dataset.path, parse_dates=["ds"])
    frame = frame.sort_values(["unique_id", "ds"]).reset_index(drop=True)
    X = frame[["unique_id", "ds", *dataset.future]]
    if dataset.future:
        # Missing prices (an item not on sale yet) are carried back from its first known price.
        X = X.assign(
            **{c: X.groupby("unique_id")[c].transform(lambda s: s.bfill().ffill()) for c in dataset.future}
        )
    return frame[["unique_id", "ds", "y"]], X


def split(y: pd.DataFrame, dataset: Dataset):
    """The training frame, and per origin the history up to it and the actual values after it."""
    series = {sid: g.reset_index(drop=True) for sid, g in y.groupby("unique_id", sort=True)}
    span = dataset.origins * dataset.horizon
    train = pd.concat([g.iloc[: len(g) - span] for g in series.values()], ignore_index=True)
    origins = []
    for k in range(dataset.origins):
        cuts = {sid: len(g) - span + k * dataset.horizon for sid, g in series.items()}
        history = pd.concat([g.iloc[: cuts[sid]] for sid, g in series.items()], ignore_index=True)
        actual = pd.concat([g.iloc[cuts[sid] : cuts[sid] + dataset.horizon] for sid, g in series.items()])
        origins.append((history, actual.reset_index(drop=True)))
    return train, origins


def score(forecasts: list, origins: list, train: pd.DataFrame, season: int) -> dict:
    """MAE, RMSE, sMAPE (and MASE against the seasonal naive at ``season``) per series and averaged."""
    rows = []
    for forecast, (_, actual) in zip(forecasts, origins, strict=True):
        merged = actual.merge(forecast, on=["unique_id", "ds"], how="left")
        if merged["y_pred"].isna().any():
            raise RuntimeError("a forecast is missing for some actual value")
        rows.append(merged)
    merged = pd.concat(rows, ignore_index=True)
    per_series = {}
    for sid, g in merged.groupby("unique_id", sort=True):
        y, f = g["y"].to_numpy(), g["y_pred"].to_numpy()
        history = train.loc[train["unique_id"] == sid, "y"].to_numpy()
        scale = np.mean(np.abs(history[season:] - history[:-season]))
        per_series[sid] = {
            "mae": float(mae(y, f)),
            "rmse": float(rmse(y, f)),
            "smape": float(smape(y, f)),
            "mase": float(mae(y, f) / scale),
        }
    mean = {
        metric: float(np.mean([s[metric] for s in per_series.values()]))
        for metric in ("mae", "rmse", "smape", "mase")
    }
    return {**mean, "per_series": per_series}


def seasonal_naive(season: int, origins: list) -> list:
    forecasts = []
    for history, actual in origins:
        rows = []
        for sid, g in history.groupby("unique_id", sort=True):
            last = g["y"].to_numpy()[-season:]
            ds = actual.loc[actual["unique_id"] == sid, "ds"].to_numpy()
            rows.append(
                pd.DataFrame({"unique_id": sid, "ds": ds, "y_pred": last[np.arange(len(ds)) % season]})
            )
        forecasts.append(pd.concat(rows, ignore_index=True))
    return forecasts


def arima(dataset: Dataset, train, origins, X) -> list:
    """AutoARIMA with the future-known covariates, refitted on each origin's history."""
    from tsforecast.baselines import AutoARIMA

    model = AutoARIMA(
        horizon=dataset.horizon, season_length=dataset.seasons[0], future_covariates=list(dataset.future)
    )
    model.fit(train, X=X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [model.predict(y=history, X=X) for history, _ in origins]


def neural(name: str, covariates: bool, seed: int, dataset: Dataset, train, origins, X) -> tuple[list, float]:
    import tsforecast

    cls = {"lstm": tsforecast.LSTMForecaster, "gru": tsforecast.GRUForecaster}[name]
    params = {"horizon": dataset.horizon, "random_state": seed}
    if covariates:
        params |= {"future_covariates": list(dataset.future) or None}
        params |= {"calendar_features": list(dataset.calendar) or None, "holidays": dataset.holidays}
    model = cls(**params)
    x = X if covariates and dataset.future else None
    started = time.perf_counter()
    model.fit(train, X=x)
    seconds = time.perf_counter() - started
    return [model.predict(y=history, X=x) for history, _ in origins], seconds


def validation_part(y: pd.DataFrame, dataset: Dataset) -> pd.DataFrame:
    """``y`` without its test period: the protocol then scores the origins just before it."""
    span = dataset.origins * dataset.horizon
    position = y.groupby("unique_id").cumcount()
    return y[position < y.groupby("unique_id")["y"].transform("size") - span].reset_index(drop=True)


def run_dataset(key: str, data_dir: Path, seeds: list, models: list, validation: bool = False) -> dict:
    dataset = DATASETS[key]
    y, X = load(data_dir, dataset)
    if validation:
        y = validation_part(y, dataset)
    train, origins = split(y, dataset)
    season = dataset.seasons[0]
    results = {}
    for period in dataset.seasons:
        results[f"snaive{period}"] = score(seasonal_naive(period, origins), origins, train, season)
    if dataset.arima and "arima_x" in models:
        started = time.perf_counter()
        results["arima_x"] = score(arima(dataset, train, origins, X), origins, train, season)
        results["arima_x"]["seconds"] = time.perf_counter() - started
    for name in ("lstm", "gru"):
        for covariates in (False, True):
            row = f"{name}_x" if covariates else name
            if row not in models:
                continue
            runs = {}
            for seed in seeds:
                forecasts, seconds = neural(name, covariates, seed, dataset, train, origins, X)
                runs[seed] = {**score(forecasts, origins, train, season), "fit_seconds": seconds}
                print(
                    f"{key} {row} seed {seed}: MAE {runs[seed]['mae']:.3f} ({seconds:.0f} s)", file=sys.stderr
                )
            results[row] = {
                metric: statistics.mean(r[metric] for r in runs.values())
                for metric in ("mae", "rmse", "smape", "mase")
            }
            results[row]["sd_mae"] = (
                statistics.stdev([r["mae"] for r in runs.values()]) if len(runs) > 1 else 0.0
            )
            results[row]["seeds"] = runs
    return results


def print_table(key: str, results: dict) -> None:
    print(f"\n{key}: mean over series (and over seeds for the neural rows)")
    print(f"{'model':10s} {'MAE':>16s} {'RMSE':>9s} {'sMAPE':>8s} {'MASE':>7s}")
    for name, r in results.items():
        sd = f" ± {r['sd_mae']:.2f}" if "sd_mae" in r else ""
        print(f"{name:10s} {r['mae']:>9.3f}{sd:>7s} {r['rmse']:>9.3f} {r['smape']:>8.2f} {r['mase']:>7.3f}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    parser.add_argument(
        "--datasets", default="electricity,m5,pjm", help="comma-separated: electricity, m5, pjm"
    )
    parser.add_argument("--models", default="arima_x,lstm,lstm_x,gru,gru_x")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds of the neural rows")
    parser.add_argument(
        "--validation",
        action="store_true",
        help="score the origins just before the test period (the test period is dropped): "
        "choose settings on these, never on the test scores",
    )
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s]
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    everything = {}
    for key in [k.strip() for k in args.datasets.split(",") if k.strip()]:
        everything[key] = run_dataset(key, args.data_dir, seeds, models, args.validation)
        print_table(key, everything[key])
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(everything, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
