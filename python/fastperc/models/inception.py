"""The FID Inception network: pytorch-fid's ``FIDInception*`` variant of Inception-v3.

The architecture is the TensorFlow 2015-12-05 Inception graph that the original FID code uses,
as pytorch-fid writes it on top of torchvision's ``Inception3``:

* every convolution is ``conv (no bias) -> batch norm (eps 1e-3) -> ReLU`` (``BasicConv2d``);
* stem: 3x3/2, 3x3, 3x3 pad 1, max-pool 3/2 (block 0 ends here: 64 channels, 73 x 73 at 299),
  1x1, 3x3, max-pool 3/2 (block 1: 192 channels, 35 x 35);
* ``Mixed_5b/5c/5d`` (A), ``Mixed_6a`` (B), ``Mixed_6b..6e`` (C) (block 2: 768 channels,
  17 x 17), ``Mixed_7a`` (D), ``Mixed_7b/7c`` (E), global average pool (block 3: 2048);
* the FID differences from torchvision's Inception-v3: the 3x3 average pools of the A, C and
  first E block do not count the zero padding (``count_include_pad=False``, as TensorFlow), and
  the last E block pools its fourth branch with a 3x3 *max* pool; the classifier has 1008
  outputs and there is no auxiliary head.

Input (pytorch-fid's ``InceptionV3(resize_input=True, normalize_input=True)``): images in [0, 1]
are resized to 299 x 299 with ``F.interpolate(mode="bilinear", align_corners=False)`` (skipped
when they already are 299 x 299: it is then the identity) and mapped to [-1, 1] by ``2x - 1``.
:class:`InceptionExtractor` takes 0..255 and divides by 255 first. With clean-fid's TorchScript
weights the default input map is clean-fid's ``(x - 128) / 128`` instead.

State-dict keys are those of pytorch-fid's ``fid_inception_v3()`` (torchvision's names:
``Conv2d_1a_3x3.conv.weight``, ``Mixed_5b.branch_pool.bn.running_var``, ``fc.bias``, ...), so
``pt_inception-2015-12-05-6726825d.pth`` loads with ``strict=True``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from . import weights as W
from ._base import (
    Extractor,
    FastPath,
    check_images,
    check_precision,
    load_weights,
    max_pool2d,
    resize_bilinear,
    wants_autograd,
)

#: pytorch-fid's block indices by feature length.
BLOCK_INDEX_BY_DIM = {64: 0, 192: 1, 768: 2, 2048: 3}
NUM_CLASSES = 1008
INPUT_SIZE = (299, 299)
NORMALIZATIONS = ("pytorch_fid", "clean_fid")


class BasicConv2d(nn.Module):
    """``relu(bn(conv(x)))`` with a bias-free conv and a batch norm of eps 1e-3."""

    FOLD = (("conv", "bn"),)

    def __init__(self, in_channels: int, out_channels: int, **kwargs: Any) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **kwargs)
        self.bn: nn.Module = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


def _avg3(x: torch.Tensor) -> torch.Tensor:
    # TensorFlow's 3x3 average pool: the zero padding is not counted.
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


def _branch_pool_avg(conv: BasicConv2d, x: torch.Tensor, fast: bool) -> torch.Tensor:
    """``conv(avg3(x))``. With ``fast`` (the folded inference copy) the pool moves after the
    linear part of the conv (a 1x1 conv plus bias commutes with an average that ignores the
    padding), onto its 3-6x fewer output channels; the ReLU comes last either way."""
    if not fast:
        return conv(_avg3(x))
    return F.relu(_avg3(conv.bn(conv.conv(x))), inplace=True)


def _conv_pool(conv: BasicConv2d, x: torch.Tensor, fast: bool) -> torch.Tensor:
    """``max_pool(conv(x), 3, 2)``; with ``fast`` the conv's ReLU runs after the pool (they
    commute), on a map four times smaller."""
    if not fast:
        return max_pool2d(conv(x), 3, 2)
    return max_pool2d(conv.bn(conv.conv(x)), 3, 2, relu=True)


class FIDInceptionA(nn.Module):
    """35 x 35 block (``Mixed_5b..5d``): 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avgpool-1x1."""

    fast_ops = False  # set on the folded inference copy (InceptionV3FID.enable_fast_ops)

    def __init__(self, in_channels: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = _branch_pool_avg(self.branch_pool, x, self.fast_ops)
        return torch.cat([b1, b5, b3, bp], 1)


class InceptionB(nn.Module):
    """Grid reduction 35 -> 17 (``Mixed_6a``): 3x3/2 | 1x1-3x3-3x3/2 | maxpool 3/2."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3(x)
        bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = max_pool2d(x, 3, 2)
        return torch.cat([b3, bd, bp], 1)


class FIDInceptionC(nn.Module):
    """17 x 17 block (``Mixed_6b..6e``) with factorised 1x7 / 7x1 convolutions."""

    fast_ops = False

    def __init__(self, in_channels: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = self.branch7x7dbl_1(x)
        bd = self.branch7x7dbl_3(self.branch7x7dbl_2(bd))
        bd = self.branch7x7dbl_5(self.branch7x7dbl_4(bd))
        bp = _branch_pool_avg(self.branch_pool, x, self.fast_ops)
        return torch.cat([b1, b7, bd, bp], 1)


class InceptionD(nn.Module):
    """Grid reduction 17 -> 8 (``Mixed_7a``): 1x1-3x3/2 | 1x1-1x7-7x1-3x3/2 | maxpool 3/2."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_2(self.branch7x7x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(b7))
        bp = max_pool2d(x, 3, 2)
        return torch.cat([b3, b7, bp], 1)


class FIDInceptionE(nn.Module):
    """8 x 8 block (``Mixed_7b``: ``pool="avg"``, ``Mixed_7c``: ``pool="max"``)."""

    fast_ops = False

    def __init__(self, in_channels: int, pool: str) -> None:
        super().__init__()
        if pool not in ("avg", "max"):
            raise ValueError(f"Expected `pool` to be 'avg' or 'max', got {pool!r}")
        self.pool = pool
        self.branch1x1 = BasicConv2d(in_channels, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        if self.pool == "avg":
            bp = _branch_pool_avg(self.branch_pool, x, self.fast_ops)
        else:  # the FID graph's last block: max pool
            bp = self.branch_pool(max_pool2d(x, 3, 1, 1))
        return torch.cat(
            [
                b1,
                self.branch3x3_2a(b3),
                self.branch3x3_2b(b3),
                self.branch3x3dbl_3a(bd),
                self.branch3x3dbl_3b(bd),
                bp,
            ],
            1,
        )


class InceptionV3FID(nn.Module):
    """The FID Inception-v3 network on normalised input (``[-1, 1]``, 299 x 299).

    ``forward_blocks(x, last)`` returns the outputs of pytorch-fid's blocks 0..``last`` (maps,
    block 3 pooled to ``[N, 2048, 1, 1]``); ``forward(x)`` returns the 2048-d pool3 features.
    """

    fast_ops = False

    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = FIDInceptionA(192, pool_features=32)
        self.Mixed_5c = FIDInceptionA(256, pool_features=64)
        self.Mixed_5d = FIDInceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
        self.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = FIDInceptionE(1280, pool="avg")
        self.Mixed_7c = FIDInceptionE(2048, pool="max")
        self.fc = nn.Linear(2048, num_classes)

    def forward_blocks(self, x: torch.Tensor, last: int = 3) -> list[torch.Tensor]:
        out = []
        fast = self.fast_ops
        x = _conv_pool(self.Conv2d_2b_3x3, self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)), fast)
        out.append(x)
        if last == 0:
            return out
        x = _conv_pool(self.Conv2d_4a_3x3, self.Conv2d_3b_1x1(x), fast)
        out.append(x)
        if last == 1:
            return out
        for m in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a):
            x = m(x)
        for m in (self.Mixed_6b, self.Mixed_6c, self.Mixed_6d, self.Mixed_6e):
            x = m(x)
        out.append(x)
        if last == 2:
            return out
        x = self.Mixed_7c(self.Mixed_7b(self.Mixed_7a(x)))
        out.append(F.adaptive_avg_pool2d(x, (1, 1)))
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_blocks(x, 3)[3].flatten(1)

    def enable_fast_ops(self) -> None:
        """Restructure this module for inference (called on the folded copy by the fast
        path; the batch norms must be folded): ReLUs after the max pools they precede, and
        the average pools of the pool branches after their 1x1 convs. Same values up to
        float32 rounding."""
        for m in self.modules():
            if hasattr(type(m), "fast_ops"):
                m.fast_ops = True


# ----------------------------------------------------------------------------------------------
# clean-fid's TorchScript file
# ----------------------------------------------------------------------------------------------
#
# clean-fid (and StyleGAN2-ADA/3) ship the same TensorFlow graph as a TorchScript archive. Its
# modules are named after the TensorFlow scopes (``layers.mixed_4.tower_1.conv_2``) and each
# conv layer holds ``weight``, ``beta``, ``mean`` and ``var`` (a batch norm without a scale,
# eps 1e-3). Those parameters are mapped onto the pytorch-fid names below, so both files give
# the same network, the same fast path and all four blocks. An archive laid out differently is
# run through its own ``layers`` module instead (pool3 features and logits only).

_STEM = {
    "Conv2d_1a_3x3": "conv",
    "Conv2d_2a_3x3": "conv_1",
    "Conv2d_2b_3x3": "conv_2",
    "Conv2d_3b_1x1": "conv_3",
    "Conv2d_4a_3x3": "conv_4",
}
_A = {
    "branch1x1": "conv",
    "branch5x5_1": "tower.conv",
    "branch5x5_2": "tower.conv_1",
    "branch3x3dbl_1": "tower_1.conv",
    "branch3x3dbl_2": "tower_1.conv_1",
    "branch3x3dbl_3": "tower_1.conv_2",
    "branch_pool": "tower_2.conv",
}
_B = {
    "branch3x3": "conv",
    "branch3x3dbl_1": "tower.conv",
    "branch3x3dbl_2": "tower.conv_1",
    "branch3x3dbl_3": "tower.conv_2",
}
_C = {
    "branch1x1": "conv",
    "branch7x7_1": "tower.conv",
    "branch7x7_2": "tower.conv_1",
    "branch7x7_3": "tower.conv_2",
    "branch7x7dbl_1": "tower_1.conv",
    "branch7x7dbl_2": "tower_1.conv_1",
    "branch7x7dbl_3": "tower_1.conv_2",
    "branch7x7dbl_4": "tower_1.conv_3",
    "branch7x7dbl_5": "tower_1.conv_4",
    "branch_pool": "tower_2.conv",
}
_D = {
    "branch3x3_1": "tower.conv",
    "branch3x3_2": "tower.conv_1",
    "branch7x7x3_1": "tower_1.conv",
    "branch7x7x3_2": "tower_1.conv_1",
    "branch7x7x3_3": "tower_1.conv_2",
    "branch7x7x3_4": "tower_1.conv_3",
}
_E = {
    "branch1x1": "conv",
    "branch3x3_1": "tower_conv",
    "branch3x3_2a": "tower_mixed_conv",
    "branch3x3_2b": "tower_mixed_conv_1",
    "branch3x3dbl_1": "tower_1_conv",
    "branch3x3dbl_2": "tower_1_conv_1",
    "branch3x3dbl_3a": "tower_1_mixed_conv",
    "branch3x3dbl_3b": "tower_1_mixed_conv_1",
    "branch_pool": "tower_2_conv",
}
_MIXED = {
    "Mixed_5b": ("mixed", _A),
    "Mixed_5c": ("mixed_1", _A),
    "Mixed_5d": ("mixed_2", _A),
    "Mixed_6a": ("mixed_3", _B),
    "Mixed_6b": ("mixed_4", _C),
    "Mixed_6c": ("mixed_5", _C),
    "Mixed_6d": ("mixed_6", _C),
    "Mixed_6e": ("mixed_7", _C),
    "Mixed_7a": ("mixed_8", _D),
    "Mixed_7b": ("mixed_9", _E),
    "Mixed_7c": ("mixed_10", _E),
}


def torchscript_key_map() -> dict[str, str]:
    """pytorch-fid conv-layer prefix -> clean-fid TorchScript conv-layer prefix."""
    out = {k: f"layers.{v}" for k, v in _STEM.items()}
    for block, (ts, table) in _MIXED.items():
        for ours, theirs in table.items():
            out[f"{block}.{ours}"] = f"layers.{ts}.{theirs}"
    return out


def state_dict_from_torchscript(ts_state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a clean-fid TorchScript state dict to pytorch-fid's keys (a ``ValueError`` when
    its layout is not the expected one)."""
    out: dict[str, torch.Tensor] = {}
    used = set()
    for ours, theirs in torchscript_key_map().items():
        names = {s: f"{theirs}.{s}" for s in ("weight", "beta", "mean", "var")}
        missing = [n for n in names.values() if n not in ts_state]
        if missing:
            raise ValueError(f"TorchScript Inception lacks {missing[0]!r} (for {ours})")
        var = ts_state[names["var"]]
        out[f"{ours}.conv.weight"] = ts_state[names["weight"]]
        out[f"{ours}.bn.weight"] = torch.ones_like(var)
        out[f"{ours}.bn.bias"] = ts_state[names["beta"]]
        out[f"{ours}.bn.running_mean"] = ts_state[names["mean"]]
        out[f"{ours}.bn.running_var"] = var
        out[f"{ours}.bn.num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
        used.update(names.values())
    for s in ("weight", "bias"):
        if f"output.{s}" not in ts_state:
            raise ValueError(f"TorchScript Inception lacks 'output.{s}'")
        out[f"fc.{s}"] = ts_state[f"output.{s}"]
        used.add(f"output.{s}")
    extra = sorted(set(ts_state) - used)
    if extra:
        raise ValueError(f"TorchScript Inception has unexpected entries, e.g. {extra[0]!r}")
    return {k: v.detach().clone().float() if v.is_floating_point() else v for k, v in out.items()}


# ----------------------------------------------------------------------------------------------
# Random weights (tests and benchmarks)
# ----------------------------------------------------------------------------------------------


def random_state_dict(
    net: nn.Module | None = None, seed: int = 0, *, fc_std: float = 0.01
) -> dict[str, torch.Tensor]:
    """Seeded random weights in the layout of ``net`` (default: the FID Inception) whose
    activations neither vanish nor explode: He-normal convs, batch norms with random (not
    identity) statistics, a small classifier. For tests and benchmarks only."""
    if net is None:
        with torch.device("meta"):  # only the shapes are needed
            net = InceptionV3FID()
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, v in net.state_dict().items():
        if k.endswith("num_batches_tracked"):
            out[k] = torch.zeros(v.shape, dtype=v.dtype)
            continue
        shape = v.shape
        if k.endswith("running_mean"):
            t = 0.1 * torch.randn(shape, generator=g)
        elif k.endswith("running_var"):
            t = 0.5 + torch.rand(shape, generator=g)
        elif v.ndim == 4:  # conv weight: He-normal over the fan-in
            fan_in = shape[1] * shape[2] * shape[3]
            t = torch.randn(shape, generator=g) * (2.0 / fan_in) ** 0.5
        elif v.ndim == 2:  # classifier weight
            t = fc_std * torch.randn(shape, generator=g)
        elif "bn" in k and k.endswith(".weight"):
            t = 0.75 + 0.5 * torch.rand(shape, generator=g)
        else:  # biases
            t = 0.1 * torch.randn(shape, generator=g)
        out[k] = t.to(v.dtype)
    return out


# ----------------------------------------------------------------------------------------------
# The extractor
# ----------------------------------------------------------------------------------------------


class InceptionExtractor(Extractor):
    """The FID Inception network as an :class:`Extractor` (see :func:`inception_v3_fid`)."""

    def __init__(
        self,
        net: InceptionV3FID,
        *,
        dims: int = 2048,
        normalize: str = "pytorch_fid",
        resize_mode: str = "pil_bicubic",
        fold: bool = True,
        channels_last: bool = True,
        precision: str = "float32",
        provenance: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if dims not in BLOCK_INDEX_BY_DIM:
            raise ValueError(f"Expected `dims` to be one of 64, 192, 768, 2048, got {dims!r}")
        if normalize not in NORMALIZATIONS:
            raise ValueError(
                f"Expected `normalize` to be one of {NORMALIZATIONS}, got {normalize!r}"
            )
        self.net = net.eval().requires_grad_(False)
        self.dims = dims
        self.block = BLOCK_INDEX_BY_DIM[dims]
        self.normalize = normalize
        self.fold = bool(fold)
        self.autocast_dtype = check_precision(precision)
        self.__dict__["_fast"] = FastPath(channels_last=channels_last)
        self.name = "inception_v3_fid"
        self.input_size = INPUT_SIZE
        self.resize_mode = resize_mode
        self.provenance = {
            "name": self.name,
            "dim": dims,
            "input_size": INPUT_SIZE,
            "resize_mode": resize_mode,
            "normalization": (
                "x / 255 -> bilinear resize to 299 (align_corners=False) -> 2x - 1"
                if normalize == "pytorch_fid"
                else "bilinear resize to 299 (align_corners=False) -> (x - 128) / 128"
            ),
            "num_classes": NUM_CLASSES,
            "precision": precision,
            **(provenance or {}),
        }
        self.eval()

    @property
    def dim(self) -> int:
        return self.dims

    def _apply(self, fn, recurse=True):  # type: ignore[no-untyped-def]
        self.__dict__["_fast"].clear()
        return super()._apply(fn, recurse)

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """0..255 images -> the network's input: resized to 299 x 299 and normalised."""
        x = check_images(x)
        dev = self.net.fc.weight.device
        x = x.to(dev)
        if self.normalize == "pytorch_fid":
            x = x / 255.0
            x = resize_bilinear(x, INPUT_SIZE)
            return 2 * x - 1
        x = resize_bilinear(x, INPUT_SIZE)
        return (x - 128.0) / 128.0

    def _run(self, x: torch.Tensor, last: int) -> list[torch.Tensor]:
        """Blocks 0..last on 0..255 images; the fast path when no gradient is wanted."""
        x = self.preprocess(x)
        if self.training or not self.fold or wants_autograd(self.net, x):
            return self.net.forward_blocks(x, last)
        fast = self.__dict__["_fast"]
        net = fast.get(self.net)
        with torch.inference_mode():
            if fast.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            if self.autocast_dtype is not None:
                with torch.autocast(device_type=x.device.type, dtype=self.autocast_dtype):
                    outs = net.forward_blocks(x, last)
            else:
                outs = net.forward_blocks(x, last)
            outs = [o.float() for o in outs]
        # Plain tensors (not inference tensors) for the caller.
        return [o.clone() for o in outs]

    def blocks(self, x: torch.Tensor, blocks: tuple[int, ...] = (0, 1, 2, 3)) -> list[torch.Tensor]:
        """pytorch-fid's block outputs (maps ``[N, C, h, w]``; block 3 is ``[N, 2048, 1, 1]``)
        for block indices ``blocks`` (0: 64, 1: 192, 2: 768, 3: 2048 channels)."""
        if not blocks or any(b not in (0, 1, 2, 3) for b in blocks):
            raise ValueError(f"Expected `blocks` to hold indices in 0..3, got {blocks!r}")
        outs = self._run(x, max(blocks))
        return [outs[b] for b in blocks]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features ``[N, dims]``: block ``dims`` averaged over space (as pytorch-fid's
        ``fid_score`` does for the 64/192/768 blocks)."""
        out = self._run(x, self.block)[self.block]
        return out.mean((2, 3)) if out.shape[2] * out.shape[3] > 1 else out.flatten(1)

    def logits(self, x: torch.Tensor, *, bias: bool = False) -> torch.Tensor:
        """The 1008-way classifier's logits ``[N, 1008]`` for the Inception Score.

        ``bias=False`` (the default) leaves out the classifier's bias, as the original Inception
        Score code, torch-fidelity's ``logits_unbiased``, torchmetrics and StyleGAN's metrics
        do; class 0 is TensorFlow's background class and classes 1..1000 are ImageNet's.
        """
        return self.features_and_logits(x, bias=bias)[1]

    def features_and_logits(
        self, x: torch.Tensor, *, bias: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(features [N, dims], logits [N, 1008])`` from one pass through the network."""
        outs = self._run(x, 3)
        pool3 = outs[3].flatten(1)
        fc = self.net.fc
        logits = F.linear(pool3, fc.weight, fc.bias if bias else None)
        feat = outs[self.block]
        feat = feat.mean((2, 3)) if self.block < 3 else pool3
        return feat, logits


class TorchScriptInceptionExtractor(Extractor):
    """clean-fid's TorchScript Inception run as it is (used when its parameters cannot be
    mapped onto :class:`InceptionV3FID`): pool3 features and 1008-way logits."""

    def __init__(
        self,
        module: torch.jit.ScriptModule,
        *,
        normalize: str = "clean_fid",
        resize_mode: str = "pil_bicubic",
        provenance: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if normalize not in NORMALIZATIONS:
            raise ValueError(
                f"Expected `normalize` to be one of {NORMALIZATIONS}, got {normalize!r}"
            )
        self.base = module.eval()
        self.normalize = normalize
        self.name = "inception_v3_fid"
        self.input_size = INPUT_SIZE
        self.resize_mode = resize_mode
        self.provenance = {
            "name": self.name,
            "dim": 2048,
            "input_size": INPUT_SIZE,
            "resize_mode": resize_mode,
            "num_classes": NUM_CLASSES,
            **(provenance or {}),
        }
        self.eval()

    @property
    def dim(self) -> int:
        return 2048

    def _pool3(self, x: torch.Tensor) -> torch.Tensor:
        x = check_images(x)
        x = x.to(self.base.output.weight.device)
        if self.normalize == "pytorch_fid":
            x = 2 * resize_bilinear(x / 255.0, INPUT_SIZE) - 1
        else:
            x = (resize_bilinear(x, INPUT_SIZE) - 128.0) / 128.0
        with torch.no_grad():
            return self.base.layers(x).reshape(x.shape[0], 2048).float()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._pool3(x)

    def logits(self, x: torch.Tensor, *, bias: bool = False) -> torch.Tensor:
        return self.features_and_logits(x, bias=bias)[1]

    def features_and_logits(
        self, x: torch.Tensor, *, bias: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        f = self._pool3(x)
        out = self.base.output
        with torch.no_grad():
            return f, F.linear(f, out.weight, out.bias if bias else None)


def _weights_path(weights: str | os.PathLike[str]) -> tuple[Path, W.WeightsFile | None]:
    p = Path(weights).expanduser()
    if p.is_dir():
        for f in W.INCEPTION_FILES:
            if (p / f.filename).is_file():
                return p / f.filename, f
        raise W.WeightsNotFoundError(
            f"No Inception weights in folder {p}: expected "
            + " or ".join(f"`{f.filename}`" for f in W.INCEPTION_FILES)
        )
    if not p.is_file():
        raise W.WeightsNotFoundError(
            f"Inception weights file {p} does not exist (expected pytorch-fid's "
            f"`{W.INCEPTION_FID.filename}` or clean-fid's `{W.INCEPTION_TORCHSCRIPT.filename}`)"
        )
    return p, next((f for f in W.INCEPTION_FILES if f.filename == p.name), None)


def inception_v3_fid(
    weights: str | os.PathLike[str] | Mapping[str, torch.Tensor] | None = None,
    *,
    dims: int = 2048,
    download: bool = False,
    normalize: str | None = None,
    resize_mode: str = "pil_bicubic",
    fold: bool = True,
    channels_last: bool = True,
    precision: str = "float32",
    device: str | torch.device | None = None,
    hash_check: bool = True,
) -> Extractor:
    """The FID Inception-v3 feature extractor (pytorch-fid's network, bit-compatible layout).

    Args:
        weights: where the weights come from:

            * a path to pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth`` (a state dict,
              loaded with ``strict=True``) or to clean-fid's TorchScript
              ``inception-2015-12-05.pt`` (its parameters are mapped onto this network), or to
              a folder holding one of them;
            * a state dict with pytorch-fid's keys;
            * ``"random"``: seeded random weights (tests and benchmarks; features mean nothing);
            * ``None``: search ``$FASTPERC_WEIGHTS``, the cache (``$FASTPERC_CACHE`` or
              ``~/.cache/fastperc``) and torch hub's checkpoint folder; with ``download=True``
              fetch pytorch-fid's file into the cache (SHA-256 checked) if none is found.
        dims: feature length: 2048 (pool3, the FID standard) or 64 / 192 / 768 (pytorch-fid's
            earlier blocks, averaged over space).
        download: allow the download described above.
        normalize: ``"pytorch_fid"`` (``x / 255``, then ``2x - 1``) or ``"clean_fid"``
            (``(x - 128) / 128``); default: clean-fid's for its TorchScript file, pytorch-fid's
            otherwise.
        resize_mode: the resize method recorded as the protocol's (images are expected at
            299 x 299; other sizes are resized inside, bilinearly, as pytorch-fid does).
        fold: use the inference fast path (batch norms folded into the convolutions,
            channels-last, ``torch.inference_mode``) when no gradient is wanted.
        channels_last: run the fast path in the channels-last memory format.
        precision: ``"float32"`` (default) or ``"bfloat16"``/``"float16"`` autocast on the fast
            path (see ``bench/bench_models.py`` for how far features move).
        device: where to put the network.
        hash_check: compute the file's SHA-256 for the provenance (and compare it with the
            published one).

    Returns:
        An :class:`Extractor` (``name="inception_v3_fid"``, ``input_size=(299, 299)``) whose
        ``logits(x)`` gives the 1008-way logits for the Inception Score.

    Raises:
        WeightsNotFoundError: no weights found (the message lists where it looked and how to
            provide them).

    Example:
        >>> import torch
        >>> from fastperc.models import inception_v3_fid
        >>> ex = inception_v3_fid("random")  # real use: inception_v3_fid() or a path
        >>> ex(torch.rand(1, 3, 299, 299) * 255).shape
        torch.Size([1, 2048])
    """
    if dims not in BLOCK_INDEX_BY_DIM:
        raise ValueError(f"Expected `dims` to be one of 64, 192, 768, 2048, got {dims!r}")
    if normalize is not None and normalize not in NORMALIZATIONS:
        raise ValueError(
            f"Expected `normalize` to be None or one of {NORMALIZATIONS}, got {normalize!r}"
        )
    check_precision(precision)
    prov: dict[str, Any] = {"weights": None, "sha256": None, "sha256_matches_published": None}
    default_norm = "pytorch_fid"

    if isinstance(weights, str) and weights == "random":
        net = load_weights(InceptionV3FID, random_state_dict(seed=0), copy_tensors=False)
        prov.update(weights="random (seed 0)", source="random")
    elif isinstance(weights, Mapping):
        net = load_weights(InceptionV3FID, weights, copy_tensors=True)
        prov.update(weights="state dict", source="state dict")
    else:
        if weights is None:
            found = W.find_weights(W.INCEPTION_FILES)
            if found is None:
                if not download:
                    raise W.WeightsNotFoundError(
                        W.not_found_message(W.INCEPTION_FILES, "the FID Inception network")
                    )
                found = (W.download_weights(W.INCEPTION_FID), W.INCEPTION_FID)
            path, spec = found
        elif isinstance(weights, (str, os.PathLike)):
            path, spec = _weights_path(weights)
        else:
            raise TypeError(
                "Expected `weights` to be None, a path, a state dict or 'random', got "
                f"{type(weights).__name__}"
            )
        prov["weights"] = path.name
        prov["path"] = str(path)
        if hash_check:
            digest = W.sha256_file(path)
            prov["sha256"] = digest
            prov["sha256_matches_published"] = W.check_hash(digest, spec) if spec else None
        if W.is_torchscript(path):
            default_norm = "clean_fid"
            with warnings.catch_warnings():  # torch.jit's deprecation notice is not actionable
                warnings.simplefilter("ignore", DeprecationWarning)
                ts = torch.jit.load(str(path), map_location="cpu")
            try:
                sd = state_dict_from_torchscript(dict(ts.state_dict()))
            except ValueError as exc:
                prov.update(source="clean-fid TorchScript (run as is)", mapping_error=str(exc))
                ex = TorchScriptInceptionExtractor(
                    ts,
                    normalize=normalize or default_norm,
                    resize_mode=resize_mode,
                    provenance=prov,
                )
                if dims != 2048:
                    raise ValueError(
                        f"dims={dims} needs the network's inner blocks, which this TorchScript "
                        f"file does not expose ({exc})"
                    ) from exc
                return ex.to(device) if device is not None else ex
            net = load_weights(InceptionV3FID, sd, copy_tensors=False)
            prov["source"] = "clean-fid TorchScript (parameters mapped)"
        else:
            sd = torch.load(str(path), map_location="cpu", weights_only=True)
            if not isinstance(sd, Mapping):
                raise ValueError(
                    f"Expected {path} to hold a state dict (pytorch-fid's format), got "
                    f"{type(sd).__name__}"
                )
            net = load_weights(InceptionV3FID, sd, copy_tensors=False)
            prov["source"] = "pytorch-fid state dict"

    ex = InceptionExtractor(
        net,
        dims=dims,
        normalize=normalize or default_norm,
        resize_mode=resize_mode,
        fold=fold,
        channels_last=channels_last,
        precision=precision,
        provenance=prov,
    )
    return ex.to(device) if device is not None else ex
