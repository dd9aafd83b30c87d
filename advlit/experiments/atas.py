"""Experiments of the ATAS chapter (Huang et al. 2022): prefix ``atas.``.

Learning-rate schedules: ATAS, Appendix B trains ATTA and ATAS with the piecewise schedule
(LR 0.1, divided by 10 at epochs 24 and 28 of 30; ``PIECEWISE``) and "chooses the best
scheduler for each method" for the others; FGSM-RS, GradAlign, Free-AT and PGD-AT keep the
cyclic schedule of Wong et al. here, in both profiles.

cpu profile (digits16, the profile's CNN without BatchNorm, eps = 0.2, 30 epochs):
    ATAS uses the maximum step gamma / c = 2 eps (``alpha_ratio=2``, the step that makes
    FGSM-RS collapse), c = 0.5 on the L2 norm of the *per-example* input gradient
    (``grad_norm="example"``; App. B: "c should be close to the magnitude of v", and the
    digits' gradient norms grow from about 0.04 to several units during training) and a
    minimum step of 0.5 eps, the official code's lower clamp (4/255 at 8/255). Without a
    minimum the step of large-norm examples would keep shrinking as their norms grow.
    c and the minimum were chosen on the *validation* split among the ``atas.atas_*``
    variants below with the previous stand-in (``small_cnn``) and are kept; with the current
    one the validation puts c = 1.0 (same minimum) ahead by under 2 points on 100 validation
    digits per seed, within their noise (the chapter shows the selection table, validation
    beside test).
gpu profile (the paper's protocol, Sec. V and Appendix): CIFAR-10, ResNet-18 (Table Ia), 30
    epochs, piecewise LR for ATTA and ATAS; gamma / c = 16/255 (``alpha_ratio=2`` at 8/255;
    the paper fixes 16/255 at every budget, so an ATAS run at 12/255 or 16/255 would state
    it as ``method_args={"alpha": 16 / 255}``, which :func:`advlit.methods.build_method`
    keeps over ``alpha_ratio``; no experiment of this chapter runs ATAS at another budget),
    c = 0.01 on the gradient of the batch-mean loss as in the official code
    (``grad_norm="batch_mean"``; ATAS's defaults, stated explicitly), beta = 0.5, reset every 10 epochs, no clamp and no
    warm-up (the paper's Alg. 1); ``atas.atas_code`` adds the official code's clamp
    [4/255, 14/255] and 5 warm-up epochs.

``METHOD_DEFAULTS`` gives ``advlit train --method atas|atta`` (no ``--experiment``) the
same settings: the piecewise schedule, and ATAS's c (and on the digits its norm convention
and minimum step) for the dataset, unless the command line sets them.

Free-AT's budget: one trainer epoch of ``free_at`` is one pass over the data in which every
batch is replayed ``replays`` times, so it costs ``replays`` forward-backward passes per
batch against 2 for FGSM-RS. The cpu profile gives Free-AT (m = 4) 15 epochs: 60
forward-backward passes per example, the same as 30 epochs of FGSM-RS; the gpu profile uses
the paper's Free-8 for 10 epochs (ATAS, Appendix).

The subset study (ATAS Sec. III, Fig. 3) wraps FGSM-RS in the ``subset`` framework
(:class:`advlit.methods.atas.Subset`); its indices come from the gradient-norm ranks of an
ATTA run (:func:`subset_indices`), so they are passed at run time with ``method_args``.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

from advlit.grid import derived

ATTACKS_CPU = ["clean", "pgd-10", "pgd-20", "pgd-50", "aa-fast"]
#: cpu evaluation budget: validation on 100 held-out digits, AutoAttack (APGD-CE + APGD-T,
#: "aa-fast") on the first 50 test digits; the 2 CPU cores of the book build are shared.
EVAL_CPU = dict(val_subset=100, aa_subset=50)
ATTACKS_GPU = ["clean", "pgd-10", "pgd-50x10", "aa"]
#: gpu settings of every experiment of the chapter: ResNet-18, the model of ATAS, Table Ia
#: ("RN-18"; the profile default is PreActResNet-18) and Sec. III
GPU_COMMON = dict(model="resnet18", final_attacks=ATTACKS_GPU)
PIECEWISE = dict(lr=0.1, lr_schedule="piecewise")  # ATTA / ATAS protocol (ATAS, Appendix)

#: ATAS settings per profile (see the module docstring)
ATAS_DIGITS = dict(c=0.5, grad_norm="example", min_step_ratio=0.5)
ATAS_CIFAR = dict(c=0.01, grad_norm="batch_mean")
ATAS_CPU = dict(ATAS_DIGITS, track_norms=True)
#: What ``advlit train --method atta|atas`` uses when it is not given an ``--experiment`` and
#: the command line does not set it (:func:`advlit.experiments.method_defaults`): ATTA's and
#: ATAS's piecewise schedule (App. B) on every dataset, and ATAS's c for the data: the
#: paper's 0.01 with the official code's batch-mean gradient on the 32x32 sets (Tiny ImageNet
#: gets the same; the paper gives 0.1 only for 224x224 ImageNet), the cpu profile's setting
#: on the digits (chosen on digits16).
METHOD_DEFAULTS = {
    "atta": {"*": PIECEWISE},
    "atas": {"*": PIECEWISE,
             **{d: dict(method_args=ATAS_DIGITS) for d in ("digits", "digits16")},
             **{d: dict(method_args=ATAS_CIFAR) for d in ("cifar10", "cifar100", "svhn", "tinyimagenet")}},
}
#: GradAlign's lambda at eps = 0.2 on digits16; the eps rule of the authors' script gives
#: lambda = 0.02 * 10 ** (51 / 8) ~ 5e4 there, far outside the range it was fitted on
#: (eps <= 16/255), so the cpu profile sets lambda by hand (see the chapter).
GRADALIGN_LAMBDA_CPU = 1.0


#: the alternatives to ATAS_CPU compared on validation (the chosen one is ``atas.atas``)
ATAS_CPU_VARIANTS = {"c0.3": dict(c=0.3), "c0.3_min0.75": dict(c=0.3, min_step_ratio=0.75),
                     "c0.3_min1.0": dict(c=0.3, min_step_ratio=1.0), "c1.0": dict(c=1.0)}
#: the experiments of the selection table: the chosen setting, the variants, the cyclic one
ATAS_SELECTION = ["atas.atas", *(f"atas.atas_{tag}" for tag in ATAS_CPU_VARIANTS), "atas.atas_cyclic"]


def _exp(method, alpha_ratio=None, cpu=None, gpu=None, **common):
    spec = {"common": dict(method=method, final_attacks=ATTACKS_CPU, **common),
            "cpu": dict(EVAL_CPU, **(cpu or {})), "gpu": dict(GPU_COMMON, **(gpu or {}))}
    if alpha_ratio is not None:
        spec["common"]["alpha_ratio"] = alpha_ratio
    return spec


EXPERIMENTS = {
    # Table I and the catastrophic-overfitting pair
    "atas.fgsm_rs": _exp("fgsm_rs", 1.25),
    "atas.fgsm_rs_2eps": _exp("fgsm_rs", 2.0),
    # gpu: track_norms too, for the chapter's GN histogram, subsets (Fig. 3, 6a) and Fig. 10 (records only)
    "atas.atas": _exp("atas", 2.0, cpu=dict(method_args=ATAS_CPU), gpu=dict(method_args=dict(ATAS_CIFAR, track_norms=True)),
                      **PIECEWISE),
    "atas.atas_code": _exp("atas", 2.0, cpu=dict(method_args=dict(ATAS_CPU, max_step_ratio=1.75, warmup_epochs=5)),
                           gpu=dict(method_args=dict(ATAS_CIFAR, min_step_ratio=0.5, max_step_ratio=1.75,
                                                     warmup_epochs=5)), **PIECEWISE),
    "atas.atta": _exp("atta", 0.5, cpu=dict(method_args=dict(track_norms=True)), gpu=dict(method_args=dict(track_norms=True)),
                      **PIECEWISE),
    "atas.gradalign": _exp("gradalign", 1.25, cpu=dict(method_args=dict(lam=GRADALIGN_LAMBDA_CPU))),
    "atas.free_at": _exp("free_at", 1.0, cpu=dict(method_args=dict(replays=4), epochs=15),
                         gpu=dict(method_args=dict(replays=8), epochs=10)),
    "atas.pgd_at": _exp("pgd_at", 0.25, gpu=dict(**PIECEWISE)),
    # the cpu setting's selection (3 seeds, chosen on validation): c and the minimum step, and
    # the cyclic schedule of the first version of this chapter
    **{f"atas.atas_{tag}": _exp("atas", 2.0, cpu=dict(method_args=dict(ATAS_CPU, **args)), **PIECEWISE)
       for tag, args in ATAS_CPU_VARIANTS.items()},
    "atas.atas_cyclic": _exp("atas", 2.0, cpu=dict(method_args=dict(ATAS_CPU, c=0.3))),
    # Fig. 4: FGSM-RS step sizes
    "atas.fgsm_rs_step0.5": _exp("fgsm_rs", 0.5, cpu=dict(final_attacks=["clean", "pgd-20"])),
    "atas.fgsm_rs_step1.0": _exp("fgsm_rs", 1.0, cpu=dict(final_attacks=["clean", "pgd-20"])),
    "atas.fgsm_rs_step1.5": _exp("fgsm_rs", 1.5, cpu=dict(final_attacks=["clean", "pgd-20"])),
    # Fig. 3: FGSM-RS on gradient-norm subsets (indices given at run time)
    "atas.subset_fgsm_rs_2eps": _exp("subset+fgsm_rs", 2.0, cpu=dict(final_attacks=["clean", "pgd-20"])),
    "atas.subset_fgsm_rs": _exp("subset+fgsm_rs", 1.25, cpu=dict(final_attacks=["clean", "pgd-20"])),
}

#: the methods of the in-process timing experiment, in the order they are timed
TIMED = ["atas.fgsm_rs", "atas.atta", "atas.atas", "atas.gradalign", "atas.free_at", "atas.pgd_at"]

#: reasons why a setting differs from the paper's (``book/paper_tables/paper_settings.csv``;
#: :func:`advlit.protocol.protocol_table`); every gpu setting of this chapter matches
GPU_DEVIATIONS: dict = {}
CPU_DEVIATIONS = {
    ("table1", "method_args.c"): "cpu: c = 0.5 on the per-example gradient norm, chosen on the validation split among "
                                 "the atas.atas_* variants (App. B: c should be close to the magnitude of v, and the "
                                 "digits' gradient norms are not CIFAR-10's)",
    ("table1", "alpha_ratio"): "cpu: the steps as the same multiples of eps (ATTA eps / 2, ATAS's maximum 2 eps: "
                               "4/255 and 16/255 at 8/255)",
    ("atas.free_at", "*"): "cpu: Free-AT with m = 4 replays for 15 epochs, 60 forward-backward passes per example "
                           "like 30 epochs of FGSM-RS (module docstring)",
}

log = logging.getLogger(__name__)


def subset_indices(chapter, lo: int, hi: int, source: str = "atas.atta", seed: int = 0) -> list[int]:
    """Indices of the subset D_lo^hi of ATAS Sec. III (gradient-norm deciles lo..hi, 1-based)
    ranked by the per-example input-gradient norm averaged over the run ``source``."""
    from advlit.analysis.gradient_norms import average_norms_from_record, decile_subset

    record = chapter.run(source, seeds=[seed])[0]
    return decile_subset(average_norms_from_record(record), lo, hi).tolist()


@derived
def run_subset(chapter, name: str, lo: int, hi: int, seeds=None) -> list[dict]:
    """Train experiment ``name`` (a ``subset+...`` spec) on D_lo^hi for every seed. The
    subset's indices come from the ATTA run, so ``advlit grid`` replays this helper at each
    profile once that run is done (:func:`advlit.grid.derived`)."""
    indices = subset_indices(chapter, lo, hi)
    return chapter.run(name, seeds=seeds, method_args={"subset.indices": indices})


def time_methods(chapter, names=TIMED, epochs: int = 2, rounds: int = 1, refresh: bool = False) -> dict:
    """Seconds per training epoch of each experiment, measured back to back in one process
    (:func:`advlit.bench.time_experiments`: the methods interleaved, so that a change of
    machine load hits all of them), cached in ``<results_dir>/atas_timing.json``.
    ``seconds_per_epoch`` is each method's mean over its ``epochs * rounds`` epochs.
    """
    from advlit.bench import time_experiments

    out = time_experiments(chapter, names, epochs=epochs, rounds=rounds, cache="atas_timing.json", refresh=refresh)
    return {**out, "seconds_per_epoch": {n: sum(v) / len(v) for n, v in out["seconds"].items()}}


def landscapes(chapter, names=("atas.fgsm_rs_2eps", "atas.atas"), seed: int = 0, n_points: int = 64, grid: int = 21,
               refresh: bool = False) -> dict:
    """ATAS Fig. 9 / 10: the adversarial loss landscape (:func:`advlit.analysis.landscape.adversarial_landscape`)
    of the last checkpoint of each experiment, on the first ``n_points`` test examples.

    Cached in ``<results_dir>/atas_landscapes.json`` with the hashes of the runs they were
    computed from; recomputing needs the checkpoints (retrained when absent).
    """
    import torch

    from advlit.analysis.landscape import adversarial_landscape
    from advlit.data import get_dataset
    from advlit.results import code_fingerprint, load_model

    configs = {n: chapter.config(n, seed=seed) for n in names}
    key = {n: [c.hash(), code_fingerprint(c), n_points, grid] for n, c in configs.items()}
    path = Path(chapter.results_dir) / "atas_landscapes.json"
    if path.exists() and not refresh:
        cached = json.loads(path.read_text())
        if cached.get("key") == key:
            return {n: {k: torch.tensor(v) if isinstance(v, list) else v for k, v in res.items()}
                    for n, res in cached["landscapes"].items()}
    out = {}
    for n, cfg in configs.items():
        record = chapter.run(n, seeds=[seed], need_model=True)[0]
        model = load_model(record, "last", device=cfg.device)
        test = get_dataset(cfg.dataset, "test", root=cfg.data_root)
        x, y = test.batch(torch.arange(min(n_points, len(test))), device=cfg.device)
        out[n] = adversarial_landscape(model, x, y, cfg.eps, n=grid, seed=seed)
    serial = {n: {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in res.items()} for n, res in out.items()}
    path.write_text(json.dumps({"key": key, "landscapes": serial}))
    return out


def generate(profile: str = "cpu") -> None:
    """Produce every record of the chapter, most important first (``python -m
    advlit.experiments.atas``): the catastrophic-overfitting pair (3 seeds), the landscapes,
    one seed of the other Table I methods, the timing, the subsets (Fig. 3), the step-size
    sweep (Fig. 4), PGD-AT, then the remaining seeds and the selection of ATAS's cpu setting."""
    from advlit.notebook import Chapter

    chapter = Chapter(profile=profile)
    one = chapter.seeds[:1]
    for name in ("atas.atas", "atas.fgsm_rs_2eps"):
        chapter.run(name, seeds=one)
    landscapes(chapter)  # needs the seed-0 checkpoints
    for name in ("atas.atas", "atas.fgsm_rs_2eps"):
        chapter.run(name)
    for name in ("atas.atta", "atas.fgsm_rs", "atas.free_at", "atas.gradalign"):
        chapter.run(name, seeds=one)
    time_methods(chapter)
    for seeds in (chapter.seeds[:1], chapter.seeds[1:2]):
        run_subset(chapter, "atas.subset_fgsm_rs_2eps", 1, 3, seeds=seeds)
        run_subset(chapter, "atas.subset_fgsm_rs_2eps", 8, 10, seeds=seeds)
        if seeds == chapter.seeds[:1]:
            for name in ("atas.fgsm_rs_step1.0", "atas.fgsm_rs_step1.5", "atas.fgsm_rs_step0.5"):
                chapter.run(name, seeds=one)
    chapter.run("atas.pgd_at", seeds=one)
    for name in ("atas.atta", "atas.fgsm_rs", "atas.free_at", "atas.gradalign", "atas.pgd_at", *ATAS_SELECTION):
        chapter.run(name)


if __name__ == "__main__":
    import sys

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    generate(*(sys.argv[1:2] or ["cpu"]))
