"""RAT (Jin et al. 2023, as the authors' code realises it): the soft-label tables of the
Taylor terms by hand, the whole loss by hand on a linear model (whose last-layer gradient is
(p - onehot)^T x / B), the gradient read from the *last* linear layer, and the randomised
attack: TRADES's attack on the noisy network, which leaves the weights as they were."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from advlit.methods import Batch, build_method
from advlit.methods.rat import gap_labels, rat_loss


def test_gap_labels_by_hand():
    table = gap_labels(torch.tensor([3.0, 1.0, 2.0, 0.0]))  # K = 4: c = 1 - 2/4 = 0.5
    assert table[0].tolist() == pytest.approx([0.5, 0.5 * 1 / 3, 0.5 * 2 / 3, 0.0])
    assert table[3].tolist() == pytest.approx([0.5 * 3 / 6, 0.5 * 1 / 6, 0.5 * 2 / 6, 0.5])
    assert torch.allclose(table.sum(1), torch.ones(4))
    flat = gap_labels(torch.ones(10))  # no spread: uniform off the diagonal (c = 0.8)
    assert flat[0].tolist() == pytest.approx([0.2] + [0.8 / 9] * 9)


def _kl(target, logits):
    return (target * (target.clamp_min(1e-30).log() - F.log_softmax(logits, 1))).sum(1).mean()


@pytest.mark.parametrize("second_order", ["symmetric", "code"])
def test_loss_by_hand_on_a_linear_model(second_order):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(8, 4))
    x, y = torch.rand(5, 1, 2, 4), torch.tensor([0, 1, 2, 3, 1])
    x_adv = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    method = build_method("rat", 0.1, taylor=0.2, beta=6.0, second_order=second_order)
    loss, _ = method.loss(model, Batch(x, y, torch.arange(5)), x_adv)
    nat, adv = model(x), model(x_adv)
    onehot = F.one_hot(y, 4).float()

    def row_sums(logits, inputs):  # the last layer's CE gradient (p - onehot)^T x / B, summed per class row
        return ((F.softmax(logits, 1) - onehot).T @ inputs.flatten(1) / 5).sum(1).detach()

    s_nat, s_adv = row_sums(nat, x), row_sums(adv, x_adv)
    t1n, t1a, t2n, t2a = s_nat.abs(), s_adv.abs(), s_nat ** 2, s_adv ** 2
    first = 0.5 * (_kl(gap_labels(t1n - t1a)[y], adv) + _kl(gap_labels(t1a - t1n)[y], nat))
    second_adv = gap_labels(t2a - t2n if second_order == "code" else t2n - t2a)[y]
    second = 0.5 * (_kl(second_adv, adv) + _kl(gap_labels(t2a - t2n)[y], nat))
    robust = _kl(F.softmax(nat, 1), adv)
    expected = 0.8 * F.cross_entropy(nat, y) + 0.2 * first + 0.1 * second + 6.0 * robust
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_randomised_attack_restores_the_weights():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Flatten(), nn.Linear(32, 3))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.rand(4, 1, 4, 4)
    x_adv = build_method("rat", 0.1, steps=2, sigma=0.1).perturb(model, Batch(x, torch.arange(4) % 3, torch.arange(4)))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert (x_adv - x).abs().max() <= 0.1 + 1e-6


def test_taylor_terms_come_from_the_last_linear_layer():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 4))
    x, y = torch.rand(5, 1, 2, 4), torch.tensor([0, 1, 2, 3, 1])
    x_adv = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    loss, _ = build_method("rat", 0.1).loss(model, Batch(x, y, torch.arange(5)), x_adv)
    nat, adv = model(x), model(x_adv)
    (g_nat,) = torch.autograd.grad(F.cross_entropy(nat, y), model[3].weight, retain_graph=True)
    (g_adv,) = torch.autograd.grad(F.cross_entropy(adv, y), model[3].weight, retain_graph=True)
    assert loss.item() == pytest.approx(rat_loss(nat, adv, y, g_nat, g_adv).item(), rel=1e-6)


def test_attack_is_tradess_on_the_noisy_network():
    """x_adv equals TRADES's attack on a copy whose convolution parameters carry the same
    N(0, sigma^2) draws (drawn first, module by module)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Conv2d(2, 2, 3, padding=1), nn.Flatten(),
                          nn.Linear(32, 3))
    x = torch.rand(4, 1, 4, 4)
    batch = Batch(x, torch.arange(4) % 3, torch.arange(4))
    torch.manual_seed(1)
    x_adv = build_method("rat", 0.1, steps=3, sigma=0.5).perturb(model, batch)
    noisy = copy.deepcopy(model)
    torch.manual_seed(1)
    with torch.no_grad():
        for conv in (noisy[0], noisy[2]):
            for p in conv.parameters():
                p.add_(0.5 * torch.randn_like(p))
    expected = build_method("trades", 0.1, steps=3).perturb(noisy, batch)
    assert torch.allclose(x_adv, expected)
    torch.manual_seed(1)
    assert not torch.allclose(build_method("trades", 0.1, steps=3).perturb(model, batch), expected)
