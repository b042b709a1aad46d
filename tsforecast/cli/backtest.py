"""``tsforecast backtest``: several models on identical rolling-origin windows, one table."""

from __future__ import annotations

import logging

from tsforecast.cli import common

logger = logging.getLogger(__name__)

_DESCRIPTION = """\
Backtest models on the latest windows of every series of DATA (rolling origin, identical windows
for all models) and print one row per model: sMAPE, MASE, MAE, RMSE averaged over series, then
windows (M4's convention), and OWA relative to Naive2 when naive2 is among the models.

With --covariates FILE, the models that take covariates (autoarima) get the columns named by -p
future_covariates=[...] (and past_covariates, static_covariates, categorical_covariates): every
such model, or one model with its prefix (-p autoarima.future_covariates=[...]). Each window's fit
sees the rows up to its origin, its forecast the future-known values of its horizon; the other
models compare as without covariates.

With --level 95 every model forecasts its central 95% interval too (y_lo_95, y_hi_95 in
--forecasts-output) and the table adds M4's interval metrics: msis_95 (mean scaled interval score),
coverage_95 and acd_95 (absolute coverage difference; both pooled over all of a model's points, as
M4 computed them); --metrics chooses among them and crps, pinball. Every model must have intervals:
the baselines do, a recurrent model fitted with the quantiles that bound the level (-p
lstm.quantiles=[0.025,0.975] for 95%)."""

_EPILOG = """\
examples:
  tsforecast backtest sales.csv --models lstm,snaive,naive2,theta --horizon 14 --season-length 7 \\
      --n-windows 3 -p lstm.max_epochs=20 --output comparison.csv
  tsforecast backtest sales.parquet --models snaive,ses --horizon 7 --track \\
      --forecasts-output backtest.parquet
  tsforecast backtest sales.csv --models snaive,ets,theta --horizon 14 --season-length 7 --level 80,95
  tsforecast backtest prices.csv --covariates prices.csv --models autoarima,snaive --horizon 24 \\
      --season-length 24 --n-windows 7 -p future_covariates=[load_forecast,wind_forecast]"""

POINT_METRICS = ("smape", "mase", "mae", "rmse")
#: Scored on the bounds of the --level intervals (pinball and crps read them as quantiles).
INTERVAL_METRICS = ("msis", "coverage", "acd", "crps", "pinball")
METRICS = POINT_METRICS + INTERVAL_METRICS
#: Added to the default metrics by --level: those M4 scored its 95% intervals with.
DEFAULT_INTERVAL_METRICS = ("msis", "coverage", "acd")


def add_parser(subparsers) -> None:
    """Register the ``backtest`` subcommand on an ``argparse`` subparsers object."""
    from tsforecast.registry import MODELS

    parser = common.add_command(
        subparsers,
        "backtest",
        help="compare models on the latest windows of a data file",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        handler=run,
    )
    parser.add_argument("data", help="history: CSV or parquet, long, wide or single-series layout")
    parser.add_argument(
        "--models", "-m", required=True, help=f"comma-separated model names, from: {', '.join(MODELS)}"
    )
    parser.add_argument(
        "--n-windows", type=common.positive_int, default=1, help="number of origins (default: 1)"
    )
    parser.add_argument(
        "--step", type=common.positive_int, help="distance between origins (default: the horizon)"
    )
    parser.add_argument(
        "--metrics",
        help=f"comma-separated, from: {', '.join(METRICS)} (default: {','.join(POINT_METRICS)}, with "
        f"--level also {','.join(DEFAULT_INTERVAL_METRICS)}); {', '.join(INTERVAL_METRICS)} need --level",
    )
    common.add_level_option(parser, what="every model forecasts them and the table scores them")
    parser.add_argument("--output", "-o", help="write the comparison table (.csv or .parquet)")
    parser.add_argument(
        "--forecasts-output", help="write every backtest forecast with its actual (.csv or .parquet)"
    )
    common.add_model_options(parser, several=True)
    common.add_data_options(parser)
    common.add_covariates_option(parser, several=True)
    common.add_tracking_options(parser, register=False)


def run(args) -> int:
    """Backtest the named models on the latest windows of the data file and print the comparison.

    The models are built and the output names checked before the file is read. Returns 0; errors
    propagate (the ``tsforecast`` command maps them to its exit codes).
    """
    from tsforecast.backtesting import compare
    from tsforecast.data.io import write_frame
    from tsforecast.exceptions import InvalidParameterError
    from tsforecast.registry import build_estimator

    names = list(dict.fromkeys(n.strip().lower() for n in args.models.split(",") if n.strip()))
    levels = common.parse_levels(args.level)
    metrics = _metrics(args.metrics, levels)
    flat = common.parse_params(args.param)
    shared = {key: flat.pop(key) for key in list(flat) if key in common.COVARIATE_PARAMS}
    params = _params_by_model(flat, names)
    for name in names:
        common.check_covariate_params(name, params.get(name, {}))
    defaults = {**common.model_defaults(args), **shared}  # applied where a model has the parameter
    estimators = {
        name: build_estimator(name, params.get(name), defaults=defaults, where=name) for name in names
    }
    for key in shared:
        if not any(key in estimator.get_params() for estimator in estimators.values()):
            raise InvalidParameterError(
                f"--param {key}: none of the models {', '.join(names)} takes it; add a model that takes "
                "covariates (such as autoarima)."
            )
    common.check_covariates(estimators, bool(args.covariates))
    for path, option in ((args.output, "--output"), (args.forecasts_output, "--forecasts-output")):
        if path:
            common.check_output(path, option)
    history = common.read_history(args.data, args)  # a long parquet dataset stays a path
    X = common.read_covariates(args.covariates, args)
    logger.info(
        "backtesting %s on %s: %d window(s) of %d steps",
        ", ".join(names),
        args.data,
        args.n_windows,
        args.horizon,
    )
    result = compare(
        estimators,
        history,
        args.horizon,
        args.n_windows,
        args.step,
        X=X,
        level=levels,
        season_length=args.season_length,
        metrics=metrics,
        freq=args.freq,
        verbose=bool(args.progress),
        **common.data_names(args),
    )
    if args.track:
        from tsforecast import tracking

        run_id = tracking.track_backtest(
            result, experiment=args.experiment, tracking_uri=args.tracking_uri, dataset_name=str(args.data)
        )
        logger.info("MLflow run %s", run_id)
    if args.output:
        write_frame(result.summary.reset_index(), args.output)
    if args.forecasts_output:
        write_frame(result.forecasts, args.forecasts_output)
    windows = f"{args.n_windows} window(s) of {args.horizon} steps"
    common.print_frame(result.summary, f"backtest of {args.data}: {windows}")
    return 0


def _metrics(text: str | None, levels: list | None) -> list:
    """The ``--metrics`` names (default: the point metrics, and M4's interval metrics with ``--level``)."""
    from tsforecast.exceptions import InvalidParameterError

    if text is None:
        return list(POINT_METRICS + (DEFAULT_INTERVAL_METRICS if levels else ()))
    metrics = list(dict.fromkeys(m.strip().lower() for m in text.split(",") if m.strip()))
    unknown = [m for m in metrics if m not in METRICS]
    if unknown or not metrics:
        raise InvalidParameterError(
            f"--metrics: unknown metric(s) {unknown or [text]}; choose from {METRICS}."
        )
    if not levels and (need := [m for m in metrics if m in INTERVAL_METRICS]):
        raise InvalidParameterError(
            f"--metrics {','.join(need)}: interval metrics score the intervals of --level; add it, e.g. "
            "--level 95."
        )
    return metrics


def _params_by_model(flat: dict, names: list) -> dict:
    """``{"lstm.hidden_size": 8}`` as ``{"lstm": {"hidden_size": 8}}``."""
    from tsforecast.exceptions import InvalidParameterError

    params: dict = {}
    for key, value in flat.items():
        model, sep, name = key.partition(".")
        if not sep or model not in names:
            raise InvalidParameterError(
                f"--param {key}: name the model first, e.g. {names[0]}.{key.split('.')[-1]}=...; "
                f"models: {', '.join(names)}."
            )
        params.setdefault(model, {})[name] = value
    return params
