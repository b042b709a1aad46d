"""The ``tsforecast`` command: fit, predict, backtest, tune, run pipelines, diagnose.

Each subcommand is a module of this package with ``add_parser(subparsers)`` (registers its parser and
``set_defaults(handler=run)``) and ``run(args) -> int``; heavy imports happen inside ``run`` so that
``tsforecast --help`` stays fast. Errors raised by a handler become the exit codes of
:mod:`tsforecast.cli.exit_codes`, with one log line that names the failing step, field or series.

Examples
--------
>>> from tsforecast.cli import main
>>> main(["--version"])  # doctest: +SKIP
tsforecast 0.1.0
0
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from importlib import import_module

from tsforecast.cli.exit_codes import ExitCode, Terminated, describe, for_error

SUBCOMMANDS = ("fit", "predict", "backtest", "tune", "run", "diagnose")

logger = logging.getLogger("tsforecast.cli")

_DESCRIPTION = """\
Forecast time series with recurrent networks and statistical baselines, from the command line or
as scheduled batch pipelines (cron, Airflow, any orchestrator that runs a command).

Data files are CSV or parquet in the long layout (unique_id, ds, y), the wide layout (a time
column and one column per series) or a single series (a time column and a value column)."""

_EPILOG = f"""\
examples:
  tsforecast fit sales.csv --model lstm --horizon 14 --season-length 7 --output model.safetensors
  tsforecast predict model.safetensors --data sales.csv --output forecasts.parquet
  tsforecast backtest sales.csv --models lstm,snaive,theta --horizon 14 --season-length 7
  tsforecast run pipelines/retrain_and_forecast.yaml --as-of 2024-05-31 --set data.path=sales.csv

exit codes:
{describe()}

Run `tsforecast COMMAND --help` for the options of a command."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every available subcommand."""
    parser = argparse.ArgumentParser(
        prog="tsforecast",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"tsforecast {_version()}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logs (and MLflow's own)")
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="warnings and errors only, no progress bars"
    )
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for name in SUBCOMMANDS:
        module_name = f"{__name__}.{name}"
        try:
            module = import_module(module_name)
        except ImportError as error:
            if error.name != module_name:
                raise
            continue  # a command not installed in this build (tune and diagnose come separately)
        module.add_parser(subparsers)
    return parser


def main(argv=None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``) and return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version, or a usage error (argparse exits with 2)
        return int(exit_.code or 0)
    if getattr(args, "handler", None) is None:
        parser.print_help(sys.stderr)
        return int(ExitCode.CONFIG)
    configure_logging(verbose=args.verbose, quiet=args.quiet)
    args.progress = sys.stderr.isatty() and not args.quiet
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    try:
        return int(args.handler(args))
    except BaseException as error:  # every failure becomes a documented exit code and one message
        if isinstance(error, SystemExit):
            raise
        code = for_error(error)
        step = getattr(error, "pipeline_step", None)
        where = f"step {step!r} failed: " if step else ""
        if code == ExitCode.UNEXPECTED:
            logger.error("%sunexpected %s: %s", where, type(error).__name__, error, exc_info=error)
        elif code in (ExitCode.INTERRUPTED, ExitCode.TERMINATED):
            logger.error(
                "%s%s",
                where,
                "interrupted (SIGINT)" if code == ExitCode.INTERRUPTED else "terminated (SIGTERM)",
            )
        else:
            logger.error("%s%s", where, error)
        return int(code)


def configure_logging(verbose: bool = False, quiet: bool = False) -> None:
    """Logs on stderr with time stamps; the command is the application, so it owns the root logger."""
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("tsforecast").setLevel(level)
    logging.captureWarnings(True)
    if not verbose:
        # MLflow configures its loggers when imported; these variables reach it before that.
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
        if not sys.stderr.isatty():
            os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    if not sys.stderr.isatty() or quiet:
        os.environ.setdefault("TQDM_DISABLE", "1")  # no progress bars in files and pipes


def _terminate(signum, frame):
    raise Terminated(signum)


def _version() -> str:
    from tsforecast import __version__

    return __version__


__all__ = ["SUBCOMMANDS", "build_parser", "configure_logging", "main"]
