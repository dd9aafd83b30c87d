"""Named experiments x profiles -> run configurations: the one place for settings.

Each chapter module in this package defines ``EXPERIMENTS = {name: spec}``, where a spec
holds ``"common"`` settings and optional per-profile ones (``"cpu"``, ``"gpu"``), layered
over the profile defaults below. Notebooks never hard-code settings; they call

    >>> records = run("basics.fgsm_rs_2eps", profile="cpu", seeds=[0, 1, 2])

which trains, or reloads a finished record of the same configuration and code version.
Profiles: ``cpu`` is the embedded default (digits at 16x16; a two-convolution CNN without
BatchNorm, max-pooling once, chosen in chapter 01's stand-in study; eps = 0.2; minutes on
two cores; validation with PGD-20 on the first 100 of the 200 validation images after every
epoch);
``gpu`` is the papers' CIFAR-10 / PreActResNet-18 protocol at eps = 8/255, every final
attack (AutoAttack included: ``aa_subset=None``) on the full test set. How each chapter's
``gpu`` experiments match the settings their papers state, and why they differ where they
do, is :func:`advlit.protocol.protocol_table`.
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import fields
from pathlib import Path

from advlit import smoke as _smoke
from advlit.config import RunConfig
from advlit.utils import ConfigError

PROFILES = {
    "cpu": dict(
        dataset="digits16", model="conv_net", model_args={"channels": [32, 64], "pools": [False, True]}, eps=0.2, epochs=30, batch_size=128, lr=0.1,
        lr_schedule="cyclic", device="cpu", val_attack="pgd-20", val_subset=100,
        final_attacks=["clean", "fgsm", "pgd-20", "pgd-50", "cw-20", "aa-fast"], aa_subset=100,
    ),
    "gpu": dict(
        dataset="cifar10", model="preact_resnet18", eps=8 / 255, epochs=30, batch_size=128, lr=0.2,
        lr_schedule="cyclic", device="cuda", val_attack="pgd-20", val_subset=1000,
        final_attacks=["clean", "fgsm", "pgd-10", "pgd-50x10", "cw-20", "aa"], aa_subset=None,
    ),
}
#: ``smoke``: the gpu profile's experiments shrunk to run on CPU in the tests (:mod:`advlit.smoke`:
#: every reduction, with its reason); one seed
PROFILES["smoke"] = _smoke.shrink(PROFILES["gpu"])
DEFAULT_SEEDS = {"cpu": [0, 1, 2], "gpu": [0, 1, 2], "smoke": [0]}

_EXPERIMENTS: dict[str, dict] = {}
_METHOD_DEFAULTS: dict[str, dict] = {}


def _load() -> dict[str, dict]:
    if not _EXPERIMENTS:
        for info in pkgutil.iter_modules(__path__):
            module = importlib.import_module(f"{__name__}.{info.name}")
            for registry, attribute in ((_EXPERIMENTS, "EXPERIMENTS"), (_METHOD_DEFAULTS, "METHOD_DEFAULTS")):
                for name, spec in getattr(module, attribute, {}).items():
                    if name in registry:
                        raise RuntimeError(f"{attribute[:-1].lower().replace('_', ' ')} {name!r} defined twice")
                    registry[name] = spec
    return _EXPERIMENTS


def method_defaults(method: str, dataset: str) -> dict:
    """Run settings a method needs on a dataset when nobody says otherwise: what
    ``advlit train --method M --dataset D`` uses for every setting its command line leaves
    out (e.g. ATTA's and ATAS's piecewise schedule and ATAS's c, :mod:`advlit.experiments.atas`).

    Chapter modules declare them as ``METHOD_DEFAULTS = {method: {"*": settings, dataset:
    settings}}``; the dataset's entry is layered over ``"*"`` and ``method_args`` merge key
    by key. Only a plain method name has defaults (``atas``, not ``piat+atas``).
    """
    _load()
    table = _METHOD_DEFAULTS.get(method, {})
    return layer_settings(table.get("*", {}), table.get(dataset, {}))


def layer_settings(*layers: dict) -> dict:
    """Run settings layered in order, later layers winning; ``method_args`` merge key by key."""
    out: dict = {}
    for layer in layers:
        for key, value in layer.items():
            out[key] = {**out.get(key, {}), **value} if key == "method_args" else value
    return out


def list_experiments(prefix: str = "") -> list[str]:
    """Names of the registered experiments (optionally only those starting with ``prefix``)."""
    return sorted(n for n in _load() if n.startswith(prefix))


def check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; choose 'cpu' (embedded data, minutes) or 'gpu' (paper scale)"
                          " (or 'smoke': the gpu code path shrunk for a CPU test)")
    return profile


def get_config(name: str, profile: str = "cpu", seed: int = 0, **overrides) -> RunConfig:
    """The :class:`RunConfig` of experiment ``name`` at ``profile``; ``overrides`` that are
    ``None`` are ignored, so notebook parameters can pass ``None`` for 'profile default'."""
    check_profile(profile)
    experiments = _load()
    if name not in experiments:
        raise ConfigError(f"unknown experiment {name!r}; known: {', '.join(sorted(experiments))}")
    spec = experiments[name]
    layer = "gpu" if profile == "smoke" else profile  # smoke: the gpu experiments, then shrunk
    settings = {**PROFILES[layer], **spec.get("common", {}), **spec.get(layer, {})}
    if profile == "smoke":
        settings = _smoke.shrink(settings)
    settings.update({k: v for k, v in overrides.items() if v is not None})
    settings["seed"] = seed
    known = {f.name for f in fields(RunConfig)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ConfigError(f"experiment {name!r}: unknown setting(s) {', '.join(unknown)}")
    return RunConfig(**settings).validate()


def results_dir_for(profile: str, results_dir: str | Path | None = None) -> Path:
    """``results/<profile>`` at the repository root unless ``results_dir`` is given (the
    ``smoke`` profile: a temporary folder, :func:`advlit.smoke.default_results_dir`)."""
    from advlit.results import REPO_DIR

    if profile == "smoke" and not results_dir:
        return _smoke.default_results_dir()
    return Path(results_dir) if results_dir else REPO_DIR / "results" / profile


def run(name: str, profile: str = "cpu", seeds=None, results_dir=None, need_model: bool = False,
        progress: bool | None = False, **overrides) -> list[dict]:
    """Train (or reload) experiment ``name`` for every seed; return the run records.

    Every record a chapter loads comes through here, and each load is reported to
    :func:`advlit.grid.note_load`: ``advlit book run`` records them in
    ``results/<profile>/manifest.json``, the list of runs ``advlit grid`` trains."""
    from advlit.grid import note_load
    from advlit.results import run_or_load

    seeds = DEFAULT_SEEDS[check_profile(profile)] if seeds is None else list(seeds)
    out = results_dir_for(profile, results_dir)
    records = []
    for s in seeds:
        config = get_config(name, profile, seed=s, **overrides)
        note_load(name, profile, s, need_model, overrides, config)
        records.append(run_or_load(config, out, need_model=need_model, progress=progress))
    return records
