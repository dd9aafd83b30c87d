"""Projected Gradient Descent in L-inf (Madry et al. 2018), with restarts.

    x^{t+1} = Proj_{B(x, eps) cap [0,1]} ( x^t + alpha * sign(grad_x L(f(x^t), y)) ),
    x^0 = x + U(-eps, eps) (random start) or x.

``eps``, ``alpha`` and ``steps`` may be per-example tensors of shape ``(B,)`` (LAS-AT
samples one attack strategy per example): the loop runs ``max(steps)`` iterations and an
example stops moving after its own number of steps. With ``restarts > 1`` the worst case
per example is kept: a misclassifying restart beats a correct one, then the larger loss
wins, so more restarts are never weaker.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from advlit.attacks.losses import cross_entropy, get_attack_loss
from advlit.attacks.utils import clamp_to_ball, input_gradient, per_example, uniform_start


def pgd(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float | Tensor,
    alpha: float | Tensor,
    steps: int | Tensor,
    random_start: bool = True,
    restarts: int = 1,
    loss: str = "ce",
    generator: torch.Generator | None = None,
) -> Tensor:
    """Return the PGD adversarial example (detached). Does not change the model's mode."""
    if restarts < 1:
        raise ValueError(f"restarts must be >= 1, got {restarts}")
    loss_fn = get_attack_loss(loss)
    best = None
    for _ in range(restarts):
        x_adv = _pgd_once(model, x, y, eps, alpha, steps, random_start, loss_fn, generator)
        if restarts == 1:
            return x_adv
        with torch.no_grad():
            logits = model(x_adv)
            wrong = logits.argmax(1) != y
            score = cross_entropy(logits, y)
        if best is None:
            best, best_wrong, best_score = x_adv, wrong, score
            continue
        better = (wrong & ~best_wrong) | ((wrong == best_wrong) & (score > best_score))
        best = torch.where(better.view(-1, *([1] * (x.dim() - 1))), x_adv, best)
        best_wrong = best_wrong | wrong
        best_score = torch.where(better, score, best_score)
    return best


def _pgd_once(model, x, y, eps, alpha, steps, random_start, loss_fn, generator) -> Tensor:
    delta = uniform_start(x, eps, generator) if random_start else torch.zeros_like(x)
    x_adv = clamp_to_ball(x + delta, x, eps)
    if isinstance(steps, Tensor):
        steps = steps.to(x.device)
        n_iter = int(steps.max().item()) if steps.numel() else 0
    else:
        n_iter = int(steps)
    alpha_b = per_example(alpha, x)
    for t in range(n_iter):
        grad, _ = input_gradient(model, x_adv, y, loss_fn)
        step = alpha_b * grad.sign()
        if isinstance(steps, Tensor):
            step = step * per_example((steps > t).to(x.dtype), x)
        x_adv = clamp_to_ball(x_adv + step, x, eps)
    return x_adv.detach()
