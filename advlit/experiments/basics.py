"""Experiments of chapter 01: adversarial examples and adversarial training on the embedded data.

``basics.standard`` and ``basics.pgd_at`` are the two models of the chapter;
``basics.fgsm_rs_large_step`` (alpha = 2 eps) and ``basics.fgsm_rs_small_step``
(alpha = eps) show catastrophic overfitting and its absence (Wong et al. 2020, Fig. 3).
"""

EXPERIMENTS = {
    "basics.standard": {"common": {"method": "standard"}},
    "basics.pgd_at": {"common": {"method": "pgd_at"}},  # 10 steps of eps / 4 (Madry et al.)
    "basics.fgsm_rs_large_step": {"common": {"method": "fgsm_rs", "alpha_ratio": 2.0}},
    "basics.fgsm_rs_small_step": {"common": {"method": "fgsm_rs", "alpha_ratio": 1.0}},
}
