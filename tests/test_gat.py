"""GAT (Sriramanan et al. 2020): the guided regulariser ||softmax(f(x)) - softmax(f(x'))||^2
(batch mean) by hand, the loss CE(clean) + lambda * term, the lambda boost, and the attack."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from advlit.methods import Batch, build_method
from advlit.methods.gat import guided_term


def test_guided_term_by_hand():
    clean = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    adv = torch.tensor([[math.log(3.0), 0.0], [0.0, 0.0]])  # softmax (3/4, 1/4) against (1/2, 1/2)
    assert guided_term(clean, adv).item() == pytest.approx((0.25 ** 2 + 0.25 ** 2) / 2)


def test_loss_is_clean_ce_plus_lambda_times_the_term_and_lambda_is_boosted():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    method = build_method("gat", 0.1, lam=10.0, boost_epoch=3, boost=4.0)
    x, y = torch.rand(6, 1, 4, 4), torch.randint(0, 3, (6,))
    x_adv = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    p, q = F.softmax(model(x), 1), F.softmax(model(x_adv), 1)
    reg = ((p - q) ** 2).sum(1).mean()
    for epoch, lam in ((2, 10.0), (3, 40.0)):
        loss, _ = method.loss(model, Batch(x, y, torch.arange(6), epoch=epoch), x_adv)
        assert loss.item() == pytest.approx((F.cross_entropy(model(x), y) + lam * reg).item(), rel=1e-6)


def test_attack_stays_in_the_ball_and_moves_the_prediction():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 3))
    x, y = torch.rand(8, 1, 4, 4) * 0.5 + 0.25, torch.randint(0, 3, (8,))
    x_adv = build_method("gat", 0.2).perturb(model, Batch(x, y, torch.arange(8), iteration=1))
    assert (x_adv - x).abs().max() <= 0.2 + 1e-6
    assert guided_term(model(x), model(x_adv)) > guided_term(model(x), model(x + 0.1 * torch.sign(torch.randn_like(x))))


def _expected_attack(model, x, y, start, eps, lam):
    """One signed step of size eps on CE(f(x_0), y) + lam * R(f(x), f(x_0)) from x_0, projected."""
    x0 = start.clone().requires_grad_(True)
    logits = model(x0)
    objective = F.cross_entropy(logits, y) + lam * guided_term(model(x).detach(), logits)
    (grad,) = torch.autograd.grad(objective, x0)
    return torch.min(torch.max(start + eps * grad.sign(), x - eps), x + eps).clamp(0, 1)


def test_the_attack_maximises_ce_plus_the_guided_term_on_odd_iterations_only(monkeypatch):
    """The code's single-step attack: from the Bernoulli start, CE + lambda R on odd in-epoch
    iterations (``alt = counter % 2``), plain CE on even ones; step eps, projected."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 32), nn.Tanh(), nn.Linear(32, 3))
    x, y = torch.rand(8, 1, 4, 4) * 0.5 + 0.25, torch.randint(0, 3, (8,))
    start = x + 0.1 * torch.where(torch.rand_like(x) < 0.5, -1.0, 1.0)
    monkeypatch.setattr("advlit.methods.regularised_single_step.bernoulli_start", lambda x_, m: start)
    method = build_method("gat", 0.2, lam=10.0)
    odd = method.perturb(model, Batch(x, y, torch.arange(8), iteration=1))
    even = method.perturb(model, Batch(x, y, torch.arange(8), iteration=2))
    assert torch.allclose(odd, _expected_attack(model, x, y, start, 0.2, 10.0), atol=1e-6)
    assert torch.allclose(even, _expected_attack(model, x, y, start, 0.2, 0.0), atol=1e-6)
    assert not torch.equal(odd, even)  # the guided term changes the attack here
    always = build_method("gat", 0.2, lam=10.0, alternate=False).perturb(model, Batch(x, y, torch.arange(8), iteration=2))
    assert torch.equal(always, odd)


class ModeRecorder(nn.Module):
    """A linear model with BatchNorm that records the mode of every forward pass."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
        self.modes = []

    def forward(self, x):
        self.modes.append("train" if self.training else "eval")
        return self.net(x)


@pytest.mark.parametrize("name", ["gat", "nuat"])
def test_clean_logits_in_train_mode_and_the_attack_in_eval_mode(name):
    """The authors' code (GAT_cifar10.py, NuAT_cifar10.py): ``out = model(data)`` in train mode,
    then ``model.eval()`` for the attack, then ``model.train()`` for the loss."""
    torch.manual_seed(0)
    model = ModeRecorder().train()
    batch = Batch(torch.rand(8, 1, 4, 4), torch.randint(0, 3, (8,)), torch.arange(8), iteration=1)
    build_method(name, 0.1, **({"ramp_epochs": 0} if name == "nuat" else {})).perturb(model, batch)
    assert model.modes == ["train", "eval"] and model.training
