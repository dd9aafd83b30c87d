"""Gradient masking, judged on the same images: PGD on AutoAttack's subset.

The masking signal of the comparison chapter (Athalye et al. 2018; Croce & Hein 2020) is
AutoAttack accuracy falling well below PGD accuracy: PGD follows the model's gradients,
AutoAttack's targeted and gradient-free stages need not. The two numbers must come from the
same images. At the ``cpu`` profile they do not: every attack of the final evaluation runs on
the whole test split (397 digits) but AutoAttack on its first ``aa_subset`` (100), and a
model's PGD-50 accuracy on the first 100 digits need not be its accuracy on all 397 (the
comparison chapter prints the difference for every method; a few points move a gap across
the chapter's 5-point threshold).

:func:`pgd_on_aa_subset` evaluates the PGD attack again on AutoAttack's images (same
attack, step, seed and checkpoint as the final evaluation), from the runs' weights. Where the
final evaluation already ran both on the same images (``aa_subset`` covers the evaluated
split, as at the ``gpu`` profile) it reads the records and evaluates nothing.
"""
from __future__ import annotations

from pathlib import Path

CACHE = "compare_masking.json"


def same_images(config) -> bool:
    """Whether the final evaluation of ``config`` ran AutoAttack on the images of its other
    attacks (``aa_subset`` unset, or not smaller than ``final_subset``)."""
    if config.aa_subset is None:
        return True
    return config.final_subset is not None and config.aa_subset >= config.final_subset


def _weights_on_disk(record: dict) -> bool:
    from advlit.results import WEIGHTS, stored_weights
    from advlit.train import CHECKPOINT

    run_dir = Path(record["run_dir"])
    return ((run_dir / WEIGHTS).exists() and stored_weights(run_dir, record) is not None) or (run_dir / CHECKPOINT).exists()


def _evaluate_again(chapter, name: str, seed: int, attack: str, checkpoints) -> dict[str, float]:
    from advlit.data import get_dataset
    from advlit.evaluate import evaluate
    from advlit.results import load_model

    config = chapter.config(name, seed=seed)
    record = chapter.run(name, seeds=[seed])[0]
    if not _weights_on_disk(record):  # only the record is committed: train again for the weights
        record = chapter.run(name, seeds=[seed], need_model=True)[0]
    test = get_dataset(config.dataset, "test", root=config.data_root)
    out = {}
    for which in checkpoints:
        model = load_model(record, which, device=config.device)
        out[which] = evaluate(model, test, config.eps, attacks=[attack], alpha_ratio=config.eval_alpha_ratio,
                              subset=config.aa_subset, seed=config.seed)[attack]
    return out


def _cache_code() -> str:
    """The code fingerprint a cache file is made by: this module's and the evaluation's."""
    from advlit.evaluate import evaluate
    from advlit.results import module_fingerprint

    return module_fingerprint(pgd_on_aa_subset, evaluate)


def _run_key(config) -> list:
    from advlit.results import code_fingerprint

    return [config.hash(), code_fingerprint(config), config.aa_subset]


def _read_cache(path: Path, attack: str, checkpoints) -> dict:
    """The runs stored in the cache file ``path`` for ``attack`` and ``checkpoints`` by the
    current code of this module and of the evaluation (``{}`` when none)."""
    import json

    if not path.exists():
        return {}
    try:
        stored = json.loads(path.read_text())
    except ValueError:
        return {}
    same = (stored.get("attack"), stored.get("checkpoints"), stored.get("code")) == \
        (attack, list(checkpoints), _cache_code())
    return stored.get("runs", {}) if same else {}


def stored_accuracy(results_dir, configs, attack: str, checkpoints=("best", "last"), cache: str = CACHE) -> dict:
    """``{run name: {checkpoint: accuracy}}`` for each configuration of ``configs`` that the
    cache of :func:`pgd_on_aa_subset` in ``results_dir`` holds for this very run (same
    configuration hash, code fingerprint and AutoAttack subset); the others are left out.
    Evaluates nothing (``advlit compare``)."""
    from advlit.results import run_name

    runs = _read_cache(Path(results_dir) / cache, attack, checkpoints)
    out = {}
    for config in configs:
        entry = runs.get(run_name(config))
        if entry is not None and entry["key"] == _run_key(config):
            out[run_name(config)] = entry["value"]
    return out


def pgd_on_aa_subset(chapter, names, attack: str, checkpoints=("best", "last"), cache: str | None = CACHE) -> dict:
    """``{run name: {checkpoint: accuracy}}``: the accuracy (%) under ``attack`` (e.g.
    ``"pgd-50"``) of each run of the experiments ``names`` (the chapter's seeds) on the
    images its AutoAttack ran on.

    Runs whose final evaluation used the same images for both (:func:`same_images`) are read
    from their records. The others are evaluated again from their weights (the checkpoints
    left by training, else retrained for them) and stored in ``<results_dir>/<cache>``, one
    entry per run with its configuration hash and code fingerprint: a run is evaluated again
    only when it changed, and the book stores the numbers once, so every build shows the same
    table whatever the processor.
    """
    from advlit.results import run_name

    out: dict[str, dict] = {}
    again = []
    for name in names:
        for seed in chapter.seeds:
            config = chapter.config(name, seed=seed)
            if same_images(config):
                record = chapter.run(name, seeds=[seed])[0]
                out[run_name(config)] = {ck: record["final"][ck][attack] for ck in checkpoints}
            else:
                again.append((name, config))
    if not again:
        return out
    path = Path(chapter.results_dir) / cache if cache else None
    runs = _read_cache(path, attack, checkpoints) if path else {}
    new = []
    for name, config in again:
        entry = runs.get(run_name(config))
        if entry is None or entry["key"] != _run_key(config):
            new.append((config, _evaluate_again(chapter, name, config.seed, attack, checkpoints)))
            out[run_name(config)] = new[-1][1]
        else:
            out[run_name(config)] = entry["value"]
    if path and new:
        store_accuracy(chapter.results_dir, new, attack, checkpoints, cache)
    return out


def store_accuracy(results_dir, values, attack: str, checkpoints=("best", "last"), cache: str = CACHE) -> Path:
    """Add ``values`` (``[(config, {checkpoint: accuracy})]``) to the cache file of
    :func:`pgd_on_aa_subset` in ``results_dir``, each under its run name with its
    configuration hash and code fingerprint (a file made by other code starts afresh)."""
    import json

    from advlit.results import run_name

    path = Path(results_dir) / cache
    runs = _read_cache(path, attack, checkpoints)
    runs.update({run_name(c): {"key": _run_key(c), "value": v} for c, v in values})
    stored = {"attack": attack, "checkpoints": list(checkpoints),
              "code": _cache_code(), "runs": dict(sorted(runs.items()))}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(stored, indent=1))
    tmp.replace(path)
    return path
