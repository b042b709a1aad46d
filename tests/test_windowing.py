"""Sliding windows and TBPTT stream plans (numpy only)."""

import numpy as np
import pytest

from tsforecast.windowing import chunk_starts, plan_streams, sliding_windows, window_ends


def test_sliding_windows_are_read_only_views_of_the_series():
    values = np.arange(20.0).reshape(10, 2)
    windows = sliding_windows(values, 4)
    assert windows.shape == (7, 4, 2)
    assert np.shares_memory(windows, values)
    np.testing.assert_array_equal(windows[3], values[3:7])
    with pytest.raises(ValueError):
        windows[0, 0, 0] = 1.0
    with pytest.raises(ValueError, match="window"):
        sliding_windows(values, 11)


def test_window_ends_keep_full_windows_with_targets():
    has_target = np.array([True, True, True, False] + [True, True])  # two streams, 4 and 2 steps
    ends = window_ends(has_target, np.array([4, 2]), lookback=2)
    assert ends.tolist() == [[0, 1], [0, 2], [1, 1]]


def test_stream_plan_scores_every_step_exactly_once_and_warms_up_cut_pieces():
    n_steps = np.array([103, 7, 50])
    plan = plan_streams(n_steps, stream_length=20, warmup=5)
    scored = {i: [] for i in range(3)}
    for i, start, n, warm in zip(plan.series, plan.start, plan.n_steps, plan.warmup, strict=True):
        scored[i].extend(range(start + warm, start + n))
        assert n - warm <= 20
        assert warm == (0 if start == 0 else 5)
    for i, n in enumerate(n_steps):
        assert sorted(scored[i]) == list(range(n))
    whole = plan_streams(n_steps)
    assert whole.n_streams == 3 and whole.warmup.sum() == 0


def test_chunk_starts_cover_the_steps():
    assert list(chunk_starts(9, 3)) == [0, 3, 6] and list(chunk_starts(10, 3)) == [0, 3, 6, 9]
