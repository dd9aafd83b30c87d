"""ALP (Eq. 8 of PIAT), MART (Eq. 6 of Wang et al.), NMSE (Eqs. 11-12 of PIAT) and the toy box."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from advlit.frameworks.nmse import NMSE, nmse_loss
from advlit.methods import Batch, build_method
from advlit.methods.alp import logit_pairing
from advlit.methods.mart import boosted_cross_entropy, mart_loss
from advlit.utils import ConfigError


def test_nmse_ignores_scale_but_not_direction():
    clean = torch.tensor([[2.0, -1.0, 0.5]])
    y = torch.tensor([1])
    assert nmse_loss(clean, 3.0 * clean, y).item() == pytest.approx(0.0, abs=1e-7)
    assert logit_pairing(clean, 3.0 * clean).item() == pytest.approx(4 * (clean ** 2).sum().item())
    other = torch.tensor([[-1.0, 2.0, 0.5]])
    u, v = F.normalize(clean, dim=1), F.normalize(other, dim=1)
    p_true = torch.softmax(clean, 1)[0, 1]
    assert nmse_loss(clean, other, y).item() == pytest.approx(((1 - p_true) * (u - v).pow(2).sum()).item(), rel=1e-6)


def test_nmse_weight_is_one_minus_clean_probability():
    clean = torch.tensor([[5.0, 0.0], [0.0, 5.0]])
    adv = torch.tensor([[0.0, 5.0], [0.0, 5.0]])
    confident = nmse_loss(clean, adv, torch.tensor([0, 1]))
    unsure = nmse_loss(clean, adv, torch.tensor([1, 1]))  # example 0 now has p_clean(y) ~ 0
    assert unsure > 50 * confident


def test_nmse_wrapper_adds_mu_times_term_to_base_loss():
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    x, y = torch.rand(6, 4), torch.randint(0, 3, (6,))
    batch = Batch(x, y, torch.arange(6))
    method = build_method("nmse+pgd_at", eps=0.1, **{"nmse.mu": 5.0})
    x_adv = (x + 0.05).clamp(0, 1)
    total, logits = method.loss(model, batch, x_adv)
    base = F.cross_entropy(model(x_adv), y)
    assert total.item() == pytest.approx((base + 5.0 * nmse_loss(model(x), model(x_adv), y)).item(), rel=1e-6)
    assert torch.allclose(logits, model(x_adv))


def test_nmse_refuses_a_base_with_its_own_update_rule():
    inner = build_method("piat+pgd_at", eps=0.1)
    with pytest.raises(ConfigError):
        NMSE(inner)


def test_piat_nmse_spec_builds_and_steps():
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    method = build_method("piat+nmse+pgd_at", eps=0.1, steps=2)
    before = model.weight.detach().clone()
    metrics = method.step(model, opt, Batch(torch.rand(6, 4), torch.randint(0, 3, (6,)), torch.arange(6)))
    assert set(metrics) == {"loss", "acc"} and not torch.equal(before, model.weight)


def test_mart_boosted_ce_and_weighted_kl():
    logits = torch.tensor([[3.0, 1.0, 0.0]])
    y = torch.tensor([0])
    p = torch.softmax(logits, 1)[0]
    expected = -torch.log(p[0]) - torch.log(1 - p[1])
    assert boosted_cross_entropy(logits, y).item() == pytest.approx(expected.item(), rel=1e-5)
    # identical clean/adv logits: the KL term vanishes, only the BCE remains
    assert mart_loss(logits, logits, y, beta=6.0).item() == pytest.approx(expected.item(), rel=1e-5)
    # a confident clean prediction switches the KL term off (weight 1 - p_y(x) ~ 0)
    sure = torch.tensor([[30.0, 0.0, 0.0]])
    assert mart_loss(sure, logits, y, 6.0).item() == pytest.approx(boosted_cross_entropy(logits, y).item(), rel=1e-4)


@pytest.mark.parametrize("spec", ["alp", "mart"])
def test_baselines_perturb_inside_the_ball_and_train(spec):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    method = build_method(spec, eps=0.1, steps=3)
    x, y = torch.rand(8, 1, 4, 4), torch.randint(0, 3, (8,))
    batch = Batch(x, y, torch.arange(8))
    x_adv = method.perturb(model, batch)
    assert (x_adv - x).abs().max() <= 0.1 + 1e-6 and x_adv.min() >= 0 and x_adv.max() <= 1
    assert (x_adv - x).abs().max() > 0.05
    before = model[1].weight.detach().clone()
    method.step(model, opt, batch)
    assert not torch.equal(before, model[1].weight)


def test_toy_box_is_an_exact_affine_copy():
    from advlit.analysis.decision_boundary import WIDTH, toy_data, toy_model
    from advlit.data import get_dataset

    u, y = toy_data("test")
    x = get_dataset("circles3d", "test").batch(torch.arange(len(y)))[0]
    assert u.min() > 0.1 / WIDTH and u.max() < 1 - 0.1 / WIDTH  # the clamp to [0, 1] never acts
    model = toy_model()
    assert torch.allclose(model[0](u), x, atol=1e-6)  # the network sees the original features
