"""The book's sources agree with each other: notebooks vs their percent-format sources,
the API page vs the package, the parameters cell of every chapter, the table of contents."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
from py2nb import parse, sources_of  # noqa: E402

NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
PARAMETERS = ["profile", "data_root", "epochs", "seeds", "device", "results_dir", "eps"]


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_matches_its_source(nb):
    src = REPO / "notebooks" / "src" / f"{nb.stem}.py"
    assert src.exists(), f"{nb.name} has no source {src.relative_to(REPO)}"
    expected = [(c["cell_type"], "".join(c["source"])) for c in parse(src.read_text())]
    assert sources_of(nb) == expected, f"{nb.name} differs from {src.name}: run tools/py2nb.py and advlit book run"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_first_cell_is_the_parameters_cell(nb):
    cells = json.loads(nb.read_text())["cells"]
    first = cells[0]
    assert "parameters" in first["metadata"].get("tags", [])
    names = [line.split("=")[0].strip() for line in "".join(first["source"]).splitlines() if "=" in line]
    assert names == PARAMETERS


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


def test_every_notebook_is_in_the_table_of_contents():
    toc = (REPO / "_toc.yml").read_text()
    for nb in NOTEBOOKS:
        assert f"notebooks/{nb.stem}" in toc, f"{nb.name} is not in _toc.yml"


def test_api_page_lists_every_module():
    result = subprocess.run([sys.executable, str(REPO / "tools" / "api_page.py"), "--check"])
    assert result.returncode == 0, "book/api.md is out of date: run python tools/api_page.py"
