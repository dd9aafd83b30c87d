"""NMSE: the Normalized Mean Square Error regulariser of PIAT (Eqs. 11-12), over any method.

    L_NMSE = (1 - p_clean) * || f(x) / ||f(x)||_2 - f(x_adv) / ||f(x_adv)||_2 ||_2^2     (Eq. 11)
    L      = L_base + mu * L_NMSE,   mu = 5                                           (Eq. 12)

``f`` are logits, ``p_clean`` the softmax probability of the true class on the clean input,
and the squared norm is summed over classes and averaged over the batch. Unlike ALP's
plain MSE (Eq. 8), only the *direction* of the logit vectors is aligned: the adversarial
logits may be smaller or larger than the clean ones as long as their relative magnitudes
agree.

In the paper, Eq. 12's ``L_base`` is the cross-entropy on PGD examples (``nmse+pgd_at``);
"we could replace the loss function in PIAT framework to combine with various AT
methods", so NMSE is a wrapper adding the term to *any* base method's loss
(``nmse+trades``, ``piat+nmse+pgd_at``). ``f(x_adv)`` are the logits the base returns for
its training input. Left open by the paper: whether gradients flow through the weight
``1 - p_clean``. By default they do (Eq. 11 read literally as a loss, as MART's analogous
weight does); ``detach_weight=True`` treats it as a constant per-example weight.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from advlit.methods.base import Method, Wrapper
from advlit.methods.registry import register
from advlit.utils import ConfigError


def nmse_loss(logits_clean: Tensor, logits_adv: Tensor, y: Tensor, detach_weight: bool = False) -> Tensor:
    """Eq. 11 of PIAT, averaged over the batch."""
    direction_gap = (F.normalize(logits_clean, dim=1) - F.normalize(logits_adv, dim=1)).pow(2).sum(1)
    p_clean = F.softmax(logits_clean, dim=1).gather(1, y[:, None]).squeeze(1)
    weight = 1.0 - p_clean
    if detach_weight:
        weight = weight.detach()
    return (weight * direction_gap).mean()


@register("nmse")
class NMSE(Wrapper):
    """Adds ``mu * L_NMSE`` (Eqs. 11-12 of PIAT) to the base method's loss.

    The base must use the standard update (perturb, loss, backward, step); a base that
    overrides :meth:`Method.step` (e.g. LAST) cannot be wrapped, but NMSE can sit *inside*
    such a framework (``last+nmse+fgsm_rs``), which calls this wrapper's ``loss``.
    """

    def __init__(self, base: Method, mu: float = 5.0, detach_weight: bool = False):
        super().__init__(base)
        if type(base).step is not Method.step:
            raise ConfigError(f"nmse: {base.name!r} has its own update rule; put nmse inside it "
                              f"(e.g. '{base.name}+nmse+...') instead")
        if mu < 0:
            raise ConfigError(f"nmse: mu must be non-negative, got {mu}")
        self.mu = float(mu)
        self.detach_weight = bool(detach_weight)

    def loss(self, model, batch, x_adv):
        """Eq. 12: the base loss plus ``mu`` times Eq. 11."""
        base_loss, logits_adv = self.base.loss(model, batch, x_adv)
        logits_clean = model(batch.x)
        return base_loss + self.mu * nmse_loss(logits_clean, logits_adv, batch.y, self.detach_weight), logits_adv

    #: the standard recipe (perturb, loss, backward, step) with this wrapper's loss, where
    #: Wrapper.step would hand the whole update to the base
    step = Method.step

