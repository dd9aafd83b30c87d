"""FGSM-BP / FGSM-EP / FGSM-MEP: perturbations, per-example buffers aligned with the
augmentation, the MEP momentum, periodic resets, the regulariser and exact resume."""
import copy

import pytest
import torch
from torch import nn

from advlit.data import Augmentation
from advlit.experiments import get_config
from advlit.experiments.initialization import code_label_smoothing
from advlit.methods import Batch, TrainContext, build_method
from advlit.methods.fgsm_pgi import prior_regulariser
from helpers import same_state, straight_and_resumed, tiny_config

EPS = 0.2
N, C, H, W = 12, 1, 8, 8


def tiny_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(C, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * H * W, 10))


def setup(spec, pad=0, **kwargs):
    model = tiny_net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    method = build_method(spec, EPS, 1.0, **kwargs)
    ctx = TrainContext(num_examples=N, input_shape=(C, H, W), num_classes=10, epochs=3, steps_per_epoch=2,
                       device=torch.device("cpu"), pad=pad)
    method.setup(model, opt, ctx)
    method.on_epoch_start(model, 0)
    return model, opt, method


def make_batch(idx, aug=None, seed=0, epoch=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(len(idx), C, H, W, generator=g)
    y = torch.randint(0, 10, (len(idx),), generator=g)
    return Batch(x=x, y=y, idx=torch.tensor(idx), aug=aug, epoch=epoch)


@pytest.mark.parametrize("spec", ["fgsm_bp", "fgsm_ep", "fgsm_mep"])
def test_perturbation_in_ball_and_box(spec):
    model, _, method = setup(spec)
    for i in range(3):  # the stored priors are used from the second call on
        batch = make_batch([0, 1, 2, 3], seed=i)
        x_adv = method.perturb(model, batch)
        assert x_adv.shape == batch.x.shape
        assert (x_adv - batch.x).abs().max() <= EPS + 1e-6
        assert x_adv.min() >= 0 and x_adv.max() <= 1
        assert (x_adv - batch.x).abs().max() > EPS / 2  # it did move


@pytest.mark.parametrize("spec", ["fgsm_ep", "fgsm_mep"])
def test_buffers_are_indexed_by_example(spec):
    model, _, method = setup(spec)
    before = method.delta.clone()
    batch = make_batch([3, 7])
    x_adv = method.perturb(model, batch)
    changed = (method.delta != before).flatten(1).any(1)
    assert changed.nonzero().flatten().tolist() == [3, 7]
    if spec == "fgsm_ep":  # EP stores the adversarial perturbation itself
        assert torch.allclose(method.delta[[3, 7]], x_adv - batch.x, atol=1e-6)


def test_ep_prior_is_read_from_the_same_example():
    model, _, method = setup("fgsm_ep")
    method.delta[5] = 0.123
    method.delta[9] = -0.05
    batch = make_batch([9, 5])
    prior = method.prior(batch)
    assert torch.allclose(prior[0], torch.full((C, H, W), -0.05))
    assert torch.allclose(prior[1], torch.full((C, H, W), 0.123))


@pytest.mark.parametrize("spec", ["fgsm_ep", "fgsm_mep"])
def test_buffers_aligned_with_crop_and_flip(spec):
    pad = 2
    model, _, method = setup(spec, pad=pad)
    assert method.delta.shape == (N, C, H + 2 * pad, W + 2 * pad)
    # a distinct value at every canvas pixel of example 4
    pattern = (torch.arange((H + 2 * pad) * (W + 2 * pad), dtype=torch.float32) / 1000).view(1, H + 2 * pad, -1)
    method.delta[4] = pattern
    aug = Augmentation(top=torch.tensor([1, 3]), left=torch.tensor([0, 4]), flip=torch.tensor([True, False]), pad=pad)
    batch = make_batch([4, 6], aug=aug)
    prior = method.prior(batch)
    expected = pattern[:, 1:1 + H, 0:0 + W].flip(-1)  # crop at (1, 0), then mirror
    assert torch.equal(prior[0], expected)
    # after the step, the new perturbation sits in the same window (un-flipped), and the
    # pixels outside the window keep their old values
    x_adv = method.perturb(model, batch)
    stored = method.delta[4]
    if spec == "fgsm_ep":
        assert torch.allclose(stored[:, 1:1 + H, 0:W].flip(-1), (x_adv - batch.x)[0], atol=1e-6)
    outside = torch.ones_like(stored, dtype=torch.bool)
    outside[:, 1:1 + H, 0:W] = False
    assert torch.equal(stored[outside], pattern[outside])
    assert not torch.equal(stored[~outside], pattern[~outside])
    # a later view of example 4 with another crop reads the pixels that were written
    aug2 = Augmentation(top=torch.tensor([1]), left=torch.tensor([0]), flip=torch.tensor([False]), pad=pad)
    again = method.prior(make_batch([4], aug=aug2))
    assert torch.equal(again[0], stored[:, 1:1 + H, 0:W])


def test_bp_uses_previous_batch_perturbation():
    model, _, method = setup("fgsm_bp")
    first = make_batch([0, 1, 2, 3], seed=0)
    x_adv = method.perturb(model, first)
    second = make_batch([4, 5, 6], seed=1)  # smaller batch: the first rows of the stored one
    assert torch.allclose(method.prior(second), (x_adv - first.x)[:3], atol=1e-6)
    method.on_epoch_start(model, method.reset_every)  # a reset forgets it
    assert method.previous is None


def test_mep_momentum_update():
    model, _, method = setup("fgsm_mep", mu=0.3, momentum_norm="l1")
    batch = make_batch([2, 5])
    method.momentum[2] = 1e-3
    old = method.momentum[[2, 5]].clone()
    prior = method.prior(batch)
    x_pgi = (batch.x + prior).clamp(batch.x - EPS, batch.x + EPS).clamp(0, 1)
    x_req = x_pgi.clone().requires_grad_(True)
    loss = nn.functional.cross_entropy(model(x_req), batch.y, reduction="sum")
    (grad,) = torch.autograd.grad(loss, x_req)
    method.perturb(model, batch)
    norm = grad.abs().flatten(1).sum(1).view(-1, 1, 1, 1)
    assert torch.allclose(method.momentum[[2, 5]], 0.3 * old + grad / norm, atol=1e-6)
    expected_prior = (x_pgi + EPS * method.momentum[[2, 5]].sign()).clamp(batch.x - EPS, batch.x + EPS).clamp(0, 1)
    assert torch.allclose(method.delta[[2, 5]], expected_prior - batch.x, atol=1e-6)


def _mep_step_by_hand(momentum_norm):
    """One MEP step on examples 2 and 5 with a known old momentum; returns the method, the
    old momentum and the input gradient at the prior."""
    model, _, method = setup("fgsm_mep", mu=0.3, momentum_norm=momentum_norm)
    batch = make_batch([2, 5])
    method.momentum[2] = 0.5
    method.momentum[5] = -2.0
    old = method.momentum[[2, 5]].clone()
    x_pgi = (batch.x + method.prior(batch)).clamp(batch.x - EPS, batch.x + EPS).clamp(0, 1)
    x_req = x_pgi.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(nn.functional.cross_entropy(model(x_req), batch.y), x_req)
    method.perturb(model, batch)
    return method, old, grad


def test_mep_sign_momentum_is_the_slides_alg3():
    """Alg. 3, lines 12-13: g_c = sign(grad), D^m = mu D^m + g_c. Old momentum 0.5 -> 0.15 +
    sign(grad), i.e. 1.15 or -0.85; old -2 -> -0.6 + sign(grad), i.e. 0.4 or -1.6."""
    method, _, grad = _mep_step_by_hand("sign")
    assert grad.ne(0).all()
    expected_2 = torch.where(grad[0] > 0, torch.tensor(1.15), torch.tensor(-0.85))
    expected_5 = torch.where(grad[1] > 0, torch.tensor(0.4), torch.tensor(-1.6))
    assert torch.allclose(method.momentum[2], expected_2, atol=1e-6)
    assert torch.allclose(method.momentum[5], expected_5, atol=1e-6)


def test_mep_l1_batch_momentum_is_the_codes():
    """The authors' code: momentum = grad / ||grad||_1 (over the whole batch) + mu momentum."""
    method, old, grad = _mep_step_by_hand("l1_batch")
    assert torch.allclose(method.momentum[[2, 5]], 0.3 * old + grad / grad.abs().sum(), atol=1e-7)


def test_defaults_are_the_slides():
    """FGSM-PGI's defaults follow the slides: g_c = sign(grad) (Alg. 3) and the squared L2
    norm summed over the logits; the code's l1_batch and MSELoss are options."""
    mep = build_method("fgsm_mep", EPS)
    assert (mep.momentum_norm, mep.reg) == ("sign", "sum")
    assert build_method("fgsm_bp", EPS).reg == "sum" and build_method("fgsm_ep", EPS).reg == "sum"
    for name in ("init.fgsm_mep", "init.fgsm_mep_2eps"):  # the gpu profile runs the slides' settings
        gpu = get_config(name, "gpu")
        gpu_mep = build_method(gpu.method, gpu.eps, gpu.alpha_ratio, **gpu.method_args)
        assert (gpu_mep.momentum_norm, gpu_mep.reg) == ("sign", "sum")
    code = get_config("init.mep_authors", "gpu").method_args
    assert (code["momentum_norm"], code["reg"], code["init"]) == ("l1_batch", "mean", "sign")


def test_cpu_runs_keep_the_settings_of_their_records():
    """The cpu records of chapter 03 were made with reg="mean" and, for MEP, the per-example
    L1 momentum (the defaults before fidelity issue 13): the cpu profile pins them."""
    for name in ("init.fgsm_bp", "init.fgsm_ep", "init.fgsm_mep", "init.fgsm_mep_2eps"):
        args = get_config(name, "cpu").method_args
        assert args["reg"] == "mean"
        assert args.get("momentum_norm") == ("l1" if "mep" in name else None)


def test_sum_regulariser_is_k_times_the_mean():
    """The slides' squared norm ("sum") against the code's MSELoss ("mean") on K logits."""
    a = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 2.0]])
    b = torch.zeros(2, 3)
    assert prior_regulariser(a, b, "sum").item() == pytest.approx((14 + 4) / 2)  # per example, batch mean
    assert prior_regulariser(a, b, "mean").item() == pytest.approx(18 / 6)
    g = torch.Generator().manual_seed(0)
    for k in (3, 10, 100):
        a, b = torch.randn(5, k, generator=g), torch.randn(5, k, generator=g)
        assert torch.allclose(prior_regulariser(a, b, "sum"), k * prior_regulariser(a, b, "mean"))


def test_code_label_smoothing_converts_the_true_class_probability():
    """The code's factor is the true class's target probability (0.6 for PGI, 0.5 for SDI);
    PyTorch's label_smoothing epsilon gives the true class 1 - eps + eps / K, so
    eps = (1 - factor) K / (K - 1): 0.6 -> 4/9 with ten classes."""
    assert code_label_smoothing(0.6) == pytest.approx(0.4 * 10 / 9)
    assert code_label_smoothing(0.5, classes=100) == pytest.approx(0.5 * 100 / 99)
    k, factor = 10, 0.6
    g = torch.Generator().manual_seed(0)
    logits, y = torch.randn(8, k, generator=g), torch.randint(0, k, (8,), generator=g)
    one_hot = nn.functional.one_hot(y, k).float()  # the code's _label_smoothing and LabelSmoothLoss
    target = one_hot * factor + (one_hot - 1) * ((factor - 1) / (k - 1))
    code_loss = (-target * logits.log_softmax(1)).sum(1).mean()
    ours = nn.functional.cross_entropy(logits, y, label_smoothing=code_label_smoothing(factor, k))
    assert torch.allclose(ours, code_loss)
    assert get_config("init.mep_authors", "gpu").method_args["label_smoothing"] == pytest.approx(4 / 9)
    assert get_config("init.sdi_authors", "gpu").method_args["label_smoothing"] == pytest.approx(5 / 9)


def test_mep_with_sign_normalisation_reduces_to_ep():
    _, _, mep = setup("fgsm_mep", momentum_norm="sign")
    model, _, ep = setup("fgsm_ep")
    ep.delta = mep.delta.clone()
    for i in range(3):
        batch = make_batch([0, 1, 2], seed=i)
        assert torch.allclose(mep.perturb(model, batch), ep.perturb(model, batch), atol=1e-6)
        assert torch.allclose(mep.delta, ep.delta, atol=1e-6)


def test_reset_every_k_epochs():
    model, _, method = setup("fgsm_mep", reset_every=2)
    method.perturb(model, make_batch([0, 1]))
    delta, momentum = method.delta.clone(), method.momentum.clone()
    method.on_epoch_start(model, 1)
    assert torch.equal(method.delta, delta) and torch.equal(method.momentum, momentum)
    method.on_epoch_start(model, 2)
    assert not torch.equal(method.delta, delta)
    assert method.momentum.abs().sum() == 0
    assert method.delta.abs().max() <= EPS


def test_regulariser_term():
    model, _, method = setup("fgsm_ep", lam=0.0, reg="sum")
    batch = make_batch([0, 1, 2])
    x_adv = method.perturb(model, batch)
    plain, logits = method.loss(model, batch, x_adv)
    assert torch.allclose(plain, nn.functional.cross_entropy(logits, batch.y))
    method.lam = 10.0
    regularised, _ = method.loss(model, batch, x_adv)
    reg = (model(x_adv) - model(method._x_pgi)).pow(2).sum(1).mean()
    assert reg > 0
    assert torch.allclose(regularised, plain + 10 * reg, atol=1e-5)
    method.reg = "mean"  # the code's MSELoss: also averaged over the 10 classes
    code_version, _ = method.loss(model, batch, x_adv)
    assert torch.allclose(code_version, plain + reg, atol=1e-5)


@pytest.mark.parametrize("spec", ["fgsm_bp", "fgsm_mep"])
def test_state_dict_round_trip_gives_identical_next_step(spec):
    model, opt, method = setup(spec)
    method.step(model, opt, make_batch([0, 1, 2, 3], seed=0))
    saved = (copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict()), method.state_dict())
    torch.manual_seed(3)
    method.step(model, opt, make_batch([4, 5, 6, 7], seed=1))
    after = copy.deepcopy(model.state_dict())
    model2, opt2, method2 = setup(spec)
    model2.load_state_dict(saved[0])
    opt2.load_state_dict(saved[1])
    method2.load_state_dict(saved[2])
    torch.manual_seed(3)
    method2.step(model2, opt2, make_batch([4, 5, 6, 7], seed=1))
    assert same_state(after, model2.state_dict())
    assert same_state(method.state_dict(), method2.state_dict()) if spec == "fgsm_mep" else \
        torch.equal(method.previous, method2.previous)


def test_trainer_resume_is_exact(tmp_path):
    cfg = tiny_config(method="fgsm_mep", alpha_ratio=1.0, epochs=3, method_args={"reset_every": 2})
    straight, resumed = straight_and_resumed(cfg, tmp_path, stop_after=1)
    assert torch.equal(straight.method.delta, resumed.method.delta)
