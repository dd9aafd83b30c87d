"""Execute the book's notebooks with papermill (``advlit book run``).

The ``cpu`` profile executes ``notebooks/*.ipynb`` in place (the executed notebooks are
the book's chapters and nbval's reference outputs); other profiles write to
``results/<profile>/notebooks/`` unless told otherwise. A failing notebook is reported
and the others still run. The papermill-injected parameters cell is tagged
``remove-cell`` so the book never shows it. A parameter (``-p NAME VALUE``) that a
notebook's ``parameters`` cell does not define stops the run before any notebook starts
(papermill itself would only warn and the chapter would silently ignore it); values are
read as papermill's own ``-p`` reads them (:func:`papermill_value`).

The run prints the progress bar, one line per notebook and a summary (where the executed
chapters are, how long it took, how many run records were trained and how many were left
as they were, i.e. reused), nothing else: the kernels are started with their log level
at ERROR (:data:`KERNEL_ARGS`), which silences ipykernel's per-kernel warning "Kernel is
running over TCP without encryption" (the kernels listen on localhost only). After the
notebooks it writes the landing page's reproduction scorecard
(:func:`advlit.scorecard.write_scorecard`, read-only over the records) and the measured
cost per training step of the reproduction page (:func:`advlit.bench.write_bench_page`,
from the ``results/*/bench_*.json`` that ``advlit bench --out`` wrote) and the per-method bf16
autocast table beside it (:func:`advlit.precision.write_autocast_page`).

While the book's own chapters run, every record each of them loads is logged
(:func:`advlit.grid.note_load`) and written into ``results/<profile>/manifest.json``: the
list of runs ``advlit grid`` trains (not rewritten when ``epochs``, ``seeds`` or ``eps`` is
given, since those change what the chapters load).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from tqdm.auto import tqdm

from advlit import experiments
from advlit.experiments import check_profile
from advlit.notebook import assigned_names
from advlit.results import REPO_DIR
from advlit.utils import ConfigError

NOTEBOOK_DIR = REPO_DIR / "notebooks"
#: extra arguments of every papermill kernel: its own log only from ERROR up
KERNEL_ARGS = ["--IPKernelApp.log_level=ERROR"]


def record_state(results_dir: Path) -> dict[str, int]:
    """``{run directory name: mtime of its record.json}`` under ``results_dir``."""
    return {p.parent.name: p.stat().st_mtime_ns for p in Path(results_dir).glob("*/record.json")}


def record_changes(before: dict[str, int], after: dict[str, int]) -> tuple[int, int]:
    """(trained, reused): records written during the run, and records left as they were."""
    trained = sum(1 for name, mtime in after.items() if before.get(name) != mtime)
    return trained, sum(1 for name, mtime in after.items() if before.get(name) == mtime)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min {secs} s" if minutes else f"{seconds:.1f} s"


def _shown(path: Path) -> str:
    path = Path(path).resolve()
    try:
        return f"{path.relative_to(Path.cwd().resolve())}/"
    except ValueError:
        return f"{path}/"


def notebooks(only=None) -> list[Path]:
    """The chapter notebooks in book order (file names start with a two-digit number)."""
    # NN_name.ipynb only: not the hidden .NN_name.running.ipynb of a run in progress, nor NN_name.failed.ipynb
    paths = sorted(p for p in NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb") if "." not in p.stem)
    if only:
        wanted = set(only)
        unknown = wanted - {p.stem for p in paths}
        if unknown:
            raise ConfigError(f"unknown notebook(s) {', '.join(sorted(unknown))}; have {', '.join(p.stem for p in paths)}")
        paths = [p for p in paths if p.stem in wanted]
    return paths


def papermill_value(text: str):
    """A ``-p`` value as papermill's command line reads it: ``True``, ``False``, ``None``,
    an int, a float, else the string itself (``[0, 1]`` stays a string; the chapters parse it)."""
    if text in ("True", "False", "None"):
        return {"True": True, "False": False, "None": None}[text]
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parameter_names(path: Path) -> list[str]:
    """The names the cell tagged ``parameters`` of notebook ``path`` assigns, in order."""
    try:
        nb = json.loads(Path(path).read_text())
        cells = nb["cells"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ConfigError(f"{path} is not a readable notebook ({type(err).__name__}: "
                          f"{str(err).strip().splitlines()[0] if str(err).strip() else ''})") from None
    for cell in cells:
        if "parameters" in (cell.get("metadata") or {}).get("tags", []):
            source = cell.get("source", "")
            source = "".join(source) if isinstance(source, list) else source
            try:
                return assigned_names(source)
            except SyntaxError as err:
                raise ConfigError(f"the parameters cell of {path} is not valid Python (line {err.lineno}: {err.msg})") from None
    return []


def check_parameters(paths, params: dict) -> None:
    """One line, before anything runs, when a notebook's ``parameters`` cell lacks a name of ``params``."""
    for path in paths:
        try:
            known = parameter_names(path)
        except ConfigError:
            continue  # a damaged notebook: its run below fails and is reported, the others still run
        unknown = [name for name in params if name not in known]
        if unknown:
            have = f"its parameters: {', '.join(known)}" if known else "it has no cell tagged 'parameters'"
            raise ConfigError(f"unknown notebook parameter(s) {', '.join(unknown)} for {path.stem}; {have}")


def hide_injected_cells(path: Path) -> None:
    """Tag papermill's ``injected-parameters`` cell with ``remove-cell`` (hidden in the book)."""
    nb = json.loads(path.read_text())
    changed = False
    for cell in nb["cells"]:
        tags = cell.setdefault("metadata", {}).setdefault("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            tags.append("remove-cell")
            changed = True
    if changed:
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


#: notebook parameters that change which runs the chapters load: a book run given one of
#: them does not rewrite the manifest of ``advlit grid``
CHANGES_LOADS = ("epochs", "seeds", "eps")


def records_manifest(params: dict) -> bool:
    """Whether a run of the book's own chapters with ``params`` records what they load in
    ``results/<profile>/manifest.json`` (:mod:`advlit.grid`): yes unless a parameter of
    :data:`CHANGES_LOADS` is given, or the notebooks are not the book's (a test's folder)."""
    if Path(NOTEBOOK_DIR).resolve() != (REPO_DIR / "notebooks").resolve():
        return False
    return not any(params.get(name) is not None for name in CHANGES_LOADS)


def run_notebooks(profile: str = "cpu", only=None, output_dir=None, extra: dict | None = None,
                  scorecard: bool = True, manifest: bool | None = None) -> list[str]:
    """Run every notebook at ``profile``; return the names of those that failed. Then
    (``scorecard=True``) write the scorecard of the landing page and print the summary.

    Each chapter's loads (:func:`advlit.grid.note_load`) are written into the manifest of
    ``advlit grid`` in the results folder, replacing that chapter's entry when it ran
    without failing (``manifest``: ``None`` decides by :func:`records_manifest`)."""
    import papermill as pm

    from advlit.grid import LOAD_LOG_ENV, read_load_log, update_manifest

    check_profile(profile)
    if output_dir is None and profile != "cpu":
        output_dir = REPO_DIR / "results" / profile / "notebooks"
    paths = notebooks(only)
    params = {"profile": profile, **(extra or {})}
    check_parameters(paths, params)
    os.environ.setdefault("ADVLIT_PROGRESS", "0")
    # the kernels inherit this environment: a non-inline backend (e.g. MPLBACKEND=Agg, common
    # on headless machines) would make every plt.show() a no-op and the book figure-less
    if "inline" not in os.environ.get("MPLBACKEND", "inline"):
        os.environ.pop("MPLBACKEND")
    given = params.get("results_dir")  # as the chapters read it: relative to the notebooks' folder
    given = NOTEBOOK_DIR / given if given and not Path(given).is_absolute() else given
    results_dir = experiments.results_dir_for(profile, given)
    before, start = record_state(results_dir), time.perf_counter()
    failures, timings, loads = [], {}, {}
    record_loads = records_manifest(params) if manifest is None else manifest
    log_dir = Path(tempfile.mkdtemp(prefix="advlit-loads-")) if record_loads else None
    previous_log = os.environ.pop(LOAD_LOG_ENV, None)
    bar = tqdm(paths, desc=f"notebooks ({profile})", unit="nb")
    try:
        for path in bar:
            bar.set_postfix_str(path.stem)
            target = Path(output_dir) / path.name if output_dir else path
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.stem}.running.ipynb")
            if log_dir is not None:  # the kernel inherits it: advlit.experiments.run logs every load there
                os.environ[LOAD_LOG_ENV] = str(log_dir / f"{path.stem}.jsonl")
            t0 = time.perf_counter()
            try:
                pm.execute_notebook(str(path), str(tmp), parameters=params, cwd=str(NOTEBOOK_DIR),
                                    progress_bar=False, kernel_name="python3", extra_arguments=list(KERNEL_ARGS))
                tmp.replace(target)
                hide_injected_cells(target)
                if log_dir is not None:
                    loads[path.stem] = read_load_log(log_dir / f"{path.stem}.jsonl")
            except Exception as err:  # keep going: report every failure at the end
                failures.append(path.stem)
                last = (str(err).strip().splitlines() or [""])[-1]
                tqdm.write(f"FAILED {path.stem}: {type(err).__name__}: {last[:300]}")
                if tmp.exists():
                    tmp.replace(target.with_name(f"{target.stem}.failed.ipynb"))
            timings[path.stem] = time.perf_counter() - t0
    finally:
        os.environ.pop(LOAD_LOG_ENV, None)
        if previous_log is not None:
            os.environ[LOAD_LOG_ENV] = previous_log
        if log_dir is not None:
            shutil.rmtree(log_dir, ignore_errors=True)
    manifest_path = update_manifest(results_dir, profile, loads, chapters=[p.stem for p in notebooks()]) \
        if loads else None
    for name, secs in timings.items():
        status = "FAILED" if name in failures else "ok"
        print(f"{name:40s} {status:6s} {secs:7.1f} s")
    if scorecard:
        from advlit.scorecard import write_scorecard

        card = write_scorecard({profile: given})
        from advlit.bench import write_bench_page

        # beside the scorecard (book/_generated/bench.md), from results/*/bench_*.json; never measures
        write_bench_page(md_path=card.parent / "bench.md")
        from advlit.precision import write_autocast_page

        write_autocast_page(md_path=card.parent / "autocast.md")  # the per-method bf16 autocast table
    trained, reused = record_changes(before, record_state(results_dir))
    where = _shown(Path(output_dir) if output_dir else NOTEBOOK_DIR)
    print(f"{len(paths) - len(failures)} of {len(paths)} notebooks ran in {_duration(time.perf_counter() - start)}"
          + (f" (FAILED: {', '.join(failures)})" if failures else "")
          + f"; executed notebooks in {where}; run records in {_shown(results_dir)}: {trained} trained, {reused} reused (left unchanged)"
          + (f"; loads recorded in {_shown(manifest_path.parent)}{manifest_path.name}" if manifest_path else "")
          + (f"; scorecard {_shown(card.parent)}{card.name}" if scorecard else "")
          + "; HTML: jupyter-book build . -> _build/html/index.html")
    return failures
