"""Fast-BAT: fast bi-level adversarial training (Zhang et al. 2022), after the authors' code
(OPTML-Group/Fast-BAT, ``trainer.py``, mode ``fast_bat``; see ``shared/METHODS.md``).

Bi-level view: the lower level linearises the attack around a point ``z`` with a quadratic
proximity term, ``delta*(theta) = Proj( z + (1/lambda) grad_delta CE(theta, z) )``, and
the upper level minimises ``CE(theta, delta*(theta))`` *through* ``delta*``. The implicit
gradient (Fast-BAT, Eq. 7-9, with the Hessian of the lower level replaced by
``lambda I``) adds a cross term to the ordinary parameter gradient:

    d/dtheta CE(theta, delta*) = grad_theta CE(theta, delta*)
                                 + (1/B) grad_theta [ grad_delta CE(theta, delta_1) . (H * g / lambda) ],

with ``g = grad_delta CE(theta, delta*)`` (parameters frozen, per-example gradients of the
summed loss) and ``H`` the mask of coordinates of ``delta*`` strictly inside the box
``[max(-eps, -x), min(eps, 1 - x)]`` (tolerance ``1e-7``). The code writes the cross term as
``-grad_theta[grad_delta A(delta_1) . (H g / lambda)] / B`` with the attack loss
``A = -sum CE``: the same thing.

The attack (code): ``z ~ U(-eps, eps)``; ``delta_1 = Proj(z + alpha grad_delta sum CE(z))``;
``delta* = Proj(delta_1 + alpha grad_delta sum CE(delta_1))``: two *unsigned* ascent
steps, with ``lambda = 10``.

The step ``alpha`` (:func:`default_alpha`) follows the code's rule: ``5000/255`` for
``eps <= 8/255`` and ``2000/255`` for larger budgets (``shared/METHODS.md``). It is in the
code's *unnormalised gradient units*, not a pixel distance: an unsigned step ``alpha * g``
moves a coordinate by ``alpha |g_j|`` (``g`` the input gradient of the summed CE), so the
value only fixes how far the step goes relative to the input gradients of the data and
model, and it does not scale with ``eps`` (the code's step *shrinks* above 8/255). The
rule goes by the value of ``eps``: the cpu profile's digits16 budget 0.2 is above 8/255 and
gets ``2000/255``. Pass ``alpha`` (or ``alpha_ratio``, ``alpha = alpha_ratio * eps``) to
choose another step; the fraction of coordinates that end strictly inside the box
(:meth:`FastBAT.interior_mask`) is what the cross term acts on.
"""
from __future__ import annotations

import logging

import torch
import torch.nn.functional as F

from advlit.attacks import clamp_to_ball, uniform_start
from advlit.methods.base import Batch, Method
from advlit.methods.registry import register
from advlit.utils import ConfigError

log = logging.getLogger(__name__)

#: the code's steps (unnormalised gradient units): up to ``CODE_EPS_SPLIT``, and above it
CODE_ALPHA_SMALL_EPS = 5000 / 255
CODE_ALPHA_LARGE_EPS = 2000 / 255
CODE_EPS_SPLIT = 8 / 255


def default_alpha(eps: float) -> float:
    """The authors' code's step for budget ``eps``: ``5000/255`` if ``eps <= 8/255``, else
    ``2000/255`` (see the module docstring; gradient units, not pixels)."""
    return CODE_ALPHA_SMALL_EPS if eps <= CODE_EPS_SPLIT * (1 + 1e-9) else CODE_ALPHA_LARGE_EPS


@register("fast_bat")
class FastBAT(Method):
    """Fast-BAT: two unsigned ascent steps and the implicit-gradient cross term.

    ``alpha`` defaults to the code's step, :func:`default_alpha` (``5000/255`` up to
    ``eps = 8/255``, ``2000/255`` above; gradient units, see the module docstring); ``lam``
    is the proximity weight lambda of the lower level (code: 10).
    """

    def __init__(self, eps: float, alpha: float | None = None, lam: float = 10.0, tol: float = 1e-7):
        super().__init__(eps, alpha)
        if lam <= 0:
            raise ConfigError(f"fast_bat: lam must be positive, got {lam}")
        self.lam = float(lam)
        self.tol = float(tol)
        if self.alpha is None:
            self.alpha = default_alpha(self.eps)
        self._pending = None  # (x_adv, delta_1) of the last perturb(), used by loss()

    def _ascent(self, model, x, y, delta):
        """One unsigned step ``Proj(delta + alpha grad_delta sum CE)``, detached."""
        delta = delta.detach().requires_grad_(True)
        loss = F.cross_entropy(model(x + delta), y, reduction="sum")
        (grad,) = torch.autograd.grad(loss, delta)
        return clamp_to_ball(x + delta.detach() + self.alpha * grad, x, self.eps) - x

    def perturb(self, model, batch: Batch):
        """``delta*`` after two unsigned steps from a uniform start (attack in the model's mode)."""
        x, y = batch.x, batch.y
        delta_1 = self._ascent(model, x, y, uniform_start(x, self.eps))
        delta_star = self._ascent(model, x, y, delta_1)
        x_adv = (x + delta_star).detach()
        self._pending = (x_adv, delta_1.detach())
        return x_adv

    def interior_mask(self, x, x_adv):
        """``H``: coordinates of ``delta*`` strictly inside ``[max(-eps,-x), min(eps,1-x)]``."""
        delta = x_adv - x
        low = torch.clamp(-x, min=-self.eps)
        high = torch.clamp(1 - x, max=self.eps)
        return ((delta > low + self.tol) & (delta < high - self.tol)).to(x.dtype)

    def loss(self, model, batch: Batch, x_adv):
        """``CE(f(x + delta*))`` plus the implicit cross term (Fast-BAT's upper-level gradient).

        The returned scalar's parameter gradient is the implicit gradient; its value is the
        CE plus the (small) cross-term surrogate. ``model`` may differ from the model that
        crafted ``x_adv`` (LAST's proxy): ``g``, ``H`` and the cross term use ``model``.
        """
        x, y = batch.x, batch.y
        logits = model(x_adv)
        ce = F.cross_entropy(logits, y)
        pending, self._pending = self._pending, None
        if pending is None or pending[0] is not x_adv:
            log.warning("fast_bat: loss() called without the matching perturb(); no cross term")
            return ce, logits
        delta_1 = pending[1]
        x_star = x_adv.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(F.cross_entropy(model(x_star), y, reduction="sum"), x_star)
        v = (self.interior_mask(x, x_adv) * g / self.lam).detach()
        d1 = delta_1.clone().requires_grad_(True)
        (g1,) = torch.autograd.grad(F.cross_entropy(model(x + d1), y, reduction="sum"), d1, create_graph=True)
        cross = (g1 * v).sum() / len(y)
        return ce + cross, logits
