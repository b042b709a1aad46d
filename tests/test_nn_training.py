"""The TBPTT loop: chunking, detaching, masking, clipping, non-finite steps, early stopping."""

import copy
import math

import numpy as np
import pytest
import torch

from tsforecast.epochs import EpochRecord
from tsforecast.exceptions import ClippingWarning, TrainingError
from tsforecast.nn.batches import TBPTTSource, run_streams
from tsforecast.nn.losses import quantile_loss
from tsforecast.nn.modules import RecurrentNetwork
from tsforecast.nn.streams import (
    FeatureSpec,
    Scales,
    build_streams,
    feature_moments,
    series_arrays,
    stream_chunks,
    window_chunk,
)
from tsforecast.nn.training import LoopConfig, fit_network, one_cycle, train_step
from tsforecast.windowing import plan_streams

torch.set_num_threads(1)

SPEC = FeatureSpec(season_length=4, long_season_length=8, horizon=3)
MAE = quantile_loss(torch.tensor([0.5]))


def make_streams(lengths=(40, 33), chunk=8, seed=0, stream_length=None, warmup=0):
    rng = np.random.default_rng(seed)
    arrays = []
    for n in lengths:
        t = np.arange(n)
        z = np.log(10 + np.sin(t) + rng.uniform(0, 1, n))
        arrays.append((series_arrays(z, SPEC.season_length)[0], np.isfinite(z)))
    n_steps = np.array([n - SPEC.context - 1 for n in lengths])
    return build_streams(arrays, plan_streams(n_steps, stream_length, warmup), SPEC, chunk, "cpu")


def network(seed=0):
    torch.manual_seed(seed)
    net = RecurrentNetwork("lstm", SPEC.n_features, 6, 2, SPEC.horizon)
    torch.nn.init.normal_(net.head.weight, std=0.3)  # the zero head would give zero gradients upstream
    return net


def chunk_losses_grads(net, streams, chunk, detach=True):
    """Sum of chunk losses of all streams and the gradients it gives."""
    net.zero_grad()
    state, total = None, 0.0
    for x, y, mask, _ in stream_chunks(
        streams, np.arange(streams.n_streams), chunk, Scales.identity(SPEC, "cpu")
    ):
        out, state = net(x, state)
        loss, n = MAE(out, y, mask)
        (loss * n).backward(retain_graph=not detach)
        total += float(loss.detach() * n)
        if detach:
            state = tuple(s.detach() for s in state)
    return total, [p.grad.clone() for p in net.parameters()]


def test_features_do_not_depend_on_the_chunking():
    one, many = make_streams(chunk=64), make_streams(chunk=5)
    rows = np.arange(2)
    whole = list(stream_chunks(one, rows, 64, Scales.identity(SPEC, "cpu")))[0]
    parts = list(stream_chunks(many, rows, 5, Scales.identity(SPEC, "cpu")))
    steps = int(one.n_steps_host.max())
    for k in range(3):
        torch.testing.assert_close(torch.cat([p[k] for p in parts], 1)[:, :steps], whole[k][:, :steps])


def test_one_chunk_over_the_whole_series_gives_the_full_bptt_gradients():
    streams_one = make_streams(chunk=64)
    loss_one, grads_one = chunk_losses_grads(network(), streams_one, 64)
    streams_many = make_streams(chunk=5)
    loss_full, grads_full = chunk_losses_grads(network(), streams_many, 5, detach=False)  # full BPTT
    loss_tbptt, grads_tbptt = chunk_losses_grads(network(), streams_many, 5)
    assert loss_one == pytest.approx(loss_full, rel=1e-5) == pytest.approx(loss_tbptt, rel=1e-5)
    for a, b in zip(grads_one, grads_full, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    assert any(
        not torch.allclose(a, b, rtol=1e-3) for a, b in zip(grads_one, grads_tbptt, strict=True)
    )  # truncation shows


def test_state_is_carried_but_detached_between_chunks():
    net = network()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3, fused=True)
    x1 = torch.randn(2, 5, SPEC.n_features, requires_grad=True)
    x2 = torch.randn(2, 5, SPEC.n_features)
    y, mask = torch.randn(2, 5, 3), torch.ones(2, 5, 3, dtype=torch.bool)
    with torch.no_grad():
        _, expected = net(x1)  # the state at the chunk edge, before the step moves the weights
    state = train_step(net, optimizer, (x1, y, mask, True), None, MAE, None).state
    for carried, reference in zip(state, expected, strict=True):
        assert carried.grad_fn is None and not carried.requires_grad
        torch.testing.assert_close(carried, reference)
    x1.grad = None
    out, _ = net(x2, state)
    MAE(out, y, mask)[0].backward()
    assert x1.grad is None  # no graph spans the chunk edge
    assert all(p.grad is not None for p in net.parameters())


def test_streams_never_leak_into_each_other():
    net = network()
    streams = make_streams()
    base = run_streams(net, streams, 8, 16, Scales.identity(SPEC, "cpu"), _null)
    other = make_streams(seed=0)
    row = slice(int(other.start[1]), int(other.start[1] + other.size[1]))  # series 1's values only
    other.z[row] = other.z[row] * 3 + 1
    changed = run_streams(net, other, 8, 16, Scales.identity(SPEC, "cpu"), _null)
    torch.testing.assert_close(changed[0], base[0])
    alone = run_streams(net, streams, 8, 1, Scales.identity(SPEC, "cpu"), _null)  # one stream per batch
    torch.testing.assert_close(alone, base)


def _null():
    import contextlib

    return contextlib.nullcontext()


def test_padding_and_masked_targets_change_nothing():
    net = network()
    streams = make_streams()
    loss_fn = MAE
    loss = run_streams(net, streams, 8, 16, Scales.identity(SPEC, "cpu"), _null, loss_fn)
    junk = make_streams()
    junk.pad[:] = torch.randn(junk.n_streams) * 100  # junk padding past the end of every stream
    at = int(junk.start[0]) + SPEC.context + 20  # a masked target, input only to the steps after it
    junk.z[at], junk.observed[at] = 1e6, False
    streams.z[at], streams.observed[at] = 1e6, False
    again = run_streams(net, junk, 8, 16, Scales.identity(SPEC, "cpu"), _null, loss_fn)
    masked = run_streams(net, streams, 8, 16, Scales.identity(SPEC, "cpu"), _null, loss_fn)
    torch.testing.assert_close(again, masked)
    assert math.isfinite(float(loss))
    y, mask = torch.randn(1, 4, 3), torch.tensor([[[True, False, True]] * 4])
    pred = torch.randn(1, 4, 3)
    polluted = y.clone()
    polluted[~mask] = float("nan")
    assert MAE(pred, torch.nan_to_num(polluted, nan=1e9), mask)[0] == MAE(pred, y, mask)[0]


def test_warm_up_steps_of_cut_streams_are_masked():
    streams = make_streams(lengths=(80,), stream_length=20, warmup=6)
    assert streams.n_streams > 1 and streams.warmup_host[1] == 6
    first_chunk = next(stream_chunks(streams, np.array([1]), 8, Scales.identity(SPEC, "cpu")))
    assert not first_chunk[2][0, :6].any() and first_chunk[2][0, 6:8].any()


def test_clipping_after_backward_records_the_pre_clip_norm():
    net, batch = network(), _batch()
    reference = copy.deepcopy(net)
    out, _ = reference(batch[0])
    loss = MAE(out, batch[1], batch[2])[0]
    grads = torch.autograd.grad(loss, list(reference.parameters()))
    manual = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    optimizer = torch.optim.SGD(net.parameters(), lr=0.0)  # lr 0: only the clipping touches the grads
    optimizer.defaults["fused"] = None
    clip = float(manual) / 4
    step = train_step(net, optimizer, batch, None, MAE, clip)
    norm, bad = step.grad_norm, step.bad
    assert not bad
    torch.testing.assert_close(norm, manual)
    after = torch.linalg.vector_norm(
        torch.stack([torch.linalg.vector_norm(p.grad) for p in net.parameters()])
    )
    assert float(after) == pytest.approx(clip, rel=1e-4)
    for p, g in zip(net.parameters(), grads, strict=True):
        torch.testing.assert_close(p.grad, g * clip / manual, rtol=1e-4, atol=1e-7)


def _batch(nan=False):
    gen = torch.Generator().manual_seed(1)
    y = torch.randn(3, 6, 3, generator=gen)
    if nan:
        y[0, 0, 0] = float("nan")
    return torch.randn(3, 6, SPEC.n_features, generator=gen), y, torch.ones(3, 6, 3, dtype=torch.bool), True


def test_non_finite_loss_skips_the_step_without_touching_weights_or_moments():
    net = network()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2, fused=True)
    train_step(net, optimizer, _batch(), None, MAE, 1.0)
    weights = copy.deepcopy(net.state_dict())
    moments = copy.deepcopy(optimizer.state_dict())
    step = train_step(net, optimizer, _batch(nan=True), None, MAE, 1.0)
    assert bool(step.bad) and not torch.isfinite(step.loss)
    for k, v in net.state_dict().items():
        assert torch.equal(v, weights[k])
    for key, state in optimizer.state_dict()["state"].items():
        for name, value in state.items():
            assert torch.equal(value, moments["state"][key][name])
    assert not bool(train_step(net, optimizer, _batch(), None, MAE, 1.0).bad) and not torch.equal(
        net.state_dict()["head.bias"], weights["head.bias"]
    )


class _Source:
    """A fixed list of one-chunk batches."""

    last_only = False

    def __init__(self, batches):
        self.batches = batches

    @property
    def n_batches(self):
        return len(self.batches)

    def epoch(self, generator):
        for batch in self.batches:
            yield 1, iter([batch])


def test_persistent_non_finite_loss_raises_training_error_keeping_the_weights():
    net = network()
    weights = copy.deepcopy(net.state_dict())
    config = LoopConfig(max_epochs=3, learning_rate=1e-2, max_bad_steps=5)
    with pytest.raises(TrainingError, match=r"not finite for \d+ optimisation steps in a row"):
        fit_network(net, _Source([_batch(nan=True)] * 4), config, MAE, torch.Generator())
    for k, v in net.state_dict().items():
        assert torch.equal(v, weights[k])


def test_epoch_records_and_clipping_warning():
    config = LoopConfig(max_epochs=2, learning_rate=1e-2, clip_norm=1e-6)
    with pytest.warns(ClippingWarning, match=r"more than 20% of the steps in 2 of 2 epochs \(at most 100%"):
        history = fit_network(network(), _Source([_batch()] * 3), config, MAE, torch.Generator())
    assert [r.epoch for r in history] == [1, 2]
    record = history[0]
    assert isinstance(record, EpochRecord) and record.steps == 3 and record.stopped_by is None
    assert record.clipped_fraction == 1.0 and record.grad_norm_max >= record.grad_norm_mean > 0
    assert math.isnan(record.val_loss)


def test_early_stopping_restores_the_best_weights():
    net, snapshots = network(), []
    scores = iter([3.0, 1.0, 2.0, 2.5, 2.0, 0.1])
    config = LoopConfig(max_epochs=6, learning_rate=1e-2, patience=3)

    def on_epoch(history):
        snapshots.append(copy.deepcopy(net.state_dict()))

    history = fit_network(
        net,
        _Source([_batch()]),
        config,
        MAE,
        torch.Generator(),
        validate=lambda: torch.tensor(next(scores)),
        on_epoch=on_epoch,
    )
    assert [r.val_loss for r in history] == [3.0, 1.0, 2.0, 2.5, 2.0]
    for k, v in net.state_dict().items():
        assert torch.equal(v, snapshots[1][k])


def test_a_callback_returning_true_stops_training():
    history = fit_network(
        network(),
        _Source([_batch()]),
        LoopConfig(max_epochs=5, learning_rate=1e-3),
        MAE,
        torch.Generator(),
        on_epoch=lambda history: history[-1].epoch == 2,
    )
    assert len(history) == 2


def test_feature_moments_match_numpy():
    streams = make_streams()
    scales = feature_moments(streams, 8, 16)
    rows = np.arange(2)
    feats, targets = [], []
    for k, (x, y, mask, _) in enumerate(stream_chunks(streams, rows, 8, Scales.identity(SPEC, "cpu"))):
        step = np.arange(k * 8, k * 8 + 8)
        real = step[None] < streams.n_steps_host[:, None]
        feats.append(x.numpy()[real])
        targets.append(y.numpy()[mask.numpy()])
    np.testing.assert_allclose(scales.features.numpy(), np.concatenate(feats).std(0) + 1e-3, rtol=1e-4)
    assert float(scales.target) == pytest.approx(np.concatenate(targets).std(), rel=1e-4)


def test_one_cycle_schedule_and_tbptt_source_batches():
    assert one_cycle(0.05, 1.0) < one_cycle(0.1, 1.0) == pytest.approx(1.0)
    assert one_cycle(0.5, 1.0) > one_cycle(0.9, 1.0) > one_cycle(1.0, 1.0)
    source = TBPTTSource(make_streams(), batch_size=1, chunk=8, scales=Scales.identity(SPEC, "cpu"))
    batches = list(source.epoch(torch.Generator().manual_seed(0)))
    assert len(batches) == source.n_batches == 2
    assert sorted(n for n, _ in batches) == [3, 4]


def test_windows_see_the_same_features_as_the_streams():
    streams, identity = make_streams(chunk=64), Scales.identity(SPEC, "cpu")
    x_all, y_all, m_all, _ = next(stream_chunks(streams, np.array([0]), 64, identity))
    x, y, mask = window_chunk(streams, torch.tensor([[0, 20]]), 10, identity)
    torch.testing.assert_close(x[0], x_all[0, 11:21])
    torch.testing.assert_close(y[0, 0], y_all[0, 20])
    assert torch.equal(mask[0, 0], m_all[0, 20])


def test_train_step_reports_the_seasonal_naive_loss_on_the_same_targets():
    batch = _batch()
    step = train_step(network(), torch.optim.Adam(network().parameters()), batch, None, MAE, 1.0)
    torch.testing.assert_close(step.naive_loss, batch[1].abs().mean())  # a zero correction's MAE


def test_an_exploding_loss_raises_training_error_naming_the_epoch():
    config = LoopConfig(max_epochs=3, learning_rate=1e4)
    with pytest.raises(
        TrainingError, match=r"diverged in epoch 1 of 3: its mean training loss .* more than 100"
    ):
        fit_network(network(), _Source([_batch()] * 4), config, MAE, torch.Generator())


def test_non_finite_weights_raise_training_error():
    # AdamW multiplies the weights by 1 - lr * weight_decay (about -1e5 at the schedule's start) every
    # step: float32 overflows after some eight steps, within the first epoch.
    config = LoopConfig(max_epochs=2, learning_rate=1e-2, weight_decay=1e8)
    with pytest.raises(
        TrainingError, match=r"diverged in epoch 1 of 2: the network's weights are no longer finite"
    ):
        fit_network(network(), _Source([_batch()] * 12), config, MAE, torch.Generator())


def test_an_epoch_without_a_finite_step_raises_even_below_max_bad_steps():
    config = LoopConfig(max_epochs=3, learning_rate=1e-2, max_bad_steps=100)
    with pytest.raises(TrainingError, match=r"not finite for 2 optimisation steps in a row \(every step"):
        fit_network(network(), _Source([_batch(nan=True)] * 2), config, MAE, torch.Generator())


@pytest.mark.parametrize("levels", [[0.5], [0.025, 0.5, 0.975], [0.1, 0.5, 0.7]])
def test_the_loss_at_zero_is_the_loss_of_a_zero_prediction(levels):
    loss_fn = quantile_loss(torch.tensor(levels))
    y = torch.randn(4, 7, 6, generator=torch.Generator().manual_seed(0))
    mask = torch.rand(4, 7, 6, generator=torch.Generator().manual_seed(1)) > 0.3
    direct, _ = loss_fn(torch.zeros(4, 7, 6 * len(levels)), y, mask)
    torch.testing.assert_close(loss_fn.at_zero(y, mask), direct)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("levels", [[0.025, 0.5, 0.975], [0.5]])
def test_the_quantile_loss_and_its_gradient_are_the_textbook_pinball_loss(dtype, levels):
    """The loss with its hand-written gradient against autograd through max(q e, (q - 1) e)."""
    levels = torch.tensor(levels)
    n = len(levels)
    gen = torch.Generator().manual_seed(0)
    y, pred = torch.randn(5, 8, 6, generator=gen), torch.randn(5, 8, 6 * n, generator=gen).to(dtype)
    mask = torch.rand(5, 8, 6, generator=gen) > 0.3
    ours = pred.clone().requires_grad_()
    loss, valid = quantile_loss(levels)(ours, y, mask)
    (3.0 * loss).backward()

    theirs = pred.clone().requires_grad_()
    error = y[..., None] - theirs.float().unflatten(-1, (6, n))
    pinball = torch.maximum(levels * error, (levels - 1) * error).mean(-1) * 2
    expected = (pinball * mask).sum() / mask.sum()
    (3.0 * expected).backward()
    assert float(valid) == float(mask.sum())
    torch.testing.assert_close(loss, expected)
    assert ours.grad.dtype == dtype
    torch.testing.assert_close(ours.grad, theirs.grad)
    assert float(ours.grad.reshape(5, 8, 6, n)[~mask].abs().sum()) == 0  # masked targets: no gradient
    if n == 1:  # the median alone: the mean absolute error
        torch.testing.assert_close(loss, ((pred.float() - y).abs() * mask).sum() / mask.sum())


# ----------------------------------------------------------------- cost visibility (issue 18)
def _hourly_panel(n_series=4, length=240):
    import pandas as pd

    t = np.arange(length)
    return pd.concat(
        [
            pd.DataFrame(
                {
                    "unique_id": f"s{k}",
                    "ds": pd.date_range("2024-01-01", periods=length, freq="h"),
                    "y": 20 + k + 5 * np.sin(2 * np.pi * t / 24),
                }
            )
            for k in range(n_series)
        ],
        ignore_index=True,
    )


def test_history_records_each_epochs_peak_memory():
    from tsforecast import LSTMForecaster
    from tsforecast.memory import reset_peak_rss

    if not reset_peak_rss():
        pytest.skip("this system cannot reset the peak resident memory (/proc/self/clear_refs)")
    held = {}

    def hold_300_mib_through_epoch_2(estimator, record):
        if record.epoch == 1:
            held["block"] = np.ones(300 * 2**20 // 8)  # touched: resident
        elif record.epoch == 2:
            held.clear()

    model = LSTMForecaster(horizon=12, max_epochs=3, hidden_size=8, tbptt_steps=24, random_state=0)
    model.set_params(callbacks=[hold_300_mib_through_epoch_2]).fit(_hourly_panel())
    peak = model.history_["peak_memory_mb"].to_numpy()
    assert np.isfinite(peak).all() and (peak > 0).all()
    assert peak[1] > peak[0] + 250 and peak[1] > peak[2] + 250  # the peak is reset at each epoch
    assert model.history_["peak_device_memory_mb"].isna().all()  # on the CPU


def test_the_progress_bar_shows_series_and_target_values_per_second(capsys):
    from tsforecast import LSTMForecaster

    LSTMForecaster(horizon=12, max_epochs=2, hidden_size=8, tbptt_steps=24, verbose=True).fit(_hourly_panel())
    err = capsys.readouterr().err
    assert "values/s=" in err and "series/s=" in err
    LSTMForecaster(horizon=12, max_epochs=2, hidden_size=8, tbptt_steps=24).fit(_hourly_panel())
    assert capsys.readouterr().err == ""  # silent unless asked


def test_max_steps_is_a_budget_of_optimizer_steps():
    from tsforecast import LSTMForecaster

    settings = dict(horizon=12, hidden_size=8, tbptt_steps=24, batch_size=1, random_state=0)
    model = LSTMForecaster(max_epochs=50, max_steps=7, **settings).fit(_hourly_panel())
    history = model.history_
    assert int(history["steps"].sum()) == 7 and len(history) == 1  # stopped inside the first epoch
    assert history["stopped_by"].tolist() == ["max_steps"]
    # The schedule spans the budget: the last (7th) step runs at 6/7 of it.
    assert history["learning_rate"].iloc[-1] == pytest.approx(one_cycle(6 / 7, model.learning_rate))
