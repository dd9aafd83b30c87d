"""Experiments of chapter 01: adversarial examples and adversarial training on the embedded data.

``basics.standard`` and ``basics.pgd_at`` are the two models of the chapter;
``basics.fgsm_rs_large_step`` (alpha = 2 eps) and ``basics.fgsm_rs_small_step``
(alpha = eps) show catastrophic overfitting and its absence (Wong et al. 2020, Fig. 3).

``basics.pgd_at_long`` is PGD-AT with twice the budget: on digits16 at eps = 0.2 PGD-AT sits
at chance for its first ~10 epochs (also with batch 32 / 64 and a constant LR), so 30
epochs end before it has converged; the cpu profile gives it 60. At the ``gpu`` profile it
is the long piecewise schedule of Rice et al. (2020): 200 epochs, LR 0.1 divided by 10 at
epochs 100 and 150, where robust overfitting shows.
"""

EXPERIMENTS = {
    "basics.standard": {"common": {"method": "standard"}},
    "basics.pgd_at": {"common": {"method": "pgd_at"}},  # 10 steps of eps / 4 (Madry et al.)
    "basics.pgd_at_long": {"common": {"method": "pgd_at"}, "cpu": {"epochs": 60},
                           "gpu": {"epochs": 200, "lr": 0.1, "lr_schedule": "multistep", "milestones": [100, 150]}},
    "basics.fgsm_rs_large_step": {"common": {"method": "fgsm_rs", "alpha_ratio": 2.0}},
    "basics.fgsm_rs_small_step": {"common": {"method": "fgsm_rs", "alpha_ratio": 1.0}},
}

#: reasons why a setting differs from the papers' (``book/paper_tables/paper_settings.csv``;
#: :func:`advlit.protocol.protocol_table`); every gpu setting of this chapter matches
GPU_DEVIATIONS: dict = {}
CPU_DEVIATIONS = {
    ("basics.pgd_at_long", "epochs"): "cpu: 60 epochs: on digits16 PGD-AT sits at chance for its first ~10 epochs, "
                                      "so 30 end before it has converged",
}
