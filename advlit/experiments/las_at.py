"""Chapter 04 (LAS-AT, Jia et al. 2022): PGD-AT against LAS-PGD-AT, the L1/L2/L3 ablation
(Table 6) and the update interval k (Table 1).

cpu profile (digits16, the profile's CNN, eps = 0.2): 10 epochs for every run of the chapter (a
LAS-PGD-AT epoch at k = 2 costs about two PGD-AT epochs); the strategy network is a small CNN; the option
sets are multiples of eps (eps x {0.5 .. 1.5}, step x {1/8 .. 5/8}, the authors' code's 1..5
at 8/255 rather than the paper's 1..6, PGD iterations {3, 5, 7, 10} instead of 3..15 to keep
the cost of a PGD-10 epoch); digits16
has 10 batches per epoch, so k = 2 (5 policy steps per epoch, the paper's k = 40 gives
about 10 per CIFAR-10 epoch) and the policy LR is raised to 0.05 so that its 50 steps in all
can move it (paper: 1e-3 over ~1000 steps). Final evaluation: clean, PGD-20, C&W-20 on the 397
test images, AutoAttack (APGD-CE + APGD-T) on the first 100.
gpu profile: CIFAR-10, ResNet-18 (LAS-AT, Table 1), the option ranges of Sec. 4.1 (eps 3..15,
step 1..6 (in 1/255), iterations 3..15; the method's defaults, stated here too; the authors'
README uses step 1..5 and iterations 3..14), k = 40, policy LR 1e-3 with a
ResNet-18 strategy network; 110 epochs, LR 0.1 divided by 10 at epochs 100 and 105 (the
schedule of the authors' code; the paper defers to its supplement). ``las.k<k>`` run the
update interval k at both profiles (``las.k5``, ``las.k10``: the cpu study); ``las.k1``,
``las.k20`` and ``las.k60`` complete Table 1's grid (k = 40 is ``las.las_pgd_at``) and have a
gpu meaning only: at the cpu profile they are the same run as ``las.las_pgd_at``.
What the paper states and how the ``gpu`` experiments differ:
``advlit.protocol.protocol_table("las_at")``.
"""

CPU_COMMON = dict(epochs=10, final_attacks=["clean", "pgd-20", "cw-20", "aa-fast"], aa_subset=100)
GPU_COMMON = dict(model="resnet18", epochs=110, lr=0.1, lr_schedule="multistep", milestones=[100, 105],
                  final_attacks=["clean", "pgd-10", "pgd-20", "pgd-50", "cw-20", "aa"])

CPU_LAS = dict(policy_backbone="small_cnn", interval=2, policy_lr=0.05, eps_options=[0.5, 0.75, 1.0, 1.25, 1.5],
               step_options=[0.125, 0.25, 0.375, 0.5, 0.625], iter_options=[3, 5, 7, 10])
#: LAS-AT, Sec. 4.1: eps 3..15, step 1..6 (multiples of eps: k / 8 at 8/255), iterations 3..15
#: (the method's defaults PAPER_EPS, PAPER_STEP, PAPER_ITERS, stated explicitly)
GPU_LAS = dict(policy_backbone="resnet18", interval=40, policy_lr=1e-3, eps_options=[k / 8 for k in range(3, 16)],
               step_options=[k / 8 for k in range(1, 7)], iter_options=list(range(3, 16)))


def _las(method: str = "las_pgd_at", **cpu_args) -> dict:
    return {"common": {"method": method}, "cpu": {**CPU_COMMON, "method_args": {**CPU_LAS, **cpu_args}},
            "gpu": {**GPU_COMMON, "method_args": dict(GPU_LAS)}}


def _gpu_las(spec: dict, **gpu_args) -> dict:
    spec["gpu"]["method_args"].update(gpu_args)
    return spec


EXPERIMENTS = {
    "las.pgd_at": {"common": {"method": "pgd_at"}, "cpu": dict(CPU_COMMON), "gpu": dict(GPU_COMMON)},
    "las.las_pgd_at": _las(),
    # Table 6: which terms of the reward L0 = L1 + alpha L2 + beta L3 matter
    "las.ablation_l1": _gpu_las(_las(weight_l2=0.0, weight_l3=0.0), weight_l2=0.0, weight_l3=0.0),
    "las.ablation_l1_l2": _gpu_las(_las(weight_l3=0.0), weight_l3=0.0),
    "las.ablation_l1_l3": _gpu_las(_las(weight_l2=0.0), weight_l2=0.0),
    # Table 1: the update interval k of the strategy network against training time
    "las.k5": _gpu_las(_las(interval=5), interval=5),
    "las.k10": _gpu_las(_las(interval=10), interval=10),
    **{f"las.k{k}": _gpu_las(_las(), interval=k) for k in (1, 20, 60)},  # gpu only
    # TRADES and LAS-TRADES, AWP and LAS-AWP (not run at the cpu profile by the chapter)
    "las.trades": {"common": {"method": "trades"}, "cpu": dict(CPU_COMMON), "gpu": dict(GPU_COMMON)},
    "las.las_trades": _las("las_trades"),
    "las.awp": {"common": {"method": "awp"}, "cpu": dict(CPU_COMMON), "gpu": dict(GPU_COMMON)},
    "las.las_awp": _las("las_awp"),
}

#: reasons why a setting differs from the paper's (``book/paper_tables/paper_settings.csv``;
#: :func:`advlit.protocol.protocol_table`)
GPU_DEVIATIONS = {
    ("table2", "model"): "the chapter runs every method on ResNet-18, the model of LAS-AT's Tables 1 and 6; the paper "
                         "reports TRADES, AWP and their LAS versions on CIFAR-10 only with WRN34-10 (Table 2), trained "
                         "with the base methods' settings, which Sec. 4.1 defers to the supplementary material",
}
_CPU_OPTIONS = ("cpu: options as multiples of eps = 0.2 (eps x 0.5..1.5, step x 1/8..5/8: the authors' code's "
                "1..5 at 8/255, not the paper's 1..6) and PGD iterations {3, 5, 7, 10} instead of 3..15, to keep the "
                "cost of a PGD-10 epoch")
CPU_DEVIATIONS = {
    ("sec41", "method_args.eps_options"): _CPU_OPTIONS,
    ("sec41", "method_args.step_options"): _CPU_OPTIONS,
    ("sec41", "method_args.iter_options"): _CPU_OPTIONS,
    ("sec41", "method_args.interval"): "cpu: k = 2: digits16 has 10 batches per epoch, so 5 policy steps per epoch "
                                        "(k = 40 gives about 10 per CIFAR-10 epoch)",
    ("sec41", "method_args.policy_lr"): "cpu: 0.05, so that the ~50 policy steps of a 10-epoch run can move the "
                                        "policy (the paper: 1e-3 over ~1000 steps)",
    ("sec41", "method_args.policy_backbone"): "cpu: a small CNN as the strategy network on the 16x16 digits",
    **{(f"las.k{k}", "*"): "cpu: the same run as las.las_pgd_at (k = 2); this experiment has a gpu meaning only"
       for k in (1, 20, 60)},
}
