"""AWP: the weight perturbation *increases* the loss, is layer-wise relative, and is undone
after the step (Wu et al. 2020, Eq. 8-9: ``max_v`` of the adversarial loss)."""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from advlit.methods.awp import awp_update, shift_weights, weight_perturbation
from advlit.train import Trainer
from tests.helpers import tiny_config


def _setup():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3))
    x, y = torch.rand(20, 1, 4, 4), torch.randint(0, 3, (20,))
    return model, x, y


def test_perturbation_is_relative_to_each_layer_norm():
    model, x, y = _setup()
    v = weight_perturbation(model, copy.deepcopy(model), lambda net: F.cross_entropy(net(x), y), gamma=0.01)
    params = dict(model.named_parameters())
    assert set(v) == {"1.weight", "3.weight"}  # weights only, no biases
    for name, delta in v.items():
        assert torch.allclose(delta.norm(), 0.01 * params[name].norm(), rtol=1e-5)


def test_perturbation_points_uphill():
    """AWP maximises the loss over v: v is along +grad L in every layer and L(w + v) > L(w)."""
    model, x, y = _setup()
    loss_fn = lambda net: F.cross_entropy(net(x), y)  # noqa: E731
    v = weight_perturbation(model, copy.deepcopy(model), loss_fn, gamma=0.05)
    params = dict(model.named_parameters())
    grads = dict(zip(params, torch.autograd.grad(loss_fn(model), list(params.values()))))
    for name, delta in v.items():
        assert F.cosine_similarity(delta.flatten(), grads[name].flatten(), dim=0) > 0.999
    before = loss_fn(model).item()
    shifted = copy.deepcopy(model)
    shift_weights(shifted, v, +1.0)
    assert loss_fn(shifted).item() > before


def test_update_takes_its_gradient_where_the_loss_is_higher():
    """``awp_update`` (used by AWP and LAS-AWP) computes its loss at w + v: above L(w)."""
    model, x, y = _setup()
    loss_fn = lambda net: (F.cross_entropy(net(x), y), None)  # noqa: E731
    before = loss_fn(model)[0].item()
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    loss_at_shifted, _ = awp_update(model, copy.deepcopy(model), opt, loss_fn, gamma=0.05, proxy_lr=0.01)
    assert loss_at_shifted.item() > before
    assert abs(loss_fn(model)[0].item() - before) < 1e-6  # v undone, no step at LR 0


def test_step_uses_gradient_at_perturbed_weights_applied_to_unperturbed_weights():
    model, x, y = _setup()
    gamma, lr = 0.05, 0.1
    loss_fn = lambda net: (F.cross_entropy(net(x), y), None)  # noqa: E731
    v = weight_perturbation(model, copy.deepcopy(model), lambda net: loss_fn(net)[0], gamma)
    # reference: gradient at w + v, applied to w with plain SGD
    shifted = copy.deepcopy(model)
    shift_weights(shifted, v, +1.0)
    grads = torch.autograd.grad(loss_fn(shifted)[0], list(shifted.parameters()))
    expected = [p.detach() - lr * g for p, g in zip(model.parameters(), grads)]
    plain_grads = torch.autograd.grad(loss_fn(model)[0], list(model.parameters()))
    plain = [p.detach() - lr * g for p, g in zip(model.parameters(), plain_grads)]

    opt = torch.optim.SGD(model.parameters(), lr=lr)
    awp_update(model, copy.deepcopy(model), opt, loss_fn, gamma, proxy_lr=0.01)
    after = [p.detach() for p in model.parameters()]
    assert all(torch.allclose(a, e, atol=1e-6) for a, e in zip(after, expected))
    assert not all(torch.allclose(a, p, atol=1e-6) for a, p in zip(after, plain))


def test_awp_and_las_awp_train():
    for method, args in (("awp", {"steps": 1}),
                         ("las_awp", dict(policy_backbone="small_cnn", interval=5, iter_options=[1, 2],
                                          eps_options=[1.0], step_options=[0.5], eval_steps=1))):
        record = Trainer(tiny_config(method=method, method_args=args, epochs=1), progress=False).fit()
        assert record["complete"] and record["history"][0]["train_loss"] > 0
