"""NuAT: Nuclear-norm regularised single-step adversarial training (Sriramanan, Addepalli,
Baburaj & Babu, NeurIPS 2021, "Towards Efficient and Effective Adversarial Training").

Training objective (clean cross-entropy plus a nuclear-norm penalty on the batch's logit
differences; the authors' README states it as ``l_CE(f(X), Y) + lambda ||f(X~) - f(X)||_*``
and their code divides the norm by the batch size B, the scale of lambda_max below):

    L = CE(f(x), y) + lambda_t * || f(x_adv) - f(x) ||_* / B,

where ``f(x)`` stacks the batch's logits into a B x K matrix and ``||.||_*`` is its nuclear
norm (sum of singular values): penalising it couples the examples of a batch, so one
step's perturbations cannot all move the logits along independent directions. The single-step
attack maximises the README's ``l_CE(f(X + Delta), Y) + lambda ||f(X + Delta) - f(X)||_*``
(with the code's 1/B) at a Bernoulli start and takes one signed step:

    x_0 = x + (eps / 2) * s,  s uniform in {-1, +1}^d
    x_adv = Proj_eps( x_0 + alpha * sign(grad_x [ CE(f(x_0), y) + lambda_t || f(x) - f(x_0) ||_* / B ]) )

Facts from the authors' code (val-iisc/NuAT, ``CIFAR10/NuAT_cifar10.py``), the defaults
here: lambda_max = 4.5 on CIFAR-10, ramped linearly from 0 (``lambda_t = lambda_max *
min(t / T_ramp, 1)`` at epoch t, ``T_ramp = epochs - 10``), so the first epoch trains on
clean CE alone; the Bernoulli start has magnitude 4/255 at eps = 8/255 (``init_ratio =
0.5``) and the attack step is 8/255 (``alpha = eps``); the nuclear term is used in the
attack on every *other* iteration only (the in-epoch counter is odd; ``alternate=True``),
plain CE otherwise; the clean logits of the attack come from a train-mode pass (as here,
without gradient) and the attack itself runs in eval mode; the norm is divided by the
batch size. ResNet-18, batch 64, SGD momentum 0.9, weight decay 5e-4, a cyclic LR peaking
at 0.1 (40 epochs up, 50 down) then /10 twice, 100 epochs in the code's default.

Deviations: the norm is divided by the actual batch size (the code: the nominal batch
size, also for a smaller last batch); the code's LR schedule is not one of the package's
schedules (see :mod:`advlit.experiments.baselines`).
"""
from __future__ import annotations

import torch
from torch import Tensor

from advlit.methods.registry import register
from advlit.methods.regularised_single_step import RegularisedSingleStep, bernoulli_start  # noqa: F401 (re-exported)
from advlit.utils import ConfigError


def nuclear_term(logits_clean: Tensor, logits_adv: Tensor) -> Tensor:
    """``|| f(x_adv) - f(x) ||_* / B``: the nuclear norm of the B x K logit-difference matrix
    divided by the batch size."""
    return torch.linalg.matrix_norm(logits_adv - logits_clean, ord="nuc") / logits_clean.shape[0]


@register("nuat")
class NuAT(RegularisedSingleStep):
    """NuAT with ``lam_max`` (4.5), a linear ramp over ``ramp_epochs`` (``epochs - 10``);
    ``alpha`` (the attack step) defaults to ``eps``. See the module docstring."""

    regulariser = staticmethod(nuclear_term)

    def __init__(self, eps: float, alpha: float | None = None, lam_max: float = 4.5,
                 ramp_epochs: int | None = None, init_ratio: float = 0.5, alternate: bool = True):
        super().__init__(eps, alpha, init_ratio, alternate)
        if lam_max < 0:
            raise ConfigError(f"nuat: lam_max must be >= 0, got {lam_max}")
        if ramp_epochs is not None and int(ramp_epochs) < 0:
            raise ConfigError(f"nuat: ramp_epochs must be >= 0 or None, got {ramp_epochs}")
        self.lam_max = float(lam_max)
        self.ramp_epochs = None if ramp_epochs is None else int(ramp_epochs)

    def lam(self, epoch: int) -> float:
        """lambda_t of epoch ``epoch`` (0-based): a linear ramp from 0 to ``lam_max``."""
        ramp = self.ramp_epochs
        if ramp is None:
            ramp = max(1, (self.context.epochs if self.context else 1) - 10)
        if ramp == 0:
            return self.lam_max
        return self.lam_max * min(epoch / ramp, 1.0)

    def lam_at(self, epoch: int) -> float:
        return self.lam(epoch)
