"""Tests of advlit.models.conv_net: the configurable CNN the cpu stand-in is chosen from.

Its default layout is small_cnn's, weight for weight; other layouts change the flattened
size as their pools say; bad options fail with one clear ConfigError."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from advlit.models import ConvNet, SmallCNN, get_model
from advlit.utils import ConfigError

LAYOUTS = [
    {},
    {"channels": (32, 64), "pools": (False, True)},
    {"channels": (16, 32), "pools": (False, True), "hidden": 256},
    {"channels": (8, 16, 32), "pools": (True, False, True)},
]


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 16, 16), (3, 32, 32)], ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("options", LAYOUTS, ids=lambda o: json.dumps(o) if o else "default")
def test_one_logit_row_per_example_on_every_size(options, shape):
    torch.manual_seed(0)
    model = get_model("conv_net", 7, shape, **options)
    with torch.no_grad():
        logits = model(torch.rand(3, *shape))
    assert logits.shape == (3, 7) and torch.isfinite(logits).all()


@pytest.mark.parametrize("size", [8, 16, (16, 12)])
def test_default_layout_is_small_cnn_weight_for_weight(size):
    torch.manual_seed(0)
    small = SmallCNN(1, 10, size)
    net = ConvNet(1, 10, size, channels=(32, 64), pools=(True, True), hidden=128)
    assert list(net.state_dict()) == list(small.state_dict())
    net.load_state_dict(small.state_dict())  # strict: same names, same shapes
    h, w = (size, size) if isinstance(size, int) else size
    x = torch.rand(5, 1, h, w)
    assert torch.equal(net(x), small(x))
    assert [type(m) for m in net.modules()][1:] == [type(m) for m in small.modules()][1:]


def test_registry_default_is_small_cnn_and_accepts_json_lists():
    net = get_model("conv_net", 10, (1, 16, 16))
    assert (net.channels, net.pools, net.hidden) == ((32, 64), (True, True), 128)
    from_json = get_model("conv_net", 10, (1, 16, 16), **json.loads('{"channels": [16, 32], "pools": [false, true]}'))
    assert from_json.channels == (16, 32) and from_json.pools == (False, True)


@pytest.mark.parametrize("pools, flat", [((True, True), 64 * 4 * 4), ((False, True), 64 * 8 * 8),
                                         ((True, False), 64 * 8 * 8), ((False, False), 64 * 16 * 16)])
def test_flattened_size_follows_the_pools(pools, flat):
    net = get_model("conv_net", 10, (1, 16, 16), channels=[32, 64], pools=list(pools), hidden=128)
    first = next(m for m in net.classifier if isinstance(m, nn.Linear))
    assert net.flat_features == flat and first.in_features == flat
    assert sum(isinstance(m, nn.MaxPool2d) for m in net.modules()) == sum(pools)


def test_no_batchnorm():
    net = get_model("conv_net", 10, (1, 16, 16), channels=[24, 48], pools=[False, True])
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())


@pytest.mark.parametrize("options, message", [
    ({"width": 2}, "does not take width"),
    ({"channels": [32, 64], "pools": [True]}, "pools must hold one"),
    ({"channels": []}, "channels must be"),
    ({"channels": [32, 0], "pools": [True, True]}, "channels must be"),
    ({"pools": [1, 0]}, "pools must hold one"),
    ({"hidden": 0}, "hidden must be"),
])
def test_bad_options_raise_one_clear_config_error(options, message):
    with pytest.raises(ConfigError, match=message):
        get_model("conv_net", 10, (1, 16, 16), **options)


def test_too_many_pools_for_the_image_is_a_config_error():
    with pytest.raises(ConfigError, match="needs larger inputs"):
        get_model("conv_net", 10, (1, 2, 2), channels=[8, 8], pools=[True, True])
