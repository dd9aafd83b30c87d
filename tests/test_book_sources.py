"""The book's sources agree with each other: notebooks vs their percent-format sources (cells,
order and tags), the API page vs the package, the parameters cell of every chapter, the
table of contents; every chapter page opens with its title."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
from py2nb import parse, retag, sources_of  # noqa: E402

NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
PARAMETERS = ["profile", "data_root", "epochs", "seeds", "device", "results_dir", "eps"]


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_matches_its_source(nb):
    src = REPO / "notebooks" / "src" / f"{nb.stem}.py"
    assert src.exists(), f"{nb.name} has no source {src.relative_to(REPO)}"
    expected = [(c["cell_type"], "".join(c["source"])) for c in parse(src.read_text())]
    assert sources_of(nb) == expected, f"{nb.name} differs from {src.name}: run tools/py2nb.py and advlit book run"


def _tags(cell):
    return list((cell.get("metadata") or {}).get("tags", []))


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_has_the_tags_of_its_source(nb):
    """The book reads the tags of the executed notebook: they must be the source's
    (``python tools/py2nb.py --retag notebooks/src/NN_name.py`` copies them over)."""
    src = REPO / "notebooks" / "src" / f"{nb.stem}.py"
    expected = [c["metadata"].get("tags", []) for c in parse(src.read_text())]
    cells = [c for c in json.loads(nb.read_text())["cells"] if "injected-parameters" not in _tags(c)]
    assert [_tags(c) for c in cells] == expected, f"{nb.name}: tags differ from {src.name}: run tools/py2nb.py --retag"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_title_first_then_the_parameters_cell(nb):
    """The title cell opens the notebook; the first code cell is the ``parameters`` cell
    (papermill injects its cell right after it, wherever it stands), hidden behind a toggle."""
    cells = json.loads(nb.read_text())["cells"]
    assert cells[0]["cell_type"] == "markdown" and "".join(cells[0]["source"]).startswith("# ")
    first = next(c for c in cells if c["cell_type"] == "code")
    assert "parameters" in _tags(first) and "hide-cell" in _tags(first)
    names = [line.split("=")[0].strip() for line in "".join(first["source"]).splitlines() if "=" in line]
    assert names == PARAMETERS
    after = cells[cells.index(first) + 1]
    assert {"injected-parameters", "remove-cell"} <= set(_tags(after)), "papermill's cell must follow the parameters cell"


HIDDEN = {"remove-cell", "hide-cell", "remove-input"}


def first_visible(cells):
    """Index of the first cell a reader of the book sees: not removed, not folded as a whole
    (a code cell with ``hide-input`` shows its outputs; without outputs only a toggle)."""
    for i, cell in enumerate(cells):
        tags = set(_tags(cell))
        if tags & HIDDEN or (cell["cell_type"] == "code" and "hide-input" in tags and not cell.get("outputs")):
            continue
        return i
    return None


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_first_visible_element_is_the_title(nb):
    cells = json.loads(nb.read_text())["cells"]
    i = first_visible(cells)
    assert i is not None, f"{nb.name} shows nothing"
    assert cells[i]["cell_type"] == "markdown", f"{nb.name}: code cell {i} comes before the title"
    text = "".join(cells[i]["source"])
    assert text.startswith("# ") and not text.startswith("## "), f"{nb.name}: cell {i} is not the title"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_plumbing_is_folded_and_the_implementation_open(nb):
    """Imports are folded; ``show_source`` cells (the code beside the equations) stay open;
    only the known tags are used."""
    cells = [c for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code"
             and "injected-parameters" not in _tags(c)]
    assert "hide-input" in _tags(cells[1]), f"{nb.name}: the imports cell is not folded"
    known = {"parameters", "hide-cell", "hide-input", "hide-output", "remove-cell", "remove-input", "remove-output",
             "nbval-ignore-output", "nbval-check-output", "nbval-skip"}
    for cell in cells:
        source = "".join(cell["source"])
        assert set(_tags(cell)) <= known, f"{nb.name}: unknown tag in {_tags(cell)}"
        if source.strip().startswith("show_source("):
            assert not set(_tags(cell)) & (HIDDEN | {"hide-input"}), f"{nb.name}: {source[:50]!r} is hidden"


def test_retag_keeps_outputs_and_puts_the_injected_cell_after_the_parameters(tmp_path):
    src = tmp_path / "src" / "07_x.py"
    src.parent.mkdir()
    src.write_text('# %% tags=["parameters"]\nprofile = "cpu"\n\n# %%\nprint(1)\n\n'
                   '# %% [markdown]\n# # Title\n')
    nb = {"cells": [
        {"cell_type": "code", "execution_count": 1, "id": "a", "metadata": {"tags": ["parameters"]}, "outputs": [],
         "source": ['profile = "cpu"']},
        {"cell_type": "code", "execution_count": 2, "id": "inj", "metadata": {"tags": ["injected-parameters", "remove-cell"]},
         "outputs": [], "source": ["# Parameters\n", 'profile = "cpu"\n']},
        {"cell_type": "code", "execution_count": 3, "id": "b", "metadata": {"tags": []},
         "outputs": [{"name": "stdout", "output_type": "stream", "text": ["1\n"]}], "source": ["print(1)"]},
        {"cell_type": "markdown", "id": "c", "metadata": {"tags": []}, "source": ["# Title"]},
    ], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "07_x.ipynb"
    path.write_text(json.dumps(nb))
    src.write_text('# %% [markdown]\n# # Title\n\n# %% tags=["parameters", "hide-cell"]\nprofile = "cpu"\n\n'
                   '# %% tags=["hide-input"]\nprint(1)\n')
    retag(src, path)
    cells = json.loads(path.read_text())["cells"]
    assert [c["id"] for c in cells] == ["c", "a", "inj", "b"]
    assert [c["metadata"]["tags"] for c in cells] == [[], ["parameters", "hide-cell"], ["injected-parameters", "remove-cell"],
                                                      ["hide-input"]]
    assert cells[3]["outputs"] == nb["cells"][2]["outputs"]
    first = path.read_text()
    retag(src, path)
    assert path.read_text() == first, "retag is idempotent"
    src.write_text('# %% [markdown]\n# # Title\n\n# %% tags=["parameters"]\nprofile = "cpu"\n\n# %%\nprint(2)\n')
    with pytest.raises(SystemExit, match="not in the executed notebook"):
        retag(src, path)


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_was_executed_without_errors(nb):
    cells = json.loads(nb.read_text())["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert all(c.get("execution_count") for c in code), f"{nb.name} has unexecuted cells"
    errors = [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"{nb.name} stored an error"
    assert not any("image/svg+xml" in o.get("data", {}) for c in code for o in c.get("outputs", []))
    figureless = [i for i, c in enumerate(code) if "plt.show()" in "".join(c["source"])
                  and not any("image/png" in o.get("data", {}) for o in c.get("outputs", []))]
    assert not figureless, f"{nb.name}: code cells {figureless} call plt.show() but stored no PNG"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_placeholder_for_prose_is_left(nb):
    """A chapter source may hold ``<!-- reread: ... -->`` marks where a paragraph must be
    written from numbers that do not exist yet; a notebook of the book must have none (the
    mark is an HTML comment: the book would show nothing there)."""
    cells = json.loads(nb.read_text())["cells"]
    marks = [i for i, c in enumerate(cells) if c["cell_type"] == "markdown" and "<!-- reread" in "".join(c["source"])]
    assert not marks, f"{nb.name}: markdown cells {marks} still hold a <!-- reread --> placeholder"


def test_every_notebook_is_in_the_table_of_contents():
    toc = (REPO / "_toc.yml").read_text()
    for nb in NOTEBOOKS:
        assert f"notebooks/{nb.stem}" in toc, f"{nb.name} is not in _toc.yml"


def test_api_page_lists_every_module():
    result = subprocess.run([sys.executable, str(REPO / "tools" / "api_page.py"), "--check"])
    assert result.returncode == 0, "book/api.md is out of date: run python tools/api_page.py"


def test_api_page_names_no_path_of_this_checkout():
    """A default argument such as ``Path(__file__)...`` would print this checkout's absolute
    path on the API page, which then differs in every clone (and fails the check above there)."""
    assert str(REPO) not in (REPO / "book" / "api.md").read_text()
