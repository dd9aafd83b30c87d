"""MAIL (Liu et al. 2021): per-example weights s * sigmoid(-gamma (PM - beta)) of the
probabilistic margin PM = p_y - max_{k != y} p_k by hand, decreasing in the margin; the
weighted AT / TRADES losses after the burn-in, the plain ones before."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from advlit.methods import Batch, build_method
from advlit.methods.mail import mail_weights, probabilistic_margin


def test_weights_by_hand_and_decreasing_in_the_margin():
    logits = torch.log(torch.tensor([[0.7, 0.2, 0.1], [0.7, 0.2, 0.1]]))
    y = torch.tensor([0, 1])
    assert probabilistic_margin(logits, y).tolist() == pytest.approx([0.5, -0.5])
    sig = lambda t: 1 / (1 + math.exp(-t))  # noqa: E731
    w = mail_weights(logits, y, gamma=2.0, beta=-0.5, scale=3.0)
    assert w.tolist() == pytest.approx([3 * sig(-2 * (0.5 + 0.5)), 3 * sig(-2 * (-0.5 + 0.5))])
    sweep = torch.linspace(-4, 4, 41)
    ws = mail_weights(torch.stack([sweep, torch.zeros_like(sweep)], 1), torch.zeros(41, dtype=torch.long))
    assert (ws.diff() < 0).all()  # a larger margin, a smaller weight
    assert not ws.requires_grad


def test_weighted_losses_after_the_burn_in_only():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    x, y = torch.rand(6, 1, 4, 4), torch.randint(0, 3, (6,))
    x_adv = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    adv, clean = model(x_adv), model(x)
    w = mail_weights(adv, y)
    at = build_method("mail", 0.1, burn_in=2)
    before, _ = at.loss(model, Batch(x, y, torch.arange(6), epoch=1), x_adv)
    after, _ = at.loss(model, Batch(x, y, torch.arange(6), epoch=2), x_adv)
    assert before.item() == pytest.approx(F.cross_entropy(adv, y).item(), rel=1e-6)
    assert after.item() == pytest.approx((w * F.cross_entropy(adv, y, reduction="none")).mean().item(), rel=1e-6)
    trades = build_method("mail", 0.1, base="trades", burn_in=0, trades_beta=5.0)
    kl = F.kl_div(F.log_softmax(adv, 1), F.softmax(clean, 1), reduction="none").sum(1)
    loss, _ = trades.loss(model, Batch(x, y, torch.arange(6), epoch=0), x_adv)
    assert loss.item() == pytest.approx((F.cross_entropy(clean, y) + 5.0 * (w * kl).mean()).item(), rel=1e-6)
