"""The recurrent cells re-run step by step from the weights of ``nn.LSTM``, ``nn.GRU`` and ``nn.RNN``.

torch's fused recurrent kernels return only the hidden states; the diagnostics also need the gate
activations and a handle on the state between steps. :func:`unroll` recomputes the cell equations
layer by layer from the module's own parameters, in float32, exactly as torch documents them.

Weight layout (torch's, per layer ``k`` of a module; ``H`` = hidden size, ``G`` gate blocks stacked
along the rows):

* ``weight_ih_l{k}`` ``(G*H, input)``, ``weight_hh_l{k}`` ``(G*H, H)``, ``bias_ih_l{k}`` and
  ``bias_hh_l{k}`` ``(G*H,)``; block ``j`` is rows ``[j*H, (j+1)*H)``.
* LSTM, ``G = 4``, blocks ``i, f, g, o``::

      i = sigmoid(W_ii x + b_ii + W_hi h + b_hi)      f = sigmoid(W_if x + b_if + W_hf h + b_hf)
      g = tanh(W_ig x + b_ig + W_hg h + b_hg)         o = sigmoid(W_io x + b_io + W_ho h + b_ho)
      c' = f * c + i * g                              h' = o * tanh(c')

* GRU, ``G = 3``, blocks ``r, z, n`` (the reset gate scales the *hidden* part of ``n`` only)::

      r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)      z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
      n = tanh(W_in x + b_in + r * (W_hn h + b_hn))   h' = (1 - z) * n + z * h

* RNN, ``G = 1``: ``h' = tanh(W_ih x + b_ih + W_hh h + b_hh)`` (``relu`` for ``nonlinearity="relu"``).

Layer ``k > 0`` of a stacked module reads the hidden states of layer ``k - 1`` (dropout between
layers only acts in training mode, and diagnostics run in eval mode). A
:class:`~tsforecast.nn.modules.RecurrentNetwork` with ``residual=True`` holds one-layer modules and
feeds layer ``k > 0`` the sum of the layer outputs below it; :func:`unroll` follows the same rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from tsforecast.exceptions import InvalidInputError

__all__ = ["GATES", "Layer", "Unrolled", "network_layers", "unroll"]

# Gate names in weight-block order, and the activation each one goes through.
GATES = {
    "lstm": (("input", "sigmoid"), ("forget", "sigmoid"), ("cell", "tanh"), ("output", "sigmoid")),
    "gru": (("reset", "sigmoid"), ("update", "sigmoid"), ("new", "tanh")),
    "rnn": (("hidden", "tanh"),),
}


@dataclass(frozen=True)
class Layer:
    """The parameters of one recurrent layer, as views of the module's own tensors."""

    cell: str
    weight_ih: torch.Tensor  # (G*H, input)
    weight_hh: torch.Tensor  # (G*H, H)
    bias_ih: torch.Tensor | None  # (G*H,)
    bias_hh: torch.Tensor | None  # (G*H,)
    relu: bool = False

    @property
    def hidden_size(self) -> int:
        """Width of the layer's state."""
        return self.weight_hh.shape[1]


@dataclass
class Unrolled:
    """What :func:`unroll` recomputed.

    Attributes
    ----------
    outputs : torch.Tensor of shape (batch, time, hidden)
        What the network's head reads (the top layer's states, plus the layers below when residual).
    hidden : list of torch.Tensor of shape (batch, time, hidden)
        Each layer's hidden states ``h`` (after the probes were added).
    gates : list of torch.Tensor of shape (batch, time, G, hidden), or None
        Each layer's gate activations in weight-block order (only with ``record_gates``).
    state : torch.Tensor or tuple
        The final state in the network's format: ``(layers, batch, hidden)``, an ``(h, c)`` pair for
        the LSTM.
    """

    outputs: torch.Tensor
    hidden: list
    gates: list | None
    state: object


def network_layers(network) -> list:
    """The recurrent layers of a :class:`~tsforecast.nn.modules.RecurrentNetwork`, bottom to top.

    Raises
    ------
    InvalidInputError
        For a module layout :func:`unroll` does not recompute (bidirectional, projections).
    """
    layers = []
    for module in network.layers:
        if module.bidirectional or getattr(module, "proj_size", 0):
            raise InvalidInputError(
                f"{type(module).__name__} with bidirectional={module.bidirectional}, "
                f"proj_size={getattr(module, 'proj_size', 0)}: only unidirectional layers without "
                "projections can be re-run step by step."
            )
        relu = getattr(module, "nonlinearity", "tanh") == "relu"
        for k in range(module.num_layers):
            params = [getattr(module, f"{name}_l{k}", None) for name in ("bias_ih", "bias_hh")]
            layers.append(
                Layer(
                    network.cell,
                    getattr(module, f"weight_ih_l{k}"),
                    getattr(module, f"weight_hh_l{k}"),
                    *params,
                    relu=relu,
                )
            )
    return layers


def unroll(network, x: torch.Tensor, state=None, probes=None, record_gates: bool = False) -> Unrolled:
    """Re-run ``network``'s recurrent layers over ``x`` one step at a time.

    Parameters
    ----------
    network : RecurrentNetwork
    x : torch.Tensor of shape (batch, time, input_size)
    state : torch.Tensor or tuple, optional
        Start state in the network's format (None: zeros).
    probes : tuple of torch.Tensor, optional
        ``(h_probe,)`` or, for the LSTM, ``(h_probe, c_probe)``, each ``(layers, batch, time, hidden)``,
        added to the state right after each step. Zero tensors with ``requires_grad`` turn into the
        gradient of a loss with respect to the state that crosses each step boundary.
    record_gates : bool
        Keep the gate activations.

    Returns
    -------
    Unrolled

    Examples
    --------
    >>> from tsforecast.nn.modules import RecurrentNetwork
    >>> net = RecurrentNetwork("gru", input_size=3, hidden_size=4, num_layers=2, n_outputs=1).eval()
    >>> x = torch.randn(2, 5, 3)
    >>> ours = unroll(net, x).outputs
    >>> theirs = net.layers[0](x)[0]
    >>> bool(torch.allclose(ours, theirs, atol=1e-5))
    True
    """
    layers = network_layers(network)
    lstm = network.cell == "lstm"
    batch, steps, _ = x.shape
    inputs, below, hidden, gates, finals = x, None, [], [] if record_gates else None, []
    for k, layer in enumerate(layers):
        h0, c0 = _start(state, k, lstm, batch, layer.hidden_size, x)
        probe = None if probes is None else tuple(p[k] for p in probes)  # (batch, time, hidden) each
        h_seq, c_last, g_seq = _run_layer(layer, inputs, h0, c0, probe, record_gates)
        hidden.append(h_seq)
        if record_gates:
            gates.append(g_seq)
        finals.append((h_seq[:, -1], c_last))
        if network.residual and k > 0:
            h_seq = h_seq + below  # (batch, time, hidden)
        below, inputs = h_seq, h_seq
    h_final = torch.stack([h for h, _ in finals])  # (layers, batch, hidden)
    final = (h_final, torch.stack([c for _, c in finals])) if lstm else h_final
    return Unrolled(below, hidden, gates, final)


def _start(state, k: int, lstm: bool, batch: int, hidden: int, like: torch.Tensor):
    if state is None:
        zeros = like.new_zeros(batch, hidden)
        return zeros, (zeros if lstm else None)
    if lstm:
        return state[0][k], state[1][k]  # (batch, hidden) each
    return state[k], None


def _run_layer(layer: Layer, x, h, c, probe, record: bool):
    """One layer over all steps: the input projection at once, the recurrence step by step."""
    hidden = layer.hidden_size
    projected = x @ layer.weight_ih.T  # (batch, time, G*H)
    if layer.bias_ih is not None:
        projected = projected + layer.bias_ih
    outputs, recorded = [], []
    for t in range(x.shape[1]):
        recurrent = h @ layer.weight_hh.T  # (batch, G*H)
        if layer.bias_hh is not None:
            recurrent = recurrent + layer.bias_hh
        h, c, acts = _cell_step(layer, projected[:, t], recurrent, h, c, hidden)
        if probe is not None:
            h = h + probe[0][:, t]
            if c is not None:
                c = c + probe[1][:, t]
        outputs.append(h)
        if record:
            recorded.append(acts)
    gates = torch.stack(recorded, dim=1) if record else None  # (batch, time, G, hidden)
    return torch.stack(outputs, dim=1), c, gates  # (batch, time, hidden)


def _cell_step(layer: Layer, xw: torch.Tensor, hw: torch.Tensor, h, c, hidden: int):
    """One step of the cell equations (module docstring); ``xw``/``hw`` are the two projections."""
    if layer.cell == "lstm":
        i, f, g, o = (xw + hw).split(hidden, dim=-1)  # (batch, hidden) each
        i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
        c = f * c + i * g
        return o * torch.tanh(c), c, torch.stack([i, f, g, o], dim=1)  # gates (batch, 4, hidden)
    if layer.cell == "gru":
        x_r, x_z, x_n = xw.split(hidden, dim=-1)
        h_r, h_z, h_n = hw.split(hidden, dim=-1)
        r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
        n = torch.tanh(x_n + r * h_n)
        return (1 - z) * n + z * h, None, torch.stack([r, z, n], dim=1)  # gates (batch, 3, hidden)
    pre = xw + hw
    h = torch.relu(pre) if layer.relu else torch.tanh(pre)
    return h, None, h[:, None]  # the "gate" of a vanilla RNN is its activation (batch, 1, hidden)
