"""Move the committed records to a new code-fingerprint *scheme* without retraining them.

A record is current while its ``"code"`` equals :func:`advlit.results.code_fingerprint` of
its configuration. When the scheme itself changes (which files a fingerprint covers), the
code that made the records has not changed, but every stored fingerprint stops matching.
This tool re-stamps them, and only where it can prove the record was made by the code of
the commit ``--old`` (the commit whose scheme the records were stamped with):

1. the stored ``"code"`` equals the fingerprint that ``--old``'s scheme gives over the
   files *as they are in* ``--old`` (read with ``git show``), and
2. every file the new scheme hashes for that run is identical, as code (docstrings and
   comments aside), in ``--old`` and in the working tree, except the files listed in
   ``--allow`` (changes that provably leave training results alone: say why in the commit).

Records that fail either test keep their stamp (they will be retrained). Run records,
committed weights (``weights.pt``), the analysis caches keyed by ``[config hash, code,
...]`` and the toy runs of chapter 06 are updated.

    python tools/restamp_records.py --old 7003c0a --allow advlit/train.py advlit/results.py
"""
from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from advlit import results  # noqa: E402
from advlit.config import RunConfig  # noqa: E402

#: the scheme before 2026-12-03: every file of data/ and models/ was core
OLD_CORE = ("config.py", "train.py", "evaluate.py", "schedules.py", "utils.py",
            "data/*.py", "models/*.py", "attacks/*.py", "methods/base.py", "methods/registry.py")


def git_show(commit: str, path: str) -> str | None:
    out = subprocess.run(["git", "show", f"{commit}:{path}"], cwd=REPO, capture_output=True, text=True)
    return out.stdout if out.returncode == 0 else None


def git_files(commit: str) -> list[str]:
    out = subprocess.run(["git", "ls-tree", "-r", "--name-only", commit, "advlit"], cwd=REPO,
                         capture_output=True, text=True, check=True)
    return out.stdout.split()


def old_fingerprint(commit: str, spec: str) -> str:
    """``code_fingerprint(spec)`` as the old scheme computed it, over ``commit``'s files."""
    from fnmatch import fnmatch

    names = [f[len("advlit/"):] for f in git_files(commit)]
    chosen = {n for n in names if any(fnmatch(n, pattern) and n.count("/") == pattern.count("/")
                                      for pattern in OLD_CORE)}
    chosen.update(str(p.relative_to(results.PACKAGE_DIR)) for p in results._method_files(spec))
    digest = hashlib.sha256()
    for name in sorted(chosen):
        digest.update(name.encode())
        digest.update(results._code_only(git_show(commit, f"advlit/{name}")).encode())
    return digest.hexdigest()[:12]


def new_scheme_files(config: RunConfig) -> list[Path]:
    """The files the new scheme hashes for ``config`` (core, methods, dataset, model)."""
    from advlit.data import dataset_code, dataset_info
    from advlit.models import model_code

    files = {p.resolve() for pattern in results.CORE_FILES for p in results.PACKAGE_DIR.glob(pattern)}
    files.update(results._method_files(config.method))
    info = dataset_info(config.dataset)
    for source in (*dataset_code(config.dataset),
                   *model_code(config.model or info.default_model, info.num_classes, info.input_shape,
                               **config.model_args)):
        if isinstance(source, Path):
            files.add(source)
    # the dispatching functions' sources live in the two registries
    files.update({results.PACKAGE_DIR / "data/__init__.py", results.PACKAGE_DIR / "models/__init__.py"})
    return sorted(files)


def unchanged(commit: str, path: Path, allow: set[str]) -> bool:
    rel = str(path.relative_to(REPO))
    if rel in allow:
        return True
    before = git_show(commit, rel)
    if before is None:
        return False
    if rel.endswith("__init__.py"):  # registries: only the functions the fingerprint reads must match
        return _registry_functions_unchanged(before, path.read_text())
    return results._code_only(before) == results._code_only(path.read_text())


def _registry_functions_unchanged(before: str, after: str) -> bool:
    import ast

    def parts(source: str) -> dict:
        tree = ast.parse(source)
        keep = {}
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in ("get_model", "get_dataset", "_Entry",
                                                                                  "_image_channels", "_check_shape"):
                keep[node.name] = results._code_only(ast.unparse(node))
            if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") in ("_REGISTRY", "_INFOS"):
                keep[node.target.id] = ast.dump(node.value)
        return keep

    old, new = parts(before), parts(after)
    return all(new.get(k) == v for k, v in old.items())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", required=True, help="the commit whose fingerprint scheme stamped the records")
    parser.add_argument("--allow", nargs="*", default=[], help="files whose change leaves training results alone")
    parser.add_argument("--results", default=str(REPO / "results" / "cpu"))
    args = parser.parse_args(argv)
    allow = set(args.allow)
    mapping: dict[tuple[str, str], str] = {}  # (config hash, old code) -> new code
    old_by_spec: dict[str, str] = {}
    done = kept = 0
    for path in sorted(Path(args.results).glob("*/record.json")):
        record = json.loads(path.read_text())
        config = RunConfig.from_dict(record["config"])
        old = old_by_spec.setdefault(config.method, old_fingerprint(args.old, config.method))
        changed = [str(f.relative_to(REPO)) for f in new_scheme_files(config) if not unchanged(args.old, f, allow)]
        if record.get("code") != old or changed:
            print(f"kept  {path.parent.name}: {'stamp is not the old code' if record.get('code') != old else changed}")
            kept += 1
            continue
        new = results.code_fingerprint(config)
        mapping[(record["config_hash"], old)] = new
        record["code"] = new
        _write_like(path, record)
        weights = path.parent / results.WEIGHTS
        if weights.exists():
            state = torch.load(weights, map_location="cpu", weights_only=False)
            if state["code"] == old:
                state["code"] = new
                torch.save(state, weights)
        done += 1
    print(f"re-stamped {done} records, kept {kept}")
    for cache in sorted(Path(args.results).glob("*.json")):
        data = json.loads(cache.read_text())
        count = _restamp_keys(data.get("key"), mapping)
        if count:
            _write_like(cache, data)
            print(f"{cache.name}: {count} keys re-stamped")
    _restamp_toys(Path(args.results), args.old, allow)
    return 0


def _write_like(path: Path, data) -> None:
    """Rewrite a JSON file in the layout it had (indented or compact, final newline or not)."""
    text = path.read_text()
    out = json.dumps(data, indent=1) if text.startswith("{\n") else json.dumps(data)
    path.write_text(out + "\n" if text.endswith("\n") else out)


def _restamp_keys(node, mapping) -> int:
    """Replace ``[config hash, old code, ...]`` lists inside an analysis cache's key."""
    count = 0
    if isinstance(node, dict):
        return sum(_restamp_keys(v, mapping) for v in node.values())
    if isinstance(node, list):
        if len(node) >= 2 and isinstance(node[0], str) and (node[0], node[1]) in mapping:
            node[1] = mapping[(node[0], node[1])]
            return 1
        count = sum(_restamp_keys(v, mapping) for v in node)
    return count


def _restamp_toys(results_dir: Path, commit: str, allow: set[str]) -> None:
    """The toy runs of chapter 06: ``toy_fingerprint`` = hash(core+methods fingerprint, own code)."""
    from advlit.analysis import decision_boundary as toy

    core = [p.resolve() for pattern in results.CORE_FILES for p in results.PACKAGE_DIR.glob(pattern)]
    for path in sorted(results_dir.glob("piat_toy/*.json")):
        stored = json.loads(path.read_text())
        spec = stored.get("spec") or path.stem.split("_s")[0]
        files = core + results._method_files(spec)
        if any(not unchanged(commit, f, allow) for f in files):
            print(f"kept  {path.name}: code changed")
            continue
        real = results.code_fingerprint
        try:
            results.code_fingerprint = lambda s: old_fingerprint(commit, s)
            old = toy.toy_fingerprint(spec)
        finally:
            results.code_fingerprint = real
        if stored.get("code") != old:
            print(f"kept  {path.name}: stamp is not the old code")
            continue
        stored["code"] = toy.toy_fingerprint(spec)
        _write_like(path, stored)
        print(f"re-stamped {path.name}")


if __name__ == "__main__":
    raise SystemExit(main())
