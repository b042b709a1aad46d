"""Where runs go, and the check that the store answers before any training starts.

Resolution order of the tracking URI: the ``tracking_uri`` argument, then the ``MLFLOW_TRACKING_URI``
environment variable (which ``mlflow.set_tracking_uri`` also sets; empty counts as unset), then the
embedded default: an SQLite file ``mlflow.db`` and an artifact folder ``mlartifacts/`` in the
working directory, which needs no server. A given URI is checked first (:func:`check_tracking_uri`):
a malformed one raises :class:`~tsforecast.exceptions.InvalidParameterError` and creates nothing.

Time limits. The pre-flight (:func:`open_experiment`, and the start of a run in
:mod:`tsforecast.tracking.runs`) runs under :func:`preflight_limits`: each MLflow HTTP request waits
at most ``PREFLIGHT_LIMITS`` (10 s, no retry) unless the caller set ``MLFLOW_HTTP_REQUEST_TIMEOUT``
or ``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` in the environment, which are then used as they are. A server
that accepts connections and never answers is thus reported within about 10 s, not after MLflow's
default of 120 s per attempt and 7 retries with backoff (over 20 minutes). Once the run has started,
MLflow's own settings apply again (see :mod:`tsforecast.tracking.runs`).
"""

from __future__ import annotations

import difflib
import logging
import os
import socket
import threading
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from urllib.parse import urlsplit

from tsforecast.exceptions import InvalidParameterError, TrackingError
from tsforecast.urls import mistyped_url, redact_url

_LOGGER = logging.getLogger(__name__)

DEFAULT_EXPERIMENT = "tsforecast"
EMBEDDED_DB = "mlflow.db"
EMBEDDED_ARTIFACTS = "mlartifacts"
CONNECT_TIMEOUT_S = 5.0

#: MLflow's HTTP settings during the pre-flight, where the environment does not set them.
PREFLIGHT_LIMITS = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "10", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}
_PREFLIGHT_LOCK = threading.RLock()

# The schemes MLflow's own tracking stores accept (plugins add theirs through entry points).
_DATABASES = ("postgresql", "mysql", "sqlite", "mssql")
_SCHEMES = ("file", "http", "https", "databricks", "databricks-uc", "uc", *_DATABASES)
_URI_FORMS = (
    "http(s)://host:port, sqlite:///relative.db or sqlite:////absolute.db, "
    "postgresql://user@host/db (also mysql, mssql), file:///folder or a local folder"
)


@dataclass(frozen=True)
class Store:
    """A resolved tracking location.

    Attributes
    ----------
    uri : str
        The MLflow tracking URI.
    artifact_location : str or None
        Artifact root given to experiments this package creates; None leaves it to the store
        (a server's ``--default-artifact-root`` or ``--artifacts-destination``).
    """

    uri: str
    artifact_location: str | None = None


def resolve_store(tracking_uri=None) -> Store:
    """The store runs go to (see the module docstring for the order of precedence).

    Parameters
    ----------
    tracking_uri : str, optional
        Explicit MLflow tracking URI (``http://host:5000``, ``sqlite:///path.db``, ...).

    Returns
    -------
    Store

    Examples
    --------
    >>> resolve_store("http://127.0.0.1:5000").uri
    'http://127.0.0.1:5000'

    Raises
    ------
    InvalidParameterError
        If the URI given (argument or environment variable) is malformed (:func:`check_tracking_uri`).
    """
    if tracking_uri is not None:
        return Store(check_tracking_uri(tracking_uri))
    if uri := os.environ.get("MLFLOW_TRACKING_URI"):
        return Store(check_tracking_uri(uri, "MLFLOW_TRACKING_URI"))
    cwd = Path.cwd()
    return Store(f"sqlite:///{(cwd / EMBEDDED_DB).as_posix()}", (cwd / EMBEDDED_ARTIFACTS).as_uri())


def open_experiment(store: Store, name: str | None = None, *, experiment_id: str | None = None) -> str:
    """Check that ``store`` answers and return the experiment's id.

    Parameters
    ----------
    store : Store
        Where to look.
    name : str, optional
        Experiment name, created when missing; takes precedence over ``experiment_id``.
    experiment_id : str, optional
        An experiment known to exist (an active run's).

    Raises
    ------
    TrackingError
        If the server cannot be reached, the store cannot be opened or the experiment was deleted.
    """
    _probe_server(store.uri)  # before importing mlflow: an unreachable server fails within seconds
    from mlflow import MlflowClient

    with preflight_limits() as limits:
        try:
            client = MlflowClient(store.uri)
            experiment = (
                client.get_experiment(experiment_id) if name is None else _get_or_create(client, name, store)
            )
        # Any failure here (HTTP, SQL, file system) means the store is unusable: say so once,
        # before training, rather than letting some later logging call fail half-way.
        except Exception as error:
            if did_not_answer(error):
                raise TrackingError(no_answer_message(store.uri, limits)) from error
            raise TrackingError(
                f"MLflow tracking store {redact_url(store.uri)!r} cannot be used: "
                f"{type(error).__name__}: {error}. "
                "Fix tracking_uri / MLFLOW_TRACKING_URI, or unset both to use the embedded store "
                f"(./{EMBEDDED_DB} and ./{EMBEDDED_ARTIFACTS}/)."
            ) from error
    if experiment.lifecycle_stage != "active":
        raise TrackingError(
            f"experiment {experiment.name!r} in {redact_url(store.uri)!r} is deleted; restore it "
            f"(mlflow experiments restore --experiment-id {experiment.experiment_id}) or pick another name."
        )
    return experiment.experiment_id


def locate(experiment=None, tracking_uri=None) -> tuple[Store, str, str | None]:
    """Where a new run goes: its store, its experiment's id and the active run it nests under.

    Outside an active MLflow run: the store of :func:`resolve_store` and the experiment named
    ``experiment``, else ``MLFLOW_EXPERIMENT_NAME``, else ``"tsforecast"``. Inside one (a
    :func:`tsforecast.tracking.run` or the caller's own ``mlflow.start_run``): that run's store, and
    ``experiment`` or else that run's experiment; the third item is that run's id.

    Raises
    ------
    InvalidParameterError
        If ``tracking_uri`` (or ``MLFLOW_TRACKING_URI``) is malformed.
    TrackingError
        If the store cannot be used, or ``tracking_uri`` names another store than the active run's.
    """
    import mlflow

    if tracking_uri is not None:
        check_tracking_uri(tracking_uri)
    parent = mlflow.active_run()
    if parent is None:
        store = resolve_store(tracking_uri)
        name = experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT
        return store, open_experiment(store, name), None
    store = Store(mlflow.get_tracking_uri())
    if tracking_uri is not None and str(tracking_uri) != store.uri:
        raise TrackingError(
            f"an MLflow run ({parent.info.run_id}) is active in {redact_url(store.uri)!r}, so runs nest "
            f"there; tracking_uri={redact_url(tracking_uri)!r} cannot apply. End that run or drop "
            "tracking_uri."
        )
    experiment_id = open_experiment(store, experiment, experiment_id=parent.info.experiment_id)
    return store, experiment_id, parent.info.run_id


def check_tracking_uri(uri, where: str = "tracking_uri") -> str:
    """``uri`` as a string if MLflow can use it as a tracking URI, else an error naming it.

    Every tracking entry point goes through this check (:func:`resolve_store`, :func:`locate`), so
    that a mistyped URI is refused before anything is trained and before MLflow or SQLAlchemy turn
    it into a local file or folder of that name. Accepted: ``http(s)://host[:port]``;
    ``sqlite:///relative.db`` and ``sqlite:////absolute.db``; ``postgresql``, ``mysql`` and ``mssql``
    URLs (with an optional ``+driver``) that SQLAlchemy parses; ``file:`` URIs and plain local
    paths without ``:``; ``databricks``; schemes of installed MLflow tracking-store plugins.

    Parameters
    ----------
    uri : str
        The tracking URI.
    where : str
        Where it came from, for the message (``"tracking_uri"``, ``"MLFLOW_TRACKING_URI"``).

    Returns
    -------
    str

    Raises
    ------
    InvalidParameterError
        If ``uri`` is empty or malformed: the message names the value and the accepted forms.

    Examples
    --------
    >>> check_tracking_uri("sqlite:///mlflow.db")
    'sqlite:///mlflow.db'
    >>> check_tracking_uri("sqlite//mlflow.db")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    tsforecast.exceptions.InvalidParameterError: tracking_uri='sqlite//mlflow.db' is not ...
    """
    text = str(uri)
    problem = _uri_problem(text)
    if problem is None:
        return text
    raise InvalidParameterError(
        f"{where}={redact_url(text)!r} is not a tracking URI: {problem}. Accepted forms: {_URI_FORMS}; "
        "or leave it unset for the embedded store "
        f"(./{EMBEDDED_DB} and ./{EMBEDDED_ARTIFACTS}/)."
    )


def _uri_problem(text: str) -> str | None:
    """What is wrong with ``text`` as a tracking URI (None: nothing)."""
    if not text.strip():
        return "it is empty"
    if text != text.strip():
        return "it starts or ends with white space"
    if text in ("databricks", "databricks-uc", "uc"):
        return None
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as error:
        return f"it does not parse as a URL ({error})"
    scheme = parts.scheme.lower()
    if not scheme:
        return _path_problem(text)
    if len(scheme) == 1 and scheme.isalpha():
        return None  # a Windows drive letter: a local path, as MLflow reads it
    base = scheme.split("+", 1)[0]
    if base in _DATABASES:
        return _database_problem(text, scheme, base)
    if scheme in ("http", "https"):
        if not parts.hostname:
            return f"it names no host ({scheme}://host:port, two slashes)"
        return None if port is None or port > 0 else "its port is 0"
    if scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path:
            return "a file URI names a local folder (file:///absolute/folder)"
        return None
    if scheme in _SCHEMES or scheme in _plugin_schemes():
        return None
    close = difflib.get_close_matches(scheme, _SCHEMES, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"MLflow has no tracking store for the scheme {scheme!r}{hint}"


def _path_problem(text: str) -> str | None:
    """A local path holds no ``:`` and no ``//``: those mean a mistyped URI (as for Optuna storages)."""
    first = text.split("/", 1)[0].lower()
    if "//" in text and first.split("+", 1)[0] in _SCHEMES:
        return f"it reads as a {first} URI without the ':' after the scheme"
    if mistyped_url(text):
        return "a local path holds no ':' and no '//', which mean a mistyped URI"
    return None


def _database_problem(text: str, scheme: str, base: str) -> str | None:
    if base == "sqlite" and not text[len(scheme) :].startswith(":///"):
        return "an SQLite URI has three slashes before the file (sqlite:///relative.db or sqlite:////absolute.db)"
    try:
        from sqlalchemy.engine import make_url
    except ImportError:  # MLflow then says that it needs SQLAlchemy
        return None
    try:
        url = make_url(text)
    except Exception as error:  # sqlalchemy.exc.ArgumentError, ValueError for a bad port
        return f"SQLAlchemy cannot parse it ({error})"
    if base == "sqlite" and not url.database:
        return "it names no database file"
    return None


def _plugin_schemes() -> set:
    return {entry.name for entry in entry_points(group="mlflow.tracking_store")}


@contextmanager
def preflight_limits():
    """Bound MLflow's HTTP requests for the duration of the pre-flight (see the module docstring).

    Each variable of ``PREFLIGHT_LIMITS`` missing from the environment is set for the duration and
    removed again; one the user set is left alone. MLflow reads them at every request. The process
    environment is shared, so pre-flights of several threads take turns (a lock); another thread's
    MLflow requests made meanwhile see the same limits.

    Yields
    ------
    str
        The limits in force and whose they are, for messages.
    """
    with _PREFLIGHT_LOCK:
        added = {name: value for name, value in PREFLIGHT_LIMITS.items() if name not in os.environ}
        os.environ.update(added)
        try:
            yield _describe_limits(added)
        finally:
            for name in added:
                os.environ.pop(name, None)


def _describe_limits(added) -> str:
    values = ", ".join(f"{name}={os.environ[name]}" for name in PREFLIGHT_LIMITS)
    if not added:
        return f"{values}, as set in the environment"
    if len(added) == len(PREFLIGHT_LIMITS):
        return f"{values}: the pre-flight's defaults, as the environment sets neither"
    return f"{values}: {', '.join(added)} unset, so the pre-flight's default"


def did_not_answer(error: BaseException) -> bool:
    """Whether ``error`` (or one it was raised from) is an HTTP timeout or lost connection (not TLS).

    MLflow wraps these in an ``MlflowException`` whose cause or context is the ``requests`` error.
    """
    try:
        from requests.exceptions import ConnectionError, SSLError, Timeout
    except ImportError:
        return False
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, (ConnectionError, Timeout)) and not isinstance(error, SSLError):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False


def no_answer_message(uri: str, limits: str) -> str:
    """The message for a store that answered no request in time, with the ``limits`` in force."""
    return (
        f"MLflow tracking server {redact_url(uri)!r} did not answer in time ({limits}). Check that it is up "
        "and healthy (its /health page); to wait longer, set MLFLOW_HTTP_REQUEST_TIMEOUT (seconds) "
        "and MLFLOW_HTTP_REQUEST_MAX_RETRIES; or unset tracking_uri / MLFLOW_TRACKING_URI to use the "
        f"embedded store (./{EMBEDDED_DB} and ./{EMBEDDED_ARTIFACTS}/)."
    )


def _get_or_create(client, name: str, store: Store):
    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment
    try:
        return client.get_experiment(
            client.create_experiment(name, artifact_location=store.artifact_location)
        )
    except MlflowException:
        # Another process may have created it between the lookup and the creation.
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment


def _probe_server(uri: str) -> None:
    """Fail within seconds on an unreachable HTTP server, where MLflow would retry for minutes."""
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return
    if urllib.request.getproxies().get(parts.scheme) and not urllib.request.proxy_bypass(parts.hostname):
        return  # reached through a proxy: only the MLflow request itself can tell
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as error:
        raise TrackingError(
            f"MLflow tracking server {redact_url(uri)!r} is unreachable ({error}); nothing was trained. "
            f"Start it (mlflow server --host {parts.hostname} --port {port}), fix tracking_uri / "
            "MLFLOW_TRACKING_URI, or unset both to use the embedded store "
            f"(./{EMBEDDED_DB} and ./{EMBEDDED_ARTIFACTS}/)."
        ) from None


@contextmanager
def using(store: Store):
    """Point MLflow's fluent API (``mlflow.log_*``) at ``store`` for the duration, then restore it."""
    import mlflow

    try:
        # MLflow has no public way to tell a URI set by set_tracking_uri from the resolved default.
        from mlflow.tracking._tracking_service.utils import _tracking_uri as previous
    except ImportError:
        previous = None
    # set_tracking_uri(None) also unsets MLFLOW_TRACKING_URI, so the caller's variable is put back too.
    previous_env = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(store.uri)
    try:
        yield store
    finally:
        mlflow.set_tracking_uri(previous)
        if previous_env is not None:
            os.environ["MLFLOW_TRACKING_URI"] = previous_env
