"""What every chapter notebook calls after its ``parameters`` cell.

    chapter = Chapter(profile=profile, data_root=data_root, epochs=epochs, seeds=seeds,
                      device=device, results_dir=results_dir, eps=eps)
    records = chapter.run("atas.atas")            # trains, or reloads the current records
    show_source(ATAS.perturb)                     # the code beside the equation

Parameters that are ``None`` keep the profile's defaults. A bad parameter or missing
data stops the notebook with one readable line (see :class:`advlit.utils.ConfigError`);
so does a parameter papermill injected that the chapter does not know, once the notebook
calls ``Chapter.check_parameters(globals())`` (papermill itself only warns about it).
"""
from __future__ import annotations

import ast
import inspect
import os
import re
import textwrap
import warnings
from fractions import Fraction

with warnings.catch_warnings():  # tqdm.auto warns once in kernels without ipywidgets
    warnings.simplefilter("ignore")
    import tqdm.auto  # noqa: F401

from advlit import experiments
from advlit.utils import ConfigError, format_eps


#: the notebook parameters :class:`Chapter` takes, as every chapter's ``parameters`` cell defines them
PARAMETERS = ("profile", "data_root", "epochs", "seeds", "device", "results_dir", "eps")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_seeds(seeds) -> list[int] | None:
    """``seeds`` as a list of ints. Papermill hands over ``-p seeds 0`` as the int 0 and
    ``-p seeds '[0, 1]'`` as the string ``"[0, 1]"``; accepted: an int, a list (or tuple) of
    ints, and the strings ``"0"``, ``"[0]"``, ``"0,1,2"``, ``"[0, 1, 2]"``, ``"0 1 2"``."""
    if seeds is None:
        return None
    bad = ConfigError(f"seeds must be an integer or a list of integers, e.g. 0 or [0, 1, 2], got {seeds!r}")
    if isinstance(seeds, str):
        text = seeds.strip()
        if text.startswith("[") and text.endswith("]"):
            text = text[1:-1]
        items = [item for item in re.split(r"[,\s]+", text.strip()) if item]
        if not items or not all(re.fullmatch(r"[+-]?\d+", item) for item in items):
            raise bad
        return [int(item) for item in items]
    if _is_int(seeds):
        return [seeds]
    if isinstance(seeds, (list, tuple)) and seeds and all(_is_int(s) for s in seeds):
        return list(seeds)
    raise bad


def parse_epochs(epochs) -> int | None:
    """``epochs`` as a positive int; the string ``"3"`` (``papermill -r epochs 3``) is accepted."""
    if epochs is None:
        return None
    value = epochs
    if isinstance(value, str) and re.fullmatch(r"\s*\+?\d+\s*", value):
        value = int(value)
    if not _is_int(value) or value < 1:
        raise ConfigError(f"epochs must be a positive integer, got {epochs!r}")
    return value


def parse_eps(eps) -> float | None:
    """``eps`` as a float in (0, 1]: a number, or a string such as ``"0.03"`` or ``"8/255"``."""
    if eps is None:
        return None
    try:
        if isinstance(eps, bool):
            raise TypeError
        value = float(Fraction(eps.strip())) if isinstance(eps, str) else float(eps)
    except (TypeError, ValueError, ZeroDivisionError):
        raise ConfigError(f"eps must be a number in (0, 1] (pixel scale), e.g. 0.2 or '8/255', got {eps!r}") from None
    if not 0 < value <= 1:
        raise ConfigError(f"eps must lie in (0, 1] (pixel scale), got {eps!r}")
    return value


def _check_text(name: str, value):
    if value is not None and not isinstance(value, (str, os.PathLike)):
        raise ConfigError(f"{name} must be a string, got {value!r}")
    return value


def injected_names(namespace: dict) -> list[str]:
    """The names papermill's last ``injected-parameters`` cell assigned in this kernel, read
    from IPython's input history (``In``) in ``namespace``; empty outside papermill."""
    history = namespace.get("In") or namespace.get("_ih") or []
    for source in reversed(list(history)):
        if isinstance(source, str) and source.lstrip().startswith("# Parameters"):
            try:
                return assigned_names(source)
            except SyntaxError:
                return []
    return []


def assigned_names(source: str) -> list[str]:
    """The names a cell's top-level assignments bind, in order (``a = 1``, ``b: int = 2``,
    ``c, d = ...``); raises :class:`SyntaxError` for invalid Python."""
    names = []
    for node in ast.parse(source).body:
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, (ast.AnnAssign, ast.AugAssign)) else []
        for target in targets:
            for leaf in ast.walk(target):
                if isinstance(leaf, ast.Name) and leaf.id not in names:
                    names.append(leaf.id)
    return names


def check_parameters(namespace: dict, known=PARAMETERS) -> None:
    """Stop with one line if papermill injected a parameter the chapter does not know.

    Papermill only warns about ``-p nosuchparam 3`` and injects ``nosuchparam = 3`` anyway;
    the chapter would run with its defaults. Call ``Chapter.check_parameters(globals())``
    in the cell after the ``parameters`` cell."""
    unknown = [name for name in injected_names(namespace) if name not in known]
    if unknown:
        raise ConfigError(f"unknown notebook parameter(s) {', '.join(unknown)}; known: {', '.join(known)}")


class Chapter:
    """The parameters of one notebook run, bound to :mod:`advlit.experiments`.

    With papermill, ``-p NAME VALUE`` reads VALUE as papermill does (an int, a float,
    ``True``/``False``/``None``, else a string), so ``-p seeds 0`` arrives as ``0`` and
    ``-p seeds '[0, 1, 2]'`` as the string ``"[0, 1, 2]"``; both are accepted, as are
    ``"0,1,2"`` and ``-p epochs 3`` or ``-r epochs 3`` (a string), and ``-p eps 8/255``.
    ``-y`` passes YAML instead and keeps its types::

        papermill 02_atas.ipynb out.ipynb -p profile gpu -y "seeds: [0, 1, 2]" -y "eps: 0.0314"

    (``-f params.yaml`` reads the same from a file.) Names other than :data:`PARAMETERS`
    are refused by :meth:`check_parameters` and by ``advlit book run``.
    """

    check_parameters = staticmethod(check_parameters)

    def __init__(self, profile: str = "cpu", data_root=None, epochs=None, seeds=None, device=None,
                 results_dir=None, eps=None, **unknown):
        if unknown:
            raise ConfigError(f"unknown notebook parameter(s): {', '.join(sorted(unknown))}; "
                              f"known: {', '.join(PARAMETERS)}")
        self.profile = experiments.check_profile(profile)
        seeds = parse_seeds(seeds)
        epochs = parse_epochs(epochs)
        eps = parse_eps(eps)
        _check_text("data_root", data_root)
        _check_text("results_dir", results_dir)
        if device is not None:
            from advlit.cli import check_device  # the command line's check: a known device this machine has

            if not isinstance(device, str):
                raise ConfigError(f"unknown device {device!r}; use cpu, cuda, cuda:1, ...")
            check_device(device)
        self.seeds = seeds if seeds is not None else list(experiments.DEFAULT_SEEDS[self.profile])
        self.overrides = dict(data_root=data_root, epochs=epochs, device=device, eps=eps)
        self.results_dir = experiments.results_dir_for(self.profile, results_dir)

    def config(self, name: str, seed: int = 0, **overrides):
        """The run configuration of experiment ``name`` under this chapter's parameters."""
        return experiments.get_config(name, self.profile, seed=seed, **{**self.overrides, **overrides})

    def check_data(self, name: str) -> None:
        """Fail with one clear line if the dataset of experiment ``name`` is not on disk."""
        from advlit.data import get_dataset

        cfg = self.config(name)
        get_dataset(cfg.dataset, "test", root=cfg.data_root)

    def run(self, name: str, seeds=None, need_model: bool = False, **overrides) -> list[dict]:
        """Records of experiment ``name`` for each seed (trained now or reloaded)."""
        self.check_data(name)
        seeds = self.seeds if seeds is None else list(seeds)
        # smoke: keep every run's weights, so that a later need_model=True does not retrain it
        need_model = need_model or self.profile == "smoke"
        return experiments.run(name, self.profile, seeds=seeds, results_dir=self.results_dir,
                               need_model=need_model, **{**self.overrides, **overrides})

    def attack(self, experiment: str, wanted: str, fallback: str | None = None) -> str | None:
        """The final attack of ``experiment`` at this profile that stands for ``wanted``, so a
        chapter need not spell each profile's attack names: ``wanted`` itself when the run
        evaluates it, else the same attack in another version (``aa`` / ``aa-fast``) or with
        other restarts (``pgd-50`` / ``pgd-50x10``), else ``fallback`` (``None``: none)."""
        from advlit.evaluate import parse_attack

        attacks = list(self.config(experiment).final_attacks)
        if wanted in attacks:
            return wanted
        want = parse_attack(wanted)
        for name in attacks:
            spec = parse_attack(name)
            if spec.kind == want.kind and (spec.kind == "aa" or (spec.steps, spec.loss) == (want.steps, want.loss)):
                return name
        return fallback

    def size(self, n: int, kind: str = "points") -> int:
        """A fixed size of an analysis cell (``kind``: ``"points"``, test images of an
        analysis; ``"grid"``, points per axis of a landscape or a sweep; ``"images"``, test
        images attacked for a table or a figure): ``n`` at the ``cpu`` and ``gpu`` profiles,
        at most :data:`advlit.smoke.SIZES` ``[kind]`` at the ``smoke`` profile."""
        from advlit.smoke import SIZES

        return min(n, SIZES[kind]) if self.profile == "smoke" else n

    @property
    def eps(self) -> float:
        return self.overrides["eps"] if self.overrides["eps"] is not None else experiments.PROFILES[self.profile]["eps"]

    def describe(self, experiment: str | None = None) -> str:
        """One line naming the scale of the chapter's tables and figures: the profile's
        defaults, or the actual settings of ``experiment`` when one is named."""
        if experiment is not None:
            c = self.config(experiment)
            model, dataset, eps, epochs = c.model, c.dataset, c.eps, c.epochs
        else:
            p = experiments.PROFILES[self.profile]
            model, dataset, eps, epochs = p["model"], p["dataset"], self.eps, self.overrides["epochs"] or p["epochs"]
        return (f"profile `{self.profile}`: {dataset}, {model}, eps = {format_eps(eps)}, "
                f"{epochs} epochs, seeds {self.seeds}")


def show_source(obj, start: str | None = None, stop: str | None = None):
    """Display the source of ``obj`` as a highlighted code block (optionally only the lines
    from the first containing ``start`` to the first after it containing ``stop``)."""
    from IPython.display import Markdown

    lines = textwrap.dedent(inspect.getsource(obj)).splitlines()
    if start is not None:
        first = next(i for i, line in enumerate(lines) if start in line)
        lines = lines[first:]
        if stop is not None:
            last = next(i for i, line in enumerate(lines) if stop in line)
            lines = lines[:last + 1]
    where = f"{inspect.getmodule(obj).__name__}"
    return Markdown(f"`{where}`\n\n```python\n" + "\n".join(lines) + "\n```")
