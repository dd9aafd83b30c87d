"""`advlit book run`: papermill over every notebook, failures reported, others still run,
the injected parameters cell hidden; a bad notebook parameter stops with one line."""
import json

import pytest

import advlit.book as book
from advlit.notebook import Chapter
from advlit.utils import ConfigError


def _notebook(path, body):
    cells = [
        {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": 'profile = "cpu"\nvalue = 1',
         "outputs": [], "execution_count": None},
        {"cell_type": "code", "metadata": {}, "source": body, "outputs": [], "execution_count": None},
    ]
    nb = {"cells": cells, "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb))


def test_run_notebooks_reports_failures_and_keeps_going(tmp_path, monkeypatch):
    monkeypatch.setattr(book, "NOTEBOOK_DIR", tmp_path)
    _notebook(tmp_path / "01_fails.ipynb", "raise RuntimeError('boom')")
    _notebook(tmp_path / "02_works.ipynb", "print(value * 2)")
    failures = book.run_notebooks(profile="cpu", extra={"value": 21})
    assert failures == ["01_fails"]
    executed = json.loads((tmp_path / "02_works.ipynb").read_text())
    injected = [c for c in executed["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert injected and "remove-cell" in injected[0]["metadata"]["tags"]
    assert "42" in "".join(executed["cells"][-1]["outputs"][0]["text"])
    assert (tmp_path / "01_fails.failed.ipynb").exists()


def test_figures_are_kept_when_a_headless_backend_is_set(tmp_path, monkeypatch):
    monkeypatch.setattr(book, "NOTEBOOK_DIR", tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    _notebook(tmp_path / "01_plot.ipynb", "import matplotlib.pyplot as plt\nplt.plot([0, 1])\nplt.show()")
    assert book.run_notebooks(profile="cpu") == []
    outputs = json.loads((tmp_path / "01_plot.ipynb").read_text())["cells"][-1]["outputs"]
    assert any("image/png" in o.get("data", {}) for o in outputs)


def test_unknown_notebook_name_is_one_clear_error():
    with pytest.raises(ConfigError, match="unknown notebook"):
        book.notebooks(only=["99_nope"])


@pytest.mark.parametrize("kwargs,message", [
    ({"profile": "tpu"}, "unknown profile"), ({"seeds": "0,1"}, "seeds must be"), ({"epochs": 0}, "epochs must be"),
    ({"eps": 3}, "eps must lie"), ({"lr": 0.1}, "unknown notebook parameter"),
])
def test_bad_notebook_parameters(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Chapter(**kwargs)


def test_config_error_renders_as_one_line_in_ipython():
    assert ConfigError("x is missing")._render_traceback_() == ["advlit: error: x is missing"]
