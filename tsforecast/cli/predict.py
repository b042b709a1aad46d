"""``tsforecast predict``: forecasts from a saved model file or an MLflow model URI."""

from __future__ import annotations

import logging

from tsforecast.cli import common

logger = logging.getLogger(__name__)

_DESCRIPTION = """\
Forecast with a fitted model. MODEL is a file written by `tsforecast fit` (or by `estimator.save`)
or an MLflow model URI: runs:/<run-id>/model, models:/<name>/latest, models:/<name>@<alias>.
Without --data the model forecasts from the end of its training data; with --data, from the end
of that history (new observations, or series it never saw).

A model fitted with covariates needs them again (--covariates FILE, the columns it was fitted on):
over the history it forecasts from and, for the future-known ones, the horizon after each series'
end."""

_EPILOG = """\
examples:
  tsforecast predict model.safetensors --output forecasts.parquet
  tsforecast predict model.safetensors --data latest.csv --horizon 7 --output forecasts.csv
  tsforecast predict models:/sales-lstm@champion --data latest.csv --output forecasts.csv
  tsforecast predict arima.joblib --data prices.csv --covariates prices.csv --output forecasts.csv"""


def add_parser(subparsers) -> None:
    """Register the ``predict`` subcommand on an ``argparse`` subparsers object."""
    parser = common.add_command(
        subparsers,
        "predict",
        help="forecast with a saved model or an MLflow model",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        handler=run,
    )
    parser.add_argument("model", help="model file (.safetensors, .joblib) or MLflow model URI")
    parser.add_argument(
        "--data", "-d", help="history to forecast from (CSV or parquet; default: the training data)"
    )
    parser.add_argument(
        "--horizon", type=common.positive_int, help="steps to forecast (default: the model's horizon)"
    )
    parser.add_argument("--output", "-o", required=True, help="forecasts file to write (.csv or .parquet)")
    parser.add_argument(
        "--tracking-uri",
        help="MLflow store resolving runs:/ and models:/ URIs "
        "(default: $MLFLOW_TRACKING_URI, else ./mlflow.db)",
    )
    common.add_data_options(parser, freq=False)
    common.add_covariates_option(parser)


def run(args) -> int:
    """Forecast with a saved or MLflow model, write the forecasts and print the file's path.

    Returns 0; errors propagate (the ``tsforecast`` command maps them to its exit codes).
    """
    from tsforecast.data.io import write_frame
    from tsforecast.exceptions import InvalidParameterError
    from tsforecast.pipelines.models import load_model

    output = common.check_output(args.output)
    history = common.read_input(args.data, args) if args.data else None
    X = common.read_covariates(args.covariates, args)
    model = load_model(args.model, args.tracking_uri)
    logger.info("loaded %s from %s", type(model).__name__, args.model)
    if hasattr(model, "covariate_roles"):
        common.check_covariates({type(model).__name__: model}, X is not None)
    elif X is not None:  # a pyfunc model of another library: its input frame is all it takes
        raise InvalidParameterError(
            f"--covariates: {args.model} is not a tsforecast forecaster; give its covariate columns in "
            "--data, as its signature lists them."
        )
    forecasts = model.predict(args.horizon, X=X, y=history)
    time_col = getattr(getattr(history, "index", None), "name", None) or args.time_col
    write_frame(forecasts, output, time_col=time_col)
    logger.info("%d forecast row(s) written to %s", len(forecasts), output)
    print(output)
    return 0
