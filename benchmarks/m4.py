"""M4 benchmark: fit forecasters on one M4 frequency subset and score them as the competition did.

For each model: fit on the training part, forecast the competition's horizon, time fit + predict,
and score sMAPE and MASE per series (MASE scaled by the series' own seasonal-naive in-sample error)
averaged over series, and OWA relative to Naive2. Naive2's published figures are the OWA reference
when ``{frequency}_published_results.csv`` is in the data folder and every series is scored;
otherwise Naive2 is run alongside. The published figures of the M4 benchmark of the same name are
printed beside ours.

    python benchmarks/m4.py --frequency hourly --data-dir ../shared/data/m4 \\
        --models naive,snaive,naive2,ses,holt,damped,theta,autoets --json outputs/m4_hourly.json

The recurrent models are trained once per seed of ``--seeds 0,1,2``: their rows show the mean and
standard deviation over the seeds, and the JSON keeps each seed's scores.

``--intervals 95`` forecasts 95% intervals and adds M4's MSIS (mean over series, scaled at the
seasonal period), coverage and ACD (pooled over all points), beside ``{frequency}_published_intervals.csv``.
A plain network (``lstm``) stays a point model: its fit time is the ``x point`` reference of
``lstm-q`` (the quantile head bounding the level), ``lstm-conformal`` (``ConformalIntervals`` around
``lstm``) and ``lstm-cqr`` (``ConformalIntervals(method="quantile")`` around ``lstm-q``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from m4_report import report, write_json  # the tables and the JSON, beside this script

import tsforecast
from tsforecast.datasets import M4_FREQUENCIES, M4Data, load_m4, load_m4_published
from tsforecast.exceptions import TsforecastError
from tsforecast.metrics import evaluate, interval_quantiles, owa, pooled_coverage


@dataclass(frozen=True)
class ModelSpec:
    """A benchmark entry: how to build the model, and the M4 benchmark it corresponds to."""

    factory: Callable[..., object]  # (dataset, parsed flags[, seed]) -> forecaster
    m4_name: str | None = None  # the method's row in the published results, if M4 ran it
    seeded: bool = False  # a neural network: trained once per seed
    m4_intervals: str | None = None  # its row in the published interval results
    intervals: bool = True  # forecasts intervals under --intervals (a plain network does not)
    point: str | None = None  # the point model its fit time is compared with (same seed)


def _baseline(class_name: str) -> Callable[[M4Data, argparse.Namespace], object]:
    def factory(data: M4Data, args: argparse.Namespace):
        cls = getattr(tsforecast, class_name)  # lazy: only the models asked for are imported
        settings = {
            "horizon": data.horizon,
            "season_length": data.season_length,
            "n_jobs": args.n_jobs,
            "verbose": not args.quiet,
        }
        accepted = cls._get_param_names()
        return cls(**{name: value for name, value in settings.items() if name in accepted})

    return factory


def _recurrent(class_name: str, kind: str = "point") -> Callable[..., object]:
    """A network: ``"point"``, ``"quantile"`` (its head bounds the level), ``"conformal"``, ``"cqr"``."""

    def factory(data: M4Data, args: argparse.Namespace, seed: int = 0):
        cls = getattr(tsforecast, class_name)  # imports torch only when a network is asked for
        settings = {
            "horizon": data.horizon,
            "season_length": data.season_length,
            "random_state": seed,
            "device": args.device,
            "verbose": not args.quiet,
        }
        flags = {"max_epochs": args.epochs, "hidden_size": args.hidden_size, "max_time": args.max_time}
        settings.update({name: value for name, value in flags.items() if value is not None})
        settings.update(args.param)
        level = args.intervals or DEFAULT_LEVEL
        if kind in ("quantile", "cqr"):
            settings["quantiles"] = list(interval_quantiles(level))
        if kind in ("point", "quantile"):
            return cls(**settings)
        method, levels = ("quantile", [level]) if kind == "cqr" else ("absolute", None)
        return tsforecast.ConformalIntervals(
            cls(**settings),
            n_windows=args.conformal_windows,
            method=method,
            calibration_levels=levels,
            refit={"warm": "warm", "full": True, "none": False}[args.conformal_refit],
            scale=None if args.conformal_scale == "none" else args.conformal_scale,
        )

    return factory


# A model with settings of its own (the recurrent networks' --epochs, --hidden-size, ...) adds them to
# the "model options" group of build_parser and reads them from `args` in its factory.
MODELS: dict[str, ModelSpec] = {
    "naive": ModelSpec(_baseline("Naive"), "Naive", m4_intervals="Naive"),
    "snaive": ModelSpec(_baseline("SeasonalNaive"), "sNaive"),
    "naive2": ModelSpec(_baseline("Naive2"), "Naive2"),
    "ses": ModelSpec(_baseline("SES"), "SES"),
    "holt": ModelSpec(_baseline("Holt"), "Holt"),
    "damped": ModelSpec(_baseline("DampedHolt"), "Damped"),
    "theta": ModelSpec(_baseline("Theta"), "Theta"),
    "autoets": ModelSpec(_baseline("AutoETS"), m4_intervals="ETS"),
    "autoarima": ModelSpec(_baseline("AutoARIMA"), m4_intervals="ARIMA"),
}
for _key, _class in (("lstm", "LSTMForecaster"), ("gru", "GRUForecaster"), ("rnn", "RNNForecaster")):
    MODELS[_key] = ModelSpec(_recurrent(_class), seeded=True, intervals=False)
    for _kind, _suffix in (("quantile", "q"), ("conformal", "conformal"), ("cqr", "cqr")):
        MODELS[f"{_key}-{_suffix}"] = ModelSpec(_recurrent(_class, _kind), seeded=True, point=_key)
DEFAULT_LEVEL = 95.0  # the quantiles of the "-q" rows without --intervals
SPREAD = ("smape", "mase", "msis", "coverage", "acd")  # shown as mean ± sd over seeds


@dataclass
class Result:
    """One model's scores: a single run, or the mean over ``seeds`` (their spread in ``sd``)."""

    smape: float = math.nan
    mase: float = math.nan
    owa: float = math.nan
    seconds: float = math.nan
    error: str | None = None
    seeds: dict = dataclasses.field(default_factory=dict)  # seed -> Result of that seed
    sd: dict = dataclasses.field(default_factory=dict)  # score -> its standard deviation over seeds
    msis: float = math.nan  # with --intervals
    coverage: float = math.nan
    acd: float = math.nan
    fit_seconds: float = math.nan
    fit_ratio: float = math.nan  # fit time over the point model's, same seed


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Score forecasters on an M4 frequency subset (sMAPE, MASE, OWA, time).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--frequency", default="hourly", type=str.lower, choices=list(M4_FREQUENCIES))
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="folder holding {Frequency}-train.csv and -test.csv (default: $TSFORECAST_DATA_DIR/m4, "
        "else ../shared/data/m4, else the download cache)",
    )
    download = parser.add_mutually_exclusive_group()
    download.add_argument(
        "--download",
        dest="download",
        action="store_const",
        const=True,
        default="auto",
        help="download the files missing from --data-dir into it (default: read local files, else "
        "download them once into the user cache, ~/.cache/tsforecast/m4)",
    )
    download.add_argument(
        "--no-download", dest="download", action="store_const", const=False, help="never download"
    )
    parser.add_argument(
        "--models",
        default="naive,snaive,naive2",
        help=f"comma-separated model keys, from: {', '.join(MODELS)}",
    )
    parser.add_argument("--limit", type=_positive_int, help="score only the first N series")
    parser.add_argument(
        "--validation",
        action="store_true",
        help="score on the last horizon of the training part instead of the test set (for choosing "
        "settings; OWA then relative to Naive2 run on the same window)",
    )
    parser.add_argument(
        "--intervals",
        type=float,
        metavar="LEVEL",
        help="forecast LEVEL%% intervals (e.g. 95) and add MSIS, coverage, ACD, fit seconds and the fit "
        "time over the point network's (x point), beside {frequency}_published_intervals.csv",
    )
    parser.add_argument("--json", type=Path, help="also write the scores to this JSON file")
    parser.add_argument("--quiet", action="store_true", help="no progress output, only the table")
    options = parser.add_argument_group("model options")
    options.add_argument("--n-jobs", type=int, default=1, help="parallel jobs of each baseline")
    options.add_argument(
        "--seeds",
        type=_seeds,
        default=[0],
        help="comma-separated random_state values of the recurrent networks (one fit per seed)",
    )
    options.add_argument("--device", default="auto", help="device of the recurrent networks")
    options.add_argument("--epochs", type=_positive_int, help="max_epochs of the networks (default: theirs)")
    options.add_argument("--hidden-size", type=_positive_int, help="hidden_size of the networks")
    options.add_argument(
        "--param",
        type=_param,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other parameter of the networks (repeatable), e.g. --param num_layers=1",
    )
    options.add_argument(
        "--max-time", type=float, help="safety cap on a network's training time, in seconds (warns when hit)"
    )
    options.add_argument(
        "--conformal-windows",
        type=_positive_int,
        default=3,
        help="calibration windows of the -conformal and -cqr rows, cut from the end of the training part "
        "(ConformalIntervals' default; one window of 414 hourly series gives 414 scores per step)",
    )
    options.add_argument(
        "--conformal-refit",
        choices=("warm", "full", "none"),
        default="warm",
        help="how the -conformal and -cqr rows learn the calibration windows' data (ConformalIntervals' "
        "refit: warm, True, False)",
    )
    options.add_argument(
        "--conformal-scale",
        choices=("auto", "model", "seasonal", "none"),
        default="auto",
        help="what the -conformal and -cqr rows divide each calibration error by (ConformalIntervals' scale; "
        "auto: the network's own recent error)",
    )
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    keys = [key.strip().lower() for key in args.models.split(",") if key.strip()]
    unknown = [key for key in keys if key not in MODELS]
    if not keys or unknown:
        parser.error(f"unknown model key(s) {unknown or [args.models]}; choose from: {', '.join(MODELS)}")
    keys = list(dict.fromkeys(keys))
    if args.intervals is not None and not 0 < args.intervals < 100:
        parser.error(f"--intervals must be a percent strictly between 0 and 100; got {args.intervals:g}")

    try:
        data = load_m4(args.frequency, args.data_dir, download=args.download)
        published = load_m4_published(args.frequency, data.folder)
    except TsforecastError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    n_total = data.n_series
    if args.limit is not None and args.limit < n_total:
        data = _first_series(data, args.limit)
    intervals = _published_intervals(data) if args.intervals == 95 else None  # M4 scored 95% only
    if args.validation:
        data, published, intervals = _validation_split(data), None, None

    results = {
        key: _run_seeds(key, data, args) if MODELS[key].seeded else _run(key, data, args) for key in keys
    }
    reference, reference_note = _naive2_reference(data, published, n_total, results, args)
    for result in results.values():
        if result.error is None and reference is not None:
            for one in result.seeds.values():
                one.owa = owa(one.smape, one.mase, *reference)
            result.owa = owa(result.smape, result.mase, *reference)
            if result.seeds:
                result.owa = statistics.mean(one.owa for one in result.seeds.values())
                result.sd["owa"] = _sd([one.owa for one in result.seeds.values()])
    for key, result in results.items():
        _fit_ratio(result, results.get(MODELS[key].point))

    print(report(data, results, MODELS, published, reference_note, n_total, args.intervals, intervals))
    if args.json is not None:
        write_json(args.json, data, results, MODELS, args.intervals, intervals)
    failed = [key for key, result in results.items() if result.error is not None]
    if failed:
        print(f"error: model(s) {failed} failed; see the table.", file=sys.stderr)
        return 1
    return 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1; got {text}")
    return value


def _published_intervals(data: M4Data) -> pd.DataFrame | None:
    """``{frequency}_published_intervals.csv`` of the data folder (method -> team, msis, acd), if there."""
    path = Path(data.folder) / f"{data.frequency}_published_intervals.csv"
    if not path.is_file():
        return None
    table = pd.read_csv(path, dtype={"method": str}).set_index("method")
    return table.rename(columns={f"{data.frequency}_{name}": name for name in ("msis", "acd")})


def _validation_split(data: M4Data) -> M4Data:
    """The training part without its last horizon, and that horizon as the data to score."""
    train = data.train.groupby("unique_id", sort=False, group_keys=False)
    last = train.tail(data.horizon)
    return dataclasses.replace(data, train=data.train.drop(last.index).reset_index(drop=True), test=last)


def _first_series(data: M4Data, n: int) -> M4Data:
    keep = data.train["unique_id"].unique()[:n]  # in file order
    subset = {
        name: frame[frame["unique_id"].isin(keep)].reset_index(drop=True)
        for name, frame in (("train", data.train), ("test", data.test))
    }
    return dataclasses.replace(data, **subset)


def _param(text: str) -> tuple:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"must be KEY=VALUE; got {text}")
    try:
        return key, json.loads(value)  # numbers, true/false, null, quoted strings
    except json.JSONDecodeError:
        return key, value


def _seeds(text: str) -> list:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be comma-separated integers; got {text}") from None
    if not seeds:
        raise argparse.ArgumentTypeError("give at least one seed")
    return list(dict.fromkeys(seeds))


def _sd(values: list) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def _run_seeds(key: str, data: M4Data, args: argparse.Namespace) -> Result:
    """A neural model once per seed: the mean and standard deviation over the seeds."""
    runs = {seed: _run(key, data, args, seed) for seed in args.seeds}
    failed = [r.error for r in runs.values() if r.error is not None]
    if failed:
        return Result(error=failed[0], seeds=runs)
    summary = Result(seeds=runs)
    for name in (*SPREAD, "seconds", "fit_seconds"):
        values = [getattr(r, name) for r in runs.values()]
        if any(math.isnan(value) for value in values):
            continue  # not measured: a point model's interval scores
        setattr(summary, name, statistics.mean(values))
        if name in SPREAD:
            summary.sd[name] = _sd(values)
    return summary


def _fit_ratio(result: Result, point: Result | None) -> None:
    """Each seed's fit time over the point model's fit of the same seed; their mean and sd."""
    if point is None or point.error is not None or result.error is not None:
        return
    for seed, one in result.seeds.items():
        one.fit_ratio = one.fit_seconds / point.seeds[seed].fit_seconds
    ratios = [one.fit_ratio for one in result.seeds.values()]
    result.fit_ratio, result.sd["fit_ratio"] = statistics.mean(ratios), _sd(ratios)


def _run(key: str, data: M4Data, args: argparse.Namespace, seed: int | None = None) -> Result:
    model = MODELS[key].factory(data, args) if seed is None else MODELS[key].factory(data, args, seed)
    label = key if seed is None else f"{key} (seed {seed})"
    _progress(args, f"{label}: fitting {type(model).__name__} on {data.n_series} series ...")
    level = args.intervals if MODELS[key].intervals else None
    try:
        start = time.perf_counter()
        model.fit(data.train)
        fit_seconds = time.perf_counter() - start
        forecasts = model.predict(data.horizon, level=level)
        seconds = time.perf_counter() - start
        scores = _score(forecasts, data, level)
    except Exception as error:  # one failing model must not lose the others' results
        _progress(args, f"{label}: failed with {type(error).__name__}: {error}", force=True)
        return Result(error=f"{type(error).__name__}: {error}")
    extra = "" if level is None else f", MSIS {scores['msis']:.3f}, coverage {scores['coverage']:.1%}"
    _progress(
        args, f"{label}: sMAPE {scores['smape']:.3f}, MASE {scores['mase']:.3f}{extra} in {seconds:.1f} s"
    )
    return Result(**scores, seconds=seconds, fit_seconds=fit_seconds)


def _score(forecasts: pd.DataFrame, data: M4Data, level: float | None) -> dict:
    """sMAPE, MASE (and MSIS) averaged over series; coverage and ACD of all points pooled, as in M4."""
    metrics = ("smape", "mase") if level is None else ("smape", "mase", "msis")
    means = evaluate(forecasts, data.test, data.train, data.season_length, metrics, level=level).mean()
    scores = {"smape": float(means["smape"]), "mase": float(means["mase"])}
    if level is not None:
        pooled = pooled_coverage(data.test.merge(forecasts, on=["unique_id", "ds"]), level=level)
        named = {"msis": means, "coverage": pooled, "acd": pooled}
        scores |= {name: float(values[f"{name}_{level:g}"]) for name, values in named.items()}
    return scores


def _naive2_reference(data, published, n_total, results, args):
    """Naive2's (sMAPE, MASE): published when they describe the same series, else run here."""
    if published is not None and "Naive2" in published.index and data.n_series == n_total:
        row = published.loc["Naive2"]
        note = f"Naive2's published sMAPE {row['smape']:.3f} / MASE {row['mase']:.3f}"
        return (float(row["smape"]), float(row["mase"])), note
    naive2 = results.get("naive2") or _run("naive2", data, args)
    if naive2.error is not None:
        return None, f"Naive2 (failed: {naive2.error}), so no OWA"
    note = f"Naive2 as run here (sMAPE {naive2.smape:.3f} / MASE {naive2.mase:.3f})"
    return (naive2.smape, naive2.mase), note


def _progress(args: argparse.Namespace, message: str, force: bool = False) -> None:
    if force or not args.quiet:
        print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
