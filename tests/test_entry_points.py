"""Damaged files and awkward parameters at every entry point (issue 15): the command line,
notebook parameters (papermill) and the book runner meet them with one clear line and a
non-zero exit, never a traceback, and leave the files the user already has untouched."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import advlit.book as book
from advlit.cli import main
from advlit.notebook import Chapter, check_parameters
from advlit.utils import ConfigError

ADVLIT = Path(sys.executable).with_name("advlit")  # the installed entry point
TRAIN = ["train", "--dataset", "digits16", "--epochs", "1", "--val-attack", "fgsm", "--val-subset", "16",
         "--final-subset", "16", "--attacks", "clean"]
ENV = {**os.environ, "ADVLIT_THREADS": "1", "OMP_NUM_THREADS": "1"}


def advlit(*args, **env):
    command = [str(ADVLIT)] if ADVLIT.exists() else [sys.executable, "-m", "advlit.cli"]
    return subprocess.run(command + list(args), capture_output=True, text=True, env={**ENV, **env})


def one_line_error(code: int, stderr: str, *fragments: str) -> str:
    """Assert a failure printed as one ``advlit: error:`` line without a traceback; return it."""
    assert code != 0
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("advlit: error:"), stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def snapshot(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished 1-epoch run written by the installed ``advlit train`` with ADVLIT_PROGRESS=0
    (no --quiet); returns its folder and what the command printed to stderr."""
    out = tmp_path_factory.mktemp("trained") / "run"
    proc = advlit(*TRAIN, "--out", str(out), ADVLIT_PROGRESS="0")
    assert proc.returncode == 0, proc.stderr
    assert {"checkpoint.pt", "best.pt", "record.json"} <= {p.name for p in out.iterdir()}
    return out, proc.stderr


@pytest.fixture
def run_copy(trained, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(trained[0], out)
    return out


# ------------------------------------------------------------------ advlit train --resume
def _truncate(path: Path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _empty(path: Path):
    path.write_bytes(b"")


def _best_weights_only(path: Path):
    shutil.copy(path.with_name("best.pt"), path)


def _json(path: Path):
    path.write_text('{"not": "a checkpoint"}')


@pytest.mark.parametrize("damage,what", [
    (_truncate, "damaged"), (_empty, "damaged"), (_best_weights_only, "lacks optimizer"), (_json, "JSON"),
])
def test_resume_from_a_damaged_checkpoint_is_one_line_and_keeps_the_files(run_copy, capsys, damage, what):
    """Issue item 1: a truncated checkpoint.pt (a full disk, a killed copy) or one that is not
    resumable names the file, says what is wrong and what to do; nothing is overwritten."""
    checkpoint = run_copy / "checkpoint.pt"
    damage(checkpoint)
    before = snapshot(run_copy)
    code = main([*TRAIN, "--out", str(run_copy), "--resume", "--quiet"])
    line = one_line_error(code, capsys.readouterr().err, "cannot resume", str(checkpoint), what)
    assert "without --resume" in line and "best.pt" in line
    assert snapshot(run_copy) == before


def test_resume_from_a_truncated_checkpoint_through_the_installed_command(run_copy):
    _truncate(run_copy / "checkpoint.pt")
    before = snapshot(run_copy)
    proc = advlit(*TRAIN, "--out", str(run_copy), "--resume", "--quiet")
    assert proc.returncode == 2
    one_line_error(proc.returncode, proc.stderr, "damaged", str(run_copy / "checkpoint.pt"))
    assert snapshot(run_copy) == before


def test_resume_from_weights_that_do_not_fit_is_one_line(run_copy, capsys):
    """Same configuration, but weights another model version wrote (a renamed layer)."""
    checkpoint = run_copy / "checkpoint.pt"
    state = torch.load(checkpoint, weights_only=False)
    first = next(iter(state["model"]))
    state["model"]["renamed." + first] = state["model"].pop(first)
    torch.save(state, checkpoint)
    before = snapshot(run_copy)
    code = main([*TRAIN, "--out", str(run_copy), "--resume", "--quiet"])
    one_line_error(code, capsys.readouterr().err, "cannot resume", str(checkpoint), "does not fit", first)
    assert snapshot(run_copy) == before


def test_resume_into_a_missing_folder_creates_nothing(tmp_path, capsys):
    """Issue item 4: --resume on a nonexistent --out fails before any folder is made."""
    out = tmp_path / "never" / "made"
    code = main([*TRAIN, "--out", str(out), "--resume", "--quiet"])
    one_line_error(code, capsys.readouterr().err, "cannot resume", str(out))
    assert not out.exists() and not out.parent.exists()


def test_train_honours_advlit_progress_0(trained):
    """Issue item 4: ADVLIT_PROGRESS=0 turns the progress bar off without --quiet."""
    stderr = trained[1]
    assert "epoch 1/1" not in stderr and "it/s" not in stderr, stderr


@pytest.mark.parametrize("make", ["file", "file/sub"])
def test_train_into_an_out_that_is_a_file_is_one_line(tmp_path, capsys, make):
    existing = tmp_path / "file"
    existing.write_text("mine")
    code = main([*TRAIN, "--out", str(tmp_path / make), "--quiet"])
    one_line_error(code, capsys.readouterr().err, "is a file")
    assert existing.read_text() == "mine"


def test_a_full_disk_is_one_line(tmp_path, capsys, monkeypatch):
    import errno

    from advlit.train import Trainer

    def full(self, out_dir=None, resume=False, stop_after=None):
        raise OSError(errno.ENOSPC, "No space left on device", str(Path(out_dir) / "checkpoint.tmp"))

    monkeypatch.setattr(Trainer, "fit", full)
    code = main([*TRAIN, "--out", str(tmp_path / "run"), "--quiet"])
    one_line_error(code, capsys.readouterr().err, "No space left on device", "checkpoint.tmp")
    assert code == 1


@pytest.mark.parametrize("args,message", [
    (["--val-subset", "0"], "--val-subset: must be a positive integer"),
    (["--final-subset", "-3"], "--final-subset: must be a positive integer"),
    (["--device", "nonsense"], "unknown device 'nonsense'"),
])
def test_train_parameters_that_used_to_crash_later(tmp_path, capsys, args, message):
    out = tmp_path / "run"
    code = main([*TRAIN, *args, "--out", str(out), "--quiet"])
    one_line_error(code, capsys.readouterr().err, message)
    assert not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_on_a_machine_without_it_is_one_line(tmp_path, capsys, trained):
    code = main([*TRAIN, "--device", "cuda", "--out", str(tmp_path / "run"), "--quiet"])
    one_line_error(code, capsys.readouterr().err, "no CUDA device")
    code = main(["eval", "--checkpoint", str(trained[0] / "best.pt"), "--device", "cuda", "--attacks", "clean"])
    one_line_error(code, capsys.readouterr().err, "no CUDA device")


# ------------------------------------------------------------------------------ advlit eval
def test_eval_of_weights_that_do_not_fit_their_config_is_one_line(run_copy, tmp_path, capsys):
    """Issue item 2: a valid configuration whose weights belong to another model."""
    state = torch.load(run_copy / "best.pt", weights_only=False)
    state["config"]["model"] = "mlp"  # the weights are small_cnn's
    bad = tmp_path / "mlp_config.pt"
    torch.save(state, bad)
    code = main(["eval", "--checkpoint", str(bad), "--attacks", "clean", "--subset", "8"])
    one_line_error(code, capsys.readouterr().err, str(bad), "do not fit", "MLP")

    state = torch.load(run_copy / "best.pt", weights_only=False)
    name = next(k for k, v in state["model"].items() if v.dim() == 4)
    state["model"][name] = torch.zeros(3, 3)
    torch.save(state, bad)
    code = main(["eval", "--checkpoint", str(bad), "--attacks", "clean", "--subset", "8"])
    one_line_error(code, capsys.readouterr().err, "do not fit", f"{name} is [3, 3] in the file")


@pytest.mark.parametrize("target,damage,message", [
    ("checkpoint.pt", _truncate, "is damaged"),
    ("best.pt", _empty, "is damaged"),
    ("record.json", None, "is a JSON file (a run record?)"),
    (".", None, "is a folder"),
])
def test_eval_of_a_damaged_or_wrong_file_is_one_line(run_copy, capsys, target, damage, message):
    path = run_copy / target
    if damage:
        damage(path)
    before = snapshot(run_copy)
    code = main(["eval", "--checkpoint", str(path), "--attacks", "clean", "--subset", "8"])
    line = one_line_error(code, capsys.readouterr().err, message)
    if target == "checkpoint.pt":
        assert "best.pt beside it" in line  # what the user still has
    assert snapshot(run_copy) == before


@pytest.mark.parametrize("args,message", [
    (["--subset", "0"], "--subset: must be a positive integer"),
    (["--device", "nonsense"], "unknown device 'nonsense'"),
])
def test_eval_parameters_that_used_to_crash(trained, capsys, args, message):
    code = main(["eval", "--checkpoint", str(trained[0] / "best.pt"), "--attacks", "clean", *args])
    one_line_error(code, capsys.readouterr().err, message)


def test_eval_of_a_good_checkpoint_still_works(trained, capsys):
    assert main(["eval", "--checkpoint", str(trained[0] / "best.pt"), "--attacks", "clean", "--subset", "8",
                 "--json"]) == 0
    assert "clean" in json.loads(capsys.readouterr().out)


# ------------------------------------------------------------------- notebook parameters
@pytest.mark.parametrize("seeds,expected", [
    (0, [0]), (2, [2]), ([0, 1], [0, 1]), ((3,), [3]), ("0", [0]), ("[0]", [0]), ("0,1,2", [0, 1, 2]),
    ("[0, 1, 2]", [0, 1, 2]), (" [4,5] ", [4, 5]),
])
def test_notebook_seeds_as_papermill_passes_them(seeds, expected):
    """Issue item 3: ``-p seeds 0`` arrives as the int 0, ``-p seeds '[0]'`` as the string."""
    assert Chapter(seeds=seeds).seeds == expected


@pytest.mark.parametrize("kwargs,message", [
    ({"seeds": "zero"}, "seeds must be"), ({"seeds": "[]"}, "seeds must be"), ({"seeds": [0.5]}, "seeds must be"),
    ({"seeds": True}, "seeds must be"), ({"seeds": "0;1"}, "seeds must be"), ({"seeds": {"a": 1}}, "seeds must be"),
    ({"epochs": "3.5"}, "epochs must be"), ({"epochs": "0"}, "epochs must be"), ({"epochs": True}, "epochs must be"),
    ({"eps": "big"}, "eps must be a number"), ({"eps": "2"}, "eps must lie"), ({"eps": [0.1]}, "eps must be a number"),
    ({"device": "cdua"}, "unknown device"), ({"data_root": 3}, "data_root must be a string"),
])
def test_bad_notebook_parameters_are_one_config_error(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Chapter(**kwargs)


def test_notebook_epochs_and_eps_given_as_strings():
    chapter = Chapter(epochs="3", eps="8/255")
    assert chapter.overrides["epochs"] == 3 and chapter.eps == pytest.approx(8 / 255)
    assert Chapter(epochs=3, eps=0.1).overrides == {"data_root": None, "epochs": 3, "device": None, "eps": 0.1}


def test_check_parameters_reads_papermills_injected_cell():
    history = ["", 'profile = "cpu"\nseeds = None', '# Parameters\nprofile = "gpu"\nnosuchparam = 3\n']
    with pytest.raises(ConfigError, match="unknown notebook parameter.*nosuchparam.*known: profile"):
        check_parameters({"In": history})
    check_parameters({"In": history[:2] + ['# Parameters\nprofile = "gpu"\nseeds = "[0]"\n']})
    check_parameters({})  # outside papermill: nothing to check
    assert Chapter.check_parameters is check_parameters


CHAPTER_PARAMETERS = ('profile = "cpu"\ndata_root = None\nepochs = None\nseeds = None\ndevice = None\n'
                      'results_dir = None\neps = None')
CHAPTER_BODY = ("from advlit.notebook import Chapter\n"
                "Chapter.check_parameters(globals())\n"
                "chapter = Chapter(profile=profile, data_root=data_root, epochs=epochs, seeds=seeds, "
                "device=device, results_dir=results_dir, eps=eps)\n"
                "print('seeds', chapter.seeds, 'epochs', chapter.overrides['epochs'])")


def _notebook(path: Path, parameters: str, body: str) -> Path:
    cells = [
        {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": parameters, "outputs": [],
         "execution_count": None},
        {"cell_type": "code", "metadata": {}, "source": body, "outputs": [], "execution_count": None},
    ]
    nb = {"cells": cells, "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                       "language": "python"}}, "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb))
    return path


def _papermill(*args):
    papermill = Path(sys.executable).with_name("papermill")
    command = [str(papermill)] if papermill.exists() else [sys.executable, "-m", "papermill"]
    return subprocess.run(command + [*map(str, args), "--no-progress-bar", "-k", "python3"],
                          capture_output=True, text=True, env={**ENV, "ADVLIT_PROGRESS": "0"})


def test_papermill_unknown_parameter_stops_the_chapter_with_one_line(tmp_path):
    """Issue item 3: papermill only warns about ``-p nosuchparam 3``; the chapter's
    ``Chapter.check_parameters(globals())`` stops it with one line."""
    source = _notebook(tmp_path / "chapter.ipynb", CHAPTER_PARAMETERS, CHAPTER_BODY)
    executed = tmp_path / "out.ipynb"
    proc = _papermill(source, executed, "-p", "nosuchparam", "3")
    assert proc.returncode != 0
    expected = "advlit: error: unknown notebook parameter(s) nosuchparam; known: profile, data_root"
    assert proc.stderr.strip().splitlines()[-1].startswith(expected), proc.stderr
    errors = [o for c in json.loads(executed.read_text())["cells"] for o in c.get("outputs", [])
              if o["output_type"] == "error"]
    assert len(errors) == 1 and len(errors[0]["traceback"]) == 1 and errors[0]["traceback"][0].startswith(expected)


def test_papermill_seeds_and_epochs_as_a_user_types_them(tmp_path):
    source = _notebook(tmp_path / "chapter.ipynb", CHAPTER_PARAMETERS, CHAPTER_BODY)
    executed = tmp_path / "out.ipynb"
    proc = _papermill(source, executed, "-p", "seeds", "[0, 1]", "-r", "epochs", "3")
    assert proc.returncode == 0, proc.stderr[-2000:]
    printed = "".join(json.loads(executed.read_text())["cells"][-1]["outputs"][0]["text"])
    assert printed.strip() == "seeds [0, 1] epochs 3"


# ---------------------------------------------------------------------------- book runner
BOOK_BODY = "raise RuntimeError('this notebook must not run')"


def test_book_runner_rejects_an_unknown_parameter_before_running_anything(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(book, "NOTEBOOK_DIR", tmp_path)
    nb = _notebook(tmp_path / "01_chapter.ipynb", 'profile = "cpu"\nseeds = None  # the seeds\nvalue: int = 1',
                   BOOK_BODY)
    before = nb.read_bytes()
    with pytest.raises(ConfigError, match=r"unknown notebook parameter\(s\) nosuchparam for 01_chapter; "
                                          r"its parameters: profile, seeds, value$"):
        book.run_notebooks(profile="cpu", extra={"nosuchparam": 3, "seeds": "[0]"})
    code = main(["book", "run", "-p", "nosuchparam", "3"])
    one_line_error(code, capsys.readouterr().err, "unknown notebook parameter(s) nosuchparam for 01_chapter")
    assert nb.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["01_chapter.ipynb"]  # nothing ran, nothing written


def test_book_runner_profile_belongs_to_its_own_option(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(book, "NOTEBOOK_DIR", tmp_path)
    _notebook(tmp_path / "01_chapter.ipynb", 'profile = "cpu"', BOOK_BODY)
    code = main(["book", "run", "-p", "profile", "gpu"])
    one_line_error(code, capsys.readouterr().err, "--profile")


def test_book_runner_reads_values_as_papermill_does():
    assert [book.papermill_value(v) for v in ("3", "0.5", "True", "None", "[0, 1]", "8/255", "cpu")] == \
        [3, 0.5, True, None, "[0, 1]", "8/255", "cpu"]


def test_bad_thread_count_is_one_line():
    """A bad ``ADVLIT_THREADS`` used to raise while ``advlit`` was imported: a traceback."""
    result = advlit("list", "experiments", ADVLIT_THREADS="abc")
    one_line_error(result.returncode, result.stderr, "ADVLIT_THREADS")
