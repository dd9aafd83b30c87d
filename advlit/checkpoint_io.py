"""Reading the checkpoints ``advlit train`` writes, with one clear line when one is damaged.

``checkpoint.pt`` holds everything a run needs to resume (:data:`RESUMABLE_KEYS`);
``best.pt`` holds only the configuration and the weights of the best validation epoch
(:data:`WEIGHTS_KEYS`). A truncated file (a full disk, a killed copy), a file of some other
kind (a run record, a plain tensor) or weights that do not fit the model of their
configuration each raise :class:`~advlit.utils.ConfigError` naming the file, never a
traceback from ``torch.load`` or ``load_state_dict``. Nothing here writes a file.
"""
from __future__ import annotations

import re
from pathlib import Path

from advlit.utils import ConfigError

#: what ``Trainer.save_checkpoint`` writes (``checkpoint.pt``): enough to resume
RESUMABLE_KEYS = ("config", "model", "optimizer", "method", "rng", "history", "best", "start_epoch")
#: what every checkpoint holds, ``best.pt`` included: enough to rebuild the model
WEIGHTS_KEYS = ("config", "model")


def short_reason(err: BaseException, limit: int = 120) -> str:
    """The first sentence of an exception's message, on one line (for error messages)."""
    lines = str(err).strip().splitlines()
    text = lines[0].strip() if lines else ""
    text = re.split(r"(?<=[a-z)\]'\"])\. ", text)[0].rstrip(".")
    text = text or type(err).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."


def read_checkpoint(path, keys=WEIGHTS_KEYS, hint: str | None = None) -> dict:
    """``torch.load`` a checkpoint onto the CPU and check that it holds ``keys``.

    Every failure is a :class:`ConfigError` of one line naming ``path``; ``hint`` (what
    the user can do about it) is appended to the messages about a damaged or foreign file.
    """
    import torch

    path = Path(path)
    tail = f"; {hint}" if hint else ""
    if path.is_dir():
        raise ConfigError(f"{path} is a folder; pass the checkpoint.pt or best.pt in it")
    if not path.is_file():
        raise ConfigError(f"no checkpoint at {path}")
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            head = handle.read(64)
    except OSError as err:
        raise ConfigError(f"cannot read {path}: {err.strerror or err}") from None
    if size == 0:
        raise ConfigError(f"{path} is damaged: it is empty (0 bytes; a full disk or an interrupted copy?){tail}")
    if head.lstrip()[:1] in (b"{", b"["):
        raise ConfigError(f"{path} is a JSON file (a run record?), not a checkpoint: pass a checkpoint.pt or "
                          f"best.pt written by 'advlit train'{tail}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # a truncated zip archive (RuntimeError, or OSError EINVAL), a damaged pickle, ...
        raise ConfigError(f"{path} is damaged or not a checkpoint ({size} bytes; torch.load: {short_reason(err)})"
                          f"{tail}") from None
    if not isinstance(state, dict):
        raise ConfigError(f"{path} is not a checkpoint written by 'advlit train' "
                          f"(it holds a {type(state).__name__}, not a dict){tail}")
    missing = [key for key in keys if key not in state]
    if missing:
        raise ConfigError(f"{path} is not a checkpoint written by 'advlit train' "
                          f"(it lacks {', '.join(missing)}){tail}")
    return state


def config_of(state: dict, path):
    """The :class:`~advlit.config.RunConfig` stored in a checkpoint, or one line saying why not."""
    from advlit.config import RunConfig

    try:
        return RunConfig.from_dict(state["config"])
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
    except Exception as err:
        raise ConfigError(f"{path} holds no usable run configuration ({short_reason(err)})") from None


def describe_mismatch(err: BaseException) -> str:
    """``load_state_dict``'s multi-line complaint as one short clause."""
    text = str(err)
    parts = []
    for label, pattern in (("missing", r"Missing key\(s\) in state_dict: (.*)"),
                           ("unexpected", r"Unexpected key\(s\) in state_dict: (.*)")):
        found = re.search(pattern, text)
        if found:
            names = re.findall(r'"([^"]+)"', found.group(1))
            more = f" and {len(names) - 2} more" if len(names) > 2 else ""
            parts.append(f"{label} {', '.join(names[:2])}{more}")
    sizes = re.findall(r"size mismatch for ([^:]+): copying a param with shape torch.Size\((\[.*?\])\) from "
                       r"checkpoint, the shape in current model is torch.Size\((\[.*?\])\)", text)
    if sizes:
        name, theirs, ours = sizes[0]
        more = f" and {len(sizes) - 1} more" if len(sizes) > 1 else ""
        parts.append(f"{name} is {theirs} in the file, {ours} in the model{more}")
    return "; ".join(parts) or short_reason(err)


def model_of(state: dict, path, device="cpu"):
    """Rebuild the model of a checkpoint and load its weights, or one line saying why not."""
    from advlit.results import model_from_checkpoint

    config_of(state, path)
    try:
        return model_from_checkpoint(state, device)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
    except Exception as err:  # load_state_dict: missing or unexpected keys, other shapes
        found = re.search(r"loading state_dict for (\w+)", str(err))
        model = found.group(1) if found else "the model"
        raise ConfigError(f"the weights in {path} do not fit {model}, the model its configuration describes "
                          f"({describe_mismatch(err)}); was it written by another version of advlit?") from None
