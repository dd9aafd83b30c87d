"""Experiments of chapter 01: adversarial examples and adversarial training on the embedded data.

``basics.standard`` and ``basics.pgd_at`` are the two models of the chapter;
``basics.fgsm_rs_large_step`` (alpha = 2 eps) and ``basics.fgsm_rs_small_step``
(alpha = eps) show catastrophic overfitting and its absence (Wong et al. 2020, Fig. 3).

``basics.pgd_at_long`` is PGD-AT with a longer budget. At the cpu profile it has twice the
profile's epochs (60): the stand-in study's check that 30 epochs are enough for PGD-AT (the
chapter's "Choosing the stand-in"; :data:`STANDIN_CANDIDATES`). At the ``gpu`` profile it is
the long piecewise schedule of Rice et al. (2020): 200 epochs, LR 0.1 divided by 10 at
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
    ("basics.pgd_at_long", "epochs"): "cpu: 60 epochs, twice the profile's budget: the stand-in study's check that "
                                      "30 epochs are enough for PGD-AT (200 do not fit the CPU budget)",
}

#: The stand-in study (issue 14; chapter 01, "Choosing the stand-in"): the candidates for the
#: cpu profile's model, each a (model, model_args) pair trained with the cpu profile's other
#: settings. ``pool_last_32_64`` is the profile's model (``advlit.experiments.PROFILES``), so
#: its runs are ``basics.pgd_at`` and the two FGSM-RS runs above; the others are the
#: ``basics.standin_<candidate>_<run>`` experiments, registered at the cpu layer only (at
#: the gpu profile they are the same runs as the chapter's, and the chapter skips the study).
STANDIN_CANDIDATES = {
    "pool_each_32_64": ("small_cnn", {}),  # the first round's stand-in: a 2x2 max-pool after each convolution
    "pool_last_32_64": ("conv_net", {"channels": [32, 64], "pools": [False, True]}),  # chosen
    "pool_last_16_32": ("conv_net", {"channels": [16, 32], "pools": [False, True]}),
}
#: the chosen candidate: the cpu profile's model
STANDIN_CHOSEN = "pool_last_32_64"
#: the runs of each candidate, by the name of the chapter's experiment they repeat (PGD-AT at
#: twice the budget tells whether 30 epochs are enough: under the cyclic schedule the last
#: third of any budget is where the LR anneals, so a curve always climbs there)
STANDIN_RUNS = ("pgd_at", "pgd_at_long", "fgsm_rs_large_step", "fgsm_rs_small_step")


def standin_experiment(candidate: str, run: str) -> str:
    """The experiment that trains ``run`` (one of :data:`STANDIN_RUNS`) with ``candidate``'s model."""
    return f"basics.{run}" if candidate == STANDIN_CHOSEN else f"basics.standin_{candidate}_{run}"


for _candidate, (_model, _model_args) in STANDIN_CANDIDATES.items():
    if _candidate != STANDIN_CHOSEN:
        for _run in STANDIN_RUNS:
            _spec = EXPERIMENTS[f"basics.{_run}"]
            EXPERIMENTS[standin_experiment(_candidate, _run)] = {
                **_spec, "cpu": {**_spec.get("cpu", {}), "model": _model, "model_args": dict(_model_args)}}
