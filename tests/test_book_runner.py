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
    ({"profile": "tpu"}, "unknown profile"), ({"seeds": "0 and 1"}, "seeds must be"), ({"epochs": 0}, "epochs must be"),
    ({"eps": 3}, "eps must lie"), ({"lr": 0.1}, "unknown notebook parameter"),
])
def test_bad_notebook_parameters(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Chapter(**kwargs)


def test_config_error_renders_as_one_line_in_ipython():
    assert ConfigError("x is missing")._render_traceback_() == ["advlit: error: x is missing"]


# ------------------------------------------------- the title first, quiet kernels, the summary
@pytest.fixture(autouse=True)
def _scorecard_in_tmp(tmp_path, monkeypatch):
    """``run_notebooks`` writes the landing page's scorecard: here into tmp_path, never into book/."""
    import advlit.scorecard as scorecard

    real = scorecard.write_scorecard
    monkeypatch.setattr(scorecard, "write_scorecard", lambda results_dirs=None: real(
        results_dirs, md_path=tmp_path / "_generated" / "scorecard.md", json_path=tmp_path / "_generated" / "scorecard.json"))


def _titled_notebook(path, body):
    _notebook(path, body)
    nb = json.loads(path.read_text())
    nb["cells"].insert(0, {"cell_type": "markdown", "metadata": {}, "source": "# The title\n\nThe question."})
    nb["cells"][1]["metadata"]["tags"].append("hide-cell")
    path.write_text(json.dumps(nb))


def test_papermill_injects_after_the_parameters_cell_when_the_title_comes_first(tmp_path, monkeypatch, capfd):
    monkeypatch.setattr(book, "NOTEBOOK_DIR", tmp_path)
    _titled_notebook(tmp_path / "01_titled.ipynb", "print(value * 2)")
    assert book.run_notebooks(profile="cpu", extra={"value": 21}, scorecard=False) == []
    cells = json.loads((tmp_path / "01_titled.ipynb").read_text())["cells"]
    assert [c["cell_type"] for c in cells] == ["markdown", "code", "code", "code"]
    assert "".join(cells[0]["source"]).startswith("# The title")
    assert cells[1]["metadata"]["tags"] == ["parameters", "hide-cell"]
    assert set(cells[2]["metadata"]["tags"]) == {"injected-parameters", "remove-cell"}
    assert "value = 21" in "".join(cells[2]["source"])
    assert "42" in "".join(cells[3]["outputs"][0]["text"])
    # run again (the book's notebooks are executed in place): still one injected cell, in the same place
    assert book.run_notebooks(profile="cpu", extra={"value": 4}, scorecard=False) == []
    cells = json.loads((tmp_path / "01_titled.ipynb").read_text())["cells"]
    assert [c["metadata"].get("tags", []) for c in cells][:3] == [[], ["parameters", "hide-cell"],
                                                                   ["injected-parameters", "remove-cell"]]
    assert "8" in "".join(cells[3]["outputs"][0]["text"])
    assert "without encryption" not in capfd.readouterr().err


def test_book_run_prints_only_progress_and_a_summary(tmp_path, monkeypatch, capfd):
    """No kernel warnings (ipykernel's 'running over TCP without encryption' is logged by
    every kernel to the terminal's stderr); the last line says where the book is, how long it
    took and how many records were trained and reused; the scorecard is written."""
    monkeypatch.setattr(book, "NOTEBOOK_DIR", tmp_path / "nb")
    (tmp_path / "nb").mkdir()
    results = tmp_path / "records"
    (results / "old_run").mkdir(parents=True)
    (results / "old_run" / "record.json").write_text("{}")
    body = ("import os, pathlib\n"
            "d = pathlib.Path(results_dir) / 'new_run'\n"
            "d.mkdir(parents=True, exist_ok=True)\n"
            "(d / 'record.json').write_text('{}')")
    _notebook(tmp_path / "nb" / "01_writes.ipynb", body)
    nb = json.loads((tmp_path / "nb" / "01_writes.ipynb").read_text())
    nb["cells"][0]["source"] += "\nresults_dir = None"
    (tmp_path / "nb" / "01_writes.ipynb").write_text(json.dumps(nb))
    assert book.run_notebooks(profile="cpu", extra={"results_dir": str(results)}) == []
    out, err = capfd.readouterr()
    assert "without encryption" not in err and "WARNING" not in err
    noise = [line for line in err.splitlines() if line.strip() and "notebooks (cpu)" not in line]
    assert not noise, noise  # stderr holds the progress bar only
    summary = out.strip().splitlines()[-1]
    assert summary.startswith("1 of 1 notebooks ran in ")
    assert "1 trained, 1 reused (left unchanged)" in summary and f"{tmp_path / 'nb'}/" in summary and f"{results}/" in summary
    assert "scorecard" in summary and (tmp_path / "_generated" / "scorecard.md").exists()


def test_record_changes_counts_new_and_rewritten_records_as_trained():
    before = {"a": 1, "b": 2, "c": 3}
    after = {"a": 1, "b": 5, "c": 3, "d": 7}
    assert book.record_changes(before, after) == (2, 2)


def test_only_chapter_notebooks_are_chapters(tmp_path, monkeypatch):
    """A run in progress leaves .NN_name.running.ipynb, a failed one NN_name.failed.ipynb:
    neither is a chapter to run (nor to smoke-test, nor to list)."""
    monkeypatch.setattr(book, "NOTEBOOK_DIR", tmp_path)
    for name in ("01_a.ipynb", ".01_a.running.ipynb", "01_a.failed.ipynb", "_draft.ipynb", "02_b.ipynb"):
        _notebook(tmp_path / name, "pass")
    assert [p.name for p in book.notebooks()] == ["01_a.ipynb", "02_b.ipynb"]
