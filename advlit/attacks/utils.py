"""Shared pieces of the attacks: input gradients, random starts, eval-mode context."""
from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import Tensor, nn

__all__ = ["input_gradient", "uniform_start", "eval_mode", "clamp_to_ball", "per_example"]


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
