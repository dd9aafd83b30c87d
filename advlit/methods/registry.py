"""Name -> class registry of methods and frameworks, and the spec parser of the CLI.

A *method spec* is a ``+``-separated chain read outside-in: ``"piat+last+atas"`` builds
``PIAT(LAST(ATAS(eps, ...)))``. Keyword arguments for a layer are given as
``"<layer>.<key>"`` (``"last.gamma": 0.8``); plain keys go to the innermost (base) method.
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil

from advlit.methods.base import Method
from advlit.utils import ConfigError

_REGISTRY: dict[str, type[Method]] = {}
_LOADED = False


def register(name: str):
    """Class decorator: make a :class:`Method` (or a framework) available by ``name``."""

    def deco(cls):
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise RuntimeError(f"method name {name!r} registered twice")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def _load_all() -> None:
    """Import every module of advlit.methods and advlit.frameworks (they self-register)."""
    global _LOADED
    if _LOADED:
        return
    for pkg_name in ("advlit.methods", "advlit.frameworks"):
        pkg = importlib.import_module(pkg_name)
        for info in pkgutil.iter_modules(pkg.__path__):
            importlib.import_module(f"{pkg_name}.{info.name}")
    _LOADED = True


def available_methods() -> dict[str, type[Method]]:
    """All registered names, base methods and frameworks alike."""
    _load_all()
    return dict(sorted(_REGISTRY.items()))


def method_class(name: str) -> type[Method]:
    methods = available_methods()
    if name not in methods:
        bases = ", ".join(n for n, c in methods.items() if not c.wraps)
        frames = ", ".join(n for n, c in methods.items() if c.wraps)
        raise ConfigError(f"unknown method {name!r}; methods: {bases}; frameworks (prefix with '+'): {frames}")
    return methods[name]


def _check_kwargs(cls, kwargs: dict, layer: str) -> None:
    params = inspect.signature(cls.__init__).parameters
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return
    unknown = sorted(set(kwargs) - set(params) - {"self"})
    if unknown:
        allowed = ", ".join(p for p in params if p not in ("self", "base"))
        raise ConfigError(f"{layer}: unknown argument(s) {', '.join(unknown)}; allowed: {allowed}")


def build_method(spec: str, eps: float, alpha_ratio: float | None = None, **kwargs) -> Method:
    """Build a (possibly wrapped) method from a spec string.

    ``alpha_ratio`` sets the base method's step as ``alpha = alpha_ratio * eps``; each
    method documents what its step means (ATAS: the maximum step gamma / c).
    """
    layers = [s.strip() for s in spec.split("+") if s.strip()]
    if not layers:
        raise ConfigError("empty method spec")
    *frames, base_name = layers
    base_cls = method_class(base_name)
    if base_cls.wraps:
        raise ConfigError(f"{base_name!r} is a framework; it must wrap a method, e.g. '{base_name}+fgsm_rs'")
    per_layer: dict[str, dict] = {name: {} for name in layers}
    for key, value in kwargs.items():
        if "." in key:
            layer, sub = key.split(".", 1)
            if layer not in per_layer:
                raise ConfigError(f"argument {key!r} names layer {layer!r}, which is not in {spec!r}")
            per_layer[layer][sub] = value
        else:
            per_layer[base_name][key] = value
    base_kwargs = dict(per_layer[base_name])
    if alpha_ratio is not None:
        if alpha_ratio <= 0:
            raise ConfigError(f"alpha ratio must be positive, got {alpha_ratio}")
        base_kwargs.setdefault("alpha", alpha_ratio * eps)
    _check_kwargs(base_cls, base_kwargs, base_name)
    method = base_cls(eps=eps, **base_kwargs)
    for name in reversed(frames):
        cls = method_class(name)
        if not cls.wraps:
            raise ConfigError(f"{name!r} is a method, not a framework; only the last element of {spec!r} may be a method")
        _check_kwargs(cls, per_layer[name], name)
        method = cls(method, **per_layer[name])
    return method
