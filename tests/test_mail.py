"""MAIL (Wang et al. 2021): per-example weights s * sigmoid(-gamma (PM - beta)) of the
probabilistic margin PM = p_y - max_{k != y} p_k by hand, decreasing in the margin; the
weighted AT / TRADES losses after the burn-in, the plain ones before; the code's slope and
bias per base; the attack (CE ascent / TRADES's KL attack, in eval mode)."""
from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from advlit.methods import Batch, TrainContext, build_method
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
    w = mail_weights(adv, y, gamma=10.0, beta=-0.5)
    at = build_method("mail", 0.1, burn_in=2)
    before, _ = at.loss(model, Batch(x, y, torch.arange(6), epoch=1), x_adv)
    after, _ = at.loss(model, Batch(x, y, torch.arange(6), epoch=2), x_adv)
    assert before.item() == pytest.approx(F.cross_entropy(adv, y).item(), rel=1e-6)
    assert after.item() == pytest.approx((w * F.cross_entropy(adv, y, reduction="none")).mean().item(), rel=1e-6)
    w = mail_weights(adv, y, gamma=2.0, beta=0.0)
    trades = build_method("mail", 0.1, base="trades", burn_in=0, trades_beta=5.0)
    kl = F.kl_div(F.log_softmax(adv, 1), F.softmax(clean, 1), reduction="none").sum(1)
    loss, _ = trades.loss(model, Batch(x, y, torch.arange(6), epoch=0), x_adv)
    assert loss.item() == pytest.approx((F.cross_entropy(clean, y) + 5.0 * (w * kl).mean()).item(), rel=1e-6)


def test_slope_and_bias_default_to_the_codes_per_base():
    """The README's commands: MAIL-AT --bias -0.5 --slope 10, MAIL-TRADES --bias 0 --slope 2."""
    at, trades = build_method("mail", 0.1), build_method("mail", 0.1, base="trades")
    assert (at.gamma, at.beta) == (10.0, -0.5) and (trades.gamma, trades.beta) == (2.0, 0.0)
    mart_defaults = build_method("mail", 0.1, gamma=1.0, beta=-1.5)
    assert (mart_defaults.gamma, mart_defaults.beta) == (1.0, -1.5)


def test_trades_kl_gradient_reaches_the_clean_logits_and_batchnorm_order():
    """MAIL-TRADES: the clean softmax in the KL is not detached (the code's), and the clean
    batch is forwarded before the adversarial one (the BatchNorm statistics' order)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3))
    reference = copy.deepcopy(model)
    x, y = torch.rand(6, 1, 4, 4), torch.randint(0, 3, (6,))
    x_adv = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    loss, _ = build_method("mail", 0.1, base="trades", burn_in=0).loss(model, Batch(x, y, torch.arange(6)), x_adv)
    clean, adv = reference(x), reference(x_adv)
    assert torch.allclose(model[2].running_mean, reference[2].running_mean)
    w = mail_weights(adv, y, gamma=2.0, beta=0.0)
    kl = (F.softmax(clean, 1) * (F.log_softmax(clean, 1) - F.log_softmax(adv, 1))).sum(1)
    expected = F.cross_entropy(clean, y) + 5.0 * (w * kl).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    got = torch.autograd.grad(loss, list(model.parameters()))
    want = torch.autograd.grad(expected, list(reference.parameters()))
    assert all(torch.allclose(g, h, atol=1e-6) for g, h in zip(got, want))


def test_attack_ascends_in_eval_mode_within_the_ball():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3))
    model(torch.rand(32, 1, 4, 4))  # non-trivial running statistics
    model.train()
    stats = model[2].running_mean.clone()
    x, y = torch.rand(16, 1, 4, 4), torch.randint(0, 3, (16,))
    batch = Batch(x, y, torch.arange(16))
    x_adv = build_method("mail", 0.1, steps=5).perturb(model, batch)
    assert model.training and torch.equal(model[2].running_mean, stats)  # eval mode inside, restored
    assert (x_adv - x).abs().max() <= 0.1 + 1e-6 and x_adv.min() >= 0 and x_adv.max() <= 1
    model.eval()
    assert F.cross_entropy(model(x_adv), y) > F.cross_entropy(model(x), y) + 0.05  # CE ascent
    model.train()
    torch.manual_seed(1)
    mail_trades = build_method("mail", 0.1, steps=5, base="trades").perturb(model, batch)
    torch.manual_seed(1)
    trades = build_method("trades", 0.1, steps=5).perturb(model, batch)
    assert torch.allclose(mail_trades, trades)  # MAIL-TRADES attacks with TRADES's KL


def test_default_burn_in_is_75_of_120_epochs():
    def burn_in(epochs):
        method = build_method("mail", 0.1)
        method.setup(None, None, TrainContext(num_examples=8, input_shape=(16,), num_classes=3, epochs=epochs,
                                              steps_per_epoch=1, device=torch.device("cpu")))
        return method.burn_in_epochs()

    assert (burn_in(120), burn_in(30)) == (75, 19)
