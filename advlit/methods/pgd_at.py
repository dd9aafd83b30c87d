"""PGD adversarial training (Madry et al. 2018, Eq. 2.1):

    min_theta E max_{||delta||_inf <= eps} CE(f_theta(x + delta), y),

the inner maximum approximated by ``steps`` PGD iterations of size ``alpha`` from a
uniform random start (reference: 10 steps, alpha = 2/255 at eps = 8/255, i.e. eps / 4).
"""
from __future__ import annotations

from advlit.attacks import pgd
from advlit.methods.base import Batch, Method
from advlit.methods.registry import register
from advlit.utils import ConfigError


@register("pgd_at")
class PGDAT(Method):
    """PGD-AT with ``steps`` iterations; ``alpha`` defaults to ``eps / 4``."""

    def __init__(self, eps: float, alpha: float | None = None, steps: int = 10, random_start: bool = True):
        super().__init__(eps, alpha)
        if int(steps) < 1:
            raise ConfigError(f"pgd_at: steps must be >= 1, got {steps}")
        self.steps = int(steps)
        self.random_start = bool(random_start)
        if self.alpha is None:
            self.alpha = self.eps / 4

    def perturb(self, model, batch: Batch):
        return pgd(model, batch.x, batch.y, self.eps, self.alpha, self.steps, self.random_start)
