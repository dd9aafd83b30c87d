"""The stand-in study (issue 14): choose the cpu stand-in model on the validation split.

Trains PGD-AT and FGSM-RS (step 2 eps and 1 eps) for each candidate on digits16 (eps 0.2,
cyclic LR, batch 128, the cpu profile's settings otherwise) through the package API and
writes the records to a scratch folder (never ``results/``), then prints one table row per
(candidate, seed). Finished runs are reloaded, so the script can be rerun to extend or
to print the table:

    ADVLIT_THREADS=1 OMP_NUM_THREADS=1 ADVLIT_PROGRESS=0 \
        python tools/standin_study.py --out /tmp/standin --candidates c1 c2 --seeds 0
    python tools/standin_study.py --out /tmp/standin --table-only
    python tools/standin_study.py --out /tmp/standin --bench 3 --candidates c1 c2 c3 c4

(``--bench N`` only times one training epoch of FGSM-RS and of PGD-AT per candidate,
interleaved, N times, and prints the minimum: the per-epoch seconds of the records are
taken on a shared machine and vary by 2x.)

Evaluation: validation PGD-20 on **all 200** validation images after every epoch (the cpu
profile uses the first 100; with 100 images one point is +-5 points of binomial noise,
too much for a 2-point plateau rule), and clean + PGD-20 on the full 397-image test
split for the last checkpoint.

Plateau (the definition used here): PGD-AT's validation PGD-20 has plateaued when the
best value over the last third of training (epochs > 2/3 E) is within 2 points of the
best value over the middle third (epochs E/3 .. 2E/3, i.e. 10..20 of 30). The slope of a
least-squares line over the last third (points per epoch) is printed as a second view.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

CANDIDATES = {
    "c1": ("small_cnn", {}),
    "c2": ("conv_net", {"channels": [32, 64], "pools": [False, True]}),
    "c3": ("conv_net", {"channels": [16, 32], "pools": [False, True]}),
    "c4": ("conv_net", {"channels": [24, 48], "pools": [False, True]}),
    "c5": ("conv_net", {"channels": [16, 32], "pools": [False, True], "hidden": 256}),
}
RUNS = {"pgd": ("pgd_at", None), "fgsm2": ("fgsm_rs", 2.0), "fgsm1": ("fgsm_rs", 1.0)}


def config(candidate: str, run: str, seed: int, epochs: int, lr: float):
    from advlit.config import RunConfig

    model, model_args = CANDIDATES[candidate]
    method, alpha_ratio = RUNS[run]
    return RunConfig(method=method, alpha_ratio=alpha_ratio, dataset="digits16", eps=0.2, model=model,
                     model_args=dict(model_args), epochs=epochs, batch_size=128, lr=lr, lr_schedule="cyclic",
                     device="cpu", seed=seed, val_attack="pgd-20", val_subset=None,
                     final_attacks=["clean", "pgd-20"], final_subset=None)


def run_dir(out: Path, candidate: str, run: str, seed: int, epochs: int, lr: float) -> Path:
    return out / f"{candidate}_{run}_s{seed}_e{epochs}_lr{lr:g}"


def train_one(out: Path, candidate: str, run: str, seed: int, epochs: int, lr: float) -> dict:
    from advlit.train import train

    folder = run_dir(out, candidate, run, seed, epochs, lr)
    done = folder / "done.json"
    if done.exists():
        return json.loads(done.read_text())
    t0 = time.perf_counter()
    resume = (folder / "checkpoint.pt").exists()  # an interrupted run continues where it stopped
    record = train(config(candidate, run, seed, epochs, lr), out_dir=folder, resume=resume, progress=False)
    record["wall_seconds"] = time.perf_counter() - t0
    done.write_text(json.dumps(record, default=float))
    print(f"[done] {folder.name}: {record['wall_seconds']:.0f} s, "
          f"last test PGD-20 {record['final']['last']['pgd-20']:.1f}", flush=True)
    return record


def plateau(curve: list[float]) -> tuple[bool, float, float]:
    """(plateaued, best of last third minus best of middle third, slope of last third)."""
    e = len(curve)
    mid = curve[e // 3 - 1: 2 * e // 3]  # epochs E/3 .. 2E/3 (10..20 of 30)
    last = curve[2 * e // 3:]  # epochs 2E/3+1 .. E (21..30 of 30)
    gain = max(last) - max(mid)
    xs = list(range(len(last)))
    mx, my = sum(xs) / len(xs), sum(last) / len(last)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, last)) / sum((x - mx) ** 2 for x in xs)
    return gain <= 2.0, gain, slope


def median(values):
    values = sorted(values)
    n = len(values)
    return (values[(n - 1) // 2] + values[n // 2]) / 2


def row(out: Path, candidate: str, seed: int, epochs: int, lr: float) -> str | None:
    records = {}
    for run in RUNS:
        done = run_dir(out, candidate, run, seed, epochs, lr) / "done.json"
        if done.exists():
            records[run] = json.loads(done.read_text())
    if not records:
        return None
    cells = [f"{candidate} s{seed} e{epochs} lr{lr:g}"]
    fgsm_secs = [r["seconds"] for k in ("fgsm2", "fgsm1") if k in records for r in records[k]["history"]]
    cells.append(f"{median(fgsm_secs):.2f}" if fgsm_secs else "-")
    pgd = records.get("pgd")
    if pgd:
        curve = [r["val_robust"] for r in pgd["history"]]
        ok, gain, slope = plateau(curve)
        val_secs = (pgd["wall_seconds"] - sum(r["seconds"] for r in pgd["history"])) / len(curve)
        cells += [f"{median([r['seconds'] for r in pgd['history']]):.2f}", f"{val_secs:.2f}",
                  " ".join(f"{v:.0f}" for v in curve), f"{pgd['final']['last']['pgd-20']:.1f}",
                  f"{pgd['final']['last']['clean']:.1f}",
                  f"{'yes' if ok else 'no'} ({gain:+.1f}, {slope:+.2f}/ep)"]
    else:
        cells += ["-"] * 6
    for key in ("fgsm2", "fgsm1"):
        if key in records:
            co = records[key]["overfitting"]
            cells.append(f"{co['epoch'] if co['detected'] else 'none'} ({records[key]['final']['last']['pgd-20']:.1f})")
        else:
            cells.append("-")
    return " | ".join(cells)


HEADER = ("candidate | s/FGSM ep | s/PGD-AT ep | s/val | PGD-AT val PGD-20 per epoch | last test PGD-20 | "
          "last test clean | plateau (gain, slope) | FGSM-RS 2eps collapse ep (last PGD-20) | 1eps collapse (last PGD-20)")


def bench(candidates: list[str], repeats: int) -> None:
    """Seconds per training epoch (no validation) of FGSM-RS and PGD-AT for each candidate,
    interleaved and repeated, the minimum over repeats (least disturbed by other load)."""
    from advlit.train import Trainer

    best: dict = {}
    for _ in range(repeats):
        for candidate in candidates:
            for run in ("fgsm2", "pgd"):
                trainer = Trainer(config(candidate, run, 0, 30, 0.1), progress=False)
                t0 = time.perf_counter()
                trainer.train_epoch(0)
                seconds = time.perf_counter() - t0
                best[candidate, run] = min(best.get((candidate, run), seconds), seconds)
    base = best.get(("c1", "fgsm2")), best.get(("c1", "pgd"))
    print("candidate | model args | s/FGSM-RS epoch | s/PGD-AT epoch | x small_cnn (FGSM, PGD)")
    for candidate in candidates:
        f, g = best[candidate, "fgsm2"], best[candidate, "pgd"]
        ratio = f"{f / base[0]:.1f}x, {g / base[1]:.1f}x" if base[0] else "-"
        print(f"{candidate} | {CANDIDATES[candidate]} | {f:.2f} | {g:.2f} | {ratio}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--candidates", nargs="+", default=list(CANDIDATES))
    parser.add_argument("--runs", nargs="+", default=list(RUNS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--table-only", action="store_true")
    parser.add_argument("--bench", type=int, default=0, help="only time epochs, this many repeats")
    args = parser.parse_args()
    if args.bench:
        return bench(args.candidates, args.bench)
    out = Path(args.out)
    if not args.table_only:
        for seed in args.seeds:
            for candidate in args.candidates:
                for run in args.runs:
                    train_one(out, candidate, run, seed, args.epochs, args.lr)
    print(HEADER)
    keys = set()
    for done in out.glob("*/done.json"):
        candidate, _, seed, epochs, lr = done.parent.name.split("_")
        keys.add((candidate, int(seed[1:]), int(epochs[1:]), float(lr[2:])))
    for key in sorted(keys):
        print(row(out, *key))


if __name__ == "__main__":
    main()
