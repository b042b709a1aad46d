"""Shared fixtures: a real MLflow tracking server for the tracking tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

SERVER_START_TIMEOUT_S = 150  # `mlflow server` imports MLflow twice (CLI, then uvicorn worker)


def pytest_configure(config):
    config.addinivalue_line("markers", "tracking: MLflow tracking tests (start a local mlflow server)")


class MlflowServer:
    """A `mlflow server` process on 127.0.0.1; ``uri`` waits until it answers ``/health``."""

    def __init__(self, root: Path):
        self.port = free_port()
        self.log_path = root / "server.log"
        command = [
            sys.executable, "-m", "mlflow", "server",
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
            "--backend-store-uri", f"sqlite:///{(root / 'mlflow.db').as_posix()}",
            "--artifacts-destination", str(root / "artifacts"), "--serve-artifacts",
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
        env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"  # no job-runner processes
        with open(self.log_path, "wb") as log:
            # Own process group: the CLI starts a uvicorn child, and both must stop at the end.
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root, start_new_session=True
            )
        self._ready = False

    @property
    def uri(self) -> str:
        uri = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while not self._ready:
            if self.process.poll() is not None:
                pytest.fail(f"mlflow server exited with {self.process.returncode}:\n{self._log_tail()}")
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow server not healthy after {SERVER_START_TIMEOUT_S}s:\n{self._log_tail()}")
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as response:
                    self._ready = response.status == 200
            except OSError:
                pass
            time.sleep(0.25)
        return uri

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def _log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (right now)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def closed_port():
    """A local TCP port with no server behind it."""
    return free_port()


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """A real MLflow tracking server (SQLite backend, proxied artifact store in a temp folder).

    The process starts when the fixture is first requested and ``server.uri`` blocks until it is
    healthy, so tests that do not need it can run while it boots.
    """
    pytest.importorskip("mlflow")
    server = MlflowServer(tmp_path_factory.mktemp("mlflow-server"))
    yield server
    server.stop()


@pytest.fixture
def silent():
    """A TCP server on 127.0.0.1 that accepts connections and never answers (a hung tracking server)."""
    from faulttools import SilentServer

    server = SilentServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def fitted():
    """A tiny fitted LSTM (one per test module), for the model-file tests."""
    from modelfiles import fit_tiny

    return fit_tiny()


@pytest.fixture
def saved(fitted, tmp_path):
    """``fitted`` saved in the test's folder; the path of its model file."""
    from modelfiles import saved_in

    return saved_in(fitted, tmp_path)


# -- a throw-away SQLite MLflow store (modules add pytest.mark.usefixtures("no_ambient_store")) --
@pytest.fixture
def no_ambient_store(monkeypatch):
    """No tracking URI, registry URI or experiment from the environment reaches the test."""
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """The URI of a SQLite MLflow store of the module's own (a module may define its own ``store``)."""
    return f"sqlite:///{(tmp_path_factory.mktemp('mlflow') / 'mlflow.db').as_posix()}"


@pytest.fixture
def in_store(store):
    """MLflow's fluent API pointed at ``store`` for one test, then restored (no global left behind)."""
    from tsforecast import tracking

    with tracking.store.using(tracking.resolve_store(store)):
        yield store
