"""Covariates in the recurrent forecasters (tsforecast/nn/covariates.py and the codec, streams, network,
model files around it): what the network can learn from them, that nothing leaks across the forecast
origin or the training cut, and that a model fitted with them saves, loads and forecasts the same.

Tiny models on synthetic panels: ``y_t = 20 + 5 x_t + noise`` with ``x`` random and known in advance,
so only a model that reads ``x`` at the step it forecasts can do better than the noise of ``x``.
"""

import numpy as np
import pandas as pd
import pytest
import torch
from modelfiles import read_model_file, rewrite

from tsforecast.data.covariates import align_covariates
from tsforecast.exceptions import InvalidInputError, InvalidParameterError, ModelFileError
from tsforecast.nn import GRUForecaster, LSTMForecaster, load
from tsforecast.nn.covariates import step_inputs
from tsforecast.nn.diagnostics import step_forecasts
from tsforecast.nn.modules import RecurrentNetwork
from tsforecast.nn.streams import stream_chunks, window_chunk
from tsforecast.windowing import plan_streams

torch.set_num_threads(1)

H, N = 4, 160  # horizon, history length
SMALL = dict(
    horizon=H,
    season_length=1,
    long_season_length=None,
    hidden_size=16,
    tbptt_steps=32,
    batch_size=4,
    learning_rate=1e-2,
    scaler="standard",
    random_state=0,
)
ROLES = dict(
    future_covariates=["x", "day"],
    past_covariates=["p"],
    static_covariates=["size", "region"],
    categorical_covariates=["day", "region"],
)


def drivers(n_series=3, n=N, seed=0) -> pd.DataFrame:
    """Long frame: ``y`` with a future-known ``x`` and ``day`` (categorical), a past-observed ``p`` and
    static ``size`` and ``region`` (categorical), over the history and the ``H`` steps after it."""
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(n_series):
        steps = np.arange(n + H)
        x = rng.normal(size=n + H)
        day = np.array(["mon", "tue", "wed"])[steps % 3]
        y = 20 + 5 * x + 2 * (day == "tue") + k + rng.normal(0, 0.1, n + H)
        frames.append(
            pd.DataFrame(
                {
                    "unique_id": f"s{k}",
                    "ds": pd.date_range("2024-01-01", periods=n + H, freq="h"),
                    "y": y,
                    "x": x,
                    "day": day,
                    "p": rng.normal(size=n + H),
                    "size": 1.0 + k,
                    "region": "ab"[k % 2],
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


FULL = drivers()
HISTORY = FULL.groupby("unique_id").head(N)[["unique_id", "ds", "y"]].reset_index(drop=True)
FUTURE = FULL.groupby("unique_id").tail(H).reset_index(drop=True)
X = FULL.drop(columns="y")


@pytest.fixture(scope="module")
def fitted():
    """An LSTM fitted with every role (numeric and categorical, future, past and static), quantiles."""
    model = LSTMForecaster(**SMALL, max_epochs=3, quantiles=(0.1, 0.9), **ROLES)
    return model.fit(HISTORY, X=X[X["ds"] < FUTURE["ds"].min()])


def _mae(forecast: pd.DataFrame) -> float:
    return float(np.abs(forecast["y_pred"].to_numpy() - FUTURE["y"].to_numpy()).mean())


def test_a_future_covariate_lets_the_network_forecast_what_the_history_cannot():
    without = LSTMForecaster(**SMALL, max_epochs=40).fit(HISTORY)
    with_x = LSTMForecaster(**SMALL, max_epochs=40, future_covariates=["x"]).fit(
        HISTORY, X=X[["unique_id", "ds", "x"]]
    )
    # x has a standard deviation of 1 and y = 5 x + noise: without x the error is about 4.
    assert _mae(with_x.predict(X=X[["unique_id", "ds", "x"]])) < 0.25 * _mae(without.predict())


# -- leakage -----------------------------------------------------------------------------------------


def test_past_covariates_after_the_forecast_origin_leave_the_forecast_unchanged(fitted):
    origin = HISTORY.groupby("unique_id").head(N - 10)  # forecast from 10 steps before the end
    changed = X.copy()
    changed.loc[changed["ds"] > origin["ds"].max(), "p"] = 1e3
    pd.testing.assert_frame_equal(fitted.predict(y=origin, X=X), fitted.predict(y=origin, X=changed))


def test_future_covariates_inside_the_horizon_change_the_forecast_from_their_step_on(fitted):
    base = fitted.predict(X=X)
    changed = X.copy()
    second = FUTURE["ds"].min() + pd.Timedelta(hours=1)  # the horizon's second step
    changed.loc[changed["ds"] == second, "x"] += 3.0
    moved = fitted.predict(X=changed)
    step = base.groupby("unique_id").cumcount()
    assert np.array_equal(base.loc[step == 0, "y_pred"], moved.loc[step == 0, "y_pred"])
    assert (base.loc[step >= 1, "y_pred"] != moved.loc[step >= 1, "y_pred"]).all()


CUT = (40, 8)  # streams of at most 40 steps, 8 warm-up steps: as TBPTT training cuts long series


def _step_outputs(model, covariates):
    """The head's outputs at every step of every stream ``(streams, steps, n_outputs)`` (TBPTT path)."""
    panel = model.training_panel_
    streams = model.codec_.encode(
        panel.values, panel.ids, 16, forecast=True, covariates=covariates, cut=CUT
    ).streams
    outputs, state = [], None
    with torch.no_grad():
        for x, *_ in stream_chunks(streams, np.arange(streams.n_streams), 16, model.codec_.scales):
            out, state = model.network_(x, state)  # (streams, 16, n_outputs)
            outputs.append(out)
    return streams, torch.cat(outputs, dim=1)


def test_no_output_reads_a_covariate_it_should_not_see(fitted):
    """Output (t, k) reads past covariates up to t, future-known ones up to t + k, whatever the cuts."""
    panel, context = fitted.training_panel_, fitted.codec_.spec.context
    roles, categories = fitted.covariate_roles(), fitted.covariate_categories_
    streams, base = _step_outputs(fitted, align_covariates(X, panel, roles, categories=categories))
    plan = plan_streams(panel.lengths - context, *CUT)  # the plan encode made
    changed_at = 100  # a time step inside the first series
    for role in ("past", "future"):
        edited = align_covariates(X, panel, roles, categories=categories)
        arrays = getattr(edited, role)
        arrays[0] = arrays[0].copy()
        arrays[0][changed_at:, 0] += 5.0  # p, or x, of series 0 from changed_at on
        _, moved = _step_outputs(fitted, edited)
        for s in np.flatnonzero(plan.series == 0):
            n = int(plan.n_steps[s])
            times = context + plan.start[s] + np.arange(n)  # (n,) the time of each step
            diff = (base[s, :n] != moved[s, :n]).reshape(n, H, -1).any(-1).numpy()  # (n, H)
            ahead = np.arange(1, H + 1) if role == "future" else np.zeros(H, int)
            reach = times[:, None] + ahead  # (n, H) the last time output (t, k) may read
            assert not diff[reach < changed_at].any(), role
            assert diff[reach >= changed_at].all(), role


@pytest.mark.filterwarnings("ignore::tsforecast.exceptions.ClippingWarning")  # one epoch on a ramp
def test_streams_and_windows_carry_covariates_with_the_targets():
    """A future-known covariate equal to the time step, next to y = 1000 + t: in every stream (cut,
    padded) and window, the covariate moves with the target, and the head's block is t+1 .. t+H."""
    t = np.arange(N)
    y = pd.DataFrame({"unique_id": "a", "ds": pd.RangeIndex(N), "y": 1000.0 + t})
    Xt = pd.DataFrame({"unique_id": "a", "ds": pd.RangeIndex(N + H), "t": np.arange(N + H, dtype=float)})
    model = LSTMForecaster(**{**SMALL, "scaler": "none"}, max_epochs=1, future_covariates=["t"])
    model.fit(y, X=Xt)
    codec, panel = model.codec_, model.training_panel_
    center, scale = codec.covariates.center[0], codec.covariates.scale[0]
    aligned = align_covariates(Xt, panel, model.covariate_roles(), categories={})
    streams = codec.encode(panel.values, panel.ids, 16, covariates=aligned, cut=CUT).streams
    for s in range(streams.n_streams):
        real = codec.spec.context + int(streams.n_steps_host[s]) + 1  # context, steps, one target
        z, _, _, cov = streams.rows(torch.tensor([s]), 0, real)
        z, cov = z[0].double(), cov[0, :, 0].double() * scale + center
        torch.testing.assert_close(z - z[0], cov - cov[0], atol=1e-4, rtol=0)  # float32 rows
    n_features = codec.spec.n_features
    ends = torch.tensor([[0, 30], [1, 20]])
    x, _, _ = window_chunk(streams, ends, 12, codec.scales)  # (2, 12, features + 1 + H * 2)
    now = x[..., n_features]  # t at step t
    for k in range(H):  # t + k + 1, then its change since the seasonal naive's step (t: season 1)
        step = torch.full_like(now, (k + 1) / scale)
        ahead, change = x[..., n_features + 1 + 2 * k], x[..., n_features + 2 + 2 * k]
        torch.testing.assert_close(ahead - now, step, atol=1e-5, rtol=0)
        torch.testing.assert_close(change, step, atol=1e-5, rtol=0)


def test_the_covariate_scaling_never_sees_values_after_the_training_cut():
    settings = dict(SMALL, max_epochs=1, validation_size=8, **ROLES)
    first = LSTMForecaster(**settings).fit(HISTORY, X=X)
    tail = X["ds"] >= HISTORY["ds"].max() - pd.Timedelta(hours=7)  # the validation part, and after
    changed = X.copy()
    changed.loc[tail, ["x", "p"]] += 3.0
    second = LSTMForecaster(**settings).fit(HISTORY, X=changed)
    for name in ("center", "scale"):
        np.testing.assert_array_equal(
            getattr(first.codec_.covariates, name), getattr(second.codec_.covariates, name)
        )
    inside = X.copy()
    inside.loc[inside["ds"] == HISTORY["ds"].min(), "x"] += 3.0  # a training row does count
    third = LSTMForecaster(**settings).fit(HISTORY, X=inside)
    assert not np.array_equal(first.codec_.covariates.center, third.codec_.covariates.center)


# -- roles -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("column", "value"), [("size", 30.0), ("region", "a")])
def test_static_covariates_reach_their_series_forecast_only(fitted, column, value):
    base = fitted.predict(X=X)
    changed = X.copy()
    changed.loc[changed["unique_id"] == "s1", column] = value  # s1 is region "b", size 2
    moved = fitted.predict(X=changed)
    mine = base["unique_id"] == "s1"
    assert (base.loc[mine, "y_pred"] != moved.loc[mine, "y_pred"]).all()
    pd.testing.assert_frame_equal(base[~mine], moved[~mine])


def test_categorical_covariates_are_embedded(fitted):
    config = fitted.network_.config
    assert config.embeddings == ((3, 3), (2, 2))  # day (future), region (static)
    assert (config.future_steps, config.future_size, config.future_codes) == (H, 2, 1)  # x and its change
    assert config.input_size == fitted.codec_.spec.n_features + 3  # x, p, size
    assert fitted.covariate_categories_ == {"day": ("mon", "tue", "wed"), "region": ("a", "b")}


def test_windows_training_and_quantiles_work_with_covariates():
    settings = {k: v for k, v in SMALL.items() if k != "tbptt_steps"}
    model = GRUForecaster(
        **settings, training="windows", lookback=24, max_epochs=2, quantiles=(0.1, 0.9), **ROLES
    ).fit(HISTORY, X=X)
    forecast = model.predict(X=X)
    assert list(forecast.columns) == ["unique_id", "ds", "y_pred", "q0.1", "q0.9"]
    assert (forecast["q0.1"] <= forecast["y_pred"]).all() and (forecast["y_pred"] <= forecast["q0.9"]).all()
    changed = X.copy()
    changed.loc[changed["ds"] == FUTURE["ds"].max(), "x"] += 3.0
    last = forecast["ds"] == FUTURE["ds"].max()
    assert (model.predict(X=changed).loc[last, "y_pred"] != forecast.loc[last, "y_pred"]).all()


def test_a_shorter_horizon_needs_only_its_own_rows_and_forecasts_the_same(fitted):
    full = fitted.predict(X=X)
    short = fitted.predict(horizon=2, X=X[X["ds"] < FUTURE["ds"].min() + pd.Timedelta(hours=2)])
    pd.testing.assert_frame_equal(short, full.groupby("unique_id").head(2).reset_index(drop=True))


def test_calendar_features_need_no_x_and_survive_a_round_trip(tmp_path):
    t = np.arange(24 * 12)
    hours = pd.date_range("2024-01-01", periods=len(t), freq="h")
    y = pd.Series(10 + np.sin(2 * np.pi * t / 24), index=hours)
    settings = dict(horizon=H, hidden_size=8, max_epochs=1, tbptt_steps=24, random_state=0)
    model = LSTMForecaster(**settings, calendar_features=["hour"]).fit(y)
    assert model.codec_.covariates.roles.future == ("hour_sin", "hour_cos")
    assert model.network_.config.future_size == 4  # two columns and their changes
    model.save(tmp_path / "model.safetensors")
    pd.testing.assert_series_equal(load(tmp_path / "model.safetensors").predict(), model.predict())


# -- new histories, bad input ----------------------------------------------------------------------


def test_a_new_series_is_forecast_from_its_own_history_and_covariates(fitted):
    new = drivers(n_series=1, seed=5).assign(unique_id="new")
    forecast = fitted.predict(y=new.head(N)[["unique_id", "ds", "y"]], X=new.drop(columns="y"))
    assert forecast["unique_id"].unique().tolist() == ["new"] and len(forecast) == H
    assert np.isfinite(forecast[["y_pred", "q0.1", "q0.9"]].to_numpy()).all()


def test_missing_future_rows_at_predict_are_refused_by_the_data_layer(fitted):
    short = X[X["ds"] < FUTURE["ds"].max()]  # the horizon's last step is missing
    with pytest.raises(InvalidInputError, match="'x'|x"):
        fitted.predict(X=short)


def test_changing_the_roles_after_fit_is_refused_at_predict(fitted):
    from sklearn.base import clone

    model = clone(fitted)
    model.__dict__.update({k: v for k, v in fitted.__dict__.items() if k.endswith("_")})
    model.set_params(past_covariates=None)
    with pytest.raises(InvalidParameterError, match="fitted with the covariates"):
        model.predict(X=X.drop(columns="p"))


def test_a_model_without_covariates_refuses_x_naming_the_parameters():
    model = LSTMForecaster(**SMALL, max_epochs=1).fit(HISTORY)
    with pytest.raises(InvalidInputError, match="future_covariates"):
        model.predict(X=X)


# -- the network -----------------------------------------------------------------------------------


def test_the_head_reads_future_covariates_up_to_each_forecast_step_only():
    torch.manual_seed(0)
    net = RecurrentNetwork(
        "lstm", input_size=3, hidden_size=5, num_layers=1, n_outputs=4 * 2, embeddings=((3, 2),),
        future_steps=4, future_size=1, future_codes=1,
    )  # fmt: skip
    with torch.no_grad():
        net.ahead_head.weight.normal_()  # zero at the start: give it weights to test the mask
    x = torch.randn(2, 6, 3 + 1 + 4 * 2)
    x[..., 3] = 1.0  # a category code
    x[..., 4 + 1 :: 2] = 2.0  # the future codes
    out, _ = net(x)  # (2, 6, 8): 4 steps x 2 levels
    for k in range(4):
        later = x.clone()
        later[..., 4 + 2 * k] += 1.0  # the numeric future covariate of step k + 1
        moved, _ = net(later)
        assert torch.equal(out[..., : 2 * k], moved[..., : 2 * k])  # forecasts before step k + 1
        assert not torch.equal(out[..., 2 * k :], moved[..., 2 * k :])


# -- model files -----------------------------------------------------------------------------------


def test_a_model_with_covariates_saves_loads_and_forecasts_identically(fitted, tmp_path):
    path = tmp_path / "model.safetensors"
    fitted.save(path)
    document, tensors = read_model_file(path)
    assert document["format_version"] == 5
    assert document["covariates"]["categories"] == {"day": ["mon", "tue", "wed"], "region": ["a", "b"]}
    assert tensors["covariates.scale"].shape == (3,)
    loaded = load(path)
    pd.testing.assert_frame_equal(loaded.predict(X=X), fitted.predict(X=X))
    new = drivers(n_series=1, seed=5).assign(unique_id="new")
    args = dict(y=new.head(N)[["unique_id", "ds", "y"]], X=new.drop(columns="y"))
    pd.testing.assert_frame_equal(loaded.predict(**args), fitted.predict(**args))
    assert loaded.covariate_categories_ == fitted.covariate_categories_


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda d, t: d["covariates"]["categories"]["day"].pop(), "network.embeddings"),
        (lambda d, t: d["covariates"]["past"].clear(), "network.input_size"),
        (lambda d, t: d.update(format_version=4), "covariates need format 5"),
        (lambda d, t: t.pop("covariates.scale"), "'covariates.scale' is missing"),
        (lambda d, t: t["covariates.scale"].fill_(0.0), "'covariates.scale' holds values <= 0"),
    ],
)
def test_a_model_file_whose_covariates_disagree_is_refused(fitted, tmp_path, edit, match):
    path = tmp_path / "model.safetensors"
    fitted.save(path)
    bad = rewrite(path, tmp_path / "bad.safetensors", edit)
    with pytest.raises(ModelFileError, match=match):
        load(bad)


# -- diagnostics -----------------------------------------------------------------------------------


def test_diagnostics_run_with_covariates(fitted):
    report = fitted.diagnose(X=X, max_lag=8, warmup=8)
    assert np.isfinite(report.gradient_flow["grad_norm"]).all() and len(report.horizon_errors) == H
    steps = step_forecasts(fitted, X=X)  # row t: the forecasts made at t, as predict from y[: t + 1]
    t = N - 11
    cut = HISTORY.groupby("unique_id").head(t + 1)
    expected = fitted.predict(y=cut, X=X)["y_pred"].to_numpy().reshape(3, H)
    np.testing.assert_allclose(np.stack([s[t] for s in steps]), expected, rtol=1e-5)
    with pytest.raises(InvalidInputError, match="declares no covariates"):
        step_forecasts(LSTMForecaster(**SMALL, max_epochs=1).fit(HISTORY), X=X)


@pytest.mark.parametrize(
    "base",
    [slice(2, 3), slice(2, 8), torch.tensor([2, 3, 4, 2, 3, 4])],
    ids=["one column", "a column per step", "an index per step"],
)
def test_step_inputs_lay_out_each_forecast_steps_covariates_and_their_changes(base):
    torch.manual_seed(0)
    context, horizon, steps = 5, 6, 10
    rows = torch.randn(3, steps + context + horizon, 4)
    features = torch.randn(3, steps, 2)
    columns, n_numeric = torch.tensor([0, 2, 3]), 2  # two numeric columns, then one code
    x = step_inputs(features, rows, context, horizon, (columns, n_numeric), base)
    # The same by the definition, one step t and one forecast step k at a time.
    offsets = torch.arange(context + horizon + 1)[base].tolist()
    offsets = offsets * horizon if len(offsets) == 1 else offsets
    for t in range(steps):
        expected = [*features[:, t].T, *rows[:, context + t].T]
        for k in range(1, horizon + 1):
            later, based = rows[:, t + context + k], rows[:, t + offsets[k - 1]]
            expected += [later[:, 0], later[:, 2], later[:, 0] - based[:, 0], later[:, 2] - based[:, 2]]
            expected += [later[:, 3]]
        torch.testing.assert_close(x[:, t], torch.stack(expected, dim=1), rtol=0, atol=1e-6)
