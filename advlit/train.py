"""The training loop: data, model, optimizer, schedule, a method, evaluation, checkpoints.

The :class:`Trainer` knows nothing about any paper: it is given a built
:class:`~advlit.methods.Method` (:func:`advlit.runner.build_trainer` builds the method of a
configuration through the registry and hands it over). Per epoch it draws a permutation and
the crop/flip of every example from a generator seeded by ``(seed, epoch)``, hands the
method one :class:`~advlit.methods.Batch` at a time, evaluates on the validation split
(``val_attack``, to keep the *best* checkpoint as in Rice et al. 2020) and writes a
resumable checkpoint. A resumed run equals the uninterrupted one bit for bit on CPU.
The run's :class:`~advlit.precision.Precision` (``precision``, ``channels_last``,
``compile``) prepares the model and runs the steps and attacks under bf16 autocast when
asked; at its defaults it is the identity.
"""
from __future__ import annotations

import json
import logging
import os
import platform
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from tqdm.auto import tqdm

from advlit.analysis.overfitting import catastrophic_overfitting
from advlit.config import PRECISION_FIELDS, RunConfig
from advlit.data import Augmentation, dataset_info, get_dataset
from advlit.evaluate import evaluate, evaluate_eps_ratios, parse_attack
from advlit.fingerprint import code_fingerprint
from advlit.methods.base import Batch, Method, TrainContext
from advlit.models import get_model
from advlit.precision import Precision
from advlit.schedules import lr_schedule
from advlit.utils import get_rng_state, resolve_device, seed_everything, set_rng_state

log = logging.getLogger(__name__)

RECORD = "record.json"
CHECKPOINT = "checkpoint.pt"  # everything needed to resume
BEST = "best.pt"  # model weights of the best validation epoch


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The generator of an epoch's order and augmentation: a function of (seed, epoch) only."""
    return torch.Generator().manual_seed(1_000_003 * (seed + 1) + epoch)


def iterate_batches(data, batch_size: int, epoch: int, seed: int, augment: bool, device, shuffle: bool = True,
                    shard=None):
    """Yield the :class:`Batch` es of one epoch (shuffled; crop/flip if ``augment``).

    ``shard`` (a :class:`advlit.distributed.DataParallel`): yield this rank's shard of each
    batch, the permutation and crops/flips being drawn as for the whole batches."""
    n = len(data)
    gen = epoch_generator(seed, epoch)
    order = torch.randperm(n, generator=gen) if shuffle else torch.arange(n)
    info = data.info
    use_aug = augment and (info.pad > 0 or info.flip)
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        if shard is not None:
            aug = Augmentation.sample(len(idx), info.pad, info.flip, gen, device=device) if use_aug else None
            whole, (idx, aug) = len(idx), shard.shard(idx, aug)
            x, y = data.batch(idx, device=device)
            yield Batch(x=x if aug is None else aug.apply(x), y=y, idx=idx.to(device), aug=aug, epoch=epoch,
                        global_size=whole)
            continue
        x, y = data.batch(idx, device=device)
        aug = None
        if use_aug:
            aug = Augmentation.sample(len(idx), info.pad, info.flip, gen, device=device)
            x = aug.apply(x)
        yield Batch(x=x, y=y, idx=idx.to(device), aug=aug, epoch=epoch)


def cpu_name() -> str:
    """The processor's model name and the instruction set torch dispatches to (e.g.
    ``"Intel(R) Xeon(R) Processor / AVX512"``): float results of CPU training are
    reproducible bit for bit on the same processor type, not across types."""
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            name = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), name)
    except OSError:
        pass
    return f"{name} / {torch.backends.cpu.get_cpu_capability()}"


def environment() -> dict:
    """Versions and hardware, stored in every run record."""
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "cpu": cpu_name(),
        "threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def method_spec(method: Method) -> str:
    """The spec of a built method: its layers' registry names, outside in (``"piat+last+atas"``)."""
    names = [method.name]
    while method.wraps:
        method = method.base
        names.append(method.name)
    return "+".join(names)


def check_method_matches(method: Method, spec: str) -> None:
    """A record says which method made it (``config.method``): the given method must be that one."""
    from advlit.utils import ConfigError

    if not isinstance(method, Method):
        raise ConfigError(f"the trainer needs a built Method, got {type(method).__name__}")
    wanted = "+".join(layer.strip() for layer in spec.split("+") if layer.strip())
    if method_spec(method) != wanted:
        raise ConfigError(f"the method given to the trainer is {method_spec(method)!r}, "
                          f"but the configuration's is {wanted!r}")


class Trainer:
    """Train ``method``, the method of ``config``, on ``config.dataset``; see the module docstring.

    ``method`` is built and not yet set up (:func:`advlit.runner.build_method`); without it
    the trainer builds ``config.method`` that way itself (the form older callers use).
    ``dist``: this process's rank of a data-parallel run (:mod:`advlit.distributed`); rank 0
    validates, evaluates and writes, and only its :meth:`fit` returns the record.

    >>> from advlit.runner import build_method
    >>> config = RunConfig(method="fgsm_rs", eps=0.2, alpha_ratio=2)
    >>> record = Trainer(config, build_method(config)).fit("runs/x")
    """

    def __init__(self, config: RunConfig, method: Method | None = None, progress: bool | None = None, dist=None):
        self.config = config.validate()
        self.progress = progress if progress is not None else os.environ.get("ADVLIT_PROGRESS", "1") != "0"
        self.device = resolve_device(config.device)
        self.dist, self.is_main = dist, dist is None or dist.is_main
        if dist is not None:
            self.device, self.progress = dist.device(self.device), self.progress and dist.is_main
        info = dataset_info(config.dataset)
        self.info = info
        seed_everything(config.seed)
        self.train_set = get_dataset(config.dataset, "train", root=config.data_root)
        self.val_set = get_dataset(config.dataset, "val", root=config.data_root)
        if self.device.type == "cuda":  # whole splits on the GPU: no host-to-device copy per batch
            torch.backends.cudnn.benchmark = True
            self.train_set, self.val_set = self.train_set.to(self.device), self.val_set.to(self.device)
        normalize = (info.mean, info.std) if info.mean is not None else None
        self.precision = Precision.for_method(config.method, self.device, config.precision, config.channels_last,
                                              config.compile, config.method_args)  # fp32: the identity
        self.model = self.precision.prepare_model(get_model(
            config.model or info.default_model, info.num_classes, info.input_shape, normalize=normalize,
            **config.model_args).to(self.device))
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=config.lr, momentum=config.momentum,
                                         weight_decay=config.weight_decay)
        self.lr_at = lr_schedule(config.lr_schedule, config.lr, config.epochs, config.milestones)
        self.steps_per_epoch = -(-len(self.train_set) // config.batch_size)
        if method is None:  # the configuration alone: build its method as the runner does
            from advlit.runner import build_method

            method = build_method(config)
        check_method_matches(method, config.method)
        if dist is not None:
            dist.check(method, len(self.train_set), config.batch_size)
        self.method = method
        context = TrainContext(
            num_examples=len(self.train_set), input_shape=tuple(info.input_shape), num_classes=info.num_classes,
            epochs=config.epochs, steps_per_epoch=self.steps_per_epoch, device=self.device,
            pad=info.pad if config.augment else 0, lr_at=self.lr_at, peak_lr=config.lr,
            momentum=config.momentum, weight_decay=config.weight_decay, seed=config.seed,
        )
        self.method.setup(self.model, self.optimizer, context)
        if dist is not None:
            dist.attach(self.model, self.optimizer)
        self.history: list[dict] = []
        self.best = {"epoch": -1, "val_robust": -1.0}
        self.start_epoch = 0

    # ------------------------------------------------------------------ loop
    def train_epoch(self, epoch: int) -> dict:
        cfg = self.config
        self.model.train()
        self.method.on_epoch_start(self.model, epoch)
        totals = {"loss": 0.0, "acc": 0.0}
        n_seen = 0
        batches = iterate_batches(self.train_set, cfg.batch_size, epoch, cfg.seed, cfg.augment, self.device,
                                  shard=self.dist)
        bar = tqdm(batches, total=self.steps_per_epoch, desc=f"epoch {epoch + 1}/{cfg.epochs}",
                   disable=not self.progress, leave=False)
        extra: dict = {}
        for i, batch in enumerate(bar):
            lr = self.lr_at(epoch + (i + 1) / self.steps_per_epoch)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            batch.iteration = epoch * self.steps_per_epoch + i
            batch.x = self.precision.prepare_batch(batch.x)
            with self.dist.step(batch) if self.dist is not None else nullcontext(), self.precision.autocast():
                metrics = self.method.step(self.model, self.optimizer, batch)
            b = len(batch.y)
            n_seen += b
            for key, value in metrics.items():
                if key in totals:
                    totals[key] += value * b
                else:
                    extra[key] = value  # method-specific, last value of the epoch
            bar.set_postfix(loss=f"{metrics['loss']:.3f}", acc=f"{metrics['acc']:.2f}")
        if self.dist is not None:  # every rank: the full per-example buffers and the epoch's totals
            order = torch.randperm(len(self.train_set), generator=epoch_generator(cfg.seed, epoch))
            self.dist.sync_examples(self.method, order, cfg.batch_size)
            totals["loss"], totals["acc"], n_seen = self.dist.sum([totals["loss"], totals["acc"], n_seen], self.device)
        hook = self.method.on_epoch_end(self.model, epoch) or {}
        out = {"train_loss": totals["loss"] / n_seen, "train_acc": 100 * totals["acc"] / n_seen, "lr": lr}
        out.update({f"method_{k}": v for k, v in {**extra, **hook}.items()})
        return out

    def validate(self, epoch: int) -> dict:
        cfg = self.config
        attacks = ["clean", "fgsm", cfg.val_attack]
        with self.precision.attack_autocast(attacks):
            res = evaluate(self.model, self.val_set, cfg.eps, attacks=attacks,
                           alpha_ratio=cfg.eval_alpha_ratio, subset=cfg.val_subset, seed=cfg.seed + epoch)
        return {"val_clean": res["clean"], "val_fgsm": res["fgsm"], "val_robust": res[cfg.val_attack]}

    def fit(self, out_dir: str | Path | None = None, resume: bool = False, stop_after: int | None = None) -> dict:
        """Train to the end (or until ``stop_after`` epochs are done) and return the run record.

        With ``out_dir`` the record, the resumable checkpoint and the best weights are
        written there after every epoch; ``resume=True`` continues from that checkpoint.
        """
        cfg = self.config
        out = Path(out_dir) if out_dir is not None else None
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            if resume:
                self.load_checkpoint(out / CHECKPOINT)
        end = cfg.epochs if stop_after is None else min(cfg.epochs, stop_after)
        for epoch in range(self.start_epoch, end):
            t0 = time.perf_counter()
            row = {"epoch": epoch + 1, **self.train_epoch(epoch)}
            row["seconds"] = time.perf_counter() - t0
            if self.is_main and ((epoch + 1) % cfg.val_every == 0 or epoch + 1 == cfg.epochs):
                row.update(self.validate(epoch))
                if row["val_robust"] > self.best["val_robust"]:
                    self.best = {"epoch": epoch + 1, "val_robust": row["val_robust"],
                                 "state": {k: v.detach().clone() for k, v in self.model.state_dict().items()}}
                    if out is not None:
                        torch.save({"config": cfg.to_dict(), "model": self.best["state"], "epoch": epoch + 1},
                                   out / BEST)
            self.history.append(row)
            log.info("epoch %d: %s", epoch + 1, row)
            self.start_epoch = epoch + 1
            if out is not None and self.is_main:
                self.save_checkpoint(out / CHECKPOINT)
                self.write_record(out / RECORD, final=None)
            if self.dist is not None:
                self.dist.barrier()  # the others wait for rank 0's validation and checkpoint
        if not self.is_main:
            return None
        record = self.record(final=None)
        if self.start_epoch == cfg.epochs:
            record = self.record(final=self.final_evaluation())
            if out is not None:
                self.write_record(out / RECORD, final=record["final"])
        return record

    # --------------------------------------------------------------- results
    def final_evaluation(self) -> dict:
        """The test-split evaluation of the last and the best checkpoints (evaluated once
        when the best epoch is the last one: same weights, same attack seeds). AutoAttack
        and APGD-CE run on ``aa_subset``; with ``final_eps_ratios`` every attack but clean
        is run again at each ``r * eps`` (keys ``"pgd-20@2eps"``)."""
        cfg = self.config
        test = get_dataset(cfg.dataset, "test", root=cfg.data_root)
        results = {}
        last_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        for which, state in (("last", last_state), ("best", self.best.get("state"))):
            if state is None:
                continue
            if which == "best" and self.best["epoch"] == len(self.history) and "last" in results:
                results["best"] = dict(results["last"])  # the same weights and attack seeds
                continue
            self.model.load_state_dict(state)
            plain = [a for a in cfg.final_attacks if parse_attack(a).kind != "aa"]
            with self.precision.attack_autocast(plain):
                res = evaluate(self.model, test, cfg.eps, attacks=plain, alpha_ratio=cfg.eval_alpha_ratio,
                               subset=cfg.final_subset, seed=cfg.seed)
            aa = [a for a in cfg.final_attacks if parse_attack(a).kind == "aa"]  # AutoAttack, APGD-CE
            if aa:  # outside autocast: fp32 (advlit.precision.FP32_ATTACKS)
                res.update(evaluate(self.model, test, cfg.eps, attacks=aa, subset=cfg.aa_subset or cfg.final_subset,
                                    seed=cfg.seed))
            if cfg.final_eps_ratios:  # the same attacks at r * eps: "pgd-20@2eps", ...
                with self.precision.attack_autocast(plain):
                    res.update(evaluate_eps_ratios(self.model, test, cfg.eps, cfg.final_eps_ratios, plain,
                                                   alpha_ratio=cfg.eval_alpha_ratio, subset=cfg.final_subset,
                                                   seed=cfg.seed))
                if aa:
                    res.update(evaluate_eps_ratios(self.model, test, cfg.eps, cfg.final_eps_ratios, aa,
                                                   subset=cfg.aa_subset or cfg.final_subset, seed=cfg.seed))
            results[which] = res
        self.model.load_state_dict(last_state)
        return results

    def record(self, final: dict | None) -> dict:
        cfg = self.config
        secs = [r["seconds"] for r in self.history]
        return {
            "config": cfg.to_dict(),
            "config_hash": cfg.hash(),
            "code": code_fingerprint(cfg),
            "method": self.method.describe(),
            "epochs_done": len(self.history),
            "complete": final is not None,
            "history": self.history,
            "best_epoch": self.best["epoch"],
            "overfitting": catastrophic_overfitting(self.history),
            "seconds_per_epoch": sum(secs) / len(secs) if secs else None,
            "final": final,
            "environment": environment() if self.dist is None else {**environment(),
                                                                   "data_parallel": self.dist.describe()},
            # the precision used ("auto" resolved), only in a run that sets one: a default record is unchanged
            **({"precision": self.precision.to_dict()} if cfg.to_dict().keys() & PRECISION_FIELDS else {}),
        }

    def write_record(self, path: Path, final: dict | None) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.record(final), indent=1, default=float))
        tmp.replace(path)

    def save_checkpoint(self, path: Path) -> None:
        state = {
            "config": self.config.to_dict(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "method": self.method.state_dict(),
            "rng": get_rng_state() if self.dist is None else self.dist.rng_state(get_rng_state()),
            "history": self.history,
            "best": self.best,
            "start_epoch": self.start_epoch,
        }
        tmp = path.with_suffix(".tmp")
        torch.save(state, tmp)
        tmp.replace(path)

    def load_checkpoint(self, path: Path) -> None:
        if not Path(path).exists():
            from advlit.utils import ConfigError

            raise ConfigError(f"cannot resume: no checkpoint at {path}")
        state = torch.load(path, map_location=self.device, weights_only=False)
        if state["config"] != self.config.to_dict():
            from advlit.utils import ConfigError

            raise ConfigError(f"cannot resume: the checkpoint at {path} was written by a different configuration")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.method.load_state_dict(state["method"])
        self.history = state["history"]
        self.best = state["best"]
        self.start_epoch = state["start_epoch"]
        set_rng_state(state["rng"])
        if self.dist is not None:
            self.dist.restore_rng(state["rng"])


def train(config: RunConfig, out_dir=None, resume: bool = False, progress: bool | None = None) -> dict:
    """Build a :class:`Trainer` for ``config`` and run it; return the run record
    (:func:`advlit.runner.train`, kept here for older callers)."""
    from advlit.runner import train as run

    return run(config, out_dir, resume=resume, progress=progress)
