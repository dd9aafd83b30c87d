"""ALP: Adversarial Logit Pairing (Kannan, Kurakin & Goodfellow 2018), as PIAT writes it.

    L = CE(f(x_adv), y) + weight * || f(x) - f(x_adv) ||_2^2          (Eq. 8 of PIAT)

with ``x_adv`` from PGD (as in PGD-AT) and the squared L2 distance between the *logits*
summed over classes and averaged over the batch. This is the baseline PIAT's NMSE
(Eq. 11) improves on: ALP aligns the absolute magnitude of the logits, NMSE only their
direction. Kannan et al. train on a mixed batch of clean and adversarial examples; set
``mixed=True`` for that cross-entropy (the mean of the clean and adversarial CE). The
weight (0.5 here) is not given in PIAT; it is our choice, an option.
"""
from __future__ import annotations

import torch.nn.functional as F

from advlit.methods.base import Batch
from advlit.methods.pgd_at import PGDAT
from advlit.methods.registry import register


def logit_pairing(logits_clean, logits_adv):
    """``||f(x) - f(x_adv)||_2^2`` summed over classes, averaged over the batch (Eq. 8 of PIAT)."""
    return (logits_clean - logits_adv).pow(2).sum(1).mean()


@register("alp")
class ALP(PGDAT):
    """PGD-AT plus ``weight`` times the logit-pairing term (Eq. 8 of PIAT)."""

    def __init__(self, eps: float, alpha: float | None = None, steps: int = 10, random_start: bool = True,
                 weight: float = 0.5, mixed: bool = False):
        super().__init__(eps, alpha, steps, random_start)
        self.weight = float(weight)
        self.mixed = bool(mixed)

    def loss(self, model, batch: Batch, x_adv):
        logits_adv = model(x_adv)
        logits_clean = model(batch.x)
        ce = F.cross_entropy(logits_adv, batch.y)
        if self.mixed:
            ce = 0.5 * (ce + F.cross_entropy(logits_clean, batch.y))
        return ce + self.weight * logit_pairing(logits_clean, logits_adv), logits_adv
