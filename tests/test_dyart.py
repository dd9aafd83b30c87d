"""DyART (Xu et al. 2023): the boundary search finds the L-inf distance to {phi = 0} of a
linear model (phi / ||w||_1), and the dynamics term equals (1/B) sum_i w_i (-phi(x_b,i)) with
w_i = exp(-a R_i) 1[R_i < r0] / ||grad_x phi(x_b,i)||_1 by hand."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from advlit.methods import Batch, build_method
from advlit.methods.dyart import boundary_points, soft_margin


class TwoClassLinear(nn.Module):
    """Logits (w . x + b, 0): for label 0 the soft margin is exactly w . x + b."""

    def __init__(self, w, b):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w))
        self.b = nn.Parameter(torch.tensor(b))

    def forward(self, x):
        z = x.flatten(1) @ self.w + self.b
        return torch.stack([z, torch.zeros_like(z)], 1)


W, B = [1.0, -2.0, 0.5, 0.5], -0.1  # ||w||_1 = 4


def _batch():
    x = torch.tensor([[0.6, 0.3, 0.5, 0.5],   # phi = 0.4 -> R = 0.1
                      [0.7, 0.2, 0.6, 0.5],   # phi = 0.75 -> R = 0.1875
                      [0.9, 0.1, 0.9, 0.9],   # phi = 1.5 -> R = 0.375 > r0: weight 0
                      [0.2, 0.5, 0.5, 0.5]])  # phi = -0.4: misclassified, no boundary point
    return Batch(x.view(4, 1, 2, 2), torch.zeros(4, dtype=torch.long), torch.arange(4))


def test_soft_margin_and_the_boundary_distance_of_a_linear_model():
    model, batch = TwoClassLinear(W, B), _batch()
    phi = soft_margin(model(batch.x), batch.y, 5.0)
    assert phi.tolist() == pytest.approx([0.4, 0.75, 1.5, -0.4], abs=1e-6)
    logits = torch.tensor([[1.0, 0.5, 2.0]])
    assert soft_margin(logits, torch.tensor([0]), 5.0).item() == pytest.approx(
        1.0 - math.log(math.exp(2.5) + math.exp(10.0)) / 5)
    x_b, found = boundary_points(model, batch.x, batch.y, temperature=5.0, iters=20, bisect=30)
    assert found.tolist() == [True, True, True, False]
    radius = (x_b - batch.x).flatten(1).abs().amax(1)
    assert radius[:3].tolist() == pytest.approx([0.1, 0.1875, 0.375], abs=1e-5)
    assert soft_margin(model(x_b[:3]), batch.y[:3], 5.0).abs().max() < 1e-5


def test_dynamics_term_by_hand():
    model, batch = TwoClassLinear(W, B), _batch()
    a, r0, lam = 3.0, 0.3, 2.0
    method = build_method("dyart", 0.1, lam=lam, a=a, r0=r0, iters=20, bisect=30)
    x_b = method.perturb(model, batch)
    term = method.boundary_term(model, batch, x_b)
    phi_b = soft_margin(model(x_b), batch.y, 5.0).detach()
    expected = sum(math.exp(-a * r) / 4.0 * -phi_b[i].item() for i, r in enumerate([0.1, 0.1875])) / 4
    assert term.item() == pytest.approx(expected, rel=1e-3, abs=1e-9)
    # its parameter gradient: -(1/B) sum_i h'(R_i) / ||w||_1 * d phi(x_b,i) / d theta (increases the radii)
    g_w, g_b = torch.autograd.grad(term, [model.w, model.b])
    h = [math.exp(-a * r) / 4.0 for r in (0.1, 0.1875)]
    want_w = -sum(h[i] * x_b[i].flatten() for i in range(2)) / 4
    assert torch.allclose(g_w, want_w, atol=1e-5) and g_b.item() == pytest.approx(-sum(h) / 4, rel=1e-4)
    loss, _ = method.loss(model, batch, x_b)
    ce = nn.functional.cross_entropy(model(batch.x), batch.y)
    assert loss.item() == pytest.approx(ce.item() + lam * term.item(), rel=1e-5)


class ModeLog(TwoClassLinear):
    """The linear model, recording per forward pass whether it ran in training mode."""

    def __init__(self, w, b):
        super().__init__(w, b)
        self.modes: list[bool] = []

    def forward(self, x):
        self.modes.append(self.training)
        return super().forward(x)


def test_search_in_eval_mode_boundary_term_and_ce_in_training_mode():
    """The code finds x_b and the weights' input gradient in eval mode, then back in training
    mode evaluates phi(x_b) (the term's forward pass) and the clean CE."""
    model, batch = ModeLog(W, B), _batch()
    method = build_method("dyart", 0.1, r0=0.3, iters=20, bisect=5)
    model.train()
    x_b = method.perturb(model, batch)
    assert model.modes and not any(model.modes) and model.training
    model.modes.clear()
    method.boundary_term(model, batch, x_b)
    assert model.modes[-1] and not any(model.modes[:-1])  # weights (eval), then the term (training)
    model.modes.clear()
    method.loss(model, batch, x_b)
    assert model.modes[0] and model.modes[-1]  # the clean CE and the term in training mode


def test_clean_epochs_train_plain_ce_without_clipping():
    """Before ``clean_epochs`` the step is CE on x with the unclipped gradient (the code's clean
    burn-in has no --clip_grad); afterwards the boundary term joins and the gradient norm is
    clipped to ``clip_grad``."""
    batch = _batch()
    model = TwoClassLinear([4.0, -8.0, 2.0, 2.0], 0.0)  # a CE gradient of norm about 0.3, above the clip
    method = build_method("dyart", 0.1, clean_epochs=1, clip_grad=0.1, r0=0.3)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    start = [p.detach().clone() for p in model.parameters()]
    ce = nn.functional.cross_entropy(model(batch.x), batch.y)
    clean = Batch(batch.x, batch.y, batch.idx, epoch=0)
    assert method.loss(model, clean, method.perturb(model, batch))[0].item() == pytest.approx(ce.item())
    want = torch.autograd.grad(ce, list(model.parameters()))
    row = method.step(model, opt, Batch(batch.x, batch.y, batch.idx, epoch=0))
    assert row["loss"] == pytest.approx(ce.item(), rel=1e-6)
    for p, p0, g in zip(model.parameters(), start, want):
        assert torch.allclose(p0 - p.detach(), g, atol=1e-6)
    assert torch.cat([g.flatten() for g in want]).norm() > 0.2  # twice the clip
    start = [p.detach().clone() for p in model.parameters()]
    method.step(model, opt, Batch(batch.x, batch.y, batch.idx, epoch=1))
    moved = torch.cat([(p0 - p.detach()).flatten() for p, p0 in zip(model.parameters(), start)])
    assert moved.norm() == pytest.approx(0.1, rel=1e-4)
