"""Options and helpers the ``fit``, ``predict`` and ``backtest`` commands share."""

from __future__ import annotations

import argparse
from pathlib import Path

from tsforecast.exceptions import InvalidParameterError

#: The parameters that name covariate columns and calendar features (forecasters that take covariates).
COVARIATE_PARAMS = (
    "future_covariates",
    "past_covariates",
    "static_covariates",
    "categorical_covariates",
    "calendar_features",
    "holidays",
)


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


def add_covariates_option(
    parser: argparse.ArgumentParser, *, several: bool = False, flag: str = "-p"
) -> None:
    """``--covariates FILE``; the roles of its columns come through ``--param`` (``flag``)."""
    prefix = "[MODEL.]" if several else ""
    shared = " (without MODEL. for every model that takes covariates)" if several else ""
    group = parser.add_argument_group("covariates")
    group.add_argument(
        "--covariates",
        metavar="FILE",
        help="covariates, CSV or parquet read like DATA: the id and time columns and one column per "
        "covariate, or a time column alone for covariates every series shares; DATA itself may be "
        "given (its target column is never a covariate). Declare the columns' roles with "
        f"{flag} {prefix}future_covariates=[a,b]{shared}: known ahead, so rows for the horizon after "
        "each series' end are needed; past_covariates=[...]: observed up to the forecast origin; "
        "static_covariates=[...]; categorical_covariates=[...]",
    )


def read_covariates(path, args):
    """The ``--covariates`` file ``path`` as ``X`` (None without one), read with DATA's column names.

    The target column is dropped, so that the data file itself can hold the covariates.

    Raises
    ------
    InvalidInputError
        Naming the file: missing, unreadable, empty, or time stamps that cannot be parsed (exit 3).
    """
    if not path:
        return None
    from tsforecast.data.io import read_frame
    from tsforecast.exceptions import InvalidInputError

    try:
        frame = read_frame(path, id_col=args.id_col, time_col=args.time_col)
    except InvalidInputError as error:
        raise InvalidInputError(f"--covariates {error}") from None
    return frame.drop(columns=[args.target_col], errors="ignore")


def check_covariates(estimators: dict, given: bool) -> None:
    """Refuse (exit 2, before any file is read) covariates no model uses, or declared ones not given.

    Parameters
    ----------
    estimators : dict of str -> BaseForecaster
        The command's models by name.
    given : bool
        Whether ``--covariates`` names a file.
    """
    from tsforecast.base import takes_covariates

    takers = {name: e for name, e in estimators.items() if takes_covariates(e)}
    declared = {name: e.covariate_roles() for name, e in takers.items()}
    names = ", ".join(estimators)
    if given and not takers:
        raise InvalidParameterError(
            f"--covariates: {names} take(s) no covariates; choose a model that does (such as autoarima), "
            "or leave --covariates out."
        )
    if given and not any(roles.names for roles in declared.values()):
        raise InvalidParameterError(
            f"--covariates: no model declares a covariate column ({', '.join(takers)} take(s) them); "
            "name the columns and their roles with -p future_covariates=[a,b] (or past_covariates, "
            "static_covariates)."
        )
    for name, roles in declared.items():
        if roles.names and not given:
            raise InvalidParameterError(
                f"{name} declares the covariates {list(roles.names)}; give the file that holds them "
                "with --covariates FILE."
            )


def check_horizon_covered(estimator, history, X, horizon: int, args) -> None:
    """Raise before a fit when ``X`` does not reach ``horizon`` steps past every series' end.

    ``fit --forecast-output`` checks this first, so that a file without the future rows stops the
    command before any model is fitted or written.
    """
    roles = estimator.covariate_roles()
    if X is None or not roles.names:
        return
    from tsforecast.data import Columns, to_panel
    from tsforecast.data.covariates import align_covariates
    from tsforecast.exceptions import InvalidInputError

    columns = Columns(args.id_col, args.time_col, args.target_col)
    panel = to_panel(history, freq=args.freq, columns=columns, missing="keep")
    try:
        align_covariates(X, panel, roles, horizon=horizon, columns=columns)
    except InvalidInputError as error:
        raise InvalidInputError(f"--covariates {args.covariates}: {error}") from None


def check_covariate_params(name: str, params: dict, where: str = "--param") -> None:
    """Exit 2 naming the model when covariate parameters are given to one that takes no covariates."""
    from tsforecast.base import takes_covariates
    from tsforecast.registry import estimator_class

    asked = [key for key in params if key in COVARIATE_PARAMS]
    if asked and not takes_covariates(estimator_class(name)):
        raise InvalidParameterError(
            f"{where} {asked[0]}: the model {name!r} takes no covariates; choose a model that does (such "
            "as autoarima)."
        )


def add_level_option(parser: argparse.ArgumentParser, *, what: str) -> None:
    """``--level 80,95``: central prediction intervals, in percent, comma-separated (given once)."""
    parser.add_argument(
        "--level",
        action="append",
        metavar="L[,L...]",
        help="central prediction intervals in percent, comma-separated, given once (e.g. --level "
        f"80,95): {what}. Each level lies strictly between 0 and 100",
    )


def parse_levels(items: list | None) -> list[float] | None:
    """The ``--level`` values as sorted distinct floats (None without ``--level``).

    Checked by the library's own rule (:func:`tsforecast.metrics.intervals.interval_levels`) before
    the command reads, loads or writes anything.

    Raises
    ------
    InvalidParameterError
        Naming the value (exit 2): not a number, outside (0, 100), or ``--level`` given twice.

    Examples
    --------
    >>> parse_levels(["95,80"]), parse_levels(None)
    ([80.0, 95.0], None)
    """
    if not items:
        return None
    if len(items) > 1:
        raise InvalidParameterError(
            f"--level given {len(items)} times ({', '.join(items)}); give the levels once, "
            f"comma-separated: --level {','.join(items)}."
        )
    from tsforecast.metrics.intervals import interval_levels

    text = items[0]
    values = []
    for item in text.split(","):
        try:
            values.append(float(item.strip()))
            interval_levels(values[-1])
        except (ValueError, InvalidParameterError):
            raise InvalidParameterError(
                f"--level {text}: {item.strip()!r} is not a level; give percentages strictly between "
                "0 and 100, comma-separated, e.g. --level 80,95."
            ) from None
    return list(interval_levels(values))


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


def read_history(path, args):
    """The data for a tsforecast forecaster: a long parquet file or folder as its path, else a frame.

    The forecaster reads a path in record batches (``tsforecast.data.parquet``), never as one frame.
    """
    from tsforecast.data.parquet import is_long_parquet

    return Path(path) if is_long_parquet(path, args.id_col) else read_input(path, args)


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


def writes_blocks(output) -> bool:
    """Whether forecasts to ``output`` are written block by block (a parquet file)."""
    return Path(output).suffix.lower() in (".parquet", ".pq")


def write_long_forecasts(model, panel, output, horizon=None, X=None, levels=None) -> int:
    """Forecast a long ``panel`` and write it to parquet block by block; returns the rows written.

    The file holds what ``model.predict`` returns for the panel, but the forecasts of the whole panel
    never become one frame (:func:`tsforecast.data.frames.long_forecast_blocks`).
    """
    from tsforecast.data.frames import long_forecast_blocks
    from tsforecast.data.io import write_parquet_frames

    forecasts = model.predict_panel(panel, horizon, X=X, level=levels)
    point, extra = (forecasts["point"], forecasts) if isinstance(forecasts, dict) else (forecasts, {})
    extra = {name: values for name, values in extra.items() if name != "point"}
    write_parquet_frames(long_forecast_blocks(panel, point, extra), output)
    return int(point.size)
