"""Regenerate book/api.md, the API reference, from the modules and docstrings of advlit.

    python tools/api_page.py          # rewrite book/api.md
    python tools/api_page.py --check  # exit 1 if book/api.md is out of date (a test runs this)

Docstrings are shown verbatim (as text blocks): the package's docstrings are written for
people reading code, with equations in plain notation, not as reStructuredText.
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAGE = REPO / "book" / "api.md"

FIXED = [
    ("Configuration, training and evaluation", ["advlit.config", "advlit.train", "advlit.runner",
                                                 "advlit.distributed", "advlit.schedules", "advlit.evaluate",
                                                 "advlit.results", "advlit.fingerprint", "advlit.checkpoint_io",
                                                 "advlit.experiments", "advlit.protocol", "advlit.scorecard",
                                                 "advlit.notebook", "advlit.plotting", "advlit.book", "advlit.smoke",
                                                 "advlit.grid", "advlit.bench", "advlit.precision", "advlit.compare",
                                                 "advlit.cli", "advlit.utils"]),
    ("Data", ["advlit.data", "advlit.data.base", "advlit.data.augment", "advlit.data.digits", "advlit.data.toy",
              "advlit.data.vision", "advlit.data.fake"]),
    ("Models", ["advlit.models", "advlit.models.small_cnn", "advlit.models.mlp", "advlit.models.preact_resnet",
                "advlit.models.resnet", "advlit.models.wide_resnet", "advlit.models.vit", "advlit.models.conv_net",
                "advlit.models.normalize"]),
    ("Attacks", ["advlit.attacks.fgsm", "advlit.attacks.pgd", "advlit.attacks.losses", "advlit.attacks.autoattack",
                 "advlit.attacks.utils"]),
]
GROUPS = [("Methods", "methods"), ("Frameworks", "frameworks"), ("Analysis", "analysis")]


def modules_of(package: str) -> list[str]:
    path = REPO / "advlit" / package
    return [f"advlit.{package}.{m.name}" for m in sorted(pkgutil.iter_modules([str(path)]), key=lambda m: m.name)]


def _text(doc: str | None) -> list[str]:
    doc = inspect.cleandoc(doc or "").strip()
    return ["```text", doc, "```", ""] if doc else []


def _signature(obj) -> str:
    try:
        text = str(inspect.signature(obj))
    except (TypeError, ValueError):
        return "(...)"
    return re.sub(r" at 0x[0-9a-f]+>", ">", text)  # default values that are functions: no addresses


def _public_members(module):
    for name, obj in vars(module).items():
        if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
            continue
        if inspect.isclass(obj) or inspect.isfunction(obj):
            yield name, obj


def render_module(name: str) -> list[str]:
    module = importlib.import_module(name)
    out = [f"### `{name}`", ""] + _text(module.__doc__)
    for member, obj in _public_members(module):
        if inspect.isclass(obj):
            registered = getattr(obj, "name", None) if name.startswith(("advlit.methods.", "advlit.frameworks.")) else None
            label = f" (method name `{registered}`)" if isinstance(registered, str) and registered != "base" else ""
            out += [f"#### class `{member}{_signature(obj)}`{label}", ""] + _text(obj.__doc__)
            for meth_name, meth in vars(obj).items():
                if meth_name.startswith("_") or not inspect.isfunction(meth) or not meth.__doc__:
                    continue
                out += [f"- `{member}.{meth_name}{_signature(meth)}`", ""] + _text(meth.__doc__)
        else:
            out += [f"#### `{member}{_signature(obj)}`", ""] + _text(obj.__doc__)
    return out


def render() -> str:
    out = ["# API reference", "",
           "Generated from the docstrings of the `advlit` package by `tools/api_page.py`; the docstrings",
           "cite the paper and equation each piece implements. Methods and frameworks are listed by",
           "module, with the name under which `advlit train --method` knows them.", ""]
    for title, modules in FIXED + [(title, modules_of(pkg)) for title, pkg in GROUPS]:
        out += [f"## {title}", ""]
        for module in modules:
            out += render_module(module)
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    text = render()
    if "--check" in sys.argv:
        sys.exit(0 if PAGE.read_text() == text else 1)
    PAGE.write_text(text)
