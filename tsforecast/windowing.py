"""Sliding windows and TBPTT stream plans (numpy only, views where possible).

Two ways to feed a recurrent network from a panel of series of different lengths:

* **Sliding windows** (:func:`sliding_windows`, :func:`window_ends`): every training example is the
  ``lookback`` steps before a forecast origin. The windows are strided views of the series (no copy);
  :func:`window_ends` lists the origins that have at least one training target.
* **Streams for truncated back-propagation through time** (:func:`plan_streams`,
  :func:`chunk_starts`): each series is one long stream (laid out once by
  :func:`tsforecast.nn.streams.build_streams`), and the network walks a batch of streams in parallel
  ``tbptt_steps`` at a time, carrying its state between chunks.

A series longer than ``stream_length`` steps is cut into pieces so that the batch fills up. A piece
cut from the middle of a series cannot inherit the state the network would have there (that state is
only known once the previous piece has run), so each such piece starts ``warmup`` steps early from a
zero state, and the outputs of those warm-up steps are masked out of the loss. The first piece of a
series has no warm-up: its zero state is the true state at the series start.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["StreamPlan", "chunk_starts", "plan_streams", "sliding_windows", "window_ends"]


def sliding_windows(values: np.ndarray, window: int) -> np.ndarray:
    """A read-only strided view of every ``window`` consecutive rows of ``values``.

    Parameters
    ----------
    values : np.ndarray of shape (n, ...)
        One series (1-D) or per-step features (2-D).
    window : int
        Window length (``lookback``).

    Returns
    -------
    np.ndarray of shape (n - window + 1, window, ...)
        ``result[i] == values[i : i + window]``; shares memory with ``values``.

    Examples
    --------
    >>> import numpy as np
    >>> views = sliding_windows(np.arange(5.0), 3)
    >>> views.shape, views[1].tolist(), np.shares_memory(views, views.base)
    ((3, 3), [1.0, 2.0, 3.0], True)
    """
    if window < 1 or window > len(values):
        raise ValueError(f"window must be between 1 and the series length {len(values)}; got {window}.")
    view = np.lib.stride_tricks.sliding_window_view(values, window, axis=0)  # (n - w + 1, ..., w)
    return np.moveaxis(view, -1, 1)  # (n - w + 1, w, ...)


def window_ends(has_target: np.ndarray, n_steps: np.ndarray, lookback: int) -> np.ndarray:
    """The ``(stream, last step)`` pairs of every training window with at least one target.

    Parameters
    ----------
    has_target : np.ndarray of shape (n_steps.sum(),), bool
        Whether each step has at least one valid target: the steps of each stream in turn.
    n_steps : np.ndarray of shape (n_streams,)
        Number of real steps of each stream.
    lookback : int
        Window length: the first usable last step is ``lookback - 1``.

    Returns
    -------
    np.ndarray of shape (n_windows, 2), int64

    Examples
    --------
    >>> import numpy as np
    >>> window_ends(np.ones(4, bool), np.array([4]), 3).tolist()
    [[0, 2], [0, 3]]
    """
    n_steps = np.asarray(n_steps, dtype=np.int64)
    stream = np.repeat(np.arange(len(n_steps)), n_steps)
    step = np.arange(len(stream)) - np.repeat(np.cumsum(n_steps) - n_steps, n_steps)
    usable = has_target & (step >= lookback - 1)
    return np.stack([stream[usable], step[usable]], axis=1).astype(np.int64)


@dataclass(frozen=True)
class StreamPlan:
    """Where each stream comes from.

    Attributes
    ----------
    series : np.ndarray of shape (n_streams,)
        Index of the series the stream is cut from.
    start : np.ndarray of shape (n_streams,)
        First step of the stream in the series' step axis, warm-up included.
    n_steps : np.ndarray of shape (n_streams,)
        Steps in the stream, warm-up included.
    warmup : np.ndarray of shape (n_streams,)
        Leading steps whose outputs are masked (0 for the first piece of a series).
    """

    series: np.ndarray
    start: np.ndarray
    n_steps: np.ndarray
    warmup: np.ndarray

    @property
    def n_streams(self) -> int:
        """Number of streams."""
        return len(self.series)


def plan_streams(n_steps: np.ndarray, stream_length: int | None = None, warmup: int = 0) -> StreamPlan:
    """Cut series of ``n_steps`` steps into streams of at most ``stream_length`` scored steps.

    Parameters
    ----------
    n_steps : np.ndarray of shape (n_series,)
        Steps per series.
    stream_length : int, optional
        Longest piece (warm-up excluded); None keeps one stream per series.
    warmup : int, default=0
        Extra leading steps given to every piece but the first of a series (outputs masked).

    Returns
    -------
    StreamPlan

    Examples
    --------
    >>> import numpy as np
    >>> plan = plan_streams(np.array([10, 4]), stream_length=5, warmup=2)
    >>> plan.series.tolist(), plan.start.tolist(), plan.n_steps.tolist(), plan.warmup.tolist()
    ([0, 0, 1], [0, 3, 0], [5, 7, 4], [0, 2, 0])
    """
    n_steps = np.asarray(n_steps, dtype=np.int64)
    if stream_length is None:
        zeros = np.zeros_like(n_steps)
        return StreamPlan(np.arange(len(n_steps)), zeros, n_steps.copy(), zeros.copy())
    series, start, length, warm = [], [], [], []
    for i, n in enumerate(n_steps):
        pieces = max(1, int(np.ceil(n / stream_length)))
        edges = np.linspace(0, n, pieces + 1).round().astype(np.int64)
        for a, b in zip(edges[:-1], edges[1:], strict=True):
            w = min(warmup, int(a))
            series.append(i)
            start.append(a - w)
            length.append(b - a + w)
            warm.append(w)
    as_int = lambda x: np.asarray(x, dtype=np.int64)  # noqa: E731
    return StreamPlan(as_int(series), as_int(start), as_int(length), as_int(warm))


def chunk_starts(n_steps: int, tbptt_steps: int) -> range:
    """First step of each TBPTT chunk covering ``n_steps`` steps.

    Examples
    --------
    >>> list(chunk_starts(10, 4))
    [0, 4, 8]
    """
    return range(0, int(n_steps), int(tbptt_steps))
