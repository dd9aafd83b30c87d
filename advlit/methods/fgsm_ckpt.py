"""FGSM with checkpoints (FGSM-CKPT; Kim, Lee & Lee, AAAI 2021, "Understanding catastrophic
overfitting in single-step adversarial training"), also listed as SSAT in ATAS, Table I.

Catastrophic overfitting goes with *decision boundary distortion*: the full FGSM example
``x + delta`` is classified correctly while a point ``x + k delta`` with ``k < 1`` on the
same line is not. The method therefore trains on the first point along the FGSM direction
that is misclassified. The paper's Algorithm 1 ("Stable single-step adversarial training",
reproduced in the authors' README), for each batch:

    eta = Uniform(-eps, eps);   y_0 = f(x + eta)
    delta = eta + alpha * grad_eta CE(y_0, y)
    y_j = f(x + j delta / c)                          for j = 1..c
    x' = x + min({k : y_k != y} U {c}) delta / c;     one CE step on f(x')

(Alg. 1 prints ``U {1}``; see below). A start point ``x + eta`` that is already
misclassified gives ``k = 0``: the training point is the *clean* ``x``; otherwise it is the
first misclassified checkpoint ``x + (j/c) delta``, and the full ``x + delta`` when none
is. The checkpoint ``j = c`` is ``x + delta`` itself, so only ``c - 1`` extra forward
passes (no backward) are needed.

Alg. 1 as printed abbreviates three things, filled in here from the authors' code
(Harry24k/catastrophic-overfitting, ``defenses/trainers/co_adv_trainer.py``): the step
is FGSM's *signed* gradient (the print shows the raw gradient), ``delta`` is projected onto
the eps-ball and ``x + delta`` onto [0, 1] (not printed), and the fallback, printed
``U {1}`` (which would cap the step at ``delta / c``), is the full step ``U {c}``, as in the
code. ``delta`` includes the random start ``eta``, as printed and in the code.

Model modes (the paper does not state them; the authors' code): the FGSM gradient pass,
whose logits ``y_0`` are the start check, and the checkpoint passes run in **eval** mode
(the code's FGSM is a ``torchattacks`` attack, whose call switches the model to eval; the
checkpoints are classified after an explicit ``model.eval()``), without gradients for the
checkpoints; the training step runs in train mode. ``attack_mode="train"`` runs the FGSM
pass in train mode instead (BatchNorm batch statistics, running statistics updated by the
start points), the FGSM-RS convention of :mod:`advlit.methods.fgsm`.

``start_check="clean"`` is a variant of neither the paper nor the code: it tests ``f(x)``
(one extra forward pass) instead of ``y_0 = f(x + eta)``.

Other facts from the authors' code: c = 3 by default (the value ATAS uses for SSAT "as it
achieves the best performance in their paper"), alpha = 10/255 at eps = 8/255 (``1.25
eps``, the FGSM-RS step); PreActResNet-18, batch 128, SGD momentum 0.9 and weight decay
5e-4, with either a step LR of 0.01 over 200 epochs (x0.1 at 60, 120, 160; the default)
or a cyclic LR peaking at 0.3 over 30 epochs.

``ssat`` is the same method under the name ATAS gives it (Table I, ref. [15] is this paper);
its ``gpu`` experiment follows ATAS's protocol (ResNet-18, 30 epochs, c = 3).
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
ATTACK_MODES = ("eval", "train")


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
    """FGSM-CKPT with ``checkpoints`` = c (default 3); ``alpha`` defaults to ``1.25 eps``; the
    FGSM pass runs in ``attack_mode`` ("eval", the authors' code; or "train")."""

    def __init__(self, eps: float, alpha: float | None = None, checkpoints: int = 3, init: str = "uniform",
                 start_check: str = "start", attack_mode: str = "eval"):
        super().__init__(eps, alpha)
        if int(checkpoints) < 1:
            raise ConfigError(f"{self.name}: checkpoints (c) must be >= 1, got {checkpoints}")
        if init not in INITS:
            raise ConfigError(f"{self.name}: init must be one of {INITS}, got {init!r}")
        if start_check not in START_CHECKS:
            raise ConfigError(f"{self.name}: start_check must be one of {START_CHECKS}, got {start_check!r}")
        if attack_mode not in ATTACK_MODES:
            raise ConfigError(f"{self.name}: attack_mode must be one of {ATTACK_MODES}, got {attack_mode!r}")
        self.checkpoints = int(checkpoints)
        self.init = init
        self.start_check = start_check
        self.attack_mode = attack_mode
        if self.alpha is None:
            self.alpha = 1.25 * self.eps

    def _fgsm(self, model, x, y):
        """``(delta, y_0)``: the projected FGSM perturbation from the start (Alg. 1, lines 2-4)
        and the logits of the start point, in the model's current mode."""
        eta = uniform_start(x, self.eps) if self.init == "uniform" else torch.zeros_like(x)
        start = clamp_to_ball(x + eta, x, self.eps).requires_grad_(True)
        logits = model(start)
        (grad,) = torch.autograd.grad(F.cross_entropy(logits, y), start)
        delta = (clamp_to_ball(start.detach() + self.alpha * grad.sign(), x, self.eps) - x).detach()
        return delta, logits.detach()

    def perturb(self, model, batch: Batch):
        x, y = batch.x, batch.y
        if self.attack_mode == "eval":
            with eval_mode(model):
                delta, logits = self._fgsm(model, x, y)
        else:
            delta, logits = self._fgsm(model, x, y)
        if self.start_check == "clean":
            with eval_mode(model), torch.no_grad():
                logits = model(x)
        correct = logits.argmax(1) == y
        return first_misclassified_checkpoint(model, x, delta, y, self.checkpoints, correct).detach()


@register("ssat")
class SSAT(FGSMCheckpoints):
    """FGSM-CKPT under the name of ATAS, Table I ("SSAT", ref. [15]: Kim et al. 2021)."""
