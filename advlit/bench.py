"""``advlit bench``: the measured cost of one training step of each method, side by side.

Every method trains its own model on synthetic tensors of the data set's input shape
(uniform inputs in [0, 1], uniform labels, seeded; no data files needed), one
:meth:`~advlit.methods.Method.step` per batch exactly as :class:`~advlit.train.Trainer`
calls it (attack + loss + update). The methods are interleaved round by round in one
process, as :func:`time_experiments` does for the chapters, so that a change of machine
load hits all of them; a method's seconds per step is its fastest round, its median round
is reported beside it, and its ratio to FGSM-RS is taken between the fastest rounds.

Method settings: a method ``m`` for which the ATAS chapter has an experiment ``atas.m``
uses that experiment's step size and method arguments at the chosen profile (GradAlign's
lambda, ATAS's c and minimum step, Free-AT's replays, ...), so that the ratios compare with
the chapter's ``atas_timing.json``; other methods use their own defaults.

Memory: on CUDA, ``torch.cuda.max_memory_allocated`` during the method's timed steps (it
includes every model and per-example buffer resident at the time, those of the other
methods too). On CPU no per-method peak is measurable in one process (the resident-set
high-water mark of :func:`resource.getrusage` never goes down), so per-method memory is
``"n/a"`` and only the whole process's peak RSS is reported.

Precision (:mod:`advlit.precision`): ``precision="bf16"`` runs every step and the evaluation
attacks under bf16 autocast (AutoAttack and APGD-CE stay fp32), ``channels_last`` converts
the models and the synthetic inputs, ``compile`` compiles each model in place, as
``advlit train`` does with the same options; the settings are stored
in the JSON (``settings``) and shown in the table's title, so fp32 and bf16 +
``channels_last`` (+ compile) are measured as separate runs of the command, each its own
table. Every method is measured as asked, whatever its autocast verdict, which each row
records (``autocast_verdict``); with ``compile`` a method that cannot be compiled
(:data:`advlit.precision.COMPILE_UNSUPPORTED`) runs uncompiled and its row says so.
"""
from __future__ import annotations

import datetime
import json
import statistics
import time
from pathlib import Path

import torch

from advlit.utils import ConfigError

DEFAULT_METHODS = ["fgsm_rs", "atas", "gradalign", "free_at", "pgd_at"]
EVAL_ATTACKS = ["fgsm", "pgd-20", "cw-20"]
REFERENCE = "fgsm_rs"
BENCH_MD = Path(__file__).resolve().parent.parent / "book" / "_generated" / "bench.md"


def _peak_rss_mb() -> float | None:
    try:
        import resource
        import sys
    except ImportError:  # not on this platform
        return None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10  # bytes on macOS, KiB on Linux


def device_name(device: torch.device) -> str:
    from advlit.train import cpu_name

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_name()


def method_settings(method: str, profile: str = "cpu") -> dict:
    """``eps``, ``alpha_ratio`` and ``method_args`` of ``method``: the ATAS chapter's
    experiment ``atas.<method>`` at ``profile`` when there is one, else the defaults."""
    from advlit.experiments import get_config, list_experiments

    name = f"atas.{method}"
    if name in list_experiments():
        cfg = get_config(name, profile)
        return {"eps": cfg.eps, "alpha_ratio": cfg.alpha_ratio, "method_args": dict(cfg.method_args),
                "source": name}
    return {"eps": None, "alpha_ratio": None, "method_args": {}, "source": "defaults"}


def _bench_model(model, model_args, dataset: str, profile: str, default_model: str) -> tuple[str, dict]:
    """(model name, model arguments) that :func:`bench` builds (see its docstring)."""
    from advlit.experiments import PROFILES

    if model is None:
        settings = PROFILES[profile]
        if settings.get("dataset") == dataset and model_args is None:
            return settings["model"], dict(settings.get("model_args") or {})
        model = default_model
    return model, dict(model_args or {})


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench(methods=None, model: str | None = None, dataset: str = "digits16", batch_size: int = 128,
          model_args: dict | None = None,
          steps: int = 20, warmup: int = 3, rounds: int = 3, device: str = "cpu", eps: float | None = None,
          profile: str = "cpu", eval_attacks=None, autoattack: bool = False, seed: int = 0,
          precision: str = "fp32", channels_last: bool = False, compile: bool = False) -> dict:  # noqa: A002
    """Measure every method (see the module docstring) and the evaluation attacks; return
    a JSON-serialisable dict with the device name, the settings and the results.

    The model: ``model`` with ``model_args``; without ``model``, the profile's model (and its
    ``model_args``) when ``dataset`` is the profile's data set (the cpu profile's stand-in on
    digits16), else the data set's default model."""
    from advlit.config import RunConfig
    from advlit.data import dataset_info
    from advlit.evaluate import attack_batch, parse_attack
    from advlit.methods import Batch, TrainContext, build_method
    from advlit.models import available_models, get_model
    from advlit.precision import COMPILE_UNSUPPORTED, Precision, autocast_verdict
    from advlit.schedules import lr_schedule
    from advlit.utils import resolve_device, seed_everything

    methods = list(methods or DEFAULT_METHODS)
    if len(set(methods)) != len(methods):
        raise ConfigError(f"--methods lists a method twice: {' '.join(methods)}")
    for value, what in ((batch_size, "batch size"), (steps, "steps"), (rounds, "rounds")):
        if value < 1:
            raise ConfigError(f"{what} must be a positive integer, got {value}")
    if warmup < 0:
        raise ConfigError(f"warmup must be >= 0, got {warmup}")
    info = dataset_info(dataset)
    model_name, model_args = _bench_model(model, model_args, dataset, profile, info.default_model)
    if model_name not in available_models():
        raise ConfigError(f"unknown model {model_name!r}; models: {', '.join(available_models())}")
    attacks = list(EVAL_ATTACKS if eval_attacks is None else eval_attacks) + (["aa"] if autoattack else [])
    specs = [parse_attack(a) for a in attacks]
    dev = resolve_device(device)
    prec = Precision(precision, dev, channels_last, compile)
    eager = Precision(precision, dev, channels_last, False)  # for the methods that cannot be compiled
    base = RunConfig()
    n = batch_size * steps  # the synthetic set: one epoch = the timed steps of one round
    gen = torch.Generator().manual_seed(seed)
    x_all = prec.prepare_batch(torch.rand((n, *info.input_shape), generator=gen).to(dev))
    y_all = torch.randint(0, info.num_classes, (n,), generator=gen).to(dev)
    normalize = (info.mean, info.std) if info.mean is not None else None
    lr_at = lr_schedule("constant", base.lr, base.epochs, None)

    runs, settings = {}, {}
    for m in methods:
        s = method_settings(m.split("+")[-1], profile)
        m_eps = eps if eps is not None else (s["eps"] if s["eps"] is not None else base.eps)
        method = build_method(m, m_eps, s["alpha_ratio"], **s["method_args"])
        seed_everything(seed)
        net = get_model(model_name, info.num_classes, info.input_shape, normalize=normalize, **model_args).to(dev)
        uncompilable = [name for name in m.split("+") if name in COMPILE_UNSUPPORTED] if compile else []
        net = (eager if uncompilable else prec).prepare_model(net)
        opt = torch.optim.SGD(net.parameters(), lr=base.lr, momentum=base.momentum, weight_decay=base.weight_decay)
        context = TrainContext(num_examples=n, input_shape=tuple(info.input_shape), num_classes=info.num_classes,
                               epochs=base.epochs, steps_per_epoch=steps, device=dev, pad=0, lr_at=lr_at,
                               peak_lr=base.lr, momentum=base.momentum, weight_decay=base.weight_decay, seed=seed)
        method.setup(net, opt, context)
        runs[m] = {"method": method, "model": net, "opt": opt, "iteration": 0}
        settings[m] = {"eps": m_eps, "alpha_ratio": s["alpha_ratio"], "method_args": s["method_args"],
                       "settings_from": s["source"], "autocast_verdict": autocast_verdict(m, s["method_args"])[0],
                       "compiled": bool(compile and not uncompilable)}
        if uncompilable:
            settings[m]["compile_note"] = f"not compiled: {COMPILE_UNSUPPORTED[uncompilable[0]]}"

    def batch(i: int, it: int) -> Batch:
        idx = torch.arange(i * batch_size, (i + 1) * batch_size, device=dev)
        return Batch(x=x_all[idx], y=y_all[idx], idx=idx, epoch=0, iteration=it)

    def run_steps(m: str, count: int) -> None:
        r = runs[m]
        r["model"].train()
        for i in range(count):
            with prec.autocast():
                r["method"].step(r["model"], r["opt"], batch(i % steps, r["iteration"]))
            r["iteration"] += 1

    for m in methods:  # warm-up (allocations, caches, cudnn autotuning), not timed
        run_steps(m, warmup)
    times = {m: [] for m in methods}
    peak_mem = {m: 0 for m in methods}
    for _ in range(rounds):
        for m in methods:
            if dev.type == "cuda":
                torch.cuda.reset_peak_memory_stats(dev)
            _sync(dev)
            t0 = time.perf_counter()
            run_steps(m, steps)
            _sync(dev)
            times[m].append((time.perf_counter() - t0) / steps)
            if dev.type == "cuda":
                peak_mem[m] = max(peak_mem[m], torch.cuda.max_memory_allocated(dev) / 2**20)

    # evaluation attacks on one batch of the first method's model, interleaved the same way
    eval_model = runs[methods[0]]["model"]
    eval_model.eval()
    xb, yb = x_all[:batch_size], y_all[:batch_size]
    eval_eps = settings[methods[0]]["eps"]
    eval_times = {s.name: [] for s in specs}
    for r in range(max(1, rounds) + 1):  # the first round is the warm-up
        for s in specs:
            torch.manual_seed(seed)
            _sync(dev)
            t0 = time.perf_counter()
            with prec.attack_autocast(s.name):
                attack_batch(eval_model, xb, yb, s, eval_eps, base.eval_alpha_ratio * eval_eps, seed)
            _sync(dev)
            if r:
                eval_times[s.name].append(time.perf_counter() - t0)

    ref = REFERENCE if REFERENCE in methods else None
    results = {}
    for m in methods:
        best, median = min(times[m]), statistics.median(times[m])
        results[m] = {
            "seconds_per_step": best, "median_seconds_per_step": median, "rounds": times[m],
            "images_per_second": batch_size / best,
            "peak_memory_mb": peak_mem[m] if dev.type == "cuda" else "n/a",
            "ratio_to_fgsm_rs": best / min(times[ref]) if ref else None,
            "median_ratio_to_fgsm_rs": median / statistics.median(times[ref]) if ref else None,
            **settings[m],
        }
    evaluation = {a: {"seconds_per_batch": min(v), "median_seconds_per_batch": statistics.median(v),
                      "images_per_second": batch_size / min(v)} for a, v in eval_times.items()}
    return {
        "device": device_name(dev), "device_type": dev.type, "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "date": datetime.date.today().isoformat(),
        "settings": {"methods": methods, "model": model_name, "model_args": model_args, "dataset": dataset, "input_shape": list(info.input_shape),
                     "num_classes": info.num_classes, "batch_size": batch_size, "steps": steps, "warmup": warmup,
                     "rounds": rounds, "profile": profile, "seed": seed, "eval_attacks": attacks,
                     "precision": prec.precision, "channels_last": prec.channels_last, "compile": prec.compile,
                     "precision_label": precision_label(prec.precision, prec.channels_last, prec.compile),
                     "data": "synthetic: uniform inputs in [0, 1], uniform labels"},
        "memory_note": ("CUDA max_memory_allocated during the method's steps (all resident models included)"
                        if dev.type == "cuda" else
                        "per-method peak memory is not measurable on CPU in one process; "
                        "process_peak_rss_mb is the whole process's resident-set high-water mark"),
        "process_peak_rss_mb": _peak_rss_mb(),
        "results": results, "evaluation": evaluation,
    }


def precision_label(precision: str = "fp32", channels_last: bool = False, compile: bool = False) -> str:  # noqa: A002
    """``"fp32"`` or ``"bf16 autocast + channels_last + torch.compile"``: the title's precision part."""
    parts = ["bf16 autocast" if precision == "bf16" else precision]
    parts += ["channels_last"] * bool(channels_last) + ["torch.compile"] * bool(compile)
    return " + ".join(parts)


def _ratio(value) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _mem(value) -> str:
    return value if isinstance(value, str) else f"{value:.0f}"


def format_bench(out: dict, markdown: bool = False) -> str:
    """The results as a plain-text (or markdown) table: training steps, then attacks."""
    s = out["settings"]
    head = ["method", "s / step (best)", "s / step (median)", "images / s", "vs FGSM-RS (best)",
            "vs FGSM-RS (median)", "peak memory (MiB)"]
    rows = [[m + (" (not compiled)" if r.get("compile_note") else ""), f"{r['seconds_per_step']:.4f}",
             f"{r['median_seconds_per_step']:.4f}",
             f"{r['images_per_second']:.0f}", _ratio(r["ratio_to_fgsm_rs"]),
             _ratio(r["median_ratio_to_fgsm_rs"]), _mem(r["peak_memory_mb"])] for m, r in out["results"].items()]
    ehead = ["evaluation attack", "s / batch (best)", "s / batch (median)", "images / s"]
    erows = [[a, f"{r['seconds_per_batch']:.4f}", f"{r['median_seconds_per_batch']:.4f}",
              f"{r['images_per_second']:.0f}"] for a, r in out["evaluation"].items()]
    title = (f"{out['device']} (torch {out['torch']}, {out['threads']} thread(s)), measured {out['date']}: "
             f"{s['model']}{' ' + json.dumps(s['model_args']) if s.get('model_args') else ''} on "
             f"{s['dataset']}-shaped synthetic data, batch {s['batch_size']}, "
             f"{s['steps']} steps x {s['rounds']} rounds after {s['warmup']} warm-up steps")
    if "precision" in s:  # files written before the precision options: fp32, and the title as it was
        title += f"; {s.get('precision_label') or precision_label(s['precision'], s['channels_last'], s['compile'])}"
    if markdown:
        def table(h, body):
            return "\n".join(["| " + " | ".join(h) + " |", "|" + "---|" * len(h),
                              *("| " + " | ".join(r) + " |" for r in body)])
        rss = out.get("process_peak_rss_mb")
        rss = f" ({rss:.0f} MiB)" if rss and out["device_type"] != "cuda" else ""
        return "\n\n".join([f"**{title}**", table(head, rows), table(ehead, erows),
                            f"Memory: {out['memory_note']}{rss}."])

    def plain(h, body):
        widths = [max(len(r[i]) for r in [h] + body) for i in range(len(h))]
        lines = ["  ".join(v.rjust(w) if i else v.ljust(w) for i, (v, w) in enumerate(zip(r, widths)))
                 for r in [h] + body]
        return "\n".join([lines[0], "-" * len(lines[0]), *lines[1:]])
    rss = out.get("process_peak_rss_mb")
    note = f"memory: {out['memory_note']}" + (f" ({rss:.0f} MiB)" if rss and out["device_type"] != "cuda" else "")
    return "\n".join([title, plain(head, rows), "", plain(ehead, erows), note])


def write_bench_page(json_paths=None, md_path: str | Path | None = None) -> Path:
    """Write ``book/_generated/bench.md`` from the ``bench_*.json`` files (default: every
    ``results/*/bench_*.json``): one table per file, each under its device name and date,
    CPU and GPU measurements never in one table."""
    from advlit.results import REPO_DIR

    if json_paths is None:
        json_paths = sorted((REPO_DIR / "results").glob("*/bench_*.json"))
    md_path = Path(md_path) if md_path else BENCH_MD
    sections = []
    for path in json_paths:
        out = json.loads(Path(path).read_text())
        kind = "GPU" if out.get("device_type") == "cuda" else "CPU"
        sections.append(f"### {kind}: {out['device']}\n\n{format_bench(out, markdown=True)}")
    text = "\n\n".join(sections) if sections else "No `advlit bench` measurement has been recorded yet."
    md_path.parent.mkdir(parents=True, exist_ok=True)
    md_path.write_text(text + "\n")
    return md_path


def same_machine(*timings: dict) -> bool | None:
    """Whether timings of :func:`time_experiments` were measured on the same kind of machine
    (processor, its vector capability and the thread count): ``None`` when one of them does not
    record it (files made before the field existed)."""
    machines = [t.get("environment") for t in timings]
    if any(m is None for m in machines):
        return None
    return len({(m.get("cpu"), m.get("cuda"), m.get("threads")) for m in machines}) == 1


def time_experiments(chapter, names, epochs: int = 1, rounds: int = 1, cache: str | None = None,
                     refresh: bool = False, first_epoch: dict | None = None) -> dict:
    """Seconds per training epoch of each named experiment of ``chapter``, measured back to
    back in one process: every round trains ``epochs`` epochs (no validation) of each
    experiment in turn, so a change of machine load hits all of them.

    Returns ``{"key", "epochs", "rounds", "seconds": {name: [seconds of each epoch, in
    order]}, "steps_per_epoch": {name: n}, "environment": {...}}`` (the machine, processor and
    thread count it was measured with: :func:`advlit.train.environment`). With ``cache`` (a file name) the result is
    stored in ``<results_dir>/<cache>`` with the configurations and code fingerprints it was
    made by, and reused while they and ``epochs`` / ``rounds`` match (``refresh=True``
    measures again). The ATAS (``atas_timing.json``), LAST (``last_timing.json``) and basics
    (``basics_standin_timing.json``) chapters time their methods through this function.

    ``first_epoch`` (``{name: epoch}``, default 0) starts the timed epochs of a method at a
    later epoch index, for a method whose first epochs do other work than the rest (DyART's
    clean warm-up epochs): its trainer trains epoch ``first_epoch + r * epochs + e`` in round
    ``r``, without training the epochs before (the work of an epoch does not depend on them).
    """
    from advlit.results import code_fingerprint
    from advlit.train import Trainer, environment

    names = list(names)
    configs = {n: chapter.config(n) for n in names}
    first = {n: int(e) for n, e in (first_epoch or {}).items() if int(e)}
    unknown = sorted(set(first) - set(names))
    if unknown:
        raise ConfigError(f"first_epoch names experiments that are not timed: {', '.join(unknown)}")
    key = {n: [c.hash(), code_fingerprint(c)] for n, c in configs.items()}
    path = Path(chapter.results_dir) / cache if cache else None
    if path is not None and path.exists() and not refresh:
        cached = json.loads(path.read_text())
        if (cached.get("key") == key and cached.get("epochs") == epochs and cached.get("rounds") == rounds
                and cached.get("first_epoch", {}) == first
                and "steps_per_epoch" in cached):  # a file of the chapters' earlier timing format is measured again
            return cached
    trainers = {n: Trainer(c, progress=False) for n, c in configs.items()}
    seconds: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        for n in names:
            for e in range(epochs):
                t0 = time.perf_counter()
                trainers[n].train_epoch(first.get(n, 0) + r * epochs + e)
                seconds[n].append(time.perf_counter() - t0)
    out = {"key": key, "epochs": epochs, "rounds": rounds, "seconds": seconds,
           "steps_per_epoch": {n: t.steps_per_epoch for n, t in trainers.items()}, "environment": environment()}
    if first:
        out["first_epoch"] = first
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(out, indent=1))
    return out
