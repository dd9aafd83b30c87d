"""GradAlign (FGSM-GA) and Free-AT."""
import math

import pytest
import torch
from torch import nn

from advlit.methods import Batch, build_method
from advlit.methods.gradalign import gradalign_lambda, gradient_alignment
from advlit.train import Trainer
from helpers import strip_times, tiny_config


def test_lambda_rule_of_the_authors():
    assert gradalign_lambda(8 / 255) == pytest.approx(0.2)
    assert gradalign_lambda(16 / 255) == pytest.approx(2.0)
    assert build_method("gradalign", 8 / 255).lam == pytest.approx(0.2)
    m = build_method("gradalign", 8 / 255, lam=0.5)
    assert m.lam == 0.5 and m.alpha == pytest.approx(1.25 * 8 / 255)


def test_alignment_is_zero_for_a_linear_model_and_positive_otherwise():
    torch.manual_seed(0)
    x = torch.rand(8, 1, 4, 4)
    y = torch.randint(0, 3, (8,))
    linear = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    # CE of a linear model still has a (softmax) curvature, but tiny eps keeps the gradients aligned
    assert gradient_alignment(linear, x, y, 1e-4).item() == pytest.approx(0.0, abs=1e-5)
    bumpy = nn.Sequential(nn.Flatten(), nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 3))
    reg = gradient_alignment(bumpy, x, y, 0.5)
    assert reg.item() > 0 and reg.requires_grad
    reg.backward()  # double backpropagation reaches the parameters
    assert bumpy[1].weight.grad is not None and bumpy[1].weight.grad.abs().sum() > 0


def test_gradalign_loss_adds_the_regulariser():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 3))
    x, y = torch.rand(8, 1, 4, 4), torch.randint(0, 3, (8,))
    batch = Batch(x, y, torch.arange(8))
    plain = build_method("gradalign", 0.2, lam=0.0)
    strong = build_method("gradalign", 0.2, lam=10.0)
    x_adv = plain.perturb(model, batch)
    ce, _ = plain.loss(model, batch, x_adv)
    torch.manual_seed(1)
    total, _ = strong.loss(model, batch, x_adv)
    assert total.item() > ce.item()
    assert (x_adv - x).abs().max() <= 0.2 + 1e-6


def test_free_at_replays_each_batch_and_keeps_its_perturbation():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    m = build_method("free_at", 0.2, replays=3)
    assert m.alpha == pytest.approx(0.2)
    steps = []
    orig = opt.step
    opt.step = lambda *a, **k: (steps.append(1), orig(*a, **k))[1]
    x, y = torch.rand(8, 1, 4, 4), torch.randint(0, 3, (8,))
    m.step(model, opt, Batch(x, y, torch.arange(8)))
    assert len(steps) == 3
    assert m.delta.abs().max() <= 0.2 + 1e-7 and m.delta.abs().max() > 0
    kept = m.delta.clone()
    m.step(model, opt, Batch(x[:5], y[:5], torch.arange(5)))  # a smaller last batch reuses the slice
    assert len(steps) == 6 and m.delta.shape == kept.shape


@pytest.mark.parametrize("method,args", [("free_at", {"replays": 2}), ("gradalign", {"lam": 0.5})])
def test_same_seed_same_numbers(method, args):
    cfg = tiny_config(method=method, method_args=args, epochs=1, val_subset=32, final_attacks=["clean", "pgd-2"])
    a = Trainer(cfg, progress=False).fit()
    b = Trainer(cfg, progress=False).fit()
    assert strip_times(a["history"]) == strip_times(b["history"]) and a["final"] == b["final"]
    assert math.isfinite(a["history"][-1]["train_loss"])
