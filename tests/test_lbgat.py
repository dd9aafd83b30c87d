"""LBGAT (Cui et al. 2021): the loss gamma MSE(f_rob(x_adv), f_nat(x)) + CE(f_nat(x), y)
[+ beta KL] by hand; its gradient pulls the adversarial logits toward the natural model's
and reaches the natural model too; both networks step."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from advlit.methods import Batch, TrainContext, build_method
from advlit.methods.lbgat import lbgat_loss


def test_loss_and_its_pull_by_hand():
    adv = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0]], requires_grad=True)
    guide = torch.tensor([[1.0, 1.0, 0.0], [0.0, 2.0, 0.0]], requires_grad=True)
    y = torch.tensor([0, 1])
    mse = ((adv - guide) ** 2).mean()
    loss = lbgat_loss(adv, guide, y, gamma=2.0)
    assert loss.item() == pytest.approx((2.0 * mse + F.cross_entropy(guide, y)).item())
    g_adv, g_guide = torch.autograd.grad(loss, [adv, guide])
    # the adversarial logits move toward the natural model's: -grad is proportional to (guide - adv)
    assert torch.allclose(-g_adv, 2.0 * 2 * (guide - adv).detach() / 6)
    ce_grad = torch.autograd.grad(F.cross_entropy(guide, y), guide)[0]
    assert torch.allclose(g_guide, 2.0 * 2 * (guide - adv).detach() / 6 + ce_grad)  # learnable: it reaches f_nat
    clean = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    kl = F.kl_div(F.log_softmax(adv, 1), F.softmax(clean, 1), reduction="batchmean")
    assert lbgat_loss(adv, guide, y, 1.0, 6.0, clean).item() == pytest.approx(
        (mse + F.cross_entropy(guide, y) + 6 * kl).item(), rel=1e-6)


def _train(gamma, steps=5):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    method = build_method("lbgat", 0.05, steps=2, gamma=gamma)
    method.setup(model, opt, TrainContext(num_examples=8, input_shape=(1, 4, 4), num_classes=3, epochs=1,
                                          steps_per_epoch=1, device=torch.device("cpu"), lr_at=lambda t: 0.1,
                                          peak_lr=0.1, momentum=0.0, weight_decay=0.0))
    guide = method._guide
    assert not torch.equal(guide[1].weight, model[1].weight)  # an independent initialisation
    torch.manual_seed(1)
    x, y = torch.rand(8, 1, 4, 4), torch.randint(0, 3, (8,))
    guide_before = guide[1].weight.detach().clone()
    for _ in range(steps):
        method.step(model, opt, Batch(x, y, torch.arange(8)))
    assert not torch.equal(guide_before, guide[1].weight)  # the natural model is trained too
    assert set(method.state_dict()) == {"guide", "guide_optimizer"}
    return F.mse_loss(model(x), guide(x)).item()


def test_training_brings_the_robust_logits_to_the_natural_models():
    """Against the same run without the MSE term (gamma = 0), the guided run ends with the
    robust model's logits closer to the natural model's."""
    assert _train(gamma=1.0) < 0.8 * _train(gamma=0.0)


def _method(model, beta=0.0, lr_at=lambda t: 0.1, steps_per_epoch=1):
    method = build_method("lbgat", 0.05, steps=2, beta=beta)
    method.setup(model, torch.optim.SGD(model.parameters(), lr=0.1),
                 TrainContext(num_examples=8, input_shape=(1, 4, 4), num_classes=3, epochs=2,
                              steps_per_epoch=steps_per_epoch, device=torch.device("cpu"), lr_at=lr_at,
                              peak_lr=0.1, momentum=0.0, weight_decay=0.0))
    return method


@pytest.mark.parametrize("beta", [0.0, 6.0])
def test_method_loss_wires_the_right_logits(beta):
    """f_rob on x_adv (and on x for the KL), the natural model on the clean x."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    method = _method(model, beta)
    x, y = torch.rand(8, 1, 4, 4), torch.randint(0, 3, (8,))
    x_adv = (x + 0.05 * torch.randn_like(x)).clamp(0, 1)
    loss, logits = method.loss(model, Batch(x, y, torch.arange(8)), x_adv)
    expected = lbgat_loss(model(x_adv), method._guide(x), y, 1.0, beta, model(x))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert torch.equal(logits, model(x_adv))


def test_clean_batch_reaches_the_batchnorm_statistics_even_at_beta_0():
    """The code runs f_rob(x) in training mode at every step (its out_natural): the robust
    model's BatchNorm running statistics follow x_adv and then x."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3))
    method = _method(model, beta=0.0)
    x, y = torch.rand(8, 1, 4, 4), torch.randint(0, 3, (8,))
    x_adv = (x + 0.05 * torch.randn_like(x)).clamp(0, 1)
    reference = copy.deepcopy(model)
    reference(x_adv), reference(x)  # adversarial, then clean batch, both in training mode
    method.loss(model, Batch(x, y, torch.arange(8)), x_adv)
    assert torch.allclose(model[2].running_mean, reference[2].running_mean)
    assert torch.allclose(model[2].running_var, reference[2].running_var)
    assert model[2].num_batches_tracked.item() == 2


def test_the_natural_models_lr_follows_the_runs_schedule():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    method = _method(model, lr_at=lambda t: 0.1 if t < 1 else 0.01, steps_per_epoch=2)
    x, y = torch.rand(8, 1, 4, 4), torch.randint(0, 3, (8,))
    lrs = []
    for iteration in range(3):  # t = 0.5, 1.0, 1.5 after each batch
        method.step(model, torch.optim.SGD(model.parameters(), lr=0.1), Batch(x, y, torch.arange(8), iteration=iteration))
        lrs.append(method._guide_optimizer.param_groups[0]["lr"])
    assert lrs == [0.1, 0.01, 0.01]
