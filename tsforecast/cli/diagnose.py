"""``tsforecast diagnose``: why a saved recurrent model learns what it does, in tables and words."""

from __future__ import annotations

import argparse
import logging

from tsforecast.cli.common import positive_int

logger = logging.getLogger(__name__)

_DESCRIPTION = """\
Diagnose a saved recurrent model (lstm, gru, rnn; a file written by `tsforecast fit` or
`estimator.save`) on DATA, or on its training data when DATA is omitted: gradient flow through time
and its far/near ratio, gate statistics per layer, hidden-state norms, the training history of
pre-clip gradient norms and clipping, and the error by horizon step on the held-out tail of each
series, followed by plain-language findings (vanishing or exploding gradients, saturated gates,
clipping on most steps). Prints the report; --output also writes its tables (CSV) and figures (PNG)."""

_EPILOG = """\
examples:
  tsforecast diagnose model.safetensors
  tsforecast diagnose model.safetensors sales.csv --max-lag 200 --output diagnostics/
  tsforecast diagnose model.safetensors --quiet          # the findings only"""


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "diagnose",
        help="gradient-flow, gate and error diagnostics of a saved recurrent model",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", help="saved recurrent model (.safetensors)")
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
    parser.set_defaults(handler=run)


def run(args) -> int:
    import tsforecast
    from tsforecast.cli.io import read_frame
    from tsforecast.exceptions import InvalidParameterError

    model = tsforecast.load(args.model)
    if not hasattr(model, "diagnose"):
        raise InvalidParameterError(
            f"{args.model} holds a {type(model).__name__}, which has nothing to diagnose."
        )
    data = None
    if args.data:
        columns = model.training_panel_.layout.columns
        data = read_frame(args.data, id_col=columns.id_col, time_col=columns.time_col)
    logger.info("diagnosing %s on %s", type(model).__name__, args.data or "its training data")
    report = model.diagnose(data, max_lag=args.max_lag, max_series=args.max_series)
    print(report.to_text(tables=not getattr(args, "quiet", False)))
    if args.output:
        written = report.save(args.output)
        logger.info("%d report file(s) written to %s", len(written), args.output)
    return 0
