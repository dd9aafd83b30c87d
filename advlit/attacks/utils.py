"""Shared pieces of the attacks: input gradients, random starts, eval-mode context."""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar

import torch
from torch import Tensor, nn

__all__ = ["input_gradient", "uniform_start", "eval_mode", "clamp_to_ball", "per_example", "shard_of_draws"]

#: ``(offset, size, total)`` while a data-parallel rank attacks its shard of a global batch
_SHARD: ContextVar[tuple[int, int, int] | None] = ContextVar("advlit_shard_of_draws", default=None)


def per_example(value: float | Tensor, like: Tensor) -> Tensor | float:
    """Broadcast a scalar or a ``(B,)`` tensor against a batch shaped like ``like``."""
    if isinstance(value, Tensor) and value.dim() == 1:
        return value.view(-1, *([1] * (like.dim() - 1))).to(like)
    return value


def clamp_to_ball(x_adv: Tensor, x: Tensor, eps: float | Tensor) -> Tensor:
    """Project ``x_adv`` onto the L-inf ball of radius ``eps`` around ``x`` and onto [0, 1].

    ``eps`` is a float or a per-example tensor of shape ``(B,)``.
    """
    eps = per_example(eps, x)
    return torch.min(torch.max(x_adv, x - eps), x + eps).clamp_(0.0, 1.0)


def input_gradient(model: nn.Module, x: Tensor, y: Tensor, loss_fn, create_graph: bool = False) -> tuple[Tensor, Tensor]:
    """Return ``(grad_x sum_i loss_i, loss_i)`` at ``x``; the gradient of the *summed*
    per-example loss, so each example's gradient is its own (no 1/B factor)."""
    x = x.detach().requires_grad_(True)
    losses = loss_fn(model(x), y)
    (grad,) = torch.autograd.grad(losses.sum(), x, create_graph=create_graph)
    return grad, losses.detach()


@contextmanager
def shard_of_draws(offset: int, size: int, total: int):
    """Inside the block a random start for a batch of ``size`` examples is drawn for the
    whole global batch of ``total`` examples and rows ``offset .. offset + size`` are kept.

    A rank of a data-parallel run (:mod:`advlit.distributed`) attacks its shard of the
    global batch: it thus gets the very numbers one process draws for those examples, and
    its generator advances as one process's does (every rank stays in step)."""
    token = _SHARD.set((int(offset), int(size), int(total)))
    try:
        yield
    finally:
        _SHARD.reset(token)


def _uniform_noise(x: Tensor, generator: torch.Generator | None) -> Tensor:
    """U(0, 1) shaped like ``x``: the batch's own draw, or its rows of the global batch's draw
    inside :func:`shard_of_draws`."""
    shard = _SHARD.get()
    if shard is None:
        return torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) if generator is not None \
            else torch.rand_like(x)
    offset, size, total = shard
    if x.shape[0] != size:
        raise RuntimeError(f"a random start for {x.shape[0]} examples inside a shard of {size}: only a rank's own "
                           "batch can be drawn as its rows of the global batch")
    noise = torch.rand((total, *x.shape[1:]), generator=generator, device=x.device, dtype=x.dtype)
    return noise[offset:offset + size]


def uniform_start(x: Tensor, eps: float | Tensor, generator: torch.Generator | None = None) -> Tensor:
    """``delta ~ U(-eps, eps)`` (per-example eps allowed), clipped so ``x + delta`` is in [0, 1]."""
    noise = _uniform_noise(x, generator)
    delta = (2 * noise - 1) * per_example(eps, x)
    return (x + delta).clamp(0, 1) - x


@contextmanager
def eval_mode(model: nn.Module):
    """Put ``model`` in eval mode inside the block and restore its previous mode after."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)
