"""GAT: Guided Adversarial Training (Sriramanan, Addepalli, Baburaj & Babu, NeurIPS 2020,
"Guided Adversarial Attack for Evaluating and Enhancing Adversarial Defenses"; the
defence part, GAT).

A single-step defence whose attack and loss share a *guided* regulariser, the squared L2
distance between the softmax outputs on the clean and the perturbed input:

    R(x, x') = || softmax(f(x)) - softmax(f(x')) ||_2^2          (mean over the batch)
    attack:   x_0 = x + (eps / 2) s,  s uniform in {-1, +1}^d
              x_adv = Proj_eps( x_0 + alpha * sign(grad_x [ CE(f(x_0), y) + lambda R(x, x_0) ]) )
    loss:     L = CE(f(x), y) + lambda R(x, x_adv)

The regulariser makes the single-step attack find points where the prediction *moves*
(not only where the loss grows), and training then keeps the output smooth around x.

Facts from the authors' code (val-iisc/GAMA-GAT, ``CIFAR10/GAT_cifar10.py``), the defaults
here: lambda = 10; the Bernoulli start has magnitude 4/255 at eps = 8/255 (``init_ratio =
0.5``) and the attack step is 8/255 (``alpha = eps``); the regulariser enters the attack on
every other iteration only (odd in-epoch counter; ``alternate=True``); the clean softmax
of the attack comes from a train-mode pass and the attack runs in eval mode. ResNet-18,
batch 64, SGD LR 0.1 (momentum 0.9, weight decay 5e-4) divided by 10 after epochs 70 and
85 of 100, and lambda multiplied by 4 after epoch 85 (the code's default; here a named
option, ``boost_epoch=86``, ``boost=4``, off by default, as its epoch depends on the run's
length). The training loss uses the *clean* cross-entropy, as in the code.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from advlit.methods.registry import register
from advlit.methods.regularised_single_step import RegularisedSingleStep
from advlit.utils import ConfigError


def guided_term(logits_clean: Tensor, logits_adv: Tensor) -> Tensor:
    """``mean_i || softmax(f(x_i)) - softmax(f(x'_i)) ||_2^2`` (GAT's regulariser)."""
    return (F.softmax(logits_clean, 1) - F.softmax(logits_adv, 1)).pow(2).sum(1).mean()


@register("gat")
class GAT(RegularisedSingleStep):
    """GAT with ``lam`` (10); ``alpha`` (the attack step) defaults to ``eps``; from epoch
    ``boost_epoch`` (0-based, None: never) lambda is multiplied by ``boost``."""

    regulariser = staticmethod(guided_term)

    def __init__(self, eps: float, alpha: float | None = None, lam: float = 10.0, init_ratio: float = 0.5,
                 alternate: bool = True, boost_epoch: int | None = None, boost: float = 4.0):
        super().__init__(eps, alpha, init_ratio, alternate)
        if lam < 0 or boost < 0:
            raise ConfigError(f"gat: lam and boost must be >= 0, got lam={lam}, boost={boost}")
        self.lam = float(lam)
        self.boost_epoch = None if boost_epoch is None else int(boost_epoch)
        self.boost = float(boost)

    def lam_at(self, epoch: int) -> float:
        boosted = self.boost_epoch is not None and epoch >= self.boost_epoch
        return self.lam * (self.boost if boosted else 1.0)
