"""The systems of issue 19 (YOPO, FGSM-CKPT / SSAT, NuAT, Sub-AT, GAT, DyART, LBGAT, MAIL,
CFA, RAT): each trains on digits16, rejects bad parameters with one line, resumes exactly,
and has a ``cpu`` and a ``gpu`` experiment. Their defining properties are tested in
``tests/test_<method>.py``."""
from __future__ import annotations

import math

import pytest

from advlit.experiments import get_config, list_experiments
from advlit.methods import available_methods, build_method
from advlit.train import Trainer
from advlit.utils import ConfigError
from helpers import same_state, straight_and_resumed, tiny_config

#: each method with arguments that keep a digits16 epoch to about a second
CHEAP = {
    "yopo": {"m": 2, "n": 2},
    "fgsm_ckpt": {},
    "ssat": {},
    "nuat": {"ramp_epochs": 0},
    "gat": {},
    "sub_at": {"sample_epochs": 1, "n_components": 4},
    "dyart": {"iters": 5, "bisect": 4, "r0": 0.4},
    "lbgat": {"steps": 2},
    "mail": {"steps": 2, "burn_in": 1},
    "cfa": {"steps": 2, "begin": 1},
    "rat": {"steps": 2},
}
METHODS = sorted(CHEAP)


def test_every_new_method_is_registered_with_an_experiment_pair():
    assert set(METHODS) <= set(available_methods())
    assert list_experiments("baselines.") == sorted(f"baselines.{m}" for m in METHODS)
    for name in METHODS:
        cpu, gpu = get_config(f"baselines.{name}", "cpu"), get_config(f"baselines.{name}", "gpu")
        assert cpu.method == gpu.method == name and cpu.dataset == "digits16" and gpu.dataset == "cifar10"
        for config in (cpu, gpu):  # every argument the experiment names is one the method takes
            build_method(config.method, config.eps, config.alpha_ratio, **config.method_args)


@pytest.mark.parametrize("name", METHODS)
def test_trains_on_digits(name):
    epochs = 2 if name == "sub_at" else 1  # Sub-AT: one sampling epoch, one in the subspace
    cfg = tiny_config(method=name, method_args=CHEAP[name], epochs=epochs, val_subset=32, val_attack="pgd-2",
                      final_attacks=["clean", "pgd-2"], final_subset=32)
    record = Trainer(cfg, progress=False).fit()
    assert record["complete"] and len(record["history"]) == epochs
    assert all(math.isfinite(row["train_loss"]) for row in record["history"])
    assert 0 <= record["final"]["last"]["clean"] <= 100


BAD = [
    ("yopo", {"m": 0}), ("yopo", {"layer_one_grad": "both"}),
    ("fgsm_ckpt", {"checkpoints": 0}), ("ssat", {"init": "normal"}),
    ("nuat", {"lam_max": -1.0}), ("gat", {"init_ratio": 2.0}),
    ("sub_at", {"n_components": 0}), ("sub_at", {"sub_momentum": 1.0}),
    ("dyart", {"temperature": 0.0}), ("dyart", {"clip_grad": -1.0}),
    ("lbgat", {"gamma": -1.0}), ("mail", {"base": "mart"}), ("mail", {"scale": 0.0}),
    ("cfa", {"base": "fat"}), ("cfa", {"lambda_1": -0.5}), ("rat", {"taylor": 1.5}),
    ("rat", {"second_order": "both"}),
]


@pytest.mark.parametrize("name,args", BAD, ids=[f"{n}-{next(iter(a))}" for n, a in BAD])
def test_bad_parameters_are_one_config_error(name, args):
    with pytest.raises(ConfigError) as err:
        build_method(name, 0.2, **args)
    assert "\n" not in str(err.value) and name.split("_")[0] in str(err.value)


@pytest.mark.parametrize("args,word", [({"sample_epochs": 2}, "sample_epochs"),
                                       ({"sample_epochs": 1, "restart_from": 99}, "restart_from")])
def test_sub_at_settings_checked_against_the_run(args, word):
    with pytest.raises(ConfigError, match=word) as err:
        Trainer(tiny_config(method="sub_at", method_args=args, epochs=2), progress=False)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name,args,epochs,stop", [
    ("sub_at", {"sample_epochs": 1, "n_components": 4}, 3, 2),  # resumed inside the subspace phase
    ("lbgat", {"steps": 1}, 2, 1),  # the natural model and its optimizer
    ("cfa", {"steps": 1, "begin": 1}, 2, 1),  # the calibrated class-wise radii
])
def test_resume_is_exact(tmp_path, name, args, epochs, stop):
    cfg = tiny_config(method=name, method_args=args, epochs=epochs, val_subset=32, val_attack="pgd-2",
                      final_attacks=["clean"], final_subset=32)
    straight, resumed = straight_and_resumed(cfg, tmp_path, stop_after=stop)
    a, b = straight.method.state_dict(), resumed.method.state_dict()
    if name == "lbgat":
        assert same_state(a["guide"], b["guide"])
    elif name == "sub_at":
        assert resumed.method.phase == 2 and same_state({"basis": a["basis"]}, {"basis": b["basis"]})
    else:
        assert same_state(a, b) and not (a["class_eps"] == cfg.eps).all()
