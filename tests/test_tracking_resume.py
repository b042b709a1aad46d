"""A tracked fit killed and resumed from its checkpoint is one MLflow run (real server on 127.0.0.1)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

mlflow = pytest.importorskip("mlflow")

from tsforecast import LSTMForecaster, tracking  # noqa: E402
from tsforecast.tracking.resume import RESUMED_TAG, RUN_FILE  # noqa: E402

EPOCHS = 4


class _Killed(Exception):
    pass


def _kill_at(epoch: int):
    def callback(estimator, record):
        if record.epoch == epoch:
            raise _Killed  # before this epoch's checkpoint and metrics

    return callback


def _panel() -> pd.DataFrame:
    t = np.arange(120)
    return pd.concat(
        [
            pd.DataFrame(
                {
                    "unique_id": uid,
                    "ds": pd.date_range("2024-01-01", periods=120, freq="h"),
                    "y": 10 + k + 3 * np.sin(2 * np.pi * t / 24),
                }
            )
            for k, uid in enumerate("abc")
        ],
        ignore_index=True,
    )


def _lstm(**params) -> LSTMForecaster:
    settings = dict(horizon=6, hidden_size=4, max_epochs=EPOCHS, tbptt_steps=24, random_state=0, device="cpu")
    return LSTMForecaster(**settings, **params)


def test_a_resumed_fit_continues_its_run(mlflow_server, tmp_path):
    uri, experiment, panel = mlflow_server.uri, "resume-tests", _panel()
    client = mlflow.MlflowClient(uri)
    folder = str(tmp_path / "checkpoints")
    with pytest.raises(_Killed):
        tracking.track_fit(
            _lstm(checkpoint_dir=folder, callbacks=[_kill_at(3)]), panel, tracking_uri=uri,
            experiment=experiment, log_model=False, plots=False,
        )  # fmt: skip
    first = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    assert len(first) == 1 and first[0].info.status == "FAILED"
    assert (tmp_path / "checkpoints" / RUN_FILE).exists()

    model, run_id = tracking.track_fit(
        _lstm(checkpoint_dir=folder), panel, tracking_uri=uri, experiment=experiment, log_model=False
    )
    run = client.get_run(run_id)
    assert run_id == first[0].info.run_id and run.info.status == "FINISHED"
    assert run.data.tags[RESUMED_TAG] == "1"
    steps = sorted(m.step for m in client.get_metric_history(run_id, "train_loss"))
    assert steps == list(range(1, EPOCHS + 1))  # each epoch once: 1-2 before the kill, 3-4 after
    np.testing.assert_allclose(
        [m.value for m in sorted(client.get_metric_history(run_id, "train_loss"), key=lambda m: m.step)],
        _lstm().fit(panel).history_["train_loss"],
    )
    assert "training_curves.png" in {a.path for a in client.list_artifacts(run_id)}

    # A finished run is never reopened: running the completed fit again is a new job, a new run.
    _, again = tracking.track_fit(
        _lstm(checkpoint_dir=folder), panel, tracking_uri=uri, experiment=experiment, log_model=False
    )
    assert again != run_id and RESUMED_TAG not in client.get_run(again).data.tags
