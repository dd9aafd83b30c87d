"""The papers' stated settings against the ``gpu`` and ``cpu`` profiles: one table per chapter.

``book/paper_tables/paper_settings.csv`` transcribes the training and evaluation settings
each paper states for the experiments a chapter's ``gpu`` profile claims to reproduce: one
row per (experiment family, setting), with the registry experiments it applies to, the
paper's value, a short quote and the source. Where a paper is silent there is no row.

:func:`protocol_table` resolves every row against ``get_config(name, "gpu")`` and
``get_config(name, "cpu")`` and says, per profile, whether the value matches the paper and,
where it does not, why. The reasons are data next to the experiments: each chapter's module
in :mod:`advlit.experiments` may define

    GPU_DEVIATIONS = {(experiment or family, setting): reason}
    CPU_DEVIATIONS = {(experiment or family, setting or "*"): reason}

(looked up in the order (experiment, setting), (experiment, "*"), (family, setting)); a cpu
difference without a specific reason gets :data:`CPU_REASON`, the embedded stand-in.
:func:`protocol_problems` lists what ``tests/test_protocol.py`` forbids: a gpu setting that
differs from the paper without a reason, a reason that no longer applies to any difference,
an unknown experiment and a setting that does not resolve.

Settings are :class:`~advlit.config.RunConfig` fields or ``method_args.<key>`` (``<layer>.<key>``
for a framework, as the registry writes them); a key the experiment does not set takes the
method's default. Values are compared after a normalisation:

- numbers within a relative 1e-6 (``eps`` 8/255 equals 0.0313725...; shown as ``8/255``);
  ``k/255`` is a pixel value, ``a..b`` an integer range, ``a..b/255`` a range of pixel values;
- ``alpha_ratio``: the base method's step (the explicit one, or the method's default) against
  the paper's, given either as a multiple of eps (``1.25``) or in pixels (``4/255``);
  ``method_args.eps_options`` / ``step_options`` (LAS-AT: multiples of eps) in pixels;
- ``lr_schedule``: ``cyclic``, ``step [epochs]`` (divide by 10 at those epochs; the package's
  ``piecewise`` and ``multistep``; without epochs any milestones match), or
  ``linear_decay [epochs]`` (constant until the first epoch, then linear to /10 at each
  next one: PIAT's schedule, :mod:`advlit.schedules`);
- ``final_attacks``: every attack the paper names must be run (extra ones are fine); ``cw``
  without a step count matches any ``cw-K``, ``pgd-50`` any number of restarts, ``apgd``
  (stand-alone APGD) the package's ``apgd-ce`` (AutoAttack's APGD-CE, 100 iterations);
- ``final_subset`` / ``aa_subset``: ``full`` is the whole test set (``None``; AutoAttack's
  ``None`` falls back to ``final_subset``).
"""
from __future__ import annotations

import importlib
import inspect
import math
import re
from functools import lru_cache

import pandas as pd

from advlit.evaluate import parse_attack
from advlit.experiments import get_config, list_experiments
from advlit.methods import build_method, method_class
from advlit.results import REPO_DIR
from advlit.utils import ConfigError, format_eps

SETTINGS_FILE = REPO_DIR / "book" / "paper_tables" / "paper_settings.csv"
#: chapter key -> module of :mod:`advlit.experiments` (which holds the deviations)
CHAPTERS = {"basics": "basics", "atas": "atas", "init": "initialization", "las_at": "las_at", "last": "last",
            "piat": "piat", "comparison": "comparison"}
MATCH = "matches"
CPU_REASON = ("the cpu profile's embedded stand-in (digits16, a two-convolution CNN, eps = 0.2, a CPU budget of minutes); "
              "see the chapter's experiments module")
NO_REASON = "DIFFERS, NO REASON GIVEN"
_EPS_MULTIPLES = {"method_args.eps_options", "method_args.step_options"}


@lru_cache(maxsize=1)
def paper_settings() -> pd.DataFrame:
    """``paper_settings.csv`` as a frame of strings."""
    return pd.read_csv(SETTINGS_FILE, dtype=str, keep_default_na=False)


# ------------------------------------------------------------------ values
def _number(token: str) -> float:
    if token.endswith("/255"):
        return float(token[:-4]) / 255
    return float(token)


def _tokens(text: str) -> list[str]:
    """Space-separated tokens with ``a..b`` and ``a..b/255`` ranges expanded."""
    out = []
    for tok in str(text).split():
        m = re.fullmatch(r"(\d+)\.\.(\d+)(/255)?", tok)
        out += [f"{k}{m[3] or ''}" for k in range(int(m[1]), int(m[2]) + 1)] if m else [tok]
    return out


def _same_scalar(token: str, value) -> bool:
    if token in ("true", "false"):
        return bool(value) == (token == "true")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return math.isclose(_number(token), float(value), rel_tol=1e-6, abs_tol=1e-12)
        except ValueError:
            return False
    return token == str(value)


def _pixels(value: float) -> str:
    """``k/255`` for a small multiple of 1/255 (:func:`~advlit.utils.format_eps` prints 10/255,
    which reduces to 2/51, as a decimal), else :func:`~advlit.utils.format_eps` (0.2, not 51/255)."""
    k = round(value * 255)
    return f"{k}/255" if 0 < k < 50 and math.isclose(value * 255, k, rel_tol=1e-6) else format_eps(value)


def _show(value, pixels: bool = False) -> str:
    """A config value the way the CSV writes it: k/255 for pixel values, runs of three or
    more consecutive k or k/255 as ``a..b`` / ``a..b/255``."""
    if isinstance(value, (list, tuple)):
        runs: list = []  # [first, last, suffix] of a run of consecutive integers, or a token
        for tok in (_show(v, pixels) for v in value):
            m = re.fullmatch(r"(\d+)(/255)?", tok)
            prev = runs[-1] if runs else None
            if m and isinstance(prev, list) and prev[2] == (m[2] or "") and prev[1] + 1 == int(m[1]):
                prev[1] += 1
            else:
                runs.append([int(m[1]), int(m[1]), m[2] or ""] if m else tok)
        return " ".join(r if isinstance(r, str) else f"{r[0]}..{r[1]}{r[2]}" if r[1] - r[0] >= 2
                        else " ".join(f"{k}{r[2]}" for k in range(r[0], r[1] + 1)) for r in runs)
    if isinstance(value, float):
        return _pixels(value) if pixels else f"{value:g}"
    return str(value).lower() if isinstance(value, bool) else str(value)


def _base(cfg):
    """The base method of ``cfg`` built with its own arguments (frameworks left out)."""
    layers = [s.strip() for s in cfg.method.split("+")]
    base = layers[-1]
    kwargs = {}
    for key, value in cfg.method_args.items():
        layer, _, sub = key.rpartition(".")
        if not layer or layer == base:
            kwargs[sub] = value
    return build_method(base, cfg.eps, cfg.alpha_ratio, **kwargs)


def _method_arg(cfg, key: str):
    if key in cfg.method_args:
        return cfg.method_args[key]
    layers = [s.strip() for s in cfg.method.split("+")]
    layer, _, sub = key.rpartition(".")
    layer = layer or layers[-1]
    if layer not in layers:
        raise ConfigError(f"{cfg.method}: setting method_args.{key} names layer {layer!r}, not in the method")
    for cls in method_class(layer).__mro__:  # a subclass may pass **kwargs on to its parent
        param = inspect.signature(cls.__init__).parameters.get(sub) if "__init__" in vars(cls) else None
        if param is not None and param.default is not inspect.Parameter.empty:
            return param.default
    raise ConfigError(f"{cfg.method}: {layer} has no argument {sub!r} with a default")


def _schedule(cfg) -> tuple[str, tuple]:
    if cfg.lr_schedule == "piecewise":
        return "step", (round(0.8 * cfg.epochs), round(0.9333 * cfg.epochs))
    if cfg.lr_schedule == "multistep":
        return "step", tuple(int(m) for m in cfg.milestones)
    if cfg.lr_schedule == "linear_decay":
        return "linear_decay", tuple(int(m) for m in cfg.milestones)
    return cfg.lr_schedule, ()


def _attack_run(token: str, attacks) -> bool:
    specs = [parse_attack(a) for a in attacks]
    if token in ("clean", "fgsm", "aa", "aa-fast"):
        return token in attacks
    if token == "apgd":  # the papers' APGD: AutoAttack's APGD-CE run alone
        return "apgd-ce" in attacks
    m = re.fullmatch(r"(pgd|cw)(?:-(\d+)(?:x(\d+))?)?", token)
    if not m:
        return False  # an attack advlit.evaluate lacks
    loss = "cw" if m[1] == "cw" else "ce"
    return any(s.kind == "pgd" and s.loss == loss and (not m[2] or s.steps == int(m[2]))
               and (not m[3] or s.restarts == int(m[3])) for s in specs)


def resolve(cfg, setting: str, paper: str) -> tuple[str, bool]:
    """``(shown value, matches paper)`` of ``setting`` in config ``cfg``."""
    if setting == "alpha_ratio":
        step = _base(cfg).alpha
        if step is None:
            return "none", False
        tok = paper.strip()
        target = _number(tok) if tok.endswith("/255") else float(tok) * cfg.eps
        return f"{_pixels(float(step))} ({step / cfg.eps:g} eps)", math.isclose(step, target, rel_tol=1e-6)
    if setting == "lr_schedule":
        name, marks = _schedule(cfg)
        what = "linear /10 per segment" if name == "linear_decay" else "/10"
        shown = cfg.lr_schedule + (f" ({what} at {', '.join(map(str, marks))})" if marks else "")
        toks = paper.split()
        same = toks[0] == name and (len(toks) == 1 or tuple(int(t) for t in toks[1:]) == marks)
        return shown, same
    if setting == "final_attacks":
        return ", ".join(cfg.final_attacks), all(_attack_run(t, cfg.final_attacks) for t in paper.split())
    if setting in ("final_subset", "aa_subset"):
        n = cfg.final_subset if setting == "final_subset" else (cfg.aa_subset or cfg.final_subset)
        shown = "full" if n is None else str(n)
        return shown, shown == paper.strip()
    if setting.startswith("method_args."):
        value = _method_arg(cfg, setting[len("method_args."):])
    elif hasattr(cfg, setting):
        value = getattr(cfg, setting)
    else:
        raise ConfigError(f"unknown setting {setting!r} (a RunConfig field or method_args.<key>)")
    if setting in _EPS_MULTIPLES:
        value = sorted(float(v) * cfg.eps for v in value)
    tokens = _tokens(paper)
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if setting in _EPS_MULTIPLES or setting == "method_args.iter_options":
        tokens = sorted(tokens, key=_number)
        values = sorted(values)
    same = len(tokens) == len(values) and all(_same_scalar(t, v) for t, v in zip(tokens, values))
    return _show(value, pixels=setting == "eps" or setting in _EPS_MULTIPLES), same


# ----------------------------------------------------------------- checking
def _deviations(chapter: str) -> tuple[dict, dict]:
    if chapter not in CHAPTERS:
        raise ConfigError(f"unknown chapter {chapter!r}; choose from {', '.join(CHAPTERS)}")
    module = importlib.import_module(f"advlit.experiments.{CHAPTERS[chapter]}")
    return getattr(module, "GPU_DEVIATIONS", {}), getattr(module, "CPU_DEVIATIONS", {})


def _reason(table: dict, experiment: str, family: str, setting: str):
    for key in ((experiment, setting), (experiment, "*"), (family, setting)):
        if key in table:
            return key, table[key]
    return None, None


def protocol_checks(chapter: str) -> list[dict]:
    """One record per (settings row, experiment): the paper's value and both profiles'
    values, whether they match and the reason that applies (and the key it came from)."""
    gpu_dev, cpu_dev = _deviations(chapter)
    known = set(list_experiments())
    out = []
    for _, row in paper_settings()[lambda d: d.chapter == chapter].iterrows():
        for name in row.experiments.split():
            rec = {"family": row.family, "experiment": name, "setting": row.setting, "paper": row.value,
                   "source": f'{row.source}: "{row.quote}"', "error": None}
            if name not in known:
                out.append({**rec, "error": f"unknown experiment {name!r}"})
                continue
            try:
                for profile, table in (("gpu", gpu_dev), ("cpu", cpu_dev)):
                    shown, same = resolve(get_config(name, profile), row.setting, row.value)
                    key, reason = (None, MATCH) if same else _reason(table, name, row.family, row.setting)
                    if reason is None:
                        reason = CPU_REASON if profile == "cpu" else NO_REASON
                    rec.update({profile: shown, f"{profile}_same": same, f"{profile}_reason": reason,
                                f"{profile}_key": key})
            except (ConfigError, ValueError, TypeError) as err:
                rec = {**rec, "error": f"{name}: {row.setting}: {err}"}
            out.append(rec)
    return out


def protocol_problems(chapter: str) -> dict[str, list[str]]:
    """What must not happen (see the module docstring), by kind: ``"unresolved"`` (an
    unknown experiment or a setting that does not resolve), ``"unexplained"`` (a gpu setting
    that differs from the paper without a reason) and ``"stale"`` (a reason that applies to
    no difference); all lists are empty when the chapter is consistent."""
    checks = protocol_checks(chapter)
    ok = [c for c in checks if not c["error"]]
    stale = []
    for profile, table in zip(("gpu", "cpu"), _deviations(chapter)):
        used = {c[f"{profile}_key"] for c in ok}
        stale += [f"{profile.upper()}_DEVIATIONS[{key!r}]: no {profile} setting it names differs from the paper"
                  for key in table if key not in used]
    return {"unresolved": [c["error"] for c in checks if c["error"]],
            "unexplained": [f"{c['experiment']}: {c['setting']} is {c['gpu']} at the gpu profile, the paper's is "
                            f"{c['paper']} ({c['source']}), and GPU_DEVIATIONS gives no reason"
                            for c in ok if c["gpu_reason"] == NO_REASON],
            "stale": stale}


def protocol_table(chapter: str) -> pd.DataFrame:
    """The chapter's protocol table: per paper setting, the paper's value with its source,
    the ``gpu`` and ``cpu`` profiles' values and, for each, "matches" or the reason it differs.
    Experiments of one row that agree in all of that share a line."""
    rows: list[dict] = []
    for c in protocol_checks(chapter):
        if c["error"]:
            raise ConfigError(c["error"])
        line = {"setting": c["setting"], "paper": c["paper"], "source": c["source"], "gpu": c["gpu"],
                "gpu vs paper": c["gpu_reason"], "cpu": c["cpu"], "cpu vs paper": c["cpu_reason"]}
        same = next((r for r in rows if r["_family"] == c["family"] and all(r[k] == v for k, v in line.items())), None)
        if same is not None:
            same["experiments"] += f", {c['experiment']}"
        else:
            rows.append({"_family": c["family"], "experiments": c["experiment"], **line})
    columns = ["setting", "experiments", "paper", "source", "gpu", "gpu vs paper", "cpu", "cpu vs paper"]
    return pd.DataFrame(rows, columns=["_family", *columns])[columns]
