"""Pre-train the tiny ViT on clean digits16: the stored weights the cpu ViT runs fine-tune.

PIAT fine-tunes ViTs pre-trained on ImageNet-1K (Sec. V-A). The package has no such weights
and digits16 no such pre-training set, so the ``cpu`` entries ``piat.vit_pgd_at`` /
``piat.vit_piat`` start from the tiny ViT trained on *clean* digits16 (the training split:
the same images, without an attack). Trained adversarially from scratch the tiny ViT
collapses to the constant classifier (see :mod:`advlit.experiments.piat`).

    python tools/pretrain_vit_digits.py     # writes advlit/models/pretrained/vit_tiny_digits16_clean-<sha8>.pt

The run is :data:`advlit.experiments.piat.VIT_PRETRAIN` (seed 0, one thread). Its weights
are saved under a name carrying the first 8 hex digits of their SHA-256
(:func:`advlit.models.vit.load_init` checks it), beside a JSON file with the run's
configuration, history, final accuracy, code fingerprint and machine. The float results
differ between processor types, so a run on another machine writes another file: then set
:data:`advlit.experiments.piat.VIT_DIGITS_INIT` to the new name (every ViT cpu run changes).
"""
from __future__ import annotations

import hashlib
import io
import json
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from advlit.config import RunConfig  # noqa: E402
from advlit.experiments import piat  # noqa: E402
from advlit.models.vit import PRETRAINED_DIR  # noqa: E402
from advlit.results import code_fingerprint  # noqa: E402
from advlit.train import Trainer, environment  # noqa: E402
from advlit.utils import configure_threads  # noqa: E402


def main() -> int:
    configure_threads()
    config = RunConfig(**piat.VIT_PRETRAIN).validate()
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(config, progress=False)
        record = trainer.fit(tmp)
    buffer = io.BytesIO()
    torch.save(trainer.model.state_dict(), buffer)
    data = buffer.getvalue()
    name = f"vit_tiny_digits16_clean-{hashlib.sha256(data).hexdigest()[:8]}.pt"
    PRETRAINED_DIR.mkdir(parents=True, exist_ok=True)
    (PRETRAINED_DIR / name).write_bytes(data)
    about = {"made_by": "tools/pretrain_vit_digits.py", "config": config.to_dict(), "code": code_fingerprint(config),
             "final": record["final"], "history": record["history"], "environment": environment()}
    (PRETRAINED_DIR / name).with_suffix(".json").write_text(json.dumps(about, indent=1) + "\n")
    print(f"wrote {PRETRAINED_DIR / name} (clean test accuracy {record['final']['last']['clean']:.1f} %)")
    if name != piat.VIT_DIGITS_INIT:
        print(f"advlit.experiments.piat.VIT_DIGITS_INIT is {piat.VIT_DIGITS_INIT!r}: set it to {name!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
