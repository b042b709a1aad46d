"""``tsforecast fit``: fit one model on a data file and save it (optionally tracked in MLflow)."""

from __future__ import annotations

import logging

from tsforecast.cli import common

logger = logging.getLogger(__name__)

_DESCRIPTION = """\
Fit a forecaster on DATA and save it: recurrent models (lstm, gru, rnn) as one .safetensors file,
baselines as a .joblib file. Load it again with `tsforecast predict MODEL`.

With --covariates FILE, a model that takes covariates (autoarima) is fitted on the columns named by
-p future_covariates=[...] (past_covariates, static_covariates, categorical_covariates); the
forecasts of --forecast-output need the future-known ones for the horizon after each series' end
(rows of FILE after the end of DATA)."""

_EPILOG = """\
examples:
  tsforecast fit sales.csv --model lstm --horizon 14 --season-length 7 -p hidden_size=32 \\
      -p max_epochs=20 --output models/sales.safetensors --forecast-output forecasts.csv
  tsforecast fit sales.csv --model lstm --horizon 14 --output m.safetensors --checkpoint-dir ckpt
  tsforecast fit sales.parquet --model theta --horizon 14 --season-length 7 --output theta.joblib
  tsforecast fit sales.csv --model lstm --horizon 14 --output m.safetensors \\
      --register sales-lstm --alias champion
  tsforecast fit prices.csv --covariates prices.csv --model autoarima --horizon 24 \\
      --season-length 24 -p future_covariates=[load_forecast,wind_forecast] --output arima.joblib"""


def add_parser(subparsers) -> None:
    """Register the ``fit`` subcommand on an ``argparse`` subparsers object."""
    from tsforecast.registry import MODELS

    parser = common.add_command(
        subparsers,
        "fit",
        help="fit a model on a data file and save it",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        handler=run,
    )
    parser.add_argument("data", help="history: CSV or parquet, long, wide or single-series layout")
    parser.add_argument(
        "--model",
        "-m",
        required=True,
        choices=list(MODELS),
        metavar="NAME",
        help=f"one of: {', '.join(MODELS)}",
    )
    parser.add_argument("--output", "-o", required=True, help="model file to write (.safetensors or .joblib)")
    parser.add_argument(
        "--forecast-output", help="also write the forecasts from the end of DATA (.csv or .parquet)"
    )
    parser.add_argument(
        "--checkpoint-dir",
        metavar="DIR",
        help="recurrent models: write a training checkpoint to DIR after every epoch; the same command "
        "rerun after a kill resumes from it (a checkpoint of other settings or data is refused)",
    )
    common.add_model_options(parser, several=False)
    common.add_data_options(parser)
    common.add_covariates_option(parser)
    common.add_tracking_options(parser, register=True)


def run(args) -> int:
    """Fit the named model on the data file, save it (and its forecasts), print the model's path.

    With ``--track`` or ``--register`` the fit is an MLflow run. Returns 0; errors propagate (the
    ``tsforecast`` command maps them to its exit codes).
    """
    from tsforecast.data.io import write_frame
    from tsforecast.exceptions import InvalidParameterError
    from tsforecast.pipelines.models import check_model_path, save_model
    from tsforecast.registry import build_estimator

    if args.alias and not args.register:
        raise InvalidParameterError("--alias: name the registered model too (--register NAME).")
    params = common.parse_params(args.param)
    common.check_covariate_params(args.model, params)
    estimator = build_estimator(args.model, params, defaults=common.model_defaults(args), where=args.model)
    if args.checkpoint_dir:
        if "checkpoint_dir" not in estimator.get_params():
            raise InvalidParameterError(
                f"--checkpoint-dir: {args.model} trains no network, so it has no checkpoints; drop the "
                "option."
            )
        estimator.set_params(checkpoint_dir=args.checkpoint_dir)  # fit checks it before training
    common.check_covariates({args.model: estimator}, bool(args.covariates))
    common.check_writable(check_model_path(estimator, args.output), "--output")
    if args.forecast_output:
        common.check_output(args.forecast_output, "--forecast-output")
    group = _join_process_group(estimator, args.model)  # under torchrun: one of several processes
    history = common.read_history(args.data, args)  # a long parquet dataset stays a path
    X = common.read_covariates(args.covariates, args)
    if args.forecast_output:
        common.check_horizon_covered(estimator, history, X, args.horizon, args)
    fit_params = {"freq": args.freq, **common.data_names(args)}
    if X is not None:
        fit_params["X"] = X
    logger.info("fitting %r on %s", estimator, args.data)
    if group is not None and group.rank != 0:  # the other processes train; rank 0 writes and tracks
        estimator.fit(history, **fit_params)
        return 0
    if args.track or args.register:
        from tsforecast import tracking

        estimator, run_id = tracking.track_fit(
            estimator,
            history,
            experiment=args.experiment,
            tracking_uri=args.tracking_uri,
            dataset_name=str(args.data),
            registered_model_name=args.register,
            model_alias=args.alias,
            **fit_params,
        )
        logger.info("MLflow run %s; model runs:/%s/model", run_id, run_id)
    else:
        estimator.fit(history, **fit_params)
    path = save_model(estimator, args.output)
    logger.info("model saved to %s", path)
    if args.forecast_output and common.writes_blocks(args.forecast_output) and _long(estimator):
        common.write_long_forecasts(estimator, estimator.training_panel_, args.forecast_output, X=X)
        logger.info("forecasts written to %s", args.forecast_output)
    elif args.forecast_output:
        # A wide file's time column, whatever its name; a long file's is --time-col.
        time_col = getattr(getattr(history, "index", None), "name", None) or args.time_col
        forecasts = write_frame(estimator.predict(X=X), args.forecast_output, time_col=time_col)
        logger.info("forecasts written to %s", forecasts)
    print(path)
    return 0


def _long(estimator) -> bool:
    """Whether the fitted estimator's training data came in the long layout."""
    panel = getattr(estimator, "training_panel_", None)
    return panel is not None and panel.layout.kind == "long"


def _join_process_group(estimator, name: str):
    """The process group ``torchrun`` started this command in (None outside one), for a recurrent model.

    Every process reads the data and fits; each trains on its shard of the series
    (:mod:`tsforecast.nn.distributed`), and rank 0 alone writes the model, the forecasts and the run.
    """
    import os

    if int(os.environ.get("WORLD_SIZE", "1")) < 2:
        return None
    from tsforecast.exceptions import InvalidParameterError
    from tsforecast.registry import MODELS

    if not MODELS[name].neural:
        raise InvalidParameterError(
            f"{name} is not a recurrent model: only those train data-parallel under torchrun; run the "
            "command without torchrun."
        )
    from tsforecast.nn.distributed import init_from_environment

    return init_from_environment(estimator.get_params()["device"])
