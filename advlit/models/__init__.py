"""Model zoo and registry: every network takes pixel-space inputs in [0, 1].

    from advlit.models import get_model
    from advlit.data import dataset_info
    info = dataset_info("cifar10")
    model = get_model(info.default_model, info.num_classes, info.input_shape,
                      normalize=info.normalize)     # Sequential(Normalize, PreActResNet18)

Names: ``small_cnn`` (digits, no BatchNorm), ``mlp`` (PIAT's toy data), ``preact_resnet18``
(the fast-AT standard), ``resnet18``, ``wrn`` (``depth=34, width=10`` by default; aliases
``wrn34_10`` and ``wrn28_10``).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from advlit.models.mlp import MLP
from advlit.models.normalize import Normalize
from advlit.models.preact_resnet import PreActResNet18
from advlit.models.resnet import ResNet18
from advlit.models.small_cnn import SmallCNN
from advlit.models.wide_resnet import WideResNet
from advlit.utils import ConfigError

__all__ = [
    "MLP",
    "Normalize",
    "PreActResNet18",
    "ResNet18",
    "SmallCNN",
    "WideResNet",
    "available_models",
    "get_model",
]


@dataclass(frozen=True)
class _Entry:
    """How to build one registered name: ``build(num_classes, input_shape, **kwargs)``."""

    build: Callable[..., nn.Module]
    options: tuple[str, ...] = ()
    needs_image: bool = True
    min_size: int = 8


def _image_channels(input_shape: tuple) -> int:
    return int(input_shape[0])


_REGISTRY: dict[str, _Entry] = {
    "small_cnn": _Entry(
        lambda k, shape: SmallCNN(_image_channels(shape), k, tuple(shape[1:])), min_size=4
    ),
    "mlp": _Entry(
        lambda k, shape, **kw: MLP(math.prod(shape), k, **kw),
        options=("hidden",),
        needs_image=False,
    ),
    "preact_resnet18": _Entry(lambda k, shape: PreActResNet18(_image_channels(shape), k)),
    "resnet18": _Entry(lambda k, shape: ResNet18(_image_channels(shape), k)),
    "wrn": _Entry(
        lambda k, shape, **kw: WideResNet(in_channels=_image_channels(shape), num_classes=k, **kw),
        options=("depth", "width", "dropout"),
    ),
    "wrn34_10": _Entry(
        lambda k, shape, **kw: WideResNet(34, 10, _image_channels(shape), k, **kw),
        options=("dropout",),
    ),
    "wrn28_10": _Entry(
        lambda k, shape, **kw: WideResNet(28, 10, _image_channels(shape), k, **kw),
        options=("dropout",),
    ),
}


def available_models() -> list[str]:
    """Names accepted by :func:`get_model` (aliases included)."""
    return list(_REGISTRY)


def get_model(
    name: str,
    num_classes: int,
    input_shape: tuple,
    normalize: tuple[tuple, tuple] | None = None,
    **kwargs,
) -> nn.Module:
    """Build model ``name`` for ``input_shape`` (``(C, H, W)`` or ``(D,)``) and ``num_classes``.

    With ``normalize=(mean, std)`` the result is ``nn.Sequential(Normalize(mean, std),
    net)``: the network always receives pixel-space inputs. Unknown names, options the
    model does not take, or impossible shapes raise :class:`advlit.utils.ConfigError`.
    """
    if name not in _REGISTRY:
        raise ConfigError(f"unknown model {name!r}; choose one of: {', '.join(_REGISTRY)}")
    entry = _REGISTRY[name]
    unknown = sorted(set(kwargs) - set(entry.options))
    if unknown:
        allowed = ", ".join(entry.options) or "none"
        raise ConfigError(f"model {name!r} does not take {', '.join(unknown)}; its options: {allowed}")
    input_shape = tuple(int(s) for s in input_shape)
    _check_shape(name, entry, input_shape)
    if int(num_classes) < 1:
        raise ConfigError(f"num_classes must be positive, got {num_classes}")
    try:
        net = entry.build(int(num_classes), input_shape, **kwargs)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"model {name!r}: {error}") from None
    if normalize is None:
        return net
    mean, std = normalize
    if len(mean) != input_shape[0] or len(std) != input_shape[0]:
        raise ConfigError(
            f"normalize has {len(mean)} means / {len(std)} stds for {input_shape[0]} input channels"
        )
    return nn.Sequential(Normalize(mean, std), net)


def _check_shape(name: str, entry: _Entry, input_shape: tuple) -> None:
    if not entry.needs_image:
        return
    if len(input_shape) != 3:
        raise ConfigError(f"model {name!r} needs an image shape (C, H, W), got {input_shape}")
    if min(input_shape[1:]) < entry.min_size:
        raise ConfigError(
            f"model {name!r} needs images of at least {entry.min_size}x{entry.min_size}, got {input_shape}"
        )
