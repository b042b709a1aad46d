"""Options and helpers the ``fit``, ``predict`` and ``backtest`` commands share."""

from __future__ import annotations

import argparse
from pathlib import Path

from tsforecast.exceptions import InvalidParameterError


def add_command(subparsers, name: str, *, help: str, description: str, epilog: str, handler):
    """Register a subcommand whose description and examples keep their line breaks."""
    parser = subparsers.add_parser(
        name,
        help=help,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(handler=handler)
    return parser


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def add_data_options(parser: argparse.ArgumentParser, *, freq: bool = True) -> None:
    """Column names and frequency of the input file."""
    group = parser.add_argument_group("data options")
    group.add_argument(
        "--id-col", default="unique_id", help="series id column of a long file (default: %(default)s)"
    )
    group.add_argument("--time-col", default="ds", help="time column (default: %(default)s)")
    group.add_argument(
        "--target-col", default="y", help="target column of a long file (default: %(default)s)"
    )
    if freq:
        group.add_argument(
            "--freq", help="pandas frequency of the time stamps (default: inferred), e.g. h, D, W-SUN"
        )


def add_model_options(parser: argparse.ArgumentParser, *, several: bool) -> None:
    """Horizon, season length, seed and ``--param`` settings of the model(s)."""
    group = parser.add_argument_group("model options")
    group.add_argument("--horizon", type=positive_int, required=True, help="steps to forecast")
    group.add_argument(
        "--season-length", type=positive_int, default=1, help="seasonal period (default: %(default)s)"
    )
    group.add_argument(
        "--seed", type=int, default=0, help="random_state of the models (default: %(default)s)"
    )
    example = "lstm.hidden_size=32" if several else "hidden_size=32"
    group.add_argument(
        "--param",
        "-p",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"a model parameter, value read as YAML (repeatable), e.g. {example}",
    )


def add_tracking_options(parser: argparse.ArgumentParser, *, register: bool) -> None:
    """``--track`` and where runs go."""
    group = parser.add_argument_group("MLflow tracking")
    group.add_argument("--track", action="store_true", help="record the run in MLflow")
    group.add_argument("--experiment", help="MLflow experiment (default: tsforecast)")
    group.add_argument(
        "--tracking-uri",
        help="MLflow store (default: $MLFLOW_TRACKING_URI, else ./mlflow.db with artifacts in ./mlartifacts)",
    )
    if register:
        group.add_argument(
            "--register", metavar="NAME", help="register the fitted model under NAME (implies --track)"
        )
        group.add_argument("--alias", help="point this alias of the registered model at the new version")


def data_names(args) -> dict:
    """The column-name keywords of ``fit`` and ``compare``."""
    return {"id_col": args.id_col, "time_col": args.time_col, "target_col": args.target_col}


def read_input(path, args):
    """Read a data file with the command line's column names (:func:`tsforecast.data.io.read_frame`)."""
    from tsforecast.data.io import read_frame

    return read_frame(path, id_col=args.id_col, time_col=args.time_col)


def parse_params(items: list, where: str = "--param") -> dict:
    """``KEY=VALUE`` items as a dict, values parsed as YAML (``8`` is an int, ``null`` None)."""
    from tsforecast.pipelines.schema import parse_value

    params = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise InvalidParameterError(f"{where} {item!r}: expected KEY=VALUE, for example hidden_size=32.")
        params[key.strip()] = parse_value(text)
    return params


def model_defaults(args) -> dict:
    """Settings every model of the command shares (applied where a class has the parameter)."""
    return {
        "horizon": args.horizon,
        "season_length": args.season_length,
        "random_state": args.seed,
        "verbose": bool(args.progress),
    }


def check_output(path, what: str = "--output") -> Path:
    """A table's output file, checked before any work: a format ``write_frame`` writes, a writable place."""
    from tsforecast.data.io import file_format
    from tsforecast.exceptions import InvalidInputError

    try:
        file_format(path, writing=True)
    except InvalidInputError as error:
        raise InvalidParameterError(f"{what}: {error}") from None
    return check_writable(path, what)


def check_writable(path, what: str = "--output") -> Path:
    """Raise unless a file can be written at ``path`` (its folder is created when missing).

    Raises
    ------
    InvalidParameterError
        Naming the option and the path (exit 2): a parent that is a file, no permission, a read-only
        file system, a folder in place of the file.
    """
    from tsforecast.data.io import check_writable as check

    try:
        return check(path)
    except InvalidParameterError as error:
        raise InvalidParameterError(f"{what} {error}") from None


def print_frame(frame, title: str | None = None) -> None:
    """A table on stdout (the command's result; logs go to stderr)."""
    from tsforecast.pipelines.evaluation import text_table

    if title:
        print(title)
    print(text_table(frame, digits=4))
