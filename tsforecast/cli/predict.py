"""``tsforecast predict``: forecasts from a saved model file or an MLflow model URI."""

from __future__ import annotations

import logging
from pathlib import Path

from tsforecast.cli import common

logger = logging.getLogger(__name__)

_DESCRIPTION = """\
Forecast with a fitted model. MODEL is a file written by `tsforecast fit` (or by `estimator.save`)
or an MLflow model URI: runs:/<run-id>/model, models:/<name>/latest, models:/<name>@<alias>.
Without --data the model forecasts from the end of its training data; with --data, from the end
of that history (new observations, or series it never saw).

A model fitted with covariates needs them again (--covariates FILE, the columns it was fitted on):
over the history it forecasts from and, for the future-known ones, the horizon after each series'
end.

With --level 80,95 the forecasts file gets the bounds of the central 80% and 95% prediction
intervals (y_lo_80, y_hi_80, y_lo_95, y_hi_95) beside y_pred, one row per series and step: a wide
history's forecasts are then written in the long layout (id, time and forecast columns). The model
must have intervals: every baseline does, a recurrent model fitted with the quantiles that bound
the level (quantiles=[0.025, 0.975] for 95%), any model wrapped in ConformalIntervals."""

_EPILOG = """\
examples:
  tsforecast predict model.safetensors --output forecasts.parquet
  tsforecast predict model.safetensors --data latest.csv --horizon 7 --output forecasts.csv
  tsforecast predict models:/sales-lstm@champion --data latest.csv --output forecasts.csv
  tsforecast predict theta.joblib --level 80,95 --output forecasts.parquet
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
        "--data",
        "-d",
        help="history to forecast from (CSV or parquet; a parquet file or folder in the long layout is "
        "read in record batches; default: the training data)",
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
    common.add_level_option(parser, what="the interval bounds are written beside y_pred")
    common.add_data_options(parser, freq=False)
    common.add_covariates_option(parser)


def run(args) -> int:
    """Forecast with a saved or MLflow model, write the forecasts and print the file's path.

    Returns 0; errors propagate (the ``tsforecast`` command maps them to its exit codes).
    """
    from tsforecast.data.io import write_frame
    from tsforecast.exceptions import InvalidParameterError
    from tsforecast.pipelines.models import load_model

    levels = common.parse_levels(args.level)  # before any file is read or the model loaded
    output = common.check_output(args.output)
    # A long parquet file or folder goes to the forecaster as a path: read in record batches.
    history = common.read_history(args.data, args) if args.data else None
    X = common.read_covariates(args.covariates, args)
    model = load_model(args.model, args.tracking_uri)
    if isinstance(history, Path) and not hasattr(model, "covariate_roles"):
        history = common.read_input(args.data, args)  # a pyfunc model of another library takes frames
    logger.info("loaded %s from %s", type(model).__name__, args.model)
    if hasattr(model, "covariate_roles"):
        common.check_covariates({type(model).__name__: model}, X is not None)
    elif X is not None:  # a pyfunc model of another library: its input frame is all it takes
        raise InvalidParameterError(
            f"--covariates: {args.model} is not a tsforecast forecaster; give its covariate columns in "
            "--data, as its signature lists them."
        )
    elif levels:
        raise InvalidParameterError(
            f"--level: {args.model} is not a tsforecast forecaster, so it offers no intervals; leave "
            "--level out."
        )
    if hasattr(model, "covariate_roles") and common.writes_blocks(output):
        panel = model.training_panel_ if history is None else model.validate_history(history)
        if panel.layout.kind == "long":  # written series block by series block, never as one frame
            rows = common.write_long_forecasts(model, panel, output, args.horizon, X, levels)
            logger.info("%d forecast row(s) written to %s", rows, output)
            print(output)
            return 0
    options = {"level": levels} if levels else {}  # a foreign pyfunc model takes no level
    forecasts = model.predict(args.horizon, X=X, y=history, **options)
    time_col = getattr(getattr(history, "index", None), "name", None) or args.time_col
    if levels and forecasts.columns.nlevels == 2:  # wide: (output, series) columns
        forecasts = long_forecasts(forecasts, args.id_col, time_col)
    write_frame(forecasts, output, time_col=time_col)
    logger.info("%d forecast row(s) written to %s", len(forecasts), output)
    print(output)
    return 0


def long_forecasts(frame, id_col: str, time_col: str):
    """A wide forecast with intervals (columns: output, then series) in the long layout.

    One row per series and step, series in the order of the columns: ``id_col``, ``time_col``, then
    the outputs (``y_pred``, ``y_lo_80``...). A file with two header rows would read back as neither
    layout.

    Examples
    --------
    >>> import pandas as pd
    >>> columns = pd.MultiIndex.from_product([["y_pred", "y_lo_80"], ["b", "a"]])
    >>> wide = pd.DataFrame([[1.0, 2.0, 0.5, 1.5]], index=pd.Index([7], name="ds"), columns=columns)
    >>> long_forecasts(wide, "unique_id", "ds").values.tolist()
    [['b', 7, 1.0, 0.5], ['a', 7, 2.0, 1.5]]
    """
    import pandas as pd

    series = list(dict.fromkeys(frame.columns.get_level_values(1)))
    pieces = {sid: frame.xs(sid, axis=1, level=1) for sid in series}
    return pd.concat(pieces, names=[id_col, time_col]).reset_index()
