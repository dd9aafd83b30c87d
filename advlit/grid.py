"""``advlit grid``: every run the chapters of a profile load, its state, and the training of
what is missing on local workers (CPU processes or one per GPU) or on a Slurm cluster.

What the chapters load is *recorded*, never guessed. Every record a chapter loads goes
through :func:`advlit.experiments.run` (``Chapter.run`` and the chapter helpers of
``advlit.experiments`` call it), which reports each (experiment, seed, need_model) to
:func:`note_load`; while ``advlit book run`` executes a chapter it points
:data:`LOAD_LOG_ENV` at a log file, and after the chapter ran it writes what the chapter
loaded into ``results/<profile>/manifest.json`` (:func:`update_manifest`; committed with the
``cpu`` records). The grid reads that manifest (:func:`plan_grid`):

* an entry made with the registry's own settings (the usual case) is rebuilt at any profile
  with :func:`advlit.experiments.get_config` (experiment, profile, seed), so the ``cpu``
  book run's manifest enumerates the ``gpu`` grid before any ``gpu`` run exists. This rests
  on the chapters calling the same experiments and seeds at every profile (they branch on
  the profile only for attack names and evaluation subsets) and on the profiles' default seeds
  being the same list (checked);
* an entry whose settings a chapter computed from other runs' results (ATAS's
  gradient-norm subsets, :func:`advlit.experiments.atas.run_subset`) names the helper that
  computed them (the :func:`derived` decorator); the grid replays that helper at the target
  profile through a chapter that only reads records (:class:`PlanChapter`) as soon as the
  runs it reads are done, and trains what it asks for;
* any other override is used as recorded, at the recorded profile only.

A test checks that the ``cpu`` grid is exactly the set of current committed records, so a
chapter that loads a record some other way, or a manifest left behind by a chapter edit,
fails the tests. At a profile whose book run already wrote ``results/<profile>/manifest.json``
that manifest is used.

Every job is an ordinary :func:`advlit.results.run_or_load` call in its own process: it
writes its record where the notebooks look, resumes from ``checkpoint.pt`` when a partial
run of the same code exists (the trainer's exact resume), and never retrains a complete
current record. Local jobs run as ``python -m advlit.grid JOBFILE`` subprocesses
(:func:`run_local`); Slurm jobs are submitit jobs, one job-array task per run
(:func:`submit_slurm`), requeued on preemption or time-out through :class:`GridJob`'s
``checkpoint``. Longest runs start first. There is no scheduler here: Slurm schedules,
and the local executor only keeps N processes busy.
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
import importlib
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from advlit.notebook import Chapter
from advlit.utils import ConfigError

#: the environment variable that makes :func:`note_load` append every load to a JSON-lines file
LOAD_LOG_ENV = "ADVLIT_LOAD_LOG"
#: the file in ``results/<profile>/`` that lists what each chapter loads
MANIFEST = "manifest.json"
#: training seconds per epoch assumed for a run with no record of its own and none of the
#: same method, dataset and model to measure from, by device type
DEFAULT_SECONDS_PER_EPOCH = {"cpu": 5.0, "cuda": 60.0}
#: the overrides a manifest entry never stores (they do not change results or run names)
_UNRECORDED = ("data_root",)

_RECIPE: contextvars.ContextVar[dict | None] = contextvars.ContextVar("advlit_grid_recipe", default=None)


# ------------------------------------------------------------------ recording what chapters load
def derived(helper):
    """Mark a chapter helper ``helper(chapter, *args, **kwargs)`` whose runs' settings are
    computed from other runs' results (e.g. ATAS's gradient-norm subsets, computed from the
    ATTA run). The loads it makes are recorded with the helper's name and arguments, so the
    grid can replay it at another profile once the runs it reads exist (:class:`PlanChapter`).
    The arguments other than ``chapter`` must be JSON values."""

    @functools.wraps(helper)
    def wrapper(chapter, *args, **kwargs):
        recipe = {"function": f"{helper.__module__}:{helper.__qualname__}", "args": list(args), "kwargs": kwargs}
        token = _RECIPE.set(recipe)
        try:
            return helper(chapter, *args, **kwargs)
        finally:
            _RECIPE.reset(token)

    return wrapper


def note_load(name: str, profile: str, seed: int, need_model: bool, overrides: dict, config) -> None:
    """Append one load of :func:`advlit.experiments.run` to the file named by
    :data:`LOAD_LOG_ENV` (nothing when it is unset). The entry stores the settings a chapter
    passed only when they change the run (its configuration hash) at ``profile``: the
    :func:`derived` helper that computed them (``recipe``, with the names of the settings it
    computed), else the settings themselves (``overrides``)."""
    path = os.environ.get(LOAD_LOG_ENV)
    if not path:
        return
    from advlit.experiments import get_config
    from advlit.results import run_name

    entry = {"experiment": name, "seed": seed, "need_model": bool(need_model), "run": run_name(config)}
    given = {k: v for k, v in overrides.items() if v is not None and k not in _UNRECORDED}
    if given and get_config(name, profile, seed=seed).hash() != config.hash():
        recipe = _RECIPE.get()
        if recipe is not None:  # replayed by the grid: the values computed here are not needed
            entry["recipe"], entry["computed"] = recipe, sorted(given)
        else:
            entry["overrides"] = given
    with open(path, "a") as log:
        log.write(json.dumps(entry, sort_keys=True, default=str) + "\n")


def read_load_log(path: str | Path) -> list[dict]:
    """The entries of a load log, each once, in a stable order."""
    path = Path(path)
    if not path.exists():
        return []
    entries = {line: json.loads(line) for line in path.read_text().splitlines() if line.strip()}
    return sorted(entries.values(), key=lambda e: (e["experiment"], e["seed"], e["need_model"],
                                                   json.dumps(e, sort_keys=True)))


def update_manifest(results_dir: str | Path, profile: str, loads: dict[str, list[dict]],
                    chapters: list[str] | None = None) -> Path:
    """Write ``loads`` (``{chapter: entries}``) into ``<results_dir>/manifest.json``,
    keeping the other chapters' entries (a book run with ``--only``); ``chapters`` (all
    chapter names) drops entries of chapters that no longer exist."""
    path = Path(results_dir) / MANIFEST
    old = {}
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except ValueError:
            old = {}
    kept = old.get("chapters", {}) if old.get("profile") == profile else {}
    merged = {**kept, **loads}
    if chapters is not None:
        merged = {k: v for k, v in merged.items() if k in chapters}
    manifest = {
        "about": "What each chapter loads (advlit.experiments.run), written by `advlit book run`; "
                 "read by `advlit grid`. Do not edit: run the book to update it.",
        "profile": profile,
        "chapters": dict(sorted(merged.items())),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=False) + "\n")
    tmp.replace(path)
    return path


def load_manifest(profile: str, results_dir: str | Path | None = None) -> tuple[dict, Path]:
    """The manifest for ``profile``: ``<results_dir>/manifest.json`` when it exists, else the
    committed ``cpu`` one (replayed at ``profile`` by :func:`plan_grid`)."""
    from advlit import experiments

    candidates = [experiments.results_dir_for(profile, results_dir) / MANIFEST,
                  experiments.results_dir_for("cpu") / MANIFEST]
    for path in candidates:
        if path.exists():
            try:
                manifest = json.loads(path.read_text())
                manifest["chapters"]  # noqa: B018
            except (ValueError, KeyError, TypeError) as err:
                raise ConfigError(f"{path} is not a readable manifest ({err}); run `advlit book run` to rewrite it") from None
            return manifest, path
    raise ConfigError(f"no manifest of what the chapters load ({candidates[-1]}): run `advlit book run --profile cpu` "
                      "once, which records it")


# ------------------------------------------------------------------ the plan
@dataclass
class Job:
    """One training run of the grid: its configuration, whether a chapter needs its weights,
    the chapters and experiments that load it, its state and its estimated cost."""
    config: object
    need_model: bool = False
    chapters: set = field(default_factory=set)
    labels: set = field(default_factory=set)
    state: str = "missing"  # done | partial | missing
    detail: str = ""
    epochs_left: int = 0
    seconds: float = 0.0  # estimated training seconds left
    estimate: str = "default"  # record | similar | default

    @property
    def run(self) -> str:
        from advlit.results import run_name

        return run_name(self.config)


@dataclass
class Waiting:
    """A :func:`derived` helper whose runs cannot be named yet: the runs it reads are not done."""
    recipe: dict
    chapters: set
    runs: int  # how many runs the helper asked for when the manifest was recorded
    waiting_on: list
    seconds: float = 0.0


@dataclass
class Plan:
    profile: str
    results_dir: Path
    manifest: Path
    recorded_profile: str
    chapters: list
    jobs: list  # of Job, longest first among the ones left to train
    waiting: list  # of Waiting
    unresolved: list  # (chapter, entry): settings computed at another profile without a recipe

    def todo(self) -> list:
        return [j for j in self.jobs if j.state != "done"]


class _Pending(Exception):
    def __init__(self, configs):
        super().__init__(f"{len(configs)} run(s) not done")
        self.configs = configs


class PlanChapter(Chapter):
    """A chapter that only reads records, for replaying :func:`derived` helpers: :meth:`run`
    returns the current records of the runs asked for, or raises ``_Pending`` naming those
    that are not done, and keeps every load in :attr:`loads`; it never trains and never
    opens a dataset."""

    def __init__(self, profile: str, results_dir, data_root=None):
        super().__init__(profile=profile, results_dir=str(results_dir), data_root=data_root)
        self.loads: list = []  # (label, need_model, config)

    def run(self, name: str, seeds=None, need_model: bool = False, **overrides) -> list[dict]:
        from advlit.results import is_current, load_record, run_name

        records, pending = [], []
        for seed in (self.seeds if seeds is None else list(seeds)):
            config = self.config(name, seed=seed, **overrides)
            self.loads.append((f"{name} s{seed}", bool(need_model), config))
            run_dir = Path(self.results_dir) / run_name(config)
            record = load_record(run_dir)
            if is_current(record, config):
                records.append({**record, "run_dir": str(run_dir)})
            else:
                pending.append(config)
        if pending:
            raise _Pending(pending)
        return records


def replay(recipe: dict, profile: str, results_dir, data_root=None) -> tuple[list, list]:
    """Run the :func:`derived` helper of ``recipe`` through a :class:`PlanChapter` at
    ``profile``: ``(loads, pending)``, the (label, need_model, config) it asked for and the
    configs among them that are not done (the helper stops at the first such call)."""
    module, _, qualname = recipe["function"].partition(":")
    helper = importlib.import_module(module)
    for part in qualname.split("."):
        helper = getattr(helper, part)
    helper = getattr(helper, "__wrapped__", helper)
    chapter = PlanChapter(profile, results_dir, data_root)
    try:
        helper(chapter, *recipe.get("args", []), **recipe.get("kwargs", {}))
    except _Pending as err:
        return chapter.loads, err.configs
    return chapter.loads, []


#: the pseudo-chapter of the runs named with ``extra=`` (``advlit grid --experiment``)
EXTRA_CHAPTER = "(--experiment)"


def plan_grid(profile: str = "cpu", results_dir=None, only=None, data_root=None, extra=()) -> Plan:
    """Every run the chapters of ``profile`` load (``only``: these chapters), with its state
    (:func:`job_state`) and estimated training time (:func:`estimate`), longest first.
    ``extra``: also these registered experiments at the profile's default seeds (an
    experiment a chapter edit adds, before the book run records it)."""
    from advlit import experiments
    from advlit.results import run_name

    experiments.check_profile(profile)
    results_dir = experiments.results_dir_for(profile, results_dir)
    manifest, source = load_manifest(profile, results_dir)
    recorded = manifest.get("profile", "cpu")
    chapters = manifest["chapters"]
    if only:
        unknown = sorted(set(only) - set(chapters))
        if unknown:
            raise ConfigError(f"unknown chapter(s) {', '.join(unknown)}; the manifest {source} has "
                              f"{', '.join(chapters) or 'none'}")
        chapters = {k: v for k, v in chapters.items() if k in set(only)}
    if recorded != profile and experiments.DEFAULT_SEEDS[recorded] != experiments.DEFAULT_SEEDS[profile]:
        raise ConfigError(f"the manifest {source} was recorded at profile {recorded!r}, whose default seeds differ "
                          f"from {profile!r}'s: run `advlit book run --profile {profile}` to record its own")
    jobs: dict[str, Job] = {}

    def add(config, need_model, chapter, label):
        job = jobs.setdefault(run_name(config), Job(config))
        job.need_model |= bool(need_model)
        job.chapters.add(chapter)
        job.labels.add(label)

    recipes: dict[str, tuple[dict, set, list]] = {}
    unresolved = []
    for chapter, entries in chapters.items():
        for entry in entries:
            name, seed, need = entry["experiment"], entry["seed"], entry.get("need_model", False)
            if "recipe" in entry:
                key = json.dumps(entry["recipe"], sort_keys=True)
                recipes.setdefault(key, (entry["recipe"], set(), []))
                recipes[key][1].add(chapter)
                recipes[key][2].append(entry)
            elif "overrides" in entry:
                if recorded != profile:
                    unresolved.append((chapter, entry))
                    continue
                add(experiments.get_config(name, profile, seed=seed, data_root=data_root, **entry["overrides"]),
                    need, chapter, f"{name} s{seed}")
            else:
                add(experiments.get_config(name, profile, seed=seed, data_root=data_root), need, chapter, f"{name} s{seed}")
    for name in extra:
        for seed in experiments.DEFAULT_SEEDS[profile]:
            config = experiments.get_config(name, profile, seed=seed, data_root=data_root)
            add(config, False, EXTRA_CHAPTER, f"{name} s{seed}")
    portable = set(jobs)
    waiting = []
    for recipe, recipe_chapters, entries in recipes.values():
        loads, pending = replay(recipe, profile, results_dir, data_root)
        if pending and all(run_name(c) in portable for c in pending):  # the runs it reads are not done yet
            configs = [experiments.get_config(e["experiment"], profile, seed=e["seed"]) for e in entries]
            waiting.append(Waiting(recipe, recipe_chapters, len(entries), sorted(run_name(c) for c in pending),
                                   sum(_default_seconds(c) * c.epochs for c in configs)))
            continue
        for label, need, config in loads:  # what it read, and the runs it asks for (done or not)
            for chapter in recipe_chapters:
                add(config, need, chapter, label)
    seconds = _seconds_index(results_dir)
    for job in jobs.values():
        job.state, job.detail, job.epochs_left = job_state(job.config, job.need_model, results_dir)
        job.seconds, job.estimate = estimate(job, results_dir, seconds)
    ordered = sorted(jobs.values(), key=lambda j: (j.state == "done", -j.seconds, j.run))
    return Plan(profile, results_dir, source, recorded, list(chapters) + ([EXTRA_CHAPTER] if extra else []), ordered,
                waiting, unresolved)


def job_state(config, need_model: bool, results_dir) -> tuple[str, str, int]:
    """``(state, detail, epochs left)`` of a run in ``results_dir``, as
    :func:`advlit.results.run_or_load` would see it: ``done`` (a complete current record, and
    its weights when a chapter needs them), ``partial`` (a checkpoint of an incomplete run of
    the same configuration and code: it resumes) or ``missing``."""
    from advlit.results import code_fingerprint, is_current, load_record, run_name, stored_weights
    from advlit.train import CHECKPOINT

    run_dir = Path(results_dir) / run_name(config)
    record = load_record(run_dir)
    if is_current(record, config):
        if need_model and stored_weights(run_dir, record) is None:
            return "missing", "weights missing (the record is kept; trained again for its weights)", config.epochs
        return "done", "", 0
    if (run_dir / CHECKPOINT).exists() and record is not None and not record.get("complete") \
            and record.get("config_hash") == config.hash() and record.get("code") == code_fingerprint(config):
        done = int(record.get("epochs_done") or 0)
        return "partial", f"resumes after epoch {done} of {config.epochs}", config.epochs - done
    if record is not None and record.get("complete"):
        return "missing", "the record was made by other code", config.epochs
    return "missing", "", config.epochs


def _device_type(config) -> str:
    return "cuda" if str(config.device).startswith("cuda") else "cpu"


def _default_seconds(config) -> float:
    return DEFAULT_SECONDS_PER_EPOCH.get(_device_type(config), DEFAULT_SECONDS_PER_EPOCH["cuda"])


def _seconds_index(results_dir) -> dict:
    """``{(method, dataset, model, device type): [seconds per epoch, ...]}`` over the records in ``results_dir``."""
    index: dict = {}
    for path in Path(results_dir).glob("*/record.json"):
        try:
            record = json.loads(path.read_text())
            cfg, secs = record["config"], record.get("seconds_per_epoch")
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            continue
        if secs:
            device = "cuda" if str(cfg.get("device")).startswith("cuda") else "cpu"
            index.setdefault((cfg.get("method"), cfg.get("dataset"), cfg.get("model"), device), []).append(secs)
    return index


def estimate(job: Job, results_dir, index: dict | None = None) -> tuple[float, str]:
    """Training seconds left for ``job`` and where the rate comes from: its own record's
    seconds per epoch (``record``), the median of the records of the same method, dataset,
    model and device type (``similar``), else :data:`DEFAULT_SECONDS_PER_EPOCH` (``default``).
    Training epochs only: validation and the final evaluation come on top."""
    from advlit.results import load_record

    if job.epochs_left == 0:
        return 0.0, "record"
    c = job.config
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a damaged record was reported by job_state already
        record = load_record(Path(results_dir) / job.run)
    if record and record.get("seconds_per_epoch"):
        return record["seconds_per_epoch"] * job.epochs_left, "record"
    index = _seconds_index(results_dir) if index is None else index
    similar = index.get((c.method, c.dataset, c.model, _device_type(c)))
    if similar:
        return statistics.median(similar) * job.epochs_left, "similar"
    return _default_seconds(c) * job.epochs_left, "default"


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def format_plan(plan: Plan, listing: bool = False) -> str:
    """The grid's state: one line per chapter and a total (done / partial / missing, and the
    estimated training time left on one worker), then, with ``listing``, every run to train."""
    lines = [f"profile {plan.profile}: what the chapters load, from {plan.manifest}"
             + (f" (recorded at profile {plan.recorded_profile}, replayed at {plan.profile})"
                if plan.recorded_profile != plan.profile else "")
             + f"; records in {plan.results_dir}"]
    head = f"{'chapter':20s} {'runs':>5s} {'done':>5s} {'partial':>8s} {'missing':>8s} {'waiting':>8s}  training time left"
    lines.append(head)

    def row(label, jobs, waiting):
        count = {s: sum(1 for j in jobs if j.state == s) for s in ("done", "partial", "missing")}
        secs = sum(j.seconds for j in jobs) + sum(w.seconds for w in waiting)
        runs = len(jobs) + sum(w.runs for w in waiting)
        return (f"{label:20s} {runs:5d} {count['done']:5d} {count['partial']:8d} {count['missing']:8d} "
                f"{sum(w.runs for w in waiting):8d}  {_duration(secs) if secs else '-'}")

    for chapter in plan.chapters:
        lines.append(row(chapter, [j for j in plan.jobs if chapter in j.chapters],
                         [w for w in plan.waiting if chapter in w.chapters]))
    lines.append(row("all (distinct runs)", plan.jobs, plan.waiting))
    sources = {s: sum(1 for j in plan.todo() if j.estimate == s) for s in ("record", "similar", "default")}
    if plan.todo() or plan.waiting:
        rates = " or ".join(f"{v:g} s per epoch on {d}" for d, v in DEFAULT_SECONDS_PER_EPOCH.items())
        lines.append(f"time left: training epochs on one worker (validation and the final evaluation come on top); "
                     f"rates from the run's own record for {sources['record']}, from records of the same method, "
                     f"data and model for {sources['similar']}, the default ({rates}) for "
                     f"{sources['default'] + sum(w.runs for w in plan.waiting)}")
    for wait in plan.waiting:
        lines.append(f"waiting: {wait.runs} run(s) of {wait.recipe['function']}{tuple(wait.recipe.get('args', []))} "
                     f"are computed from {', '.join(wait.waiting_on)}; `advlit grid --run` trains them once those are done")
    for chapter, entry in plan.unresolved:
        lines.append(f"not enumerable at {plan.profile}: {chapter} loads {entry['experiment']} s{entry['seed']} with "
                     f"settings computed at {plan.recorded_profile} ({', '.join(entry['overrides'])}); the chapter trains it")
    if listing:
        for job in plan.todo():
            lines.append(f"  {job.state:8s} {job.run:50s} {_duration(job.seconds):>12s}  {', '.join(sorted(job.labels))}"
                         + (" (weights)" if job.need_model else "") + (f"; {job.detail}" if job.detail else ""))
    if not plan.todo() and not plan.waiting:
        lines.append(f"every run is done: `advlit book run --profile {plan.profile}` only loads records")
    return "\n".join(lines)


# ------------------------------------------------------------------ running jobs
def job_spec(job: Job, results_dir) -> dict:
    """What a worker needs to train ``job``: a plain JSON object (no registry lookup, so a
    worker process runs exactly the configuration the grid planned)."""
    return {"run": job.run, "config": job.config.to_dict(), "need_model": job.need_model,
            "results_dir": str(results_dir)}


def run_job(spec: dict) -> dict:
    """Train (or resume, or reload) the run of ``spec`` with :func:`advlit.results.run_or_load`."""
    from advlit.config import RunConfig
    from advlit.results import run_or_load
    from advlit.utils import configure_threads

    configure_threads()
    config = RunConfig.from_dict(spec["config"])
    t0 = time.perf_counter()
    record = run_or_load(config, spec["results_dir"], need_model=spec["need_model"], progress=False)
    return {"run": spec["run"], "seconds": time.perf_counter() - t0, "complete": bool(record.get("complete"))}


class GridJob:
    """One run as a submitit job. ``checkpoint`` (called by submitit when Slurm preempts the
    job or its time runs out) resubmits the same job: the new one resumes from the run's
    ``checkpoint.pt``, written after every epoch, so at most one epoch is lost."""

    def __init__(self, spec: dict):
        self.spec = spec

    def __call__(self) -> dict:
        return run_job(self.spec)

    def checkpoint(self, *args, **kwargs):
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(GridJob(self.spec), *args, **kwargs)


def _worker_env(gpu: int | None) -> dict:
    env = dict(os.environ)
    env.setdefault("ADVLIT_THREADS", "1")
    env.setdefault("OMP_NUM_THREADS", env["ADVLIT_THREADS"])
    env.setdefault("ADVLIT_PROGRESS", "0")
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = str(gpu)  # the run's device "cuda" is this GPU
    return env


def run_local(jobs: list, results_dir, workers: int = 1, gpus=None, log_dir=None, on_start=None,
              echo=print) -> tuple[list, list]:
    """Train ``jobs`` in order, each in its own ``python -m advlit.grid`` process, at most
    ``workers`` at a time (or one per GPU of ``gpus``, with ``CUDA_VISIBLE_DEVICES`` set);
    ``ADVLIT_THREADS`` (default 1) sets each worker's torch threads. Returns ``(trained,
    failed)`` run names. ``on_start(job, process)`` is called as each process starts.

    Interrupted (Ctrl-C, or ``kill`` / SIGTERM, as a job scheduler or a session's end
    sends), it stops its workers before it exits: each run keeps its checkpoint of the last
    finished epoch and resumes from it on the next invocation, and no orphaned worker goes
    on training behind a restarted grid."""
    log_dir = Path(log_dir) if log_dir is not None else Path(results_dir) / ".grid"
    (log_dir / "jobs").mkdir(parents=True, exist_ok=True)
    (log_dir / "logs").mkdir(parents=True, exist_ok=True)
    slots = list(gpus) if gpus else [None] * workers
    with _sigterm_as_exit():
        return _run_slots(list(jobs), slots, log_dir, results_dir, on_start, echo)


@contextlib.contextmanager
def _sigterm_as_exit():
    """SIGTERM raises :class:`SystemExit` here (by default it ends the process at once,
    leaving the worker processes running); restored afterwards. Main thread only."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run_slots(queue, slots, log_dir, results_dir, on_start, echo):
    running, trained, failed, total, finished = {}, [], [], len(queue), 0
    try:
        while queue or running:
            for slot, gpu in enumerate(slots):
                if slot in running or not queue:
                    continue
                job = queue.pop(0)
                spec_path = log_dir / "jobs" / f"{job.run}.json"
                spec_path.write_text(json.dumps(job_spec(job, results_dir), indent=1))
                log_path = log_dir / "logs" / f"{job.run}.log"
                log = open(log_path, "w")
                process = subprocess.Popen([sys.executable, "-m", "advlit.grid", str(spec_path)], stdout=log,
                                           stderr=subprocess.STDOUT, env=_worker_env(gpu))
                running[slot] = (job, process, time.perf_counter(), log, log_path)
                where = f"GPU {gpu}" if gpu is not None else f"worker {slot + 1}"
                echo(f"start  {job.run} ({job.state}{'; ' + job.detail if job.detail else ''}) on {where}")
                if on_start is not None:
                    on_start(job, process)
            time.sleep(0.1)
            for slot, (job, process, t0, log, log_path) in list(running.items()):
                if process.poll() is None:
                    continue
                log.close()
                del running[slot]
                finished += 1
                took = _duration(time.perf_counter() - t0)
                if process.returncode == 0:
                    trained.append(job.run)
                    echo(f"[{finished}/{total}] done   {job.run} ({took})")
                else:
                    failed.append(job.run)
                    tail = [line for line in log_path.read_text(errors="replace").splitlines() if line.strip()]
                    echo(f"[{finished}/{total}] FAILED {job.run} (exit {process.returncode} after {took}; log {log_path})"
                         + (f": {tail[-1][:200]}" if tail else ""))
    except BaseException:
        for job, process, *_ in running.values():
            process.terminate()  # the run keeps its checkpoint of the last finished epoch
        for job, process, *_ in running.values():
            process.wait()
        raise
    return trained, failed


def submit_slurm(jobs: list, results_dir, folder, time_min: int, partition: str | None = None,
                 gpus_per_job: int = 0, cpus_per_task: int | None = None, mem_gb: float | None = None,
                 max_parallel: int | None = None, max_requeues: int = 3, extra: dict | None = None,
                 setup: list | None = None, cluster: str = "slurm") -> list:
    """Submit ``jobs`` as one submitit job array (one task per run, longest first) and
    return ``[(job, submitit job)]``. ``time_min`` is each task's time limit: a run that
    needs longer is requeued (up to ``max_requeues`` times) and resumes from its checkpoint,
    as after a preemption. ``extra``: further ``#SBATCH`` settings (account, qos, ...);
    ``setup``: shell lines run before each task (``module load``, ``source .venv/bin/activate``).
    ``cluster="local"`` or ``"debug"`` runs the same jobs through submitit on this machine."""
    import submitit

    executor = submitit.AutoExecutor(folder=str(Path(folder) / "%j"), cluster=cluster,
                                     slurm_max_num_timeout=max_requeues)
    params = {"name": "advlit-grid", "timeout_min": int(time_min), "gpus_per_node": gpus_per_job,
              "tasks_per_node": 1, "cpus_per_task": cpus_per_task, "mem_gb": mem_gb,
              "slurm_partition": partition, "slurm_array_parallelism": max_parallel,
              "slurm_additional_parameters": extra or None, "slurm_setup": setup or None}
    executor.update_parameters(**{k: v for k, v in params.items() if v is not None})
    with executor.batch():
        submitted = [executor.submit(GridJob(job_spec(job, results_dir))) for job in jobs]
    return list(zip(jobs, submitted))


def parse_time(text: str) -> int:
    """A Slurm time limit in minutes: ``MIN``, ``MIN:SS``, ``H:MM:SS``, ``D-H``, ``D-H:MM`` or ``D-H:MM:SS``."""
    bad = ConfigError(f"--time: not a Slurm time limit: {text!r} (e.g. 240, 4:00:00 or 1-00:00:00)")
    days, _, rest = text.partition("-") if "-" in text else ("0", "", text)
    try:
        parts = [int(p) for p in rest.split(":")]
        days = int(days)
    except ValueError:
        raise bad from None
    if not parts or len(parts) > 3 or any(p < 0 for p in parts) or days < 0:
        raise bad
    if "-" in text:  # D-H, D-H:MM, D-H:MM:SS
        h, m, s = (parts + [0, 0])[:3]
    elif len(parts) == 3:
        h, m, s = parts
    else:  # MIN or MIN:SS
        h, m, s = 0, parts[0], (parts[1] if len(parts) == 2 else 0)
    minutes = days * 1440 + h * 60 + m + (1 if s else 0)
    if minutes < 1:
        raise bad
    return minutes


def parse_gpus(text: str) -> list[int]:
    """``"0,1,3"`` -> ``[0, 1, 3]``: CUDA device indices, one local worker each."""
    items = [t.strip() for t in str(text).split(",")]
    if not items or not all(t.isdigit() for t in items) or len(set(items)) != len(items):
        raise ConfigError(f"--gpus: expected distinct device indices separated by commas, e.g. 0,1,2,3; got {text!r}")
    return [int(t) for t in items]


def default_log_dir(profile: str) -> Path:
    """``runs/grid-<profile>/`` at the repository root (ignored by git): job files, worker
    logs and submitit's folder."""
    from advlit.results import REPO_DIR

    return REPO_DIR / "runs" / f"grid-{profile}"


def run_grid(profile: str = "cpu", results_dir=None, only=None, data_root=None, executor: str = "local",
             workers: int = 1, gpus=None, log_dir=None, slurm: dict | None = None, wait: bool = False,
             on_start=None, echo=print, extra=()) -> dict:
    """Train every run of :func:`plan_grid` that is not done, longest first, then plan again
    and train what that reveals (the runs of :func:`derived` helpers, whose settings exist
    only once the runs they read are done), until nothing new is left or a run fails.

    ``executor="local"``: :func:`run_local` (``workers`` processes, or one per GPU of
    ``gpus``); ``"slurm"``: :func:`submit_slurm` with the options ``slurm``, returning right
    after the submission unless ``wait``; ``extra``: also these experiments (:func:`plan_grid`).
    Returns ``{"trained", "failed", "submitted", "plan"}`` (``plan``: the last plan)."""
    log_dir = Path(log_dir) if log_dir is not None else default_log_dir(profile)
    attempted, trained, failed, submitted = set(), [], [], []
    while True:
        plan = plan_grid(profile, results_dir, only, data_root, extra)
        todo = [j for j in plan.todo() if j.run not in attempted]
        if not todo or failed:
            break
        attempted.update(j.run for j in todo)
        if executor == "local":
            done, bad = run_local(todo, plan.results_dir, workers=workers, gpus=gpus, log_dir=log_dir,
                                  on_start=on_start, echo=echo)
            trained += done
            failed += bad
            continue
        pairs = submit_slurm(todo, plan.results_dir, log_dir / "submitit", **(slurm or {}))
        for job, handle in pairs:
            echo(f"submitted {job.run} ({job.state}) as job {handle.job_id}")
        submitted += pairs
        if not wait:
            break
        for job, handle in pairs:
            try:
                handle.result()
                trained.append(job.run)
                echo(f"done   {job.run} (job {handle.job_id})")
            except Exception as err:  # noqa: BLE001 (submitit re-raises the job's error; report it, go on)
                failed.append(job.run)
                last = (str(err).strip().splitlines() or [type(err).__name__])[-1]
                echo(f"FAILED {job.run} (job {handle.job_id}; logs in {log_dir / 'submitit'}): {last[:200]}")
    return {"trained": trained, "failed": failed, "submitted": submitted, "plan": plan}


def worker_main(argv=None) -> int:
    """``python -m advlit.grid JOBFILE``: train the run of one :func:`job_spec` file."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m advlit.grid JOBFILE (a job written by `advlit grid --run`)", file=sys.stderr)
        return 2
    spec = json.loads(Path(argv[0]).read_text())
    result = run_job(spec)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(worker_main())
