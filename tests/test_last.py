"""LAST (advlit.frameworks.last): Alg. 1 by hand, both update rules, Eq. 5, state, and
``last+<method>`` for every registered method."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from advlit.frameworks.last import LAST, SelfDistillation
from advlit.methods import Batch, TrainContext, available_methods, build_method
from advlit.models import get_model
from advlit.utils import ConfigError
from helpers import same_state, straight_and_resumed, tiny_config

LR, WD, MOM, EPS = 0.1, 5e-4, 0.9, 0.1


def context(steps_per_epoch=1, lr_at=lambda t: LR, peak=LR, n=8, shape=(4,), classes=3):
    return TrainContext(num_examples=n, input_shape=shape, num_classes=classes, epochs=2,
                        steps_per_epoch=steps_per_epoch, device=torch.device("cpu"), lr_at=lr_at, peak_lr=peak,
                        momentum=MOM, weight_decay=WD)


def linear_problem(seed=0):
    torch.manual_seed(seed)
    model = nn.Linear(4, 3)
    xs = [torch.rand(6, 4) * 0.6 + 0.2 for _ in range(2)]
    ys = [torch.randint(0, 3, (6,)) for _ in range(2)]
    return model, xs, ys


def hand_grads(W, b, x, y):
    """Hand-derived gradients of mean CE for logits = x W^T + b: (dW, db, dx per example)."""
    p = torch.softmax(x @ W.T + b, 1)
    r = p - F.one_hot(y, 3).to(p)
    return r.T @ x / len(y), r.mean(0), r @ W


def hand_fgsm(W, b, x, y):
    _, _, gx = hand_grads(W, b, x, y)
    return torch.min(torch.max(x + EPS * gx.sign(), x - EPS), x + EPS).clamp(0, 1)


def batches(xs, ys):
    return [Batch(x=x, y=y, idx=torch.arange(len(y)), epoch=0, iteration=i) for i, (x, y) in enumerate(zip(xs, ys))]


def test_paper_rule_two_steps_match_alg1_by_hand():
    """gamma = 1, proxy SGD = target SGD (momentum, weight decay, LR): Alg. 1 lines 5-16."""
    model, xs, ys = linear_problem()
    W0, b0 = model.weight.detach().clone(), model.bias.detach().clone()
    method = LAST(build_method("fgsm", EPS), gamma=1.0, proxy_momentum=MOM, proxy_weight_decay=WD)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOM, weight_decay=WD)
    method.setup(model, opt, context())
    b1, b2 = batches(xs, ys)
    method.step(model, opt, b1)
    # step 1: omega_0 = theta_0; attack by theta_0; omega~ = theta_0 - beta (g + wd theta_0)
    gW, gb, _ = hand_grads(W0, b0, hand_fgsm(W0, b0, xs[0], ys[0]), ys[0])
    bufW, bufb = gW + WD * W0, gb + WD * b0
    W1, b1_ = W0 - LR * bufW, b0 - LR * bufb  # theta_1 = theta_0 - 1 * (theta_0 - omega~)
    assert torch.allclose(model.weight, W1, atol=1e-6) and torch.allclose(model.bias, b1_, atol=1e-6)
    assert torch.allclose(method.proxy.weight, W0) and torch.allclose(method.proxy.bias, b0)  # omega_1 = theta_0
    method.step(model, opt, b2)
    # step 2: the attack is crafted on theta_1 (target), the proxy step is taken from omega_1 = theta_0
    gW, gb, _ = hand_grads(W0, b0, hand_fgsm(W1, b1_, xs[1], ys[1]), ys[1])
    bufW, bufb = MOM * bufW + gW + WD * W0, MOM * bufb + gb + WD * b0
    W2, b2_ = W0 - LR * bufW, b0 - LR * bufb
    assert torch.allclose(model.weight, W2, atol=1e-6) and torch.allclose(model.bias, b2_, atol=1e-6)
    assert torch.allclose(method.proxy.weight, W1, atol=1e-6)
    assert not opt.state  # the paper rule never uses the target's optimizer


def test_paper_rule_is_aggregation_of_theta_and_fast_weights():
    """theta_{i+1} = (1 - gamma) theta_i + gamma omega~ (Sec. III-E), gamma = 0.8, plain proxy."""
    model, xs, ys = linear_problem(1)
    method = LAST(build_method("fgsm", EPS), gamma=0.8)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOM, weight_decay=WD)
    method.setup(model, opt, context())
    b1, b2 = batches(xs, ys)
    method.step(model, opt, b1)
    W1, B1 = model.weight.detach().clone(), model.bias.detach().clone()
    W0, B0 = method.proxy.weight.detach().clone(), method.proxy.bias.detach().clone()
    method.step(model, opt, b2)
    gW, gb, _ = hand_grads(W0, B0, hand_fgsm(W1, B1, xs[1], ys[1]), ys[1])
    fastW = W0 - LR * (gW + WD * W0)  # proxy momentum 0 under the paper rule
    assert torch.allclose(model.weight, 0.2 * W1 + 0.8 * fastW, atol=1e-6)


def test_code_rule_sets_gradient_to_G_and_uses_target_optimizer():
    model, xs, ys = linear_problem(2)
    W0, b0 = model.weight.detach().clone(), model.bias.detach().clone()
    method = LAST(build_method("fgsm", EPS), gamma=0.8, rule="code")
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOM, weight_decay=WD)
    half = lambda t: LR / 2  # the schedule is at half its peak: gamma_t = 0.4
    method.setup(model, opt, context(lr_at=half))
    method.step(model, opt, batches(xs, ys)[0])
    gW, _, _ = hand_grads(W0, b0, hand_fgsm(W0, b0, xs[0], ys[0]), ys[0])
    G = (LR / 2) * (gW + WD * W0)  # theta_0 - omega~ (proxy: SGD, first momentum step = gradient)
    assert torch.allclose(model.weight, W0 - 0.4 * (G + WD * W0), atol=1e-6)
    assert opt.state  # the target's momentum buffer now holds G + wd theta


def test_schedules_follow_the_target_shape():
    sched = lambda t: 0.2 * min(t, 2 - t)  # triangle peaking at 0.2 at t = 1
    method = LAST(build_method("fgsm_rs", EPS), gamma=0.8, beta=0.05)
    method.setup(nn.Linear(4, 3), None, context(lr_at=sched, peak=0.2))
    assert method.beta_at(0.5) == pytest.approx(0.025) and method.gamma_at(0.5) == 0.8
    code = LAST(build_method("fgsm_rs", EPS), rule="code")
    code.setup(nn.Linear(4, 3), None, context(lr_at=sched, peak=0.2))
    assert code.beta_at(0.5) == pytest.approx(0.1) and code.gamma_at(0.5) == pytest.approx(0.4)
    assert code.proxy_optimizer.param_groups[0]["momentum"] == MOM
    with pytest.raises(ConfigError):
        LAST(build_method("fgsm_rs", EPS), rule="literal")


def test_self_distillation_is_eq5_as_printed_and_the_code_form_is_an_option():
    torch.manual_seed(0)
    adv, clean, y = torch.randn(5, 10), torch.randn(5, 10), torch.randint(0, 10, (5,))
    p, q = torch.softmax(clean / 6, 1), torch.log_softmax(adv / 6, 1)
    kl = (p * (p.log() - q)).sum(1).mean()  # KL(P(u)/tau || P(u_adv)/tau), averaged over examples
    ce = F.cross_entropy(adv, y).item()
    # Eq. 5 as printed: mu * KL + (1 - mu) * CE, no tau^2
    assert SelfDistillation(mu=0.95, tau=6.0)(adv, clean, y).item() == pytest.approx(0.95 * kl.item() + 0.05 * ce,
                                                                                   rel=1e-5)
    # the authors' code: mu * tau^2 * KL with PyTorch's 'mean' (over examples and the 10 classes)
    code = SelfDistillation(mu=0.95, tau=6.0, form="code")(adv, clean, y).item()
    assert code == pytest.approx(0.95 * 36 * kl.item() / 10 + 0.05 * ce, rel=1e-5)
    assert SelfDistillation(mu=0.0)(adv, clean, y).item() == pytest.approx(ce)
    with pytest.raises(ConfigError):
        SelfDistillation(form="batchmean")
    method = build_method("last+fgsm_rs", 0.2, **{"last.sd": True, "last.mu": 0.9})
    assert method.sd.mu == 0.9 and method.sd.form == "paper" and method.describe()["sd"]["tau"] == 6.0
    assert build_method("last+fgsm_rs", 0.2, **{"last.sd": True, "last.sd_form": "code"}).sd.form == "code"


def test_resume_is_exact_and_state_holds_the_proxy(tmp_path):
    cfg = tiny_config(method="last+fgsm_rs", epochs=2, method_args={"last.proxy_momentum": 0.9})
    straight, resumed = straight_and_resumed(cfg, tmp_path, stop_after=1)
    assert same_state(straight.method.proxy.state_dict(), resumed.method.proxy.state_dict())
    assert "proxy_optimizer" in straight.method.state_dict()


BASES = sorted(n for n, c in available_methods().items() if not c.wraps)


@pytest.mark.parametrize("name", BASES)
def test_last_wraps_every_method(name):
    """``last+<name>`` builds, sets up and takes one step on a tiny batch of digits-like inputs."""
    torch.manual_seed(0)
    model = get_model("small_cnn", 10, (1, 16, 16))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    method = build_method(f"last+{name}", 0.2)
    method.setup(model, opt, context(shape=(1, 16, 16), classes=10, n=16))
    before = [p.detach().clone() for p in model.parameters()]
    batch = Batch(x=torch.rand(8, 1, 16, 16), y=torch.arange(8) % 10, idx=torch.arange(8), epoch=0, iteration=0)
    out = method.step(model, opt, batch)
    assert torch.isfinite(torch.tensor(out["loss"]))
    assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters()))
    assert all(torch.equal(w, a) for w, a in zip(method.proxy.parameters(), before))  # omega_1 = theta_0


def bn_model():
    """A tiny network with BatchNorm, the layer whose statistics LAST must keep current."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                         nn.Flatten(), nn.Linear(16, 10))


def bn_step(spec, **args):
    model = bn_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    method = build_method(spec, 0.2, **args)
    method.setup(model, opt, context(shape=(1, 16, 16), classes=10, n=16))
    initial = [b.clone() for b in model.buffers()]
    batch = Batch(x=torch.rand(8, 1, 16, 16), y=torch.arange(8) % 10, idx=torch.arange(8), epoch=0, iteration=0)
    method.step(model, opt, batch)
    return model, method, initial


@pytest.mark.parametrize("name", BASES)
def test_target_batchnorm_statistics_follow_training(name):
    """Whether the base attacks in train or eval mode, the target's running statistics move
    with the training forward pass and equal the proxy's after the step."""
    model, method, initial = bn_step(f"last+{name}")
    bn = model[1]
    assert not torch.equal(bn.running_mean, initial[0]) and not torch.equal(bn.running_var, initial[1])
    assert all(torch.equal(t, p) for t, p in zip(model.buffers(), method.proxy.buffers()))


def test_own_buffers_option_is_the_code_and_freezes_an_eval_mode_base():
    model, method, initial = bn_step("last+trades", **{"last.buffers": "own"})
    assert all(torch.equal(b, i) for b, i in zip(model.buffers(), initial))  # TRADES attacks in eval mode
    with pytest.raises(ConfigError):
        build_method("last+fgsm_rs", 0.2, **{"last.buffers": "sync"})
