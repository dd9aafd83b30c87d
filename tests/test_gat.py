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
