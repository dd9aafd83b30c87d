"""Experiments of the comparison chapter (issue 18): every method under ONE protocol per profile.

Names: ``compare.<method spec>`` (``compare.fgsm_rs``, ``compare.piat+last+atas``) and, at the
``gpu`` profile, ``compare_fastat.<method>`` (FastAT Benchmark's published protocol). No
chapter loads them yet; :mod:`advlit.compare` builds the table and figures from their records.

The common protocol
-------------------
Every ``compare.*`` experiment takes *all* its run settings from the profile
(:data:`advlit.experiments.PROFILES`) and sets only its method and the method's own knobs
(``alpha_ratio``, ``method_args``); ``tests/test_compare.py`` checks that no two
``compare.*`` configurations of a profile differ in anything else (Free-AT's epochs aside,
below). So the protocol follows the profile (the cpu stand-in model included) by
reference:

``cpu``: digits16, the profile's model, eps = 0.2, 30 epochs, the cyclic LR peaking at 0.1,
    SGD momentum 0.9 / weight decay 5e-4, batch 128; the best checkpoint by PGD-20 on the
    first 100 validation digits; final attacks clean, FGSM, PGD-20, PGD-50, C&W-20 on the
    whole test split (397 digits) and AutoAttack (``aa-fast``: APGD-CE + APGD-T) on its first
    100 digits (``aa_subset`` = 100, the profile's).
``gpu``: CIFAR-10, the profile's PreActResNet-18, eps = 8/255, 30 epochs, the cyclic LR
    peaking at 0.2, the rest as at cpu; validation PGD-20 on 1,000 images; final attacks on
    the full test set: clean, FGSM, PGD-10, PGD-20 (added to the profile's list, a column of
    the comparison table), PGD-50 with 10 restarts and standard AutoAttack (``aa``).

The schedule family is the profile's cyclic one for every method, also for ATTA and ATAS,
whose paper trains them with the piecewise schedule (the ATAS chapter's
``atas.atas_cyclic`` shows ATAS under the cyclic one); the LAS methods and PIAT train 30
epochs instead of their papers' 110 / 120. These are protocol settings, the point of the
chapter, not deviations of a method.

Free-AT's epochs: one trainer epoch of ``free_at`` replays every batch ``m`` times, so it
trains ``round(2 E / m)`` epochs for the protocol's E: the forward-backward passes per
example of E epochs of FGSM-RS (2 per batch), the rule of the ATAS chapter's cpu setting
(m = 4: 15 epochs for 30) and of FastAT Benchmark (m = 4: 50 epochs for 100); m = 8 at the
gpu profile gives 8 epochs. YOPO-5-3 keeps the protocol's epochs (its cost shows on the
cost axis).

Each method's knobs
-------------------
They are read, not copied, from the chapter experiment that runs the method
(:data:`SOURCES`) at the same profile: the ATAS chapter's step sizes, ATAS's c and norm
convention, GradAlign's lambda at eps = 0.2, Free-AT's m; the initialisation chapter's
FGSM-SDI generator and FGSM-BP/EP/MEP resets; the LAS-AT chapter's option sets; LAST's gamma
and proxy LR (``last.LAST_CPU`` / ``LAST_GPU``) for every ``last+...``; the baselines module's
settings of the issue-19 methods. Two rules keep one protocol:

* a PGD-based method keeps its paper's training attack (PGD-10, its paper's step) at the cpu
  profile too, where the PIAT chapter and the baselines module cut it to PGD-3 for their
  15-epoch CPU budget (:data:`SOURCES` names the keys taken from the ``gpu`` spec);
* a knob counted in epochs (CFA's start, MAIL's burn-in, Sub-AT's sampling epochs, GAT's
  boost epoch, DyART's clean epochs) is scaled from its source's epochs to the protocol's
  (:data:`EPOCH_KNOBS`), at least 1.

A framework adds only its own knobs (LAST: gamma and the proxy LR; PIAT and NMSE: their
defaults, the PIAT paper's), so ``compare.last+atas`` differs from ``compare.atas`` in the
framework alone. Methods that cannot stand under the common protocol are listed in
:data:`NOT_COMPARED` with the reason.

One knob changed (cpu)
----------------------
``compare_retuned.<method>`` for the three baselines that do not train under the cpu
protocol with their authors' knobs (YOPO, DyART, Sub-AT): ``compare.<method>`` with ONE
setting changed (:data:`RETUNED`, with the reason for each value). Chapter 07 shows them
beside their table rows and outside the table, which keeps the authors' knobs.

The ``fastat`` protocol (gpu)
-----------------------------
``compare_fastat.<method>`` for FGSM-RS, GradAlign, Free-AT, FGSM-PGI (``fgsm_mep``) and
PGD-AT: FastAT Benchmark's published settings (fzjcdt/FastAT_Benchmark, README and
``configs/cifar10/*.yaml``): CIFAR-10, ResNet-18, eps = 8/255, 100 epochs (Free-AT: 50 with
m = 4), one-cycle LR peaking at 0.1, SGD 0.9 / 5e-4, batch 128, 1,000 validation images,
the best checkpoint by validation PGD-10, and each method's settings from its config file
(FGSM-RS 1.25 eps; GradAlign alpha = eps, lambda = 0.2; Free-AT alpha = eps; FGSM-PGI the
authors' code with label smoothing 0.4; PGD-AT 10 steps of 2/255). Where the package
matches a stated setting, ``book/paper_tables/paper_settings.csv`` (chapter ``comparison``)
has the row and :func:`advlit.protocol.protocol_table` checks it; what differs is in
:data:`GPU_DEVIATIONS`, and what the package cannot express at all (the trainer has no weight
averaging, most losses no label smoothing) is in :data:`FASTAT_GAPS`. Their published numbers:
``book/paper_tables/fastat_benchmark.csv``. At the cpu profile each ``compare_fastat.<m>`` is
the same run as ``compare.<m>``: the protocol has a gpu meaning only.
"""
from __future__ import annotations

from advlit.experiments import PROFILES, atas, baselines, basics, initialization, las_at, last, layer_settings, piat

PREFIX = "compare."
FASTAT_PREFIX = "compare_fastat."

#: the protocol settings each profile adds to :data:`~advlit.experiments.PROFILES` (only
#: evaluation; everything else is the profile's)
PROTOCOL = {
    "cpu": {},
    "gpu": {"final_attacks": ["clean", "fgsm", "pgd-10", "pgd-20", "pgd-50x10", "cw-20", "aa"]},
}

#: every chapter experiment a method can take its knobs from
_CHAPTER_EXPERIMENTS = {**atas.EXPERIMENTS, **baselines.EXPERIMENTS, **basics.EXPERIMENTS,
                        **initialization.EXPERIMENTS, **las_at.EXPERIMENTS, **last.EXPERIMENTS, **piat.EXPERIMENTS}
_PGD = ("alpha_ratio", "steps")
#: base method -> (the chapter experiment whose knobs it takes at the same profile, the knobs
#: the cpu protocol takes from that experiment's ``gpu`` spec, i.e. its paper's values);
#: ``None``: the method's own defaults
SOURCES: dict[str, tuple[str | None, tuple[str, ...]]] = {
    "alp": ("piat.alp", _PGD),
    "atas": ("atas.atas", ()),
    "atta": ("atas.atta", ()),
    "awp": ("las.awp", ()),
    "cfa": ("baselines.cfa", (*_PGD, "base", "beta", "begin")),
    "dyart": ("baselines.dyart", ()),
    "fast_bat": ("last.fast_bat", ()),
    "fgsm": (None, ()),  # FGSM-AT (Goodfellow et al.): step eps, no random start
    "fgsm_bp": ("init.fgsm_bp", ()),
    "fgsm_ckpt": ("baselines.fgsm_ckpt", ("alpha_ratio",)),
    "fgsm_ep": ("init.fgsm_ep", ()),
    "fgsm_mep": ("init.fgsm_mep", ()),
    "fgsm_rs": ("atas.fgsm_rs", ()),
    "fgsm_sdi": ("init.fgsm_sdi", ()),
    "free_at": ("atas.free_at", ()),
    "gat": ("baselines.gat", ("alpha_ratio", "lam", "boost_epoch", "boost")),
    "gradalign": ("atas.gradalign", ()),
    "las_awp": ("las.las_awp", ()),
    "las_pgd_at": ("las.las_pgd_at", ()),
    "las_trades": ("las.las_trades", ()),
    "lbgat": ("baselines.lbgat", (*_PGD, "beta", "gamma")),
    "mail": ("baselines.mail", (*_PGD, "base", "burn_in")),
    "mart": ("piat.mart", _PGD),
    "nuat": ("baselines.nuat", ("alpha_ratio", "lam_max", "init_ratio")),
    "pgd_at": ("basics.pgd_at", ()),  # PGD-10 with step eps / 4 (Madry et al.), the method's defaults
    "rat": ("baselines.rat", (*_PGD, "beta", "taylor")),
    "ssat": ("baselines.ssat", ("alpha_ratio",)),
    "sub_at": ("baselines.sub_at", ("alpha_ratio", "sample_epochs", "samples_per_epoch", "n_components", "sub_lr")),
    "trades": ("piat.trades", _PGD),
    "yopo": ("baselines.yopo", ("alpha_ratio", "m", "n")),
}
#: knobs counted in epochs: scaled from their source's epochs to the protocol's
EPOCH_KNOBS = {"begin", "burn_in", "sample_epochs", "boost_epoch", "clean_epochs"}
#: options of a method that record analysis data and change no result
ANALYSIS_ONLY = {"track_norms"}
#: framework -> its knobs per profile (PIAT and NMSE: their defaults, the PIAT paper's)
FRAMEWORK_KNOBS = {"last": {"cpu": last.LAST_CPU, "gpu": last.LAST_GPU}}

#: the compositions of frameworks and bases compared (issue 18 asks for the first six)
COMPOSITIONS = [
    "last+atas", "piat+atas", "piat+last+fgsm_rs", "last+fgsm_mep", "piat+las_pgd_at", "piat+last+atas",
    # LAST's and PIAT's own chapters' pairs, under the common protocol
    "last+fgsm_rs", "last+gradalign", "last+fast_bat", "last+pgd_at",
    "piat+pgd_at", "piat+alp", "piat+trades", "piat+mart", "nmse+pgd_at", "piat+nmse+pgd_at",
]
#: registered names that are not compared, with the reason
NOT_COMPARED = {
    "standard": "not adversarial training: the clean-training reference of chapter 01 (basics.standard), with no "
                "robustness to compare",
    "subset": "an analysis framework of ATAS, Sec. III (FGSM-RS on a gradient-norm subset of the training data, whose "
              "indices come from an ATTA run), not a training method",
}


def _source_settings(name: str, profile: str) -> dict:
    """The settings chapter experiment ``name`` gives at ``profile``, merged as
    :func:`advlit.experiments.get_config` merges them (profile defaults, common, profile)."""
    spec = _CHAPTER_EXPERIMENTS[name]
    return {**PROFILES[profile], **spec.get("common", {}), **spec.get(profile, {})}


def _scaled(value: int, source_epochs: int, epochs: int) -> int:
    return max(1, round(value * epochs / source_epochs))


def base_knobs(method: str, profile: str, epochs: int | None = None) -> dict:
    """``alpha_ratio`` and ``method_args`` of base method ``method`` under the comparison's
    protocol at ``profile`` (``epochs``: the protocol's, default the profile's): see the
    module docstring and :data:`SOURCES`."""
    epochs = PROFILES[profile]["epochs"] if epochs is None else epochs
    source, paper_keys = SOURCES[method]
    if source is None:
        return {}
    here = _source_settings(source, profile)
    paper = _source_settings(source, "gpu")
    args: dict = {}
    alpha = here.get("alpha_ratio")
    if "alpha_ratio" in paper_keys:
        alpha = paper.get("alpha_ratio")
    for key, value in here.get("method_args", {}).items():
        if key not in paper_keys and key not in ANALYSIS_ONLY:
            args[key] = _scaled(value, here["epochs"], epochs) if key in EPOCH_KNOBS and value else value
    for key in paper_keys:
        if key != "alpha_ratio" and key in paper.get("method_args", {}):
            value = paper["method_args"][key]
            args[key] = _scaled(value, paper["epochs"], epochs) if key in EPOCH_KNOBS and value else value
    out: dict = {"method_args": args} if args else {}
    if alpha is not None:
        out["alpha_ratio"] = alpha
    return out


def method_knobs(spec: str, profile: str, epochs: int | None = None) -> dict:
    """The knobs of a method spec: its base's (:func:`base_knobs`) and each framework's
    (:data:`FRAMEWORK_KNOBS`, keyed ``<layer>.<key>`` as the registry reads them)."""
    *frames, base = [s.strip() for s in spec.split("+")]
    out = base_knobs(base, profile, epochs)
    framework_args = {k: v for f in frames for k, v in FRAMEWORK_KNOBS.get(f, {}).get(profile, {}).items()}
    if framework_args:
        out["method_args"] = {**out.get("method_args", {}), **framework_args}
    return out


def free_at_epochs(epochs: int, replays: int) -> int:
    """Epochs of Free-AT with ``replays`` = m for a protocol of ``epochs`` epochs: the
    forward-backward passes per example of FGSM-RS (2 per batch) over ``epochs``."""
    return max(1, round(2 * epochs / replays))


def _experiment(spec: str) -> dict:
    out: dict = {"common": {"method": spec}}
    for profile in ("cpu", "gpu"):
        settings = {**PROTOCOL[profile], **method_knobs(spec, profile)}
        if spec.split("+")[-1] == "free_at":
            settings["epochs"] = free_at_epochs(PROFILES[profile]["epochs"], settings["method_args"]["replays"])
        out[profile] = settings
    return out


def compared_methods() -> list[str]:
    """Every method spec of the comparison: the registered base methods (less
    :data:`NOT_COMPARED`), then :data:`COMPOSITIONS`."""
    return [m for m in SOURCES if m not in NOT_COMPARED] + COMPOSITIONS


# ------------------------------------------------------------------ the fastat protocol
#: FastAT Benchmark's common settings (README "Training Configuration"; configs/cifar10/common.yaml)
FASTAT_GPU = dict(dataset="cifar10", model="resnet18", eps=8 / 255, epochs=100, batch_size=128, lr=0.1,
                  lr_schedule="cyclic", momentum=0.9, weight_decay=5e-4, val_subset=1000, val_attack="pgd-10",
                  final_attacks=["clean", "pgd-10", "pgd-20", "pgd-50", "aa"], final_subset=None, aa_subset=None)
#: FastAT Benchmark's label smoothing (every configs/cifar10/<method>.yaml: label_smoothing 0.4). It
#: is PyTorch's epsilon: fast_at/fgsm_pgi.py builds ``CrossEntropyLoss(label_smoothing=0.4)``,
#: the package's ``label_smoothing`` (not the authors' target probability of
#: :func:`advlit.experiments.initialization.code_label_smoothing`)
FASTAT_LABEL_SMOOTHING = 0.4
#: method -> its settings in FastAT Benchmark's configs/cifar10/<file>.yaml and fast_at/<file>.py
FASTAT_METHODS = {
    "fgsm_rs": dict(alpha_ratio=1.25),  # fast_at/fgsm_rs.py: "alpha = 1.25 * eps"
    "gradalign": dict(alpha_ratio=1.0, method_args={"lam": 0.2}),  # grad_align.yaml: cos lambda 0.2; alpha = eps
    "free_at": dict(alpha_ratio=1.0, method_args={"replays": 4}, epochs=free_at_epochs(100, 4)),  # free_at.yaml
    # fgsm_pgi.yaml + fast_at/fgsm_pgi.py: the authors' code (the initialisation chapter's init.mep_authors)
    "fgsm_mep": dict(alpha_ratio=1.0, method_args={**initialization.EXPERIMENTS["init.mep_authors"]["gpu"]["method_args"],
                                                   "label_smoothing": FASTAT_LABEL_SMOOTHING}),
    "pgd_at": dict(alpha_ratio=0.25, method_args={"steps": 10}),  # fast_at/pgd_at.py: PGD(alpha=2/255, steps=10)
}
#: what FastAT Benchmark does that the package cannot express (no setting to compare, so no
#: row of paper_settings.csv); the chapter shows it beside the protocol table
FASTAT_GAPS = {
    "weight averaging (tau = 0.9995)": "the trainer keeps no weight average (a change of advlit/train.py, frozen "
                                       "here); FastAT Benchmark averages every method but PGD-AT "
                                       "(configs/cifar10/pgd_at.yaml: weight_average false) and evaluates the "
                                       "better of the model and its average on the validation set",
    "label smoothing 0.4": "only FGSM-PGI's loss (and FGSM-SDI's) has a label_smoothing option; FGSM-RS, GradAlign, "
                           "Free-AT and PGD-AT train on plain cross-entropy (a loss option of each method, not "
                           "added here); and FGSM-PGI's attack step takes the gradient of plain cross-entropy, "
                           "where fast_at/fgsm_pgi.py takes it of the smoothed loss",
    "CR attack": "not an attack of advlit/evaluate.py; FastAT Benchmark reports it beside AutoAttack, within 0.3 "
                 "points of it for these five methods",
}

# ------------------------------------------------------------------ one knob changed (cpu)
RETUNED_PREFIX = "compare_retuned."
#: The three baselines that do not train under the cpu protocol with their authors' knobs,
#: each with ONE setting changed (chapter 07, "One knob changed"): outside the comparison
#: table, which keeps the authors' knobs. Each entry: the cpu settings layered over
#: ``compare.<method>``'s (``method_args`` key by key) and why that setting. At the gpu
#: profile ``compare_retuned.<method>`` is ``compare.<method>`` itself.
RETUNED = {
    "yopo": ({"lr": 0.05},
             "peak LR 0.05 instead of the protocol's 0.1: compare.yopo collapses between epochs 10 and 14, as the "
             "cyclic LR climbs past 0.067 towards its peak; half the peak keeps the whole run below that"),
    "dyart": ({"method_args": {"clean_epochs": 10}},
              "10 clean epochs instead of 1 (the code's scaled to 30 epochs): the authors start DyART from a "
              "clean model, and one epoch of the cyclic warm-up leaves it near chance"),
    "sub_at": ({"method_args": {"sub_lr": 0.1}},
               "subspace LR 0.1, the protocol's peak LR, instead of 1.0, the code's for its ResNet-18 "
               "(nblt/Sub-AT, train_adv_psgd.py)"),
}


def _retuned(method: str) -> dict:
    spec = _experiment(method)
    return {**spec, "cpu": layer_settings(spec["cpu"], RETUNED[method][0])}


EXPERIMENTS = {
    **{f"{PREFIX}{spec}": _experiment(spec) for spec in compared_methods()},
    **{f"{RETUNED_PREFIX}{m}": _retuned(m) for m in RETUNED},
    **{f"{FASTAT_PREFIX}{m}": {**_experiment(m), "gpu": {**FASTAT_GPU, **settings}}
       for m, settings in FASTAT_METHODS.items()},
}

#: reasons why a ``compare_fastat`` gpu setting differs from FastAT Benchmark's
#: (``book/paper_tables/paper_settings.csv``, chapter ``comparison``; :func:`advlit.protocol.protocol_table`)
GPU_DEVIATIONS = {
    ("fastat", "lr_schedule"): "advlit/schedules.py has no one-cycle shape (PyTorch OneCycleLR: cosine, 30 % "
                               "warm-up) and cannot change now; the triangular cyclic LR with the same peak, 0.1, "
                               "stands in",
}
CPU_DEVIATIONS = {(f"{FASTAT_PREFIX}{m}", "*"): f"cpu: the same run as {PREFIX}{m}; the fastat protocol has a gpu "
                                                f"meaning only" for m in FASTAT_METHODS}
