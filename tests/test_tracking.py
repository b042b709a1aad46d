"""MLflow tracking against a real `mlflow server` process and the embedded SQLite store (no mocks).

The tracked fits are made once per module (fixture ``tracked``) and each test checks one aspect of
them; the server boots in the background while the tests that do not need it run first.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

mlflow = pytest.importorskip("mlflow")

from tsforecast import tracking  # noqa: E402
from tsforecast.backtesting import compare  # noqa: E402
from tsforecast.baselines import Naive2, SeasonalNaive, Theta  # noqa: E402
from tsforecast.epochs import EpochRecord  # noqa: E402
from tsforecast.exceptions import TrackingError  # noqa: E402
from tsforecast.nn.estimators import LSTMForecaster  # noqa: E402

pytestmark = [pytest.mark.tracking, pytest.mark.timeout(300)]

HORIZON, SEASON, EPOCHS = 4, 6, 3
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module", autouse=True)
def _boot_server(mlflow_server):
    """Start the server now; the tests that need it wait on ``mlflow_server.uri``."""


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """Tiny networks on a shared machine: intra-op threads only add contention."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _no_ambient_store(monkeypatch):
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def panel():
    rng = np.random.default_rng(0)
    frames = []
    for uid, length in (("a", 60), ("b", 72), ("c", 48)):
        t = np.arange(length)
        y = 20 + 3 * np.sin(2 * np.pi * t / SEASON) + 0.05 * t + rng.normal(0, 0.2, length)
        ds = pd.date_range("2024-01-01", periods=length, freq="h")
        frames.append(pd.DataFrame({"unique_id": uid, "ds": ds, "y": y}))
    return pd.concat(frames, ignore_index=True)


def small_lstm(**params):
    return LSTMForecaster(**{
        "horizon": HORIZON, "season_length": SEASON, "hidden_size": 4, "num_layers": 1,
        "max_epochs": EPOCHS, "tbptt_steps": 12, "batch_size": 8, "validation_size": HORIZON,
        "patience": None, "device": "cpu", "random_state": 0, **params,
    })  # fmt: skip


@pytest.fixture(scope="module")
def server_uri(mlflow_server):
    return mlflow_server.uri


@pytest.fixture(scope="module")
def tracked(server_uri, panel):
    """One tracked baseline fit and one tracked neural fit on the server, with untracked twins."""
    client = mlflow.MlflowClient(server_uri)
    seen_live = {}

    def capture_run_id(estimator, record):
        seen_live.setdefault("run", mlflow.active_run().info.run_id)

    def count_logged_epochs(estimator, record):
        # The user's callbacks run before the tracker's: by the last epoch, the earlier ones must
        # have reached the server while training is still going on.
        if record.epoch == EPOCHS:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                seen_live["epochs"] = len(client.get_metric_history(seen_live["run"], "train_loss"))
                if seen_live["epochs"] >= EPOCHS - 1:
                    break
                time.sleep(0.2)

    callbacks = [capture_run_id, count_logged_epochs]
    lstm = small_lstm(callbacks=callbacks)
    params_before = lstm.get_params()
    lstm, lstm_run = tracking.track_fit(
        lstm, panel, tracking_uri=server_uri, experiment="tracking-tests", dataset_name="toy-hourly",
        registered_model_name="tsf-test-lstm", model_alias="champion",
    )  # fmt: skip
    snaive, snaive_run = tracking.track_fit(
        SeasonalNaive(season_length=SEASON, horizon=HORIZON), panel, tracking_uri=server_uri,
        experiment="tracking-tests", dataset_name="toy-hourly", registered_model_name="tsf-test-snaive",
    )  # fmt: skip
    return {
        "client": client,
        "lstm": lstm,
        "lstm_run": lstm_run,
        "lstm_params_before": params_before,
        "lstm_callbacks": callbacks,
        "lstm_untracked": small_lstm().fit(panel),
        "live_epochs": seen_live.get("epochs"),
        "snaive": snaive,
        "snaive_run": snaive_run,
        "snaive_untracked": SeasonalNaive(season_length=SEASON, horizon=HORIZON).fit(panel),
    }


def read_artifact(client, run_id, path, folder):
    return Path(client.download_artifacts(run_id, path, str(folder)))


def assert_png(path: Path):
    from PIL import Image

    assert path.read_bytes()[:8] == PNG_MAGIC
    with Image.open(path) as image:
        width, height = image.size
    assert width > 100 and height > 100


# -- no server needed: these run while it boots ---------------------------------------------------


def test_unreachable_server_fails_fast_before_fitting(panel, closed_port):
    estimator = SeasonalNaive(season_length=SEASON, horizon=HORIZON)
    start = time.monotonic()
    with pytest.raises(TrackingError, match="unreachable"):
        tracking.track_fit(estimator, panel, tracking_uri=f"http://127.0.0.1:{closed_port}")
    assert time.monotonic() - start < 15
    assert not hasattr(estimator, "training_panel_")  # nothing was trained


def test_embedded_store_is_the_default(tmp_path, monkeypatch, panel):
    monkeypatch.chdir(tmp_path)
    estimator, run_id = tracking.track_fit(SeasonalNaive(season_length=SEASON, horizon=HORIZON), panel)

    assert (tmp_path / "mlflow.db").is_file()
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.info.artifact_uri.startswith((tmp_path / "mlartifacts").as_uri())
    assert (tmp_path / "mlartifacts" / run_id / "artifacts" / "forecasts.parquet").is_file()
    assert run.data.params["season_length"] == str(SEASON)
    with tracking.store.using(tracking.resolve_store()):
        model = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
    pd.testing.assert_frame_equal(model.predict(panel), estimator.predict(y=panel))

    # A neural fit with the default validation_size=0 and a registry round trip, in the same store.
    lstm, lstm_run = tracking.track_fit(
        small_lstm(validation_size=0),
        panel,
        registered_model_name="tsf-embedded-lstm",
        model_alias="champion",
    )
    run = client.get_run(lstm_run)
    assert run.data.tags["tsforecast.validation"] == "none (validation_size=0)"  # no silent gap
    assert "train_loss" in run.data.metrics and "val_loss" not in run.data.metrics
    assert (tmp_path / "mlartifacts" / lstm_run / "artifacts" / "training_curves.png").is_file()
    with tracking.store.using(tracking.resolve_store()):
        model = mlflow.pyfunc.load_model("models:/tsf-embedded-lstm@champion")
    pd.testing.assert_frame_equal(model.predict(panel), lstm.predict(y=panel))


def test_training_curves_say_when_there_is_no_validation_loss():
    from tsforecast.tracking.plots import training_figure

    history = pd.DataFrame({"epoch": [1, 2, 3], "train_loss": [3.0, 2.0, 1.5], "val_loss": np.nan})
    loss = training_figure(history, validation="none (validation_size=0)").axes[0]
    assert loss.get_title() == "loss\nvalidation loss: none (validation_size=0)"
    assert [line.get_label() for line in loss.get_lines()] == ["train_loss"]
    with_validation = history.assign(val_loss=[3.5, 2.5, 2.0])
    note = "last 4 steps of each series (validation_size=4)"
    assert training_figure(with_validation, validation=note).axes[0].get_title() == "loss"


def test_importing_tracking_loads_no_heavy_package():
    code = (
        "import sys, tsforecast.tracking; print(sorted({'mlflow', 'matplotlib', 'torch'} & set(sys.modules)))"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"


# -- against the server -----------------------------------------------------------------------------


def test_environment_variable_and_argument_choose_the_store(
    tmp_path, monkeypatch, server_uri, panel, closed_port
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server_uri)
    _, run_id = tracking.track_fit(Naive2(season_length=SEASON, horizon=HORIZON), panel, log_model=False)
    assert mlflow.MlflowClient(server_uri).get_run(run_id).info.status == "FINISHED"
    assert not (tmp_path / "mlflow.db").exists()

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{closed_port}")
    _, run_id = tracking.track_fit(
        Naive2(season_length=SEASON, horizon=HORIZON),
        panel,
        tracking_uri=server_uri,
        log_model=False,
        plots=False,
    )
    assert mlflow.MlflowClient(server_uri).get_run(run_id).info.status == "FINISHED"
    assert mlflow.get_tracking_uri() != server_uri  # the caller's MLflow settings are restored


def test_params_and_dataset_are_logged(tracked):
    validation = tracked["client"].get_run(tracked["lstm_run"]).data.tags["tsforecast.validation"]
    assert validation == f"last {HORIZON} steps of each series (validation_size={HORIZON})"
    assert "tsforecast.validation" not in tracked["client"].get_run(tracked["snaive_run"]).data.tags
    for name in ("lstm", "snaive"):
        run = tracked["client"].get_run(tracked[f"{name}_run"])
        params = run.data.params
        assert set(tracked[name].get_params()) <= set(params)
        assert params["data.name"] == "toy-hourly"
        assert params["data.n_series"] == "3"
        assert (params["data.length_min"], params["data.length_max"]) == ("48", "72")
        assert params["data.freq"] == "h"
        (dataset_input,) = run.inputs.dataset_inputs
        assert dataset_input.dataset.name == "toy-hourly"
        assert json.loads(dataset_input.dataset.profile)["num_rows"] == 180


def test_neural_fit_logs_one_point_per_epoch_live(tracked):
    client, run_id = tracked["client"], tracked["lstm_run"]
    n_epochs = len(tracked["lstm"].history_)
    assert n_epochs == EPOCHS
    for field, metric in EpochRecord.METRICS.items():
        history = client.get_metric_history(run_id, metric)
        if tracked["lstm"].history_[field].isna().all():  # val_loss without a tail, GPU memory on a CPU
            assert history == [], metric
            continue
        assert sorted(m.step for m in history) == list(range(1, n_epochs + 1)), metric
    losses = [m.value for m in sorted(client.get_metric_history(run_id, "train_loss"), key=lambda m: m.step)]
    np.testing.assert_allclose(losses, tracked["lstm"].history_["train_loss"])
    assert tracked["live_epochs"] >= EPOCHS - 1  # seen on the server before training ended


def test_tracking_changes_neither_params_nor_forecasts(tracked, panel):
    lstm = tracked["lstm"]
    assert lstm.callbacks is tracked["lstm_callbacks"] and len(lstm.callbacks) == 2
    assert lstm.get_params() == tracked["lstm_params_before"]
    pd.testing.assert_frame_equal(lstm.predict(), tracked["lstm_untracked"].predict())
    pd.testing.assert_frame_equal(tracked["snaive"].predict(), tracked["snaive_untracked"].predict())


def test_artifacts_open_as_png_and_parquet(tracked, tmp_path):
    client = tracked["client"]
    lstm_run, snaive_run = tracked["lstm_run"], tracked["snaive_run"]
    assert {a.path for a in client.list_artifacts(lstm_run)} >= {
        "forecasts.parquet", "forecasts.png", "training_curves.png", "training_history.csv",
    }  # fmt: skip
    for run_id, name in (
        (lstm_run, "forecasts.png"),
        (lstm_run, "training_curves.png"),
        (snaive_run, "forecasts.png"),
    ):
        assert_png(read_artifact(client, run_id, name, tmp_path / run_id))
    logged = pd.read_parquet(read_artifact(client, snaive_run, "forecasts.parquet", tmp_path))
    pd.testing.assert_frame_equal(logged, tracked["snaive"].predict(), check_dtype=False)


def test_registered_models_load_by_name_and_alias(tracked, server_uri, panel, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server_uri)
    for uri, estimator in (
        ("models:/tsf-test-snaive/latest", tracked["snaive"]),
        ("models:/tsf-test-lstm@champion", tracked["lstm"]),
    ):
        model = mlflow.pyfunc.load_model(uri)
        pd.testing.assert_frame_equal(model.predict(panel), estimator.predict(y=panel))
        short = model.predict(panel, params={"horizon": 2})
        pd.testing.assert_frame_equal(short, estimator.predict(2, y=panel))
    signature = mlflow.models.get_model_info("models:/tsf-test-lstm@champion").signature
    assert signature.inputs.input_names() == ["unique_id", "ds", "y"]
    assert signature.params.to_dict()[0]["default"] == HORIZON


def test_models_predict_identically_in_a_fresh_cpu_process(tracked, server_uri, panel, tmp_path):
    panel.to_parquet(tmp_path / "history.parquet")
    uris = {"lstm": f"runs:/{tracked['lstm_run']}/model", "snaive": "models:/tsf-test-snaive/latest"}
    code = (
        "import sys, json, mlflow, pandas as pd\n"
        "history = pd.read_parquet(sys.argv[1])\n"
        "for name, uri in json.loads(sys.argv[2]).items():\n"
        "    mlflow.pyfunc.load_model(uri).predict(history).to_parquet(f'{sys.argv[3]}/{name}.parquet')\n"
    )
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": server_uri,
        "CUDA_VISIBLE_DEVICES": "",
        "OMP_NUM_THREADS": "1",
    }
    subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "history.parquet"), json.dumps(uris), str(tmp_path)],
        check=True, env=env, capture_output=True, timeout=180,
    )  # fmt: skip
    for name in uris:
        fresh = pd.read_parquet(tmp_path / f"{name}.parquet")
        pd.testing.assert_frame_equal(fresh, tracked[name].predict(y=panel), check_dtype=False)


def test_backtest_in_a_run_logs_metrics_comparison_and_plots(server_uri, panel, tmp_path):
    models = {
        "lstm": small_lstm(),
        "snaive": SeasonalNaive(season_length=SEASON, horizon=HORIZON),
        "naive2": Naive2(season_length=SEASON, horizon=HORIZON),
        "theta": Theta(season_length=SEASON, horizon=HORIZON),
    }
    with tracking.run("tracking-tests", "benchmark", tracking_uri=server_uri) as parent:
        _, child = tracking.track_fit(
            Naive2(season_length=SEASON, horizon=HORIZON), panel, log_model=False, plots=False
        )
        result = compare(models, panel, horizon=HORIZON, n_windows=2, refit=False, season_length=SEASON)
        assert tracking.track_backtest(result, dataset_name="toy-hourly") == parent

    client = mlflow.MlflowClient(server_uri)
    assert client.get_run(child).data.tags["mlflow.parentRunId"] == parent
    run = client.get_run(parent)
    for model in models:
        for metric in ("smape", "mase", "mae", "owa"):
            assert run.data.metrics[f"{model}/{metric}"] == pytest.approx(result.summary.loc[model, metric])
        steps = client.get_metric_history(parent, f"{model}/smape_by_step")
        assert sorted(m.step for m in steps) == list(range(1, HORIZON + 1))
    assert run.data.metrics["naive2/owa"] == pytest.approx(1.0)

    table = pd.read_csv(read_artifact(client, parent, "backtest/comparison.csv", tmp_path), index_col=0)
    assert list(table.index) == list(models)
    logged = pd.read_parquet(read_artifact(client, parent, "backtest/forecasts.parquet", tmp_path))
    assert len(logged) == len(result.forecasts)
    for name in ("forecasts.png", "error_by_horizon.png"):
        assert_png(read_artifact(client, parent, f"backtest/{name}", tmp_path))


def test_store_failing_mid_fit_only_warns(server_uri, panel, caplog):
    client = mlflow.MlflowClient(server_uri)

    def delete_my_run(estimator, record):
        # A real store-side failure half-way: every later write to this run is refused.
        if record.epoch == 1:
            client.delete_run(mlflow.active_run().info.run_id)

    with caplog.at_level(logging.WARNING, logger="tsforecast.tracking"):
        lstm, _ = tracking.track_fit(small_lstm(callbacks=[delete_my_run]), panel, tracking_uri=server_uri)
    assert len(lstm.history_) == EPOCHS
    pd.testing.assert_frame_equal(lstm.predict(), small_lstm().fit(panel).predict())
    assert any("MLflow run" in record.getMessage() for record in caplog.records)
