"""DyART: Dynamics-Aware Robust Training (Xu, Sun, Goldblum, Goldstein & Huang, ICLR 2023,
"Exploring and Exploiting Decision Boundary Dynamics for Adversarial Robustness",
https://openreview.net/forum?id=aRTKuscKByJ, arXiv 2302.03015).

Instead of training on adversarial examples, DyART directly increases the *robust radius*
``R(x)`` of correctly classified points, i.e. the (L-inf) distance from ``x`` to its closest
point ``x_b`` on the decision boundary ``{phi = 0}``, where ``phi`` is a soft logit margin:

    phi(x) = z_y(x) - (1/T) log sum_{k != y} exp(T z_k(x))           (T: temperature).

The speed at which training moves the boundary at ``x_b`` gives the paper's closed form of
the decision-boundary dynamics, ``dR/dtheta = (d phi(x_b)/d theta) / || grad_x phi(x_b) ||_1``
(the dual norm of L-inf). DyART increases ``sum_i h(R_i)`` for an increasing, concave ``h``
(the code's ``h_prime`` is its slope ``h'``, non-increasing, so the points with the
*smallest* radii weigh most), whose gradient ``sum_i h'(R_i) dR_i/dtheta`` is that of

    L = CE(f(x), y) + lambda * (1/B) sum_{i in boundary} w_i * ( -phi(x_b,i) ),
    w_i = h'(R_i) / || grad_x phi(x_b,i) ||_1   (a constant),   h'(r) = exp(-a r) 1[r < r_0].

``x_b`` is searched only for points with ``phi(x) > 0``; points where the search fails add
nothing.

The paper's own text (its equations, algorithm and appendix settings) could not be read
for this package: only its abstract was available. What follows is checked against the
authors' code (Yuancheng-Xu/Dynamics-Aware-Robust-Training, now umd-huang-lab/...):
``core/DyART/DyART_Linf.py`` (the loss above: clean CE over the whole batch plus
``lam_robust`` times ``-(1/B) sum w_i phi(x_b,i)``, the weights not normalised, ``B`` the
whole batch), ``core/DyART/FAB/FAB_scalar_boundary.py``, ``core/utils_gowal21/watrain.py``,
``parser.py`` and ``scripts/Cifar10_DyART.sh``, ``scripts/Cifar10_clean_training.sh``. The
defaults here are the CIFAR-10 script's: lambda = 1000, T = 5, a = 3, r_0 = 16/255, 20
boundary-search iterations, gradient-norm clipping at 0.1. The boundary search, the weights'
input gradient and the check ``phi(x) > 0`` run in eval mode; the forward pass of the
boundary term runs in training mode (on the boundary points alone), as does the clean CE.
WRN-28-10 (Swish) on CIFAR-10, batch 256, SGD LR 0.1 (Nesterov momentum 0.9, weight decay
5e-4 except on BatchNorm parameters) with a warm-up cosine schedule over 200 epochs,
starting from the weight-averaged model after 10 epochs of clean training; that clean
burn-in (``clean_epochs`` here) is trained without gradient clipping (its script sets no
``--clip_grad``), so clipping applies to the DyART epochs only.

Deviations: the closest boundary point is found by the code with FAB (the box-constrained
L-inf projection with biased and backward steps, adapted to ``phi``, from a random start at
L-inf distance ``eps_FAB / 2 = 4/255``); here by the same core step without the box-aware
projection, the biased and backward steps and the random start: the linearised L-inf
projection onto ``{phi = 0}`` (``x <- clip_[0,1](x - eta phi / ||grad phi||_1 sign(grad phi))``,
overshoot ``eta = 1.05``, FAB's), from ``x``, repeated until ``phi < 0``, followed by a
bisection on the segment from ``x`` (``bisect`` steps) that puts ``x_b`` just across the
boundary. So ``x_b`` is a boundary point along the search path, not always the locally
closest one; of the code's "high-quality" filters only ``phi(x_b) > -0.3`` is applied. The
clean warm start is ``clean_epochs`` epochs of CE training inside the run (default 0). The
code's weight averaging (an EMA of the weights, decay 0.995, which it evaluates and selects)
is not part of a method (see :mod:`advlit.experiments.baselines`).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from advlit.attacks import eval_mode
from advlit.methods.base import Batch, Method, step_metrics
from advlit.methods.registry import register
from advlit.utils import ConfigError


def soft_margin(logits: Tensor, y: Tensor, temperature: float) -> Tensor:
    """``z_y - (1/T) logsumexp_{k != y}(T z_k)`` per example."""
    others = logits.scatter(1, y[:, None], float("-inf"))
    return logits.gather(1, y[:, None]).squeeze(1) - torch.logsumexp(temperature * others, 1) / temperature


def margin_and_gradient(model: nn.Module, x: Tensor, y: Tensor, temperature: float) -> tuple[Tensor, Tensor]:
    """``(phi(x), grad_x phi(x))`` per example (detached)."""
    x = x.detach().requires_grad_(True)
    phi = soft_margin(model(x), y, temperature)
    (grad,) = torch.autograd.grad(phi.sum(), x)
    return phi.detach(), grad.detach()


def boundary_points(model: nn.Module, x: Tensor, y: Tensor, temperature: float = 5.0, iters: int = 20,
                    overshoot: float = 1.05, bisect: int = 10) -> tuple[Tensor, Tensor]:
    """``(x_b, found)``: for each example with ``phi(x) > 0``, a point just across ``{phi = 0}``
    reached by linearised L-inf projections and a bisection (see the module docstring);
    ``found`` marks the examples where ``phi(x_b) <= 0`` was reached."""
    phi0, _ = margin_and_gradient(model, x, y, temperature)
    z = x.clone()
    active = phi0 > 0
    for _ in range(iters):
        if not bool(active.any()):
            break
        phi, grad = margin_and_gradient(model, z, y, temperature)
        active = active & (phi > 0)
        norm = grad.flatten(1).abs().sum(1).clamp_min(1e-12)
        step = -(overshoot * phi / norm).view(-1, *([1] * (x.dim() - 1))) * grad.sign()
        z = torch.where(active.view(-1, *([1] * (x.dim() - 1))), (z + step).clamp(0.0, 1.0), z)
    with torch.no_grad():
        found = (phi0 > 0) & (soft_margin(model(z), y, temperature) <= 0)
        lo, hi = torch.zeros_like(phi0), torch.ones_like(phi0)
        shape = (-1, *([1] * (x.dim() - 1)))
        for _ in range(bisect):
            mid = (lo + hi) / 2
            crossed = soft_margin(model(x + mid.view(shape) * (z - x)), y, temperature) <= 0
            hi = torch.where(crossed, mid, hi)
            lo = torch.where(crossed, lo, mid)
        x_b = x + hi.view(shape) * (z - x)
    return x_b.detach(), found


def radius_weights(radius: Tensor, grad_norm_l1: Tensor, a: float, r0: float) -> Tensor:
    """``h'(R) / ||grad_x phi(x_b)||_1`` with ``h'(r) = exp(-a r) 1[r < r0]``."""
    return torch.exp(-a * radius) * (radius < r0).to(radius) / grad_norm_l1.clamp_min(1e-12)


def dyart_term(model: nn.Module, x_b: Tensor, y: Tensor, weights: Tensor, batch_size: int,
               temperature: float) -> Tensor:
    """``(1/B) sum_i w_i (-phi(x_b,i))``: its parameter gradient is ``-(1/B) sum_i h'(R_i) dR_i/dtheta``."""
    if x_b.shape[0] == 0:
        return x_b.new_zeros(())
    return (weights * -soft_margin(model(x_b), y, temperature)).sum() / batch_size


@register("dyart")
class DyART(Method):
    """DyART (L-inf); see the module docstring for the terms and every default."""

    def __init__(self, eps: float, alpha: float | None = None, lam: float = 1000.0, temperature: float = 5.0,
                 a: float = 3.0, r0: float | None = 16 / 255, iters: int = 20, bisect: int = 10,
                 clip_grad: float | None = 0.1, clean_epochs: int = 0, max_phi: float = 0.3):
        super().__init__(eps, alpha)
        if lam < 0 or temperature <= 0 or a < 0:
            raise ConfigError(f"dyart: lam and a must be >= 0 and temperature > 0, got {lam}, {a}, {temperature}")
        if r0 is not None and r0 <= 0:
            raise ConfigError(f"dyart: r0 must be positive or None, got {r0}")
        if int(iters) < 1 or int(bisect) < 0 or int(clean_epochs) < 0:
            raise ConfigError(f"dyart: iters must be >= 1, bisect and clean_epochs >= 0, got {iters}, {bisect}, "
                              f"{clean_epochs}")
        if clip_grad is not None and clip_grad <= 0:
            raise ConfigError(f"dyart: clip_grad must be positive or None, got {clip_grad}")
        self.lam, self.temperature, self.a = float(lam), float(temperature), float(a)
        self.r0 = None if r0 is None else float(r0)
        self.iters, self.bisect = int(iters), int(bisect)
        self.clip_grad = None if clip_grad is None else float(clip_grad)
        self.clean_epochs = int(clean_epochs)
        self.max_phi = float(max_phi)

    def perturb(self, model, batch: Batch):
        """The boundary points of the correctly classified examples (others: ``x``)."""
        with eval_mode(model):
            x_b, _ = boundary_points(model, batch.x, batch.y, self.temperature, self.iters, bisect=self.bisect)
        return x_b

    def boundary_term(self, model, batch: Batch, x_b: Tensor) -> Tensor:
        """The weighted boundary term of the loss (weights from the eval-mode gradient at ``x_b``)."""
        x, y = batch.x, batch.y
        with eval_mode(model):
            phi, grad = margin_and_gradient(model, x_b, y, self.temperature)
            phi_x = soft_margin(model(x), y, self.temperature).detach()
        keep = (phi_x > 0) & (phi <= 0) & (phi > -self.max_phi)
        radius = (x_b - x).flatten(1).abs().amax(1)
        r0 = math.inf if self.r0 is None else self.r0
        w = radius_weights(radius[keep], grad.flatten(1).abs().sum(1)[keep], self.a, r0)
        return dyart_term(model, x_b[keep], y[keep], w, len(y), self.temperature)

    def loss(self, model, batch: Batch, x_adv):
        logits = model(batch.x)
        loss = F.cross_entropy(logits, batch.y)
        if batch.epoch >= self.clean_epochs and self.lam > 0:
            loss = loss + self.lam * self.boundary_term(model, batch, x_adv)
        return loss, logits

    def step(self, model, optimizer, batch: Batch) -> dict:
        """One update; in the clean epochs plain CE without gradient clipping (the code's clean
        burn-in script sets no ``--clip_grad``)."""
        dyart = batch.epoch >= self.clean_epochs
        x_b = self.perturb(model, batch) if dyart else batch.x
        loss, logits = self.loss(model, batch, x_b)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.clip_grad is not None and dyart:
            nn.utils.clip_grad_norm_(model.parameters(), self.clip_grad)
        optimizer.step()
        return step_metrics(loss, logits, batch.y)
