"""Shared pieces of the attacks: input gradients, random starts, eval-mode context."""
from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import Tensor, nn

from advlit.methods.base import clamp_to_ball, per_example

__all__ = ["input_gradient", "uniform_start", "eval_mode", "clamp_to_ball", "per_example"]


def input_gradient(model: nn.Module, x: Tensor, y: Tensor, loss_fn, create_graph: bool = False) -> tuple[Tensor, Tensor]:
    """Return ``(grad_x sum_i loss_i, loss_i)`` at ``x``; the gradient of the *summed*
    per-example loss, so each example's gradient is its own (no 1/B factor)."""
    x = x.detach().requires_grad_(True)
    losses = loss_fn(model(x), y)
    (grad,) = torch.autograd.grad(losses.sum(), x, create_graph=create_graph)
    return grad, losses.detach()


def uniform_start(x: Tensor, eps: float | Tensor, generator: torch.Generator | None = None) -> Tensor:
    """``delta ~ U(-eps, eps)`` (per-example eps allowed), clipped so ``x + delta`` is in [0, 1]."""
    noise = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) if generator is not None \
        else torch.rand_like(x)
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
