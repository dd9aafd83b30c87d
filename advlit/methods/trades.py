"""TRADES (Zhang et al. 2019, Eq. 5):

    min_theta E [ CE(f(x), y) + beta * max_{x' in B(x, eps)} KL( f(x) || f(x') ) ],

the inner maximum by ``steps`` signed-gradient steps on the KL from
``x + 0.001 * N(0, I)``, computed in eval mode as in the authors' code; beta = 6 by default.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from advlit.attacks import clamp_to_ball, eval_mode
from advlit.methods.base import Batch, Method
from advlit.methods.registry import register


def trades_kl(logits_adv, logits_clean):
    """``KL(softmax(clean) || softmax(adv))`` summed over classes, averaged over the batch."""
    return F.kl_div(F.log_softmax(logits_adv, 1), F.softmax(logits_clean, 1), reduction="batchmean")


@register("trades")
class TRADES(Method):
    """TRADES with trade-off ``beta``; ``alpha`` defaults to ``eps / 4``."""

    def __init__(self, eps: float, alpha: float | None = None, steps: int = 10, beta: float = 6.0):
        super().__init__(eps, alpha)
        self.steps = int(steps)
        self.beta = float(beta)
        if self.alpha is None:
            self.alpha = self.eps / 4

    def perturb(self, model, batch: Batch):
        x = batch.x
        with eval_mode(model):
            with torch.no_grad():
                p_clean = model(x)
            x_adv = clamp_to_ball(x + 0.001 * torch.randn_like(x), x, self.eps)
            for _ in range(self.steps):
                x_adv.requires_grad_(True)
                kl = trades_kl(model(x_adv), p_clean)
                (grad,) = torch.autograd.grad(kl, x_adv)
                x_adv = clamp_to_ball(x_adv.detach() + self.alpha * grad.sign(), x, self.eps)
        return x_adv.detach()

    def loss(self, model, batch: Batch, x_adv):
        logits_clean = model(batch.x)
        logits_adv = model(x_adv)
        loss = F.cross_entropy(logits_clean, batch.y) + self.beta * trades_kl(logits_adv, logits_clean)
        return loss, logits_adv
