"""Tracking failures are loud and quick: a silent server, malformed tracking URIs (issue 15, items 2, 4).

Real parts only: a TCP server on 127.0.0.1 that accepts connections and never answers, the real
``tsforecast`` command in a subprocess, and MLflow itself; no mocks.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from clitools import cli_env, main_in_process

mlflow = pytest.importorskip("mlflow")

from tsforecast.exceptions import InvalidParameterError, TrackingError  # noqa: E402
from tsforecast.redaction import redact_url  # noqa: E402
from tsforecast.tracking import store  # noqa: E402

pytestmark = [pytest.mark.tracking, pytest.mark.timeout(120)]

MALFORMED = ["postgres:/bad", "sqlite//bad", "::::", "http:/x", "sqlite:/bad.db", "htp://localhost:5000"]
SNAIVE = ["--model", "snaive", "--horizon", "7", "--season-length", "7"]
PIPELINE = """\
name: silent
data: {path: sales.csv, freq: D}
forecast: {horizon: 7, season_length: 7}
model: {name: naive}
baselines: [snaive]
backtest: {n_windows: 2}
gate: {enabled: false}
outputs: {dir: outputs, format: csv}
tracking: {enabled: true, plots: false}
"""


class SilentServer:
    """Accepts TCP connections on 127.0.0.1 and never answers; counts the connections."""

    def __init__(self):
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.uri = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        self.connections = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:  # closed
                return
            self.connections.append(connection)

    def close(self):
        self.socket.close()
        for connection in self.connections:
            connection.close()


@pytest.fixture
def silent():
    server = SilentServer()
    yield server
    server.close()


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """The working directory, with a small daily CSV (three series of 60 days)."""
    monkeypatch.chdir(tmp_path)
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", *store.PREFLIGHT_LIMITS):
        monkeypatch.delenv(name, raising=False)
    times = pd.date_range("2024-01-01", periods=60, freq="D")
    weekly = 3 * np.sin(2 * np.pi * np.arange(60) / 7)
    frames = [pd.DataFrame({"unique_id": f"s{k}", "ds": times, "y": 10.0 + k + weekly}) for k in range(3)]
    pd.concat(frames).to_csv(tmp_path / "sales.csv", index=False)
    (tmp_path / "pipeline.yaml").write_text(PIPELINE)
    return tmp_path


def command(*args, cwd: Path, env: dict | None = None, timeout: float = 60):
    """The real command in a subprocess (the user's MLflow variables stripped, then ``env`` added)."""
    return commands(args, cwd=cwd, env=env, timeout=timeout)[0]


def commands(*each, cwd: Path, env: dict | None = None, timeout: float = 60) -> list:
    """Several commands at once: (CompletedProcess, seconds until it ended) for each, in order."""
    started = time.monotonic()
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "tsforecast.cli", *map(str, args)],
            cwd=cwd,
            env={**cli_env("unused"), **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args in each
    ]
    results = []
    for process in processes:
        out, err = process.communicate(timeout=timeout)
        ended = time.monotonic() - started  # an upper bound: the processes are awaited in order
        results.append((subprocess.CompletedProcess(process.args, process.returncode, out, err), ended))
    return results


# -- item 2: a server that accepts connections and never answers -----------------------------------


def test_fit_and_run_give_up_on_a_silent_server_within_30_s(folder, silent):
    fit = ["fit", "sales.csv", *SNAIVE, "--output", "m.joblib", "--track", "--tracking-uri", silent.uri]
    run = ["run", "pipeline.yaml", "--as-of", "2024-02-25", "--set", f"tracking.tracking_uri={silent.uri}"]
    (fitted, fit_seconds), (ran, run_seconds) = commands(fit, run, cwd=folder)  # side by side: one wait
    for result, seconds in ((fitted, fit_seconds), (ran, run_seconds)):
        assert result.returncode == 6, result.stderr
        assert f"MLflow tracking server {silent.uri!r} did not answer" in result.stderr
        assert "MLFLOW_HTTP_REQUEST_TIMEOUT=10" in result.stderr  # the limit in force, and how to change it
        assert seconds < 30
    assert not (folder / "m.joblib").exists()
    assert not list(folder.glob("outputs/*/forecasts*"))


def test_predict_from_a_silent_or_malformed_tracking_store_fails_fast_with_the_right_code(folder, silent):
    args = ["predict", "models:/sales/1", "--data", "sales.csv", "--output", "f.csv", "--tracking-uri"]
    (hung, seconds), (malformed, _) = commands([*args, silent.uri], [*args, "sqlite//bad"], cwd=folder)
    assert hung.returncode == 6, hung.stderr
    assert f"MLflow tracking server {silent.uri!r} did not answer" in hung.stderr and seconds < 30
    assert malformed.returncode == 2, malformed.stderr  # a configuration error, not a bad model file
    assert "'sqlite//bad'" in malformed.stderr and not (folder / "sqlite").exists()
    assert not (folder / "f.csv").exists()


def test_the_users_timeout_and_retries_are_kept(folder, silent, monkeypatch):
    # The pre-flight default cut to 1 s: a user's 2 s must still apply, and their one retry too.
    monkeypatch.setitem(store.PREFLIGHT_LIMITS, "MLFLOW_HTTP_REQUEST_TIMEOUT", "1")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    started = time.monotonic()
    with pytest.raises(TrackingError, match="as set in the environment") as error:
        store.locate("silent", silent.uri)
    seconds = time.monotonic() - started
    assert 3.5 < seconds < 9, seconds  # two attempts of 2 s each, not 1 s
    assert len(silent.connections) == 3  # the TCP probe, then the request and its retry
    assert silent.uri in str(error.value)
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "2"  # left as the user set it


def test_the_pre_flight_defaults_apply_only_during_the_pre_flight(folder, silent, monkeypatch):
    monkeypatch.setitem(store.PREFLIGHT_LIMITS, "MLFLOW_HTTP_REQUEST_TIMEOUT", "1")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # one set, one not: each decided alone
    started = time.monotonic()
    with pytest.raises(TrackingError, match="MLFLOW_HTTP_REQUEST_TIMEOUT unset"):
        store.locate("silent", silent.uri)
    assert time.monotonic() - started < 5
    assert "MLFLOW_HTTP_REQUEST_TIMEOUT" not in os.environ  # removed again afterwards
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "0"


# -- item 4: malformed tracking URIs ---------------------------------------------------------------


@pytest.mark.parametrize("uri", MALFORMED)
def test_malformed_tracking_uris_exit_2_and_create_nothing(folder, uri, capsys):
    before = sorted(folder.iterdir())
    code = main_in_process(
        "fit", "sales.csv", *SNAIVE, "--output", "m.joblib", "--tracking-uri", uri, "--track"
    )
    assert code == 2
    assert f"tracking_uri={uri!r} is not a tracking URI" in capsys.readouterr().err
    assert sorted(folder.iterdir()) == before


def test_a_malformed_environment_variable_exits_2_naming_it(folder):
    args = ["fit", "sales.csv", *SNAIVE, "--output", "m.joblib", "--track"]
    result, _ = command(*args, cwd=folder, env={"MLFLOW_TRACKING_URI": "sqlite//bad"})
    assert result.returncode == 2, result.stderr
    assert "MLFLOW_TRACKING_URI='sqlite//bad' is not a tracking URI" in result.stderr
    assert "sqlite:///relative.db" in result.stderr  # the forms that work
    assert sorted(p.name for p in folder.iterdir()) == ["pipeline.yaml", "sales.csv"]


def test_a_malformed_pipeline_tracking_uri_exits_2(folder, capsys):
    (folder / "pipeline.yaml").write_text(
        PIPELINE.replace("plots: false", "plots: false, tracking_uri: '::::'")
    )
    assert main_in_process("run", "pipeline.yaml", "--check") == 2  # found when the file is checked
    assert "tracking.tracking_uri='::::' is not a tracking URI" in capsys.readouterr().err
    assert main_in_process("run", "pipeline.yaml", "--as-of", "2024-02-25") == 2
    assert "tracking.tracking_uri='::::' is not a tracking URI" in capsys.readouterr().err
    assert not (folder / "::::").exists() and not (folder / "mlflow.db").exists()


@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        ("postgres:/bad", "no tracking store for the scheme 'postgres' (did you mean 'postgresql'?)"),
        ("sqlite//bad", "reads as a sqlite URI without the ':'"),
        ("::::", "a local path holds no ':' and no '//'"),
        ("runs//mlflow", "a local path holds no ':' and no '//'"),
        ("http:/x", "names no host"),
        ("http://", "names no host"),
        ("http://host:port", "does not parse as a URL"),
        ("sqlite:/bad.db", "three slashes"),
        ("sqlite:///", "names no database file"),
        ("postgresql:/bad", "SQLAlchemy cannot parse it"),
        ("file://elsewhere/runs", "a file URI names a local folder"),
        ("", "it is empty"),
        (" http://localhost:5000", "white space"),
        ("postgresql://tracker:secret@db:port/mlflow", "postgresql://tracker:***@db:port/mlflow"),
    ],
)
def test_check_names_the_value_and_the_problem(uri, problem):
    with pytest.raises(InvalidParameterError, match="is not a tracking URI") as error:
        store.check_tracking_uri(uri)
    assert f"tracking_uri={redact_url(uri)!r}" in str(error.value) and problem in str(error.value)
    assert "secret" not in str(error.value)


@pytest.mark.parametrize(
    "uri",
    [
        "http://127.0.0.1:5000",
        "https://mlflow.example.com/prefix",
        "sqlite:///mlflow.db",
        "sqlite:////tmp/mlflow.db",
        "postgresql://user:secret@db.example.com:5432/mlflow",
        "postgresql+psycopg2://user@db/mlflow",
        "mysql+pymysql://user@db/mlflow",
        "mssql://user@db/mlflow",
        "file:///tmp/mlruns",
        "file:./mlruns",
        "mlruns",
        "./runs/mlflow",
        "/tmp/mlruns",
        "databricks",
        "databricks://profile",
    ],
)
def test_check_accepts_what_mlflow_accepts(uri):
    assert store.check_tracking_uri(uri) == uri


def test_an_empty_environment_variable_means_unset(folder, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "")
    assert store.resolve_store().uri == f"sqlite:///{(folder / 'mlflow.db').as_posix()}"
    with pytest.raises(InvalidParameterError, match="tracking_uri='' is not a tracking URI: it is empty"):
        store.resolve_store("")
