"""What every chapter notebook calls after its ``parameters`` cell.

    chapter = Chapter(profile=profile, data_root=data_root, epochs=epochs, seeds=seeds,
                      device=device, results_dir=results_dir, eps=eps)
    records = chapter.run("atas.atas")            # trains, or reloads the current records
    show_source(ATAS.perturb)                     # the code beside the equation

Parameters that are ``None`` keep the profile's defaults. A bad parameter or missing
data stops the notebook with one readable line (see :class:`advlit.utils.ConfigError`).
"""
from __future__ import annotations

import inspect
import textwrap
import warnings

with warnings.catch_warnings():  # tqdm.auto warns once in kernels without ipywidgets
    warnings.simplefilter("ignore")
    import tqdm.auto  # noqa: F401

from advlit import experiments
from advlit.utils import ConfigError, format_eps


class Chapter:
    """The parameters of one notebook run, bound to :mod:`advlit.experiments`."""

    def __init__(self, profile: str = "cpu", data_root=None, epochs=None, seeds=None, device=None,
                 results_dir=None, eps=None, **unknown):
        if unknown:
            raise ConfigError(f"unknown notebook parameter(s): {', '.join(sorted(unknown))}; "
                              "known: profile, data_root, epochs, seeds, device, results_dir, eps")
        self.profile = experiments.check_profile(profile)
        if seeds is not None and (isinstance(seeds, (str, bytes)) or not all(isinstance(s, int) for s in seeds)):
            raise ConfigError(f"seeds must be a list of integers, e.g. [0, 1, 2], got {seeds!r}")
        if epochs is not None and (not isinstance(epochs, int) or epochs < 1):
            raise ConfigError(f"epochs must be a positive integer, got {epochs!r}")
        if eps is not None and not (0 < float(eps) <= 1):
            raise ConfigError(f"eps must lie in (0, 1] (pixel scale), got {eps!r}")
        self.seeds = list(seeds) if seeds is not None else experiments.DEFAULT_SEEDS[profile]
        self.overrides = dict(data_root=data_root, epochs=epochs, device=device, eps=eps)
        self.results_dir = experiments.results_dir_for(profile, results_dir)

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
        return experiments.run(name, self.profile, seeds=seeds, results_dir=self.results_dir,
                               need_model=need_model, **{**self.overrides, **overrides})

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
