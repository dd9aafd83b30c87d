"""A small, readable Vision Transformer for any input size: ViT and DeiT.

ViT (Dosovitskiy et al., *An Image is Worth 16x16 Words: Transformers for Image
Recognition at Scale*, ICLR 2021, Sec. 3.1 and Eqs. 1-4) cuts the image into ``P x P``
patches, embeds each linearly (here one ``P x P`` convolution with stride ``P``), prepends a
learned class token, adds a learned position embedding, and runs ``depth`` pre-norm
transformer blocks

    z' = z + MSA(LN(z)),        z = z' + MLP(LN(z'))          (ViT, Eqs. 2-3)

with multi-head self-attention ``softmax(q k^T / sqrt(d_head)) v`` and a two-layer GELU MLP.
The classifier reads the final LayerNorm of the class token (ViT, Eq. 4).

DeiT (Touvron et al., *Training data-efficient image transformers & distillation through
attention*, ICML 2021) is the same architecture trained with a different recipe; its
distillation token only serves the distilled variant (DeiT-⚗), which needs a teacher
network: it is not needed here, and the registry's ``deit_small`` is DeiT-S's shape
(width 384, 6 heads, depth 12) in this class.

The sizes that matter for PIAT (Sec. V-A and Table IV; :mod:`advlit.experiments.piat`):

=============  =====  =====  =====  ===========
name           width  depth  heads  MLP hidden
=============  =====  =====  =====  ===========
ViT-Base       768    12     12     3072 (ViT, Table 1)
DeiT-Small     384    12     6      1536 (DeiT, Table 1)
=============  =====  =====  =====  ===========

Deliberate choices:

- **Any input size.** ``image_size`` and ``patch`` are constructor arguments; the number of
  tokens, hence the position embedding, follows from them. An image side that ``patch``
  does not divide raises :class:`ValueError` saying so (``advlit.models.get_model`` turns it
  into a :class:`~advlit.utils.ConfigError`).
- **No dropout, no stochastic depth, no BatchNorm.** Train and eval mode compute the same
  function, so an attack sees the network it attacks whichever mode a method runs it in
  (the property :mod:`advlit.models.small_cnn` keeps for the same reason).
- **Attention written out** (no fused kernel), so second-order gradients (GradAlign's
  double backward) work on every device.
- **Deterministic initialisation** from torch's random generator (the seed decides it): the
  class token and the position embedding are truncated normal with std 0.02, as in ViT and
  DeiT; the patch embedding is LeCun normal (std ``1 / sqrt(fan_in)``), as in ViT's released
  code, and every bias starts at zero (ViT's code: zero, or noise of std 1e-6 in the MLP);
  the linear layers' weights keep torch's own
  (Kaiming-uniform) initialisation, where ViT / DeiT draw std 0.02 or Xavier, choices made
  for Adam(W). The package trains with SGD (the trainer's optimizer, and PIAT's), and on
  digits16 (tiny ViT, SGD at LR 0.02 with batch 32, 2 clean epochs, 5 seeds) std 0.02
  everywhere stayed at chance, Xavier reached 10-56 % test accuracy, torch's default
  10-46 %, and this initialisation 46-71 %.
  The head is not zero-initialised (ViT does that for fine-tuning): a zero head gives a
  zero input gradient, and adversarial training attacks from the first step.
"""
from __future__ import annotations

import hashlib
import math
from pathlib import Path

import torch
from torch import Tensor, nn


def _pair(size) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    height, width = (int(s) for s in size)
    return height, width


class Attention(nn.Module):
    """Multi-head self-attention over ``(batch, tokens, dim)`` (ViT, Appendix A)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"the width {dim} is not divisible by the number of heads {heads}")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        batch, tokens, dim = x.shape
        # (3, batch, heads, tokens, head_dim)
        q, k, v = self.qkv(x).reshape(batch, tokens, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        weights = (q @ k.transpose(-2, -1) / math.sqrt(dim // self.heads)).softmax(dim=-1)
        out = (weights @ v).transpose(1, 2).reshape(batch, tokens, dim)
        return self.proj(out)


class Block(nn.Module):
    """Pre-norm transformer block: ``x + MSA(LN(x))`` then ``x + MLP(LN(x))`` (ViT, Eqs. 2-3)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float):
        super().__init__()
        hidden = int(round(dim * mlp_ratio))
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VisionTransformer(nn.Module):
    """ViT / DeiT classifier for ``(in_channels, *image_size)`` images.

    ``patch`` is the side of the square patches and must divide both image sides; ``dim``
    the token width, ``depth`` the number of blocks, ``heads`` the attention heads
    (dividing ``dim``) and ``mlp_ratio`` the MLP's hidden width over ``dim``.

    >>> net = VisionTransformer(1, 10, image_size=16, patch=4, dim=32, depth=2, heads=2)
    >>> net(torch.rand(5, 1, 16, 16)).shape
    torch.Size([5, 10])
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 10, image_size: int | tuple = 32, patch: int = 4,
                 dim: int = 192, depth: int = 12, heads: int = 3, mlp_ratio: float = 4.0):
        super().__init__()
        height, width = _pair(image_size)
        patch = int(patch)
        for label, value in (("patch", patch), ("dim", dim), ("depth", depth), ("heads", heads)):
            if int(value) < 1:
                raise ValueError(f"ViT {label} must be a positive integer, got {value}")
        if mlp_ratio <= 0:
            raise ValueError(f"ViT mlp_ratio must be positive, got {mlp_ratio}")
        if height % patch or width % patch:
            raise ValueError(f"the image size {height}x{width} is not divisible by the patch size {patch}: "
                             f"choose a patch that divides both sides")
        self.image_size = (height, width)
        self.patch = patch
        self.num_patches = (height // patch) * (width // patch)
        self.patch_embed = nn.Conv2d(in_channels, dim, kernel_size=patch, stride=patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.num_patches + 1, dim))
        self.blocks = nn.Sequential(*(Block(dim, heads, mlp_ratio) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        """Class token and position embedding: truncated normal, std 0.02 (ViT / DeiT); patch
        embedding: LeCun normal (std ``1 / sqrt(fan_in)``, as in ViT's own code); every bias
        zero; the linear layers' weights keep torch's initialisation; LayerNorms start at the
        identity. See the module docstring for the measurements behind it."""
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        weight = self.patch_embed.weight
        nn.init.trunc_normal_(weight, std=weight[0].numel() ** -0.5)
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Conv2d)):
                nn.init.zeros_(module.bias)

    def tokens(self, x: Tensor) -> Tensor:
        """The patch tokens with the class token in front and the position embedding added:
        ``(batch, 1 + num_patches, dim)`` (ViT, Eq. 1)."""
        if tuple(x.shape[-2:]) != self.image_size:
            height, width = self.image_size
            raise ValueError(f"this ViT was built for {height}x{width} images, got {tuple(x.shape[-2:])}")
        patches = self.patch_embed(x).flatten(2).transpose(1, 2)  # (batch, num_patches, dim), row-major
        cls = self.cls_token.expand(len(x), -1, -1)
        return torch.cat([cls, patches], dim=1) + self.pos_embed

    def forward(self, x: Tensor) -> Tensor:
        z = self.norm(self.blocks(self.tokens(x)))
        return self.head(z[:, 0])


#: the folder of the stored weights a ViT can start from (``init``, :func:`load_init`)
PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"


def init_digest(path: Path) -> str:
    """The first 8 hex digits of the SHA-256 of a weights file: the suffix its name must carry."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:8]


def load_init(net: "VisionTransformer", init: str) -> "VisionTransformer":
    """Load the stored weights ``init`` (a file name in :data:`PRETRAINED_DIR`, or a path)
    into ``net``: the start of a fine-tuning run, as PIAT fine-tunes pre-trained ViTs (Sec. V-A).

    The name must end with ``-<first 8 hex digits of the file's SHA-256>.pt``: a run's
    configuration names the file, so the name, and with it the run's configuration hash,
    changes whenever the weights do. Building on the meta device (shapes only) loads nothing.
    """
    path = Path(init)
    if not path.is_absolute() and not path.exists():
        path = PRETRAINED_DIR / init
    if not path.is_file():
        raise ValueError(f"no stored ViT weights {init!r} (looked in {PRETRAINED_DIR})")
    stem = path.name.removesuffix(".pt")
    digest = init_digest(path)
    if not stem.endswith(f"-{digest}"):
        raise ValueError(f"stored ViT weights {path.name}: the name must end with -{digest}.pt, the first 8 hex "
                         "digits of the file's SHA-256, so that a run's configuration changes with its weights")
    if any(p.is_meta for p in net.parameters()):
        return net
    state = torch.load(path, map_location="cpu", weights_only=True)
    try:
        net.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(f"stored ViT weights {path.name} do not fit this network: {str(err).splitlines()[0]}") from None
    return net
