"""Turn a percent-format chapter source (notebooks/src/NN_name.py) into a notebook.

Cells start with ``# %%`` (code) or ``# %% [markdown]`` (markdown, each line prefixed by
``# ``); tags follow as ``# %% tags=["parameters"]``. Usage:

    python tools/py2nb.py notebooks/src/01_basics.py      # -> notebooks/01_basics.ipynb

The result is unexecuted; ``advlit book run --only 01_basics`` executes it in place.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

HEADER = re.compile(r"^# %%(?P<md> \[markdown\])?(?:\s+tags=(?P<tags>\[.*\]))?\s*$")


def parse(text: str) -> list[dict]:
    cells, current = [], None
    for line in text.splitlines():
        m = HEADER.match(line)
        if m:
            current = {"md": bool(m.group("md")), "tags": json.loads(m.group("tags") or "[]"), "lines": []}
            cells.append(current)
        elif current is not None:
            current["lines"].append(line)
    out = []
    for c in cells:
        lines = c["lines"]
        while lines and not lines[-1].strip():
            lines.pop()
        while lines and not lines[0].strip():
            lines.pop(0)
        if c["md"]:
            lines = [re.sub(r"^# ?", "", line) for line in lines]
        source = [line + "\n" for line in lines]
        if source:
            source[-1] = source[-1].rstrip("\n")
        cell = {"cell_type": "markdown" if c["md"] else "code", "metadata": {"tags": c["tags"]} if c["tags"] else {},
                "source": source}
        if not c["md"]:
            cell.update(execution_count=None, outputs=[])
        out.append(cell)
    return out


def convert(src: Path, dst: Path | None = None) -> Path:
    dst = dst or src.parent.parent / (src.stem + ".ipynb")
    nb = {
        "cells": parse(src.read_text()),
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4, "nbformat_minor": 5,
    }
    for i, cell in enumerate(nb["cells"]):
        cell["id"] = f"{src.stem[:20]}-{i}"
    dst.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return dst


def sources_of(nb_path: Path) -> list[tuple[str, str]]:
    """(cell type, source) of a notebook, ignoring papermill's injected cell."""
    nb = json.loads(nb_path.read_text())
    return [(c["cell_type"], "".join(c["source"])) for c in nb["cells"]
            if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(convert(Path(arg)))
