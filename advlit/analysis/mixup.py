"""Robustness on mixup out-of-distribution inputs (LAST, Table VI).

LAST builds out-of-distribution test inputs "with the mixup technique on the validation
subset" and attacks them with PGD-10 / PGD-50; the mixing weights and labels are not
stated. Here: each test image ``x_i`` is mixed with a random partner ``x_j`` of the same
split, ``x = lam x_i + (1 - lam) x_j`` with ``lam = max(l, 1 - l)``, ``l ~ Beta(a, a)``
(``a = 1`` by default), so ``x_i`` dominates and keeps its label ``y_i``. Seeded.
"""
from __future__ import annotations

import torch

from advlit.evaluate import evaluate

__all__ = ["mixup_inputs", "mixup_robustness"]


def mixup_inputs(x: torch.Tensor, y: torch.Tensor, alpha: float = 1.0, seed: int = 0):
    """``(x_mix, y, lam)``: every image mixed with a random partner, the dominant label kept."""
    gen = torch.Generator().manual_seed(seed)
    partner = torch.randperm(len(x), generator=gen)
    beta = torch.distributions.Beta(torch.tensor(float(alpha)), torch.tensor(float(alpha)))
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        lam = beta.sample((len(x),))
    lam = torch.maximum(lam, 1 - lam).to(x)
    view = lam.view(-1, *([1] * (x.dim() - 1)))
    return (view * x + (1 - view) * x[partner]).clamp(0, 1), y, lam


def mixup_robustness(model, data, eps: float, attacks=("clean", "pgd-10", "pgd-50"), alpha: float = 1.0,
                     seed: int = 0, subset: int | None = None) -> dict:
    """Accuracy (%) of ``model`` under ``attacks`` on mixup inputs built from ``data``."""
    if isinstance(data, (tuple, list)):
        x, y = data
    else:
        x, y = data.batch(torch.arange(len(data)))
    if subset is not None:
        x, y = x[:subset], y[:subset]
    x_mix, y_mix, _ = mixup_inputs(x, y, alpha, seed)
    device = next(model.parameters()).device
    return evaluate(model, (x_mix.to(device), y_mix.to(device)), eps, attacks=list(attacks), seed=seed)
