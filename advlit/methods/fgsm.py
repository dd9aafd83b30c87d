"""Single-step adversarial training: FGSM (zero init) and FGSM-RS (Fast-AT).

FGSM-AT (Goodfellow et al. 2015; Wong et al. 2020, Sec. 3):
    delta = alpha * sign(grad_x CE(f(x), y)),  projected to the eps-ball and [0, 1].
FGSM-RS (Wong et al. 2020, Alg. 3, "Fast is better than free"):
    delta_0 ~ U(-eps, eps);  delta = Proj(delta_0 + alpha * sign(grad_x CE(f(x + delta_0), y))),
    with alpha = 1.25 eps by default. Larger alpha (e.g. 2 eps) leads to catastrophic
    overfitting; that is the first experiment of the book.
The attack runs in the model's current (training) mode, as in the reference implementation.
"""
from __future__ import annotations

from advlit.attacks import fgsm
from advlit.methods.base import Batch, Method
from advlit.methods.registry import register


@register("fgsm")
class FGSM(Method):
    """FGSM adversarial training from a zero start; ``alpha`` defaults to ``eps``."""

    init = "zero"
    default_alpha_ratio = 1.0

    def __init__(self, eps: float, alpha: float | None = None):
        super().__init__(eps, alpha)
        if self.alpha is None:
            self.alpha = self.default_alpha_ratio * self.eps

    def perturb(self, model, batch: Batch):
        return fgsm(model, batch.x, batch.y, self.eps, self.alpha, init=self.init)


@register("fgsm_rs")
class FGSMRS(FGSM):
    """FGSM-RS (Fast-AT): uniform random start, ``alpha`` defaults to ``1.25 eps``."""

    init = "uniform"
    default_alpha_ratio = 1.25
