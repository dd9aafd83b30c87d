"""Learning-rate schedules (advlit.schedules): PIAT's linear decay (Sec. V-A) and its checks."""
import numpy as np
import pytest

from advlit.config import RunConfig
from advlit.experiments import get_config
from advlit.schedules import lr_schedule
from advlit.utils import ConfigError

#: PIAT, Sec. V-A: "0.01 till epoch 60 and then linearly decays to 0.001, 0.0001 at epoch 90 and 120"
PIAT_LR = {0: 0.01, 59: 0.01, 60: 0.01, 75: 0.0055, 90: 0.001, 105: 0.00055, 120: 0.0001}


def _piat_gpu_schedule():
    cfg = get_config("piat.pgd_at", "gpu")
    return lr_schedule(cfg.lr_schedule, cfg.lr, cfg.epochs, cfg.milestones)


def test_piat_gpu_profile_follows_the_papers_linear_decay():
    # fails on the old approximation (multistep at 75 and 105): 0.001 at epoch 75, 0.0001 at 105
    lr = _piat_gpu_schedule()
    for epoch, value in PIAT_LR.items():
        assert lr(epoch) == pytest.approx(value, abs=1e-9), epoch


def test_linear_decay_is_linear_per_iteration_and_monotone():
    lr = lr_schedule("linear_decay", 0.01, 120, [60, 90, 120])
    steps = 391  # CIFAR-10 at batch 128: the trainer evaluates lr(epoch + (i + 1) / steps)
    t = np.arange(1, 120 * steps + 1) / steps
    values = np.array([lr(x) for x in t])
    assert np.all(np.diff(values) <= 0)
    # within a segment consecutive iterations differ by the same amount (linear in the iteration)
    first = values[(t > 60) & (t <= 90)]
    assert np.allclose(np.diff(first), -0.009 / (30 * steps), rtol=1e-6, atol=0)
    assert lr(60 + 1 / steps) < 0.01  # the decay starts at the first iteration after epoch 60
    assert lr(200) == pytest.approx(0.0001)  # constant after the last milestone


def test_linear_decay_with_two_milestones_and_peak():
    lr = lr_schedule("linear_decay", 0.1, 40, [10, 30])
    assert [lr(t) for t in (0, 10, 20, 30, 40)] == pytest.approx([0.1, 0.1, 0.055, 0.01, 0.01], abs=1e-12)


@pytest.mark.parametrize("milestones", [[], None, [60], [60, 60, 120], [90, 60, 120], [-1, 60], [60, "x"],
                                        [60, float("nan")]])
def test_bad_linear_decay_milestones_raise_one_config_error(milestones):
    with pytest.raises(ConfigError, match="linear_decay needs milestones"):
        lr_schedule("linear_decay", 0.01, 120, milestones)


def test_linear_decay_is_a_known_schedule():
    RunConfig(lr_schedule="linear_decay", milestones=[20, 25, 30]).validate()


def test_the_other_schedules_are_unchanged():
    assert lr_schedule("multistep", 0.1, 40, [36, 38])(37) == pytest.approx(0.01)
    assert lr_schedule("piecewise", 0.1, 30)(24) == pytest.approx(0.01)
    assert lr_schedule("cyclic", 0.2, 30)(15) == pytest.approx(0.2)
    with pytest.raises(ConfigError, match="unknown LR schedule"):
        lr_schedule("linear-decay", 0.1, 30)
