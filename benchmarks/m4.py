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
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

import tsforecast
from tsforecast.datasets import M4_FREQUENCIES, M4Data, load_m4, load_m4_published
from tsforecast.exceptions import TsforecastError
from tsforecast.metrics import evaluate, owa


@dataclass(frozen=True)
class ModelSpec:
    """A benchmark entry: how to build the model, and the M4 benchmark it corresponds to."""

    factory: Callable[..., object]  # (dataset, parsed flags[, seed]) -> forecaster
    m4_name: str | None = None  # the method's row in the published results, if M4 ran it
    seeded: bool = False  # a neural network: trained once per seed


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


def _recurrent(class_name: str) -> Callable[[M4Data, argparse.Namespace], object]:
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
        return cls(**settings)

    return factory


# A model with settings of its own (the recurrent networks' --epochs, --hidden-size, ...) adds them to
# the "model options" group of build_parser and reads them from `args` in its factory.
MODELS: dict[str, ModelSpec] = {
    "naive": ModelSpec(_baseline("Naive"), "Naive"),
    "snaive": ModelSpec(_baseline("SeasonalNaive"), "sNaive"),
    "naive2": ModelSpec(_baseline("Naive2"), "Naive2"),
    "ses": ModelSpec(_baseline("SES"), "SES"),
    "holt": ModelSpec(_baseline("Holt"), "Holt"),
    "damped": ModelSpec(_baseline("DampedHolt"), "Damped"),
    "theta": ModelSpec(_baseline("Theta"), "Theta"),
    "autoets": ModelSpec(_baseline("AutoETS")),
    "autoarima": ModelSpec(_baseline("AutoARIMA")),
    "lstm": ModelSpec(_recurrent("LSTMForecaster"), seeded=True),
    "gru": ModelSpec(_recurrent("GRUForecaster"), seeded=True),
    "rnn": ModelSpec(_recurrent("RNNForecaster"), seeded=True),
}

# Published rows printed under the table besides the best one: the overall M4 winner and M4's own
# neural-network benchmarks, the yardsticks of this project's recurrent models.
REFERENCE_ROWS = {
    "118": "ES-RNN, overall M4 winner",
    "RNN": "M4's RNN benchmark",
    "MLP": "M4's MLP benchmark",
}


@dataclass
class Result:
    """One model's scores: a single run, or the mean over ``seeds`` (their spread in ``*_sd``)."""

    smape: float = math.nan
    mase: float = math.nan
    owa: float = math.nan
    seconds: float = math.nan
    error: str | None = None
    seeds: dict = dataclasses.field(default_factory=dict)  # seed -> Result of that seed
    smape_sd: float = math.nan
    mase_sd: float = math.nan
    owa_sd: float = math.nan


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
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    keys = [key.strip().lower() for key in args.models.split(",") if key.strip()]
    unknown = [key for key in keys if key not in MODELS]
    if not keys or unknown:
        parser.error(f"unknown model key(s) {unknown or [args.models]}; choose from: {', '.join(MODELS)}")
    keys = list(dict.fromkeys(keys))

    try:
        data = load_m4(args.frequency, args.data_dir, download=args.download)
        published = load_m4_published(args.frequency, data.folder)
    except TsforecastError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    n_total = data.n_series
    if args.limit is not None and args.limit < n_total:
        data = _first_series(data, args.limit)
    if args.validation:
        data, published = _validation_split(data), None

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
                result.owa_sd = _sd([one.owa for one in result.seeds.values()])

    print(_report(data, results, published, reference_note, n_total))
    if args.json is not None:
        _write_json(args.json, data, results)
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
    for name in ("smape", "mase", "seconds"):
        values = [getattr(r, name) for r in runs.values()]
        setattr(summary, name, statistics.mean(values))
        if name != "seconds":
            setattr(summary, f"{name}_sd", _sd(values))
    return summary


def _run(key: str, data: M4Data, args: argparse.Namespace, seed: int | None = None) -> Result:
    model = MODELS[key].factory(data, args) if seed is None else MODELS[key].factory(data, args, seed)
    label = key if seed is None else f"{key} (seed {seed})"
    _progress(args, f"{label}: fitting {type(model).__name__} on {data.n_series} series ...")
    try:
        start = time.perf_counter()
        forecasts = model.fit(data.train).predict(data.horizon)
        seconds = time.perf_counter() - start
        scores = evaluate(
            forecasts, data.test, data.train, season_length=data.season_length, metrics=("smape", "mase")
        ).mean()
    except Exception as error:  # one failing model must not lose the others' results
        _progress(args, f"{label}: failed with {type(error).__name__}: {error}", force=True)
        return Result(error=f"{type(error).__name__}: {error}")
    _progress(args, f"{label}: sMAPE {scores['smape']:.3f}, MASE {scores['mase']:.3f} in {seconds:.1f} s")
    return Result(smape=float(scores["smape"]), mase=float(scores["mase"]), seconds=seconds)


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


def _report(data: M4Data, results: dict, published, reference_note: str, n_total: int) -> str:
    header = ["model", "sMAPE", "MASE", "OWA", "seconds"]
    if published is not None:
        header += ["M4 method", "M4 sMAPE", "M4 MASE", "M4 OWA"]
    rows = []
    for key, result in results.items():
        row = [
            key if not result.seeds else f"{key} ({len(result.seeds)} seeds)",
            _num(result.smape, sd=result.smape_sd),
            _num(result.mase, sd=result.mase_sd),
            _num(result.owa, sd=result.owa_sd),
            _num(result.seconds, 1),
        ]
        if published is not None:
            m4_name = MODELS[key].m4_name
            theirs = published.loc[m4_name] if m4_name in published.index else {}
            row += [m4_name or "-", *(_num(theirs.get(name)) for name in ("smape", "mase", "owa"))]
        rows.append(row)
    lines = [
        f"M4 {data.frequency}: {data.n_series} series, horizon {data.horizon}, season length "
        f"{data.season_length}; OWA relative to {reference_note}.",
    ]
    if published is not None and data.n_series < n_total:
        lines.append(f"The M4 columns score all {n_total} series, this run the first {data.n_series}.")
    lines += [
        "",
        _table(header, rows, left={0, 5}),
    ]
    failures = [f"  {key}: {result.error}" for key, result in results.items() if result.error]
    if failures:
        lines += ["", "failed:", *failures]
    if published is not None:
        lines += [
            "",
            f"Published M4 {data.frequency} results for reference:",
            _reference_table(published, data),
        ]
    return "\n".join(lines)


def _reference_table(published: pd.DataFrame, data: M4Data) -> str:
    notes = {str(published["owa"].idxmin()): f"best {data.frequency} OWA", **REFERENCE_ROWS}
    rows = [
        [
            method,
            note,
            published.loc[method, "team"],
            *(_num(published.loc[method, c]) for c in ("smape", "mase", "owa")),
        ]
        for method, note in notes.items()
        if method in published.index
    ]
    return _table(["method", "note", "team", "sMAPE", "MASE", "OWA"], rows, left={0, 1, 2})


def _num(value, digits: int = 3, sd: float = math.nan) -> str:
    if value is None or pd.isna(value):
        return "-"
    return f"{value:.{digits}f}" + ("" if pd.isna(sd) else f" ± {sd:.{digits}f}")


def _table(header: list, rows: list, left: set) -> str:
    """Plain-text columns: the ``left`` ones left-aligned (text), the others right-aligned (numbers)."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]

    def line(cells):
        padded = (
            str(c).ljust(w) if i in left else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )
        return "  ".join(padded).rstrip()

    return "\n".join([line(header), *(line(row) for row in rows)])


def _write_json(path: Path, data: M4Data, results: dict) -> None:
    def finite(value):
        return float(value) if value is not None and math.isfinite(value) else None

    document = {
        "frequency": data.frequency,
        "n_series": data.n_series,
        "horizon": data.horizon,
        "results": {key: _result_json(result, finite) for key, result in results.items()},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", delete=False) as tmp:
        try:
            json.dump(document, tmp, indent=2, allow_nan=False)
        except BaseException:
            tmp.close()
            os.remove(tmp.name)
            raise
    os.replace(tmp.name, path)  # readers never see a half-written file


def _result_json(result: Result, finite) -> dict:
    names = ("smape", "mase", "owa", "seconds")
    document = {name: finite(getattr(result, name)) for name in names}
    if result.seeds:
        document.update({f"{name}_sd": finite(getattr(result, f"{name}_sd")) for name in names[:3]})
        document["seeds"] = {
            str(seed): {name: finite(getattr(one, name)) for name in names}
            for seed, one in result.seeds.items()
        }
    return document


def _progress(args: argparse.Namespace, message: str, force: bool = False) -> None:
    if force or not args.quiet:
        print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
