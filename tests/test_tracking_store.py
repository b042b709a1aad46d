"""The tracking store (:mod:`tsforecast.tracking.store`): the pre-flight's time limits, which keep the
user's own, and the check of tracking URIs, which names the value and the problem.

Real parts only: a TCP server on 127.0.0.1 that accepts connections and never answers, and MLflow
itself; no mocks. Issue 15's cases through the command (a silent server exit 6 within 30 s, a
malformed URI exit 2) are in ``test_faults.py``.
"""

from __future__ import annotations

import os
import time

import pytest
from faulttools import without_mlflow_settings

mlflow = pytest.importorskip("mlflow")

from tsforecast.exceptions import InvalidParameterError, TrackingError  # noqa: E402
from tsforecast.tracking import store  # noqa: E402
from tsforecast.urls import redact_url  # noqa: E402

pytestmark = [pytest.mark.tracking, pytest.mark.timeout(120)]


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """The working directory, without the user's MLflow settings."""
    return without_mlflow_settings(tmp_path, monkeypatch)


# -- the pre-flight against a server that accepts connections and never answers -------------------


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


# -- tracking URIs are checked before use ---------------------------------------------------------


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
