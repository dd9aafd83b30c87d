"""Code fingerprints: which code a run record was made by.

A run record stores :func:`code_fingerprint` of its configuration, a hash of the code (not
the docs) of every file the run executes; :mod:`advlit.results` treats a record as current
only while the fingerprint still matches. The trainer (:mod:`advlit.train`) stamps its
records with it and :mod:`advlit.results` checks them, so the functions live here, below
both (``advlit.results`` re-exports them).
"""
from __future__ import annotations

import ast
import functools
import hashlib
import inspect
import json
import textwrap
from pathlib import Path

from advlit.config import PRECISION_FIELDS, RunConfig

PACKAGE_DIR = Path(__file__).resolve().parent
#: files every run depends on, whatever its method, data and model (``runner.py`` builds the
#: method of a configuration; this module and ``distributed.py``, which a one-process run
#: never executes, are not among them)
CORE_FILES = ("config.py", "train.py", "runner.py", "evaluate.py", "schedules.py", "utils.py", "attacks/*.py",
              "methods/base.py", "methods/registry.py", "data/base.py", "data/augment.py", "models/normalize.py")


def _method_files(spec: str) -> list[Path]:
    from advlit.methods import method_class

    files = set()
    for layer in spec.split("+"):
        for cls in inspect.getmro(method_class(layer.strip())):
            if cls.__module__.startswith("advlit."):
                files.add(Path(inspect.getsourcefile(cls)).resolve())
    return sorted(files)


@functools.lru_cache(maxsize=None)
def _code_only_cached(path: str, mtime_ns: int) -> str:
    return _code_only(Path(path).read_text())


def _code_only(source: str) -> str:
    """The syntax tree of ``source`` without docstrings: comments, docstrings and layout
    can change without invalidating the records, any change of code invalidates them."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(getattr(body[0], "value", None), ast.Constant) and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, annotate_fields=False, include_attributes=False)


def code_fingerprint(config: RunConfig | str) -> str:
    """Hash of the code (not the docs) that a run of ``config`` depends on: the core files
    (:data:`CORE_FILES`), the modules of every class of its methods, and the code that
    loads its dataset and builds its model (:func:`advlit.data.dataset_code`,
    :func:`advlit.models.model_code`). A method spec (a string) stands for a run without a
    registered dataset or model (the toy runs): core and methods only.

    So a change to the CIFAR loader or to the WideResNet does not invalidate the records
    made on the digits with the small CNN, and a new model or dataset invalidates nothing.
    A run that sets ``precision``, ``channels_last`` or ``compile`` also depends on
    ``advlit/precision.py``; a default (fp32) run does not.
    """
    spec = config if isinstance(config, str) else config.method
    files: set[Path] = set()
    for pattern in CORE_FILES:
        files.update(p.resolve() for p in PACKAGE_DIR.glob(pattern))
    files.update(_method_files(spec))
    if not isinstance(config, str) and config.to_dict().keys() & PRECISION_FIELDS:
        files.add((PACKAGE_DIR / "precision.py").resolve())  # autocast / channels_last / compile change results
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(str(path.relative_to(PACKAGE_DIR)).encode())
        digest.update(_code_only_cached(str(path), path.stat().st_mtime_ns).encode())
    if not isinstance(config, str):
        digest.update(_data_and_model_code(config.dataset, config.model, json.dumps(config.model_args, sort_keys=True)))
    return digest.hexdigest()[:12]


def _data_and_model_code(dataset: str, model: str | None, model_args: str) -> bytes:
    from advlit.data import dataset_code, dataset_info
    from advlit.models import model_code

    info = dataset_info(dataset)
    sources = [*dataset_code(dataset), *model_code(model or info.default_model, info.num_classes, info.input_shape,
                                                    **json.loads(model_args))]
    digest = hashlib.sha256()
    for source in sources:  # a file, the source of a function, or raw bytes (a registry entry)
        if isinstance(source, Path):
            digest.update(str(source.relative_to(PACKAGE_DIR)).encode())
            digest.update(_code_only_cached(str(source), source.stat().st_mtime_ns).encode())
        elif isinstance(source, str):
            digest.update(_code_only(textwrap.dedent(source)).encode())
        else:
            digest.update(source)
    return digest.digest()


def module_fingerprint(*objects) -> str:
    """Hash of the code (not the docs) of the modules that define ``objects``."""
    digest = hashlib.sha256()
    for path in sorted({Path(inspect.getsourcefile(o)).resolve() for o in objects}):
        digest.update(_code_only_cached(str(path), path.stat().st_mtime_ns).encode())
    return digest.hexdigest()[:12]
