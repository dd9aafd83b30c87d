"""`advlit grid` (issue 20): what it enumerates is what the chapters load, local workers and
the Slurm path (submitit's local executor) write the records the notebooks read, a killed
worker's run resumes to the uninterrupted record, and bad options are one line, exit 2."""
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

import advlit.book as book
from advlit import experiments
from advlit.cli import main
from advlit.config import RunConfig
from advlit.grid import (LOAD_LOG_ENV, GridJob, derived, job_spec, parse_time, plan_grid, read_load_log, run_grid,
                         update_manifest)
from advlit.notebook import Chapter
from advlit.results import REPO_DIR, WEIGHTS, is_current, load_record, run_name, run_or_load
from helpers import strip_times

#: a run of about a second (tests/helpers.py's tiny_config as an experiment of the registry)
TINY = dict(method="fgsm_rs", alpha_ratio=1.25, epochs=2, val_subset=64, final_attacks=["clean", "fgsm", "pgd-5"],
            final_subset=64)


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """Three cheap experiments in the registry and a manifest of three chapters: 01_tiny
    loads tiny_rs (seeds 0 and 1) and tiny_std (seed 0, with its weights), 02_long tiny_long
    (6 epochs, seed 0), 03_one tiny_rs (seed 0)."""
    experiments._load()
    monkeypatch.setitem(experiments._EXPERIMENTS, "test.tiny_rs", {"common": TINY})
    monkeypatch.setitem(experiments._EXPERIMENTS, "test.tiny_std", {"common": {**TINY, "method": "standard"}})
    monkeypatch.setitem(experiments._EXPERIMENTS, "test.tiny_long", {"common": {**TINY, "epochs": 6}})
    results = tmp_path / "results"
    entries = [{"experiment": "test.tiny_rs", "seed": 0, "need_model": False},
               {"experiment": "test.tiny_rs", "seed": 1, "need_model": False},
               {"experiment": "test.tiny_std", "seed": 0, "need_model": True}]
    update_manifest(results, "cpu", {"01_tiny": entries, "02_long": [
        {"experiment": "test.tiny_long", "seed": 0, "need_model": False}], "03_one": entries[:1]})
    return results


def same_numbers(a: dict, b: dict) -> bool:
    return strip_times(a["history"]) == strip_times(b["history"]) and a["final"] == b["final"]


def records(results: Path) -> dict:
    return {p.parent.name: json.loads(p.read_text()) for p in results.glob("*/record.json")}


# ---------------------------------------------------------------- (a) local workers
def test_two_local_workers_write_the_sequential_records_and_a_second_run_trains_nothing(tiny, tmp_path, capsys):
    args = ["grid", "--results-dir", str(tiny), "--only", "01_tiny", "--log-dir", str(tmp_path / "logs")]
    assert main(args) == 0
    shown = capsys.readouterr().out
    assert "01_tiny" in shown and "02_long" not in shown and "03_one" not in shown
    total = next(line for line in shown.splitlines() if line.startswith("all (distinct runs)"))
    assert total.split()[3:8] == ["3", "0", "0", "3", "0"], total  # runs, done, partial, missing, waiting
    assert main(args + ["--run", "--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert "trained 3, failed 0" in out
    made = records(tiny)
    assert len(made) == 3 and all(r["complete"] for r in made.values())
    for name, seed, need in (("test.tiny_rs", 0, False), ("test.tiny_rs", 1, False), ("test.tiny_std", 0, True)):
        config = experiments.get_config(name, "cpu", seed=seed)
        reference = run_or_load(config, tmp_path / "sequential", need_model=need)
        assert same_numbers(made[run_name(config)], reference), name
        assert (tiny / run_name(config) / WEIGHTS).exists() == need
    mtimes = {p: p.stat().st_mtime_ns for p in tiny.glob("*/*")}
    assert main(args + ["--run", "--workers", "2"]) == 0
    assert "every run is done" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in tiny.glob("*/*")} == mtimes  # nothing trained or rewritten


# ---------------------------------------------------------------- (b) a killed worker
def test_a_killed_worker_resumes_to_the_uninterrupted_record(tiny, tmp_path):
    config = experiments.get_config("test.tiny_long", "cpu", seed=0)
    run_dir = tiny / run_name(config)

    def kill_after_two_epochs(job, process):
        def watch():
            while process.poll() is None:
                record = load_record(run_dir) if (run_dir / "record.json").exists() else None
                if record and record["epochs_done"] >= 2:
                    process.kill()
                    return
                time.sleep(0.01)
        threading.Thread(target=watch, daemon=True).start()

    out = run_grid("cpu", tiny, only=["02_long"], log_dir=tmp_path / "logs", on_start=kill_after_two_epochs,
                   echo=lambda line: None)
    assert out["failed"] == [run_name(config)]
    killed = load_record(run_dir)
    assert not killed["complete"] and 2 <= killed["epochs_done"] < 6 and (run_dir / "checkpoint.pt").exists()
    plan = plan_grid("cpu", tiny, only=["02_long"])
    assert [j.state for j in plan.jobs] == ["partial"]
    out = run_grid("cpu", tiny, only=["02_long"], log_dir=tmp_path / "logs", echo=lambda line: None)
    assert out["trained"] == [run_name(config)] and not out["failed"]
    resumed = load_record(run_dir)
    assert resumed["complete"]
    done = killed["epochs_done"]
    assert [r["seconds"] for r in resumed["history"][:done]] == [r["seconds"] for r in killed["history"]]  # resumed
    assert same_numbers(resumed, run_or_load(config, tmp_path / "straight"))


GRID_UNDER_SIGTERM = """
import sys, types
from pathlib import Path
import advlit.grid as grid
out = Path(sys.argv[1])
worker = out / "worker.py"  # stands for `python -m advlit.grid SPEC`: writes its pid, then trains for a minute
worker.write_text("import os, sys, time; open(sys.argv[-1] + '.pid', 'w').write(str(os.getpid())); time.sleep(60)")
grid.job_spec = lambda job, results_dir: {}
real_popen = grid.subprocess.Popen
grid.subprocess.Popen = lambda args, **kw: real_popen([sys.executable, str(worker), args[-1]], **kw)
job = types.SimpleNamespace(run="a_run", state="missing", detail="")
grid.run_local([job], out, workers=1, log_dir=out / "logs", echo=lambda line: None)
"""


def test_a_terminated_grid_stops_its_workers(tmp_path):
    """SIGTERM (what `kill` and a session's end send) to the grid process must not leave its
    worker training on: an orphan would race the restarted grid on the same run directory."""
    grid = subprocess.Popen([sys.executable, "-c", GRID_UNDER_SIGTERM, str(tmp_path)])
    pid_file = tmp_path / "logs" / "jobs" / "a_run.json.pid"
    deadline = time.time() + 60
    while not (pid_file.exists() and pid_file.read_text()) and time.time() < deadline:
        time.sleep(0.05)
    worker = int(pid_file.read_text())
    grid.terminate()
    assert grid.wait(timeout=30) != 0
    for _ in range(100):
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        os.kill(worker, signal.SIGKILL)
        pytest.fail("the grid exited on SIGTERM and left its worker running")


# ---------------------------------------------------------------- (c) the Slurm path
def test_slurm_path_through_submitits_local_executor_writes_the_record(tiny, tmp_path):
    pytest.importorskip("submitit")
    from submitit.helpers import DelayedSubmission

    slurm = {"time_min": 10, "cluster": "local"}
    out = run_grid("cpu", tiny, only=["03_one"], executor="slurm", slurm=slurm, wait=True,
                   log_dir=tmp_path / "logs", echo=lambda line: None)
    config = experiments.get_config("test.tiny_rs", "cpu", seed=0)
    assert out["trained"] == [run_name(config)] and not out["failed"] and len(out["submitted"]) == 1
    record = load_record(tiny / run_name(config))
    assert is_current(record, config)
    assert same_numbers(record, run_or_load(config, tmp_path / "straight"))
    assert [j.state for j in out["plan"].jobs] == ["done"]
    # preemption / time-out: submitit calls checkpoint(), which resubmits the same run; the
    # requeued job resumes from checkpoint.pt (here: submitit's in-process debug executor)
    from advlit.grid import submit_slurm
    from advlit.train import Trainer

    job = next(j for j in plan_grid("cpu", tiny, only=["01_tiny"]).jobs if j.state == "missing")
    requeued = GridJob(job_spec(job, tiny)).checkpoint()
    assert isinstance(requeued, DelayedSubmission) and requeued.function.spec == job_spec(job, tiny)
    Trainer(job.config, progress=False).fit(tiny / job.run, stop_after=1)  # the preempted job's last epoch
    [(_, handle)] = submit_slurm([job], tiny, tmp_path / "debug", time_min=10, cluster="debug")
    assert handle.result()["complete"]
    assert same_numbers(load_record(tiny / job.run), run_or_load(job.config, tmp_path / "straight"))


# ---------------------------------------------------------------- (d) enumeration
def test_the_cpu_grid_is_exactly_the_current_committed_records():
    """The committed manifest, replayed, names every current record of results/cpu and
    nothing else: what the notebooks load (a record loaded some other way, or a manifest not
    rewritten after a chapter changed, fails here)."""
    committed = REPO_DIR / "results" / "cpu"
    current = set()
    for path in committed.glob("*/record.json"):
        record = json.loads(path.read_text())
        if is_current(record, RunConfig.from_dict(record["config"])):
            current.add(path.parent.name)
    plan = plan_grid("cpu")
    assert plan.manifest == committed / "manifest.json" and not plan.waiting and not plan.unresolved
    planned = {job.run for job in plan.jobs}
    assert planned == current, (f"in the grid, no current record: {sorted(planned - current)}; "
                                f"current records no chapter loads: {sorted(current - planned)}")
    assert all(job.state == "done" for job in plan.jobs)
    chapters = sorted(p.stem for p in (REPO_DIR / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert plan.chapters == chapters
    # the scorecard reads only records the grid makes
    from advlit.scorecard import CLAIMS

    for claim in CLAIMS:
        for name in claim.experiments:
            for seed in experiments.DEFAULT_SEEDS["cpu"]:
                assert run_name(experiments.get_config(name, "cpu", seed=seed)) in planned, (claim.key, name, seed)


def test_the_gpu_grid_replays_the_cpu_manifest(tmp_path):
    """Before any gpu record exists: every cpu load becomes its gpu configuration, and the
    runs whose settings come from another run (ATAS's subsets) wait for that run."""
    plan = plan_grid("gpu", tmp_path)
    assert plan.recorded_profile == "cpu" and not plan.unresolved
    assert all(job.state == "missing" and str(job.config.device) == "cuda" for job in plan.jobs)
    manifest = json.loads((REPO_DIR / "results" / "cpu" / "manifest.json").read_text())
    entries = [e for loads in manifest["chapters"].values() for e in loads]
    runs = {job.run for job in plan.jobs}
    for e in entries:
        if "recipe" not in e:
            assert run_name(experiments.get_config(e["experiment"], "gpu", seed=e["seed"])) in runs, e
    atta = run_name(experiments.get_config("atas.atta", "gpu", seed=0))
    assert [w.waiting_on for w in plan.waiting] == [[atta], [atta]]  # the two subsets of ATAS's Fig. 3
    assert sum(w.runs for w in plan.waiting) == 2
    assert plan.jobs == sorted(plan.jobs, key=lambda j: -j.seconds)  # longest first


# a chapter helper whose run's setting is computed from another run's result
@derived
def lr_from_clean_accuracy(chapter, name, seeds=None):
    source = chapter.run("test.tiny_rs", seeds=[0])[0]
    return chapter.run(name, seeds=seeds, lr=round(0.05 + source["final"]["last"]["clean"] / 1000, 4))


def test_a_derived_helper_is_recorded_and_replayed_at_another_profile(tiny, tmp_path, monkeypatch):
    monkeypatch.setitem(experiments.PROFILES, "alt", {**experiments.PROFILES["cpu"], "eps": 0.1})
    monkeypatch.setitem(experiments.DEFAULT_SEEDS, "alt", [0, 1, 2])
    log = tmp_path / "loads.jsonl"
    monkeypatch.setenv(LOAD_LOG_ENV, str(log))
    lr_from_clean_accuracy(Chapter(profile="cpu", results_dir=str(tmp_path / "cpu")), "test.tiny_std", seeds=[0])
    monkeypatch.delenv(LOAD_LOG_ENV)
    entries = read_load_log(log)
    assert [e["experiment"] for e in entries] == ["test.tiny_rs", "test.tiny_std"]
    assert "recipe" not in entries[0] and entries[1]["recipe"]["function"] == "test_grid:lr_from_clean_accuracy"
    assert entries[1]["computed"] == ["lr"]
    alt = tmp_path / "alt"
    update_manifest(alt, "cpu", {"01_derived": entries})  # recorded at cpu, planned at alt
    plan = plan_grid("alt", alt)
    source = run_name(experiments.get_config("test.tiny_rs", "alt", seed=0))
    assert [j.run for j in plan.jobs] == [source] and plan.waiting[0].waiting_on == [source]
    run_or_load(experiments.get_config("test.tiny_rs", "alt", seed=0), alt)  # the run it reads is done
    unlocked = plan_grid("alt", alt)
    assert not unlocked.waiting and [j.state for j in unlocked.jobs] == ["missing", "done"]
    out = run_grid("alt", alt, log_dir=tmp_path / "logs", echo=lambda line: None)
    assert out["trained"] == [unlocked.jobs[0].run] and not out["plan"].waiting
    assert all(j.state == "done" for j in out["plan"].jobs)
    before = records(alt)
    loaded = lr_from_clean_accuracy(Chapter(profile="alt", results_dir=str(alt)), "test.tiny_std", seeds=[0])
    assert records(alt) == before  # the chapter finds its run: nothing trained
    assert Path(loaded[0]["run_dir"]).name in {j.run for j in out["plan"].jobs}
    assert loaded[0]["config"]["eps"] == 0.1 and loaded[0]["config"]["lr"] != 0.1


def _notebook(path, body):
    cells = [{"cell_type": "code", "id": "parameters", "metadata": {"tags": ["parameters"]},
              "source": 'profile = "cpu"\nresults_dir = None', "outputs": [], "execution_count": None},
             {"cell_type": "code", "id": "body", "metadata": {}, "source": body, "outputs": [], "execution_count": None}]
    nb = {"cells": cells, "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb))


def test_book_run_records_what_each_chapter_loads(tmp_path, monkeypatch):
    monkeypatch.setattr(book, "NOTEBOOK_DIR", REPO_DIR / "notebooks")
    assert book.records_manifest({"results_dir": "x", "data_root": "y", "device": "cpu"})
    assert not any(book.records_manifest({name: 1}) for name in book.CHANGES_LOADS)  # they change what is loaded
    monkeypatch.setattr(book, "NOTEBOOK_DIR", tmp_path / "nb")
    assert not book.records_manifest({})  # a test's notebooks never write the book's manifest
    (tmp_path / "nb").mkdir()
    body = ("from advlit import experiments\nfrom advlit.notebook import Chapter\nexperiments._load()\n"
            f"experiments._EXPERIMENTS['test.kernel'] = {{'common': {TINY!r}}}\n"
            "chapter = Chapter(profile=profile, results_dir=results_dir)\n"
            "chapter.run('test.kernel', seeds=[0], need_model=True)\n"
            "[chapter.run('test.kernel', seeds=[s]) for s in (0, 1)]")
    _notebook(tmp_path / "nb" / "01_loads.ipynb", body)
    _notebook(tmp_path / "nb" / "02_fails.ipynb", "from advlit.experiments import run\nrun('nope')")
    results = tmp_path / "results"
    failures = book.run_notebooks(profile="cpu", extra={"results_dir": str(results)}, scorecard=False, manifest=True)
    assert failures == ["02_fails"]
    manifest = json.loads((results / "manifest.json").read_text())
    assert manifest["profile"] == "cpu" and list(manifest["chapters"]) == ["01_loads"]
    loads = manifest["chapters"]["01_loads"]
    assert [(e["experiment"], e["seed"], e["need_model"]) for e in loads] == [
        ("test.kernel", 0, False), ("test.kernel", 0, True), ("test.kernel", 1, False)]
    assert {e["run"] for e in loads} == set(records(results))


# ---------------------------------------------------------------- (e) bad options
@pytest.mark.parametrize("args,message", [
    (["--profile", "tpu"], "unknown profile 'tpu'"),
    (["--only", "99_nope"], "unknown chapter(s) 99_nope"),
    (["--experiment", "test.nope"], "unknown experiment 'test.nope'"),
    (["--executor", "pbs"], "invalid choice: 'pbs'"),
    (["--workers", "0"], "must be a positive integer"),
    (["--gpus", "a,b"], "--gpus: expected distinct device indices"),
    (["--workers", "2", "--gpus", "0"], "not both"),
    (["--partition", "gpu"], "--partition is an option of --executor slurm"),
    (["--executor", "slurm", "--workers", "2"], "--workers is an option of --executor local"),
    (["--executor", "slurm", "--time", "soon"], "not a Slurm time limit"),
    (["--run", "--gpus", "0"], "train on the CPU"),
    (["--run", "--executor", "slurm"], "needs --time"),
])
def test_bad_options_are_one_line_and_exit_2(tiny, args, message, capsys):
    code = main(["grid", "--results-dir", str(tiny), *args])
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("advlit: error:") and message in lines[0], err


@pytest.mark.skipif(shutil.which("sbatch") is not None, reason="this machine has Slurm")
def test_slurm_without_slurm_says_so(tiny, capsys):
    assert main(["grid", "--results-dir", str(tiny), "--run", "--executor", "slurm", "--time", "60"]) == 2
    assert "sbatch is not on this machine" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_gpus_without_a_gpu_say_so(tmp_path, capsys):
    assert main(["grid", "--profile", "gpu", "--results-dir", str(tmp_path), "--run", "--gpus", "0"]) == 2
    assert "no CUDA device" in capsys.readouterr().err


def test_the_installed_command_exits_2_with_one_line():
    proc = subprocess.run([sys.executable, "-m", "advlit.cli", "grid", "--executor", "pbs"], capture_output=True,
                          text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "invalid choice" in proc.stderr


@pytest.mark.parametrize("text,minutes", [("240", 240), ("30:30", 31), ("4:00:00", 240), ("1-00:00:00", 1440),
                                          ("2-12", 3600), ("0-1:30", 90)])
def test_slurm_time_limits(text, minutes):
    assert parse_time(text) == minutes
