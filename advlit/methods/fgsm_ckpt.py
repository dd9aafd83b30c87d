"""FGSM with checkpoints (FGSM-CKPT; Kim, Lee & Lee, AAAI 2021, "Understanding catastrophic
overfitting in single-step adversarial training"), also listed as SSAT in ATAS, Table I.

Catastrophic overfitting goes with *decision boundary distortion*: the full FGSM example
``x + delta`` is classified correctly while a point ``x + k delta`` with ``k < 1`` on the
same line is not. The method therefore trains on the first point along the FGSM direction
that is misclassified, checking ``c - 1`` checkpoints before the full step:

    delta = Proj_eps( eta + alpha * sign(grad_x CE(f(x + eta), y)) ),  eta ~ U(-eps, eps)
    x_train = x                      if f(x + eta) is already wrong,
              x + (j/c) delta        for the smallest j in 1..c-1 with f(x + (j/c) delta) != y,
              x + delta              if no checkpoint is misclassified,

then one CE step on ``x_train`` (train mode). The checkpoints are classified in eval mode
without gradients (c - 1 extra forward passes, no backward).

Facts from the authors' code (Harry24k/catastrophic-overfitting,
``defenses/trainers/co_adv_trainer.py``): c = 3 by default (the value ATAS uses for SSAT
"as it achieves the best performance in their paper"), alpha = 10/255 at eps = 8/255
(``1.25 eps``, the FGSM-RS step), a uniform random start; the "already wrong" test uses
the logits of the random start point, a by-product of the FGSM gradient pass (the paper
describes the test on the example itself; ``start_check="clean"`` makes an extra forward
pass on ``x`` instead); the full perturbation ``delta`` includes the random start.
PreActResNet-18, SGD momentum 0.9 and weight decay 5e-4, with either a cyclic LR (peak
0.3) or a step LR of 0.01 over 200 epochs (x0.1 at 60, 120, 160).

``ssat`` is the same method under the name ATAS gives it (Table I, ref. [15] is this paper);
its ``gpu`` experiment follows ATAS's protocol (30 epochs, c = 3).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from advlit.attacks import clamp_to_ball, eval_mode, uniform_start
from advlit.methods.base import Batch, Method
from advlit.methods.registry import register
from advlit.utils import ConfigError

START_CHECKS = ("start", "clean")
INITS = ("uniform", "zero")


def first_misclassified_checkpoint(model, x, delta, y, checkpoints: int, pending: torch.Tensor) -> torch.Tensor:
    """For the examples where ``pending`` is set, the point ``x + (j / c) delta`` of the
    smallest ``j`` in ``1..c-1`` that ``model`` misclassifies, else ``x + delta``; the other
    examples get ``x``. Evaluated in eval mode without gradients."""
    out = torch.where(pending.view(-1, *([1] * (x.dim() - 1))), x + delta, x)
    pending = pending.clone()
    with eval_mode(model), torch.no_grad():
        for j in range(1, checkpoints):
            if not bool(pending.any()):
                break
            rows = pending.nonzero().squeeze(1)
            point = x[rows] + (j / checkpoints) * delta[rows]
            wrong = model(point).argmax(1) != y[rows]
            out[rows[wrong]] = point[wrong]
            pending[rows[wrong]] = False
    return out


@register("fgsm_ckpt")
class FGSMCheckpoints(Method):
    """FGSM-CKPT with ``checkpoints`` = c (default 3); ``alpha`` defaults to ``1.25 eps``."""

    def __init__(self, eps: float, alpha: float | None = None, checkpoints: int = 3, init: str = "uniform",
                 start_check: str = "start"):
        super().__init__(eps, alpha)
        if int(checkpoints) < 1:
            raise ConfigError(f"{self.name}: checkpoints (c) must be >= 1, got {checkpoints}")
        if init not in INITS:
            raise ConfigError(f"{self.name}: init must be one of {INITS}, got {init!r}")
        if start_check not in START_CHECKS:
            raise ConfigError(f"{self.name}: start_check must be one of {START_CHECKS}, got {start_check!r}")
        self.checkpoints = int(checkpoints)
        self.init = init
        self.start_check = start_check
        if self.alpha is None:
            self.alpha = 1.25 * self.eps

    def perturb(self, model, batch: Batch):
        x, y = batch.x, batch.y
        eta = uniform_start(x, self.eps) if self.init == "uniform" else torch.zeros_like(x)
        start = clamp_to_ball(x + eta, x, self.eps).requires_grad_(True)
        logits = model(start)
        (grad,) = torch.autograd.grad(F.cross_entropy(logits, y), start)
        delta = (clamp_to_ball(start.detach() + self.alpha * grad.sign(), x, self.eps) - x).detach()
        if self.start_check == "clean":
            with torch.no_grad():
                logits = model(x)
        correct = logits.detach().argmax(1) == y
        return first_misclassified_checkpoint(model, x, delta, y, self.checkpoints, correct).detach()


@register("ssat")
class SSAT(FGSMCheckpoints):
    """FGSM-CKPT under the name of ATAS, Table I ("SSAT", ref. [15]: Kim et al. 2021)."""
