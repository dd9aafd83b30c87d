"""The ``smoke`` profile: every chapter at the ``gpu`` profile's code path, shrunk to run on CPU.

    papermill notebooks/02_atas.ipynb out.ipynb -p profile smoke -p data_root /tmp/fake \\
        -p results_dir /tmp/smoke-results        # data: advlit data fake --dataset cifar10 --root /tmp/fake

``profile="smoke"`` means: the ``gpu`` profile's experiments (the same methods, method
settings, datasets, attacks, schedules and model classes), then :func:`shrink` applied to
each run's settings, then the notebook's parameters. What it proves: every cell of every
chapter runs at the ``gpu`` profile's code path (the real CIFAR loaders on synthetic data in
the real format, PreActResNet-18 / ResNet-18 / WRN, the paper's attacks including the
standard AutoAttack) and produces its tables and figures. What it does not: any number. A
smoke run trains one epoch on a few dozen synthetic images; its records are meaningless and
go to a temporary results folder, never ``results/cpu`` or ``results/gpu``
(:func:`advlit.experiments.results_dir_for`).

Every reduction is in :data:`SMOKE` and :data:`MODELS`, each with the reason; analysis
cells that use fixed sizes (points of a loss landscape, images of a figure) read them from
:meth:`advlit.notebook.Chapter.size`, which returns the smoke size at this profile.
``tests/test_smoke_chapters.py`` runs all six chapters this way with papermill.
"""
from __future__ import annotations

import re
import tempfile
from pathlib import Path

#: settings replaced in every run of the smoke profile (after the experiment's ``gpu`` layer)
SMOKE = {
    # the test runs on the CPU of any machine (the gpu profile says cuda)
    "device": "cpu",
    # one epoch: the schedules, validation, best-checkpoint choice and final evaluation all run
    # once; epoch-counted method settings (resets, warm-ups, milestones) keep their values and
    # so take their first-epoch branch (every periodic update also runs at iteration/epoch 0)
    "epochs": 1,
    # small batches so that a tiny training split still has more than one batch per epoch
    "batch_size": 16,
    # validation attack (PGD-20) on 8 held-out images instead of 1,000
    "val_subset": 8,
    # the final attacks (PGD-10, PGD-50x10, C&W-20, ...) on the first 8 test images instead
    # of all 10,000; the attacks' iteration counts and restarts are unchanged
    "final_subset": 8,
    # AutoAttack on the first 2 test images (see AUTOATTACK: its cost is per robust batch)
    "aa_subset": 2,
}

#: the standard AutoAttack ("aa": APGD-CE, APGD-T, FAB-T, Square) becomes its APGD-CE + APGD-T
#: subset ("aa-fast", through the same pyautoattack call): once a model keeps one image
#: robust, as a one-epoch model that predicts one class does, the standard version runs
#: every stage to the end, ~105 s per run on one core at width 8 (FAB-T's 9 targets and
#: Square's 5,000 queries), ~25 s for "aa-fast". FAB-T and Square are not run by the smoke.
AUTOATTACK = {"aa": "aa-fast"}

#: the papers' networks at a reduced width: the same classes and layers (so the same code
#: path: BatchNorm, projection shortcuts, pooling), about 1/64 of the FLOPs
MODELS = {
    # PreActResNet-18 / ResNet-18 with 8 channels in the first stage instead of 64 (8, 16, 32,
    # 64 per stage): ~0.18 M parameters instead of 11.2 M
    "preact_resnet18": ("preact_resnet18", {"width": 8}),
    "resnet18": ("resnet18", {"width": 8}),
    # WRN-34-10 / WRN-28-10 as WRN-10-1 (one block per group, 16/32/64 channels): the same
    # WideResNet class and blocks, ~0.08 M parameters instead of 46 M / 36 M
    "wrn34_10": ("wrn", {"depth": 10, "width": 1}),
    "wrn28_10": ("wrn", {"depth": 10, "width": 1}),
    "wrn": ("wrn", {"depth": 10, "width": 1}),
    # vision transformers (ViT-Base, DeiT-S, DeiT-Ti shape) as the same VisionTransformer class
    # at width 32, depth 2, 2 heads (vit_tiny_digits' shape); the patch size is kept
    **{name: ("vit", {"dim": 32, "depth": 2, "heads": 2, "mlp_ratio": 2.0}) for name in ("vit", "vit_base", "deit_small")},
}
#: model options a shrunk model keeps from the experiment (the others are MODELS' values)
KEEP_OPTIONS = ("dropout", "patch")

#: sizes of the chapters' analysis cells at the smoke profile (:meth:`Chapter.size`)
SIZES = {
    "points": 4,      # test images of an analysis (landscapes, gradient maps, curves)
    "grid": 3,        # points per axis of a loss landscape or a sweep
    "images": 8,      # test images attacked for a table or a figure
    "epochs": 2,      # epochs of a side study that trains outside the run records (PIAT's toy models)
}


#: restarts of a final PGD / C&W attack: ``pgd-50x10`` (500 forward-backward passes, ~17 s
#: per checkpoint on one core even at width 8) becomes ``pgd-50x2``: the same 50 iterations
#: and the same multi-restart code path (keep the worst case over restarts), 1/5 of the cost.
#: Chapters read attack names from the run's config (:meth:`advlit.notebook.Chapter.attack`).
MAX_RESTARTS = 2


def smoke_attack(name: str) -> str:
    """``name`` at the smoke profile: restarts capped at :data:`MAX_RESTARTS` (``pgd-50x10`` ->
    ``pgd-50x2``), the standard AutoAttack as its fast subset (:data:`AUTOATTACK`)."""
    if name in AUTOATTACK:
        return AUTOATTACK[name]
    m = re.fullmatch(r"(pgd|cw)-(\d+)x(\d+)", name)
    if m and int(m.group(3)) > MAX_RESTARTS:
        return f"{m.group(1)}-{m.group(2)}x{MAX_RESTARTS}"
    return name


def shrink(settings: dict) -> dict:
    """``settings`` (a run's, layered from the ``gpu`` profile) with the smoke reductions."""
    out = {**settings, **SMOKE}
    for key in ("final_attacks",):
        if key in out:
            out[key] = [smoke_attack(a) for a in out[key]]
    if "val_attack" in out:
        out["val_attack"] = smoke_attack(out["val_attack"])
    model = out.get("model")
    if model in MODELS:
        name, args = MODELS[model]
        keep = {k: v for k, v in (out.get("model_args") or {}).items() if k in KEEP_OPTIONS}
        out["model"], out["model_args"] = name, {**keep, **args}
    return out


def default_results_dir() -> Path:
    """Where smoke records go when no ``results_dir`` is given: a folder under the system's
    temporary directory (never the repository's ``results/``)."""
    return Path(tempfile.gettempdir()) / "advlit-smoke-results"
