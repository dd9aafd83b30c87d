"""CFA (Wei et al. 2023): each class is attacked with its own radius eps_k (CCM), the TRADES
weight is class-wise (CCR), and both are calibrated at the epoch end from the class-wise
training robust accuracy: eps_k = (lambda_1 + r_k) eps, beta_k = (lambda_2 + r_k) b / (1 + ...)."""
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


@pytest.mark.parametrize("base", ["at", "trades"])
def test_each_class_is_attacked_with_its_own_eps(base):
    model, _, method = _setup(base=base, alpha=0.2, steps=2)
    method.class_eps = torch.tensor([0.05, 0.15, 0.1])
    x = torch.rand(12, 1, 4, 4) * 0.4 + 0.3  # far from the [0, 1] box
    y = torch.arange(12) % 3
    x_adv = method.perturb(model, Batch(x, y, torch.arange(12)))
    radius = (x_adv - x).flatten(1).abs().amax(1)
    assert torch.allclose(radius, method.class_eps[y], atol=1e-6)


def test_calibration_at_the_epoch_end_from_class_wise_training_robust_accuracy():
    model, opt, method = _setup(begin=1, beta=6.0)
    x, y = torch.rand(12, 1, 4, 4), torch.arange(12) % 3
    method.step(model, opt, Batch(x, y, torch.arange(12)))
    with torch.no_grad():  # what the step saw: the training forward pass on its adversarial input
        r = torch.tensor([float(method._correct[k] / method._seen[k]) for k in range(3)])
    assert method._seen.tolist() == [4, 4, 4]
    method.on_epoch_end(model, 0)
    assert torch.allclose(method.class_eps, (0.5 + r) * 0.1)
    b = (0.5 + r) * 6
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
    assert loss.item() == pytest.approx(((1 - b) * F.cross_entropy(clean, y, reduction="none") + b * kl).mean().item(),
                                        rel=1e-6)
