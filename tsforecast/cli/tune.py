"""``tsforecast tune``: an Optuna study of a recurrent forecaster against statistical baselines.

Settings come from flags or a YAML file (``--config``; flags win). The YAML keys are the flags'
long names with underscores, plus ``params`` (fixed estimator parameters) and ``search_space``::

    model: lstm
    horizon: 48
    season_length: 24
    n_trials: 40
    storage: postgresql://optuna:secret@db.internal/optuna
    study_name: m4-hourly-lstm
    params: {max_epochs: 10, device: cpu}
    search_space:
      hidden_size: {type: int, low: 16, high: 128, log: true}
      clip_norm: {type: float, low: 0.1, high: 10, log: true}
      tbptt_steps: {type: categorical, choices: [48, 96, 168]}

Start the same command on several machines against one database to share the study; each worker
stops once the study holds ``n_trials`` finished trials (failed ones do not count; a worker stops with
exit code 5 when several trials in a row fail). With ``seed``, every trial's network is seeded with
it, and the sampler draws trial ``k`` from a stream seeded with ``(seed, k)``: workers running the
same command draw different parameters, and one worker rerunning a new study draws the same ones.

Rerun the command to resume its study. A study records the settings that define its trials' scores
(the model, fixed ``--param`` values, the search space, metric, windows and data) and a rerun with
any of them changed is refused (exit code 2) naming each difference; pass another ``--study-name``
or ``--storage`` to start a new study. ``--n-trials``, ``--timeout``, ``--seed``, ``--quiet`` and the
number of workers may differ between runs.

DATA may also name an M4 subset, ``m4:hourly``: its training part is tuned on (horizon and season
length from the M4 specification) and ``--test m4`` scores the refitted model on its test part; the
files are read from ``--data-dir`` (see :func:`tsforecast.datasets.load_m4`).

``--covariates FILE`` (``covariates:`` in the YAML) gives every trial, the baselines that take
covariates, the refit and the test scores the covariates of the data; the model's parameters name
the columns' roles (``--param future_covariates=[load,price]``) and the file defines the study as
the data do. It is read, and checked against the data, before a study is opened.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from tsforecast.cli.common import (
    add_covariates_option,
    add_data_options,
    add_level_option,
    check_covariates,
    data_names,
    parse_levels,
    parse_params,
    read_covariates,
    read_history,
    read_input,
)

PRUNERS = ("median", "hyperband", "none")
_EPILOG = """\
examples:
  tsforecast tune m4:hourly --n-trials 20 --param max_epochs=10 --output tuned/
  tsforecast tune sales.csv --horizon 14 --season-length 7 --storage postgresql://optuna@db/optuna
  tsforecast tune prices.csv --covariates prices.csv --horizon 24 --season-length 24 \\
      --param future_covariates=[load_forecast,wind_forecast]"""
METRICS = ("mase", "smape", "mae", "rmse", "owa", "msis", "crps")  # tuning.scoring.METRICS (imports lazily)


@dataclass
class TuneSettings:
    """Everything ``tsforecast tune`` needs; defaults, then the YAML file, then the flags."""

    data: str | None = None
    data_dir: str | None = None
    covariates: str | None = None
    model: str = "lstm"
    params: dict = field(default_factory=dict)
    search_space: dict | None = None
    n_trials: int | None = None
    timeout: float | None = None
    storage: str | None = None
    study_name: str | None = None
    pruner: str = "median"
    metric: str = "mase"
    level: list | float | None = None
    horizon: int | None = None
    season_length: int | None = None
    n_windows: int = 2
    step: int | None = None
    baselines: str | list = "default"
    include_default: bool = True
    output: str | None = None
    test: str | None = None
    tracking: bool = False
    tracking_uri: str | None = None
    experiment: str | None = None
    seed: int | None = None
    heartbeat_interval: int = 60
    grace_period: int | None = None
    quiet: bool = False


def add_parser(subparsers) -> None:
    """Register the ``tune`` subcommand on an ``argparse`` subparsers object."""
    parser = subparsers.add_parser(
        "tune",
        help="tune a recurrent forecaster with Optuna against statistical baselines",
        description=(
            "Run (or resume) an Optuna study of an LSTM/GRU/RNN forecaster's parameters, scored on rolling-"
            "origin validation windows cut from the training data beside seasonal naive, Naive2, AutoETS "
            "and Theta. The study lives in --storage (default ./optuna.db): rerun to resume, or start the "
            "same command on several machines against one PostgreSQL/MySQL URL to share it. With "
            "--covariates FILE, every trial (and the baselines that take covariates) gets the covariates "
            "whose roles --param future_covariates=[...] (past_covariates, static_covariates) declares."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add(
        "data",
        nargs="?",
        help="training data: CSV or parquet, long (unique_id, ds, y) or wide; or an M4 subset, m4:hourly",
    )
    add("--data-dir", help="folder of the M4 files (default $TSFORECAST_DATA_DIR/m4, else the cache)")
    add("--config", metavar="YAML", help="read settings from a YAML file (flags override it)")
    add("--model", choices=_recurrent_models(), help="recurrent cell (default lstm)")
    add(
        "--param",
        action="append",
        metavar="KEY=VALUE",
        help="estimator parameter held fixed (repeatable); a default-space one is then not searched",
    )
    add("--n-trials", type=int, help="finished trials the study should hold (default 20)")
    add("--timeout", type=float, help="seconds after which this worker starts no new trial")
    add(
        "--storage",
        metavar="URL",
        help="Optuna RDB URL (sqlite:///, postgresql://, mysql+pymysql://) or SQLite file path "
        "(default sqlite:///optuna.db)",
    )
    add("--study-name", help="default: model, metric and a hash of the data")
    add("--pruner", choices=PRUNERS, help="default median")
    add(
        "--metric",
        choices=METRICS,
        help="objective on the validation windows (default mase); msis and crps score the intervals "
        "of --level (default 95; a recurrent model then needs --param quantiles=[0.025,0.975])",
    )
    add_level_option(parser, what="the intervals every model is scored on (msis, coverage, acd)")
    add("--horizon", type=int, help="forecast steps (default: the estimator's, 48)")
    add("--season-length", type=int, help="seasonal period (default: the estimator's, 24)")
    add("--n-windows", type=int, help="rolling-origin validation windows (default 2)")
    add("--step", type=int, help="steps between window origins (default: horizon)")
    add("--baselines", help="comma-separated: snaive,naive2,autoets,theta (default), ses, holt, ..., or none")
    add(
        "--no-default", dest="include_default", action="store_const", const=False, help="skip the default row"
    )
    add("--output", metavar="DIR", help="write leaderboard.csv, best_params.json and the refitted model")
    add(
        "--test",
        metavar="FILE",
        help="test part (a file, or m4 for the M4 subset's): sMAPE/MASE/OWA of the tuned model and baselines",
    )
    add("--tracking", "--track", action="store_const", const=True, help="log the study to MLflow")
    add("--tracking-uri", help="MLflow tracking URI (implies --tracking)")
    add("--experiment", help="MLflow experiment name")
    add(
        "--seed",
        type=int,
        help="seeds every trial's network, and the sampler per trial number (workers still differ)",
    )
    add("--heartbeat-interval", type=int, help="seconds between trial heartbeats (default 60)")
    add("--grace-period", type=int, help="seconds without heartbeat before a trial is failed (default 2x)")
    # SUPPRESS: `tsforecast -q tune` (the command's own --quiet) is not reset when this flag is absent.
    add(
        "--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress output, only the results"
    )
    add_data_options(parser)
    add_covariates_option(parser, flag="--param")
    parser.set_defaults(handler=run)


def run(args) -> int:
    """Run the ``tune`` subcommand: the study, its leaderboard and verdict, and the files asked for.

    Returns 0 and raises what fails (the ``tsforecast`` command maps it to its exit codes: 2 for a
    bad setting, 3 for bad data, 5 when no trial could train).
    """
    return _run(settings_from(args), args)


def settings_from(args) -> TuneSettings:
    """Merge the defaults, the YAML file named by ``--config`` and the flags given."""
    from tsforecast.exceptions import InvalidParameterError

    values = {}
    if getattr(args, "config", None):
        values.update(_read_config(args.config))
    flags = {k: v for k, v in vars(args).items() if k in TuneSettings.__dataclass_fields__ and v is not None}
    if "level" in flags:
        flags["level"] = parse_levels(flags["level"])
    if not flags.get("quiet"):
        flags.pop("quiet", None)  # absent or the command's default: the YAML file may say otherwise
    values.update(flags)
    params = dict(values.pop("params", None) or {})
    params.update(parse_params(getattr(args, "param", None) or []))
    if values.get("tracking_uri"):
        values["tracking"] = True
    try:
        settings = TuneSettings(**values, params=params)
    except TypeError as error:
        raise InvalidParameterError(f"bad setting: {error}") from None
    if settings.data is None:
        raise InvalidParameterError("name the training data file (positional DATA, or data: in --config).")
    if settings.model not in _recurrent_models():
        raise InvalidParameterError(f"model must be one of {_recurrent_models()}; got {settings.model!r}.")
    return settings


def _run(settings: TuneSettings, args) -> int:
    from tsforecast.data.io import write_bytes, write_frame
    from tsforecast.registry import estimator_class
    from tsforecast.tuning import Validation, make_storage, tune

    columns = data_names(args)
    train, test, spec = _read_data(settings, args)
    X = read_covariates(settings.covariates, args)
    params = dict(settings.params)
    for name in ("horizon", "season_length"):
        if getattr(settings, name) is not None:
            params[name] = getattr(settings, name)
        elif name in spec:
            params[name] = spec[name]
    if settings.seed is not None:
        params.setdefault("random_state", settings.seed)
    params.setdefault("verbose", False)
    estimator = _estimator(estimator_class(settings.model), params)
    check_covariates({settings.model: estimator}, bool(settings.covariates))
    storage = make_storage(
        settings.storage, heartbeat_interval=settings.heartbeat_interval, grace_period=settings.grace_period
    )
    result = tune(
        estimator,
        train,
        X=X,
        search_space=_space(settings.search_space),
        n_trials=settings.n_trials,
        timeout=settings.timeout,
        storage=storage,
        study_name=settings.study_name,
        pruner=settings.pruner,
        baselines=settings.baselines,
        validation=Validation(settings.n_windows, settings.step),
        metric=settings.metric,
        level=settings.level,
        # Parameters the user set are held, unless their own search space names them.
        hold=[] if settings.search_space else list(settings.params),
        include_default=settings.include_default,
        random_state=settings.seed,
        tracking=settings.tracking,
        tracking_uri=settings.tracking_uri,
        experiment=settings.experiment,
        verbose=not settings.quiet,
        freq=args.freq,
        **columns,
    )
    print(f"study {result.study.study_name}: trials {result.n_trials}")
    print(result.leaderboard.to_string(float_format=lambda v: f"{v:.4f}"))
    print(result.verdict)
    print(f"best parameters (trial {result.best_trial_}): {json.dumps(result.best_params_)}")
    if settings.output:
        folder = Path(settings.output)
        write_frame(result.leaderboard.reset_index(), folder / "leaderboard.csv")
        document = {
            "study": result.study.study_name,
            "storage": _redacted(storage),
            "metric": result.metric,
            "best_trial": result.best_trial_,
            "best_value": result.best_value_,
            "best_params": result.best_params_,
            "trials": result.n_trials,
            "beat_best_baseline": result.beat_best_baseline,
            "verdict": result.verdict,
            "settings": {k: v for k, v in dataclasses.asdict(settings).items() if k != "storage"},
        }
        # Each file appears whole or not at all: a rerun or a crash never leaves half a file.
        write_bytes(
            (json.dumps(document, indent=2, default=str) + "\n").encode(), folder / "best_params.json"
        )
        staged = folder / ".model.safetensors.tmp"
        result.best_estimator.save(staged)
        os.replace(staged, folder / "model.safetensors")
        print(f"wrote {folder}/leaderboard.csv, best_params.json and model.safetensors")
    if test is not None:
        scores = result.score_holdout(test, include_default=settings.include_default)
        print("\ntest set:")
        print(scores.to_string(float_format=lambda v: f"{v:.4f}"))
        if settings.output:
            write_frame(scores.reset_index(), Path(settings.output) / "test_scores.csv")
    return 0


def _recurrent_models() -> list[str]:
    """The registry names this command tunes: the recurrent forecasters."""
    from tsforecast.registry import MODELS

    return sorted(name for name, found in MODELS.items() if found.neural)


def _read_data(settings: TuneSettings, args):
    """Training part, test part (or None) and the data's own horizon/season (M4 subsets).

    All are read before any tuning starts, so that a bad test file fails fast.
    """
    from tsforecast.exceptions import InvalidParameterError

    source = str(settings.data)
    if source.lower().startswith("m4:"):
        from tsforecast.datasets import load_m4

        data = load_m4(source[3:], settings.data_dir)  # local files, else a one-off download
        if settings.test not in (None, "m4", source):
            raise InvalidParameterError(
                f"--test with data {source}: write --test m4 (its test part) or omit it."
            )
        spec = {"horizon": data.horizon, "season_length": data.season_length}
        return data.train, (data.test if settings.test else None), spec
    if settings.test == "m4":
        raise InvalidParameterError("--test m4 needs M4 data, e.g. DATA m4:hourly.")
    test = read_input(settings.test, args) if settings.test else None
    return read_history(source, args), test, {}  # a long parquet dataset stays a path


def _estimator(cls, params: dict):
    """The estimator of the study, its parameters checked before a storage is opened or created."""
    from tsforecast.exceptions import InvalidParameterError
    from tsforecast.tuning.space import check_parameters

    unknown = sorted(set(params) - set(cls._get_param_names()))
    if unknown:
        raise InvalidParameterError(
            f"{cls.__name__} has no parameter(s) {unknown}; its parameters are {cls._get_param_names()}."
        )
    estimator = cls(**params)
    check_parameters(estimator)
    return estimator


def _space(spec):
    """A YAML search space (name -> {type, low, high, log, step, choices}) as Optuna distributions."""
    if not spec:
        return None
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    from tsforecast.exceptions import InvalidParameterError

    space = {}
    for name, item in spec.items():
        item = dict(item or {})
        kind = str(item.pop("type", "")).lower()
        try:
            if kind == "int":
                space[name] = IntDistribution(**item)
            elif kind == "float":
                space[name] = FloatDistribution(**item)
            elif kind == "categorical":
                space[name] = CategoricalDistribution(item["choices"])
            else:
                raise ValueError(f"type must be int, float or categorical, not {kind or 'missing'!r}")
        except (TypeError, ValueError, KeyError) as error:
            raise InvalidParameterError(
                f"search_space {name!r}: {error}. Write e.g. {{type: int, low: 8, high: 128, log: true}} or "
                "{type: categorical, choices: [24, 48]}."
            ) from None
    return space


def _read_config(path) -> dict:
    import yaml

    from tsforecast.exceptions import InvalidParameterError
    from tsforecast.pipelines.yaml_loader import load_yaml

    try:
        values = load_yaml(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise InvalidParameterError(f"--config {path}: cannot be read as YAML: {error}") from None
    if not isinstance(values, dict):
        raise InvalidParameterError(
            f"--config {path}: expected a mapping of settings, got {type(values).__name__}."
        )
    values = {str(k).replace("-", "_"): v for k, v in values.items()}
    unknown = sorted(set(values) - set(TuneSettings.__dataclass_fields__))
    if unknown:
        known = sorted(TuneSettings.__dataclass_fields__)
        raise InvalidParameterError(f"--config {path}: unknown setting(s) {unknown}; known: {known}.")
    return values


def _redacted(storage) -> str:
    from tsforecast.tuning.storage import storage_url

    return storage_url(storage)
