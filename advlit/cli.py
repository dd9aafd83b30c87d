"""The ``advlit`` command line: ``train``, ``eval``, ``list``, ``data download`` and ``book run``.

Every user error (unknown method or dataset, eps outside (0, 1], a missing checkpoint or
dataset) prints one line ``advlit: error: ...`` and exits with status 2, never a traceback.
"""
from __future__ import annotations

import argparse
import json
import sys
from fractions import Fraction
from pathlib import Path

from advlit.utils import ConfigError


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump
        raise ConfigError(f"{message} (see '{self.prog} --help')")


def _number(text: str) -> float:
    """A float, or a fraction such as ``8/255``."""
    try:
        return float(Fraction(text))
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


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
    t.add_argument("--val-subset", type=int, help="validate on the first N validation examples")
    t.add_argument("--attacks", nargs="+", help="final test attacks (default clean fgsm pgd-20 pgd-50 cw-20)")
    t.add_argument("--final-subset", type=int, help="final evaluation on the first N test examples")
    t.add_argument("--device", help="cpu, cuda, cuda:1, ... (default cpu)")
    t.add_argument("--data-root", help="where vision datasets live (default $ADVLIT_DATA or ~/data)")
    t.add_argument("--out", required=True, help="output folder: record.json, checkpoint.pt, best.pt")
    t.add_argument("--resume", action="store_true", help="continue the interrupted run in --out")
    t.add_argument("--quiet", action="store_true", help="no progress bar")

    e = sub.add_parser("eval", help="evaluate a checkpoint under attacks")
    e.add_argument("--checkpoint", required=True, help="a checkpoint.pt or best.pt written by 'advlit train'")
    e.add_argument("--attacks", nargs="+", default=["clean", "fgsm", "pgd-20", "cw-20"], help="attack names")
    e.add_argument("--eps", type=_number, help="radius (default: the training eps)")
    e.add_argument("--split", default="test", help="test or val (default test)")
    e.add_argument("--subset", type=int, help="evaluate on the first N examples")
    e.add_argument("--data-root", help="where vision datasets live")
    e.add_argument("--device", default="cpu")
    e.add_argument("--json", action="store_true", help="print JSON instead of a table")

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


def _cmd_train(args) -> int:
    from advlit.train import Trainer

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
    record = Trainer(config, progress=not args.quiet).fit(args.out, resume=args.resume)
    _print_summary(record, args.out)
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
    import torch

    from advlit.config import RunConfig
    from advlit.data import get_dataset
    from advlit.evaluate import evaluate, format_table
    from advlit.results import model_from_checkpoint

    path = Path(args.checkpoint)
    if not path.is_file():
        raise ConfigError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location=args.device, weights_only=False)
        config = RunConfig.from_dict(state["config"])
    except Exception as err:  # not a file written by advlit
        raise ConfigError(f"{path} is not an advlit checkpoint ({type(err).__name__}: {err})") from None
    model = model_from_checkpoint(state, args.device)
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


def _cmd_data(args) -> int:
    from advlit.data import get_dataset

    for split in ("train", "test"):
        data = get_dataset(args.name, split, root=args.root, download=True)
        print(f"{args.name} {split}: {len(data)} examples")
    return 0


def _cmd_book(args) -> int:
    from advlit.book import run_notebooks

    params = {name: value for name, value in (args.parameter or [])}
    failures = run_notebooks(profile=args.profile, only=args.only, output_dir=args.output_dir, extra=params)
    return 1 if failures else 0


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
        handler = {"train": _cmd_train, "eval": _cmd_eval, "list": _cmd_list, "book": _cmd_book,
                   "data": _cmd_data}[args.command]
        return handler(args)
    except ConfigError as err:
        print(f"advlit: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("advlit: interrupted (resume with --resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
