"""Execute the book's notebooks with papermill (``advlit book run``).

The ``cpu`` profile executes ``notebooks/*.ipynb`` in place (the executed notebooks are
the book's chapters and nbval's reference outputs); other profiles write to
``results/<profile>/notebooks/`` unless told otherwise. A failing notebook is reported
and the others still run. The papermill-injected parameters cell is tagged
``remove-cell`` so the book never shows it.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from tqdm.auto import tqdm

from advlit.experiments import check_profile
from advlit.results import REPO_DIR

NOTEBOOK_DIR = REPO_DIR / "notebooks"


def notebooks(only=None) -> list[Path]:
    """The chapter notebooks in book order (file names start with a two-digit number)."""
    paths = sorted(p for p in NOTEBOOK_DIR.glob("*.ipynb") if not p.name.startswith("_"))
    if only:
        wanted = set(only)
        unknown = wanted - {p.stem for p in paths}
        if unknown:
            from advlit.utils import ConfigError

            raise ConfigError(f"unknown notebook(s) {', '.join(sorted(unknown))}; have {', '.join(p.stem for p in paths)}")
        paths = [p for p in paths if p.stem in wanted]
    return paths


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


def run_notebooks(profile: str = "cpu", only=None, output_dir=None, extra: dict | None = None) -> list[str]:
    """Run every notebook at ``profile``; return the names of those that failed."""
    import papermill as pm

    check_profile(profile)
    if output_dir is None and profile != "cpu":
        output_dir = REPO_DIR / "results" / profile / "notebooks"
    paths = notebooks(only)
    params = {"profile": profile, **(extra or {})}
    os.environ.setdefault("ADVLIT_PROGRESS", "0")
    # the kernels inherit this environment: a non-inline backend (e.g. MPLBACKEND=Agg, common
    # on headless machines) would make every plt.show() a no-op and the book figure-less
    if "inline" not in os.environ.get("MPLBACKEND", "inline"):
        os.environ.pop("MPLBACKEND")
    failures, timings = [], {}
    bar = tqdm(paths, desc=f"notebooks ({profile})", unit="nb")
    for path in bar:
        bar.set_postfix_str(path.stem)
        target = Path(output_dir) / path.name if output_dir else path
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.stem}.running.ipynb")
        t0 = time.perf_counter()
        try:
            pm.execute_notebook(str(path), str(tmp), parameters=params, cwd=str(NOTEBOOK_DIR),
                                progress_bar=False, kernel_name="python3")
            tmp.replace(target)
            hide_injected_cells(target)
        except Exception as err:  # keep going: report every failure at the end
            failures.append(path.stem)
            tqdm.write(f"FAILED {path.stem}: {type(err).__name__}: {str(err).strip().splitlines()[-1][:300]}")
            if tmp.exists():
                tmp.replace(target.with_name(f"{target.stem}.failed.ipynb"))
        timings[path.stem] = time.perf_counter() - t0
    for name, secs in timings.items():
        status = "FAILED" if name in failures else "ok"
        print(f"{name:40s} {status:6s} {secs:7.1f} s")
    print(f"{len(paths) - len(failures)} of {len(paths)} notebooks ran" + (f"; failed: {', '.join(failures)}" if failures else ""))
    return failures
