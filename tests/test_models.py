"""Tests of advlit.models: shapes on every input size, gradients to the input, the
normalisation layer, parameter counts, and registry errors."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from advlit.models import Normalize, available_models, get_model
from advlit.utils import ConfigError

SHAPES = [(1, 8, 8), (1, 16, 16), (3, 32, 32), (3, 64, 64)]
IMAGE_MODELS = [
    ("small_cnn", {}),
    ("preact_resnet18", {}),
    ("resnet18", {}),
    ("wrn", {"depth": 10, "width": 2}),  # WRN-34-10 itself is only built, see below
]


def _n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("name, kwargs", IMAGE_MODELS, ids=[m for m, _ in IMAGE_MODELS])
def test_image_models_give_one_logit_row_per_example(name, kwargs, shape):
    torch.manual_seed(0)
    model = get_model(name, 7, shape, **kwargs)
    with torch.no_grad():
        logits = model(torch.rand(2, *shape))
    assert logits.shape == (2, 7) and torch.isfinite(logits).all()


@pytest.mark.parametrize("name, kwargs", IMAGE_MODELS + [("mlp", {})], ids=[m for m, _ in IMAGE_MODELS] + ["mlp"])
def test_gradients_reach_the_input(name, kwargs):
    torch.manual_seed(0)
    shape = (3,) if name == "mlp" else (3, 16, 16)
    model = get_model(name, 10, shape, **kwargs)
    x = torch.rand(2, *shape, requires_grad=True)
    nn.functional.cross_entropy(model(x), torch.tensor([1, 2])).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in model.parameters())


def test_mlp_is_one_hidden_layer_and_flattens_its_input():
    model = get_model("mlp", 2, (3,), hidden=16)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(3, 16), (16, 2)]
    assert get_model("mlp", 10, (1, 8, 8))(torch.rand(5, 1, 8, 8)).shape == (5, 10)


def test_small_cnn_has_no_batchnorm():
    model = get_model("small_cnn", 10, (1, 16, 16))
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    assert sum(isinstance(m, nn.Conv2d) for m in model.modules()) == 2  # conv(32)-pool-conv(64)-pool, see advlit.models.small_cnn


def test_normalize_is_the_first_layer_and_standardises_channels():
    mean, std = (0.1, 0.2, 0.3), (0.5, 0.25, 2.0)
    model = get_model("preact_resnet18", 10, (3, 32, 32), normalize=(mean, std)).eval()
    assert isinstance(model, nn.Sequential) and isinstance(model[0], Normalize)
    x = torch.rand(2, 3, 32, 32)
    expected = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    assert torch.allclose(model[0](x), expected)
    with torch.no_grad():
        assert torch.allclose(model(x), model[1](expected))
    assert {"0.mean", "0.std"} <= set(model.state_dict())  # saved with the model, not trained
    assert all(p is not model[0].mean for p in model.parameters())
    vectors = Normalize((1.0, 2.0), (2.0, 4.0))(torch.tensor([[3.0, 6.0]]))
    assert torch.allclose(vectors, torch.tensor([[1.0, 1.0]]))


def test_parameter_counts_match_the_reference_architectures():
    # PreActResNet-18 of locuslab/fast_adversarial (with its final BN): 11,172,170 ~ 11.17 M
    assert _n_params(get_model("preact_resnet18", 10, (3, 32, 32))) == 11_172_170
    assert abs(_n_params(get_model("resnet18", 10, (3, 32, 32))) - 11.17e6) < 0.01e6
    wrn_34_10 = _n_params(get_model("wrn", 10, (3, 32, 32)))  # the default depth and width
    assert abs(wrn_34_10 - 46.16e6) < 0.01e6
    assert _n_params(get_model("wrn34_10", 10, (3, 32, 32))) == wrn_34_10


def test_registry_errors_are_config_errors():
    assert {"small_cnn", "mlp", "preact_resnet18", "resnet18", "wrn", "wrn34_10", "wrn28_10"} <= set(
        available_models())
    with pytest.raises(ConfigError, match="preact_resnet18"):
        get_model("resnet50", 10, (3, 32, 32))
    with pytest.raises(ConfigError, match="does not take"):
        get_model("preact_resnet18", 10, (3, 32, 32), depth=2)  # its one option is width
    with pytest.raises(ConfigError, match="6n"):
        get_model("wrn", 10, (3, 32, 32), depth=11)
    with pytest.raises(ConfigError, match="image shape"):
        get_model("small_cnn", 2, (3,))
    with pytest.raises(ConfigError, match="channels"):
        get_model("small_cnn", 10, (1, 8, 8), normalize=((0.5, 0.5), (0.2, 0.2)))
