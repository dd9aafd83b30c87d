"""FGSM-SDI: the generator's output, the eps-ball, the update interval, the direction of
the generator update, the input ablation and exact resume."""
import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from advlit.methods import Batch, TrainContext, build_method
from helpers import same_state, straight_and_resumed, tiny_config

EPS = 0.2
C, H, W = 1, 8, 8


def tiny_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(C, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * H * W, 10))


def setup(**kwargs):
    model = tiny_net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    torch.manual_seed(1)
    method = build_method("fgsm_sdi", EPS, 1.0, width=8, **kwargs)
    ctx = TrainContext(num_examples=64, input_shape=(C, H, W), num_classes=10, epochs=2, steps_per_epoch=4,
                       device=torch.device("cpu"))
    method.setup(model, opt, ctx)
    return model, opt, method


def make_batch(seed=0, n=16, iteration=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, C, H, W, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    return Batch(x=x, y=y, idx=torch.arange(n), iteration=iteration)


def generator_params(method):
    return [p.detach().clone() for p in method.generator.parameters()]


def test_perturbation_and_initialisation_in_ball_and_box():
    model, _, method = setup()
    batch = make_batch()
    s = method.signed_gradient(model, batch.x, batch.y)
    eta = method.initialisation(batch.x, s)
    assert eta.shape == batch.x.shape and eta.abs().max() <= EPS
    x_adv = method.perturb(model, batch)
    assert x_adv.shape == batch.x.shape
    assert (x_adv - batch.x).abs().max() <= EPS + 1e-6
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert method.alpha == EPS  # alpha_ratio 1


def test_generator_updated_only_every_k_batches():
    k = 3
    model, opt, method = setup(interval=k)
    changed = []
    for it in range(2 * k + 1):
        before = generator_params(method)
        metrics = method.step(model, opt, make_batch(seed=it, iteration=it))
        after = generator_params(method)
        changed.append(any(not torch.equal(a, b) for a, b in zip(before, after)))
        assert ("generator_loss" in metrics) == (it % k == 0)
    assert changed == [it % k == 0 for it in range(2 * k + 1)]


def test_generator_update_increases_the_attack_loss():
    model, _, method = setup(generator_lr=1e-2)
    batch = make_batch(seed=4, n=32)
    s = method.signed_gradient(model, batch.x, batch.y)
    target_before = copy.deepcopy(model.state_dict())

    def attack_loss():
        with torch.no_grad():
            eta = method.initialisation(batch.x, s)
        x_adv = method.adversarial(model, batch.x, batch.y, eta)
        with torch.no_grad():
            return F.cross_entropy(model(x_adv), batch.y).item()

    before = attack_loss()
    reported = method.update_generator(model, batch.x, batch.y, s)["generator_loss"]
    after = attack_loss()
    assert reported == pytest.approx(before, rel=1e-5)
    assert after > before
    assert same_state(target_before, model.state_dict())  # the target model is not trained here
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("which,channels", [("both", 2 * C), ("benign", C), ("grad", C)])
def test_generator_input_ablation(which, channels):
    model, _, method = setup(generator_input=which)
    assert method.generator.net[0].in_channels == channels
    batch = make_batch()
    x_adv = method.perturb(model, batch)
    assert (x_adv - batch.x).abs().max() <= EPS + 1e-6


def test_bad_generator_input_is_refused():
    from advlit.utils import ConfigError

    with pytest.raises(ConfigError, match="generator_input"):
        build_method("fgsm_sdi", EPS, 1.0, generator_input="noise")


def test_state_dict_round_trip_gives_identical_next_steps():
    k = 2
    model, opt, method = setup(interval=k)
    method.step(model, opt, make_batch(seed=0, iteration=0))
    saved = (copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict()), method.state_dict())
    for it in (1, 2):  # one plain step, then one with a generator update
        method.step(model, opt, make_batch(seed=it, iteration=it))
    model2, opt2, method2 = setup(interval=k)
    model2.load_state_dict(saved[0])
    opt2.load_state_dict(saved[1])
    method2.load_state_dict(saved[2])
    for it in (1, 2):
        method2.step(model2, opt2, make_batch(seed=it, iteration=it))
    assert same_state(model.state_dict(), model2.state_dict())
    assert same_state(method.generator.state_dict(), method2.generator.state_dict())


def test_trainer_resume_is_exact(tmp_path):
    cfg = tiny_config(method="fgsm_sdi", alpha_ratio=1.0, epochs=2, method_args={"interval": 3, "width": 8})
    straight, resumed = straight_and_resumed(cfg, tmp_path, stop_after=1)
    assert same_state(straight.method.generator.state_dict(), resumed.method.generator.state_dict())
