"""``tsforecast diagnose``: why a saved recurrent model learns what it does, in tables and words."""

from __future__ import annotations

import argparse
import logging
from contextlib import contextmanager, nullcontext
from pathlib import Path

from tsforecast.cli.common import add_tracking_options, positive_int

logger = logging.getLogger(__name__)

_DESCRIPTION = """\
Diagnose a saved recurrent model (lstm, gru, rnn; a file written by `tsforecast fit` or
`estimator.save`) on DATA, or on its training data when DATA is omitted: gradient flow through time
and its far/near ratio, gate statistics per layer, hidden-state norms, the training history of
pre-clip gradient norms and clipping, and the error by horizon step on the held-out tail of each
series, followed by plain-language findings (vanishing or exploding gradients, saturated gates,
clipping on most steps). Prints the report; --output also writes its tables (CSV) and figures (PNG),
--track logs them as artifacts of an MLflow run (under diagnostics/)."""

_EPILOG = """\
examples:
  tsforecast diagnose model.safetensors
  tsforecast diagnose model.safetensors sales.csv --max-lag 200 --output diagnostics/
  tsforecast diagnose model.safetensors --quiet          # the findings only
  tsforecast diagnose model.safetensors --track --experiment sales-lstm"""


def add_parser(subparsers) -> None:
    """Register the ``diagnose`` subcommand on an ``argparse`` subparsers object."""
    parser = subparsers.add_parser(
        "diagnose",
        help="gradient-flow, gate and error diagnostics of a saved recurrent model",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "model", help="saved recurrent model (.safetensors) or MLflow model URI (models:/NAME@ALIAS)"
    )
    parser.add_argument(
        "data",
        nargs="?",
        help="series to run the model on: CSV or parquet, long, wide or single-series layout "
        "(default: the model's training data)",
    )
    parser.add_argument(
        "--output", "-o", metavar="DIR", help="also write the report's CSV tables and PNG figures here"
    )
    parser.add_argument(
        "--max-lag",
        type=positive_int,
        help="largest lag of the gradient flow (default: the model's tbptt_steps)",
    )
    parser.add_argument(
        "--max-series", type=positive_int, default=64, help="series analysed (default: %(default)s)"
    )
    parser.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        default=argparse.SUPPRESS,  # keep a `tsforecast -q diagnose` given before the command
        help="print the findings only, no tables; warnings and errors only on stderr",
    )
    add_tracking_options(parser, register=False)
    parser.set_defaults(handler=run)


def run(args) -> int:
    """Diagnose a saved recurrent model on the data file (default: its training data), print the findings.

    Also writes the report's files with ``--output`` and logs them to MLflow with ``--track``.
    Returns 0; a baseline model raises :class:`InvalidParameterError` (nothing to diagnose).
    """
    from tsforecast.data.io import read_frame
    from tsforecast.exceptions import InvalidParameterError
    from tsforecast.pipelines.models import load_model

    model = load_model(args.model, args.tracking_uri)
    if not hasattr(model, "diagnose"):
        raise InvalidParameterError(
            f"{args.model} holds a {type(model).__name__}: a baseline has nothing to diagnose; diagnostics "
            "need a recurrent forecaster (lstm, gru, rnn)."
        )
    data = None
    if args.data:
        columns = model.training_panel_.layout.columns
        data = read_frame(args.data, id_col=columns.id_col, time_col=columns.time_col)
    # The run opens first: a store that cannot be used fails before the diagnosis, not after it.
    with _tracked(args) if args.track else nullcontext():
        logger.info("diagnosing %s on %s", type(model).__name__, args.data or "its training data")
        report = model.diagnose(data, max_lag=args.max_lag, max_series=args.max_series)
        print(report.to_text(tables=not getattr(args, "quiet", False)))
        if args.output:
            written = report.save(args.output)
            logger.info("%d report file(s) written to %s", len(written), args.output)
        if args.track:
            report.log_to_mlflow()
    return 0


@contextmanager
def _tracked(args):
    """An MLflow run for the report, with what was diagnosed as parameters."""
    import mlflow

    from tsforecast import tracking

    name = f"diagnose {Path(str(args.model)).name}"
    tags = {"tsforecast.command": "diagnose"}
    with tracking.run(args.experiment, name, tracking_uri=args.tracking_uri, tags=tags) as run_id:
        mlflow.log_params(
            {
                "diagnose.model": str(args.model),
                "diagnose.data": str(args.data or "training data"),
                "diagnose.max_lag": str(args.max_lag or "tbptt_steps"),
                "diagnose.max_series": args.max_series,
            }
        )
        yield run_id
        logger.info("diagnostics logged to MLflow run %s (artifacts under diagnostics/)", run_id)
