"""Small helpers shared by the whole package: threads, seeding, RNG state, eps formatting."""
from __future__ import annotations

import os
import random
from fractions import Fraction

import numpy as np
import torch

THREADS_ENV = "ADVLIT_THREADS"


def configure_threads() -> int:
    """Set torch's intra-op thread count from ``$ADVLIT_THREADS`` (default 1); return it."""
    raw = os.environ.get(THREADS_ENV, "1")
    try:
        n = int(raw)
    except ValueError:
        raise ValueError(f"{THREADS_ENV} must be a positive integer, got {raw!r}") from None
    if n < 1:
        raise ValueError(f"{THREADS_ENV} must be a positive integer, got {raw!r}")
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA) RNGs."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def get_rng_state() -> dict:
    """Capture every RNG state a training run consumes (for exact resume)."""
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore RNG states captured by :func:`get_rng_state`."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def format_eps(eps: float) -> str:
    """Print an L-inf radius the way papers do: ``8/255`` when it is k/255, else ``0.2``."""
    frac = Fraction(eps).limit_denominator(255)
    if frac.denominator == 255 and abs(float(frac) - eps) < 1e-9:
        return f"{frac.numerator}/255"
    return f"{eps:g}"


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``None`` or ``"auto"`` -> CUDA when available, else CPU."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class ConfigError(ValueError):
    """A bad parameter given by the user: the CLI prints it as one line and exits 2.

    In a notebook, IPython shows it as that one line too, not as a traceback wall.
    """

    def _render_traceback_(self):  # IPython hook: replaces the traceback display
        return [f"advlit: error: {self}"]
