"""The configuration of one training run, its validation, and its stable hash."""
from __future__ import annotations

import hashlib
import json
from dataclasses import MISSING, asdict, dataclass, field, fields

from advlit.utils import ConfigError

LR_SCHEDULES = ("cyclic", "piecewise", "multistep", "linear_decay", "constant")

#: fields added after records existed: left out of :meth:`RunConfig.to_dict` (so of the
#: hash, the run records and the checkpoints) while unset (``None``, empty, or equal to the
#: field's own default: ``precision="fp32"``, ``channels_last=False``, ``compile=False``), so
#: a config that does not use them has the dictionary and the hash it had before they existed
OPTIONAL_FIELDS = ("final_eps_ratios", "precision", "channels_last", "compile")
#: the optional fields that are :mod:`advlit.precision`'s speed settings: a run that sets one
#: records the precision it used and depends on advlit/precision.py's code
PRECISION_FIELDS = frozenset({"precision", "channels_last", "compile"})


def _unset(value, default) -> bool:
    """Whether an optional field's value leaves it out of :meth:`RunConfig.to_dict`."""
    if value is None or (hasattr(value, "__len__") and not isinstance(value, str) and len(value) == 0):
        return True
    return type(value) is type(default) and value == default


def check_eps_ratios(ratios, eps: float) -> None:
    """``final_eps_ratios`` (``None`` or empty: unset): positive numbers, none equal to 1 (eps
    itself is always evaluated), no two with the same result key, every ``r * eps`` at most
    1; otherwise one :class:`ConfigError` line."""
    from advlit.evaluate import eps_ratio_key

    if not ratios:
        return
    bad = None
    if not isinstance(ratios, (list, tuple)):
        bad = "a list of numbers"
    elif not all(isinstance(r, (int, float)) and not isinstance(r, bool) and r > 0 for r in ratios):
        bad = "positive numbers"
    elif any(eps_ratio_key("", r) == eps_ratio_key("", 1) for r in ratios):
        bad = "different from 1 (eps itself is always evaluated)"
    elif len({eps_ratio_key("", r) for r in ratios}) < len(ratios):
        bad = "distinct"
    elif max(ratios) * float(eps) > 1.0:
        bad = f"at most 1 / eps = {1.0 / float(eps):g} (the final eps r * eps must lie in (0, 1])"
    if bad:
        raise ConfigError(f"final eps ratios must be {bad}, got {ratios!r}")


@dataclass
class RunConfig:
    """Everything that determines a training run (and so its results).

    ``eps`` and the step sizes are in pixel units ([0, 1] scale). ``alpha_ratio`` sets the
    method's step as ``alpha_ratio * eps`` (``None``: the method's own default).
    ``final_attacks`` are run on the test split for the best and the last checkpoint.
    ``val_attack`` is the PGD-20 of the test tables by default: with PGD-10 a collapsed
    FGSM-RS run on digits16 still kept 5 % validation accuracy (10 of 200 images) where
    PGD-20 finds 2.5 %, so the weaker attack blurs the catastrophic-overfitting verdict.
    ``final_eps_ratios`` (e.g. ``[2.0]``) also runs every final attack but ``clean`` at
    ``r * eps`` for each ratio ``r``, with the same step ratios, stored as
    ``"pgd-20@2eps"`` (:func:`advlit.evaluate.eps_ratio_key`): LAST's Table I trains at 8/255
    and evaluates the same model at 8/255 and 16/255. Validation stays at ``eps``.
    ``precision`` (``"fp32"``, ``"bf16"`` or ``"auto"``), ``channels_last`` and ``compile``
    are the speed settings of :mod:`advlit.precision` (bf16 autocast of the training steps and
    attacks, the memory format, ``torch.compile``); at their defaults they change nothing.
    """

    method: str = "fgsm_rs"
    dataset: str = "digits16"
    eps: float = 0.2
    alpha_ratio: float | None = None
    method_args: dict = field(default_factory=dict)
    model: str | None = None  # None: the dataset's default model
    model_args: dict = field(default_factory=dict)
    epochs: int = 30
    batch_size: int = 128
    lr: float = 0.1  # peak learning rate
    lr_schedule: str = "cyclic"
    milestones: list = field(default_factory=list)  # epochs, for "multistep" and "linear_decay"
    momentum: float = 0.9
    weight_decay: float = 5e-4
    augment: bool = True  # the dataset's crop/flip, if it has one
    seed: int = 0
    val_attack: str = "pgd-20"  # selects the best checkpoint and flags collapses on the validation split
    val_every: int = 1
    val_subset: int | None = None
    eval_alpha_ratio: float = 0.25
    final_attacks: list = field(default_factory=lambda: ["clean", "fgsm", "pgd-20", "pgd-50", "cw-20"])
    final_subset: int | None = None
    aa_subset: int | None = None  # AutoAttack on the first n test points (None: as final_subset)
    device: str = "cpu"
    data_root: str | None = None
    final_eps_ratios: list | None = None  # also evaluate at r * eps (see OPTIONAL_FIELDS)
    precision: str = "fp32"  # "bf16": autocast (advlit.precision); "auto": bf16 where safe on CUDA
    channels_last: bool = False  # model and inputs in torch.channels_last
    compile: bool = False  # torch.compile the model in place

    def validate(self) -> "RunConfig":
        """Check every field; raise :class:`ConfigError` with one clear line."""
        from advlit.data import available_datasets
        from advlit.evaluate import parse_attack
        from advlit.methods import method_class
        from advlit.precision import check_run_options

        if not (0.0 < float(self.eps) <= 1.0):
            raise ConfigError(f"eps must lie in (0, 1] (pixel scale, e.g. 0.0314 for 8/255), got {self.eps}")
        if self.dataset not in available_datasets():
            raise ConfigError(f"unknown dataset {self.dataset!r}; datasets: {', '.join(available_datasets())}")
        for layer in self.method.split("+"):
            method_class(layer.strip())
        if self.alpha_ratio is not None and self.alpha_ratio <= 0:
            raise ConfigError(f"alpha ratio must be positive, got {self.alpha_ratio}")
        if self.epochs < 1:
            raise ConfigError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ConfigError(f"batch size must be >= 1, got {self.batch_size}")
        if self.lr <= 0:
            raise ConfigError(f"learning rate must be positive, got {self.lr}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(f"unknown LR schedule {self.lr_schedule!r}; choose from {', '.join(LR_SCHEDULES)}")
        for attack in [self.val_attack, *self.final_attacks]:
            parse_attack(attack)
        check_eps_ratios(self.final_eps_ratios, self.eps)
        check_run_options(self.method, self.precision, self.channels_last, self.compile)
        return self

    def to_dict(self) -> dict:
        d = asdict(self)
        for f in fields(self):
            if f.name in OPTIONAL_FIELDS and _unset(d[f.name], f.default if f.default is not MISSING else None):
                d.pop(f.name)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown run-config field(s): {', '.join(unknown)}")
        return cls(**d)

    def hash(self) -> str:
        """A stable hash of everything that changes results (not the data path)."""
        d = self.to_dict()  # without the unset OPTIONAL_FIELDS
        d.pop("data_root")
        if "final_eps_ratios" in d:  # [2] and [2.0] are the same evaluation
            d["final_eps_ratios"] = [float(r) for r in d["final_eps_ratios"]]
        d["device"] = "cuda" if str(d["device"]).startswith("cuda") else str(d["device"])
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:12]
