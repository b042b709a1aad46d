"""The project's error and warning types.

Every error tsforecast raises on purpose derives from :class:`TsforecastError`, and the ones about
the caller's input also derive from the built-in type a Python user would catch (``ValueError``,
``TypeError``), so ``except ValueError`` keeps working.
"""

from sklearn.exceptions import NotFittedError


class TsforecastError(Exception):
    """Base class of every error raised by tsforecast."""


class InvalidInputError(TsforecastError, ValueError):
    """The data given to ``fit``/``predict`` is unusable (names the series and the problem)."""


class InvalidParameterError(TsforecastError, ValueError, TypeError):
    """An estimator parameter has a value outside its allowed set."""


class TrainingError(TsforecastError, RuntimeError):
    """Training could not go on (for example the loss stayed non-finite)."""


class ModelFileError(TsforecastError, ValueError):
    """A saved model file is unusable: damaged, tampered with, or written by an incompatible version.

    Raised at load, before any forecast, with the file's path and what is wrong.
    """


#: The former name of :class:`ModelFileError`, kept so that existing ``except`` clauses still work.
IncompatibleModelError = ModelFileError


class TrackingError(TsforecastError, RuntimeError):
    """The experiment-tracking store (MLflow) cannot be used; raised before any training starts."""


class UnavailableError(TsforecastError, RuntimeError):
    """A resource is busy or unreachable; retrying later may succeed.

    A database that is down, or a pipeline's lock held by another run.
    """


class TsforecastWarning(UserWarning):
    """Base class of tsforecast's warnings."""


class ClippingWarning(TsforecastWarning):
    """Gradient clipping fired on a large share of the steps of an epoch."""


__all__ = [
    "ClippingWarning",
    "IncompatibleModelError",
    "InvalidInputError",
    "InvalidParameterError",
    "ModelFileError",
    "NotFittedError",
    "TrackingError",
    "TrainingError",
    "TsforecastError",
    "TsforecastWarning",
]
