"""The single-step scheme GAT and NuAT share (Sriramanan, Addepalli, Baburaj & Babu,
NeurIPS 2020 and 2021): a regulariser ``R(f(x), f(x'))`` of the clean and the perturbed
logits enters both the attack and the loss,

    attack:   x_0 = clip_[0,1](x + init_ratio * eps * s),  s uniform in {-1, +1}^d
              x_adv = Proj_eps( x_0 + alpha * sign(grad_x [ CE(f(x_0), y) + lambda_t R(f(x), f(x_0)) ]) )
    loss:     L = CE(f(x), y) + lambda_t R(f(x), f(x_adv))

as in the authors' code (val-iisc/GAMA-GAT ``CIFAR10/GAT_cifar10.py``, val-iisc/NuAT
``CIFAR10/NuAT_cifar10.py``): the clean logits of the attack come from a train-mode pass
(BatchNorm running statistics move; the code keeps its graph, but only the input gradient
is used and the parameter gradients it leaves are zeroed before the update, so here it runs
without gradient), the attack runs in eval mode, the training loss in train mode (the
perturbed pass first, then the clean one), and (``alternate=True``) the regulariser enters
the attack on every other iteration only (the code's ``alt = counter % 2``: odd in-epoch
counter, restarted each epoch; plain CE otherwise). A subclass defines the regulariser
(:meth:`RegularisedSingleStep.regulariser`) and the schedule of lambda
(:meth:`RegularisedSingleStep.lam_at`). Not a method by itself (not registered); see
:mod:`advlit.methods.gat` and :mod:`advlit.methods.nuat`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from advlit.attacks import clamp_to_ball, eval_mode
from advlit.methods.base import Batch, Method
from advlit.utils import ConfigError


def bernoulli_start(x: Tensor, magnitude: float) -> Tensor:
    """``clip_[0,1](x + magnitude * s)`` with ``s`` uniform in {-1, +1}."""
    sign = torch.where(torch.rand_like(x) < 0.5, -1.0, 1.0).to(x)
    return (x + magnitude * sign).clamp(0.0, 1.0)


class RegularisedSingleStep(Method):
    """The shared attack and loss (see the module docstring); ``init_ratio`` scales the
    Bernoulli start (``init_ratio * eps``) and ``alpha`` (the attack step) defaults to ``eps``."""

    def __init__(self, eps: float, alpha: float | None = None, init_ratio: float = 0.5, alternate: bool = True):
        super().__init__(eps, alpha)
        if not 0 <= init_ratio <= 1:
            raise ConfigError(f"{self.name}: init_ratio must lie in [0, 1], got {init_ratio}")
        self.init_ratio = float(init_ratio)
        self.alternate = bool(alternate)
        if self.alpha is None:
            self.alpha = self.eps

    @staticmethod
    def regulariser(logits_clean: Tensor, logits_adv: Tensor) -> Tensor:
        """``R(f(x), f(x'))`` of the clean and the perturbed logits (a scalar); the subclass's."""
        raise NotImplementedError

    def lam_at(self, epoch: int) -> float:
        """lambda of epoch ``epoch`` (0-based); the subclass's."""
        raise NotImplementedError

    def _in_epoch(self, batch: Batch) -> int:
        steps = self.context.steps_per_epoch if self.context else 0
        return batch.iteration - batch.epoch * steps if steps else batch.iteration

    def perturb(self, model, batch: Batch):
        x, y = batch.x, batch.y
        lam = self.lam_at(batch.epoch)
        use_reg = lam > 0 and (not self.alternate or self._in_epoch(batch) % 2 == 1)
        with torch.no_grad():
            logits_clean = model(x)  # a train-mode pass (BatchNorm statistics move), as in the authors' code
        start = bernoulli_start(x, self.init_ratio * self.eps)
        with eval_mode(model):
            start = start.detach().requires_grad_(True)
            logits = model(start)
            objective = F.cross_entropy(logits, y)
            if use_reg:
                objective = objective + lam * self.regulariser(logits_clean, logits)
            (grad,) = torch.autograd.grad(objective, start)
        return clamp_to_ball(start.detach() + self.alpha * grad.sign(), x, self.eps).detach()

    def loss(self, model, batch: Batch, x_adv):
        logits_adv = model(x_adv)
        logits_clean = model(batch.x)
        lam = self.lam_at(batch.epoch)
        return F.cross_entropy(logits_clean, batch.y) + lam * self.regulariser(logits_clean, logits_adv), logits_adv
