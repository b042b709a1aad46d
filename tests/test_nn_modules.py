"""The bare recurrent network: shapes, state, initialisation."""

import math

import pytest
import torch

from tsforecast.nn.modules import RecurrentNetwork, detach_state

torch.set_num_threads(1)  # tiny models: threads only add overhead on a shared machine

CELLS = ["lstm", "gru", "rnn"]


@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("cell", CELLS)
def test_shapes_and_state_carry(cell, residual):
    torch.manual_seed(0)
    net = RecurrentNetwork(cell, input_size=5, hidden_size=6, num_layers=3, n_outputs=4, residual=residual)
    torch.nn.init.normal_(net.head.weight)  # a zero head would hide the state
    x = torch.randn(2, 10, 5)
    out, state = net(x)  # (batch, time, outputs)
    assert out.shape == (2, 10, 4)
    h = state[0] if cell == "lstm" else state
    assert h.shape == (3, 2, 6)
    first, mid = net(x[:, :4])
    second, _ = net(x[:, 4:], mid)
    torch.testing.assert_close(torch.cat([first, second], 1), out)


@pytest.mark.parametrize("cell", CELLS)
def test_initialisation_as_documented(cell):
    net = RecurrentNetwork(cell, input_size=3, hidden_size=5, num_layers=2, n_outputs=2)
    gates = {"lstm": 4, "gru": 3, "rnn": 1}[cell]
    for name, param in net.layers[0].named_parameters():
        if name.startswith("weight_hh"):
            for block in param.detach().view(gates, 5, 5):
                torch.testing.assert_close(block.T @ block, torch.eye(5), atol=1e-5, rtol=0)
        elif name.startswith("weight_ih"):
            fan_in = param.shape[1]
            assert param.abs().max() <= math.sqrt(6 / (fan_in + 5)) + 1e-6
        elif name.startswith("bias_ih") and cell == "lstm":
            assert param[5:10].tolist() == [1.0] * 5  # forget slice: i, f, g, o order
            assert param[:5].abs().sum() == 0 and param[10:].abs().sum() == 0
        else:  # bias_hh, and all biases of GRU/RNN
            assert param.abs().sum() == 0
    assert net.head.weight.abs().sum() == 0 and net.head.bias.abs().sum() == 0


def test_lstm_forget_gate_bias_sums_to_one():
    net = RecurrentNetwork("lstm", 2, 4, 1, 1)
    lstm = net.layers[0]
    total = lstm.bias_ih_l0 + lstm.bias_hh_l0
    assert total[4:8].tolist() == [1.0] * 4 and total.sum().item() == 4.0


def test_residual_adds_layer_input_and_dropout_only_in_training():
    torch.manual_seed(0)
    hidden = 4
    net = RecurrentNetwork("gru", 3, hidden, 2, n_outputs=hidden, dropout=0.5, residual=True)
    with torch.no_grad():  # the head reads the top layer's output out as is: (hidden | inputs) -> hidden
        net.head.weight.copy_(torch.cat([torch.eye(hidden), torch.zeros(hidden, 3)], dim=1))
    x = torch.randn(2, 5, 3)  # (batch, time, features)
    net.eval()
    a, _ = net(x)
    b, _ = net(x)
    torch.testing.assert_close(a, b)  # no dropout at evaluation
    first, _ = net.layers[0](x)  # (batch, time, hidden)
    second, _ = net.layers[1](first)
    torch.testing.assert_close(a, second + first)  # layer 2's output plus its input
    assert not torch.allclose(a, second)
    net.train()
    c, _ = net(x)
    d, _ = net(x)
    assert not torch.allclose(c, d) and not torch.allclose(c, a)  # dropout between layers in training


def test_detach_state_cuts_the_graph():
    x = torch.randn(1, 3, 2, requires_grad=True)
    _, state = RecurrentNetwork("lstm", 2, 3, 1, 1)(x)
    assert all(s.grad_fn is not None for s in state)
    assert all(s.grad_fn is None and not s.requires_grad for s in detach_state(state))
    assert detach_state(None) is None


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_chrono_initialisation_spreads_memory_up_to_the_span(cell):
    torch.manual_seed(0)
    span, hidden = 200, 64
    net = RecurrentNetwork(
        cell, input_size=3, hidden_size=hidden, num_layers=2, n_outputs=1, chrono_span=span
    )
    module = net.layers[0]
    for k in range(2):
        b_ih, b_hh = getattr(module, f"bias_ih_l{k}"), getattr(module, f"bias_hh_l{k}")
        remember = b_ih[hidden : 2 * hidden]  # LSTM forget gate, GRU update gate
        assert torch.all(remember >= 0) and torch.all(remember <= math.log(span - 1) + 1e-6)
        assert remember.max() > math.log(span / 4)  # some units remember for most of the span
        assert torch.all(b_hh[hidden : 2 * hidden] == 0)
        if cell == "lstm":
            torch.testing.assert_close(b_ih[:hidden], -remember)  # input gate opens as forget closes
        else:
            assert torch.all(b_ih[:hidden] == 0)  # reset gate untouched
