"""The exit codes of the ``tsforecast`` command, in one place.

======  ===============  ===================================================================
code    name             meaning (what an orchestrator should do)
======  ===============  ===================================================================
0       ``OK``           success
1       ``UNEXPECTED``   an unexpected error (a bug, a full disk, ...): the log has the traceback
2       ``CONFIG``       bad configuration or command line: fix the YAML, ``--set`` or flags
3       ``DATA``         bad input data or model file: the message names the file or series
4       ``GATE``         quality gate failed: the new model was not kept; the previous model
                         stays current and the baseline forecast was written if configured
5       ``TRAINING``     training could not go on (for example the loss became non-finite)
6       ``UNAVAILABLE``  a resource is unavailable (tracking store unreachable, another run of
                         the same pipeline holds its lock): retrying later may succeed
130     ``INTERRUPTED``  stopped by Ctrl-C / SIGINT
143     ``TERMINATED``   stopped by SIGTERM (an orchestrator's timeout or cancel); as with
                         every failure, the previous outputs are left as they were
======  ===============  ===================================================================

Handlers of subcommands return an exit code or raise; :func:`for_error` maps what they raise.
"""

from __future__ import annotations

from enum import IntEnum

from tsforecast.exceptions import (
    InvalidInputError,
    InvalidParameterError,
    ModelFileError,
    NotFittedError,
    TrackingError,
    TrainingError,
    UnavailableError,
)


class ExitCode(IntEnum):
    """Exit codes of ``tsforecast`` (see the module docstring)."""

    OK = 0
    UNEXPECTED = 1
    CONFIG = 2
    DATA = 3
    GATE = 4
    TRAINING = 5
    UNAVAILABLE = 6
    INTERRUPTED = 130
    TERMINATED = 143


class Terminated(BaseException):
    """Raised by the command's SIGTERM handler, so that runs end cleanly (exit code ``TERMINATED``)."""


# Order matters: the first matching class wins (InvalidParameterError is also a ValueError).
_BY_ERROR: tuple[tuple[type[BaseException], ExitCode], ...] = (
    (KeyboardInterrupt, ExitCode.INTERRUPTED),
    (Terminated, ExitCode.TERMINATED),
    (InvalidParameterError, ExitCode.CONFIG),
    (InvalidInputError, ExitCode.DATA),
    (ModelFileError, ExitCode.DATA),
    (TrainingError, ExitCode.TRAINING),
    (TrackingError, ExitCode.UNAVAILABLE),
    (UnavailableError, ExitCode.UNAVAILABLE),
    (NotFittedError, ExitCode.UNEXPECTED),
)


def for_error(error: BaseException) -> ExitCode:
    """The exit code for an error raised by a subcommand.

    Examples
    --------
    >>> from tsforecast.exceptions import InvalidInputError
    >>> int(for_error(InvalidInputError("series 'H1' has only NaN values")))
    3
    """
    for kind, code in _BY_ERROR:
        if isinstance(error, kind):
            return code
    return ExitCode.UNEXPECTED


def describe() -> str:
    """One line per code, for ``--help``."""
    lines = {
        ExitCode.OK: "success",
        ExitCode.UNEXPECTED: "unexpected error (see the traceback in the log)",
        ExitCode.CONFIG: "bad configuration or command line",
        ExitCode.DATA: "bad input data or model file",
        ExitCode.GATE: "quality gate failed (previous model kept)",
        ExitCode.TRAINING: "training failed",
        ExitCode.UNAVAILABLE: "tracking store unreachable or pipeline locked by another run",
        ExitCode.INTERRUPTED: "interrupted (SIGINT)",
        ExitCode.TERMINATED: "terminated (SIGTERM)",
    }
    return "\n".join(f"  {int(code):>3}  {text}" for code, text in lines.items())


__all__ = ["ExitCode", "Terminated", "UnavailableError", "describe", "for_error"]
