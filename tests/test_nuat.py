"""NuAT (Sriramanan et al. 2021): the nuclear-norm term ||f(x_adv) - f(x)||_* / B by hand,
the loss CE(clean) + lambda_t * term, lambda's linear ramp, and the Bernoulli-start attack."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from advlit.methods import Batch, TrainContext, build_method
from advlit.methods.nuat import nuclear_term


def test_nuclear_term_by_hand():
    clean = torch.zeros(2, 3)
    adv = torch.tensor([[3.0, 0.0, 0.0], [0.0, -4.0, 0.0]])  # singular values 3 and 4
    assert nuclear_term(clean, adv).item() == pytest.approx((3 + 4) / 2)  # Frobenius would give 5 / 2
    u, v = torch.tensor([1.0, 2.0, 2.0]), torch.tensor([3.0, 4.0])  # rank one: ||u v^T||_* = |u| |v|
    assert nuclear_term(torch.ones(3, 2), torch.ones(3, 2) + torch.outer(u, v)).item() == pytest.approx(3 * 5 / 3)


def _context(epochs):
    return TrainContext(num_examples=8, input_shape=(1, 4, 4), num_classes=3, epochs=epochs, steps_per_epoch=2,
                        device=torch.device("cpu"))


def test_lambda_ramps_linearly_to_lam_max_over_epochs_minus_ten():
    method = build_method("nuat", 8 / 255)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    method.setup(model, torch.optim.SGD(model.parameters(), lr=0.1), _context(30))
    assert [method.lam(e) for e in (0, 10, 20, 29)] == pytest.approx([0.0, 2.25, 4.5, 4.5])
    assert build_method("nuat", 0.1, ramp_epochs=0).lam(0) == 4.5


def test_loss_is_clean_ce_plus_lambda_times_the_nuclear_term():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    method = build_method("nuat", 0.1, ramp_epochs=4)
    method.setup(model, torch.optim.SGD(model.parameters(), lr=0.1), _context(10))
    x, y = torch.rand(6, 1, 4, 4), torch.randint(0, 3, (6,))
    x_adv = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    loss, logits = method.loss(model, Batch(x, y, torch.arange(6), epoch=2), x_adv)
    clean, adv = model(x), model(x_adv)
    s = torch.linalg.svdvals(adv - clean).sum() / 6
    assert loss.item() == pytest.approx((F.cross_entropy(clean, y) + 4.5 * 2 / 4 * s).item(), rel=1e-6)
    assert torch.equal(logits, adv)


def test_attack_is_one_step_from_a_bernoulli_start():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    method = build_method("nuat", 0.1)
    x = torch.rand(6, 1, 4, 4) * 0.5 + 0.25
    x_adv = method.perturb(model, Batch(x, torch.randint(0, 3, (6,)), torch.arange(6)))
    d = x_adv - x
    assert d.abs().max() <= 0.1 + 1e-6
    # start +-eps/2, step eps, projection: every coordinate ends at +-eps or +-eps/2... never inside (-eps/2, eps/2)
    assert (d.abs() >= 0.05 - 1e-6).all()


def test_the_attack_maximises_ce_plus_lambda_times_the_nuclear_term_on_odd_iterations(monkeypatch):
    """The code's NucAttack: from the Bernoulli start, CE + lambda_t ||f(x) - f(x_0)||_* / B on
    odd in-epoch iterations, plain CE on even ones; step eps, projected to the ball and [0, 1]."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 32), nn.Tanh(), nn.Linear(32, 3))
    method = build_method("nuat", 0.2, lam_max=4.5, ramp_epochs=4)
    context = TrainContext(num_examples=24, input_shape=(1, 4, 4), num_classes=3, epochs=10, steps_per_epoch=3,
                           device=torch.device("cpu"))
    method.setup(model, torch.optim.SGD(model.parameters(), lr=0.1), context)
    x, y = torch.rand(8, 1, 4, 4) * 0.5 + 0.25, torch.randint(0, 3, (8,))
    start = x + 0.1 * torch.where(torch.rand_like(x) < 0.5, -1.0, 1.0)
    monkeypatch.setattr("advlit.methods.regularised_single_step.bernoulli_start", lambda x_, m: start)

    def expected(lam):
        x0 = start.clone().requires_grad_(True)
        logits = model(x0)
        objective = F.cross_entropy(logits, y) + lam * torch.linalg.svdvals(logits - model(x).detach()).sum() / 8
        (grad,) = torch.autograd.grad(objective, x0)
        return torch.min(torch.max(start + 0.2 * grad.sign(), x - 0.2), x + 0.2).clamp(0, 1)

    # 3 steps an epoch: global iteration 4 is iteration 1 of epoch 1 (the counter restarts each epoch; lambda = 4.5 / 4)
    odd = method.perturb(model, Batch(x, y, torch.arange(8), epoch=1, iteration=4))
    even = method.perturb(model, Batch(x, y, torch.arange(8), epoch=1, iteration=3))
    assert torch.allclose(odd, expected(4.5 / 4), atol=1e-6)
    assert torch.allclose(even, expected(0.0), atol=1e-6)
    assert not torch.equal(odd, even)  # the nuclear term changes the attack here
