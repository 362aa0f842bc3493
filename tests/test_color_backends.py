"""Every fast backend (C++, Triton) against the PyTorch reference.

Fresh random inputs of awkward sizes (1x1, 3x5, 17x31, 64x64), batches of 1 and 4, every dtype,
NCHW / NHWC (numpy) / channels_last / non-contiguous views, outputs poisoned first. 8-bit
results must be bit-exact; floating results within the dtype's tolerance.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from fastperc import color
from fastperc.reference import color as ref

from .conftest import fast_backends, usable_fast_backends

DTYPES = [torch.uint8, torch.float16, torch.bfloat16, torch.float32, torch.float64]
SIZES = [(1, 1), (3, 5), (17, 31), (64, 64)]
LAYOUTS = ["nchw", "nhwc_numpy", "channels_last", "strided"]

# op name -> (input channels, input kind, accepted dtypes)
OPS = {
    "rgb_to_ycbcr": (3, "unit", DTYPES),
    "ycbcr_to_rgb": (3, "unit", DTYPES),
    "rgb_to_gray": (3, "unit", DTYPES),
    "srgb_to_linear": (3, "unit", DTYPES),
    "linear_to_srgb": (3, "unit", DTYPES[1:]),
    "rgb_to_xyz": (3, "unit", DTYPES),
    "xyz_to_rgb": (3, "xyz", DTYPES[1:]),
    "rgb_to_lab": (3, "unit", DTYPES),
    "lab_to_rgb": (3, "lab", DTYPES[1:]),
}
OP_KWARGS = {
    "rgb_to_ycbcr": [{}, {"standard": "bt709", "full_range": False}],
    "ycbcr_to_rgb": [{}, {"standard": "bt709"}, {"full_range": False}],
    "rgb_to_gray": [{}, {"standard": "bt709"}],
    "srgb_to_linear": [{}],
    "linear_to_srgb": [{}],
    "rgb_to_xyz": [{}, {"linear": True}],
    "xyz_to_rgb": [{}, {"linear": True, "clip": False}],
    "rgb_to_lab": [{}],
    "lab_to_rgb": [{}, {"clip": False}],
}


def _random(kind: str, n: int, c: int, h: int, w: int, dtype: torch.dtype, gen) -> torch.Tensor:
    if dtype == torch.uint8:
        return torch.randint(0, 256, (n, c, h, w), generator=gen, dtype=torch.uint8)
    x = torch.rand((n, c, h, w), generator=gen, dtype=torch.float64)
    if kind == "lab":
        x = x * torch.tensor([100.0, 200.0, 200.0]).view(1, 3, 1, 1) - torch.tensor(
            [0.0, 100.0, 100.0]
        ).view(1, 3, 1, 1)
    elif kind == "xyz":
        x = x * 1.05
    return x.to(dtype)


def _layout(x: torch.Tensor, layout: str):
    """Present an NCHW tensor in the given layout; return (input, to_nchw)."""
    if layout == "nchw":
        return x, lambda o: o
    if layout == "nhwc_numpy":
        if x.dtype == torch.bfloat16:  # numpy has no bfloat16: use a channels_last tensor
            return x.contiguous(memory_format=torch.channels_last), lambda o: o
        return x.permute(0, 2, 3, 1).numpy(), lambda o: torch.from_numpy(o).permute(0, 3, 1, 2)
    if layout == "channels_last":
        return x.contiguous(memory_format=torch.channels_last), lambda o: o
    # a non-contiguous view: every other column of a twice-as-wide tensor, reversed channels
    big = torch.zeros((*x.shape[:3], 2 * x.shape[3]), dtype=x.dtype)
    big[..., ::2] = x
    return big[..., ::2], lambda o: o


def _tolerance(dtype: torch.dtype, ref_out: torch.Tensor) -> tuple[float, float]:
    scale = max(1.0, float(ref_out.double().abs().max()))
    return {
        torch.float64: (1e-12, 1e-12 * scale),
        torch.float32: (2e-6, 2e-6 * scale),
        torch.float16: (2e-3, 2e-3 * scale),
        torch.bfloat16: (1.6e-2, 1.6e-2 * scale),
    }[dtype]


def _assert_match(out, expected: torch.Tensor, what: str):
    out_t = out if isinstance(out, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(out))
    assert out_t.dtype == expected.dtype, what
    assert out_t.shape == expected.shape, what
    if expected.dtype == torch.uint8:
        mism = (out_t != expected).sum().item()
        assert mism == 0, f"{what}: {mism} of {expected.numel()} bytes differ"
    else:
        rtol, atol = _tolerance(expected.dtype, expected)
        torch.testing.assert_close(
            out_t, expected, rtol=rtol, atol=atol, msg=lambda m: f"{what}: {m}"
        )


def _cases(backend: str):
    """The cartesian grid for C++; a covering subset for the (slow) Triton interpreter."""
    for op, (_c, _kind, dtypes) in OPS.items():
        for kw in OP_KWARGS[op]:
            grid = itertools.product(dtypes, SIZES, (1, 4), LAYOUTS)
            if backend == "triton":
                grid = [
                    (d, SIZES[i % 3], 1 + (i % 2), LAYOUTS[i % 4]) for i, d in enumerate(dtypes)
                ]
            for dtype, size, n, layout in grid:
                yield op, kw, dtype, size, n, layout


@pytest.mark.parametrize("backend", fast_backends())
def test_colour_ops_match_reference(backend, poisoned):
    gen = torch.Generator().manual_seed(1234)
    for op, kw, dtype, (h, w), n, layout in _cases(backend):
        c, kind, _ = OPS[op]
        x = _random(kind, n, c, h, w, dtype, gen)
        inp, to_nchw = _layout(x, layout)
        fn = getattr(color, op)
        expected = fn(x, backend="torch", **kw)
        got = fn(inp, backend=backend, **kw)
        if isinstance(inp, np.ndarray):
            assert isinstance(got, np.ndarray)
        _assert_match(to_nchw(got), expected, f"{op}{kw} {dtype} {n}x{h}x{w} {layout}")


@pytest.mark.parametrize("backend", fast_backends())
@pytest.mark.parametrize("subsampling", ["4:2:0", "4:2:2", "4:4:4"])
def test_chroma_ops_match_reference(backend, subsampling, poisoned):
    gen = torch.Generator().manual_seed(99)
    sizes = [*SIZES, (2, 2), (4, 3), (5, 6), (9, 4)]  # include the narrow-chroma fallback
    dtypes = DTYPES
    layouts = LAYOUTS
    grid = list(itertools.product(dtypes, sizes, layouts))
    if backend == "triton":
        grid = [(dtypes[i % 5], sizes[i % len(sizes)], layouts[i % 4]) for i in range(10)]
    for dtype, (h, w), layout in grid:
        x = _random("unit", 2, 3, h, w, dtype, gen)
        inp, to_nchw = _layout(x, layout)
        y_ref, c_ref = color.chroma_downsample(x, subsampling, backend="torch")
        y, c = color.chroma_downsample(inp, subsampling, backend=backend)
        what = f"downsample {subsampling} {dtype} {h}x{w} {layout}"
        _assert_match(to_nchw(y), y_ref, what)
        _assert_match(to_nchw(c), c_ref, what)
        # upsample random chroma of the right size (not only downsampled data)
        hc, wc = ref.chroma_size(h, w, subsampling)
        cr = _random("unit", 2, 2, hc, wc, dtype, gen)
        cin, _ = _layout(cr, layout)
        yin, _ = _layout(y_ref, layout)
        for method in ("fancy", "nearest"):
            want = color.chroma_upsample(y_ref, cr, subsampling, method=method, backend="torch")
            got = color.chroma_upsample(yin, cin, subsampling, method=method, backend=backend)
            _assert_match(to_nchw(got), want, f"upsample {method} {what}")


@pytest.mark.parametrize("backend", fast_backends())
def test_single_image_and_extra_batch_dims(backend):
    x = torch.randint(0, 256, (2, 3, 3, 5, 7), dtype=torch.uint8)
    got = color.rgb_to_ycbcr(x, backend=backend)
    assert got.shape == x.shape
    torch.testing.assert_close(got, color.rgb_to_ycbcr(x, backend="torch"), rtol=0, atol=0)
    single = color.rgb_to_ycbcr(x[0, 0], backend=backend)
    torch.testing.assert_close(single, got[0, 0], rtol=0, atol=0)
    hwc = x[0, 0].permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(
        color.rgb_to_ycbcr(hwc, backend=backend), got[0, 0].permute(1, 2, 0).numpy()
    )


def test_channels_last_memory_format_is_kept():
    x = torch.rand(2, 3, 8, 8).contiguous(memory_format=torch.channels_last)
    out = color.rgb_to_ycbcr(x)
    assert out.is_contiguous(memory_format=torch.channels_last)


def test_value_range_255_float(photo):
    f = torch.from_numpy(photo).permute(2, 0, 1).float()
    for backend in ("torch", *usable_fast_backends()):
        out = color.rgb_to_ycbcr(f, value_range=255, backend=backend)
        unit = color.rgb_to_ycbcr(f / 255, backend=backend)
        torch.testing.assert_close(out / 255, unit, atol=1e-6, rtol=1e-6)
