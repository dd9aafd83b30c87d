"""PIAT (Alg. 1, Eqs. 9-10): epoch-end interpolation, its schedule, optimizer state, resume."""
from __future__ import annotations

import pytest
import torch

from advlit.frameworks.piat import PIAT, rational_schedule
from advlit.methods import Batch, TrainContext, build_method
from advlit.models import MLP
from advlit.train import Trainer
from advlit.utils import ConfigError
from tests.helpers import same_state, strip_times, tiny_config


def _toy_setup(momentum="keep", interpolate_buffers=True):
    torch.manual_seed(0)
    model = torch.nn.Sequential(MLP(4, 3, hidden=8), torch.nn.BatchNorm1d(3))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    method = build_method("piat+pgd_at", eps=0.1, steps=2, **{"piat.momentum": momentum,
                                                               "piat.interpolate_buffers": interpolate_buffers})
    ctx = TrainContext(num_examples=16, input_shape=(4,), num_classes=3, epochs=3, steps_per_epoch=2,
                       device=torch.device("cpu"))
    method.setup(model, optimizer, ctx)
    return model, optimizer, method


def _train_epoch(model, optimizer, method, epoch):
    gen = torch.Generator().manual_seed(epoch)
    for i in range(2):
        x = torch.rand(8, 4, generator=gen)
        y = torch.randint(0, 3, (8,), generator=gen)
        method.step(model, optimizer, Batch(x, y, torch.arange(8), epoch=epoch, iteration=2 * epoch + i))


def test_schedule_is_eq10_with_one_based_epochs():
    method = build_method("piat+pgd_at", eps=0.1)
    assert method.weight(1) == pytest.approx(2 / 11)
    assert method.weight(10) == pytest.approx(11 / 20)
    assert rational_schedule()(90) == pytest.approx(91 / 100)
    with pytest.raises(ConfigError):
        rational_schedule(a=2, c=1)
    assert PIAT(build_method("pgd_at", eps=0.1), schedule=lambda n: 0.3).weight(7) == 0.3


@pytest.mark.parametrize("momentum", ["keep", "reset"])
def test_epoch_end_interpolates_previous_and_current(momentum):
    model, optimizer, method = _toy_setup(momentum)
    for epoch in range(2):
        previous = {k: v.clone() for k, v in method._previous.items()}
        _train_epoch(model, optimizer, method, epoch)
        current = {k: v.detach().clone() for k, v in model.state_dict().items()}
        buffers_before = {k: s["momentum_buffer"].clone() for k, s in optimizer.state_dict()["state"].items()}
        metrics = method.on_epoch_end(model, epoch)
        lam = (epoch + 2) / (epoch + 11)
        assert metrics["piat_lambda"] == pytest.approx(lam)
        after = model.state_dict()
        for name in previous:  # parameters and BatchNorm running statistics
            expected = lam * previous[name] + (1 - lam) * current[name]
            assert torch.allclose(after[name], expected, atol=1e-7), name
        assert sum(not torch.allclose(after[n], current[n]) for n in previous) >= len(previous) - 1
        assert torch.equal(after["1.num_batches_tracked"], current["1.num_batches_tracked"])
        # training continues from the interpolated weights, which become theta'_{n-1}
        assert all(torch.equal(method._previous[k], after[k]) for k in previous)
        for key, state in optimizer.state_dict()["state"].items():
            buf = state["momentum_buffer"]
            if momentum == "keep":
                assert torch.equal(buf, buffers_before[key]) and torch.count_nonzero(buf) > 0
            else:
                assert torch.count_nonzero(buf) == 0


def test_buffers_can_be_left_alone():
    model, optimizer, method = _toy_setup(interpolate_buffers=False)
    _train_epoch(model, optimizer, method, 0)
    running_mean = model[1].running_mean.clone()
    method.on_epoch_end(model, 0)
    assert torch.equal(model[1].running_mean, running_mean)


def test_state_dict_restores_previous_interpolated_state():
    model, optimizer, method = _toy_setup()
    _train_epoch(model, optimizer, method, 0)
    method.on_epoch_end(model, 0)
    state = method.state_dict()
    _, _, fresh = _toy_setup()
    fresh.load_state_dict(state)
    assert same_state(fresh._previous, method._previous)


def test_resumed_piat_run_equals_uninterrupted(tmp_path):
    cfg = tiny_config(method="piat+fgsm_rs", epochs=2, val_subset=32, final_attacks=["clean"])
    full = Trainer(cfg, progress=False).fit(tmp_path / "full")
    Trainer(cfg, progress=False).fit(tmp_path / "cut", stop_after=1)
    resumed = Trainer(cfg, progress=False).fit(tmp_path / "cut", resume=True)
    assert strip_times(resumed["history"]) == strip_times(full["history"])
    assert [r["method_piat_lambda"] for r in full["history"]] == pytest.approx([2 / 11, 3 / 12])


def test_piat_over_last_builds_and_runs(tmp_path):
    pytest.importorskip("advlit.frameworks.last")
    record = Trainer(tiny_config(method="piat+last+fgsm_rs", epochs=1), progress=False).fit(tmp_path)
    assert record["complete"] and record["history"][0]["method_piat_lambda"] == pytest.approx(2 / 11)


BASES = sorted(n for n, c in __import__("advlit.methods", fromlist=["available_methods"]).available_methods().items()
               if not c.wraps)


@pytest.mark.parametrize("name", BASES)
def test_batchnorm_statistics_are_interpolated_over_every_base(name):
    """On a BatchNorm model, for every base: after one step the running statistics have moved
    (every base trains through a train-mode forward pass), and at the epoch end PIAT sets each
    float buffer to lambda * previous + (1 - lambda) * current (Eq. 9 applied to buffers, the
    default ``interpolate_buffers=True``) while the batch counter keeps its current value."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                                torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten(), torch.nn.Linear(16, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    method = build_method(f"piat+{name}", 0.2)
    ctx = TrainContext(num_examples=16, input_shape=(1, 16, 16), num_classes=10, epochs=2, steps_per_epoch=1,
                       device=torch.device("cpu"), lr_at=lambda t: 0.05, peak_lr=0.05)
    method.setup(model, optimizer, ctx)
    bn = model[1]
    previous = {"running_mean": bn.running_mean.clone(), "running_var": bn.running_var.clone()}
    method.step(model, optimizer, Batch(x=torch.rand(8, 1, 16, 16), y=torch.arange(8) % 10, idx=torch.arange(8),
                                        epoch=0, iteration=0))
    current = {"running_mean": bn.running_mean.clone(), "running_var": bn.running_var.clone()}
    count = bn.num_batches_tracked.clone()
    assert not torch.equal(current["running_mean"], previous["running_mean"])
    method.on_epoch_end(model, 0)
    lam = method.weight(1)
    for key in previous:
        assert torch.allclose(getattr(bn, key), lam * previous[key] + (1 - lam) * current[key])
    assert torch.equal(bn.num_batches_tracked, count)
