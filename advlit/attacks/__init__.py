"""L-inf attacks in pixel space: FGSM, PGD (CE or C&W margin, restarts, per-example
budgets) and an AutoAttack adapter. Every adversarial input stays in the eps-ball and in
[0, 1]; no attack changes the model's train/eval mode except AutoAttack (eval, restored).
"""
from advlit.attacks.autoattack import autoattack
from advlit.attacks.fgsm import fgsm
from advlit.attacks.losses import cross_entropy, cw_margin, get_attack_loss
from advlit.attacks.pgd import pgd
from advlit.attacks.utils import clamp_to_ball, eval_mode, input_gradient, uniform_start

__all__ = ["fgsm", "pgd", "autoattack", "cross_entropy", "cw_margin", "get_attack_loss",
           "clamp_to_ball", "eval_mode", "input_gradient", "uniform_start"]
