"""RAT: Randomized Adversarial Training via Taylor expansion (Jin, Yi, Wu, Mu & Huang, CVPR
2023), the "RAT" of PIAT's Tables I-II (PIAT ref. [30]).

RAT treats the weights as random, ``w + u`` with a small Gaussian ``u``, and trains TRADES
on the *expected* loss over ``u``, which a Taylor expansion around ``w`` turns into the
deterministic loss plus a first-order and a second-order term in the loss gradient; the
smoothing of the weights flattens the loss landscape (the paper's analysis). In the
authors' code (Alexkael/Randomized-Adversarial-Training,
``TRADES_first_second/trades_first_second.py``), which this module follows, that becomes:

1. **Randomised attack.** TRADES's KL attack (eval mode, ``x + 0.001 N(0, I)`` start) on the
   model with Gaussian noise of std ``sigma`` (1e-4) added to the convolution weights.
2. **Taylor terms from the last layer.** With ``G_nat``, ``G_adv`` the gradients of the
   clean and the adversarial CE with respect to the last linear layer's weight (K x d),
   ``t1 = |G 1|`` (first order) and ``t2 = (G 1)^2`` (second order) are K-vectors (``1``
   sums each class row). A gap vector ``v`` (e.g. ``t1_nat - t1_adv``) becomes a K x K
   table of soft labels: row ``k`` puts ``1 - c`` on class ``k`` and spreads ``c`` over the
   other classes in proportion to ``v - min v``; ``c = 1 - 2/K`` (0.8 for 10 classes, 0.98
   for 100: the code's constants).
3. **Loss.** With ``S(v)[y]`` the rows of the labels and ``KL(q || f)`` the batch-mean KL
   divergence of the softmax output from ``q``:

       L = (1 - alpha) CE(f(x), y) + beta KL(f(x) || f(x_adv))
           + alpha   * 1/2 [ KL(S(t1_nat - t1_adv)[y] || f(x_adv)) + KL(S(t1_adv - t1_nat)[y] || f(x)) ]
           + alpha/2 * 1/2 [ KL(S(t2_nat - t2_adv)[y] || f(x_adv)) + KL(S(t2_adv - t2_nat)[y] || f(x)) ]

   with alpha = 0.2 and TRADES's beta = 6.

Defaults (the code): 10 attack steps of 2/255 at 8/255 (``alpha_step = eps / 4``; the
package's ``alpha`` is that step, the Taylor weight is ``taylor``), WRN-34-10, SGD LR 0.1
(momentum 0.9, weight decay 5e-4) divided by 10 from epochs 100 and 150 (1-based; 99 and 149
0-based) of 200, batch 128. PIAT (Sec. V-A) trains its RAT baseline in its own common
setting (ResNet-18 / WRN-32-10, 120 / 180 epochs, linearly decayed LR, PGD-10 with step
2/255 at 8/255, TRADES's beta = 6) and states no RAT-specific value.

Deviations and choices: the paper's equations could not be consulted here; the terms
are the code's. The code builds *both* second-order labels from ``t2_adv - t2_nat`` (its
``tl2_gap`` is computed but unused); the default (``second_order="symmetric"``) uses
``t2_nat - t2_adv`` for the adversarial term, mirroring the first-order pair, and
``second_order="code"`` reproduces the code. Noise is added to every convolution's
parameters (the code: parameters whose name contains ``conv``) and removed again exactly.
A gap vector without spread gives uniform off-diagonal labels (the code divides by zero).
The code runs the training-mode network eight times per step (twice for the gradients, six
times for the loss terms, alternating clean and adversarial batches), so its BatchNorm
running statistics take eight updates per step; this module forwards each batch once (two
updates), the values of the loss being the same.
The AWP-based variant of the code (``AWP_first_second``) is not implemented.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from advlit.methods.base import Batch
from advlit.methods.registry import register
from advlit.methods.trades import TRADES
from advlit.utils import ConfigError

SECOND_ORDER = ("symmetric", "code")


def last_linear(model: nn.Module) -> nn.Linear:
    """The model's last ``nn.Linear`` (the classifier whose weight gradient RAT reads)."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ConfigError("rat: the model has no nn.Linear layer (RAT reads the last one's weight gradient)")
    return linears[-1]


def gap_labels(gap: Tensor) -> Tensor:
    """The K x K soft-label table of a gap vector: row ``k`` is ``1 - c`` on ``k`` and ``c``
    spread over the other classes in proportion to ``gap - min(gap)``, ``c = 1 - 2/K``."""
    k = gap.numel()
    c = 1.0 - 2.0 / k
    spread = gap - gap.min()
    table = spread.expand(k, k).clone()
    table.fill_diagonal_(0.0)
    rows = table.sum(1, keepdim=True)
    uniform = (1.0 - torch.eye(k, device=gap.device, dtype=gap.dtype)) / max(k - 1, 1)
    table = torch.where(rows > 0, table / rows.clamp_min(1e-30), uniform)
    return c * table + (1.0 - c) * torch.eye(k, device=gap.device, dtype=gap.dtype)


def soft_kl(logits: Tensor, target: Tensor) -> Tensor:
    """``KL(target || softmax(logits))`` summed over classes, averaged over the batch."""
    return F.kl_div(F.log_softmax(logits, 1), target, reduction="batchmean")


def taylor_terms(grad_nat: Tensor, grad_adv: Tensor) -> dict[str, Tensor]:
    """The K-vectors of the first (``|G 1|``) and second (``(G 1)^2``) order terms of the
    last-layer weight gradients."""
    s_nat, s_adv = grad_nat.sum(1), grad_adv.sum(1)
    return {"t1_nat": s_nat.abs(), "t1_adv": s_adv.abs(), "t2_nat": s_nat ** 2, "t2_adv": s_adv ** 2}


def rat_loss(logits_nat: Tensor, logits_adv: Tensor, y: Tensor, grad_nat: Tensor, grad_adv: Tensor,
             taylor: float = 0.2, beta: float = 6.0, second_order: str = "symmetric") -> Tensor:
    """RAT's loss from the logits and the last-layer gradients (see the module docstring)."""
    t = taylor_terms(grad_nat.detach(), grad_adv.detach())
    first_adv = gap_labels(t["t1_nat"] - t["t1_adv"])[y]
    first_nat = gap_labels(t["t1_adv"] - t["t1_nat"])[y]
    second_nat = gap_labels(t["t2_adv"] - t["t2_nat"])[y]
    second_adv = second_nat if second_order == "code" else gap_labels(t["t2_nat"] - t["t2_adv"])[y]
    first = 0.5 * (soft_kl(logits_adv, first_adv) + soft_kl(logits_nat, first_nat))
    second = 0.5 * (soft_kl(logits_adv, second_adv) + soft_kl(logits_nat, second_nat))
    robust = F.kl_div(F.log_softmax(logits_adv, 1), F.softmax(logits_nat, 1), reduction="batchmean")
    return (1 - taylor) * F.cross_entropy(logits_nat, y) + taylor * first + 0.5 * taylor * second + beta * robust


@register("rat")
class RAT(TRADES):
    """RAT on TRADES: randomised-weight attack (``sigma``), Taylor terms weighted by
    ``taylor`` (0.2), TRADES ``beta`` (6); the attack step ``alpha`` defaults to ``eps / 4``."""

    def __init__(self, eps: float, alpha: float | None = None, steps: int = 10, beta: float = 6.0,
                 taylor: float = 0.2, sigma: float = 1e-4, second_order: str = "symmetric"):
        super().__init__(eps, alpha, steps, beta)
        if int(steps) < 1:
            raise ConfigError(f"rat: steps must be >= 1, got {steps}")
        if not 0 <= taylor <= 1 or beta < 0 or sigma < 0:
            raise ConfigError(f"rat: taylor must lie in [0, 1], beta and sigma be >= 0, got {taylor}, {beta}, {sigma}")
        if second_order not in SECOND_ORDER:
            raise ConfigError(f"rat: second_order must be one of {SECOND_ORDER}, got {second_order!r}")
        self.taylor = float(taylor)
        self.sigma = float(sigma)
        self.second_order = second_order

    def perturb(self, model, batch: Batch):
        """TRADES's attack on the model with Gaussian noise on its convolution parameters."""
        noisy = [p for m in model.modules() if isinstance(m, nn.modules.conv._ConvNd) for p in m.parameters()]
        saved = [p.detach().clone() for p in noisy]
        with torch.no_grad():
            for p in noisy:
                p.add_(self.sigma * torch.randn_like(p))
        try:
            return super().perturb(model, batch)
        finally:
            with torch.no_grad():
                for p, original in zip(noisy, saved):
                    p.copy_(original)

    def loss(self, model, batch: Batch, x_adv):
        y = batch.y
        weight = last_linear(model).weight
        logits_nat = model(batch.x)
        logits_adv = model(x_adv)
        (grad_nat,) = torch.autograd.grad(F.cross_entropy(logits_nat, y), weight, retain_graph=True)
        (grad_adv,) = torch.autograd.grad(F.cross_entropy(logits_adv, y), weight, retain_graph=True)
        loss = rat_loss(logits_nat, logits_adv, y, grad_nat, grad_adv, self.taylor, self.beta, self.second_order)
        return loss, logits_adv
