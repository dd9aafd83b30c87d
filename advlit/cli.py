"""The ``advlit`` command line: ``train``, ``eval``, ``bench``, ``list``, ``data download``, ``data fake``, ``book run``, ``grid`` and ``compare``.

Every user error (unknown method or dataset, eps outside (0, 1], a missing or damaged
checkpoint, a missing dataset, an unusable device or ``--out``) prints one line
``advlit: error: ...`` and exits with status 2, never a traceback; a file the system cannot
write (a full disk) is one line and status 1. A failed command leaves the files the user
already has (checkpoints, run records) as they were.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from fractions import Fraction
from pathlib import Path

from advlit.utils import ConfigError, configure_threads


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump
        raise ConfigError(f"{message} (see '{self.prog} --help')")


def _number(text: str) -> float:
    """A float, or a fraction such as ``8/255``."""
    try:
        return float(Fraction(text))
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _key_values(pairs) -> dict:
    out = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise ConfigError(f"expected KEY=VALUE, got {pair!r}")
        key, raw = pair.split("=", 1)
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def _train_epilog() -> str:
    from advlit.data import available_datasets
    from advlit.methods import available_methods
    from advlit.models import available_models

    methods = available_methods()
    lines = ["methods:"]
    for name, cls in methods.items():
        if not cls.wraps:
            lines.append(f"  {name:12s} {(cls.__doc__ or '').strip().splitlines()[0]}")
    lines.append("frameworks (wrap a method: --method last+fgsm_rs):")
    for name, cls in methods.items():
        if cls.wraps:
            lines.append(f"  {name:12s} {(cls.__doc__ or '').strip().splitlines()[0]}")
    lines.append("datasets: " + ", ".join(available_datasets()))
    lines.append("models:   " + ", ".join(available_models()))
    lines.append("attacks:  clean, fgsm, pgd-K, pgd-KxR (R restarts), cw-K, cw-KxR, apgd-ce, aa, aa-fast")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="advlit", description="Fast and robust adversarial training, reproduced.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser("train", help="train one model and write its run record",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=_train_epilog())
    t.add_argument("--experiment", help="start from a named experiment of advlit.experiments (then --profile)")
    t.add_argument("--profile", default="cpu", help="profile of --experiment: cpu or gpu (default cpu)")
    t.add_argument("--method", help="method spec, e.g. fgsm_rs, atas, last+fgsm_rs (default fgsm_rs)")
    t.add_argument("--dataset", help="dataset name (default digits16)")
    t.add_argument("--model", help="model name (default: the dataset's default model)")
    t.add_argument("--eps", type=_number, help="L-inf radius in pixel units, in (0, 1]; 8/255 accepted (default 0.2)")
    t.add_argument("--alpha-ratio", type=_number, help="step size as a multiple of eps (default: the method's own)")
    t.add_argument("--method-arg", action="append", metavar="KEY=VALUE",
                   help="method hyper-parameter (JSON value); 'last.gamma=0.8' targets a framework layer; "
                        "with --experiment it changes that key of the experiment's and keeps the others")
    t.add_argument("--model-arg", action="append", metavar="KEY=VALUE", help="model argument, e.g. depth=28")
    t.add_argument("--epochs", type=int, help="training epochs (default 30)")
    t.add_argument("--batch-size", type=int, help="batch size (default 128)")
    t.add_argument("--lr", type=_number, help="peak learning rate (default 0.1)")
    t.add_argument("--lr-schedule", help="cyclic, piecewise, multistep, linear_decay or constant (default cyclic)")
    t.add_argument("--milestones", type=int, nargs="*", help="epochs where multistep divides the LR by 10 (linear_decay: where each linear segment ends)")
    t.add_argument("--momentum", type=_number, help="SGD momentum (default 0.9)")
    t.add_argument("--weight-decay", type=_number, help="SGD weight decay (default 5e-4)")
    t.add_argument("--no-augment", dest="augment", action="store_false", default=None,
                   help="turn off the dataset's crop/flip augmentation")
    t.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    t.add_argument("--val-attack", help="attack on the validation split that picks the best epoch and flags collapses (default pgd-20)")
    t.add_argument("--val-subset", type=_positive_int, help="validate on the first N validation examples")
    t.add_argument("--attacks", nargs="+", help="final test attacks (default clean fgsm pgd-20 pgd-50 cw-20)")
    t.add_argument("--final-subset", type=_positive_int, help="final evaluation on the first N test examples")
    t.add_argument("--eps-ratios", type=_number, nargs="+", metavar="R",
                   help="also run the final attacks (but clean) at R * eps, e.g. 2: keys 'pgd-20@2eps'")
    t.add_argument("--device", help="cpu, cuda, cuda:1, ... (default cpu)")
    t.add_argument("--precision", help="fp32 (default), bf16 (autocast of the steps and attacks, fp32 logits) or "
                   "auto (bf16 on CUDA for the methods autocast leaves unchanged); see advlit.precision")
    t.add_argument("--channels-last", action="store_true", default=None,
                   help="model and inputs in the channels_last memory format")
    t.add_argument("--compile", action="store_true", default=None, help="torch.compile the model")
    t.add_argument("--data-root", help="where vision datasets live (default $ADVLIT_DATA or ~/data)")
    t.add_argument("--out", required=True, help="output folder: record.json, checkpoint.pt, best.pt")
    t.add_argument("--resume", action="store_true", help="continue the interrupted run in --out")
    t.add_argument("--quiet", action="store_true", help="no progress bar (as does ADVLIT_PROGRESS=0)")

    e = sub.add_parser("eval", help="evaluate a checkpoint under attacks")
    e.add_argument("--checkpoint", required=True, help="a checkpoint.pt or best.pt written by 'advlit train'")
    e.add_argument("--attacks", nargs="+", default=["clean", "fgsm", "pgd-20", "cw-20"], help="attack names")
    e.add_argument("--eps", type=_number, help="radius (default: the training eps)")
    e.add_argument("--eps-ratios", type=_number, nargs="+", metavar="R",
                   help="also run the attacks (but clean) at R * eps, as 'pgd-20@2eps'")
    e.add_argument("--split", default="test", help="test or val (default test)")
    e.add_argument("--subset", type=_positive_int, help="evaluate on the first N examples")
    e.add_argument("--data-root", help="where vision datasets live")
    e.add_argument("--device", default="cpu")
    e.add_argument("--json", action="store_true", help="print JSON instead of a table")

    bn = sub.add_parser("bench", help="measure each method's seconds per training step, side by side")
    bn.add_argument("--methods", nargs="+", help="method specs (default fgsm_rs atas gradalign free_at pgd_at)")
    bn.add_argument("--model", help="model name (default: the profile's model on the profile's data set, "
                    "e.g. the cpu stand-in on digits16; else the data set's default model)")
    bn.add_argument("--model-arg", action="append", metavar="KEY=VALUE",
                    help="model argument (with --model), e.g. channels=[32,64] pools=[false,true]")
    bn.add_argument("--dataset", default="digits16", help="data set whose input shape and classes are used "
                    "(synthetic tensors, no data files; default digits16)")
    bn.add_argument("--batch-size", type=_positive_int, default=128, help="batch size (default 128)")
    bn.add_argument("--steps", type=_positive_int, default=20, help="timed steps per method and round (default 20)")
    bn.add_argument("--warmup", type=int, default=3, help="untimed steps per method first (default 3)")
    bn.add_argument("--rounds", type=_positive_int, default=3,
                    help="rounds, the methods interleaved in each; the fastest is reported (default 3)")
    bn.add_argument("--eps", type=_number, help="radius for every method (default: the ATAS chapter's, else 0.2)")
    bn.add_argument("--profile", default="cpu", help="profile of the ATAS chapter's method settings (default cpu)")
    bn.add_argument("--attacks", nargs="*", help="evaluation attacks to time (default fgsm pgd-20 cw-20)")
    bn.add_argument("--autoattack", action="store_true", help="also time standard AutoAttack (slow on CPU)")
    bn.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (default cpu)")
    bn.add_argument("--seed", type=int, default=0, help="seed of the synthetic data and models (default 0)")
    bn.add_argument("--out", help="also write the results as JSON to this file")
    bn.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                    help="fp32 (default) or bf16 autocast for the steps and attacks (advlit.precision)")
    bn.add_argument("--channels-last", action="store_true", help="models and inputs in channels_last memory format")
    bn.add_argument("--compile", action="store_true",
                    help="torch.compile each model (methods that cannot be compiled run uncompiled, marked)")

    ls = sub.add_parser("list", help="list methods, datasets, models and named experiments")
    ls.add_argument("what", nargs="?", default="all", choices=["all", "methods", "datasets", "models", "experiments"])

    d = sub.add_parser("data", help="download a vision dataset (needs internet), or write a synthetic one")
    dsub = d.add_subparsers(dest="data_command", required=True, parser_class=_Parser)
    dd = dsub.add_parser("download", help="download NAME into --root (train and test splits)")
    dd.add_argument("name", help="cifar10, cifar100 or svhn (Tiny ImageNet: see the error message for its URL)")
    dd.add_argument("--root", help="target folder (default $ADVLIT_DATA or ~/data)")
    df = dsub.add_parser(
        "fake", help="write a small SYNTHETIC copy of a vision dataset in its real file format",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Write synthetic CIFAR-10, CIFAR-100, SVHN or Tiny ImageNet files into --root, in exactly\n"
            "the real on-disk format (CIFAR python pickles, SVHN .mat files, the Tiny ImageNet folder),\n"
            "so that the gpu profile's code path (real loaders, models, input shapes) can be tried\n"
            "before, or without, downloading the real data, and tested on a CPU.\n\n"
            "The images are class-dependent colour patterns plus noise: a model learns them a little,\n"
            "and no number measured on them says anything about the real dataset. The marker file\n"
            "ADVLIT_SYNTHETIC.json in --root lists what was written; advlit reads files listed there\n"
            "(and unchanged since) as synthetic: the official checksums are not checked, the validation\n"
            "split is the last N/10 training images (at most 1000) instead of 1000, and a warning says\n"
            "the data are synthetic. Real data keep every check, and files already in --root that are\n"
            "not synthetic are never overwritten."),
        epilog=("example:\n"
                "  advlit data fake --dataset cifar10 --root /tmp/fake-data\n"
                "  advlit train --dataset cifar10 --data-root /tmp/fake-data --epochs 1 --out /tmp/run"))
    df.add_argument("--dataset", required=True, help="cifar10, cifar100, svhn or tinyimagenet")
    df.add_argument("--root", required=True, help="target folder; then pass it as --data-root / data_root")
    df.add_argument("--train", type=_positive_int, default=1200,
                    help="images of the official training split, validation part included (default 1200)")
    df.add_argument("--test", type=_positive_int, default=200, help="images of the test split (default 200)")
    df.add_argument("--seed", type=int, default=0, help="seed of the images and labels (default 0)")

    b = sub.add_parser("book", help="run the book's notebooks with papermill")
    bsub = b.add_subparsers(dest="book_command", required=True, parser_class=_Parser)
    br = bsub.add_parser("run", help="execute every chapter at a profile (regenerates its run records)")
    br.add_argument("--profile", default="cpu", help="cpu or gpu")
    br.add_argument("--only", nargs="*", help="notebook names (stems) to run")
    br.add_argument("--output-dir", help="write executed notebooks here instead of in place")
    br.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"),
                    help="extra papermill parameter for every notebook")
    _add_grid_parser(sub)
    _add_compare_parser(sub)
    return parser


def _add_grid_parser(sub) -> None:
    g = sub.add_parser(
        "grid", help="every run the chapters of a profile load: what is done, and --run trains the rest",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=("List every run the chapters of a profile load (recorded by `advlit book run` in\n"
                     "results/<profile>/manifest.json; the cpu manifest stands for every profile) as done,\n"
                     "partial (a checkpoint to resume) or missing, with the training time left, and with\n"
                     "--run train what is not done, longest first: each run writes its record where the\n"
                     "notebooks look, resumes from its checkpoint, and a current record is never retrained."),
        epilog=("examples:\n"
                "  advlit grid --profile gpu                                  # what is done, what is left\n"
                "  advlit grid --profile gpu --run                            # one GPU\n"
                "  advlit grid --profile gpu --run --gpus 0,1,2,3             # one worker per GPU\n"
                "  advlit grid --profile gpu --run --executor slurm --partition gpu --time 8:00:00\n"
                "  advlit grid --profile cpu --only 01_basics --run --workers 2"))
    g.add_argument("--profile", default="cpu", help="cpu or gpu (default cpu)")
    g.add_argument("--only", nargs="+", metavar="CHAPTER", help="only these chapters (notebook stems, e.g. 02_atas)")
    g.add_argument("--experiment", action="append", default=[], metavar="NAME",
                   help="also this named experiment at the profile's default seeds (one a chapter edit adds, "
                        "before `advlit book run` records it); repeatable")
    g.add_argument("--results-dir", help="where the records are (default results/<profile>)")
    g.add_argument("--data-root", help="where vision datasets live (default $ADVLIT_DATA or ~/data)")
    g.add_argument("--list", action="store_true", help="also list every run still to train")
    g.add_argument("--run", action="store_true", help="train what is not done")
    g.add_argument("--executor", default="local", choices=["local", "slurm"],
                   help="local: processes on this machine (default); slurm: one submitit job-array task per run")
    g.add_argument("--log-dir", help="job files, worker logs, submitit's folder (default runs/grid-<profile>)")
    local = g.add_argument_group("--executor local")
    local.add_argument("--workers", type=_positive_int, help="parallel worker processes (default 1; "
                       "ADVLIT_THREADS torch threads each, default 1)")
    local.add_argument("--gpus", help="CUDA device indices, one worker per device, e.g. 0,1,2,3")
    slurm = g.add_argument_group("--executor slurm")
    slurm.add_argument("--partition", help="Slurm partition")
    slurm.add_argument("--time", help="time limit of each task (240, 4:00:00, 1-00:00:00); a longer run "
                       "is requeued and resumes from its checkpoint")
    slurm.add_argument("--gpus-per-job", type=int, help="GPUs per task (default 1 for runs on CUDA, else 0)")
    slurm.add_argument("--cpus-per-task", type=_positive_int, help="CPU cores per task")
    slurm.add_argument("--mem-gb", type=_positive_int, help="memory per task in GB")
    slurm.add_argument("--max-parallel", type=_positive_int, help="tasks of the array running at once")
    slurm.add_argument("--max-requeues", type=int, help="requeues after a time-out per task (default 3; "
                       "preemptions do not count)")
    slurm.add_argument("--slurm-arg", action="append", metavar="KEY=VALUE",
                       help="another #SBATCH setting, e.g. account=myproj or qos=high")
    slurm.add_argument("--setup", action="append", metavar="COMMAND",
                       help="shell line run before each task, e.g. 'source .venv/bin/activate'")
    slurm.add_argument("--wait", action="store_true", help="wait for the jobs, then submit the runs they "
                       "unlock (ATAS's subsets); default: return after submitting")


def experiment_config(name: str, profile: str, seed: int, overrides: dict):
    """``advlit train --experiment NAME``: the experiment's configuration with the command
    line's ``overrides`` (``None``: not given). ``--method-arg`` / ``--model-arg`` change the
    named keys of the experiment's ``method_args`` / ``model_args`` and keep the others
    (``--experiment compare.sub_at --method-arg sub_lr=0.1`` keeps its sampling epochs), as
    long as the method / model stays the experiment's; with another ``--method`` or
    ``--model`` they replace them (the experiment's keys belong to its own method or model)."""
    from advlit.experiments import get_config

    base = get_config(name, profile, seed=seed)
    overrides = dict(overrides)
    for key, owner in (("method_args", "method"), ("model_args", "model")):
        if overrides.get(key) is not None and overrides.get(owner) in (None, getattr(base, owner)):
            overrides[key] = {**getattr(base, key), **overrides[key]}
    return get_config(name, profile, seed=seed, **overrides)


def config_with_method_defaults(seed: int, given: dict):
    """The run configuration of ``advlit train`` without ``--experiment``: the settings
    given on the command line, then the method's defaults for the dataset
    (:func:`advlit.experiments.method_defaults`, printed to stderr), then RunConfig's."""
    from advlit.config import RunConfig
    from advlit.experiments import layer_settings, method_defaults

    base = RunConfig()
    method, dataset = given.get("method", base.method), given.get("dataset", base.dataset)
    defaults = method_defaults(method, dataset)
    settings = layer_settings(defaults, given)
    filled = [f"{k}={v}" for k, v in defaults.items() if k != "method_args" and k not in given]
    filled += [f"{k}={v}" for k, v in defaults.get("method_args", {}).items() if k not in given.get("method_args", {})]
    if filled:
        print(f"advlit: {method} on {dataset} uses {', '.join(filled)} (the method's defaults, "
              "advlit.experiments; a flag or --method-arg changes them)", file=sys.stderr)
    return RunConfig(seed=seed, **settings)


def check_device(name) -> None:
    """One line when ``name`` is not a device torch knows or one this machine lacks."""
    import torch

    if name is None or name == "auto":
        return
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise ConfigError(f"unknown device {name!r}; use cpu, cuda, cuda:1, ...") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r}: no CUDA device is available on this machine (use --device cpu)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device {name!r}: MPS is not available on this machine (use --device cpu)")


def _check_out(out: Path, resume: bool) -> None:
    """Fail before anything is created when ``--out`` cannot hold a run (or, with
    ``--resume``, holds none)."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a folder")
    if resume and not out.is_dir():
        raise ConfigError(f"cannot resume: there is no run at {out} (no such folder); leave out --resume to start one")
    parent = out
    while not parent.exists():  # the folder that fit() would create its path in
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(f"--out {out}: {parent} is a file, not a folder")


def _resume_hint(out: Path) -> str:
    from advlit.train import BEST

    best = (f"; {out / BEST} holds only the weights of the best epoch ('advlit eval' reads it, "
            "--resume cannot)") if (out / BEST).is_file() else ""
    return (f"start over without --resume (this replaces the run in {out}) or with another --out" + best)


def _check_resumable(out: Path, trainer) -> None:
    """Load ``out/checkpoint.pt`` into ``trainer`` (what ``fit(resume=True)`` would do), so
    that a checkpoint whose contents do not fit this run is one line, not a traceback; the
    trainer then continues from the loaded epoch with a plain ``fit(out)``."""
    from advlit.checkpoint_io import describe_mismatch
    from advlit.train import CHECKPOINT

    path = out / CHECKPOINT
    try:
        trainer.load_checkpoint(path)
    except ConfigError:
        raise
    except Exception as err:  # load_state_dict of the model, optimizer or method
        raise ConfigError(f"cannot resume: {path} does not fit this run ({describe_mismatch(err)}); "
                          f"{_resume_hint(out)}") from None


def _cmd_train(args) -> int:
    from advlit.runner import build_trainer
    from advlit.train import CHECKPOINT

    out = Path(args.out)
    _check_out(out, args.resume)
    overrides = {
        "method": args.method, "dataset": args.dataset, "model": args.model, "eps": args.eps,
        "alpha_ratio": args.alpha_ratio, "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
        "lr_schedule": args.lr_schedule, "milestones": args.milestones, "momentum": args.momentum,
        "weight_decay": args.weight_decay, "augment": args.augment, "val_attack": args.val_attack,
        "val_subset": args.val_subset, "final_attacks": args.attacks, "final_subset": args.final_subset,
        "final_eps_ratios": args.eps_ratios, "device": args.device, "data_root": args.data_root,
        "method_args": _key_values(args.method_arg) or None, "model_args": _key_values(args.model_arg) or None,
        "precision": args.precision, "channels_last": args.channels_last, "compile": args.compile,
    }
    if args.experiment:
        config = experiment_config(args.experiment, args.profile, args.seed, overrides)
    else:
        config = config_with_method_defaults(args.seed, {k: v for k, v in overrides.items() if v is not None})
    check_device(config.device)
    if args.resume:  # a damaged checkpoint: one line before anything is built or written
        from advlit.checkpoint_io import RESUMABLE_KEYS, read_checkpoint

        try:
            read_checkpoint(out / CHECKPOINT, keys=RESUMABLE_KEYS, hint=_resume_hint(out))
        except ConfigError as err:
            raise ConfigError(f"cannot resume: {err}") from None
    dist = None
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # started by torchrun with several processes: this one's rank
        from advlit.distributed import from_environment

        dist = from_environment(config.device)
    try:
        # --quiet turns the progress bar off; otherwise the Trainer reads ADVLIT_PROGRESS
        trainer = build_trainer(config, progress=False if args.quiet else None, dist=dist)
        if args.resume:
            _check_resumable(out, trainer)  # loads the checkpoint into the trainer: fit() need not load it again
        record = trainer.fit(out)
    finally:
        if dist is not None:
            dist.close()
    if record is not None:  # a data-parallel run: rank 0 evaluates, writes and reports
        _print_summary(record, out)
    return 0


def _print_summary(record: dict, out) -> None:
    from advlit.evaluate import format_table

    print(f"run record: {Path(out) / 'record.json'}")
    print(f"seconds per epoch: {record['seconds_per_epoch']:.2f}")
    co = record["overfitting"]
    if co["detected"]:
        print(f"catastrophic overfitting detected at epoch {co['epoch']} "
              f"(validation PGD {co['final_robust']:.1f} %, FGSM {co['final_fgsm']:.1f} % at the end)")
    if record["final"]:
        print(format_table(record["final"], eps=record["config"]["eps"]))


def _cmd_eval(args) -> int:
    from advlit.checkpoint_io import config_of, model_of, read_checkpoint
    from advlit.config import check_eps_ratios
    from advlit.data import get_dataset
    from advlit.evaluate import evaluate, evaluate_eps_ratios, format_table

    path = Path(args.checkpoint)
    check_device(args.device)
    sibling = {"checkpoint.pt": "best.pt", "best.pt": "checkpoint.pt"}.get(path.name)
    hint = f"the {sibling} beside it may still be intact" if sibling and (path.parent / sibling).is_file() else None
    state = read_checkpoint(path, hint=hint)
    config = config_of(state, path)
    model = model_of(state, path, args.device)
    eps = args.eps if args.eps is not None else config.eps
    if not 0 < eps <= 1:
        raise ConfigError(f"eps must lie in (0, 1], got {eps}")
    check_eps_ratios(args.eps_ratios, eps)
    data = get_dataset(config.dataset, args.split, root=args.data_root or config.data_root)
    res = evaluate(model, data, eps, attacks=args.attacks, subset=args.subset, alpha_ratio=config.eval_alpha_ratio)
    if args.eps_ratios:
        res.update(evaluate_eps_ratios(model, data, eps, args.eps_ratios, args.attacks, subset=args.subset,
                                       alpha_ratio=config.eval_alpha_ratio))
    print(json.dumps(res) if args.json else format_table({path.name: res}, eps=eps))
    return 0


def _cmd_list(args) -> int:
    from advlit.data import available_datasets
    from advlit.experiments import list_experiments
    from advlit.methods import available_methods
    from advlit.models import available_models

    groups = {
        "methods": list(available_methods()), "datasets": available_datasets(),
        "models": available_models(), "experiments": list_experiments(),
    }
    for name, values in groups.items():
        if args.what in ("all", name):
            print(f"{name}: {', '.join(values)}")
    return 0


def _cmd_bench(args) -> int:
    from advlit.bench import bench, format_bench
    from advlit.experiments import check_profile
    from advlit.methods import build_method

    check_device(args.device)
    check_profile(args.profile)
    for spec in args.methods or []:  # an unknown name or argument: one line before anything runs
        build_method(spec, 0.1)
    out_path = Path(args.out) if args.out else None
    if out_path is not None and out_path.is_dir():
        raise ConfigError(f"--out {out_path} is a folder, not a file")
    out = bench(methods=args.methods, model=args.model, model_args=_key_values(args.model_arg) or None, dataset=args.dataset,
                batch_size=args.batch_size,
                steps=args.steps, warmup=args.warmup, rounds=args.rounds, device=args.device, eps=args.eps,
                profile=args.profile, eval_attacks=args.attacks, autoattack=args.autoattack, seed=args.seed,
                precision=args.precision, channels_last=args.channels_last, compile=args.compile)
    print(format_bench(out))
    if out_path is not None:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(out, indent=1) + "\n")
        print(f"wrote {out_path}")
    return 0


def _cmd_data(args) -> int:
    from advlit.data import get_dataset

    if args.data_command == "fake":
        from advlit.data.fake import write_fake_dataset

        entry = write_fake_dataset(args.dataset, args.root, train=args.train, test=args.test, seed=args.seed)
        print(f"wrote synthetic {args.dataset} into {args.root} (seed {args.seed}): {entry['train']} training images "
              f"({entry['train'] - entry['val']} train + {entry['val']} val) and {entry['test']} test images; "
              f"read it with --data-root {args.root} (data_root in notebooks)")
        return 0
    for split in ("train", "test"):
        data = get_dataset(args.name, split, root=args.root, download=True)
        print(f"{args.name} {split}: {len(data)} examples")
    return 0


def _cmd_book(args) -> int:
    from advlit.book import papermill_value, run_notebooks

    params = {}
    for name, value in args.parameter or []:
        if name == "profile":
            raise ConfigError("set the profile with --profile, not -p profile")
        params[name] = papermill_value(value)
    failures = run_notebooks(profile=args.profile, only=args.only, output_dir=args.output_dir, extra=params)
    return 1 if failures else 0


def _cmd_grid(args) -> int:
    import shutil

    from advlit.grid import format_plan, parse_gpus, parse_time, plan_grid, run_grid

    slurm_options = {"--partition": args.partition, "--time": args.time, "--gpus-per-job": args.gpus_per_job,
                     "--cpus-per-task": args.cpus_per_task, "--mem-gb": args.mem_gb,
                     "--max-parallel": args.max_parallel, "--max-requeues": args.max_requeues,
                     "--slurm-arg": args.slurm_arg, "--setup": args.setup, "--wait": args.wait or None}
    if args.executor == "local":
        given = [flag for flag, value in slurm_options.items() if value is not None]
        if given:
            raise ConfigError(f"{given[0]} is an option of --executor slurm")
    else:
        for flag, value in (("--workers", args.workers), ("--gpus", args.gpus)):
            if value is not None:
                raise ConfigError(f"{flag} is an option of --executor local (Slurm places every run itself)")
    if args.workers is not None and args.gpus is not None:
        raise ConfigError("give --workers (processes) or --gpus (one worker per GPU), not both")
    gpus = parse_gpus(args.gpus) if args.gpus is not None else None
    time_min = parse_time(args.time) if args.time is not None else None
    if args.gpus_per_job is not None and args.gpus_per_job < 0:
        raise ConfigError(f"--gpus-per-job must be 0 or more, got {args.gpus_per_job}")
    if args.max_requeues is not None and args.max_requeues < 0:
        raise ConfigError(f"--max-requeues must be 0 or more, got {args.max_requeues}")
    extra = _key_values(args.slurm_arg) if args.slurm_arg else None
    plan = plan_grid(args.profile, args.results_dir, args.only, args.data_root, args.experiment)
    todo = plan.todo()
    on_cuda = any(str(job.config.device).startswith("cuda") for job in todo)
    if args.run and todo:
        if gpus is not None:
            if not on_cuda:
                raise ConfigError(f"--gpus: the {args.profile} profile's runs train on the CPU (the device is part "
                                  "of their configuration hash); use --workers")
            check_device(f"cuda:{max(gpus)}")
        elif args.executor == "local":
            for device in sorted({str(job.config.device) for job in todo}):
                check_device(device)
        if args.executor == "slurm":
            if time_min is None:
                raise ConfigError("--executor slurm needs --time, each task's time limit (a longer run is "
                                  "requeued and resumes from its checkpoint)")
            try:
                import submitit  # noqa: F401
            except ImportError:
                raise ConfigError("--executor slurm needs submitit: pip install 'advlit[grid]'") from None
            if shutil.which("sbatch") is None:
                raise ConfigError("--executor slurm: Slurm's sbatch is not on this machine; run the command on the "
                                  "cluster's login node, or use --executor local")
    print(format_plan(plan, listing=args.list))
    if not args.run:
        if todo or plan.waiting:
            print("train them with --run (local workers, --gpus or --executor slurm: advlit grid --help)")
        return 0
    if not todo and not plan.waiting:
        return 0
    slurm = None
    if args.executor == "slurm":
        slurm = {"time_min": time_min, "partition": args.partition, "cpus_per_task": args.cpus_per_task,
                 "gpus_per_job": args.gpus_per_job if args.gpus_per_job is not None else int(on_cuda),
                 "mem_gb": args.mem_gb, "max_parallel": args.max_parallel, "extra": extra, "setup": args.setup,
                 "max_requeues": 3 if args.max_requeues is None else args.max_requeues}
    try:
        out = run_grid(args.profile, args.results_dir, args.only, args.data_root, executor=args.executor,
                       workers=args.workers or 1, gpus=gpus, log_dir=args.log_dir, slurm=slurm, wait=args.wait,
                       extra=args.experiment)
    except KeyboardInterrupt:
        print("advlit: interrupted; each run keeps the checkpoint of its last finished epoch: run the same "
              "command again to resume", file=sys.stderr)
        return 130
    last = out["plan"]
    left = {s: sum(1 for j in last.jobs if j.state == s) for s in ("done", "partial", "missing")}
    print(f"trained {len(out['trained'])}, failed {len(out['failed'])}, submitted {len(out['submitted'])}; now "
          f"{left['done']} done, {left['partial']} partial, {left['missing']} missing, "
          f"{sum(w.runs for w in last.waiting)} waiting of {len(last.jobs) + sum(w.runs for w in last.waiting)} runs")
    return 1 if out["failed"] else 0


def _add_compare_parser(sub) -> None:
    c = sub.add_parser(
        "compare", help="the comparison table (every method under one protocol) from the run records",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=("Print the comparison chapter's table from the records of the compare.* experiments\n"
                     "(advlit.experiments.comparison): per method, mean +- std over seeds of clean, PGD-20,\n"
                     "PGD-50, C&W and AutoAttack accuracy, collapses, seconds per epoch, the cost ratio to\n"
                     "FGSM-RS from the records (not side by side: --bench adds advlit bench's side-by-side\n"
                     "ratios) and a gradient-masking flag (AutoAttack > 5 points below PGD-50). Never trains.\n"
                     "A method without a current record is a row saying 'missing' (exit status 0); with no\n"
                     "record at all the command says how to make them and exits with status 2."),
        epilog=("examples:\n"
                "  advlit compare --profile cpu\n"
                "  advlit compare --profile cpu --checkpoint best --format markdown\n"
                "  advlit compare --profile gpu --protocol fastat --bench results/gpu/bench_gpu.json"))
    c.add_argument("--profile", default="cpu", help="cpu or gpu (default cpu)")
    c.add_argument("--results", help="where the records are (default results/<profile>)")
    c.add_argument("--checkpoint", default="last", choices=["last", "best", "both"],
                   help="checkpoint of the accuracy columns (default last)")
    c.add_argument("--format", default="text", choices=["text", "markdown"], help="text (default) or markdown")
    c.add_argument("--protocol", default="common", choices=["common", "fastat"],
                   help="common: the compare.* runs (default); fastat: FastAT Benchmark's protocol (gpu profile)")
    c.add_argument("--bench", help="an advlit bench JSON file whose side-by-side ratios to join")


def _cmd_compare(args) -> int:
    from advlit import compare
    from advlit.experiments import check_profile, results_dir_for

    check_profile(args.profile)
    compare.metrics_for(args.profile, args.protocol)  # the fastat protocol at cpu: one line, status 2
    if args.bench and not Path(args.bench).is_file():
        raise ConfigError(f"--bench {args.bench}: no such file (write one with advlit bench --out FILE)")
    records = compare.collect_records(args.profile, args.results, protocol=args.protocol)
    if not any(records.values()):
        where = results_dir_for(args.profile, args.results)
        raise ConfigError(f"no current record of the comparison ({args.protocol} protocol) in {where}; make them "
                          f"with: {compare.HOW_TO_MAKE.format(profile=args.profile)}")
    checkpoint = ("best", "last") if args.checkpoint == "both" else args.checkpoint
    reference = compare.stored_reference(records, args.profile, args.results, args.protocol)
    table = compare.comparison_table(records, args.profile, checkpoint, protocol=args.protocol, reference=reference)
    if args.bench:
        table = compare.join_bench(table, args.bench, compare.protocol_epochs(args.profile, args.protocol))
    done = sum(1 for r in records.values() if r)
    print(f"{args.profile} profile, {args.protocol} protocol, {args.checkpoint} checkpoint: {done} of {len(records)} "
          f"methods with records; cost ratios from the records are not measured side by side")
    print(compare.format_table(table, args.format))
    for note in compare.masking_notes(records, args.profile, ("best", "last"), args.protocol, reference):
        print(f"note: {note}")
    return 0


def main(argv=None) -> int:
    try:
        try:
            configure_threads()
        except ValueError as err:
            raise ConfigError(str(err)) from None
        args = build_parser().parse_args(argv)
        handler = {"train": _cmd_train, "eval": _cmd_eval, "list": _cmd_list, "book": _cmd_book,
                   "data": _cmd_data, "bench": _cmd_bench, "grid": _cmd_grid, "compare": _cmd_compare}[args.command]
        return handler(args)
    except ConfigError as err:
        if os.environ.get("RANK", "0") == "0":  # under torchrun every rank fails alike: rank 0 says why
            print(f"advlit: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # the system refused a read or a write (a full disk, no permission)
        print(f"advlit: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("advlit: interrupted (resume with --resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
