"""GradAlign / FGSM-GA (Andriushchenko & Flammarion 2020, Eq. 6): FGSM training plus a
gradient-alignment regulariser that keeps the loss locally linear,

    L = CE(f(x + delta_FGSM), y) + lambda * ( 1 - E_i cos( grad_x l(x_i, y_i), grad_x l(x_i + eta_i, y_i) ) ),
    eta_i ~ U(-eps, eps)^d,

where delta_FGSM is one signed step of ``alpha`` (default 1.25 eps) from a *zero* start,
as in the authors' code (tml-epfl/understanding-fast-adv-training). As there, the gradient
at the clean point is treated as a constant and only the gradient at the noisy point is
differentiated again (double backpropagation); examples whose gradient is zero at either
point are left out of the mean. ``lam=None`` applies the authors' eps rule
lambda(eps) = exp(eps_255 ln(10) / 8 + ln(0.02)), i.e. 0.2 at 8/255 and x10 per 8/255
(``sh/exps_diff_eps_cifar10.sh``); it was fitted on eps <= 16/255 and explodes beyond.
Attack and regulariser run in the model's current (training) mode.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from advlit.attacks import fgsm, input_gradient, uniform_start
from advlit.attacks.losses import cross_entropy
from advlit.methods.base import Batch, Method
from advlit.methods.registry import register
from advlit.utils import ConfigError


def gradalign_lambda(eps: float) -> float:
    """The authors' lambda(eps) = exp(eps_255 * ln(10) / 8 + ln(0.02)) (eps in pixel units)."""
    return math.exp(eps * 255 * math.log(10) / 8 + math.log(0.02))


def gradient_alignment(model, x, y, eps: float) -> torch.Tensor:
    """1 - mean cos(grad_x l(x), grad_x l(x + eta)), eta ~ U(-eps, eps); differentiable in the
    model's parameters through the noisy-point gradient only (GradAlign, Eq. 6)."""
    grad_clean, _ = input_gradient(model, x, y, cross_entropy)  # a constant
    x_noisy = (x + uniform_start(x, eps)).detach()
    grad_noisy, _ = input_gradient(model, x_noisy, y, cross_entropy, create_graph=True)
    g1, g2 = grad_clean.flatten(1), grad_noisy.flatten(1)
    keep = (g1.norm(dim=1) > 0) & (g2.norm(dim=1) > 0)
    if not bool(keep.any()):
        return x.new_zeros(())
    cos = F.cosine_similarity(g1[keep], g2[keep], dim=1)
    return 1.0 - cos.mean()


@register("gradalign")
class GradAlign(Method):
    """FGSM-GA: FGSM (zero start, ``alpha`` = 1.25 eps by default) + ``lam`` x gradient alignment."""

    def __init__(self, eps: float, alpha: float | None = None, lam: float | None = None):
        super().__init__(eps, alpha)
        if self.alpha is None:
            self.alpha = 1.25 * self.eps
        if lam is not None and lam < 0:
            raise ConfigError(f"gradalign: lam must be non-negative, got {lam}")
        self.lam = gradalign_lambda(self.eps) if lam is None else float(lam)

    def perturb(self, model, batch: Batch):
        return fgsm(model, batch.x, batch.y, self.eps, self.alpha, init="zero")

    def loss(self, model, batch: Batch, x_adv):
        logits = model(x_adv)
        ce = F.cross_entropy(logits, batch.y)
        if self.lam == 0:
            return ce, logits
        return ce + self.lam * gradient_alignment(model, batch.x, batch.y, self.eps), logits
