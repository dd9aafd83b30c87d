"""The smoke run of every chapter (issue 16): each notebook of the book executed by papermill at
``profile="smoke"``, i.e. the ``gpu`` profile's experiments and code path (the real CIFAR-10
loader reading synthetic files in the real format, PreActResNet-18 / ResNet-18 / WRN, the
papers' attacks and schedules, every cell of the chapter) with the reductions of
:mod:`advlit.smoke` (one epoch, a few dozen images, narrow networks, fewer attack restarts,
AutoAttack's APGD stages only), on CPU. A chapter that fails here fails at the gpu profile.

The records go to a temporary folder (one per chapter, so that two chapters running at once
never write the same run). The chapters run ``ADVLIT_SMOKE_WORKERS`` at a time (default 2,
the cores of the book's machine) in their own kernels; each test waits for its own chapter.
Per-chapter times are printed in the closing summary.
"""
from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from advlit.book import KERNEL_ARGS, NOTEBOOK_DIR, notebooks

#: the chapters (book.notebooks() leaves out the files of runs in progress or failed)
CHAPTERS = [p.stem for p in notebooks()]
#: synthetic CIFAR-10: 44 training images (3 batches of the smoke's 16), 4 validation, 32 test
DATA = dict(train=48, test=32)
WORKERS = int(os.environ.get("ADVLIT_SMOKE_WORKERS", "2"))
#: seconds a chapter may take (each takes 1-4 minutes on one busy core)
TIMEOUT = 900
SUMMARY: list[str] = []  # printed by conftest.pytest_terminal_summary


def _execute(name: str, data_root: Path, out_dir: Path) -> float:
    import papermill as pm

    t0 = time.perf_counter()
    results = out_dir / "results" / name
    pm.execute_notebook(str(NOTEBOOK_DIR / f"{name}.ipynb"), str(out_dir / f"{name}.ipynb"),
                        parameters={"profile": "smoke", "data_root": str(data_root), "results_dir": str(results)},
                        cwd=str(NOTEBOOK_DIR), kernel_name="python3", progress_bar=False,
                        extra_arguments=list(KERNEL_ARGS), execution_timeout=TIMEOUT)
    return time.perf_counter() - t0


@pytest.fixture(scope="session")
def smoke_runs(request, tmp_path_factory):
    """Start every selected chapter's smoke run (``WORKERS`` at a time); ``{chapter: future}``."""
    from advlit.data import write_fake_dataset

    root = tmp_path_factory.mktemp("smoke")
    data_root = root / "data"
    write_fake_dataset("cifar10", data_root, seed=0, **DATA)
    os.environ.setdefault("ADVLIT_PROGRESS", "0")
    os.environ.setdefault("ADVLIT_THREADS", "1")
    os.environ.setdefault("OMP_NUM_THREADS", os.environ["ADVLIT_THREADS"])
    selected = [item.callspec.params["chapter"] for item in request.session.items
                if getattr(item, "originalname", None) == "test_smoke_chapter" and hasattr(item, "callspec")]
    pool = ThreadPoolExecutor(max_workers=max(1, WORKERS))
    futures = {name: pool.submit(_execute, name, data_root, root) for name in dict.fromkeys(selected)}
    yield futures, root
    for future in futures.values():
        future.cancel()
    pool.shutdown(wait=True)


@pytest.mark.slow
@pytest.mark.timeout(TIMEOUT * len(CHAPTERS))  # a test may wait for the chapters queued before its own
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_smoke_chapter(chapter, smoke_runs):
    futures, root = smoke_runs
    seconds = futures[chapter].result()  # a failing cell raises papermill's error, with the cell and traceback
    SUMMARY.append(f"smoke run {chapter}: {seconds:.0f} s ({root / (chapter + '.ipynb')})")
