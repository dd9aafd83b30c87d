"""CFA (Wei et al. 2023): each class is attacked with its own radius eps_k (CCM, Eq. 6), the
TRADES weight is class-wise (CCR, Eqs. 7-8), and both are recalibrated at every epoch's end
(Alg. 1) from the class-wise training robust accuracy: eps_k = (lambda_1 + r_k) eps,
beta_k = (lambda_2 + r_k) beta, the loss weighting CE and KL by 1 / (1 + beta_k) and
beta_k / (1 + beta_k)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from advlit.methods import Batch, TrainContext, build_method


def _setup(**args):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    method = build_method("cfa", 0.1, **args)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    method.setup(model, opt, TrainContext(num_examples=12, input_shape=(1, 4, 4), num_classes=3, epochs=3,
                                          steps_per_epoch=1, device=torch.device("cpu")))
    return model, opt, method


def test_default_budgets_are_the_papers():
    """Sec. 5.1: lambda_1 = 0.3 for TRADES, 0.5 for AT (the code's one default, 0.5, is an
    option), lambda_2 = 0.5, beta = 6."""
    trades, at = build_method("cfa", 0.1), build_method("cfa", 0.1, base="at")
    assert (trades.base, trades.lambda_1, trades.lambda_2, trades.beta) == ("trades", 0.3, 0.5, 6.0)
    assert at.lambda_1 == 0.5 and build_method("cfa", 0.1, lambda_1=0.5).lambda_1 == 0.5


def test_default_calibrates_after_the_first_epoch():
    """Alg. 1 recalibrates at the end of every epoch, the first included (the code's
    --begin 10 is ``begin=10``)."""
    model, opt, method = _setup(lambda_1=0.3)
    x, y = torch.rand(12, 1, 4, 4), torch.arange(12) % 3
    method.step(model, opt, Batch(x, y, torch.arange(12)))
    r = method._correct / method._seen
    method.on_epoch_end(model, 0)  # the end of the first epoch: the second is calibrated
    assert torch.allclose(method.class_eps, (0.3 + r) * 0.1)


@pytest.mark.parametrize("base", ["at", "trades"])
def test_each_class_is_attacked_with_its_own_eps(base):
    model, _, method = _setup(base=base, alpha=0.2, steps=2)
    method.class_eps = torch.tensor([0.05, 0.15, 0.1])
    x = torch.rand(12, 1, 4, 4) * 0.4 + 0.3  # far from the [0, 1] box
    y = torch.arange(12) % 3
    x_adv = method.perturb(model, Batch(x, y, torch.arange(12)))
    radius = (x_adv - x).flatten(1).abs().amax(1)
    assert torch.allclose(radius, method.class_eps[y], atol=1e-6)


class _ModeLog(nn.Module):
    """A linear model that records, per forward pass, whether it ran in training mode."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
        self.modes: list[bool] = []

    def forward(self, x):
        self.modes.append(self.training)
        return self.net(x)


@pytest.mark.parametrize("base,attack_mode", [("trades", False), ("at", True)])
def test_attack_mode_trades_eval_at_training(base, attack_mode):
    """The code's TRADES attack runs in eval mode, its AT attack in the model's (training) mode;
    the loss's forward passes are in training mode."""
    model = _ModeLog()
    method = build_method("cfa", 0.1, base=base, steps=2)
    method.setup(model, torch.optim.SGD(model.parameters(), lr=0.1),
                 TrainContext(num_examples=12, input_shape=(1, 4, 4), num_classes=3, epochs=1, steps_per_epoch=1,
                              device=torch.device("cpu")))
    batch = Batch(torch.rand(12, 1, 4, 4), torch.arange(12) % 3, torch.arange(12))
    model.train()
    x_adv = method.perturb(model, batch)
    assert model.modes and set(model.modes) == {attack_mode} and model.training
    model.modes.clear()
    method.loss(model, batch, x_adv)
    assert set(model.modes) == {True}


def test_calibration_from_the_adversarial_training_forward_pass():
    """r_k counts the correct predictions on the adversarial inputs of the training forward
    pass (before the update), class by class; lambda_1 scales eps, lambda_2 beta."""
    model, opt, method = _setup(begin=1, beta=6.0, lambda_1=0.2, lambda_2=0.7, steps=2)
    x, y = torch.rand(12, 1, 4, 4), torch.arange(12) % 3
    batch = Batch(x, y, torch.arange(12))
    torch.manual_seed(1)
    x_adv = method.perturb(model, batch)  # by hand: the step's attack (same random start) ...
    with torch.no_grad():  # ... and the model before the update
        hit = (model(x_adv).argmax(1) == y).float()
    want = torch.stack([hit[y == k].mean() for k in range(3)])
    torch.manual_seed(1)
    method.step(model, opt, batch)
    assert method._seen.tolist() == [4, 4, 4]
    assert torch.equal(method._correct, torch.stack([hit[y == k].sum() for k in range(3)]))
    method.on_epoch_end(model, 0)
    assert torch.allclose(method.class_eps, (0.2 + want) * 0.1)
    b = (0.7 + want) * 6
    assert torch.allclose(method.class_beta, b / (1 + b))
    assert method._seen.sum() == 0  # counts restart every epoch


def test_no_calibration_before_begin_and_trades_loss_uses_the_class_weights():
    model, opt, method = _setup(begin=5)
    x, y = torch.rand(12, 1, 4, 4), torch.arange(12) % 3
    method.step(model, opt, Batch(x, y, torch.arange(12)))
    method.on_epoch_end(model, 0)
    assert torch.equal(method.class_eps, torch.full((3,), 0.1)) and torch.allclose(method.class_beta,
                                                                                   torch.full((3,), 6 / 7))
    method.class_beta = torch.tensor([0.2, 0.5, 0.9])
    x_adv = (x + 0.05).clamp(0, 1)
    loss, _ = method.loss(model, Batch(x, y, torch.arange(12)), x_adv)
    clean, adv = model(x), model(x_adv)
    kl = F.kl_div(F.log_softmax(adv, 1), F.softmax(clean, 1), reduction="none").sum(1)
    b = method.class_beta[y]
    want = ((1 - b) * F.cross_entropy(clean, y, reduction="none") + b * kl).mean()
    assert loss.item() == pytest.approx(want.item(), rel=1e-6)
    # Eq. 8 differentiates through the KL's clean target f(x) too (TRADES's loss, not detached)
    got = torch.autograd.grad(loss, list(model.parameters()))
    for g, w in zip(got, torch.autograd.grad(want, list(model.parameters()))):
        assert torch.allclose(g, w, atol=1e-6)
