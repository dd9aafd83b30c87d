"""Turn a percent-format chapter source (notebooks/src/NN_name.py) into a notebook.

Cells start with ``# %%`` (code) or ``# %% [markdown]`` (markdown, each line prefixed by
``# ``); tags follow as ``# %% tags=["parameters"]``. Usage:

    python tools/py2nb.py notebooks/src/01_basics.py      # -> notebooks/01_basics.ipynb

The result is unexecuted; ``advlit book run --only 01_basics`` executes it in place.

    python tools/py2nb.py --retag notebooks/src/01_basics.py  # tags and order -> the executed notebook

``--retag`` copies the cell *tags* and the cell *order* of the source into the existing,
executed ``notebooks/NN_name.ipynb`` and keeps everything else of it (outputs, execution
counts, ids, papermill's metadata and its injected parameters cell, which stays right after
the ``parameters`` cell), so that a change of tags or a moved markdown cell reaches the book
without executing the chapter again. Cells are matched by type and source text; markdown
cells may be added, removed, split or edited (they have no outputs); a code cell of the
source that the notebook lacks, a code cell of the notebook that the source dropped, or code
cells in another order stop it with one line (then run ``advlit book run``).
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
    write_notebook(nb, dst)
    return dst


def sources_of(nb_path: Path) -> list[tuple[str, str]]:
    """(cell type, source) of a notebook, ignoring papermill's injected cell."""
    nb = json.loads(nb_path.read_text())
    return [(c["cell_type"], "".join(c["source"])) for c in nb["cells"]
            if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]


def _tags(cell: dict) -> list[str]:
    return list((cell.get("metadata") or {}).get("tags", []))


def write_notebook(nb: dict, path: Path) -> None:
    """Write ``nb`` as papermill and :func:`convert` do (one-space indent, UTF-8 as is)."""
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


def retag(src: Path, nb_path: Path | None = None) -> Path:
    """Give the executed notebook of ``src`` the source's cell tags and cell order, keeping
    its outputs (see the module docstring); returns the notebook's path."""
    nb_path = nb_path or src.parent.parent / (src.stem + ".ipynb")
    wanted = parse(src.read_text())
    nb = json.loads(nb_path.read_text())
    injected = [c for c in nb["cells"] if "injected-parameters" in _tags(c)]
    pool: dict[tuple[str, str], list[dict]] = {}
    for cell in nb["cells"]:
        if "injected-parameters" not in _tags(cell):
            pool.setdefault((cell["cell_type"], "".join(cell["source"])), []).append(cell)
    used_ids = {c.get("id") for c in nb["cells"]}
    cells = []
    for i, want in enumerate(wanted):
        key = (want["cell_type"], "".join(want["source"]))
        if pool.get(key):
            cell = pool[key].pop(0)
        elif want["cell_type"] == "code":
            first = (key[1].strip().splitlines() or [""])[0][:60]
            raise SystemExit(f"{nb_path.name}: code cell {i} of {src.name} ({first!r}) is not in the executed "
                             "notebook; its outputs do not exist: run advlit book run")
        else:
            new_id, n = f"{src.stem[:20]}-md{i}", 0
            while new_id in used_ids:
                n += 1
                new_id = f"{src.stem[:20]}-md{i}-{n}"
            used_ids.add(new_id)
            cell = {"cell_type": "markdown", "id": new_id, "metadata": {}, "source": want["source"]}
        tags = want["metadata"].get("tags", [])
        meta = cell.setdefault("metadata", {})
        if tags or "tags" in meta:
            meta["tags"] = list(tags)
        cells.append(cell)
        if "parameters" in tags:
            cells.extend(injected)
            injected = []
    dropped = [c for left in pool.values() for c in left if c["cell_type"] == "code"]
    if dropped:
        first = ("".join(dropped[0]["source"]).strip().splitlines() or [""])[0][:60]
        raise SystemExit(f"{nb_path.name}: {len(dropped)} code cell(s) of the executed notebook are not in "
                         f"{src.name} (first: {first!r}): run advlit book run")
    counts = [c.get("execution_count") for c in cells if c["cell_type"] == "code" and c.get("execution_count")]
    if counts != sorted(counts):
        raise SystemExit(f"{nb_path.name}: {src.name} puts the code cells in another order than they were "
                         "executed: run advlit book run")
    nb["cells"] = cells + injected
    write_notebook(nb, nb_path)
    return nb_path


if __name__ == "__main__":
    args = sys.argv[1:]
    action = convert
    if args[:1] == ["--retag"]:
        action, args = retag, args[1:]
    for arg in args:
        print(action(Path(arg)))
