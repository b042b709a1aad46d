"""Optuna tuning against real storages: pruning, baselines, resuming, several worker processes.

The PostgreSQL variant starts a throw-away server when ``initdb`` and ``pg_ctl`` are on this machine
(Debian's ``postgresql`` package; as root the server runs as the ``postgres`` user) and the
``psycopg`` driver (SQLAlchemy's default for ``postgresql://``) is installed; or it uses the server
named by ``TSFORECAST_TEST_POSTGRES_URL``
(``postgresql://user:password@host:5432/db``; each run creates a study of its own there). Otherwise it
is skipped, saying which piece is missing.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
import weakref
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

optuna = pytest.importorskip("optuna")
torch = pytest.importorskip("torch")

import sqlalchemy  # noqa: E402 - Optuna's own dependency
from conftest import free_port  # noqa: E402
from faulttools import tune_cli_config  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

from tsforecast.exceptions import InvalidParameterError, TrainingError  # noqa: E402
from tsforecast.nn.estimators import LSTMForecaster  # noqa: E402
from tsforecast.tuning import Validation, make_storage, tune  # noqa: E402
from tsforecast.tuning.storage import fail_stale_trials  # noqa: E402

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]
BASELINES = {"SeasonalNaive", "Naive2", "AutoETS", "Theta"}
TINY = dict(horizon=6, season_length=12, max_epochs=4, batch_size=8, tbptt_steps=24, patience=None)
TINY |= dict(device="cpu", random_state=0)


def _panel(n_series=3, length=96, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_series):
        t = np.arange(length)
        y = 20 + 5 * np.sin(2 * np.pi * t / 12 + i) + 0.03 * t + rng.normal(0, 0.5, length)
        rows.append(pd.DataFrame({"unique_id": f"s{i}", "ds": t, "y": y}))
    return pd.concat(rows, ignore_index=True)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """One small study on a real SQLite file, shared by the tests that read it."""
    folder = tmp_path_factory.mktemp("tuning")
    networks = []

    def remember(estimator, record):
        if record.epoch == 1:
            networks.append(weakref.ref(estimator.network_))

    y = _panel()
    result = tune(
        LSTMForecaster(**TINY, callbacks=[remember]),
        y,
        n_trials=10,
        storage=f"sqlite:///{folder / 'optuna.db'}",
        study_name="tiny",
        pruner="median",  # the shipped setting: 5 start-up trials, no pruning in the first 2 epochs
        validation=Validation(n_windows=2),
        random_state=0,
    )
    return result, y, folder, networks


def test_trials_sample_hidden_size_and_clip_norm_on_a_log_scale(study):
    result = study[0]
    complete = result.study.get_trials(states=(TrialState.COMPLETE,))
    assert complete
    for trial in complete:
        assert {"hidden_size", "clip_norm", "learning_rate", "num_layers", "tbptt_steps"} <= set(trial.params)
        assert trial.distributions["hidden_size"].log and trial.distributions["clip_norm"].log
        # dropout acts between stacked layers: drawn only when the trial has more than one
        assert ("dropout" in trial.params) == (trial.params["num_layers"] > 1), trial.params
    assert any(t.params["num_layers"] == 1 for t in result.study.trials)
    assert result.best_params_["hidden_size"] == result.study.best_trial.params["hidden_size"]
    # Trials hold out a horizon of each fit's history for the per-epoch validation loss they report;
    # the refit learns from all of it.
    assert result.study.best_trial.user_attrs["params"]["validation_size"] == 6
    assert "validation_size" not in result.best_params_
    assert result.best_estimator.get_params()["validation_size"] == 0
    assert result.best_estimator.get_params()["hidden_size"] == result.best_params_["hidden_size"]
    assert result.best_estimator.predict().shape == (18, 3)


def test_median_pruner_prunes_weak_trials_and_their_networks_are_freed(study):
    result, _, _, networks = study
    states = result.n_trials
    assert states.get("PRUNED", 0) >= 1, states
    assert states["COMPLETE"] + states["PRUNED"] == 10
    for trial in result.study.get_trials(states=(TrialState.PRUNED,)):
        assert trial.intermediate_values  # pruned on a reported per-epoch validation loss
        assert max(trial.intermediate_values) < 2 * TINY["max_epochs"]  # stopped before the end
    gc.collect()
    alive = [ref() for ref in networks if ref() is not None]
    assert alive == [result.best_estimator.network_]  # every trial's network was released


def test_leaderboard_holds_every_baseline_with_finite_scores_and_a_verdict(study):
    result = study[0]
    board = result.leaderboard
    assert BASELINES | {"tuned", "default"} <= set(board.index)
    assert set(board.loc[list(BASELINES), "role"]) == {"baseline"}
    scores = board[["smape", "mase", "mae", "rmse", "owa"]]
    assert np.isfinite(scores.to_numpy(dtype=float)).all()
    assert board.loc["Naive2", "owa"] == pytest.approx(1.0)
    assert board.loc["tuned", "mase"] == pytest.approx(result.best_value_)
    assert board.loc["tuned", "trial"] == result.best_trial_
    # The estimator's own parameters were the study's first trial: the default row costs nothing extra.
    assert board.loc["default", "trial"] == 0 and result.study.trials[0].params["hidden_size"] == 64
    assert board.loc["default", "mase"] >= board.loc["tuned", "mase"]
    assert list(board["mase"]) == sorted(board["mase"])
    best = board[board["role"] == "baseline"]["mase"].idxmin()
    assert best in result.verdict and "best baseline" in result.verdict
    assert result.beat_best_baseline == (board.loc["tuned", "mase"] < board.loc[best, "mase"])


def test_holdout_scores_compare_tuned_baselines_and_defaults(study):
    result, y, _, _ = study
    full = _panel(length=102)
    test = full.groupby("unique_id").tail(6)
    scores = result.score_holdout(test)
    assert BASELINES | {"tuned", "default"} == set(scores.index)
    assert np.isfinite(scores.to_numpy(dtype=float)).all()
    assert scores.loc["Naive2", "owa"] == pytest.approx(1.0)


def test_resuming_adds_trials_and_a_changed_job_is_refused(study):
    result, y, folder, _ = study
    before = {t.number: t.datetime_start for t in result.study.trials}
    storage = f"sqlite:///{folder / 'optuna.db'}"
    options = dict(storage=storage, study_name="tiny", baselines=None, include_default=False, refit=False)
    more = tune(LSTMForecaster(**TINY), y, n_trials=12, random_state=0, **options)
    finished = more.study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
    assert len(finished) == 12
    assert {t.number: t.datetime_start for t in more.study.trials if t.number in before} == before
    again = tune(LSTMForecaster(**TINY), y, n_trials=12, **options)  # already there: nothing added
    assert len(again.study.trials) == len(more.study.trials)
    with pytest.raises(InvalidParameterError, match="created for another tuning job.*metric"):
        tune(LSTMForecaster(**TINY), y, n_trials=12, metric="smape", **options)


def test_a_user_space_can_be_a_function_of_the_trial(tmp_path):
    def space(trial):
        return {"hidden_size": trial.suggest_int("hidden_size", 4, 8), "learning_rate": 0.01}

    result = tune(
        LSTMForecaster(**TINY),
        _panel(n_series=2),
        search_space=space,
        n_trials=2,
        storage=tmp_path / "space.db",
        pruner="none",
        baselines=["naive2"],
        include_default=False,
        refit=False,
        metric="owa",
        validation=1,
    )
    assert result.best_params_["learning_rate"] == 0.01
    assert set(result.leaderboard.index) == {"Naive2", "tuned"}
    assert result.best_value_ == pytest.approx(result.leaderboard.loc["tuned", "owa"])
    with pytest.raises(InvalidParameterError, match="not parameters of LSTMForecaster"):
        tune(
            LSTMForecaster(**TINY),
            _panel(),
            search_space=lambda trial: {"hidden": 4},
            storage=tmp_path / "x.db",
            baselines=None,
            include_default=False,
        )


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_workers_running_the_same_command_draw_different_parameters(tmp_path):
    from tsforecast.tuning import storage as storages
    from tsforecast.tuning.space import default_search_space, suggest

    estimator = LSTMForecaster(**TINY)
    space = default_search_space(estimator, longest_stream=80)

    def worker(url):
        """What each `tsforecast tune --seed 0` process builds: its own sampler, the shared study."""
        sampler, pruner = storages.resolve_sampler(None, 0), storages.resolve_pruner("median")
        return storages.open_study(make_storage(url), "shared", sampler, pruner, {"job": 1})

    url = f"sqlite:///{tmp_path / 'shared.db'}"
    first, second = worker(url), worker(url)
    drawn = [suggest(study.ask(), space, estimator) for _ in range(3) for study in (first, second)]
    assert len({tuple(sorted(params.items())) for params in drawn}) == len(drawn)
    # One worker on a new study draws what trial 0 drew above: the seed still reproduces a study.
    alone = worker(f"sqlite:///{tmp_path / 'alone.db'}")
    assert suggest(alone.ask(), space, estimator) == drawn[0]


def _failing_space(fails):
    """A search space whose trials fail (a TBPTT chunk longer than the series) when ``fails(number)``."""

    def space(trial):
        tbptt_steps = 10_000 if fails(trial.number) else 24
        return {"hidden_size": trial.suggest_int("hidden_size", 4, 8), "tbptt_steps": tbptt_steps}

    return space


def test_failed_trials_do_not_count_and_a_study_that_always_fails_stops(tmp_path):
    options = dict(pruner="none", baselines=None, include_default=False, refit=False, validation=1)
    y = _panel(n_series=2)
    every_other = _failing_space(lambda number: number % 2 == 0)
    result = tune(
        LSTMForecaster(**TINY), y, search_space=every_other, n_trials=3, storage=tmp_path / "a.db", **options
    )
    assert result.n_trials == {"COMPLETE": 3, "FAIL": 3}

    always = _failing_space(lambda number: True)
    storage = tmp_path / "b.db"
    with pytest.raises(
        TrainingError, match=r"3 trials in a row failed .* 0 of 3 finished .*tbptt_steps=10000"
    ):
        tune(
            LSTMForecaster(**TINY),
            y,
            search_space=always,
            n_trials=3,
            storage=storage,
            study_name="b",
            **options,
        )
    study = optuna.load_study(study_name="b", storage=f"sqlite:///{storage}")
    assert [t.state for t in study.trials] == [TrialState.FAIL] * 3


# --------------------------------------------------------------------------- several worker processes
WORKER_CONFIG = tune_cli_config(
    params={"max_epochs": 3, "batch_size": 8, "tbptt_steps": 24, "device": "cpu"},
    search_space={
        "hidden_size": {"type": "int", "low": 4, "high": 8, "log": True},
        "clip_norm": {"type": "float", "low": 0.1, "high": 10, "log": True},
    },
    heartbeat_interval=1,
    grace_period=2,
)


def _worker(folder: Path, url: str, study_name: str, n_trials: int) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "tsforecast.cli", "tune", str(folder / "train.csv")]
    command += ["--config", str(folder / "tune.yaml"), "--storage", url, "--study-name", study_name]
    command += ["--n-trials", str(n_trials)]
    log = open(folder / f"worker-{uuid.uuid4().hex[:6]}.log", "wb")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=folder)
    process.log_path = log.name
    return process


def _ran_by(trial, pid: int) -> bool:
    """True when the process ``pid`` ran the trial, or may have: a trial killed while its parameters
    were being sampled has no worker attribute yet."""
    worker = trial.user_attrs.get("worker")
    return worker is None or str(worker).endswith(f":{pid}")


def _trials_of(study, pid: int, state) -> list:
    trials = study.get_trials(deepcopy=False, states=(state,))
    return [t for t in trials if str(t.user_attrs.get("worker", "")).endswith(f":{pid}")]


_LOCKED = (optuna.exceptions.StorageInternalError, sqlalchemy.exc.OperationalError)


def _watcher(url: str):
    """A read-only view of the study that gives up on a lock after a second instead of a minute.

    The test freezes a worker with SIGSTOP before it looks; a worker frozen in the middle of an
    SQLite commit holds the file's lock until it runs again, so the look must fail fast and let the
    worker go on rather than wait out the storage's 60 s lock timeout.
    """
    engine_kwargs = {"connect_args": {"timeout": 1}} if url.startswith("sqlite") else {}
    return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)


def _wait_until_stopped(pid: int, timeout: float = 10.0) -> None:
    """Return once every thread of ``pid`` is stopped (state T in ``/proc/<pid>/task/*/stat``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = []
        for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
            try:
                states.append(stat.read_text().rsplit(")", 1)[1].split()[0])
            except (OSError, IndexError):  # a thread that just ended
                continue
        if states and all(state in "tT" for state in states):
            return
        time.sleep(0.001)
    raise AssertionError(f"process {pid} did not stop within {timeout} s of SIGSTOP")


def _have_heartbeats(storage, trials) -> bool:
    """Whether every trial has a heartbeat row (Optuna's ``trial_heartbeats`` table)."""
    with storage.engine.connect() as connection:
        beating = {
            row[0] for row in connection.execute(sqlalchemy.text("SELECT trial_id FROM trial_heartbeats"))
        }
    return all(t._trial_id in beating for t in trials)


def _two_workers_one_killed(folder: Path, url: str) -> None:
    """Two CLI workers share a study; one is SIGKILLed mid-trial; the other finishes the study."""
    import yaml

    _panel(length=90).to_csv(folder / "train.csv", index=False)
    (folder / "tune.yaml").write_text(yaml.safe_dump(WORKER_CONFIG))
    name, n_trials = f"workers-{uuid.uuid4().hex[:8]}", 8
    # The tables exist before the workers start, so neither of them races the other to create them.
    storage = make_storage(url, heartbeat_interval=1, grace_period=2)
    watcher = _watcher(url)
    doomed, survivor = (_worker(folder, url, name, n_trials) for _ in range(2))
    deadline = time.monotonic() + 90
    stale: list = []
    try:
        while time.monotonic() < deadline and doomed.poll() is None and not stale:
            try:
                study = optuna.load_study(study_name=name, storage=watcher)
                done = _trials_of(study, doomed.pid, TrialState.COMPLETE)
            except KeyError:  # not created yet
                done = []
            except _LOCKED:  # a worker is committing: look again
                done = []
            if done:
                # Freeze the worker, then look: a stopped process cannot finish its trial between
                # the look and the kill (under load it may sit between two trials for a while).
                os.kill(doomed.pid, signal.SIGSTOP)
                _wait_until_stopped(doomed.pid)  # the signal is asynchronous: a commit may still land
                try:
                    stale = _trials_of(study, doomed.pid, TrialState.RUNNING)
                    # Optuna never fails a trial that has no heartbeat yet (killed in the instant
                    # between its creation and its first beat): wait for one.
                    stale = stale if _have_heartbeats(watcher, stale) else []
                except _LOCKED:  # frozen in the middle of a commit, holding SQLite's lock
                    stale = []
                if not stale:
                    os.kill(doomed.pid, signal.SIGCONT)
            time.sleep(0.05)
        assert stale and doomed.poll() is None, Path(doomed.log_path).read_text()[-2000:]
        os.kill(doomed.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        assert doomed.wait() == -signal.SIGKILL
        assert survivor.wait(timeout=120) == 0, Path(survivor.log_path).read_text()[-2000:]
    finally:
        for process in (doomed, survivor):
            if process.poll() is None:
                process.kill()
                process.wait()
    time.sleep(max(0.0, killed_at + 2.5 - time.monotonic()))  # past the grace period
    # A commit the frozen worker had all but made may still be found when the database is next
    # opened after the kill: a trial it completed that way is finished, not stale.
    after = optuna.load_study(study_name=name, storage=_watcher(url)).get_trials(deepcopy=False)
    landed = {t.number for t in after if t.state in (TrialState.COMPLETE, TrialState.PRUNED)}
    stale = [t for t in stale if t.number not in landed]
    study = optuna.load_study(study_name=name, storage=storage)
    fail_stale_trials(study)  # what any worker does before its next trial; a no-op if already done
    # The trial the killed worker was running is failed by the heartbeat; nothing else fails and
    # nothing stays running.
    failed = study.get_trials(states=(TrialState.FAIL,))
    states = {t.number: (t.state.name, t.user_attrs.get("worker")) for t in study.trials}
    assert {t.number for t in stale} <= {t.number for t in failed}, states
    assert all(_ran_by(t, doomed.pid) for t in failed)
    assert not study.get_trials(states=(TrialState.RUNNING,))
    finished = study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
    assert n_trials <= len(finished) <= n_trials + 1
    workers = {t.user_attrs["worker"].rsplit(":", 1)[1] for t in finished}
    assert workers == {str(doomed.pid), str(survivor.pid)}  # both finished trials, distinct ones
    assert len({t.number for t in finished}) == len(finished)
    assert "BEAT" not in Path(survivor.log_path).read_text()  # no baselines were asked for


def test_two_sqlite_workers_share_a_study_and_survive_a_killed_one(tmp_path):
    _two_workers_one_killed(tmp_path, f"sqlite:///{tmp_path / 'shared.db'}")


@pytest.fixture(scope="module")
def postgres_url():
    """A PostgreSQL server for the test: TSFORECAST_TEST_POSTGRES_URL, or a throw-away local one."""
    pytest.importorskip(
        "psycopg", reason="the psycopg driver is not installed (pip install 'psycopg[binary]')"
    )
    if url := os.environ.get("TSFORECAST_TEST_POSTGRES_URL"):
        yield url
        return
    binaries = _postgres_binaries()
    if binaries is None:
        pytest.skip(
            "no PostgreSQL server binaries (initdb, pg_ctl) on this machine: apt-get install postgresql, or "
            "point TSFORECAST_TEST_POSTGRES_URL at a server"
        )
    as_user = []
    if os.geteuid() == 0:
        if shutil.which("runuser") is None or _uid("postgres") is None:
            pytest.skip("running as root without a 'postgres' user and runuser to start PostgreSQL as")
        as_user = ["runuser", "-u", "postgres", "--"]
    root = Path(tempfile.mkdtemp(prefix="tsforecast-pg-"))
    if as_user:
        os.chown(root, _uid("postgres"), -1)
    data, port = root / "data", free_port()
    initdb, pg_ctl = binaries
    quiet = dict(check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)
    try:
        subprocess.run(
            [*as_user, initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"], **quiet
        )
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            [*as_user, pg_ctl, "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start"],
            **quiet,
        )
    except subprocess.CalledProcessError as error:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(
            f"could not start a local PostgreSQL server: {error.stderr.decode(errors='replace')[-500:]}"
        )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def test_two_postgresql_workers_share_a_study_and_survive_a_killed_one(postgres_url, tmp_path):
    _two_workers_one_killed(tmp_path, postgres_url)


def _postgres_binaries():
    found = [shutil.which(name) for name in ("initdb", "pg_ctl")]
    if all(found):
        return found
    for folder in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return [str(folder / "initdb"), str(folder / "pg_ctl")]
    return None


def _uid(user: str):
    import pwd

    try:
        return pwd.getpwnam(user).pw_uid
    except KeyError:
        return None


def test_cli_writes_leaderboard_params_and_model(tmp_path):
    import yaml

    from tsforecast.cli import build_parser

    full = _panel(length=96)
    full.groupby("unique_id").head(90).to_csv(tmp_path / "train.csv", index=False)
    full.groupby("unique_id").tail(6).to_csv(tmp_path / "test.csv", index=False)
    config = {**WORKER_CONFIG, "baselines": "naive2,theta", "include_default": True}
    (tmp_path / "tune.yaml").write_text(yaml.safe_dump(config))
    parser = build_parser()
    args = parser.parse_args(
        ["tune", str(tmp_path / "train.csv"), "--config", str(tmp_path / "tune.yaml"), "--n-trials", "2"]
        + ["--storage", str(tmp_path / "cli.db"), "--output", str(tmp_path / "out"), "--test"]
        + [str(tmp_path / "test.csv"), "--param", "learning_rate=1e-2", "--metric", "owa"]
    )
    assert args.handler(args) == 0
    board = pd.read_csv(tmp_path / "out" / "leaderboard.csv", index_col="model")
    assert {"Naive2", "Theta", "tuned", "default"} == set(board.index)
    document = json.loads((tmp_path / "out" / "best_params.json").read_text())
    assert {"hidden_size", "clip_norm"} <= set(document["best_params"])
    assert document["settings"]["params"]["learning_rate"] == 0.01
    assert document["metric"] == "owa" and document["trials"] == {"COMPLETE": 2}
    scores = pd.read_csv(tmp_path / "out" / "test_scores.csv", index_col="model")
    assert {"Naive2", "Theta", "tuned", "default"} == set(scores.index) and scores.loc["Naive2", "owa"] == 1
    import tsforecast

    model = tsforecast.load(tmp_path / "out" / "model.safetensors")
    assert model.get_params()["hidden_size"] == document["best_params"]["hidden_size"]
    assert model.get_params()["learning_rate"] == 0.01
    bad = parser.parse_args(["tune", str(tmp_path / "train.csv"), "--param", "hidden=3"])
    with pytest.raises(InvalidParameterError, match=r"no parameter\(s\) \['hidden'\]"):
        bad.handler(bad)  # the tsforecast command turns it into exit code 2 (CONFIG)


def test_tracking_logs_the_study_as_a_parent_run_with_one_nested_run_per_trial(
    tmp_path, monkeypatch, mlflow_server
):
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.chdir(tmp_path)
    uri = mlflow_server.uri  # a real `mlflow server` on 127.0.0.1
    options = dict(storage=tmp_path / "optuna.db", study_name="tracked", pruner="none", include_default=False)
    options |= dict(baselines=["naive2"], tracking=True, tracking_uri=uri, experiment="tuning", refit=False)
    estimator = LSTMForecaster(**TINY, hidden_size=4)
    space = {"clip_norm": optuna.distributions.FloatDistribution(0.1, 10.0, log=True)}
    first = tune(estimator, _panel(n_series=2), search_space=space, n_trials=2, validation=1, **options)
    tune(estimator, _panel(n_series=2), search_space=space, n_trials=3, validation=1, **options)  # resumes

    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name("tuning")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get("tsforecast.kind") == "tuning-study"]
    assert len(parents) == 1  # the resumed study logs under the same parent run
    parent = parents[0]
    assert parent.info.run_id == first.study.user_attrs["mlflow.parent_run_id"]
    assert parent.data.params["study"] == "tracked" and "Naive2/mase" in parent.data.metrics
    assert "tuned/mase" in parent.data.metrics
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "tuning")}
    assert artifacts == {"tuning/leaderboard.csv"}
    trials = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(r.data.tags["optuna.trial_number"] for r in trials) == ["0", "1", "2"]
    for run in trials:
        assert {"clip_norm", "validation_size"} <= set(run.data.params)
        assert run.info.status == "FINISHED" and "val_mase" in run.data.metrics
        curve = client.get_metric_history(run.info.run_id, "val_loss")
        assert [m.step for m in curve] == [1, 2, 3, 4]  # one point per epoch of the one window


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_a_tracked_study_nests_in_the_active_run_and_stays_open_while_others_run(
    tmp_path, monkeypatch, mlflow_server
):
    mlflow = pytest.importorskip("mlflow")
    from tsforecast import tracking

    monkeypatch.chdir(tmp_path)
    uri = mlflow_server.uri
    storage = make_storage(tmp_path / "nested.db")
    other = optuna.create_study(study_name="nested", storage=storage).ask()  # another worker's, running
    options = dict(storage=storage, study_name="nested", pruner="none", include_default=False, refit=False)
    options |= dict(baselines=["naive2"], tracking=True, tracking_uri=uri, experiment="nested", validation=1)
    options |= dict(search_space={"clip_norm": optuna.distributions.FloatDistribution(0.1, 10.0, log=True)})
    estimator = LSTMForecaster(**TINY, hidden_size=4)
    with tracking.run("nested", "outer", tracking_uri=uri) as outer:
        result = tune(estimator, _panel(n_series=2), n_trials=1, **options)
        assert mlflow.active_run().info.run_id == outer  # the study's run ended, the caller's did not

    client = mlflow.MlflowClient(uri)
    study_run = client.get_run(result.study.user_attrs["mlflow.parent_run_id"])
    assert study_run.data.tags["mlflow.parentRunId"] == outer
    assert "Naive2/mase" in study_run.data.metrics and "Naive2/mase" not in client.get_run(outer).data.metrics
    assert client.get_run(outer).info.status == "FINISHED"
    assert study_run.info.status == "RUNNING"  # the other worker's trial still runs
    trials = client.search_runs(
        [study_run.info.experiment_id], f"tags.mlflow.parentRunId = '{study_run.info.run_id}'"
    )
    assert [r.data.tags["optuna.trial_number"] for r in trials] == ["1"]

    result.study.tell(other.number, state=TrialState.FAIL)
    tune(estimator, _panel(n_series=2), n_trials=1, **options)  # the last worker: study full, run closed
    assert client.get_run(study_run.info.run_id).info.status == "FINISHED"


def test_workers_starting_at_once_end_with_one_study_run(tmp_path, mlflow_server):
    mlflow = pytest.importorskip("mlflow")
    from tsforecast.tuning.runs import PARENT_ATTR, StudyTracker

    uri = mlflow_server.uri
    storage = make_storage(tmp_path / "race.db")
    study = optuna.create_study(study_name="race", storage=storage)
    tracker = StudyTracker(study, uri, "race")
    client = mlflow.MlflowClient(uri)
    theirs = client.create_run(tracker.experiment_id, run_name="race").info.run_id
    with tracker.parent({"study": "race"}) as mine:
        # Another worker that read "no run yet" as we did records its run after ours.
        study.set_user_attr(PARENT_ATTR, theirs)
        assert tracker.run_id() == theirs  # where this worker's next trial runs and summary go
    assert client.get_run(mine).info.lifecycle_stage == "deleted"
    assert client.get_run(theirs).info.lifecycle_stage == "active"
    with StudyTracker(study, uri, "race").parent({}) as again:  # a later worker or a resume
        assert again == theirs


def test_settings_are_checked_with_messages_that_name_the_problem(tmp_path):
    from tsforecast.tuning.storage import make_storage, resolve_pruner
    from tsforecast.urls import redact_url

    assert isinstance(resolve_pruner("median"), optuna.pruners.MedianPruner)
    assert isinstance(resolve_pruner("hyperband"), optuna.pruners.HyperbandPruner)
    assert isinstance(resolve_pruner(None), optuna.pruners.NopPruner)
    with pytest.raises(InvalidParameterError, match="pruner must be"):
        resolve_pruner("sometimes")
    assert redact_url("postgresql://tuner:secret@db:5432/optuna") == "postgresql://tuner:***@db:5432/optuna"
    storage = make_storage(tmp_path / "path.db", heartbeat_interval=5)
    assert storage.url == f"sqlite:///{(tmp_path / 'path.db').as_posix()}" and storage.grace_period == 10
    with pytest.raises(InvalidParameterError, match="heartbeat_interval"):
        make_storage(tmp_path / "x.db", heartbeat_interval=0.5)
    nested = make_storage(f"sqlite:///{tmp_path / 'studies' / 'a' / 'optuna.db'}")  # folders are created
    assert (tmp_path / "studies" / "a" / "optuna.db").is_file() and nested.get_all_studies() == []
    from tsforecast.exceptions import UnavailableError

    with pytest.raises(UnavailableError, match=r"cannot open the Optuna storage 'postgresql://u:\*\*\*@127"):
        make_storage(f"postgresql://u:secret@127.0.0.1:{free_port()}/optuna")  # nobody listens there
    assert Validation.coerce(3).resolve(horizon=6, season_length=12) == Validation(3, 6, 6, 12)
    with pytest.raises(InvalidParameterError, match="unknown key"):
        Validation.coerce({"windows": 2})
    y = _panel()
    for bad, message in (
        (dict(metric="mape"), "metric must be one of"),
        (dict(baselines=["naive3"]), "unknown baseline 'naive3'"),
        (dict(metric="owa", baselines=["theta"]), "relative to Naive2"),
        (dict(n_trials=0), "n_trials must be"),
        (dict(search_space={"hidden_size": [4, 8]}), "must be an optuna.distributions object"),
        (dict(hold=["hidden"]), r"hold names \['hidden'\]"),
        (dict(hold=["hidden_size"], search_space=lambda trial: {}), "applies to a mapping search space"),
    ):
        with pytest.raises(InvalidParameterError, match=message):
            tune(LSTMForecaster(**TINY), y, storage=tmp_path / "bad.db", **bad)


def test_importing_tuning_and_its_command_loads_no_heavy_package():
    code = "import sys, tsforecast.tuning, tsforecast.cli.tune; print(sorted({'torch', 'optuna', 'mlflow'} "
    code += "& set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def _write_m4_hourly(folder: Path, n_series=2, length=400) -> None:
    """A small M4 Hourly release: the competition's wide layout, horizon 48."""
    t = np.arange(length + 48)
    for part, cut in (("train", slice(0, length)), ("test", slice(length, None))):
        width = length if part == "train" else 48
        lines = [",".join(f'"V{i}"' for i in range(1, width + 2))]
        for i in range(n_series):
            values = 100 + 20 * np.sin(2 * np.pi * t / 24 + i) + 0.05 * t
            lines.append(f'"H{i + 1}",' + ",".join(f"{v:.3f}" for v in values[cut]))
        (folder / f"Hourly-{part}.csv").write_text("\n".join(lines) + "\n")


def test_cli_tunes_an_m4_subset_and_scores_its_test_part(tmp_path):
    from tsforecast.cli import build_parser

    _write_m4_hourly(tmp_path)
    parser = build_parser()
    args = parser.parse_args(
        ["tune", "m4:hourly", "--data-dir", str(tmp_path), "--test", "m4", "--n-windows", "1"]
        + ["--n-trials", "1", "--pruner", "none", "--baselines", "snaive,naive2", "--no-default"]
        + ["--storage", str(tmp_path / "m4.db"), "--output", str(tmp_path / "out"), "--quiet"]
        + ["--param", "max_epochs=1", "--param", "hidden_size=4", "--param", "device=cpu"]
    )
    assert args.handler(args) == 0
    scores = pd.read_csv(tmp_path / "out" / "test_scores.csv", index_col="model")
    assert {"SeasonalNaive", "Naive2", "tuned"} == set(scores.index)  # --no-default: no default refit
    assert np.isfinite(scores.to_numpy(dtype=float)).all() and scores.loc["Naive2", "owa"] == 1
    document = json.loads((tmp_path / "out" / "best_params.json").read_text())
    model = __import__("tsforecast").load(tmp_path / "out" / "model.safetensors")
    assert model.get_params()["horizon"] == 48 and model.get_params()["season_length"] == 24  # M4's
    assert model.get_params()["hidden_size"] == 4 and "hidden_size" not in document["best_params"]
    assert document["settings"]["data"] == "m4:hourly"
    bad = parser.parse_args(["tune", str(tmp_path / "Hourly-train.csv"), "--test", "m4"])
    with pytest.raises(InvalidParameterError, match="--test m4 needs M4 data"):
        bad.handler(bad)
