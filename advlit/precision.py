"""Speed on a GPU: bf16 autocast, ``channels_last`` and ``torch.compile`` for training steps
and attacks, and which methods autocast leaves unchanged (issue 16, "Speed on a GPU").

    >>> prec = Precision.for_method("fgsm_rs", "cuda")      # bf16 + channels_last on CUDA, fp32 on CPU
    >>> model = prec.prepare_model(model)                   # before the optimizer and Method.setup
    >>> x_all = prec.prepare_batch(x_all)
    >>> with prec.autocast():
    ...     method.step(model, optimizer, batch)
    >>> with prec.attack_autocast("pgd-20"):
    ...     evaluate(model, test_set, eps, attacks=["pgd-20"])

:class:`Precision` holds four settings, ``precision`` (``"fp32"``, ``"bf16"``; ``"fp16"`` is
refused, see below), ``device``, ``channels_last`` and ``compile``, and gives

- :meth:`Precision.autocast`: ``torch.autocast(device_type, torch.bfloat16)`` for bf16, a
  no-op for fp32 (bit-identical results). One context around the whole
  :meth:`~advlit.methods.Method.step` (attack, loss, backward, ``optimizer.step()``):
  autocast only lowers the operations of its list (convolutions, linear layers, matrix
  products); parameters, their gradients, the optimizer's arithmetic and every elementwise
  update stay fp32.
- :meth:`Precision.prepare_model` (in place, returns the same module): ``channels_last``
  memory format (4-D weights only), a forward hook that returns the model's outputs in fp32
  when autocast is on, and ``nn.Module.compile()`` (in place: the parameters, the
  ``state_dict`` keys, ``copy.deepcopy`` proxies and the checkpoints stay those of the
  plain module).
- :meth:`Precision.prepare_batch`: ``channels_last`` for 4-D inputs, unchanged otherwise.
- :meth:`Precision.describe`: one line for logs and the bench table.

**fp32 logits.** Every loss, softmax, KL and margin of the methods and attacks is computed
from the model's outputs, which the hook of :meth:`Precision.prepare_model` casts to fp32.
Autocast's own lists do not guarantee that everywhere: on CUDA ``softmax``, ``log_softmax``
and ``sum`` run in fp32, on the CPU they run in bf16 (measured, torch 2.14), where a
probability above 0.998 rounds to 1 (MART's ``log(1 - p)`` then breaks) and CUDA's and CPU's
results would differ. With the hook only the network's interior runs in bf16; the verdicts
of :data:`AUTOCAST_SAFE` assume it.

**Attacks under autocast.** The attacked input is an fp32 leaf; the first convolution casts
it (after the fp32 ``Normalize``) to bf16, and the cast's backward returns the input
gradient in fp32 dtype, with bf16's relative precision (2^-8). :mod:`advlit.attacks.pgd`
makes no dtype assumption that this breaks: the random start, ``sign()``, the step and the
projection (:func:`~advlit.methods.base.clamp_to_ball`) are fp32 elementwise operations on
fp32 tensors, per-example budgets are cast ``.to(x)``, and the restart comparison uses the
fp32 cross-entropy. bf16 has fp32's exponent range, so no gradient underflows to a zero sign
that fp32 would not give. Measured on the committed ``basics.pgd_at_long`` model (seed 0,
digits16 test split, 397 images, PGD-20 at eps = 0.2, CPU): 42.07 % in fp32 and, under bf16
autocast, 42.57 % on an AMD EPYC (AVX2) and 43.07 % on an Intel Xeon (AVX512), 2 and 4 images
apart (the CPU's bf16 kernels round differently); ``tests/test_precision.py`` checks the gap
stays within 1.5 points (6 images).
AutoAttack (``aa``, ``aa-fast``) and its APGD-CE alone (``apgd-ce``) are not validated under
autocast (APGD's step-size control compares loss values, the DLR loss divides logit
differences): :meth:`Precision.attack_autocast` runs them in fp32.

**fp16 is refused.** fp16 needs a ``GradScaler``: the loss must be scaled before
``backward()`` and the gradients unscaled (and inf-checked) before ``optimizer.step()``. The
methods call both themselves inside ``Method.step`` (and several take parameter gradients
with ``torch.autograd.grad`` or set ``.grad`` by hand), so a scaler cannot be slotted in
without editing every method; and the attacks' unscaled input gradients could underflow in
fp16 and lose their sign. bf16 (A100, H100, H200: the same tensor-core throughput as fp16)
needs no scaler. ``Precision("fp16", ...)`` raises one :class:`~advlit.utils.ConfigError`
line saying so.

**torch.compile** is optional (``compile=True``) and off by default. When it is unavailable
(no ``nn.Module.compile``, a Python that TorchDynamo does not support, no C++ compiler for
the CPU backend, no Triton for CUDA) :class:`Precision` raises one ConfigError line rather
than silently running uncompiled, because a benchmark or a run record would then claim a
setting it did not use. Methods that differentiate twice (``create_graph=True``: GradAlign,
Fast-BAT) cannot be compiled (AOT autograd raises "torch.compile with aot_autograd does not
currently support double backward", measured with torch 2.14), and YOPO's forward hooks end a
pass with an exception (not tried under compile): :data:`COMPILE_UNSUPPORTED`,
:func:`check_compile`.

**Which methods run in bf16 by default.** :data:`AUTOCAST_SAFE` gives every registered
method and framework a verdict: ``"yes"`` (autocast changes only the rounding inside the
network: forward passes, losses on fp32 logits, signed input-gradient steps, elementwise
updates of fp32 parameters), ``"doubtful"`` (a quantity the method acts on is near bf16's
resolution, or not validated) or ``"no"`` (a part of the method is known to be changed), with
the reason. :meth:`Precision.for_method` with ``precision="auto"`` chooses bf16 only on CUDA
(with native bf16) and only when every layer of the method spec says ``"yes"``; an explicit
``precision="bf16"`` on another method is obeyed with a logged warning.
:data:`OPTION_VERDICTS` refines a verdict by a method argument (MAIL and CFA with their
``base``).

**In training.** :class:`~advlit.config.RunConfig` has ``precision`` (``"fp32"``, the
default, ``"bf16"`` or ``"auto"``), ``channels_last`` and ``compile`` (``advlit train
--precision bf16 --channels-last --compile``), checked by :func:`check_run_options`. The
:class:`~advlit.train.Trainer` builds ``Precision.for_method(...)`` from them, prepares the
model before the optimizer and the method's setup, runs every
:meth:`~advlit.methods.Method.step` under :meth:`Precision.autocast` and the validation and
final attacks under :meth:`Precision.attack_autocast`. At the defaults (fp32, no
``channels_last``, no compile) every one of these is the identity (no hook, a null context,
the batch itself), so a default run is the run it was before, bit for bit, and its
configuration dictionary and hash leave the three fields out
(:data:`advlit.config.OPTIONAL_FIELDS`). ``advlit bench`` takes the same options
(``--precision``, ``--channels-last``, ``--compile``).
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
import os
import shutil
from pathlib import Path

import torch
from torch import Tensor, nn

from advlit.utils import ConfigError

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "bf16", "fp16")
#: the values of :attr:`advlit.config.RunConfig.precision` (``"auto"``: see :meth:`Precision.for_method`)
RUN_PRECISIONS = ("fp32", "bf16", "auto")
VERDICTS = ("yes", "doubtful", "no")
#: attacks that run in fp32 even when autocast is on (not validated under autocast); every
#: attack of :func:`advlit.evaluate.parse_attack`'s kind ``"aa"`` (APGD-CE too) is treated so
FP32_ATTACKS = ("aa", "aa-fast", "apgd-ce")
AUTOCAST_MD = Path(__file__).resolve().parent.parent / "book" / "_generated" / "autocast.md"

_TRADES = ("TRADES' KL attack starts 0.001 N(0, I) from x, where the KL and its gradient are at the "
           "level of bf16 rounding: on the basics.pgd_at_long model the first step's gradient sign agrees "
           "with fp32 on 59 % of the coordinates (CE from a uniform start: 94 %)")
_LAS = ("the policy's rewards L2/L3 score a one-SGD-step look-ahead copy whose change from the weights "
        "(lr x grad) is near bf16's weight resolution, and REINFORCE learns from reward differences "
        "between strategies")
_AWP = ("the weight perturbation (gamma = 5e-3 of each layer's norm; 0.01 in LAS-AWP) is of the order "
        "of the rounding (2^-9 relative) the layers apply to the perturbed weights in bf16")

#: method or framework name -> (verdict, reason): does bf16 autocast (with fp32 logits, see
#: the module docstring) leave the method's semantics unchanged?
AUTOCAST_SAFE: dict[str, tuple[str, str]] = {
    "standard": ("yes", "forward passes and CE only"),
    "fgsm": ("yes", "one signed input-gradient step from zero; CE on fp32 logits"),
    "fgsm_rs": ("yes", "one signed input-gradient step from a uniform start; CE on fp32 logits"),
    "pgd_at": ("yes", "signed PGD steps and projection in fp32; CE on fp32 logits"),
    "free_at": ("yes", "the replayed perturbation moves by the sign of the (fp32-dtype) input gradient"),
    "alp": ("yes", "PGD-AT plus the squared distance of fp32 logits"),
    "mart": ("yes", "CE-PGD (from x + 0.001 N: the CE gradient does not vanish there) and MART's loss on "
                    "fp32 logits"),
    "atta": ("yes", "one signed step of fixed size from the stored perturbation"),
    "atas": ("yes", "the step gamma / (c + sqrt(v)) is a continuous function of the gradient norm, which "
                    "bf16 changes by its rounding (2^-8 relative); no threshold"),
    "fgsm_bp": ("yes", "signed FGSM step from a stored prior; regulariser on fp32 logits"),
    "fgsm_ep": ("yes", "signed FGSM step from a stored prior; regulariser on fp32 logits"),
    "fgsm_mep": ("yes", "signed FGSM step from a stored prior; the L1-normalised momentum is continuous"),
    "fgsm_ckpt": ("yes", "signed FGSM step; the checkpoint test is an argmax"),
    "ssat": ("yes", "signed FGSM step; the checkpoint test is an argmax"),
    "fgsm_sdi": ("yes", "the generator (auxiliary, in bf16 too) proposes a start that a signed FGSM step "
                        "and the fp32 projection follow; Adam updates its fp32 parameters"),
    "gat": ("yes", "Bernoulli start eps/2 away, signed step; regulariser on fp32 softmax"),
    "nuat": ("yes", "Bernoulli start, signed step; nuclear norm (an SVD) of the fp32 logit difference"),
    "yopo": ("yes", "the adjoint p and the Hamiltonian come from bf16 activations; the inner steps take "
                    "signs; parameter gradients accumulate in fp32"),
    "mail": ("yes", "base='at' (default): CE-PGD from x + 0.001 N as in MART; weights from fp32 "
                    "probabilities (base='trades': doubtful, see trades)"),
    "trades": ("doubtful", _TRADES),
    "lbgat": ("doubtful", _TRADES),
    "cfa": ("doubtful", "base='trades' (default): " + _TRADES + " (base='at': yes)"),
    "rat": ("no", "its randomised-weight attack adds sigma = 1e-4 noise to the convolution weights, of the "
                  "order of or below the rounding bf16 applies to them (2^-9 of a weight of 0.05 is 1e-4), so "
                  "much of the noise vanishes in the attack's forward passes; and TRADES' KL attack"),
    "awp": ("doubtful", _AWP),
    "las_pgd_at": ("doubtful", _LAS),
    "las_trades": ("doubtful", _LAS + "; and " + _TRADES),
    "las_awp": ("doubtful", _LAS + "; and " + _AWP),
    "gradalign": ("doubtful", "the regulariser 1 - cos of two input gradients and its double backprop "
                              "come from bf16 backward passes; not validated"),
    "sub_at": ("doubtful", "phase 2 projects the parameter gradient with a matrix product "
                           "(basis^T (basis g)) that autocast runs in bf16: the step leaves the PCA "
                           "subspace by about 2^-8 of its norm"),
    "dyart": ("no", "the boundary search (bisection, keep test) compares the soft margin with 0 at the "
                    "resolution of bf16 logits and the weights divide by bf16 gradient norms; lam = 1000 "
                    "amplifies the error"),
    "fast_bat": ("no", "its unsigned steps (alpha = 5000/255 or 2000/255) move by the bf16-rounded gradient values, "
                       "the interior mask uses a 1e-7 tolerance and the implicit cross term is a double "
                       "backprop through bf16"),
    "last": ("yes", "the proxy step and theta - gamma (theta - omega) are elementwise on fp32 parameters; "
                    "the SD loss is on fp32 logits; the spec's verdict is its base's"),
    "piat": ("yes", "the interpolation acts on fp32 parameters at the epoch's end (outside the step)"),
    "nmse": ("yes", "normalised distance of fp32 logits"),
    "subset": ("yes", "keeps rows of the batch; the base decides"),
}

#: name -> {(argument, value): (verdict, reason)}: a method argument that changes the verdict
OPTION_VERDICTS: dict[str, dict[tuple[str, object], tuple[str, str]]] = {
    "mail": {("base", "trades"): ("doubtful", _TRADES)},
    "cfa": {("base", "at"): ("yes", "base='at': CE-PGD at each class's radius; CE on fp32 logits")},
}

#: name -> why ``torch.compile`` is refused for a spec containing it
COMPILE_UNSUPPORTED: dict[str, str] = {
    "gradalign": "double backprop (create_graph=True), which torch.compile's AOT autograd does not support",
    "fast_bat": "double backprop (create_graph=True), which torch.compile's AOT autograd does not support",
    "yopo": "its forward hooks end a pass with an exception; not tried under torch.compile",
}


def _layers(spec: str) -> list[str]:
    layers = [s.strip() for s in str(spec).split("+") if s.strip()]
    if not layers:
        raise ConfigError("empty method spec")
    return layers


def _layer_args(layers: list[str], method_args: dict | None) -> dict[str, dict]:
    """Method arguments per layer, as :func:`advlit.methods.build_method` routes them."""
    out: dict[str, dict] = {name: {} for name in layers}
    for key, value in (method_args or {}).items():
        layer, _, sub = key.partition(".")
        if sub and layer in out:
            out[layer][sub] = value
        elif not sub:
            out[layers[-1]][key] = value
    return out


def autocast_verdict(spec: str, method_args: dict | None = None) -> tuple[str, list[str]]:
    """``(verdict, reasons)`` of a method spec (``"piat+last+atas"``): the worst verdict of its
    layers (``yes`` < ``doubtful`` < ``no``) and the reasons of the layers that are not ``yes``.
    An unknown name raises the registry's ConfigError; a registered name without an entry in
    :data:`AUTOCAST_SAFE` raises too (a test keeps the table complete)."""
    from advlit.methods.registry import method_class

    layers = _layers(spec)
    args = _layer_args(layers, method_args)
    worst, reasons = "yes", []
    for name in layers:
        method_class(name)  # unknown names: the registry's one-line error
        if name not in AUTOCAST_SAFE:
            raise ConfigError(f"method {name!r} has no entry in advlit.precision.AUTOCAST_SAFE")
        verdict, reason = AUTOCAST_SAFE[name]
        for (arg, value), override in OPTION_VERDICTS.get(name, {}).items():
            if args[name].get(arg) == value:
                verdict, reason = override
        if VERDICTS.index(verdict) > VERDICTS.index(worst):
            worst = verdict
        if verdict != "yes":
            reasons.append(f"{name}: {reason}")
    return worst, reasons


def check_compile(spec: str) -> None:
    """Raise one ConfigError line when a layer of ``spec`` cannot run under torch.compile."""
    for name in _layers(spec):
        if name in COMPILE_UNSUPPORTED:
            raise ConfigError(f"--compile: {name} cannot be compiled ({COMPILE_UNSUPPORTED[name]}); run it "
                              "without --compile")


def check_run_options(spec: str, precision: str = "fp32", channels_last: bool = False,
                      compile: bool = False) -> None:  # noqa: A002 - the option's name
    """The precision options of a run configuration (:meth:`advlit.config.RunConfig.validate`):
    ``precision`` one of :data:`RUN_PRECISIONS` (fp16: the reason it is refused),
    ``channels_last`` and ``compile`` booleans, and no ``compile`` for a method of
    :data:`COMPILE_UNSUPPORTED`; otherwise one :class:`ConfigError` line. Whether this
    machine can compile, or has a GPU with native bf16, is checked when the
    :class:`Precision` of the run is built (:class:`~advlit.train.Trainer`)."""
    if precision == "fp16":
        Precision("fp16")  # raises, with the reason
    if precision not in RUN_PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}; choose {', '.join(RUN_PRECISIONS)}")
    for name, value in (("channels_last", channels_last), ("compile", compile)):
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be true or false, got {value!r}")
    if compile:
        check_compile(spec)


def compile_problem(device: torch.device) -> str | None:
    """Why ``torch.compile`` cannot run here, or ``None``."""
    if not hasattr(nn.Module, "compile") or not hasattr(torch, "compile"):
        return f"torch {torch.__version__} has no nn.Module.compile (torch >= 2.2 needed)"
    try:
        dynamo = importlib.import_module("torch._dynamo")
        if not dynamo.is_dynamo_supported():
            return "TorchDynamo does not support this Python"
    except Exception as err:  # noqa: BLE001 - any import failure means "not available"
        return f"TorchDynamo is not available ({type(err).__name__}: {err})"
    if device.type == "cpu":
        compilers = [os.environ.get("CXX"), "c++", "g++", "clang++"]
        if not any(c and shutil.which(c) for c in compilers):
            return "the CPU backend needs a C++ compiler and none was found (set CXX)"
    elif device.type == "cuda" and importlib.util.find_spec("triton") is None:
        return "the CUDA backend needs Triton, which is not installed"
    return None


def _fp32_outputs(module: nn.Module, inputs, output):
    """Forward hook: the model's floating outputs in fp32 (the logits autocast left in bf16)."""
    if isinstance(output, Tensor) and output.is_floating_point() and output.dtype != torch.float32:
        return output.float()
    return output


class Precision:
    """Autocast, memory format and compilation of one run; see the module docstring.

    Parameters
    ----------
    precision : ``"fp32"`` or ``"bf16"`` (``"fp16"`` is refused with the reason).
    device : the training device (``"cpu"``, ``"cuda"``, ``"cuda:1"``, a ``torch.device``).
    channels_last : convert the model and 4-D inputs to ``torch.channels_last``.
    compile : compile the model in place with ``nn.Module.compile()``.
    """

    def __init__(self, precision: str = "fp32", device: str | torch.device = "cpu", channels_last: bool = False,
                 compile: bool = False):  # noqa: A002 - the option's name
        if precision not in PRECISIONS:
            raise ConfigError(f"unknown precision {precision!r}; choose fp32 or bf16")
        if precision == "fp16":
            raise ConfigError("precision fp16 is not supported: it needs a GradScaler around loss.backward() and "
                              "optimizer.step(), which the methods call themselves inside Method.step, and the "
                              "attacks' unscaled input gradients could underflow; use bf16 (A100/H100: the same "
                              "tensor-core speed, fp32's exponent range, no scaler)")
        try:
            self.device = torch.device(device)
        except (RuntimeError, TypeError) as err:
            raise ConfigError(f"unknown device {device!r} ({err})") from None
        if precision == "bf16":
            if self.device.type not in ("cpu", "cuda"):
                raise ConfigError(f"bf16 autocast is supported here on cpu and cuda only, not {self.device.type}")
            if self.device.type == "cuda" and not _cuda_bf16(self.device):
                raise ConfigError("bf16 needs a GPU with native bf16 (Ampere or newer, e.g. A100, H100); "
                                  "use fp32 on this one")
        if compile:
            problem = compile_problem(self.device)
            if problem:
                raise ConfigError(f"--compile: torch.compile is not available: {problem}")
        self.precision = precision
        self.channels_last = bool(channels_last)
        self.compile = bool(compile)

    @classmethod
    def for_method(cls, spec: str, device: str | torch.device = "cpu", precision: str = "auto",
                   channels_last: bool | None = None, compile: bool = False,  # noqa: A002
                   method_args: dict | None = None) -> Precision:
        """The settings of a run of ``spec`` on ``device``.

        ``precision="auto"``: bf16 on a CUDA device with native bf16 when every layer of
        ``spec`` is ``"yes"`` in :data:`AUTOCAST_SAFE`, else fp32. An explicit ``"bf16"``
        on a method that is not ``"yes"`` is obeyed, with a logged warning naming the
        reason. ``channels_last=None``: on for CUDA, off elsewhere. ``compile=True`` raises
        a ConfigError for the methods of :data:`COMPILE_UNSUPPORTED`.
        """
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError) as err:
            raise ConfigError(f"unknown device {device!r} ({err})") from None
        # fp32: no verdict needed (nor looked up: a method without a table entry still trains in fp32)
        verdict, reasons = autocast_verdict(spec, method_args) if precision != "fp32" else ("yes", [])
        if precision == "auto":
            precision = "bf16" if dev.type == "cuda" and verdict == "yes" and _cuda_bf16(dev) else "fp32"
        elif precision == "bf16" and verdict != "yes":
            log.warning("bf16 autocast for %s, whose verdict is %r: %s", spec, verdict, "; ".join(reasons))
        if compile:
            check_compile(spec)
        if channels_last is None:
            channels_last = dev.type == "cuda"
        return cls(precision, dev, channels_last, compile)

    # ---------------------------------------------------------------- autocast
    @property
    def enabled(self) -> bool:
        """Whether autocast is on (bf16)."""
        return self.precision != "fp32"

    @property
    def dtype(self) -> torch.dtype:
        """The autocast dtype (``torch.float32`` when autocast is off)."""
        return torch.bfloat16 if self.precision == "bf16" else torch.float32

    def autocast(self):
        """The context of a training step: ``torch.autocast`` for bf16, a no-op for fp32."""
        if not self.enabled:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def attack_autocast(self, attack=None):
        """The context of an evaluation attack, or of one :func:`~advlit.evaluate.evaluate`
        call over a list of attacks: :meth:`autocast`, except when one of them is AutoAttack
        or APGD-CE (:data:`FP32_ATTACKS`), which run in fp32 (not validated under autocast)."""
        attacks = [attack] if attack is None or isinstance(attack, str) else list(attack)
        if any(a in FP32_ATTACKS for a in attacks):
            return contextlib.nullcontext()
        return self.autocast()

    # ------------------------------------------------------------ model, batch
    def prepare_model(self, model: nn.Module) -> nn.Module:
        """``channels_last``, fp32 outputs under autocast, ``compile()``: in place, in that
        order; returns ``model`` itself. Call it once, after ``.to(device)`` and before the
        optimizer and :meth:`~advlit.methods.Method.setup` (whose proxies copy the model,
        hook included)."""
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        if self.enabled and not getattr(model, "_advlit_fp32_outputs", False):
            model.register_forward_hook(_fp32_outputs)
            model._advlit_fp32_outputs = True
        if self.compile:
            model.compile()
        return model

    def prepare_batch(self, x: Tensor) -> Tensor:
        """``x`` in ``channels_last`` when that is on and ``x`` is 4-D; else ``x`` itself."""
        if self.channels_last and isinstance(x, Tensor) and x.dim() == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    # ------------------------------------------------------------------ labels
    def to_dict(self) -> dict:
        """The settings, JSON-able (for bench files and run records)."""
        return {"precision": self.precision, "device": str(self.device), "channels_last": self.channels_last,
                "compile": self.compile}

    def describe(self) -> str:
        """One line, e.g. ``"bf16 autocast (fp32 logits), channels_last, torch.compile on cuda"``."""
        parts = ["bf16 autocast (fp32 logits)" if self.enabled else "fp32"]
        if self.channels_last:
            parts.append("channels_last")
        if self.compile:
            parts.append("torch.compile")
        return ", ".join(parts) + f" on {self.device}"

    def __repr__(self) -> str:
        return (f"Precision({self.precision!r}, {str(self.device)!r}, channels_last={self.channels_last}, "
                f"compile={self.compile})")


def _cuda_bf16(device: torch.device) -> bool:
    """Whether ``device`` has native bf16 (no emulation)."""
    if not torch.cuda.is_available():
        return False
    try:
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    except TypeError:  # older torch: no including_emulation
        return bool(torch.cuda.is_bf16_supported())


def autocast_table() -> str:
    """The markdown table of :data:`AUTOCAST_SAFE` for every registered method and framework."""
    from advlit.methods.registry import available_methods

    label = {"yes": "yes (default on CUDA)", "doubtful": "no: doubtful", "no": "no: changes the method"}
    rows = ["| method | bf16 autocast | why (where not plainly safe) | torch.compile |", "|---|---|---|---|"]
    for name, cls in available_methods().items():
        verdict, reason = AUTOCAST_SAFE.get(name, ("doubtful", "no entry"))
        extra = "; ".join(f"{arg}={value!r}: {v}" for (arg, value), (v, _) in OPTION_VERDICTS.get(name, {}).items())
        shown = label[verdict] + (f" ({extra})" if extra else "")
        kind = " (framework)" if cls.wraps else ""
        comp = f"no: {COMPILE_UNSUPPORTED[name]}" if name in COMPILE_UNSUPPORTED else "yes"
        rows.append(f"| `{name}`{kind} | {shown} | {reason} | {comp} |")
    return "\n".join(rows)


def write_autocast_page(md_path: str | Path | None = None) -> Path:
    """Write ``book/_generated/autocast.md``: the per-method table (:func:`autocast_table`)."""
    md_path = Path(md_path) if md_path else AUTOCAST_MD
    md_path.parent.mkdir(parents=True, exist_ok=True)
    md_path.write_text(autocast_table() + "\n")
    return md_path
