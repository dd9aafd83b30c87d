"""LBGAT: Learnable Boundary Guided Adversarial Training (Cui, Liu, Wang & Jia, ICCV 2021).

A *clean* (natural) model ``f_nat`` is trained jointly with the robust model ``f_rob``;
the robust model's logits on the adversarial input are pulled toward the natural model's
logits on the clean input, so the robust decision boundary is guided by a boundary that
keeps clean accuracy, while the natural model is trained on clean data *and* pulled
toward the robust one (the guidance is learnable: the MSE gradient reaches both):

    L = gamma * MSE( f_rob(x_adv), f_nat(x) ) + CE( f_nat(x), y ) + beta * KL( f_rob(x) || f_rob(x_adv) ),

with ``MSE`` the mean over the B x K logit entries, ``KL`` TRADES's batch-mean divergence
of the softmax outputs (``beta = 0``: "LBGAT", ``beta = 6``: "LBGAT + TRADES"), and
``x_adv`` TRADES's KL attack on ``f_rob`` (eval mode, ``x + 0.001 N(0, I)`` start).

Printed source: the ICCV text itself could not be consulted here. The authors' repository
keeps their CVPR 2020 manuscript of the same method (``assets/manuscripts_submitted_to_
cvpr2020.pdf``, then named ADT / AODT): Eq. (2) ``argmin E L(M_rob(x_adv), M_nat(x))`` with
``L`` the MSE of the logits and ``M_nat`` fixed (Eq. (1) and Alg. 1: ``x_adv`` by PGD on the
CE); Eq. (3), the learnable version, ``argmin_{theta_rob, theta_nat} E [ L(M_rob(x_adv),
M_nat(x)) + b CE(softmax(M_nat(x)), y) ]`` with its trade-off ``b = 1`` for the
experiments; Eq. (5), the TRADES combination, adds ``a D_KL(softmax(M_rob(x_adv)) ||
softmax(M_rob(x)))``. The manuscript weights the CE term, this module the MSE term
(``gamma``): at the printed value 1 the two coincide. Eq. (5) prints the adversarial output
first; the code (and this module) computes TRADES's ``KL(f_rob(x) || f_rob(x_adv))``.

Facts from the authors' code (dvlab-research/LBGAT, ``lbgat.py``,
``train_lbgat_cifar100.py``), the defaults: gamma = 1 (plain ``nn.MSELoss``), beta = 0
(``LBGAT0``); TRADES's KL attack (not the manuscript's CE-PGD) even at beta = 0, 10 steps
of 0.007 at eps = 0.031 (``alpha`` ~ ``0.226 eps``; the package's TRADES default ``eps / 4``
is kept); the natural model's logits not detached, the natural model in training mode; the
robust model also runs the clean batch in training mode at every step, even at beta = 0
(its ``out_natural``), so its BatchNorm running statistics follow the adversarial and then
the clean batch: this module does the same (without a graph when beta = 0). One SGD over
both networks (LR 0.1, momentum 0.9, weight decay 2e-4, batch 128, 100 epochs; LR 0.02 in
the first epoch, x0.1 at epochs 76, 91, 101 (1-based)); WRN-34-10 robust model guided by a
ResNet-18.

Deviations: the natural model has its own SGD (the run's momentum and weight decay, LR
following the run's schedule), equivalent to the code's shared optimizer with two
parameter groups. ``guide="copy"`` (default) makes it a freshly initialised network of the
robust model's own architecture (seeded by the run's seed); ``guide="resnet18"`` (or any
name of :func:`advlit.models.get_model`) builds that network, behind the robust model's
``Normalize`` layer if it has one. Under a framework that only calls :meth:`loss` (LAST),
the natural model receives gradients but is not stepped.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from advlit.methods.base import Batch, step_metrics
from advlit.methods.registry import register
from advlit.methods.trades import TRADES
from advlit.utils import ConfigError


def lbgat_loss(logits_adv: Tensor, logits_guide: Tensor, y: Tensor, gamma: float = 1.0,
               beta: float = 0.0, logits_clean: Tensor | None = None) -> Tensor:
    """``gamma MSE(f_rob(x_adv), f_nat(x)) + CE(f_nat(x), y) [+ beta KL(f_rob(x) || f_rob(x_adv))]``."""
    loss = gamma * F.mse_loss(logits_adv, logits_guide) + F.cross_entropy(logits_guide, y)
    if beta:
        loss = loss + beta * F.kl_div(F.log_softmax(logits_adv, 1), F.softmax(logits_clean, 1),
                                      reduction="batchmean")
    return loss


def _fresh_copy(model: nn.Module, seed: int, device: torch.device) -> nn.Module:
    """A copy of ``model`` with every resettable layer re-initialised under ``seed``
    (without touching the global random streams)."""
    guide = copy.deepcopy(model)
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        for module in guide.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
    return guide


@register("lbgat")
class LBGAT(TRADES):
    """LBGAT with ``gamma`` (MSE weight, 1), ``beta`` (TRADES KL weight, 0) and a natural
    model ``guide`` (``"copy"`` or a model name); see the module docstring."""

    def __init__(self, eps: float, alpha: float | None = None, steps: int = 10, beta: float = 0.0,
                 gamma: float = 1.0, guide: str = "copy"):
        super().__init__(eps, alpha, steps, beta)
        if int(steps) < 1:
            raise ConfigError(f"lbgat: steps must be >= 1, got {steps}")
        if beta < 0 or gamma < 0:
            raise ConfigError(f"lbgat: beta and gamma must be >= 0, got beta={beta}, gamma={gamma}")
        self.gamma = float(gamma)
        self.guide = str(guide)
        self._guide: nn.Module | None = None
        self._guide_optimizer: torch.optim.Optimizer | None = None

    def setup(self, model, optimizer, context):
        super().setup(model, optimizer, context)
        device = context.device
        if self.guide == "copy":
            net = _fresh_copy(model, 10_007 * (context.seed + 1), device)
        else:
            from advlit.models import Normalize, get_model

            devices = [device] if device.type == "cuda" else []
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(10_007 * (context.seed + 1))
                net = get_model(self.guide, context.num_classes, context.input_shape)
            first = next(iter(model.children()), None)
            if isinstance(model, nn.Sequential) and isinstance(first, Normalize):
                net = nn.Sequential(copy.deepcopy(first), net)
        self._guide = net.to(device)
        self._guide_optimizer = torch.optim.SGD(self._guide.parameters(), lr=context.lr_at(0.0),
                                                momentum=context.momentum, weight_decay=context.weight_decay)

    def loss(self, model, batch: Batch, x_adv):
        """The loss of the module docstring. Forwards in the code's order: the robust model on
        ``x_adv`` and on ``x`` (always: its BatchNorm statistics see the clean batch too, as in
        the code; without a graph when ``beta = 0``), then the natural model on ``x``."""
        self._guide.train(model.training)
        logits_adv = model(x_adv)
        if self.beta:
            logits_clean = model(batch.x)
        else:
            with torch.no_grad():
                model(batch.x)  # the code's out_natural: only its BatchNorm statistics count
            logits_clean = None
        logits_guide = self._guide(batch.x)
        return lbgat_loss(logits_adv, logits_guide, batch.y, self.gamma, self.beta, logits_clean), logits_adv

    def step(self, model, optimizer, batch: Batch) -> dict:
        """Both networks step on the joint loss; the natural one with the run's LR schedule."""
        t = (batch.iteration + 1) / self.context.steps_per_epoch
        for group in self._guide_optimizer.param_groups:
            group["lr"] = self.context.lr_at(t)
        x_adv = self.perturb(model, batch)
        loss, logits = self.loss(model, batch, x_adv)
        optimizer.zero_grad(set_to_none=True)
        self._guide_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        self._guide_optimizer.step()
        return step_metrics(loss, logits, batch.y)

    def state_dict(self):
        return {"guide": self._guide.state_dict(), "guide_optimizer": self._guide_optimizer.state_dict()}

    def load_state_dict(self, state):
        if "guide" in state:
            self._guide.load_state_dict(state["guide"])
            self._guide_optimizer.load_state_dict(state["guide_optimizer"])
