"""Training methods: one file per paper family, all registered by name.

Use :func:`build_method` with a spec such as ``"fgsm_rs"`` or ``"piat+last+atas"``.
"""
from advlit.methods.base import Batch, Method, TrainContext, Wrapper, clamp_to_ball, per_example, step_metrics
from advlit.methods.registry import available_methods, build_method, method_class, register

__all__ = [
    "Batch", "Method", "TrainContext", "Wrapper", "clamp_to_ball", "per_example", "step_metrics",
    "available_methods", "build_method", "method_class", "register",
]
