"""The :class:`Extractor` interface, batch-norm folding and the inference fast path."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from .. import _ext

_AUTOCAST = {None: None, "float32": None, "bfloat16": torch.bfloat16, "float16": torch.float16}


def check_images(x: object, name: str = "x") -> torch.Tensor:
    """Validate an ``[N, 3, H, W]`` image batch (values 0..255) and return it as float32."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(
            f"Expected `{name}` to be a torch.Tensor of shape [N, 3, H, W] (RGB, 0..255), "
            f"got {type(x).__name__}"
        )
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"Expected `{name}` of shape [N, 3, H, W], got {tuple(x.shape)}")
    if x.shape[0] == 0 or x.shape[2] == 0 or x.shape[3] == 0:
        raise ValueError(f"Expected a non-empty `{name}`, got shape {tuple(x.shape)}")
    if x.dtype == torch.uint8:
        return x.float()
    if not x.is_floating_point():
        raise TypeError(
            f"Expected `{name}` to be float32 (or another float dtype, or uint8) holding 0..255, "
            f"got {str(x.dtype).replace('torch.', '')}"
        )
    return x if x.dtype == torch.float32 else x.float()


def check_precision(precision: object) -> torch.dtype | None:
    if precision not in _AUTOCAST:
        raise ValueError(
            f"Expected `precision` to be one of 'float32', 'bfloat16', 'float16', got {precision!r}"
        )
    return _AUTOCAST[precision]  # type: ignore[index]


class Extractor(nn.Module):
    """A feature extractor: images in, one feature vector per image out.

    Attributes:
        name: short name (``"inception_v3_fid"``, ``"efficientnet_lite0"``, ...).
        dim: length of a feature vector.
        input_size: ``(h, w)`` the canonical protocol resizes images to before the network, or
            ``None`` when any size is taken as is.
        resize_mode: the ``fastperc.resize`` method of the canonical protocol.
        provenance: what produced the features (name, weights file and SHA-256, dims, input
            normalisation, how the model was chosen); store it next to any statistics.

    ``forward(x)`` takes ``x`` float32 ``[N, 3, H, W]``, RGB, values 0..255, and returns
    ``[N, dim]`` float32. ``logits(x)`` returns classifier logits where the model has a
    classifier, else raises ``NotImplementedError``.

    Example:
        >>> import torch
        >>> from fastperc.models import get_extractor
        >>> ex = get_extractor(lambda x: x.mean((2, 3)), dim=3)
        >>> ex(torch.full((2, 3, 8, 8), 255.0)).shape
        torch.Size([2, 3])
    """

    name: str
    input_size: tuple[int, int] | None
    resize_mode: str
    provenance: dict[str, Any]

    def __init__(self) -> None:
        super().__init__()
        self.name = "extractor"
        self.input_size = None
        self.resize_mode = "pil_bicubic"
        self.provenance = {}

    @property
    def dim(self) -> int:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Classifier logits ``[N, classes]``; this extractor has no classifier."""
        raise NotImplementedError(f"The `{self.name}` extractor has no classifier, so no logits")

    def features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(forward(x), logits(x))``; models with a classifier compute both in one pass."""
        return self.forward(x), self.logits(x)

    def extra_repr(self) -> str:
        return f"name={self.name!r}, input_size={self.input_size}, resize_mode={self.resize_mode!r}"


# ----------------------------------------------------------------------------------------------
# Batch-norm folding and the inference fast path
# ----------------------------------------------------------------------------------------------


def _folded(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight and bias of a conv that computes ``bn(conv(x))`` in eval mode:
    ``w' = w * g / sqrt(v + eps)``, ``b' = beta + (b - mean) * g / sqrt(v + eps)`` (``g`` = 1
    when the norm has no affine weight); the per-channel factors are computed in float64."""
    with torch.no_grad():
        var = bn.running_var.detach().double()
        mean = bn.running_mean.detach().double()
        gamma = bn.weight.detach().double() if bn.weight is not None else torch.ones_like(var)
        beta = bn.bias.detach().double() if bn.bias is not None else torch.zeros_like(var)
        scale = gamma / torch.sqrt(var + bn.eps)
        b0 = conv.bias.detach().double() if conv.bias is not None else torch.zeros_like(var)
        w = conv.weight.detach()
        w = w * scale.to(w.dtype).view(-1, *([1] * (w.ndim - 1)))
        return w, (beta + (b0 - mean) * scale).to(w.dtype)


def fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A copy of ``conv`` (same class, with a bias) that computes ``bn(conv(x))`` in eval mode.

    Example:
        >>> import torch
        >>> conv, bn = torch.nn.Conv2d(3, 4, 3, bias=False), torch.nn.BatchNorm2d(4).eval()
        >>> x = torch.randn(1, 3, 8, 8)
        >>> torch.allclose(fold_conv_bn(conv, bn)(x), bn(conv(x)), atol=1e-6)
        True
    """
    new = copy.deepcopy(conv)
    w, b = _folded(conv, bn)
    new.weight = nn.Parameter(w, requires_grad=False)
    new.bias = nn.Parameter(b, requires_grad=False)
    return new


def fold_batchnorms(net: nn.Module) -> nn.Module:
    """An eval-only copy of ``net`` with every (conv, batch norm) pair its modules list in their
    ``FOLD`` attribute merged into the conv (the norm becomes ``nn.Identity``).

    The copy shares the storage of the tensors it does not change (nothing is written to them:
    the copy is for inference only) and gets new ones for the folded convolutions.
    """
    memo: dict[int, Any] = {}
    for p in net.parameters():
        memo[id(p)] = nn.Parameter(p.detach(), requires_grad=False)
    for b in net.buffers():
        memo[id(b)] = b.detach()
    out = copy.deepcopy(net, memo)
    for m in out.modules():
        for conv_name, bn_name in getattr(m, "FOLD", ()):
            conv, bn = getattr(m, conv_name, None), getattr(m, bn_name, None)
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                w, b = _folded(conv, bn)
                conv.weight = nn.Parameter(w, requires_grad=False)
                conv.bias = nn.Parameter(b, requires_grad=False)
                setattr(m, bn_name, nn.Identity())
    return out.eval().requires_grad_(False)


def load_weights(
    cls: Callable[[], nn.Module], state: Mapping[str, torch.Tensor], *, copy_tensors: bool
) -> nn.Module:
    """``cls()`` holding ``state`` (``strict=True``), built without a random initialisation:
    the module is made on the meta device and the tensors assigned (copied first when
    ``copy_tensors``, so the caller's dict stays independent; floating tensors as float32)."""
    with torch.device("meta"):
        net = cls()
    sd = {}
    for k, v in state.items():
        if not isinstance(v, torch.Tensor):
            raise TypeError(f"Expected the state dict entry {k!r} to be a tensor, got {type(v)}")
        v = v.detach()
        if v.is_floating_point() and v.dtype != torch.float32:
            v = v.float()
        elif copy_tensors:
            v = v.clone()
        sd[k] = v.cpu()
    net.load_state_dict(sd, strict=True, assign=True)
    left = [n for n, t in itertools.chain(net.named_parameters(), net.named_buffers()) if t.is_meta]
    if left:
        raise ValueError(f"The weights leave {left[0]!r} (and {len(left) - 1} more) unset")
    return net


def _state_key(net: nn.Module) -> tuple:
    """Changes whenever a parameter or buffer of ``net`` is replaced or modified in place."""
    return tuple(
        (t.data_ptr(), t._version, t.device, t.dtype)
        for t in itertools.chain(net.parameters(), net.buffers())
    )


class FastPath:
    """A folded, channels-last copy of a network for inference, rebuilt when the network's
    parameters change (in place or by ``.to()``/``load_state_dict``)."""

    def __init__(self, channels_last: bool = True) -> None:
        self.channels_last = channels_last
        self._net: nn.Module | None = None
        self._key: tuple | None = None

    def get(self, net: nn.Module) -> nn.Module:
        key = _state_key(net)
        if self._net is None or key != self._key:
            fast = fold_batchnorms(net)
            if self.channels_last:
                fast = fast.to(memory_format=torch.channels_last)
            hook = getattr(fast, "enable_fast_ops", None)
            if callable(hook):  # inference-only restructurings the network offers
                hook()
            self._net, self._key = fast, key
        return self._net

    def clear(self) -> None:
        self._net, self._key = None, None


def wants_autograd(net: nn.Module, x: torch.Tensor) -> bool:
    """Whether a forward must keep the autograd graph (the unfolded reference path)."""
    if not torch.is_grad_enabled():
        return False
    return x.requires_grad or any(p.requires_grad for p in net.parameters())


def max_pool2d(
    x: torch.Tensor, kernel_size: int, stride: int, padding: int = 0, *, relu: bool = False
) -> torch.Tensor:
    """``F.max_pool2d(x, kernel_size, stride, padding)`` (``ceil_mode=False``), followed by a
    ReLU when ``relu`` (the two commute, so a ReLU before the pool can move after it, onto a
    map ``stride^2`` times smaller).

    Channels-last float32 CPU tensors outside autograd go through the C++ kernel (the same
    values: a max is exact; a NaN in a window gives NaN, as torch); anything else through
    torch.
    """
    if (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and x.dim() == 4
        and x.stride(1) == 1
        and x.is_contiguous(memory_format=torch.channels_last)
        and not (torch.is_grad_enabled() and x.requires_grad)
        and x.shape[2] + 2 * padding >= kernel_size
        and x.shape[3] + 2 * padding >= kernel_size
        and _ext.cpp_available()
    ):
        n, c, h, w = x.shape
        ho = (h + 2 * padding - kernel_size) // stride + 1
        wo = (w + 2 * padding - kernel_size) // stride + 1
        out = torch.empty((n, c, ho, wo), dtype=x.dtype, memory_format=torch.channels_last)
        if out.numel():
            _ext.cpp().max_pool(x.detach().numpy(), out.numpy(), kernel_size, stride, padding, relu)
        return out
    y = F.max_pool2d(x, kernel_size, stride, padding)
    return F.relu(y) if relu else y


def resize_bilinear(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """pytorch-fid's in-network resize: bilinear, ``align_corners=False``, no antialias (a
    no-op when ``x`` already has that size)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


# ----------------------------------------------------------------------------------------------
# Wrapping any module or callable
# ----------------------------------------------------------------------------------------------


class ModuleExtractor(Extractor):
    """Wraps an ``nn.Module`` or callable that maps ``[N, 3, H, W]`` images to ``[N, D]``
    features (``[N, D, 1, 1]`` is flattened) as an :class:`Extractor`.

    Args:
        fn: the module or callable.
        dim: the feature length; discovered on first use when ``None`` (by a forward of a zero
            image of ``input_size``, or 224 x 224 when that is ``None``).
        input_size: ``(h, w)`` the caller should resize to, or ``None`` (any size).
        resize_mode: the resize method of the protocol.
        value_range: 255 passes images on as 0..255; 1 divides them by 255 first.
        name: the name recorded in the provenance.
    """

    def __init__(
        self,
        fn: Callable[[torch.Tensor], torch.Tensor],
        *,
        dim: int | None = None,
        input_size: tuple[int, int] | int | None = None,
        resize_mode: str = "pil_bicubic",
        value_range: float = 255.0,
        name: str | None = None,
    ) -> None:
        super().__init__()
        if not callable(fn):
            raise TypeError(f"Expected `spec` to be callable, got {type(fn).__name__}")
        if dim is not None and (isinstance(dim, bool) or not isinstance(dim, int) or dim < 1):
            raise ValueError(f"Expected `dim` to be a positive int or None, got {dim!r}")
        if value_range not in (1, 1.0, 255, 255.0):
            raise ValueError(f"Expected `value_range` to be 1 or 255, got {value_range!r}")
        if isinstance(input_size, int) and not isinstance(input_size, bool):
            input_size = (input_size, input_size)
        if input_size is not None and (
            not isinstance(input_size, (tuple, list))
            or len(input_size) != 2
            or not all(isinstance(s, int) and s > 0 for s in input_size)
        ):
            raise ValueError(
                f"Expected `input_size` to be None, an int or (h, w) of positive ints, got "
                f"{input_size!r}"
            )
        if isinstance(fn, nn.Module):
            self.module = fn
        else:
            self.__dict__["fn"] = fn  # a plain callable: not registered as a submodule
        self._dim = dim
        self.value_range = float(value_range)
        self.name = name or (
            type(fn).__name__ if isinstance(fn, nn.Module) else getattr(fn, "__name__", "callable")
        )
        self.input_size = tuple(input_size) if input_size is not None else None  # type: ignore[assignment]
        self.resize_mode = resize_mode
        self.provenance = {
            "name": self.name,
            "kind": "module" if isinstance(fn, nn.Module) else "callable",
            "weights": None,
            "sha256": None,
            "dim": dim,
            "input_size": self.input_size,
            "resize_mode": resize_mode,
            "value_range": self.value_range,
        }

    def _call(self, x: torch.Tensor) -> torch.Tensor:
        fn = self.module if "module" in self._modules else self.__dict__["fn"]
        return fn(x)

    @property
    def dim(self) -> int:
        if self._dim is None:
            h, w = self.input_size or (224, 224)
            dev = next(itertools.chain(self.parameters(), self.buffers()), torch.empty(0)).device
            try:
                with torch.no_grad():
                    self.forward(torch.zeros(1, 3, h, w, device=dev))
            except Exception as exc:
                raise ValueError(
                    f"Could not discover the feature length of `{self.name}` from a forward of a "
                    f"1 x 3 x {h} x {w} zero image ({type(exc).__name__}: {exc}); pass `dim=`"
                ) from exc
        assert self._dim is not None
        return self._dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = check_images(x)
        if self.value_range == 1.0:
            x = x / 255.0
        out = self._call(x)
        if not isinstance(out, torch.Tensor):
            raise TypeError(
                f"Expected the wrapped `{self.name}` to return a torch.Tensor [N, D], got "
                f"{type(out).__name__}"
            )
        if out.ndim == 4 and out.shape[2] == 1 and out.shape[3] == 1:
            out = out.flatten(1)
        if out.ndim != 2 or out.shape[0] != x.shape[0]:
            raise ValueError(
                f"Expected the wrapped `{self.name}` to return [N, D] = [{x.shape[0]}, D], got "
                f"{tuple(out.shape)}"
            )
        if self._dim is None:
            self._dim = int(out.shape[1])
            self.provenance["dim"] = self._dim
        elif out.shape[1] != self._dim:
            raise ValueError(
                f"The wrapped `{self.name}` returned {out.shape[1]} features, expected dim = "
                f"{self._dim}"
            )
        return out.float()
