"""Re-stamp the committed records without retraining: to a new fingerprint scheme, or after a neutral change.

Without ``--same-scheme``: move the records to a new code-fingerprint *scheme*.

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

``--same-scheme``: the scheme is unchanged and the *code* changed in a way that leaves the
training results alone (a new option whose default path is the old one, a refactoring). For
every record the fingerprint is recomputed by the code of ``--old`` itself (a checkout of
``--old`` made with ``git archive`` in a temporary folder, imported by a subprocess), and a
record is re-stamped only if

1. its stored ``"code"`` equals that fingerprint (the record was made by ``--old``'s code), and
2. every part the fingerprint hashes for that run (core files, method files, the dataset's
   loader, the model's files, the registry functions and entries) is identical as code in
   ``--old`` and in the working tree, except the files listed in ``--allow``; a part that
   exists on one side only counts as changed.

Both sides also prove that they hash what this tool compares: each rebuilds its own
fingerprint from the parts and must get :func:`~advlit.results.code_fingerprint`'s value
(else the scheme changed: use the mode above). The toy runs of chapter 06 are checked the same
way with ``toy_fingerprint``, their own part being the whole of
``advlit/analysis/decision_boundary.py``. Each run is reported as ``restamped``,
``current`` or ``kept (why)``; ``--dry-run`` writes nothing. Show first that the change is
neutral (``tools/check_neutral_change.py``), then

    python tools/restamp_records.py --same-scheme --old 392c640 --allow advlit/schedules.py advlit/config.py
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from contextlib import contextmanager
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
    parser.add_argument("--old", required=True, help="the commit whose code (or fingerprint scheme) stamped the records")
    parser.add_argument("--allow", nargs="*", default=[], help="files whose change leaves training results alone")
    parser.add_argument("--results", default=str(REPO / "results" / "cpu"))
    parser.add_argument("--same-scheme", action="store_true",
                        help="the scheme is unchanged, the code changed neutrally: fingerprint with --old's own code")
    parser.add_argument("--dry-run", action="store_true", help="with --same-scheme: report only, write nothing")
    args = parser.parse_args(argv)
    if args.same_scheme:
        return same_scheme(args.old, args.allow, Path(args.results), dry_run=args.dry_run)
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


# ------------------------------------------------------------- --same-scheme
#: run by ``python -c`` inside a tree (PYTHONPATH = the tree): reads a JSON list of items
#: (``{"config": {...}}`` for a run, ``{"toy": spec}`` for a toy run of chapter 06) from the
#: file ``argv[1]`` and writes, per item, the tree's fingerprint, the sha256 of the code of
#: every part it hashes, and whether the parts rebuild the fingerprint, to ``argv[2]``
PARTS_WORKER = r"""
import hashlib, json, sys, textwrap, traceback
from pathlib import Path
import advlit
from advlit import results
from advlit.config import RunConfig

assert Path(advlit.__file__).resolve().parent == Path(sys.argv[3]).resolve(), advlit.__file__
PKG = results.PACKAGE_DIR
sha = lambda text: hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


def code(path):
    return results._code_only(Path(path).read_text())


def parts_of(target):
    spec = target if isinstance(target, str) else target.method
    files = {p.resolve() for pattern in results.CORE_FILES for p in PKG.glob(pattern)}
    files.update(results._method_files(spec))
    parts, digest = {}, hashlib.sha256()
    for path in sorted(files):
        rel = str(path.relative_to(PKG))
        digest.update(rel.encode())
        digest.update(code(path).encode())
        parts["advlit/" + rel] = sha(code(path))
    if not isinstance(target, str):
        from advlit.data import dataset_code, dataset_info
        from advlit.models import model_code

        info = dataset_info(target.dataset)
        inner = hashlib.sha256()
        for owner, sources in (("advlit/data/__init__.py", dataset_code(target.dataset)),
                               ("advlit/models/__init__.py", model_code(target.model or info.default_model,
                                                                        info.num_classes, info.input_shape,
                                                                        **target.model_args))):
            for i, source in enumerate(sources):
                if isinstance(source, Path):
                    rel = str(source.relative_to(PKG))
                    inner.update(rel.encode())
                    inner.update(code(source).encode())
                    parts["advlit/" + rel] = sha(code(source))
                elif isinstance(source, str):
                    text = results._code_only(textwrap.dedent(source))
                    inner.update(text.encode())
                    parts[f"{owner}#{i}"] = sha(text)
                else:
                    inner.update(source)
                    parts[f"{owner}#{i}"] = sha(source)
        digest.update(inner.digest())
    return digest.hexdigest()[:12], parts


out = []
for item in json.loads(Path(sys.argv[1]).read_text()):
    try:
        if "toy" in item:
            from advlit.analysis import decision_boundary as toy

            rebuilt, parts = parts_of(item["toy"])
            same = rebuilt == results.code_fingerprint(item["toy"])
            toy_file = Path(toy.__file__).resolve()
            parts["advlit/" + str(toy_file.relative_to(PKG))] = sha(code(toy_file))
            out.append({"fingerprint": toy.toy_fingerprint(item["toy"]), "parts": parts, "same_scheme": same})
        else:
            config = RunConfig.from_dict(item["config"])
            rebuilt, parts = parts_of(config)
            fingerprint = results.code_fingerprint(config)
            out.append({"fingerprint": fingerprint, "parts": parts, "same_scheme": rebuilt == fingerprint})
    except Exception as err:  # reported per item: the tree cannot fingerprint it
        out.append({"error": f"{type(err).__name__}: {err}"})
Path(sys.argv[2]).write_text(json.dumps(out))
"""


@contextmanager
def commit_tree(commit: str):
    """A temporary folder holding ``advlit/`` as it is in ``commit`` (``git archive``)."""
    with tempfile.TemporaryDirectory(prefix="advlit-old-") as tmp:
        archive = Path(tmp) / "tree.tar"
        subprocess.run(["git", "archive", "--format=tar", "-o", str(archive), commit, "advlit"], cwd=REPO, check=True)
        with tarfile.open(archive) as tar:
            tar.extractall(Path(tmp) / "tree", filter="data")
        archive.unlink()
        yield Path(tmp) / "tree"


def tree_env(tree: Path) -> dict:
    """The environment of a subprocess that imports ``advlit`` from ``tree``, single-threaded."""
    return {**os.environ, "PYTHONPATH": str(tree), "ADVLIT_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def run_in_tree(tree: Path, script: str, payload) -> list:
    """Run ``script`` (``python -c``, in ``tree``, importing ``advlit`` from it) on ``payload``
    (a JSON value, the file ``argv[1]``); return the JSON it writes to ``argv[2]``."""
    with tempfile.TemporaryDirectory(prefix="advlit-io-") as io:
        src, dst = Path(io) / "in.json", Path(io) / "out.json"
        src.write_text(json.dumps(payload))
        done = subprocess.run([sys.executable, "-c", script, str(src), str(dst), str(tree / "advlit")], cwd=tree,
                              env=tree_env(tree), capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"the worker failed in {tree}:\n{done.stderr[-3000:]}")
        return json.loads(dst.read_text())


def same_scheme_verdict(stored: str | None, old: dict, new: dict, allow) -> tuple[str, str]:
    """``(verdict, why)`` for one run: ``restamped`` (to ``new["fingerprint"]``), ``current``
    or ``kept``. ``old`` / ``new``: the worker's answers for the run in ``--old`` and here."""
    for side, answer in (("--old", old), ("the working tree", new)):
        if "error" in answer:
            return "kept", f"{side} cannot fingerprint it ({answer['error']})"
        if not answer["same_scheme"]:
            return "kept", f"{side}'s code_fingerprint hashes other parts than this tool compares (the scheme changed)"
    if stored != old["fingerprint"]:
        return "kept", f"its stamp {stored} is not --old's fingerprint {old['fingerprint']}"
    allowed = {str(a).lstrip("./") for a in allow}
    changed = sorted(label for label in set(old["parts"]) | set(new["parts"])
                     if old["parts"].get(label) != new["parts"].get(label) and label.split("#")[0] not in allowed)
    if changed:
        return "kept", "changed: " + ", ".join(changed)
    if new["fingerprint"] == stored:
        return "current", "same fingerprint"
    return "restamped", f"{stored} -> {new['fingerprint']}"


def same_scheme(commit: str, allow, results_dir: Path, dry_run: bool = False) -> int:
    """Re-stamp the records of ``results_dir`` made by ``commit``'s code (see the module docstring)."""
    runs = sorted(results_dir.glob("*/record.json"))
    toys = sorted(results_dir.glob("piat_toy/*.json"))
    records = [json.loads(p.read_text()) for p in runs]
    stored_toys = [json.loads(p.read_text()) for p in toys]
    items = [{"config": r["config"]} for r in records] + \
            [{"toy": t.get("spec") or p.stem.split("_s")[0]} for p, t in zip(toys, stored_toys)]
    with commit_tree(commit) as tree:
        old = run_in_tree(tree, PARTS_WORKER, items)
    new = run_in_tree(REPO, PARTS_WORKER, items)
    mapping: dict[tuple[str, str], str] = {}  # (config hash, old code) -> new code
    counts: dict[str, int] = {}
    for k, (path, data) in enumerate([*zip(runs, records), *zip(toys, stored_toys)]):
        verdict, why = same_scheme_verdict(data.get("code"), old[k], new[k], allow)
        counts[verdict] = counts.get(verdict, 0) + 1
        name = path.parent.name if path.name == "record.json" else f"piat_toy/{path.name}"
        print(f"{verdict:9} {name}: {why}")
        if verdict != "restamped" or dry_run:
            continue
        before, data["code"] = data["code"], new[k]["fingerprint"]
        _write_like(path, data)
        if path.name == "record.json":
            mapping[(data["config_hash"], before)] = data["code"]
            weights = path.parent / results.WEIGHTS
            if weights.exists():
                state = torch.load(weights, map_location="cpu", weights_only=False)
                if state["code"] == before:
                    state["code"] = data["code"]
                    torch.save(state, weights)
                    print(f"          {name}/{results.WEIGHTS}: re-stamped")
    print(", ".join(f"{n} {v}" for v, n in sorted(counts.items())) + (" (dry run: nothing written)" if dry_run else ""))
    if not dry_run:
        for cache in sorted(results_dir.glob("*.json")):
            data = json.loads(cache.read_text())
            count = _restamp_keys(data.get("key"), mapping)
            if count:
                _write_like(cache, data)
                print(f"{cache.name}: {count} keys re-stamped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
