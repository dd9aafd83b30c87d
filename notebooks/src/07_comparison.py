# %% [markdown]
# # Every method under one protocol: robustness, collapses and cost
#
# **The question.** Each of the previous chapters compares a few methods under its own paper's
# protocol, so none of them answers the first question a practitioner asks: *under one
# protocol, which method gives the most robustness per unit of training cost, and which ones
# collapse?* No published source answers it for these five papers: each paper uses its own
# protocol, and the closest public benchmark of fast methods, FastAT Benchmark
# (`fzjcdt/FastAT_Benchmark`: more than twenty fast methods under one protocol, three seeds),
# has none of ATAS {cite}`huang2023atas`, FGSM-SDI {cite}`jia2022sdi`, LAS-AT
# {cite}`jia2022lasat`, LAST {cite}`liu2024last` or PIAT {cite}`liu2024piat`. This chapter
# trains every registered method, and compositions of the frameworks with the base methods
# (`last+atas`, `piat+atas`, `piat+last+fgsm_rs`, ...), under **one** protocol per profile,
# with three seeds, and reports for each: clean, PGD-20, PGD-50, C&W and AutoAttack accuracy
# at the best and the last checkpoint, the number of runs that overfitted catastrophically,
# and the training cost relative to FGSM-RS, measured side by side in one process. A second
# protocol, `fastat` (at the `gpu` profile), repeats FastAT Benchmark's published setting for
# the five methods both have, so that a GPU user can put this package's numbers beside that
# benchmark's.

# %% tags=["parameters", "hide-cell"]
profile = "cpu"      # "cpu": the embedded digits16 data, minutes on 2 cores; "gpu": the paper's CIFAR-10 setting
data_root = None     # where the vision datasets live (gpu profile); default $ADVLIT_DATA or ~/data
epochs = None        # None: the profile's default
seeds = None         # None: the profile's default ([0, 1, 2])
device = None        # None: the profile's default (cpu / cuda)
results_dir = None   # None: results/<profile> at the repository root
eps = None           # None: the profile's default (0.2 on digits16, 8/255 on CIFAR-10)

# %% tags=["hide-input"]
from dataclasses import fields

import matplotlib.pyplot as plt
import pandas as pd

from advlit import compare
from advlit.analysis.masking import pgd_on_aa_subset
from advlit.bench import same_machine, time_experiments
from advlit.config import RunConfig
from advlit.data import get_dataset
from advlit.experiments import atas as atas_experiments
from advlit.experiments import comparison
from advlit.methods.registry import available_methods
from advlit.notebook import Chapter
from advlit.plotting import style
from advlit.protocol import protocol_table
from advlit.results import paper_table, summarize
from advlit.utils import ConfigError

style()
Chapter.check_parameters(globals())  # an unknown papermill -p name stops here with one line
chapter = Chapter(profile=profile, data_root=data_root, epochs=epochs, seeds=seeds, device=device,
                  results_dir=results_dir, eps=eps)
CPU = chapter.profile == "cpu"
METHODS = compare.protocol_methods("common")  # every compared method spec, in table order
NAMES = {m: compare.experiment_name(m) for m in METHODS}  # method spec -> its compare.* experiment
REFERENCE = NAMES[compare.REFERENCE]  # compare.fgsm_rs
print(chapter.describe(REFERENCE))

# %% [markdown]
# ## The common protocol
#
# Every `compare.*` experiment (`advlit.experiments.comparison`) takes all its run settings
# from the profile and sets only its method and the method's own knobs (step size and method
# arguments); `tests/test_compare.py` checks that no two of them differ in anything else. The
# table below is read from the configurations of all the chapter's runs at this profile, not
# written by hand: the settings every run shares, with their value.

# %% tags=["hide-input"]
# NBVAL_CHECK_OUTPUT
configs = {m: chapter.config(name) for m, name in NAMES.items()}
KNOBS = ("method", "alpha_ratio", "method_args", "seed", "data_root")
shared, varying = {}, {}
for f in fields(RunConfig):
    if f.name in KNOBS:
        continue
    values = {m: getattr(c, f.name) for m, c in configs.items()}
    reference_value = values[compare.REFERENCE]
    differ = {m: v for m, v in values.items() if v != reference_value}
    (varying if differ else shared)[f.name] = (reference_value, differ)
pd.DataFrame({"value (every compare.* run)": {k: str(v) for k, (v, _) in shared.items()}}).rename_axis("setting")

# %% [markdown]
# The only settings in which some run departs from the reference run (`compare.fgsm_rs`), and
# which runs: Free-AT replays every batch $m$ times within one trainer epoch, so it trains
# $\mathrm{round}(2E/m)$ epochs for the protocol's $E$, the forward-backward passes per
# example of $E$ epochs of FGSM-RS (`comparison.free_at_epochs`). An `epochs` parameter of
# this notebook overrides every run's epochs, Free-AT's included.

# %% tags=["hide-input"]
# NBVAL_CHECK_OUTPUT
if varying:
    departures = pd.DataFrame([{"setting": k, "compare.fgsm_rs": str(v),
                                "runs that differ": ", ".join(f"{m}: {d}" for m, d in differ.items())}
                               for k, (v, differ) in varying.items()]).set_index("setting")
else:  # e.g. the smoke profile, where every run trains one epoch
    departures = None
    print("no run departs from compare.fgsm_rs in any setting at this profile")
departures

# %% [markdown]
# AutoAttack is the most expensive attack of the final evaluation; the profile fixes on how
# many test images it runs (the other attacks run on the whole test split, or on the
# profile's `final_subset`):

# %% tags=["hide-input"]
# NBVAL_CHECK_OUTPUT
ref_config = configs[compare.REFERENCE]
TABLE_METRICS = compare.metrics_for(chapter.profile)  # column label -> final attack
n_test = len(get_dataset(ref_config.dataset, "test", root=ref_config.data_root))
n_final = min(n_test, ref_config.final_subset or n_test)
n_aa = min(n_final, ref_config.aa_subset or n_final)
print(f"final attacks {', '.join(TABLE_METRICS.values())} on the first {n_final} of the {n_test} test images; "
      f"AutoAttack ({TABLE_METRICS['AutoAttack']}) on the first {n_aa}")

# %% [markdown]
# **Each method's knobs.** They are read from the chapter experiment that runs the method at
# the same profile (`comparison.SOURCES`: the ATAS chapter's step sizes, ATAS's $c$, GradAlign's
# $\lambda$, Free-AT's $m$; the initialisation chapter's FGSM-SDI generator and FGSM-BP/EP/MEP
# settings; the LAS-AT chapter's option sets; LAST's $\gamma$ and proxy learning rate for every
# `last+...`), with two rules that keep one protocol: a PGD-based method keeps its paper's
# training attack (the keys listed under "from the paper's setting", taken from the source's
# `gpu` layer) where a chapter had cut it for its CPU budget, and a knob counted in epochs is
# scaled to the protocol's epochs. A framework adds only its own knobs, so `compare.last+atas`
# differs from `compare.atas` in the framework alone. A step size shown as `None` is the
# method's own default (PGD-AT: $\epsilon/4$).

# %% tags=["hide-input"]
# NBVAL_CHECK_OUTPUT
def knob_row(method, config):
    source, paper_keys = comparison.SOURCES[method.split("+")[-1]]
    return {"source experiment": source or "the method's defaults",
            "from the paper's setting": ", ".join(paper_keys) or "-",
            "alpha / eps": config.alpha_ratio,
            "method arguments": ", ".join(f"{k}={v}" for k, v in config.method_args.items()) or "-",
            "epochs": config.epochs}


pd.DataFrame({m: knob_row(m, c) for m, c in configs.items()}).T.rename_axis("method")

# %% [markdown]
# Registered methods that are not compared, and why (`comparison.NOT_COMPARED`); the line
# after the table checks that every other registered method (a base method, or a framework
# within a composition) has a `compare.*` run:

# %% tags=["hide-input"]
# NBVAL_CHECK_OUTPUT
compared_layers = {layer for m in METHODS for layer in m.split("+")}
uncovered = sorted(set(available_methods()) - compared_layers - set(comparison.NOT_COMPARED))
print("registered methods neither compared nor excused:", ", ".join(uncovered) or "none")
pd.Series(comparison.NOT_COMPARED, name="reason").rename_axis("method").to_frame()

# %% [markdown]
# The schedule family is the profile's cyclic one for every method, ATTA and ATAS included
# (their paper trains them with a piecewise schedule; chapter {doc}`02_atas` shows ATAS under
# both), and the LAS methods and PIAT train the protocol's epochs instead of their papers'
# 110 / 120: these are settings of the protocol, the point of this chapter, not deviations of a
# method.
#
# ## The records
#
# Every `compare.*` run, for each seed of the chapter. A run is trained only when its record
# is missing or stale; `advlit grid --only 07_comparison --run` trains them all beforehand on
# the machine's workers, and this chapter then only reads their records. A run that cannot be
# made with this notebook's parameters (e.g. Sub-AT, whose sampling phase must end before the
# last epoch, under an `epochs` parameter shorter than that phase) stays in the tables as
# `missing`, and the reason is printed here.

# %% tags=["hide-input"]
# NBVAL_CHECK_OUTPUT
def load(name):
    """The records of experiment ``name`` and ``None``, or no records and the one-line reason
    why the run cannot be made with this chapter's parameters."""
    try:
        return chapter.run(name), None
    except ConfigError as err:
        return [], str(err)


chapter.check_data(REFERENCE)  # missing data stops the chapter here, with one line
loaded = {m: load(name) for m, name in NAMES.items()}
records = {m: recs for m, (recs, _) in loaded.items()}
not_run = {m: reason for m, (_, reason) in loaded.items() if reason}
print(f"{sum(len(r) for r in records.values())} records of {len(records) - len(not_run)} methods, seeds {chapter.seeds}")
print("runs that cannot be made with this chapter's parameters:",
      "none" if not not_run else "".join(f"\n  {m}: {reason}" for m, reason in not_run.items()))

# %% [markdown]
# ## The table
#
# Test accuracy (%) of the **last** checkpoint, mean ± std over the seeds (`seeds` says how
# many records a row has), the number of runs whose record flags catastrophic overfitting
# (`advlit.analysis.catastrophic_overfitting`: validation PGD accuracy falling below a quarter
# of its best while FGSM accuracy stays high), the seconds per training epoch and per run
# *as recorded by each run*, and a masking flag where AutoAttack is more than
# 5 points below PGD-50 on the same images (below). The records' seconds were measured when each run was trained, at
# different times under different machine loads: the side-by-side cost is further below.
# (`advlit compare --profile cpu` prints the same table from the command line.)
#
# **PGD-50 on AutoAttack's images.** The masking flag compares two accuracies, so they must
# be taken on the same images. Where the profile runs AutoAttack on fewer test images than
# the other attacks (the line above says how many), the PGD-50 of every run is evaluated again on
# AutoAttack's images, from the run's weights, with the same attack, step and seed
# (`advlit.analysis.masking.pgd_on_aa_subset`; stored in `compare_masking.json` in the
# results folder, one entry per run, so the book shows the same numbers on any machine). The
# PGD-50 column of the tables stays the whole split's.

# %% tags=["hide-input"]
# NBVAL_CHECK_OUTPUT
SEEDS = len(chapter.seeds)
with_records = [NAMES[m] for m, recs in records.items() if recs]
reference = pgd_on_aa_subset(chapter, with_records, TABLE_METRICS["PGD-50"])
PGD50 = TABLE_METRICS["PGD-50"]
shift = {m: float(pd.Series([compare.pgd_on_aa_images(r, "last", PGD50, reference) - r["final"]["last"][PGD50]
                             for r in recs]).mean()) for m, recs in records.items() if recs}
print(f"last checkpoint: PGD-50 on AutoAttack's {n_aa} images minus PGD-50 on the {n_final} images of the other "
      f"attacks, mean over the seeds, ranges over the methods from {min(shift.values()):+.1f} to "
      f"{max(shift.values()):+.1f} points (median {pd.Series(shift).median():+.1f})")
last_table = compare.comparison_table(records, chapter.profile, "last", seeds=SEEDS, reference=reference)
last_table

# %% [markdown]
# **Reading the table.** By AutoAttack at the last checkpoint, ten methods lie within 5 points
# of the best, too close for this test set to rank: PGD-AT (28.7 ± 1.5), ATAS (28.3 ± 1.5),
# FGSM-MEP (28.0 ± 2.0), FGSM-EP and TRADES (26.7), LAS-PGD-AT (26.3), FGSM-SDI (25.7), ALP and
# ATTA (25.3) and RAT (24.3 ± 2.5). Five of them are single-step methods with a learned,
# prior-guided or previous-epoch start or an adaptive step. Plain FGSM-RS, in contrast, keeps
# 97.2 % clean accuracy and only 4.0 ± 4.4 % under AutoAttack, as do Free-AT (5.0 ± 1.7) and
# FGSM-CKPT / SSAT (2.3 ± 4.0), although only FGSM (3 of 3 runs) and FGSM-CKPT / SSAT and LAST +
# Fast-BAT (1 of 3 each) trip the catastrophic-overfitting rule. Other rows did not learn
# robustness because their clean accuracy fell as well: DyART, Sub-AT and YOPO (below), AWP and
# LAS-AWP (23.9 ± 24.0 and 16.0 ± 10.3 % clean), GradAlign and LAST + GradAlign (seeds near
# chance, as in chapter {doc}`02_atas`), and NMSE + PGD-AT and PIAT + NMSE + PGD-AT (10 % clean,
# the constant classifier; chapter {doc}`06_piat` traces the stall to NMSE). PGD-20 puts the
# same group on top, 10 to 14 points higher than AutoAttack (the masking notes below).
#
# The same for the **best** checkpoint, the one with the highest validation PGD-20 accuracy
# over the epochs (early stopping, the remedy for robust overfitting of
# {cite}`rice2020overfitting`); its cost columns are the last table's:

# %% tags=["hide-input"]
# NBVAL_CHECK_OUTPUT
best_table = compare.comparison_table(records, chapter.profile, "best", seeds=SEEDS, reference=reference)
best_table[["seeds", *TABLE_METRICS, "masking"]]

# %% [markdown]
# For the leading group the best checkpoint is within 2 points of the last under AutoAttack:
# no robust overfitting at this budget. Early stopping matters where a run breaks late: MAIL
# (9.3 → 21.0, below), Sub-AT (1.3 → 10.3, a checkpoint of its FGSM-RS phase) and FGSM (0.0 →
# 7.7, the checkpoint before its collapse).
#
# **The baselines of the papers' tables under this protocol.** The eleven systems that the
# papers compare against and that no chapter trains (YOPO, SSAT, NuAT, Sub-AT, FGSM-CKPT,
# GAT, DyART from the fast methods; LBGAT, MAIL, CFA, RAT from the robustness methods) have
# their rows above, with the knobs of their `baselines.*` experiments (the knob table). Read
# from the last checkpoint, each with the record it comes from:
#
# - RAT and NuAT train like the PGD-type methods: RAT reaches PGD-AT's PGD-20 (37.9 ± 0.4
#   against 40.5 ± 1.1) and stays within 5 points of it under AutoAttack (24.3 ± 2.5 against
#   28.7 ± 1.5); NuAT, a single-step method at 1.8x FGSM-RS's cost per epoch, ends at 19.3 ± 0.6.
# - LBGAT (14.0 ± 3.6) and MAIL (9.3 ± 8.5; its seed 2 ends at 58 % clean accuracy) end well
#   below PGD-AT under AutoAttack. MAIL's best checkpoints (21.0 ± 2.6) all come from before
#   its margin weights start (epochs 18-21; the weights start after `burn_in` = 22 epochs,
#   the code's start scaled to the protocol's epochs), and seed 2's validation PGD-20 falls
#   from 31 to 13 % in its first weighted epoch.
# - CFA and GAT keep a high clean accuracy (92.5 and 93.9 %) with little robustness (3.3 ±
#   2.1 and 3.7 ± 3.2 % under AutoAttack); GAT's PGD-50/AutoAttack gap (14.7 points) is one
#   of the largest of the table.
# - FGSM-CKPT and SSAT have the same rows: SSAT is FGSM-CKPT under the name ATAS's Table I
#   gives it (Kim et al. 2021), and at this profile their runs differ in the method's name
#   only; one run of the three overfits catastrophically.
# - **DyART does not train under this protocol**: all three seeds end at 20.2 % clean
#   accuracy, about what a model answering one or two classes gets. Its validation clean
#   accuracy peaks at 48-77 % in epochs 4-5 and then falls to about 20 % for good: after one
#   clean epoch its boundary term, with the code's CIFAR-10 weight λ = 1000, takes over.
#   The row is a statement about DyART's defaults at this budget, not about DyART.
# - **Sub-AT runs out of epochs**: its sampling phase (FGSM-RS, epochs 1-19) reaches 94-97 %
#   validation clean accuracy; at its end the parameters return to the initialisation (the
#   code's restart point, at chance accuracy) and the 11 epochs left train inside the
#   80-dimensional subspace (the code's step 1.0), where the code trains 40. Seed 0 recovers
#   to 67 % validation clean accuracy, seeds 1 and 2 end near chance: under a 30-epoch
#   protocol Sub-AT's second phase is too short.
# - **YOPO-5-3 diverges as the learning rate rises**: its validation clean accuracy peaks at
#   82, 80 and 92 % (seeds 0-2) by epoch 12 and collapses between epochs 10 and 14, as the cyclic learning rate
#   climbs from 0.067 towards its peak 0.1 at epoch 15 (training loss back near ln 10 = 2.30); seeds 0 and 1
#   recover in part (47 and 80 % clean at the end), seed 2 ends at chance. Its best
#   checkpoints (epochs 9-13) have 7.7 ± 1.5 % under AutoAttack.
#
# Three of the eleven (DyART, Sub-AT, YOPO) do not train under this protocol with the knobs
# of their authors' code; their defining properties are tested in `tests/` (each test fails
# on a plausible mistake), so their rows say that these knobs do not carry over to this
# model, budget and schedule, not that the methods are wrong.
#
# ### One knob changed
#
# Whether a knob, not the method, is what fails can be tried: each of the three trains again
# with ONE setting changed (`advlit.experiments.comparison.RETUNED`, experiments
# `compare_retuned.<method>`; the reason for each value below). These runs are outside the
# comparison table, which keeps the authors' knobs.

# %% tags=["hide-input"]
# NBVAL_CHECK_OUTPUT
if CPU:
    retuned_rows = {}
    for m, (change, reason) in comparison.RETUNED.items():
        setting = ", ".join(f"{k}={v}" for k, v in {**change, **change.get("method_args", {})}.items() if k != "method_args")
        print(f"{m}, {setting}: {reason}")
        retuned_rows[f"{m}, the authors' knobs (the table)"] = records[m]
        retuned_rows[f"{m}, {setting}"] = load(comparison.RETUNED_PREFIX + m)[0]
    metrics = ["clean", "pgd-20", "aa-fast"]
    retuned_table = pd.concat({
        "last": summarize(retuned_rows, metrics=metrics, with_time=False),
        "best": summarize(retuned_rows, metrics=metrics, checkpoint="best", with_time=False).drop(columns="seeds"),
        "runs": pd.DataFrame({"collapses": [compare.collapses(r) for r in retuned_rows.values()]}, index=list(retuned_rows)),
    }, axis=1)
else:
    print("The retuned runs are a cpu-profile section: the gpu profile keeps the authors' knobs.")
    retuned_table = None
retuned_table

# %% [markdown]
# With one knob changed, all three train: 90.5-94.4 % clean accuracy at the last checkpoint,
# no collapse. None comes near the top of the table: under AutoAttack at the last checkpoint
# YOPO with peak LR 0.05 ends at 10.7 ± 2.1 %, Sub-AT with subspace LR 0.1 at 12.7 ± 2.1 % and
# DyART with ten clean epochs at 4.3 ± 1.2 % (PGD-20 10.2 ± 1.4 %), against PGD-AT's 28.7 ±
# 1.5 %, so at this budget they stay 16-24 points below it. DyART's row with its authors'
# knobs is not robustness either: 19-20 % under every attack at 20.2 % clean accuracy is a
# model that answers about one class for every input, as accurate under attack as without.
#
# **Gradient masking.** Where the mean AutoAttack accuracy lies more than
# 5 points below the mean PGD-50 accuracy on the same images, PGD's gradients mislead it
# and the PGD columns overstate the method's robustness {cite}`athalye2018obfuscated,croce2020autoattack`.
# One note per method and checkpoint (`compare.masking_notes`):

# %% tags=["hide-input"]
# NBVAL_CHECK_OUTPUT
notes = compare.masking_notes(records, chapter.profile, ("best", "last"), reference=reference)
print(f"threshold: AutoAttack more than {compare.MASKING_GAP:g} points below PGD-50 on AutoAttack's {n_aa} images")
print("\n".join(notes) if notes else "no method and checkpoint passes the threshold")

# %% [markdown]
# Every method that learned some robustness is flagged, with AutoAttack 5.3 to 19.7 points
# below PGD-50 on the same images; the rows without a note at the last checkpoint are those
# with little or no robustness for PGD to overstate (DyART, AWP, LAS-AWP, FGSM, GradAlign,
# Sub-AT, YOPO, LAST + FGSM-RS, LAST + GradAlign, LAST + Fast-BAT and the NMSE runs). As chapter {doc}`02_atas` found for its six methods, the gap is a property of this
# setting, the digits at $\epsilon = 0.2$ with this network, where PGD with the cross-entropy
# loss stalls, not a sign that one method masks its gradients: rank the methods by the
# AutoAttack column. The largest gaps, MAIL's (19.7) and FGSM-BP's (18.0), come with the
# largest seed spreads under AutoAttack.
#
# ## Cost, measured side by side
#
# Every `compare.*` experiment trains one epoch (no validation) in one process, one method
# after the other, three rounds, so that a change of machine load hits all of them
# (`advlit.bench.time_experiments`, cached in `compare_timing.json` in the results folder with
# the configurations and code versions it was made by). A method's seconds per epoch is its
# fastest round; the ratio to FGSM-RS is taken between fastest rounds. Every run of the
# protocol has the same data and batch size, so a trainer epoch has the same number of
# batches for every method and the per-epoch ratio is the per-step ratio; the run cost
# multiplies it by the epochs of the method's run over FGSM-RS's (Free-AT's epoch holds $m$
# replays and its run fewer epochs, see the protocol above). Two methods do different work in
# different epochs: DyART trains its first `clean_epochs` epochs on clean data, so its timed
# epochs are taken after them (`first_epoch`); Sub-AT's timed epochs are its sampling phase
# (FGSM-RS), and its subspace phase adds a projection of every gradient onto the subspace,
# which this timing does not see (its records' seconds cover both phases).

# %% tags=["hide-input"]
TIMED = {m: name for m, name in NAMES.items() if m not in not_run}  # a run that cannot be made cannot be timed
# DyART trains its first clean_epochs epochs on clean data only: its timed epochs are its DyART epochs
FIRST = {name: configs[m].method_args.get("clean_epochs", 0) for m, name in TIMED.items() if m.split("+")[-1] == "dyart"}
timing = time_experiments(chapter, list(TIMED.values()), epochs=1, rounds=3, cache="compare_timing.json",
                          first_epoch=FIRST)
fastest = {m: min(timing["seconds"][name]) for m, name in TIMED.items()}
epoch_ratio = {m: s / fastest[compare.REFERENCE] for m, s in fastest.items()}
run_epochs = {m: c.epochs for m, c in configs.items()}
run_cost = {m: epoch_ratio[m] * run_epochs[m] / run_epochs[compare.REFERENCE] for m in TIMED}
# the side-by-side ratios beside the records' table (a trainer epoch has the same steps for every method)
cost_table = compare.join_ratios(last_table[["seeds", "s/epoch", "train s", "cost vs FGSM-RS (records)"]],
                                 epoch_ratio, epochs=run_epochs, source="side by side", missing=compare.MISSING)
cost_table.insert(1, "s/epoch (side by side, fastest of %d)" % timing["rounds"],
                  [f"{fastest[m]:.2f}" if m in fastest else compare.MISSING for m in cost_table.index])
cost_table.insert(2, "epochs", [run_epochs[m] for m in cost_table.index])
cost_table.rename(columns={"s/epoch": "s/epoch (records)", "train s": "train s (records)"})

# %% [markdown]
# The side-by-side cost sorts the methods into tiers. The single-step methods cost one to two
# FGSM-RS epochs: ATTA, ATAS, Sub-AT's sampling phase and FGSM-CKPT / SSAT 1.0-1.2x, the
# prior-guided initialisations FGSM-BP / EP / MEP about 1.55x (the regulariser's second
# forward pass), NuAT and GAT about 1.85x (the regularised attack and loss), FGSM-SDI 2.2x
# (its generator) and Free-AT 2.4x per trainer epoch (its $m = 4$ replays), which is 1.2x per
# run, since it trains half the epochs. GradAlign (2.9x) and Fast-BAT (3.3x) pay for their
# second-order terms, YOPO-5-3 (4.1x) and DyART (4.3x) for their inner loops; the methods with
# a ten-step PGD attack cost 4.6-6.2x (PGD-AT 5.05x, TRADES 5.8x, LBGAT 6.2x with its second
# network), the LAS methods 10.6-12.0x (the strategy network's attack and its REINFORCE
# update). The frameworks add little: LAST's proxy step costs at most 8 % over its base
# (LAST + ATAS 1.11x against ATAS 1.03x; LAST + FGSM-MEP 1.57x against 1.56x), and PIAT's
# interpolation once per epoch nothing that this timing can see (PIAT + ATAS 1.04x against
# 1.03x; PIAT + PGD-AT 4.92x against PGD-AT 5.05x, the wrong way round by 3 %, which is the
# timing's noise).
#
# The records' own ratios (first table) differ from these by up to a factor 2.7 (DyART:
# 11.6x in its records, 4.3x side by side; LAS-PGD-AT 14.4x against 10.7x): the runs were
# trained at different times with two to four processes sharing the machine's two cores, which
# is why the cost of this chapter is the side-by-side one.
#
# **Check against chapter 02.** Chapter {doc}`02_atas` times six of these methods side by
# side too (`advlit.experiments.atas.time_methods`: two epochs, one round, its table shows the
# mean over the two epochs), with its own experiments (`atas.*`). Both chapters time *trainer
# epochs*, and for Free-AT both use the same $m$, so the per-epoch ratios compare like for
# like (the runs differ in their number of epochs, not their epochs in their work). The last
# column lists the settings of a training epoch in which the two experiments differ (at the
# `gpu` profile chapter 02 trains the ATAS paper's ResNet-18, this chapter the profile's
# PreActResNet-18, so there the two ratios are not like for like): a schedule changes no cost per
# epoch, while `track_norms` (set in chapter 02's ATTA and ATAS experiments, which record every
# example's gradient norm for the chapter's figures) is extra work that the comparison's runs,
# which leave it out, do not do. The issue behind this chapter asks the two ratios to agree within 15 % on the same
# machine: each timing file records the processor and thread count it was measured with
# (`advlit.bench.same_machine` compares them; a file made before that record existed says
# "not recorded").

# %% tags=["hide-input"]
timing02 = atas_experiments.time_methods(chapter)
spe02 = timing02["seconds_per_epoch"]
AGREE = 0.15


#: settings that do not enter a timed training epoch (the timing runs no validation and no final evaluation)
NOT_TIMED = {"seed", "data_root", "val_attack", "val_every", "val_subset", "eval_alpha_ratio", "final_attacks",
             "final_subset", "aa_subset", "final_eps_ratios"}


def differences(a, b):
    """The settings of a training epoch in which two run configurations differ."""
    return "; ".join(f"{f.name}: {getattr(a, f.name)} / {getattr(b, f.name)}" for f in fields(RunConfig)
                     if f.name not in NOT_TIMED and getattr(a, f.name) != getattr(b, f.name)) or "-"


check_rows = {}
for name02 in atas_experiments.TIMED:
    method = name02.split(".", 1)[1]
    ratio02 = spe02[name02] / spe02["atas.fgsm_rs"]
    fastest02 = min(timing02["seconds"][name02]) / min(timing02["seconds"]["atas.fgsm_rs"])
    relative = abs(epoch_ratio[method] - ratio02) / ratio02
    check_rows[method] = {"ch. 02 (mean epoch), x FGSM-RS": round(ratio02, 2),
                          "ch. 02 (fastest epoch), x FGSM-RS": round(fastest02, 2),
                          "this chapter (fastest round), x FGSM-RS": round(epoch_ratio[method], 2),
                          "relative difference to ch. 02 (%)": round(100 * relative, 1),
                          f"within {AGREE:.0%}": relative <= AGREE,
                          "settings that differ (atas.* / compare.*)": differences(chapter.config(name02), configs[method])}
check = pd.DataFrame(check_rows).T.rename_axis("method (per epoch)")
def machine(timing):
    env = timing.get("environment")
    return f"{env['cpu']}, {env['threads']} thread(s)" if env else "not recorded"


print(f"chapter 02's timing: {machine(timing02)}; this chapter's: {machine(timing)}; same machine: "
      f"{ {True: 'yes', False: 'no', None: 'unknown'}[same_machine(timing02, timing)] }")
print(f"all six per-epoch ratios within {AGREE:.0%} of chapter 02's:", bool(check[f"within {AGREE:.0%}"].all()))
check

# %% [markdown]
# The six per-epoch ratios agree with chapter 02's within 8 %, inside the 15 % the check asks
# for, and both timings were made on the same processor type with one thread (the line above
# the table). The largest difference is ATAS's (1.03x here against 1.11x there, where chapter
# 02's ATAS also records every example's gradient norm, `track_norms`), then PGD-AT's (5.05x
# against 4.78x; its step differs only in spelling, 0.25 against the method's default of
# $\epsilon/4$) and GradAlign's (2.88x against 2.75x, with the same settings).
#
# ## Robustness against cost, and against clean accuracy
#
# AutoAttack accuracy of the last checkpoint against the training cost of a run relative to
# FGSM-RS, measured side by side (the "per run" column above; log scale), one point per method
# at its mean over the seeds with the seed spread (± std) as a vertical bar. The Pareto front
# (red, joined) are the methods that no other method beats in both: none is at least as robust
# for at most the cost (`compare.pareto_front`, on the means; a difference within the seed
# spread is not a ranking).

# %% tags=["hide-input"]
fig = compare.plot_cost_robustness(records, chapter.profile, "last", cost=run_cost,
                                   cost_label="training cost per run, x FGSM-RS (measured side by side)")
plt.show()

# %% tags=["hide-input"]
aa_means = {m: (run_cost[m], float(pd.Series([r["final"]["last"][TABLE_METRICS["AutoAttack"]] for r in recs]).mean()))
            for m, recs in records.items() if recs and m in run_cost}
print("Pareto front (cost, AutoAttack):", ", ".join(compare.pareto_front(aa_means)) or "none")

# %% [markdown]
# The front runs FGSM, FGSM-RS, ATTA, ATAS and PGD-AT; FGSM and FGSM-RS are on it only
# because nothing is cheaper, at 0 and 4 %. ATAS reaches at 1.03x FGSM-RS's cost what PGD-AT
# reaches at 5.05x (28.3 against 28.7 %, within the seeds' spread), so the front's last step
# buys nothing measurable here. Every composition over a base that learns robustness lies
# below that base (over FGSM-RS, 4.0 %, LAST + FGSM-RS ends at 7.0 ± 2.0 and PIAT + LAST +
# FGSM-RS at 3.3 ± 2.5, both within the seeds' spread of it): LAST lowers AutoAttack accuracy
# on each such base it wraps (LAST + ATAS 5.7 against 28.3; LAST + FGSM-MEP 12.7 against
# 28.0; LAST + PGD-AT 6.3 against 28.7), and PIAT by 7.3 to 13.4 points (PIAT + ATAS 16.3, PIAT +
# PGD-AT 15.3, PIAT + TRADES 14.3, PIAT + MART 9.3, PIAT + LAS-PGD-AT 19.0), at the same cost.
#
# The trade-off with clean accuracy, same points (mean ± std over the seeds in both directions):

# %% tags=["hide-input"]
fig = compare.plot_clean_robustness(records, chapter.profile, "last")
plt.show()

# %% [markdown]
# In the leading group, ATAS, PGD-AT, TRADES, FGSM-SDI and RAT keep 92-96 % clean accuracy;
# ALP (72.0 %) and LAS-PGD-AT (78.8 ± 8.2 %) pay 13 to 24 points of clean accuracy for the
# same robustness. The methods that did not learn sit at the bottom left, FGSM-RS, Free-AT,
# FGSM-CKPT and CFA at the top left: clean accuracy without robustness.
#
# ## The `fastat` protocol: beside FastAT Benchmark
#
# FastAT Benchmark (`fzjcdt/FastAT_Benchmark`, its README and `configs/cifar10/*.yaml`) trains
# every method on CIFAR-10 with ResNet-18 at $\epsilon = 8/255$ for 100 epochs (Free-AT: 50
# epochs of $m = 4$ replays), a one-cycle learning rate peaking at 0.1, SGD with momentum 0.9
# and weight decay $5 \cdot 10^{-4}$, batch 128, label smoothing, a weight average of the
# model, and 1,000 validation images that choose the best checkpoint by PGD-10. The
# `compare_fastat.*` experiments repeat that setting at the `gpu` profile for the five
# methods both have: FGSM-RS, GradAlign, Free-AT, FGSM-PGI (the package's `fgsm_mep`, run as
# in the authors' code) and PGD-AT. At the `cpu` profile the protocol has no meaning of its
# own (each `compare_fastat.<m>` is the same run as `compare.<m>`). The settings, each quoted
# from the benchmark's files, beside the values of both profiles:

# %% tags=["hide-input"]
# NBVAL_CHECK_OUTPUT
protocol_table("comparison")

# %% [markdown]
# What the benchmark does that the package cannot express, so that no setting above stands
# for it (`comparison.FASTAT_GAPS`): a GPU user comparing with the benchmark's numbers must
# read them with these differences in mind.

# %% tags=["hide-input"]
# NBVAL_CHECK_OUTPUT
pd.Series(comparison.FASTAT_GAPS, name="what differs").rename_axis("FastAT Benchmark setting").to_frame()

# %% [markdown]
# FastAT Benchmark's published numbers for these five methods (and its PGD-AT with weight
# averaging), quoted from `book/paper_tables/fastat_benchmark.csv` (transcribed from the
# benchmark's `benchmark_data.json`; mean ± std over its seeds 0-2, best checkpoint; times
# in seconds and memory in GB on the benchmark's GPU). They are quotes, never results of
# this package:

# %% tags=["hide-input"]
# NBVAL_CHECK_OUTPUT
# the benchmark's labels of the five methods (compare_fastat.fgsm_rs, .gradalign, .free_at, .fgsm_mep, .pgd_at)
FASTAT_LABELS = ["FGSM-RS", "GRAD-ALIGN", "FREE-AT", "FGSM-PGI", "PGD-AT", "PGD-AT-WA"]
published = paper_table("fastat_benchmark.csv", method=FASTAT_LABELS).fillna({"checkpoint": "-"})  # time, memory: none
published = published.assign(cell=[f"{v:.2f} ± {s:.2f}" for v, s in zip(published["value"], published["std"])])
accuracy = published[published.checkpoint != "-"].pivot_table(index=["source", "method", "checkpoint"], columns="metric",
                                                               values="cell", aggfunc="first")
cost = published[published.checkpoint == "-"].pivot_table(index=["source", "method"], columns="metric", values="cell",
                                                          aggfunc="first")
quoted = accuracy[["clean", "pgd10", "pgd20", "pgd50", "aa", "cr"]].join(cost, on=["source", "method"])
quoted.iloc[quoted.index.get_level_values("method").map(FASTAT_LABELS.index).argsort()]  # in FASTAT_LABELS' order

# %% [markdown]
# And ours under the `fastat` protocol, best checkpoint (the benchmark's), mean ± std over
# the seeds, from the `compare_fastat.*` records (at the `cpu` profile these are the
# `compare.*` runs of the tables above, and the table is not repeated). Our cost columns come
# from our records on our machine, not from the benchmark's GPU.

# %% tags=["hide-input"]
# NBVAL_CHECK_OUTPUT
fastat_records = {m: chapter.run(compare.experiment_name(m, "fastat")) for m in compare.protocol_methods("fastat")}
if CPU:
    fastat_table = None
    print("cpu profile: the fastat protocol is a gpu protocol; its runs here are the compare.* runs "
          f"({', '.join(NAMES[m] for m in fastat_records)}) of the tables above")
else:
    fastat_table = compare.comparison_table(fastat_records, chapter.profile, "best", seeds=SEEDS, protocol="fastat")
    for note in compare.masking_notes(fastat_records, chapter.profile, ("best",), protocol="fastat"):
        print(note)
fastat_table

# %% [markdown]
# This package has not trained the `compare_fastat.*` runs at the `gpu` profile, so this
# chapter makes no comparison with the benchmark's numbers: a GPU user who trains them reads
# the two tables side by side (never merged), with the gaps listed above in mind.
#
# ## Takeaways
#
# - One protocol per profile for every method: the same model, data, budget $\epsilon$,
#   epochs (Free-AT: the same forward-backward passes), cyclic schedule and evaluation, with each
#   method's own knobs read from the chapter that studies it; the tables and the command line
#   (`advlit compare`) read the same records.
# - Cost is measured side by side in one process; the records' own seconds are shown beside it
#   because they come from runs made under different loads.
# - A gap of more than 5 points between PGD-50 and AutoAttack, both on AutoAttack's images, is
#   flagged for every method and checkpoint: rank methods by the AutoAttack column.
#
# - On digits16, ATAS, FGSM-MEP, FGSM-EP, FGSM-SDI and ATTA are as robust under AutoAttack as
#   PGD-AT (within 5 points) at 1.0-2.2x FGSM-RS's cost per epoch against PGD-AT's 5.05x; ATAS
#   is on the Pareto front.
# - Plain FGSM-RS, Free-AT and FGSM-CKPT keep their clean accuracy but reach only 2-5 % under
#   AutoAttack, mostly without tripping the catastrophic-overfitting rule.
# - The frameworks do not pay here: every LAST and PIAT composition over a base that learns
#   robustness ends below that base under AutoAttack, and NMSE stalls at the constant
#   classifier.
# - DyART, Sub-AT and YOPO, and the AWP-based methods, do not train with their knobs under this
#   protocol; their rows say so rather than rank them. With one knob changed each, DyART,
#   Sub-AT and YOPO train (90-94 % clean) and end 16-24 points below PGD-AT under AutoAttack.
#
# ## Run this chapter at the paper's scale
#
# The `gpu` profile trains every `compare.*` run on CIFAR-10 with PreActResNet-18 at
# $\epsilon = 8/255$ for 30 epochs (cyclic learning rate peaking at 0.2), three seeds, and
# evaluates the full test set with PGD-20, PGD-50 with 10 restarts, C&W-20 and the standard
# AutoAttack; the `compare_fastat.*` runs add FastAT Benchmark's protocol (100 epochs, ResNet-18).
# Train them on the machine's GPUs (or a Slurm cluster, see `advlit grid --help`), then run the
# chapter from the records and print the tables from the command line:
#
# ```bash
# advlit grid --profile gpu --only 07_comparison --run
# papermill notebooks/07_comparison.ipynb out.ipynb -p profile gpu -p data_root ~/data
# advlit compare --profile gpu
# advlit compare --profile gpu --protocol fastat --checkpoint best
# ```
#
# This package has not run the `gpu` profile, so no GPU time or memory is stated here;
# `advlit grid --profile gpu --only 07_comparison` (without `--run`) lists the runs and
# estimates their time from the records it has.
