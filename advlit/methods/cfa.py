"""CFA: Class-wise calibrated Fair Adversarial training (Wei, Wang, Guo & Wang, CVPR 2023,
pp. 8193-8201, the CVF open-access version read; arXiv 2303.14460).

Classes differ in how hard they are to make robust; CFA gives each class its own training
configuration, calibrated from the class-wise *training* robust accuracy ``r_k`` (the paper's
``t_k``) of the previous epoch:

- CCM (class-wise calibrated margin, Eq. 6): class k is attacked with its own radius
  ``eps_k = (lambda_1 + r_k) * eps`` (harder classes, with a small ``r_k``, get a smaller
  margin, easy classes a larger one, up to ``(lambda_1 + 1) eps``);
- CCR (class-wise calibrated regularisation, TRADES only, Eqs. 7-8): class k has the TRADES
  weight ``beta_k = (lambda_2 + r_k) beta`` in the loss
  ``(1/B) sum_i [CE(f(x_i), y_i) + beta_{y_i} KL(f(x_i) || f(x_adv_i))] / (1 + beta_{y_i})``,
  i.e. ``(1 - b) CE + b KL`` with ``b = beta_k / (1 + beta_k)`` (the KL target
  ``f(x_i)`` is not detached, as in TRADES); before any calibration every class has
  ``beta_k = beta`` (Alg. 1), TRADES divided by ``1 + beta``;
- FAWA (fairness-aware weight averaging, Sec. 4.3): an EMA of the weights over the epochs
  whose worst-class *validation* robust accuracy exceeds a threshold.

Alg. 1 ("TRADES with CFA") trains every epoch with the current ``eps_y``, ``beta_y`` and
recalibrates both from ``r_k`` at the end of every epoch, from the first on: ``begin = 1``
(the first epoch trained with calibrated settings; ``0`` means the same). Its CCR line
prints ``(lambda_2 + t_k) * epsilon``, a misprint of Eq. 7, which is what is implemented.
``r_k`` is measured on the training batches' adversarial logits (the training forward pass,
before the update) over the previous epoch.

The paper's settings (Sec. 5.1), the defaults here: ``lambda_1 = 0.3`` for TRADES and ``0.5``
for AT (TRADES reaches a higher training robust accuracy than AT; ``lambda_1=None`` picks
by ``base``), ``lambda_2 = 0.5``, TRADES with ``beta = 6`` (``base="trades"``), eps =
8/255; PreActResNet-18, 200 epochs, SGD (momentum 0.9, weight decay 5e-4) with LR 0.1
divided by 10 after epochs 100 and 150; FAWA with decay 0.85 from epoch 50 and threshold 0.2
on a validation split of 2 % of each class (training on the other 98 %).

Facts from the authors' code (PKU-ML/CFA, ``train.py``, ``attack.py``): PGD-10 with step
2/255 at 8/255 (``alpha = eps / 4``; the paper's main text states neither); the AT attack runs in
the model's current (training) mode from a uniform start, the TRADES attack in eval mode from
``x + 0.001 N(0, I)``, both projected to each example's own ``eps_{y_i}``. Where the code
differs from the paper it is an option: the code's single ``--lambda-1`` default 0.5 (for
TRADES too) is ``lambda_1=0.5``; the code's ``--begin 10`` (no calibration in the first 10
epochs) is ``begin=10``.

Deviations: FAWA is not implemented (it needs the class-wise validation accuracy and a
second, averaged model, which a :class:`~advlit.methods.base.Method` does not see); ``r_k``
is the class's own accuracy (correct / seen of class k; the code's ``K * correct_k / N``
is the same on balanced data); a class not seen in an epoch keeps its settings.

PIAT (Liu et al.), which compares against CFA in its Tables I and II, states no setting of
CFA's own (no ``base``, ``lambda_1`` or ``lambda_2``), only its common CNN protocol (Sec. V-A).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from advlit.attacks import clamp_to_ball, eval_mode, pgd
from advlit.methods.base import Batch, Method, step_metrics
from advlit.methods.registry import register
from advlit.utils import ConfigError

BASES = ("at", "trades")


#: the paper's base perturbation budget ``lambda_1`` per base (Sec. 5.1)
LAMBDA_1 = {"at": 0.5, "trades": 0.3}


def calibrated_eps(robust_acc: Tensor, eps: float, lambda_1: float) -> Tensor:
    """CCM (Eq. 6): ``(lambda_1 + r_k) * eps`` per class, capped at 1."""
    return ((lambda_1 + robust_acc) * eps).clamp(max=1.0)


def calibrated_beta(robust_acc: Tensor, beta: float, lambda_2: float) -> Tensor:
    """CCR (Eqs. 7-8): ``beta_k / (1 + beta_k)`` with ``beta_k = (lambda_2 + r_k) beta``, per class."""
    b = (lambda_2 + robust_acc) * beta
    return b / (1 + b)


def _per_class(key: str, doc: str) -> property:
    """A read-write property over the attribute ``_<key>`` (a per-class tensor, or None before set-up)."""
    attr = f"_{key}"
    return property(lambda self: getattr(self, attr), lambda self, value: setattr(self, attr, value), doc=doc)


@register("cfa")
class CFA(Method):
    """CFA (CCM + CCR, Alg. 1) over ``base`` (``"trades"`` or ``"at"``); ``lambda_1=None``: the
    paper's 0.3 for TRADES, 0.5 for AT. See the module docstring."""

    def __init__(self, eps: float, alpha: float | None = None, steps: int = 10, base: str = "trades",
                 beta: float = 6.0, ccm: bool = True, ccr: bool = True, lambda_1: float | None = None,
                 lambda_2: float = 0.5, begin: int = 1):
        super().__init__(eps, alpha)
        if int(steps) < 1:
            raise ConfigError(f"cfa: steps must be >= 1, got {steps}")
        if base not in BASES:
            raise ConfigError(f"cfa: base must be one of {BASES}, got {base!r}")
        if lambda_1 is None:
            lambda_1 = LAMBDA_1[base]
        if beta < 0 or lambda_1 < 0 or lambda_2 < 0 or int(begin) < 0:
            raise ConfigError(f"cfa: beta, lambda_1, lambda_2 and begin must be >= 0, got {beta}, {lambda_1}, "
                              f"{lambda_2}, {begin}")
        self.steps = int(steps)
        self.base = base
        self.beta = float(beta)
        self.ccm, self.ccr = bool(ccm), bool(ccr)
        self.lambda_1, self.lambda_2 = float(lambda_1), float(lambda_2)
        self.begin = int(begin)
        if self.alpha is None:
            self.alpha = self.eps / 4
        # per-class radius and TRADES weight, and this epoch's robust-accuracy counts
        self._class_eps: Tensor | None = None
        self._class_beta: Tensor | None = None
        self._correct: Tensor | None = None
        self._seen: Tensor | None = None

    class_eps = _per_class("class_eps", "The radius of each class (CCM), shape (K,).")
    class_beta = _per_class("class_beta", "The TRADES weight ``beta_k / (1 + ...)`` of each class (CCR), shape (K,).")

    def setup(self, model, optimizer, context):
        super().setup(model, optimizer, context)
        k, dev = context.num_classes, context.device
        self.class_eps = torch.full((k,), self.eps, device=dev)
        self.class_beta = torch.full((k,), self.beta / (1 + self.beta), device=dev)
        self._correct = torch.zeros(k, device=dev)
        self._seen = torch.zeros(k, device=dev)

    # ------------------------------------------------------------------ attack
    def perturb(self, model, batch: Batch):
        x, y = batch.x, batch.y
        eps = self.class_eps.to(x.device)[y]
        if self.base == "at":
            return pgd(model, x, y, eps, self.alpha, self.steps, random_start=True)
        with eval_mode(model):
            target = F.softmax(model(x), 1).detach()
            x_adv = clamp_to_ball(x + 0.001 * torch.randn_like(x), x, eps)
            for _ in range(self.steps):
                x_adv = x_adv.detach().requires_grad_(True)
                kl = F.kl_div(F.log_softmax(model(x_adv), 1), target, reduction="sum")
                (grad,) = torch.autograd.grad(kl, x_adv)
                x_adv = clamp_to_ball(x_adv.detach() + self.alpha * grad.sign(), x, eps)
        return x_adv.detach()

    # -------------------------------------------------------------------- loss
    def loss(self, model, batch: Batch, x_adv):
        y = batch.y
        logits_adv = model(x_adv)
        if self.base == "at":
            return F.cross_entropy(logits_adv, y), logits_adv
        logits_clean = model(batch.x)
        b = self.class_beta.to(logits_adv.device)[y]
        ce = F.cross_entropy(logits_clean, y, reduction="none")
        kl = F.kl_div(F.log_softmax(logits_adv, 1), F.softmax(logits_clean, 1), reduction="none").sum(1)
        return ((1 - b) * ce + b * kl).mean(), logits_adv

    def step(self, model, optimizer, batch: Batch) -> dict:
        x_adv = self.perturb(model, batch)
        loss, logits = self.loss(model, batch, x_adv)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():  # class-wise training robust accuracy of this epoch
            k = self._correct.numel()
            hit = (logits.argmax(1) == batch.y).to(self._correct.dtype)
            self._correct += torch.bincount(batch.y, weights=hit, minlength=k).to(self._correct)
            self._seen += torch.bincount(batch.y, minlength=k).to(self._seen)
        return step_metrics(loss, logits, batch.y)

    def on_epoch_end(self, model, epoch):
        """Calibrate each class's eps (CCM, Eq. 6) and beta (CCR, Eq. 7) for the next epoch
        (Alg. 1's end-of-epoch update) when the next epoch is ``begin`` or later."""
        seen = self._seen > 0
        robust = torch.where(seen, self._correct / self._seen.clamp_min(1), torch.zeros_like(self._correct))
        if epoch + 1 >= self.begin:
            if self.ccm:
                self.class_eps = torch.where(seen, calibrated_eps(robust, self.eps, self.lambda_1), self.class_eps)
            if self.ccr and self.base == "trades":
                self.class_beta = torch.where(seen, calibrated_beta(robust, self.beta, self.lambda_2),
                                              self.class_beta)
        self._correct.zero_()
        self._seen.zero_()
        return {"cfa_eps_min": float(self.class_eps.min()), "cfa_eps_max": float(self.class_eps.max()),
                "cfa_worst_class_train_robust": float(robust[seen].min()) if bool(seen.any()) else 0.0}

    _STATE = ("class_eps", "class_beta", "correct", "seen")

    def state_dict(self):
        return {key: getattr(self, f"_{key}").clone() for key in self._STATE}

    def load_state_dict(self, state):
        for key in self._STATE:
            if key in state:
                setattr(self, f"_{key}", state[key].to(getattr(self, f"_{key}").device))
