"""Learning-rate schedules as functions of the fractional epoch ``t`` in [0, epochs].

The trainer (:class:`advlit.train.Trainer`) evaluates ``lr(t)`` once per *iteration*, at
``t = epoch + (i + 1) / steps_per_epoch`` after batch ``i`` of ``epoch`` (0-based), so every
schedule here is a function of the fractional epoch: the continuous ones (``cyclic``,
``linear_decay``) change every iteration, the step ones at the first iteration whose ``t``
reaches a milestone."""
from __future__ import annotations

import numpy as np

from advlit.utils import ConfigError


def lr_schedule(name: str, peak: float, epochs: int, milestones=()) -> callable:
    """Return ``lr(t)``.

    - ``cyclic``: triangular, 0 -> peak at epochs/2 -> 0 (Wong et al. 2020, updated every
      iteration);
    - ``piecewise``: peak, divided by 10 at 80 % and at 93.3 % of training (24 and 28 of
      30 epochs, the ATAS / Rice et al. recipe);
    - ``multistep``: peak, divided by 10 at each of ``milestones`` (epochs);
    - ``linear_decay``: peak until ``milestones[0]``, then linear in ``t`` down to peak / 10 at
      ``milestones[1]``, peak / 100 at ``milestones[2]``, ... (a factor of 10 per segment),
      constant after the last milestone. PIAT, Sec. V-A: "0.01 ... till epoch 60 and then
      linearly decays to 0.001, 0.0001 at epoch 90 and 120" is ``lr=0.01``,
      ``milestones=[60, 90, 120]`` (its WRN-32-10 schedule: ``lr=0.1``, ``[90, 135, 180]``).
      Linear in the fractional epoch, so the LR changes every iteration (see the module
      docstring); milestones past ``epochs`` are allowed (the decay is then cut off);
    - ``constant``: peak throughout.
    """
    if name == "cyclic":
        return lambda t: float(np.interp(t, [0, epochs / 2, epochs], [0, peak, 0]))
    if name == "piecewise":
        marks = (round(0.8 * epochs), round(0.9333 * epochs))
        return lambda t: peak * 0.1 ** sum(t >= m for m in marks)
    if name == "multistep":
        marks = tuple(milestones)
        return lambda t: peak * 0.1 ** sum(t >= m for m in marks)
    if name == "linear_decay":
        knots = _knots(milestones)
        values = [peak * 0.1 ** j for j in range(len(knots))]
        return lambda t: float(np.interp(t, knots, values))
    if name == "constant":
        return lambda t: peak
    raise ConfigError(f"unknown LR schedule {name!r}")


def _knots(milestones) -> list[float]:
    """The milestones of ``linear_decay`` as floats: at least two, increasing, >= 0."""
    try:
        knots = [float(m) for m in milestones or ()]
    except (TypeError, ValueError):
        knots = None
    if (not knots or len(knots) < 2 or not all(np.isfinite(knots)) or knots[0] < 0
            or any(b <= a for a, b in zip(knots, knots[1:]))):
        raise ConfigError(f"linear_decay needs milestones: two or more strictly increasing epochs >= 0 (start of "
                          f"the decay, then one per factor of 10), got {milestones!r}")
    return knots
