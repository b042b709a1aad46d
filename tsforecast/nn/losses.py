"""The training loss: twice the pinball loss over the quantile outputs (for the median: the MAE)."""

from __future__ import annotations

import torch

__all__ = ["quantile_loss"]


def quantile_loss(levels: torch.Tensor):
    """Masked loss over quantile outputs: twice the pinball loss, averaged over levels and targets.

    With the single level 0.5 it is the mean absolute error. The returned function maps
    ``pred (batch, C, horizon * n_levels)``, ``y (batch, C, horizon)``, ``mask (batch, C, horizon)``
    to ``(loss, n_valid)``; the mean runs over unmasked targets only (a chunk without any gives 0).

    Examples
    --------
    >>> loss_fn = quantile_loss(torch.tensor([0.5]))
    >>> y, mask = torch.tensor([[[1.0, -3.0]]]), torch.tensor([[[True, False]]])
    >>> loss, n = loss_fn(torch.zeros(1, 1, 2), y, mask)
    >>> float(loss), float(n)
    (1.0, 1.0)
    """
    mean_level = float(levels.mean())

    def at_zero(y, mask):
        """The loss of a zero prediction (the seasonal naive forecast), in closed form.

        For every level the error is ``y``, so the mean pinball is ``y * mean(levels)`` above 0,
        else ``-y * (1 - mean(levels))``: one pass over the targets instead of the levels.
        """
        weight = mask.to(y.dtype)
        pinball = torch.where(y > 0, y * mean_level, -y * (1 - mean_level)) * 2  # |y| for the median
        return (pinball * weight).sum() / weight.sum().clamp_min(1)

    if levels.numel() == 1 and float(levels[0]) == 0.5:  # the mean absolute error, without the detour

        def absolute(pred, y, mask):
            weight = mask.to(pred.dtype)
            valid = weight.sum()
            return ((pred - y).abs() * weight).sum() / valid.clamp_min(1), valid

        absolute.at_zero = at_zero
        return absolute

    def loss_fn(pred, y, mask):
        pred = pred.unflatten(-1, (y.shape[-1], len(levels)))  # (batch, C, horizon, levels)
        error = y[..., None] - pred
        pinball = torch.maximum(levels * error, (levels - 1) * error).mean(-1) * 2  # (batch, C, horizon)
        weight = mask.to(pinball.dtype)
        valid = weight.sum()
        return (pinball * weight).sum() / valid.clamp_min(1), valid

    loss_fn.at_zero = at_zero
    return loss_fn
