"""Where runs go, and the check that the store answers before any training starts.

Resolution order of the tracking URI: the ``tracking_uri`` argument, then the ``MLFLOW_TRACKING_URI``
environment variable (which ``mlflow.set_tracking_uri`` also sets), then the embedded default: an
SQLite file ``mlflow.db`` and an artifact folder ``mlartifacts/`` in the working directory, which
needs no server.
"""

from __future__ import annotations

import logging
import os
import socket
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from tsforecast.exceptions import TrackingError

_LOGGER = logging.getLogger(__name__)

DEFAULT_EXPERIMENT = "tsforecast"
EMBEDDED_DB = "mlflow.db"
EMBEDDED_ARTIFACTS = "mlartifacts"
CONNECT_TIMEOUT_S = 5.0


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
    """
    uri = tracking_uri if tracking_uri is not None else os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return Store(str(uri))
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

    try:
        client = MlflowClient(store.uri)
        experiment = (
            client.get_experiment(experiment_id) if name is None else _get_or_create(client, name, store)
        )
    # Any failure here (HTTP, SQL, file system, bad URI) means the store is unusable: say so once,
    # before training, rather than letting some later logging call fail half-way.
    except Exception as error:
        raise TrackingError(
            f"MLflow tracking store {store.uri!r} cannot be used: {type(error).__name__}: {error}. "
            "Fix tracking_uri / MLFLOW_TRACKING_URI, or unset both to use the embedded store "
            f"(./{EMBEDDED_DB} and ./{EMBEDDED_ARTIFACTS}/)."
        ) from error
    if experiment.lifecycle_stage != "active":
        raise TrackingError(
            f"experiment {experiment.name!r} in {store.uri!r} is deleted; restore it (mlflow experiments "
            f"restore --experiment-id {experiment.experiment_id}) or pick another name."
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
    TrackingError
        If the store cannot be used, or ``tracking_uri`` names another store than the active run's.
    """
    import mlflow

    parent = mlflow.active_run()
    if parent is None:
        store = resolve_store(tracking_uri)
        name = experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT
        return store, open_experiment(store, name), None
    store = Store(mlflow.get_tracking_uri())
    if tracking_uri is not None and str(tracking_uri) != store.uri:
        raise TrackingError(
            f"an MLflow run ({parent.info.run_id}) is active in {store.uri!r}, so runs nest there; "
            f"tracking_uri={tracking_uri!r} cannot apply. End that run or drop tracking_uri."
        )
    experiment_id = open_experiment(store, experiment, experiment_id=parent.info.experiment_id)
    return store, experiment_id, parent.info.run_id


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
            f"MLflow tracking server {uri!r} is unreachable ({error}); nothing was trained. Start it "
            f"(mlflow server --host {parts.hostname} --port {port}), fix tracking_uri / "
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
