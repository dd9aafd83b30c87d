"""Every registered experiment builds its network at every profile: a profile's model
arguments must not leak into an experiment that names another model (the cpu profile's
``conv_net`` channels reached the tiny ViT's entries when the stand-in changed)."""
from __future__ import annotations

import pytest
import torch

from advlit.data import dataset_info
from advlit.experiments import get_config, list_experiments
from advlit.models import get_model

EXPERIMENTS = list_experiments("")


@pytest.mark.parametrize("profile", ["cpu", "gpu"])
def test_every_experiment_builds_its_model(profile):
    failures = []
    for name in EXPERIMENTS:
        config = get_config(name, profile)
        info = dataset_info(config.dataset)
        try:
            with torch.device("meta"):  # shapes only: ViT-Base and WRN-34-10 cost no memory
                get_model(config.model or info.default_model, info.num_classes, info.input_shape, **config.model_args)
        except Exception as err:  # noqa: BLE001 - every failure is listed
            failures.append(f"{name}: {err}")
    assert not failures, "\n".join(failures)
