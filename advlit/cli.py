"""The ``advlit`` command line: ``train``, ``eval``, ``bench``, ``list``, ``data download`` and ``book run``.

Every user error (unknown method or dataset, eps outside (0, 1], a missing or damaged
checkpoint, a missing dataset, an unusable device or ``--out``) prints one line
``advlit: error: ...`` and exits with status 2, never a traceback; a file the system cannot
write (a full disk) is one line and status 1. A failed command leaves the files the user
already has (checkpoints, run records) as they were.
"""
from __future__ import annotations

import argparse
import json
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
    lines.append("attacks:  clean, fgsm, pgd-K, pgd-KxR (R restarts), cw-K, cw-KxR, aa, aa-fast")
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
                   help="method hyper-parameter (JSON value); 'last.gamma=0.8' targets a framework layer")
    t.add_argument("--model-arg", action="append", metavar="KEY=VALUE", help="model argument, e.g. depth=28")
    t.add_argument("--epochs", type=int, help="training epochs (default 30)")
    t.add_argument("--batch-size", type=int, help="batch size (default 128)")
    t.add_argument("--lr", type=_number, help="peak learning rate (default 0.1)")
    t.add_argument("--lr-schedule", help="cyclic, piecewise, multistep or constant (default cyclic)")
    t.add_argument("--milestones", type=int, nargs="*", help="epochs where multistep divides the LR by 10")
    t.add_argument("--momentum", type=_number, help="SGD momentum (default 0.9)")
    t.add_argument("--weight-decay", type=_number, help="SGD weight decay (default 5e-4)")
    t.add_argument("--no-augment", dest="augment", action="store_false", default=None,
                   help="turn off the dataset's crop/flip augmentation")
    t.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    t.add_argument("--val-attack", help="attack on the validation split that picks the best epoch and flags collapses (default pgd-20)")
    t.add_argument("--val-subset", type=_positive_int, help="validate on the first N validation examples")
    t.add_argument("--attacks", nargs="+", help="final test attacks (default clean fgsm pgd-20 pgd-50 cw-20)")
    t.add_argument("--final-subset", type=_positive_int, help="final evaluation on the first N test examples")
    t.add_argument("--device", help="cpu, cuda, cuda:1, ... (default cpu)")
    t.add_argument("--data-root", help="where vision datasets live (default $ADVLIT_DATA or ~/data)")
    t.add_argument("--out", required=True, help="output folder: record.json, checkpoint.pt, best.pt")
    t.add_argument("--resume", action="store_true", help="continue the interrupted run in --out")
    t.add_argument("--quiet", action="store_true", help="no progress bar (as does ADVLIT_PROGRESS=0)")

    e = sub.add_parser("eval", help="evaluate a checkpoint under attacks")
    e.add_argument("--checkpoint", required=True, help="a checkpoint.pt or best.pt written by 'advlit train'")
    e.add_argument("--attacks", nargs="+", default=["clean", "fgsm", "pgd-20", "cw-20"], help="attack names")
    e.add_argument("--eps", type=_number, help="radius (default: the training eps)")
    e.add_argument("--split", default="test", help="test or val (default test)")
    e.add_argument("--subset", type=_positive_int, help="evaluate on the first N examples")
    e.add_argument("--data-root", help="where vision datasets live")
    e.add_argument("--device", default="cpu")
    e.add_argument("--json", action="store_true", help="print JSON instead of a table")

    bn = sub.add_parser("bench", help="measure each method's seconds per training step, side by side")
    bn.add_argument("--methods", nargs="+", help="method specs (default fgsm_rs atas gradalign free_at pgd_at)")
    bn.add_argument("--model", help="model name (default: the dataset's default model)")
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

    ls = sub.add_parser("list", help="list methods, datasets, models and named experiments")
    ls.add_argument("what", nargs="?", default="all", choices=["all", "methods", "datasets", "models", "experiments"])

    d = sub.add_parser("data", help="download a vision dataset (needs internet)")
    dsub = d.add_subparsers(dest="data_command", required=True, parser_class=_Parser)
    dd = dsub.add_parser("download", help="download NAME into --root (train and test splits)")
    dd.add_argument("name", help="cifar10, cifar100 or svhn (Tiny ImageNet: see the error message for its URL)")
    dd.add_argument("--root", help="target folder (default $ADVLIT_DATA or ~/data)")

    b = sub.add_parser("book", help="run the book's notebooks with papermill")
    bsub = b.add_subparsers(dest="book_command", required=True, parser_class=_Parser)
    br = bsub.add_parser("run", help="execute every chapter at a profile (regenerates its run records)")
    br.add_argument("--profile", default="cpu", help="cpu or gpu")
    br.add_argument("--only", nargs="*", help="notebook names (stems) to run")
    br.add_argument("--output-dir", help="write executed notebooks here instead of in place")
    br.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"),
                    help="extra papermill parameter for every notebook")
    return parser


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
    from advlit.train import CHECKPOINT, Trainer

    out = Path(args.out)
    _check_out(out, args.resume)
    overrides = {
        "method": args.method, "dataset": args.dataset, "model": args.model, "eps": args.eps,
        "alpha_ratio": args.alpha_ratio, "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
        "lr_schedule": args.lr_schedule, "milestones": args.milestones, "momentum": args.momentum,
        "weight_decay": args.weight_decay, "augment": args.augment, "val_attack": args.val_attack,
        "val_subset": args.val_subset, "final_attacks": args.attacks, "final_subset": args.final_subset,
        "device": args.device, "data_root": args.data_root,
        "method_args": _key_values(args.method_arg) or None, "model_args": _key_values(args.model_arg) or None,
    }
    if args.experiment:
        from advlit.experiments import get_config

        config = get_config(args.experiment, args.profile, seed=args.seed, **overrides)
    else:
        config = config_with_method_defaults(args.seed, {k: v for k, v in overrides.items() if v is not None})
    check_device(config.device)
    if args.resume:  # a damaged checkpoint: one line before anything is built or written
        from advlit.checkpoint_io import RESUMABLE_KEYS, read_checkpoint

        try:
            read_checkpoint(out / CHECKPOINT, keys=RESUMABLE_KEYS, hint=_resume_hint(out))
        except ConfigError as err:
            raise ConfigError(f"cannot resume: {err}") from None
    # --quiet turns the progress bar off; otherwise the Trainer reads ADVLIT_PROGRESS
    trainer = Trainer(config, progress=False if args.quiet else None)
    if args.resume:
        _check_resumable(out, trainer)  # loads the checkpoint into the trainer: fit() need not load it again
    record = trainer.fit(out)
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
    from advlit.data import get_dataset
    from advlit.evaluate import evaluate, format_table

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
    data = get_dataset(config.dataset, args.split, root=args.data_root or config.data_root)
    res = evaluate(model, data, eps, attacks=args.attacks, subset=args.subset, alpha_ratio=config.eval_alpha_ratio)
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
    out = bench(methods=args.methods, model=args.model, dataset=args.dataset, batch_size=args.batch_size,
                steps=args.steps, warmup=args.warmup, rounds=args.rounds, device=args.device, eps=args.eps,
                profile=args.profile, eval_attacks=args.attacks, autoattack=args.autoattack, seed=args.seed)
    print(format_bench(out))
    if out_path is not None:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(out, indent=1) + "\n")
        print(f"wrote {out_path}")
    return 0


def _cmd_data(args) -> int:
    from advlit.data import get_dataset

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


def main(argv=None) -> int:
    try:
        try:
            configure_threads()
        except ValueError as err:
            raise ConfigError(str(err)) from None
        args = build_parser().parse_args(argv)
        handler = {"train": _cmd_train, "eval": _cmd_eval, "list": _cmd_list, "book": _cmd_book,
                   "data": _cmd_data, "bench": _cmd_bench}[args.command]
        return handler(args)
    except ConfigError as err:
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
