"""Diagnostics of fitted recurrent forecasters (tsforecast.nn.diagnostics) and ``tsforecast diagnose``.

Networks with hand-set weights make the gradient flow exact: with zero input weights and biases a
vanilla RNN's state stays at 0, where tanh has slope 1, so the gradient ``k`` steps back is
``W_hh^k`` times the one at lag 0 (``0.1^k`` vanishes, ``1.5^k`` explodes); an LSTM whose forget
gate is pinned open carries it back almost undamped.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
import torch

from tsforecast.exceptions import (
    ClippingWarning,
    InvalidInputError,
    InvalidParameterError,
    NotFittedError,
    TrackingError,
)
from tsforecast.nn import GRUForecaster, LSTMForecaster, RNNForecaster
from tsforecast.nn.diagnostics import (
    DiagnosticReport,
    compare_gradient_flow,
    diagnose,
    log_to_mlflow,
    step_forecasts,
)
from tsforecast.nn.diagnostics.cells import GATES, unroll
from tsforecast.nn.diagnostics.probe import probe_windows
from tsforecast.nn.modules import RecurrentNetwork

torch.set_num_threads(1)

TINY = dict(
    horizon=3, season_length=4, hidden_size=4, num_layers=1, max_epochs=1, tbptt_steps=12, random_state=0
)


def panel(n_series=3, length=80, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    frames = [
        pd.DataFrame(
            {
                "unique_id": f"s{k}",
                "ds": t,
                "y": 10 + k + np.sin(2 * np.pi * t / 4) + rng.normal(0, 0.2, length),
            }
        )
        for k in range(n_series)
    ]
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def data():
    return panel()


def _set_weights(model, w_hh: float, forget_bias: float | None = None):
    """Zero input weights and biases, ``w_hh * I`` recurrence, a head that reads the state."""
    network = model.network_
    hidden = network.layers[0].hidden_size
    with torch.no_grad():
        for name, param in network.layers[0].named_parameters():
            param.zero_()
            if name.startswith("weight_hh"):
                for block in param.view(-1, hidden, hidden):
                    block.copy_(w_hh * torch.eye(hidden))
            if forget_bias is not None and name.startswith("bias_ih"):
                param[hidden : 2 * hidden] = forget_bias  # LSTM block order i, f, g, o
        network.head.weight.zero_()
        network.head.weight[:, :hidden] = 1.0
        network.head.bias.zero_()
    return model


@pytest.fixture(scope="module")
def rnn_model(data):
    return RNNForecaster(**TINY).fit(data)


@pytest.fixture(scope="module")
def lstm_model(data):
    return LSTMForecaster(**{**TINY, "num_layers": 2}).fit(data)


# ------------------------------------------------------------------ the cell equations
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("residual", [False, True])
def test_unrolled_cells_reproduce_torch(cell, residual):
    torch.manual_seed(0)
    net = RecurrentNetwork(
        cell, input_size=3, hidden_size=5, num_layers=2, n_outputs=2, residual=residual
    ).eval()
    torch.nn.init.normal_(net.head.weight)
    x = torch.randn(4, 9, 3)
    state = net(torch.randn(4, 3, 3))[1]  # a non-zero start state
    ours = unroll(net, x, state, record_gates=True)
    theirs, final = net(x, state)
    torch.testing.assert_close(net.head(torch.cat([ours.outputs, x], -1)), theirs, atol=1e-5, rtol=1e-4)
    pairs = zip(ours.state, final, strict=True) if cell == "lstm" else [(ours.state, final)]
    for mine, torchs in pairs:  # (layers, batch, hidden)
        torch.testing.assert_close(mine, torchs, atol=1e-5, rtol=1e-4)
    if not residual:  # the stacked module returns the top layer's states
        torch.testing.assert_close(ours.hidden[-1], net.layers[0](x, state)[0], atol=1e-5, rtol=1e-4)
    for gates in ours.gates:  # (batch, time, G, hidden)
        assert gates.shape == (4, 9, len(GATES[cell]), 5)
        for j, (_, activation) in enumerate(GATES[cell]):
            low = 0.0 if activation == "sigmoid" else -1.0
            assert gates[:, :, j].min() >= low and gates[:, :, j].max() <= 1.0


def test_lstm_gates_rebuild_torchs_cell_states():
    """c = f c + i g and h = o tanh(c) from the recorded gates give nn.LSTM's own states."""
    torch.manual_seed(1)
    net = RecurrentNetwork("lstm", input_size=2, hidden_size=3, num_layers=1, n_outputs=1).eval()
    x = torch.randn(2, 6, 2)
    gates = unroll(net, x, record_gates=True).gates[0]
    i, f, g, o = gates.unbind(2)  # (batch, time, hidden) each
    c, hs = torch.zeros(2, 3), []
    for t in range(6):
        c = f[:, t] * c + i[:, t] * g[:, t]
        hs.append(o[:, t] * torch.tanh(c))
    outputs, (h_n, c_n) = net.layers[0](x)
    torch.testing.assert_close(torch.stack(hs, 1), outputs, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(c, c_n[0], atol=1e-6, rtol=1e-5)


# ------------------------------------------------------------------ gradient flow
def test_a_contracting_rnn_vanishes_and_the_report_says_so(rnn_model):
    model = _set_weights(rnn_model, w_hh=0.1)
    report = model.diagnose(max_lag=8, warmup=4)  # the estimator's method delegates to diagnose()
    assert isinstance(report, DiagnosticReport) and report.model == "RNNForecaster"
    relative = report.gradient_flow["relative"].to_numpy()
    np.testing.assert_allclose(relative, 0.1 ** np.arange(9), rtol=1e-3)
    assert report.far_near_ratio == pytest.approx(1e-8, rel=1e-3)
    assert report.findings[0].startswith("gradient at lag 8 is 1e-08 of lag 0 (8 orders of magnitude smaller")
    assert (
        "cannot learn dependencies this long; consider LSTMForecaster or GRUForecaster" in report.findings[0]
    )


def test_an_expanding_rnn_explodes_and_the_report_says_so(rnn_model):
    model = _set_weights(rnn_model, w_hh=1.5)
    report = diagnose(model, max_lag=20)
    np.testing.assert_allclose(report.gradient_flow["relative"], 1.5 ** np.arange(21), rtol=1e-3)
    assert report.findings[0].startswith("gradient at lag 20 is 3e+03 times lag 0: gradients explode")
    assert "clip_norm set (now 1.0)" in report.findings[0]
    assert report.findings[1].startswith(
        "the gradient flow reaches lag 20, beyond tbptt_steps=12: training never"
    )


def test_an_open_forget_gate_carries_the_gradient_and_saturates():
    model = _set_weights(LSTMForecaster(**TINY).fit(panel()), w_hh=0.0, forget_bias=8.0)
    report = model.diagnose(max_lag=10)
    f = 1 / (1 + np.exp(-8.0))
    # lag 0: d/dh only; lag k >= 1: through c alone, o = 0.5 times f per step back
    expected = np.r_[1.0, 0.5 * f ** np.arange(1, 11)]
    np.testing.assert_allclose(report.gradient_flow["relative"], expected, rtol=1e-4)
    assert "gradients cross the whole span" in report.findings[0]
    forget = report.gates.set_index("gate").loc["forget"]
    assert forget["saturated_high"] == 1.0 and forget["mean"] == pytest.approx(f, rel=1e-6)
    assert any(
        line.startswith(
            "layer 1 forget gate is saturated on 100% of steps (mean 1.00): the cell keeps its memory"
        )
        for line in report.findings
    )
    rnn = diagnose(_set_weights(RNNForecaster(**TINY).fit(panel()), w_hh=0.3), max_lag=10)
    table, sentences = compare_gradient_flow({"RNNForecaster": rnn, "LSTMForecaster": report})
    assert table.loc["RNNForecaster", "log10_ratio"] == pytest.approx(-10 * np.log10(1 / 0.3), rel=1e-3)
    assert sentences[0].startswith(
        "RNNForecaster's far/near gradient ratio at lag 10 (6e-06) is 4.9 orders of magnitude below "
        "LSTMForecaster's"
    )


def test_gradient_flow_of_a_trained_model_matches_autograd_on_torchs_lstm():
    """The probe gradients equal d loss / d h of the top layer computed through nn.LSTM itself."""
    model = LSTMForecaster(**TINY).fit(panel())
    windows = probe_windows(
        model, model.training_panel_, model.codec_.scaler, max_lag=6, warmup=0, max_series=8
    )
    net = model.network_
    x = windows.x  # (series, 7, features)
    # Run step by step through torch's own module, keeping the state at lag 2 as a leaf.
    h = c = torch.zeros(1, x.shape[0], net.layers[0].hidden_size)
    for t in range(4):
        out, (h, c) = net.layers[0](x[:, t : t + 1], (h, c))
    h_leaf, c_leaf = h.detach().requires_grad_(True), c.detach().requires_grad_(True)
    out, (h, c) = net.layers[0](x[:, 4:], (h_leaf, c_leaf))
    pred = net.head(torch.cat([out[:, -1], x[:, -1]], -1))
    loss = ((windows.y[:, 0] - pred).abs() * windows.mask[:, 0]).sum(-1) / windows.mask[:, 0].sum(-1)
    grads = torch.autograd.grad(loss.sum(), (h_leaf, c_leaf))
    expected = torch.sqrt(grads[0].pow(2).sum((0, 2)) + grads[1].pow(2).sum((0, 2))).mean()
    report = model.diagnose(max_lag=6, warmup=0, max_series=8)
    assert report.gradient_flow.loc[3, "grad_norm"] == pytest.approx(float(expected), rel=1e-4)


# ------------------------------------------------------------------ gates, states, history, errors
def test_gate_table_and_hidden_norms_match_a_direct_computation(lstm_model):
    report = lstm_model.diagnose(max_lag=8, warmup=5, max_series=2)
    windows = probe_windows(lstm_model, lstm_model.training_panel_, lstm_model.codec_.scaler, 8, 5, 2)
    with torch.no_grad():
        run = unroll(lstm_model.network_, windows.x, record_gates=True)
    assert list(report.gates["gate"]) == ["input", "forget", "cell", "output"] * 2
    for k, gates in enumerate(run.gates):
        rows = report.gates[report.gates["layer"] == k + 1]
        np.testing.assert_allclose(rows["mean"], gates.mean(dim=(0, 1, 3)).double(), rtol=1e-5)
        forget = gates[:, :, 1]
        share = float(((forget < 0.05) | (forget > 0.95)).double().mean())
        assert rows["saturated"].iloc[1] == pytest.approx(share)
    np.testing.assert_allclose(
        report.gates["saturated"], report.gates["saturated_low"] + report.gates["saturated_high"]
    )
    assert report.gates["saturated"].between(0, 1).all()
    top = run.hidden[1].pow(2).mean(2).sqrt().mean(0)  # RMS over units, mean over series
    np.testing.assert_allclose(report.hidden_norms["layer_2"], top.double(), rtol=1e-5)
    assert list(report.hidden_norms["lag"]) == list(range(13, -1, -1))


def test_training_history_findings_on_clipping_and_spikes(data):
    with pytest.warns(ClippingWarning):
        model = GRUForecaster(**{**TINY, "clip_norm": 1e-6, "max_epochs": 2}).fit(data)
    report = model.diagnose(max_lag=4)
    assert list(report.training["clipped_fraction"]) == [1.0, 1.0]
    assert any(
        f.startswith("gradient clipping fired on 100% of the optimisation steps (clip_norm=1e-06")
        for f in report.findings
    )
    model.history_ = model.history_.assign(
        grad_norm_mean=[1.0, 1.0], grad_norm_max=[2.0, 500.0], skipped_steps=[0, 3]
    )
    found = model.diagnose(max_lag=4).findings
    assert any(
        f.startswith("exploding gradients in training: the pre-clip norm peaked at 500 in epoch 2")
        for f in found
    )
    assert any(f.startswith("3 optimisation step(s) were skipped") for f in found)


def test_horizon_errors_score_the_held_out_tail(lstm_model, data):
    report = lstm_model.diagnose()
    history = data.groupby("unique_id").head(77)
    forecasts = lstm_model.predict(y=history)
    actual = data.groupby("unique_id").tail(3)
    errors = np.abs(forecasts["y_pred"].to_numpy() - actual["y"].to_numpy()).reshape(3, 3)
    np.testing.assert_allclose(report.horizon_errors["mae"], errors.mean(axis=0), rtol=1e-9)
    naive = history.groupby("unique_id").tail(4).groupby("unique_id").head(3)["y"].to_numpy()
    np.testing.assert_allclose(
        report.horizon_errors["snaive_mae"], np.abs(naive - actual["y"].to_numpy()).reshape(3, 3).mean(0)
    )
    assert list(report.horizon_errors.index) == [1, 2, 3]


def test_an_unnamed_series_is_diagnosed():
    y = pd.Series(np.sin(np.arange(60) / 2), index=pd.RangeIndex(60))  # its id is None
    report = RNNForecaster(**{**TINY, "scaler": "standard", "clip_norm": None}).fit(y).diagnose(max_lag=5)
    assert report.series == [None] and list(report.horizon_errors.index) == [1, 2, 3]


def test_step_forecasts_are_the_forecasts_predict_makes(lstm_model, data):
    steps = step_forecasts(lstm_model)
    assert [s.shape for s in steps] == [(80, 3)] * 3
    assert np.isnan(steps[0][:4]).all() and np.isfinite(steps[0][4:]).all()
    cut = data.groupby("unique_id").head(50)
    expected = lstm_model.predict(y=cut)["y_pred"].to_numpy().reshape(3, 3)
    np.testing.assert_allclose(np.stack([s[49] for s in steps]), expected, rtol=1e-6)


# ------------------------------------------------------------------ errors before any work
def test_errors_name_the_problem(data, lstm_model):
    with pytest.raises(NotFittedError):
        diagnose(LSTMForecaster(**TINY))
    from tsforecast.baselines import SeasonalNaive

    with pytest.raises(
        InvalidParameterError,
        match="needs a fitted LSTMForecaster, GRUForecaster or RNNForecaster; got SeasonalNaive",
    ):
        diagnose(SeasonalNaive(season_length=4).fit(data))
    for bad in (0, 2.5, True, "12"):
        with pytest.raises(InvalidParameterError, match=r"max_lag must be an integer >= 1"):
            lstm_model.diagnose(max_lag=bad)
    with pytest.raises(InvalidParameterError, match="holdout=4 exceeds the forecaster's horizon"):
        lstm_model.diagnose(holdout=4)
    with pytest.raises(
        InvalidInputError, match=r"max_lag=100 steps: it needs 108 observations.*max_lag <= 72"
    ):
        lstm_model.diagnose(max_lag=100)
    with pytest.raises(InvalidInputError):
        lstm_model.diagnose(data.assign(y="text"))


# ------------------------------------------------------------------ text, files, MLflow, CLI
def test_text_and_saved_files(lstm_model, tmp_path):
    report = lstm_model.diagnose(max_lag=10)
    text = report.to_text()
    for title in (
        "findings:",
        "gradient flow through time",
        "gate statistics",
        "hidden-state RMS",
        "training history",
        "error by horizon step",
    ):
        assert title in text
    assert report.to_text(tables=False).endswith(report.findings[-1])
    paths = report.save(tmp_path / "out")
    names = sorted(p.name for p in paths)
    assert names == sorted(
        [f"{n}.csv" for n in ("gradient_flow", "gates", "hidden_norms", "training", "horizon_errors")]
        + [f"{n}.png" for n in ("gradient_flow", "gates", "hidden_norms", "training", "horizon_errors")]
        + ["report.txt"]
    )
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "out" / "gradient_flow.csv"), report.gradient_flow)
    assert pd.read_csv(tmp_path / "out" / "horizon_errors.csv", index_col="horizon")[
        "mae"
    ].tolist() == pytest.approx(report.horizon_errors["mae"].tolist())
    image = matplotlib.image.imread(tmp_path / "out" / "gradient_flow.png")
    assert image.ndim == 3 and image.shape[0] > 100
    assert (tmp_path / "out" / "report.txt").read_text().strip() == text


def test_log_to_mlflow_needs_an_active_run(lstm_model, tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # a file store starts in milliseconds
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    report = lstm_model.diagnose(max_lag=5)
    with pytest.raises(TrackingError, match="no active MLflow run"):
        log_to_mlflow(report)
    with mlflow.start_run() as run:
        report.log_to_mlflow()
    logged = {
        f.path for f in mlflow.artifacts.list_artifacts(run_id=run.info.run_id, artifact_path="diagnostics")
    }
    assert {"diagnostics/gradient_flow.png", "diagnostics/gates.csv", "diagnostics/report.txt"} <= logged
    metric = mlflow.get_run(run.info.run_id).data.metrics["diagnostics/far_near_ratio"]
    assert metric == pytest.approx(report.far_near_ratio)


def test_cli_prints_the_report(data, tmp_path):
    model = RNNForecaster(**TINY).fit(data)
    model.save(tmp_path / "model.safetensors")
    data.to_csv(tmp_path / "data.csv", index=False)
    command = [sys.executable, "-m", "tsforecast.cli", "diagnose", "model.safetensors", "data.csv"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run(
        [*command, "--max-lag", "6"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("RNNForecaster diagnostics (rnn, tbptt_steps=12, 3 series analysed)")
    assert "gradient flow through time (far/near ratio at lag 6:" in done.stdout
    assert "error by horizon step (held-out tail):" in done.stdout


def test_cli_quiet_prints_the_findings_only_and_saves_the_report(lstm_model, tmp_path, capsys):
    from tsforecast.cli import main

    path = str(tmp_path / "model.safetensors")
    lstm_model.save(path)
    assert main(["diagnose", path, "--quiet", "--max-lag", "4", "--output", str(tmp_path / "report")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("LSTMForecaster diagnostics") and "findings:" in out
    assert "gate statistics" not in out
    assert (tmp_path / "report" / "gradient_flow.png").is_file()
    assert pd.read_csv(tmp_path / "report" / "gradient_flow.csv")["lag"].max() == 4
    assert main(["diagnose", path, "--max-lag", "500"]) == 3  # bad input data: the DATA exit code


def test_cli_track_logs_the_report_into_an_mlflow_run(lstm_model, tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    from clitools import main_in_process
    from mlflow import MlflowClient

    monkeypatch.chdir(tmp_path)  # MLflow's artifact root of a new SQLite store is relative to it
    store = f"sqlite:///{(tmp_path / 'mlflow.db').as_posix()}"
    lstm_model.save(tmp_path / "model.safetensors")
    args = ["--max-lag", "4", "--track", "--tracking-uri", store, "--experiment", "diagnostics"]
    assert main_in_process("diagnose", "model.safetensors", *args) == 0
    client = MlflowClient(store)
    (run,) = client.search_runs([client.get_experiment_by_name("diagnostics").experiment_id])
    assert run.info.status == "FINISHED" and run.data.params["diagnose.max_lag"] == "4"
    logged = {a.path for a in client.list_artifacts(run.info.run_id, "diagnostics")}
    assert {f"diagnostics/{n}.png" for n in ("gradient_flow", "gates", "training")} <= logged
    assert {"diagnostics/gradient_flow.csv", "diagnostics/report.txt"} <= logged
    image = client.download_artifacts(run.info.run_id, "diagnostics/gradient_flow.png", str(tmp_path))
    assert matplotlib.image.imread(image).shape[0] > 100
    assert "diagnostics/far_near_ratio" in run.data.metrics


def test_cli_says_a_baseline_has_nothing_to_diagnose(data, tmp_path, capsys):
    from clitools import main_in_process

    from tsforecast.baselines import SeasonalNaive
    from tsforecast.pipelines.models import save_model

    path = save_model(SeasonalNaive(horizon=3, season_length=4).fit(data), tmp_path / "model.joblib")
    assert main_in_process("diagnose", path) == 2
    err = capsys.readouterr().err
    assert "holds a SeasonalNaive: a baseline has nothing to diagnose" in err
    assert "diagnostics need a recurrent forecaster" in err and "corrupted" not in err


def test_long_memory_benchmark_smoke_run(tmp_path, monkeypatch):
    """benchmarks/long_memory.py --smoke: every step of the script in seconds (it learns nothing)."""
    import importlib.util
    import json

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "long_memory.py"
    spec = importlib.util.spec_from_file_location("long_memory", script)
    benchmark = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "long_memory", benchmark)  # its dataclasses look themselves up
    spec.loader.exec_module(benchmark)
    out = tmp_path / "long_memory.json"
    assert benchmark.main(["--smoke", "--models", "rnn,lstm", "--quiet", "--json", str(out)]) == 0
    document = json.loads(out.read_text())
    rows = document["results"]
    runs = [(r["model"], r["tbptt_steps"]) for r in rows]
    assert runs == [("rnn", 5), ("rnn", 20), ("lstm", 5), ("lstm", 20)]
    assert all(np.isfinite(r["echo_mae"]) and r["grad_ratio"] > 0 for r in rows)
    smoke = {"n_series": 4, "length": 100, "epochs": 1}
    assert document["budgets"] == {"rnn lag 10": smoke, "lstm lag 10": smoke}
    # the GRU learns the echo later than the LSTM and gets more epochs at the same lag
    assert benchmark.budget(200, "gru").epochs == 200 and benchmark.budget(200, "lstm").epochs == 80
