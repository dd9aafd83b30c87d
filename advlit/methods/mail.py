"""MAIL: Margin-Aware Instance reweighting Learning (Wang, Liu, Han, Liu, Gong, Niu, Zhou &
Sugiyama, NeurIPS 2021, "Probabilistic Margins for Instance Reweighting in Adversarial
Training"; PIAT's ref. [16]).

Examples close to the decision boundary matter more for robustness; MAIL measures the
closeness by the *probabilistic margin* of the adversarial example,

    PM_i = p_{y_i}(x_adv_i) - max_{k != y_i} p_k(x_adv_i)          (in [-1, 1]),

and weights each example by a decreasing sigmoid of it,

    omega_i = s * sigmoid( -gamma (PM_i - beta) ),

so that misclassified / barely classified examples (small or negative PM) get the large
weights. The weights are constants (no gradient). MAIL-AT (``base="at"``, default) trains on
``mean_i omega_i CE(f(x_adv_i), y_i)``; MAIL-TRADES (``base="trades"``) on
``CE(f(x), y) + trades_beta * (1/B) sum_i omega_i KL(f(x_i) || f(x_adv_i))`` (the clean
softmax not detached). Until epoch ``burn_in`` every weight is 1 (the base method itself).

Printed source: the paper's text could not be consulted here (not verified: its
equations, in particular whether it normalises the weights over the batch where the code
multiplies by 3). Everything below is the authors' code (QizhouWang/MAIL, ``mail_loss.py``,
``at_loss.py``, ``train.py``, README):

- the weight: ``3 * sigmoid((PM' + bias) * slope)`` with ``PM' = -PM``, i.e. ``gamma`` =
  slope, ``beta`` = bias, ``s = 3``;
- slope and bias per base, from the README's usage commands: MAIL-AT ``--bias -0.5 --slope
  10`` (default here: ``gamma = 10``, ``beta = -0.5``), MAIL-TRADES ``--bias 0 --slope 2``
  (``gamma = 2``, ``beta = 0``). ``train.py``'s argument defaults are ``--bias -1.5 --slope
  1`` (``gamma=1, beta=-1.5``), which its default ``--method trades_mail`` would use when
  run without these flags;
- the TRADES weight ``--beta 5`` (``trades_beta``); the attack PGD-10 on the CE (TRADES's
  KL attack for MAIL-TRADES), step 0.007 at eps 0.031, from ``x + 0.001 N(0, I)``, in eval
  mode; the loss in training mode, MAIL-TRADES forwarding the clean batch before the
  adversarial one (their BatchNorm statistics in that order, as here);
- ResNet-18, SGD LR 0.01 (momentum 0.9, weight decay 3.5e-3, batch 128), 120 epochs, the LR
  divided by 10 at epochs 75, 90 and 100 (0-based); the first release evaluates the model
  after epoch 100 only;
- the burn-in: the first release trains the base method, saves it after 70 epochs and
  resumes MAIL from that state at epoch 75; the current ``train.py`` uses the base loss while
  ``epoch <= 75`` (MAIL from epoch 76). Default here: MAIL from epoch
  ``round(75 / 120 * epochs)`` (75 of 120) on, in the same run.

PIAT (Sec. V-A) trains its MAIL baseline in its own common setting: ResNet-18 with LR
0.01, weight decay 3.5e-3 and 120 epochs as above, but the LR decayed linearly (0.01 until
epoch 60, 0.001 at 90, 0.0001 at 120) and PGD-10 with step 2/255 at 8/255; it does not
say which MAIL variant or which slope and bias.

Deviation: ``alpha`` defaults to ``eps / 4`` (the package's PGD-AT step and PIAT's 2/255;
the code's 0.007 at 0.031 is ``0.226 eps``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from advlit.attacks import clamp_to_ball, eval_mode
from advlit.methods.base import Batch, Method
from advlit.methods.registry import register
from advlit.utils import ConfigError

BASES = ("at", "trades")
#: (slope gamma, bias beta) of each base: the README's commands of the authors' code
SLOPE_BIAS = {"at": (10.0, -0.5), "trades": (2.0, 0.0)}


def probabilistic_margin(logits: Tensor, y: Tensor) -> Tensor:
    """``p_y - max_{k != y} p_k`` per example (MAIL's PM)."""
    probs = F.softmax(logits, 1)
    true = probs.gather(1, y[:, None]).squeeze(1)
    others = probs.scatter(1, y[:, None], float("-inf"))
    return true - others.max(1).values


def mail_weights(logits_adv: Tensor, y: Tensor, gamma: float = 10.0, beta: float = -0.5, scale: float = 3.0) -> Tensor:
    """``scale * sigmoid(-gamma (PM - beta))``, detached: a decreasing function of the margin."""
    with torch.no_grad():
        return scale * torch.sigmoid(-gamma * (probabilistic_margin(logits_adv, y) - beta))


@register("mail")
class MAIL(Method):
    """MAIL over ``base`` (``"at"`` or ``"trades"``) with slope ``gamma`` and bias ``beta``
    (default: the base's, :data:`SLOPE_BIAS`), ``scale``, and ``burn_in`` epochs of
    unweighted training; ``alpha`` defaults to ``eps / 4``."""

    def __init__(self, eps: float, alpha: float | None = None, steps: int = 10, base: str = "at",
                 gamma: float | None = None, beta: float | None = None, scale: float = 3.0,
                 burn_in: int | None = None, trades_beta: float = 5.0):
        super().__init__(eps, alpha)
        if int(steps) < 1:
            raise ConfigError(f"mail: steps must be >= 1, got {steps}")
        if base not in BASES:
            raise ConfigError(f"mail: base must be one of {BASES}, got {base!r}")
        gamma = SLOPE_BIAS[base][0] if gamma is None else gamma
        beta = SLOPE_BIAS[base][1] if beta is None else beta
        if gamma < 0 or scale <= 0 or trades_beta < 0:
            raise ConfigError(f"mail: gamma and trades_beta must be >= 0 and scale > 0, got gamma={gamma}, "
                              f"scale={scale}, trades_beta={trades_beta}")
        if burn_in is not None and int(burn_in) < 0:
            raise ConfigError(f"mail: burn_in must be >= 0 or None, got {burn_in}")
        self.steps = int(steps)
        self.base = base
        self.gamma, self.beta, self.scale = float(gamma), float(beta), float(scale)
        self.burn_in = None if burn_in is None else int(burn_in)
        self.trades_beta = float(trades_beta)
        if self.alpha is None:
            self.alpha = self.eps / 4

    def burn_in_epochs(self) -> int:
        if self.burn_in is not None:
            return self.burn_in
        return round(75 / 120 * self.context.epochs) if self.context else 0

    def perturb(self, model, batch: Batch):
        x, y = batch.x, batch.y
        with eval_mode(model):
            target = F.softmax(model(x), 1).detach() if self.base == "trades" else None
            x_adv = clamp_to_ball(x + 0.001 * torch.randn_like(x), x, self.eps)
            for _ in range(self.steps):
                x_adv = x_adv.detach().requires_grad_(True)
                logits = model(x_adv)
                if self.base == "trades":
                    objective = F.kl_div(F.log_softmax(logits, 1), target, reduction="sum")
                else:
                    objective = F.cross_entropy(logits, y)
                (grad,) = torch.autograd.grad(objective, x_adv)
                x_adv = clamp_to_ball(x_adv.detach() + self.alpha * grad.sign(), x, self.eps)
        return x_adv.detach()

    def weights(self, logits_adv: Tensor, y: Tensor, epoch: int) -> Tensor:
        """The per-example weights of ``epoch``: 1 during the burn-in, MAIL's after."""
        if epoch < self.burn_in_epochs():
            return torch.ones_like(y, dtype=logits_adv.dtype)
        return mail_weights(logits_adv, y, self.gamma, self.beta, self.scale)

    def loss(self, model, batch: Batch, x_adv):
        """MAIL-AT / MAIL-TRADES (module docstring); MAIL-TRADES forwards the clean batch
        first, as the code does (the order of the BatchNorm statistics' updates)."""
        y = batch.y
        logits_clean = model(batch.x) if self.base == "trades" else None
        logits_adv = model(x_adv)
        w = self.weights(logits_adv, y, batch.epoch)
        if self.base == "at":
            return (w * F.cross_entropy(logits_adv, y, reduction="none")).mean(), logits_adv
        kl = F.kl_div(F.log_softmax(logits_adv, 1), F.softmax(logits_clean, 1), reduction="none").sum(1)
        return F.cross_entropy(logits_clean, y) + self.trades_beta * (w * kl).mean(), logits_adv
