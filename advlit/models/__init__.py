"""Model zoo and registry: every network takes pixel-space inputs in [0, 1].

    from advlit.models import get_model
    from advlit.data import dataset_info
    info = dataset_info("cifar10")
    model = get_model(info.default_model, info.num_classes, info.input_shape,
                      normalize=info.normalize)     # Sequential(Normalize, PreActResNet18)

Names: ``small_cnn`` (digits, no BatchNorm), ``mlp`` (PIAT's toy data), ``preact_resnet18``
(the fast-AT standard) and ``resnet18`` (option ``width``, 64 by default), ``wrn`` (``depth=34, width=10`` by default; aliases
``wrn34_10`` and ``wrn28_10``); vision transformers (:mod:`advlit.models.vit`): ``vit`` (any
``patch``, ``dim``, ``depth``, ``heads``, ``mlp_ratio``; by default DeiT-Ti's shape, width 192,
depth 12, 3 heads, patch 4), ``vit_tiny_digits`` (width 32, depth 2, 2 heads, patch 4: trains
on digits16 on one CPU core), ``vit_base`` (ViT-Base: width 768, depth 12, 12 heads) and
``deit_small`` (DeiT-S: width 384, depth 12, 6 heads), the last two with ``patch=16``
unless told otherwise; every ViT takes ``init``, stored weights to start from
(:func:`advlit.models.vit.load_init`) (PIAT's CIFAR-10 experiments use ``patch=4``, see
:mod:`advlit.experiments.piat`).
``conv_net`` (:mod:`advlit.models.conv_net`) is small_cnn's plain CNN with configurable
``channels``, ``pools`` and ``hidden``: the family the cpu stand-in is chosen from.
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from advlit.models.conv_net import ConvNet
from advlit.models.mlp import MLP
from advlit.models.normalize import Normalize
from advlit.models.preact_resnet import PreActResNet18
from advlit.models.resnet import ResNet18
from advlit.models.small_cnn import SmallCNN
from advlit.models.vit import VisionTransformer
from advlit.models.wide_resnet import WideResNet
from advlit.utils import ConfigError

__all__ = [
    "ConvNet",
    "MLP",
    "Normalize",
    "PreActResNet18",
    "ResNet18",
    "SmallCNN",
    "VisionTransformer",
    "WideResNet",
    "available_models",
    "get_model",
    "model_code",
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


def _as_tuples(options: dict) -> dict:
    """Options with their lists (as JSON configs give them) turned into tuples."""
    return {key: tuple(value) if isinstance(value, list) else value for key, value in options.items()}


_REGISTRY: dict[str, _Entry] = {
    "small_cnn": _Entry(
        lambda k, shape: SmallCNN(_image_channels(shape), k, tuple(shape[1:])), min_size=4
    ),
    "mlp": _Entry(
        lambda k, shape, **kw: MLP(math.prod(shape), k, **kw),
        options=("hidden",),
        needs_image=False,
    ),
    # width: channels of the first stage (64, the default, is the papers' network; the smoke run uses 8)
    "preact_resnet18": _Entry(lambda k, shape, **kw: PreActResNet18(_image_channels(shape), k, **kw),
                              options=("width",)),
    "resnet18": _Entry(lambda k, shape, **kw: ResNet18(_image_channels(shape), k, **kw), options=("width",)),
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
    # the family the cpu stand-in is chosen from (issue 14); its defaults are small_cnn's layout
    "conv_net": _Entry(
        lambda k, shape, **kw: ConvNet(_image_channels(shape), k, tuple(shape[1:]), **_as_tuples(kw)),
        options=("channels", "pools", "hidden"),
        min_size=1,
    ),
    # vision transformers: the patch must divide the image sides (VisionTransformer says so); the
    # named shapes' defaults are constants of their builders (so part of their code fingerprint)
    # ``init``: stored weights to start from (advlit.models.vit.load_init), for fine-tuning
    "vit": _Entry(
        lambda k, shape, init=None, **kw: _vit(init, _image_channels(shape), k, tuple(shape[1:]), **kw),
        options=("patch", "dim", "depth", "heads", "mlp_ratio", "init"),
        min_size=1,
    ),
    "vit_tiny_digits": _Entry(
        lambda k, shape, **kw: _vit(kw.get("init"), _image_channels(shape), k, tuple(shape[1:]),
                                    patch=kw.get("patch", 4), dim=32, depth=2, heads=2, mlp_ratio=2.0),
        options=("patch", "init"),
        min_size=1,
    ),
    "vit_base": _Entry(
        lambda k, shape, **kw: _vit(kw.get("init"), _image_channels(shape), k, tuple(shape[1:]),
                                    patch=kw.get("patch", 16), dim=768, depth=12, heads=12, mlp_ratio=4.0),
        options=("patch", "init"),
        min_size=1,
    ),
    "deit_small": _Entry(
        lambda k, shape, **kw: _vit(kw.get("init"), _image_channels(shape), k, tuple(shape[1:]),
                                    patch=kw.get("patch", 16), dim=384, depth=12, heads=6, mlp_ratio=4.0),
        options=("patch", "init"),
        min_size=1,
    ),
}


def _vit(init: str | None, *args, **kwargs) -> VisionTransformer:
    """A :class:`VisionTransformer`, started from the stored weights ``init`` when given."""
    from advlit.models.vit import load_init

    net = VisionTransformer(*args, **kwargs)
    return load_init(net, init) if init else net


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


def model_code(name: str, num_classes: int, input_shape: tuple, **kwargs) -> list:
    """The code that builds model ``name``, for the code fingerprint of its runs
    (:func:`advlit.results.code_fingerprint`): the source of :func:`get_model`, the
    registry entry (its builder's bytecode and settings) and the files of every ``advlit``
    class in the built network. A new model, or a change to another one, leaves the runs of
    ``name`` current."""
    import inspect
    from pathlib import Path

    entry = _REGISTRY.get(name)
    if entry is None:
        raise ConfigError(f"unknown model {name!r}; choose one of: {', '.join(_REGISTRY)}")
    code = entry.build.__code__
    consts = tuple(c for c in code.co_consts if not inspect.iscode(c))
    settings = repr((code.co_code, code.co_names, code.co_varnames, consts, entry.options, entry.needs_image,
                     entry.min_size)).encode()
    files = _model_files(name, int(num_classes), tuple(int(s) for s in input_shape),
                         json.dumps(kwargs, sort_keys=True))
    return [inspect.getsource(get_model), settings, *(Path(f) for f in files)]


_FILES_CACHE: dict = {}


def _model_files(name: str, num_classes: int, input_shape: tuple, kwargs: str) -> tuple[str, ...]:
    """Files of the ``advlit`` classes a model is built from, found by building it on the
    meta device (no memory, no draw from the random number generators)."""
    import inspect
    from pathlib import Path

    import torch

    key = (name, num_classes, input_shape, kwargs)
    if key not in _FILES_CACHE:
        with torch.random.fork_rng(devices=[]), torch.device("meta"):
            net = get_model(name, num_classes, input_shape, **json.loads(kwargs))
        files = {Path(inspect.getsourcefile(cls)).resolve() for module in net.modules()
                 for cls in inspect.getmro(type(module)) if cls.__module__.startswith("advlit.")}
        _FILES_CACHE[key] = tuple(sorted(str(f) for f in files))
    return _FILES_CACHE[key]

