"""From a configuration to a run: ``RunConfig -> Method -> Trainer``.

The trainer (:mod:`advlit.train`) trains whatever :class:`~advlit.methods.Method` it is
given and knows no method by name; this module builds that method from the configuration
through the method registry (:func:`advlit.methods.build_method`) and hands it over:

    trainer = build_trainer(RunConfig(method="fgsm_rs", eps=0.2, alpha_ratio=1.25))
    record = trainer.fit("runs/x")          # or: record = train(config, "runs/x")

The command line, the result cache (:func:`advlit.results.run_or_load`) and the grid
train through it. It decides which method a run trains, so it is one of the core files of
the code fingerprint (:data:`advlit.fingerprint.CORE_FILES`).
"""
from __future__ import annotations

from advlit.config import RunConfig
from advlit.methods.base import Method
from advlit.methods.registry import build_method as _build_from_spec
from advlit.train import Trainer


def build_method(config: RunConfig) -> Method:
    """The method of ``config``: its spec (``"piat+last+atas"``), ``eps``, ``alpha_ratio``
    and ``method_args``, built by the registry (not yet set up: the trainer does that)."""
    return _build_from_spec(config.method, config.eps, config.alpha_ratio, **config.method_args)


def build_trainer(config: RunConfig, progress: bool | None = None, dist=None) -> Trainer:
    """A :class:`~advlit.train.Trainer` for ``config`` with its method built by :func:`build_method`;
    ``dist``: this process's rank of a data-parallel run (:func:`advlit.distributed.from_environment`)."""
    return Trainer(config.validate(), build_method(config), progress=progress, dist=dist)


def train(config: RunConfig, out_dir=None, resume: bool = False, progress: bool | None = None) -> dict:
    """Build the trainer of ``config`` (:func:`build_trainer`), run it and return the run record."""
    return build_trainer(config, progress=progress).fit(out_dir, resume=resume)
