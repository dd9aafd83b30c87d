"""Learning-rate schedules as functions of the fractional epoch ``t`` in [0, epochs]."""
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
    if name == "constant":
        return lambda t: peak
    raise ConfigError(f"unknown LR schedule {name!r}")
