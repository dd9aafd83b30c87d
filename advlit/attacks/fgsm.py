"""Fast Gradient Sign Method (Goodfellow et al. 2015) and its random-start variant
(FGSM-RS, Wong et al. 2020).

    x_adv = Proj_{B(x, eps) cap [0,1]} ( x + delta_0 + alpha * sign(grad_x L(f(x + delta_0), y)) )

with ``delta_0 = 0`` (FGSM) or ``delta_0 ~ U(-eps, eps)`` (FGSM-RS), or a given tensor.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from advlit.attacks.losses import get_attack_loss
from advlit.attacks.utils import clamp_to_ball, input_gradient, per_example, uniform_start


def fgsm(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float | Tensor,
    alpha: float | Tensor | None = None,
    init: str | Tensor = "zero",
    loss: str = "ce",
    generator: torch.Generator | None = None,
) -> Tensor:
    """One signed-gradient step from ``x + delta_0``, projected to the eps-ball and [0, 1].

    ``alpha`` defaults to ``eps``; ``init`` is ``"zero"``, ``"uniform"`` or a tensor
    ``delta_0``. Does not change the model's train/eval mode.
    """
    alpha = eps if alpha is None else alpha
    if isinstance(init, Tensor):
        delta0 = init
    elif init == "zero":
        delta0 = torch.zeros_like(x)
    elif init == "uniform":
        delta0 = uniform_start(x, eps, generator)
    else:
        raise ValueError(f"init must be 'zero', 'uniform' or a tensor, got {init!r}")
    x0 = clamp_to_ball(x + delta0, x, eps)
    grad, _ = input_gradient(model, x0, y, get_attack_loss(loss))
    return clamp_to_ball(x0 + per_example(alpha, x) * grad.sign(), x, eps).detach()
