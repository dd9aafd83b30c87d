"""MART: Misclassification-Aware adveRsarial Training (Wang et al. 2020, Eq. 6).

    L = BCE(p(x_adv), y) + beta * KL( p(x) || p(x_adv) ) * (1 - p_y(x)),
    BCE(p, y) = -log p_y - log(1 - max_{k != y} p_k),

averaged over the batch, beta = 6. ``x_adv`` maximises the cross-entropy by PGD from a
small Gaussian start (``x + 0.001 N(0, I)``), generated in eval mode, as in the authors'
code (YisenWang/MART); ``1e-12`` guards the logarithms and the weight ``1 - p_y(x)`` is
not detached (also as there). ``alpha`` defaults to ``eps / 4``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from advlit.attacks import clamp_to_ball, eval_mode, input_gradient
from advlit.attacks.losses import cross_entropy
from advlit.methods.base import Batch, Method
from advlit.methods.registry import register
from advlit.utils import ConfigError


def boosted_cross_entropy(logits_adv, y):
    """The BCE of MART, Eq. 4: CE plus a margin term on the most likely wrong class."""
    probs = F.softmax(logits_adv, dim=1)
    wrong = probs.clone()
    wrong.scatter_(1, y[:, None], float("-inf"))
    top_wrong = wrong.argmax(1)
    margin = -torch.log(1.0 - probs.gather(1, top_wrong[:, None]).squeeze(1) + 1e-12)
    return F.cross_entropy(logits_adv, y, reduction="none") + margin


def mart_loss(logits_clean, logits_adv, y, beta: float):
    """Eq. 6 of MART, averaged over the batch."""
    p_clean = F.softmax(logits_clean, dim=1)
    kl = (p_clean * (torch.log(p_clean + 1e-12) - F.log_softmax(logits_adv, dim=1))).sum(1)
    weight = 1.0 - p_clean.gather(1, y[:, None]).squeeze(1)
    return (boosted_cross_entropy(logits_adv, y) + beta * kl * weight).mean()


@register("mart")
class MART(Method):
    """MART with trade-off ``beta`` (6 by default), PGD-``steps`` training examples."""

    def __init__(self, eps: float, alpha: float | None = None, steps: int = 10, beta: float = 6.0):
        super().__init__(eps, alpha)
        if int(steps) < 1:
            raise ConfigError(f"mart: steps must be >= 1, got {steps}")
        self.steps = int(steps)
        self.beta = float(beta)
        if self.alpha is None:
            self.alpha = self.eps / 4

    def perturb(self, model, batch: Batch):
        x = batch.x
        with eval_mode(model):
            x_adv = clamp_to_ball(x + 0.001 * torch.randn_like(x), x, self.eps)
            for _ in range(self.steps):
                grad, _ = input_gradient(model, x_adv, batch.y, cross_entropy)
                x_adv = clamp_to_ball(x_adv + self.alpha * grad.sign(), x, self.eps)
        return x_adv.detach()

    def loss(self, model, batch: Batch, x_adv):
        logits_adv = model(x_adv)
        logits_clean = model(batch.x)
        return mart_loss(logits_clean, logits_adv, batch.y, self.beta), logits_adv
