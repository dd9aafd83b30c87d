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
import math

from advlit.experiments import PROFILES

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
#: cpu profile, each the cpu-layer settings in which it differs from the profile (its model,
#: and for ``pool_last_32_64_step`` its LR schedule), trained with the profile's other
#: settings. ``pool_last_32_64`` is the profile itself (``advlit.experiments.PROFILES``), so
#: its runs are ``basics.pgd_at`` and the two FGSM-RS runs above; the others are the
#: ``basics.standin_<candidate>_<run>`` experiments, registered at the cpu layer only (at
#: the gpu profile they are the same runs as the chapter's, and the chapter skips the study).
STANDIN_CANDIDATES = {
    # the first round's stand-in: a 2x2 max-pool after each convolution
    "pool_each_32_64": {"model": "small_cnn", "model_args": {}},
    # chosen: one max-pool, after the second convolution (8x8 feature maps into the classifier)
    "pool_last_32_64": {"model": "conv_net", "model_args": {"channels": [32, 64], "pools": [False, True]}},
    "pool_last_16_32": {"model": "conv_net", "model_args": {"channels": [16, 32], "pools": [False, True]}},
    # the chosen model under the step schedule of the papers' PGD-AT (LAST, Sec. IV-A3; Rice et
    # al. 2020): the LR divided by 10 at half and at three quarters of training
    # (:data:`STEP_FRACTIONS`), so that it anneals before the last third, not during it
    "pool_last_32_64_step": {"model": "conv_net", "model_args": {"channels": [32, 64], "pools": [False, True]},
                             "lr_schedule": "multistep"},
}
#: the chosen candidate: the cpu profile's model and schedule
STANDIN_CHOSEN = "pool_last_32_64"
#: where the step candidate divides its LR by 10, as fractions of its run's epochs (rounded
#: up: epochs 15 and 23 of 30, 30 and 45 of 60; 100 and 150 of 200 in LAST's PGD-AT)
STEP_FRACTIONS = (0.5, 0.75)
#: the runs of each candidate, by the name of the chapter's experiment they repeat (PGD-AT at
#: twice the budget tells whether 30 epochs are enough: under the cyclic schedule the last
#: third of any budget is where the LR anneals, so a curve always climbs there)
STANDIN_RUNS = ("pgd_at", "pgd_at_long", "fgsm_rs_large_step", "fgsm_rs_small_step")


def standin_experiment(candidate: str, run: str) -> str:
    """The experiment that trains ``run`` (one of :data:`STANDIN_RUNS`) with ``candidate``'s settings."""
    return f"basics.{run}" if candidate == STANDIN_CHOSEN else f"basics.standin_{candidate}_{run}"


def standin_settings(candidate: str, epochs: int) -> dict:
    """The cpu-layer settings of ``candidate`` for a run of ``epochs`` epochs: its entry of
    :data:`STANDIN_CANDIDATES`, with the milestones of a ``multistep`` schedule at
    :data:`STEP_FRACTIONS` of ``epochs``."""
    settings = {key: dict(value) if isinstance(value, dict) else value
                for key, value in STANDIN_CANDIDATES[candidate].items()}
    if settings.get("lr_schedule") == "multistep":
        settings["milestones"] = [math.ceil(f * epochs) for f in STEP_FRACTIONS]
    return settings


def _register_standin_experiments() -> None:
    for candidate in STANDIN_CANDIDATES:
        if candidate != STANDIN_CHOSEN:
            for run in STANDIN_RUNS:
                spec = EXPERIMENTS[f"basics.{run}"]
                epochs = spec.get("cpu", {}).get("epochs", PROFILES["cpu"]["epochs"])
                EXPERIMENTS[standin_experiment(candidate, run)] = {
                    **spec, "cpu": {**spec.get("cpu", {}), **standin_settings(candidate, epochs)}}


_register_standin_experiments()
