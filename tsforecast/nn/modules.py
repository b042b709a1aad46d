"""The recurrent network: tensors in, tensors out (no pandas, no scaling, no windows).

:class:`RecurrentNetwork` stacks LSTM, GRU or vanilla tanh RNN layers and puts a linear head on
``[hidden state, inputs]`` at every step, so one forward pass over ``(batch, time, features)``
emits a forecast for every step.

Layers: without ``residual`` the whole stack is one multi-layer torch module (cuDNN's fused kernel on
a GPU, with torch's own dropout between layers). With ``residual=True`` each layer is its own
one-layer module so that layer ``l >= 1`` can add its input to its output (the layers after the
first all have width ``hidden_size``); dropout is then applied between layers by hand.

Initialisation (:func:`init_recurrent_`):

* input-to-hidden weights (``weight_ih``): Xavier uniform, per gate block;
* hidden-to-hidden weights (``weight_hh``): orthogonal, per gate block (each ``hidden x hidden``
  block is an orthogonal matrix);
* biases zero, except the LSTM forget gate: ``bias_ih`` forget slice = 1.0 and ``bias_hh`` forget
  slice = 0.0, so the forget gate's total bias is 1.0 (gate order ``i, f, g, o``: the slice
  ``[hidden:2*hidden]``);
* ``chrono_span=T`` (the forecasters' ``gate_init="chrono"``) replaces the gate biases by the
  *chrono* initialisation of Tallec & Ollivier (2018), for dependencies longer than the forget bias
  of 1 lets gradients reach: forget-gate bias ``log(U(1, T - 1))`` and input-gate bias its negative
  (LSTM), update-gate bias ``log(U(1, T - 1))`` (GRU), so that memory time scales at the start
  spread up to ``T`` steps;
* the head's weights and bias are zero: an untrained network predicts 0 everywhere, which the
  forecasters read as "the seasonal naive forecast" (the network learns a correction of it).

Covariates (all optional; without them the network is exactly the one above, built with the same
random draws). Each step's input row ``x`` is laid out as::

    [numeric inputs (input_size) | category codes (len(embeddings)) | ahead (future_steps x per step)]

* the codes are embedded (one ``nn.Embedding`` per column, drawn after the layers) and join the
  numeric inputs as the recurrent input, which the head sees too, as before;
* the *ahead* block holds, for each forecast step ``k = 1 .. future_steps``, the future-known
  covariates of ``t+k``: ``future_size`` numeric values (each covariate's value and its change since
  the seasonal naive's step, :func:`~tsforecast.nn.covariates.step_inputs`), then
  ``future_codes`` codes embedded with the first ``future_codes`` tables (the future-known columns
  come first among the codes). A second,
  bias-free linear map from the flattened block is added to the head's output; its weights are zero
  at the start, and masked so that the forecast for ``t+k`` (all its quantile levels) reads the
  covariates of ``t+1 .. t+k`` only: a direct multi-horizon head whose step ``k`` depends on X at
  ``t+k``, and never on rows after it (so the rows beyond a shorter horizon, or past a series' end,
  change no output that is scored or returned).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

CELLS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}
GATES = {"lstm": 4, "gru": 3, "rnn": 1}

__all__ = ["CELLS", "NetworkConfig", "RecurrentNetwork", "detach_state", "init_recurrent_"]


@dataclass(frozen=True)
class NetworkConfig:
    """Everything :class:`RecurrentNetwork` is built from (saved with a model to rebuild it).

    ``dropout`` and ``chrono_span`` shape training and initialisation, not the weights' layout:
    :meth:`same_weights` ignores them.
    """

    cell: str
    input_size: int
    hidden_size: int
    num_layers: int
    n_outputs: int
    dropout: float = 0.0
    residual: bool = False
    chrono_span: int | None = None
    embeddings: tuple = ()  # ((n_categories, dim), ...): one per code column, after the numeric inputs
    future_steps: int = 0  # forecast steps whose future-known covariates the head sees (0: none)
    future_size: int = 0  # numeric future-known inputs per forecast step
    future_codes: int = 0  # categorical future-known covariates per forecast step

    def __post_init__(self):  # JSON gives lists: one spelling, so that layouts compare equal
        object.__setattr__(self, "embeddings", tuple(tuple(int(v) for v in e) for e in self.embeddings))

    @property
    def has_covariates(self) -> bool:
        """Whether the inputs hold covariates beyond ``input_size`` (codes, or the ahead block)."""
        return bool(self.embeddings or self.future_steps)

    def build(self) -> RecurrentNetwork:
        """A freshly initialised network (draws from torch's global generator)."""
        return RecurrentNetwork(**asdict(self))

    def layout(self) -> dict:
        """The fields that decide the shapes of the weights."""
        return {k: v for k, v in asdict(self).items() if k not in ("dropout", "chrono_span")}

    def same_weights(self, other: NetworkConfig) -> bool:
        """Whether weights of ``other`` fit this network."""
        return self.layout() == other.layout()


def init_recurrent_(module: nn.RNNBase, cell: str, chrono_span: int | None = None) -> None:
    """Initialise a torch recurrent module in place as described in the module docstring.

    Examples
    --------
    >>> lstm = nn.LSTM(3, 4)
    >>> init_recurrent_(lstm, "lstm")
    >>> (lstm.bias_ih_l0[4:8] + lstm.bias_hh_l0[4:8]).tolist()
    [1.0, 1.0, 1.0, 1.0]
    """
    hidden, gates = module.hidden_size, GATES[cell]
    for name, param in module.named_parameters():
        with torch.no_grad():
            if name.startswith("weight_ih"):
                for block in param.view(gates, hidden, -1):  # (hidden, input) per gate
                    nn.init.xavier_uniform_(block)
            elif name.startswith("weight_hh"):
                for block in param.view(gates, hidden, hidden):
                    nn.init.orthogonal_(block)
            elif name.startswith("bias"):
                param.zero_()
                if cell == "lstm" and name.startswith("bias_ih"):
                    param[hidden : 2 * hidden] = 1.0
    if chrono_span is not None and cell in ("lstm", "gru"):
        _chrono_biases_(module, chrono_span)


def _chrono_biases_(module: nn.RNNBase, span: int) -> None:
    hidden = module.hidden_size
    for k in range(module.num_layers):
        b_ih, b_hh = getattr(module, f"bias_ih_l{k}"), getattr(module, f"bias_hh_l{k}")
        log_u = torch.log(1 + torch.rand(hidden) * max(span - 2, 0))  # (hidden,)
        remember = slice(hidden, 2 * hidden)  # LSTM blocks i, f, g, o: f; GRU blocks r, z, n: z
        with torch.no_grad():
            b_ih[remember], b_hh[remember] = log_u, 0.0
            if module.mode == "LSTM":
                b_ih[:hidden], b_hh[:hidden] = -log_u, 0.0


def detach_state(state):
    """Cut the graph behind a recurrent state (a tensor or an LSTM ``(h, c)`` pair)."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()


class RecurrentNetwork(nn.Module):
    """Stacked recurrent layers with a linear head at every step.

    Parameters
    ----------
    cell : {"lstm", "gru", "rnn"}
    input_size : int
        Features per step.
    hidden_size : int
    num_layers : int
    n_outputs : int
        Head width (horizon x quantile levels).
    dropout : float, default=0.0
        Dropout between recurrent layers.
    residual : bool, default=False
        Add each layer's input to its output for the layers after the first.
    chrono_span : int, optional
        Chrono initialisation of the gate biases for memories up to this many steps.
    embeddings : tuple of (int, int), default=()
        ``(n_categories, dim)`` of each category-code column of the inputs.
    future_steps, future_size, future_codes : int, default=0
        The ahead block of future-known covariates the head sees (module docstring).

    Examples
    --------
    >>> net = RecurrentNetwork("lstm", input_size=5, hidden_size=8, num_layers=2, n_outputs=3)
    >>> out, (h, c) = net(torch.zeros(2, 7, 5))
    >>> tuple(out.shape), tuple(h.shape)
    ((2, 7, 3), (2, 2, 8))
    """

    def __init__(
        self,
        cell: str,
        input_size: int,
        hidden_size: int,
        num_layers: int,
        n_outputs: int,
        dropout: float = 0.0,
        residual: bool = False,
        chrono_span: int | None = None,
        embeddings: tuple = (),
        future_steps: int = 0,
        future_size: int = 0,
        future_codes: int = 0,
    ):
        super().__init__()
        self.config = NetworkConfig(
            cell, input_size, hidden_size, num_layers, n_outputs, dropout, residual, chrono_span,
            embeddings, future_steps, future_size, future_codes,
        )  # fmt: skip
        self.cell, self.residual, self.num_layers = cell, residual, num_layers
        embeddings = self.config.embeddings
        input_size += sum(dim for _, dim in embeddings)  # the recurrent input: numeric + embedded codes
        rnn = CELLS[cell]
        if residual:
            sizes = [input_size] + [hidden_size] * (num_layers - 1)
            self.layers = nn.ModuleList(rnn(size, hidden_size, batch_first=True) for size in sizes)
        else:
            stacked_dropout = dropout if num_layers > 1 else 0.0
            self.layers = nn.ModuleList(
                [rnn(input_size, hidden_size, num_layers, batch_first=True, dropout=stacked_dropout)]
            )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size + input_size, n_outputs)
        for layer in self.layers:
            init_recurrent_(layer, cell, chrono_span)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        # Covariates: created after everything above, so that a network without them draws the same.
        self.embeddings = nn.ModuleList(nn.Embedding(n, dim) for n, dim in embeddings)
        self.ahead_head = None
        if future_steps:
            per_step = future_size + sum(dim for _, dim in embeddings[:future_codes])
            self.ahead_head = nn.Linear(future_steps * per_step, n_outputs, bias=False)
            nn.init.zeros_(self.ahead_head.weight)
            out_step = torch.arange(n_outputs) // (n_outputs // future_steps)  # (n_outputs,)
            in_step = torch.arange(future_steps * per_step) // per_step  # (future_steps * per_step,)
            self.register_buffer("ahead_mask", in_step[None, :] <= out_step[:, None], persistent=False)

    def recurrent_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """The recurrent input ``(batch, time, width)``: the numeric inputs and embedded codes of ``x``."""
        if not self.config.has_covariates:
            return x
        n = self.config.input_size
        codes = x[..., n : n + len(self.embeddings)].long()  # (batch, time, n_codes)
        embedded = [table(codes[..., k]) for k, table in enumerate(self.embeddings)]  # (batch, time, dim)
        return torch.cat([x[..., :n], *embedded], dim=-1)

    def head_outputs(self, hidden: torch.Tensor, x: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        """The head on ``[hidden, inputs]`` plus, with future-known covariates, the masked ahead term."""
        out = self.head(torch.cat([hidden, inputs], dim=-1))  # (batch, time, n_outputs)
        if self.ahead_head is None:
            return out
        config = self.config
        start = config.input_size + len(self.embeddings)
        weight = self.ahead_head.weight * self.ahead_mask  # forecast k reads steps 1..k only
        if not config.future_codes:  # the block as it lies in x: no copy of the largest input
            return out + F.linear(x[..., start:], weight)  # (batch, time, n_outputs)
        ahead = x[..., start:].unflatten(-1, (config.future_steps, config.future_size + config.future_codes))
        codes = ahead[..., config.future_size :].long()  # (batch, time, steps, future_codes)
        embedded = [self.embeddings[k](codes[..., k]) for k in range(config.future_codes)]
        ahead = torch.cat([ahead[..., : config.future_size], *embedded], dim=-1)  # (..., steps, per step)
        return out + F.linear(ahead.flatten(-2), weight)  # (batch, time, n_outputs)

    def forward(self, x: torch.Tensor, state=None):
        """Run ``x`` of shape ``(batch, time, features)`` from ``state`` (None: zeros).

        ``features`` is ``input_size`` without covariates (else the layout of the module docstring).
        Returns the head outputs ``(batch, time, n_outputs)`` and the final state: a tensor
        ``(num_layers, batch, hidden)``, or an ``(h, c)`` pair of them for the LSTM.
        """
        inputs = self.recurrent_inputs(x)  # (batch, time, width); x itself without covariates
        if not self.residual:
            hidden, state = self.layers[0](inputs, state)  # (batch, time, hidden); (layers, batch, hidden)
        else:
            hidden, finals = inputs, []
            for k, layer in enumerate(self.layers):
                layer_state = _layer_state(state, k)
                below = hidden if k == 0 else self.dropout(hidden)
                out, final = layer(below, layer_state)  # (batch, time, hidden); (1, batch, hidden)
                hidden = out if k == 0 else out + hidden
                finals.append(final)
            state = _stack_states(finals)
        return self.head_outputs(hidden, x, inputs), state  # (batch, time, n_outputs)


def _layer_state(state, k: int):
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s[k : k + 1] for s in state)  # (1, batch, hidden) each
    return state[k : k + 1]


def _stack_states(finals: list):
    if isinstance(finals[0], tuple):
        return tuple(
            torch.cat(parts, dim=0) for parts in zip(*finals, strict=True)
        )  # (layers, batch, hidden)
    return torch.cat(finals, dim=0)
