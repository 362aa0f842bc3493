"""The Triton backend of ``fastperc.jpeg.jpeg_simulate`` against the PyTorch reference.

Without a GPU the kernels run on CPU tensors under ``TRITON_INTERPRET=1`` (conftest.py sets it),
so shapes stay small. exact: bit for bit. float: identical for float64 images, and nearly always
for float32 (rounding points of float sums). differentiable: values and input gradients to float
tolerance (float64 tight; float32 judged against a float64 evaluation, as STYLE.md asks: at most
twice the error of the reference computed in float32), table gradients through the reference.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from fastperc import BackendError, dispatch, jpeg
from fastperc.reference import jpeg as ref

_REASON = dispatch.available_backends()["triton"]
pytestmark = [
    pytest.mark.triton,
    pytest.mark.skipif(_REASON is not None, reason=f"triton: {_REASON}"),
]

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
SUBSAMPLINGS = ["4:4:4", "4:2:2", "4:2:0"]
QUALITIES = [1, 50, 75, 100]
SIZES = [(1, 1), (5, 7), (17, 23), (16, 16)]


@pytest.fixture(scope="module", autouse=True)
def _single_thread():
    """The interpreter and the reference run many small ops: one intra-op thread is faster on a
    busy 2-core machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def kernels():
    from fastperc.kernels import jpeg as kj

    return kj


def images(n: int, c: int, h: int, w: int, seed: int, dtype=torch.uint8) -> torch.Tensor:
    """Random images with smooth regions and edges (so that coefficients of every size occur),
    uint8 or float on 0..1 (not on the 8-bit grid, so float comparisons meet no exact ties)."""
    g = torch.Generator().manual_seed(seed)
    yy = torch.linspace(0, 1, h).view(h, 1)
    xx = torch.linspace(0, 1, w).view(1, w)
    base = 255 * (0.5 + 0.5 * torch.sin(6 * xx + 4 * yy + torch.rand(n, c, 1, 1, generator=g) * 6))
    noise = torch.rand(n, c, h, w, generator=g) * 80 - 40
    edges = (torch.rand(n, c, h, w, generator=g) > 0.9) * 120.0
    x = (base + noise + edges).clamp(0, 255)
    if dtype == torch.uint8:
        return x.round().to(torch.uint8).to(DEVICE)
    return (x / 255).to(dtype).to(DEVICE)


def both(x, **kw):
    """(Triton, reference) results of jpeg_simulate."""
    return jpeg.jpeg_simulate(x, backend="triton", **kw), jpeg.jpeg_simulate(
        x, backend="torch", **kw
    )


def assert_equal(a, b, label: str) -> None:
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    assert a.dtype == b.dtype and a.shape == b.shape, label
    if not torch.equal(a, b):
        d = (a.double() - b.double()).abs()
        raise AssertionError(
            f"{label}: {(d == 0).double().mean().item():.6f} of values identical, max |diff| "
            f"{d.max().item()}"
        )


def levels(t) -> torch.Tensor:
    """Values on the 0..255 scale."""
    t = torch.as_tensor(t).double()
    return t if t.max() > 1.5 else t * 255


def assert_nearly_equal(
    a, b, label: str, *, identical: float, within_one: float = 1.0, tol: float = 1e-6
) -> None:
    """At least ``identical`` of the values equal (within ``tol`` of a level) and ``within_one`` of
    them within one level."""
    d = (levels(a) - levels(b)).abs()
    same = (d <= tol).double().mean().item()
    near = (d <= 1 + 1e-6).double().mean().item()
    assert same >= identical and near >= within_one, (
        f"{label}: {same:.6f} identical, {near:.6f} within one level, max |diff| {d.max().item()}"
    )


# ----------------------------------------------------------------------------------------------
# Exact mode: bit for bit
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("subsampling", SUBSAMPLINGS)
def test_exact_rgb_every_quality(subsampling, size):
    h, w = size
    x = images(2, 3, h, w, seed=h * 100 + w)
    for q in QUALITIES:
        a, b = both(x, quality=q, subsampling=subsampling)
        assert_equal(a, b, f"{subsampling} {h}x{w} q={q}")


@pytest.mark.parametrize("size", [*SIZES, (9, 33)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_exact_greyscale_every_quality(size):
    h, w = size
    x = images(2, 1, h, w, seed=h + w)
    for q in QUALITIES:
        a, b = both(x, quality=q)
        assert_equal(a, b, f"L {h}x{w} q={q}")


@pytest.mark.parametrize("subsampling", SUBSAMPLINGS)
def test_exact_float_input_and_layouts(subsampling):
    x8 = images(2, 3, 11, 21, seed=5)
    # float32 on 0..1 (rounded to 8 bits first) and on 0..255
    for x, kw in [(x8.float() / 255, {}), (x8.float(), {"value_range": 255})]:
        a, b = both(x, quality=60, subsampling=subsampling, **kw)
        assert_equal(a, b, f"float32 {kw}")
    # channels_last, a strided view, numpy HWC, a single CHW image, two batch dimensions
    cl = x8.contiguous(memory_format=torch.channels_last)
    a, b = both(cl, quality=60, subsampling=subsampling)
    assert a.is_contiguous(memory_format=torch.channels_last)
    assert_equal(a, b, "channels_last")
    wide = torch.zeros(2, 3, 11, 42, dtype=torch.uint8, device=DEVICE)
    wide[..., ::2] = x8
    assert_equal(*both(wide[..., ::2], quality=60, subsampling=subsampling), "strided")
    if DEVICE == "cpu":
        hwc = x8.permute(0, 2, 3, 1).numpy()
        a, b = both(hwc, quality=60, subsampling=subsampling)
        assert isinstance(a, np.ndarray)
        assert_equal(a, b, "numpy HWC")
    assert_equal(*both(x8[0], quality=60, subsampling=subsampling), "CHW")
    assert_equal(*both(x8.view(1, 2, 3, 11, 21), quality=60, subsampling=subsampling), "[1, 2]")


@pytest.mark.parametrize("subsampling", SUBSAMPLINGS)
def test_exact_custom_tables(subsampling):
    g = np.random.default_rng(7)
    x = images(1, 3, 13, 19, seed=3)
    cases = [
        g.integers(1, 256, (8, 8)),  # one table for every component
        g.integers(1, 400, (2, 8, 8)),  # luma, chroma (16-bit entries)
        g.integers(1, 120, (3, 8, 8)),  # Y, Cb, Cr
        np.stack([np.ones((8, 8)), np.full((8, 8), jpeg.EXACT_TABLE_MAX)]),  # the extremes
    ]
    for k, tables in enumerate(cases):
        a, b = both(x, subsampling=subsampling, tables=tables)
        assert_equal(a, b, f"tables #{k}")
    grey = x[:, :1]
    assert_equal(*both(grey, tables=cases[2]), "greyscale, three tables")


def test_exact_extreme_blocks():
    """Saturated blocks, checkerboards and the overshooting block of test_jpeg at quality 1: the
    largest coefficients and inverse-DCT outputs beyond the range-limit table's 512."""
    from .test_jpeg import OVERSHOOT_BLOCK

    over = torch.tensor(OVERSHOOT_BLOCK, dtype=torch.uint8)
    yy, xx = torch.meshgrid(torch.arange(16), torch.arange(16), indexing="ij")
    checker = (((yy + xx) % 2) * 255).to(torch.uint8)
    stripes = ((xx // 1 % 2) * 255).to(torch.uint8)
    planes = torch.stack([over.repeat(2, 2), checker, stripes, 255 - checker])
    x = torch.stack([planes[[0, 1, 2]], planes[[3, 0, 1]], torch.zeros(3, 16, 16, dtype=torch.uint8),
                     torch.full((3, 16, 16), 255, dtype=torch.uint8)]).to(DEVICE)  # fmt: skip
    for q in (1, 100):
        for s in SUBSAMPLINGS:
            assert_equal(*both(x, quality=q, subsampling=s), f"extremes q={q} {s}")
        assert_equal(*both(x[:, :1], quality=q), f"extremes L q={q}")
    tables = torch.full((8, 8), jpeg.EXACT_TABLE_MAX)
    assert_equal(*both(x, tables=tables), "extremes, largest table")


@pytest.mark.parametrize("mode", ["exact", "float", "differentiable"])
def test_outputs_fully_written(poisoned, mode):
    """Every buffer the API and the launchers allocate is poisoned first (conftest.poisoned)."""
    x = images(2, 3, 13, 21, seed=11, dtype=torch.uint8 if mode == "exact" else torch.float64)
    for s in SUBSAMPLINGS:
        a, b = both(x, quality=50, subsampling=s, mode=mode)
        assert_nearly_equal(a, b, f"{mode} {s} poison={poisoned}", identical=1.0)
    a, b = both(x[:, :1], quality=50, mode=mode)
    assert_nearly_equal(a, b, f"{mode} L poison={poisoned}", identical=1.0)


# ----------------------------------------------------------------------------------------------
# Float mode
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("subsampling", SUBSAMPLINGS)
def test_float_mode(subsampling):
    for dtype, identical in [(torch.float64, 0.9999), (torch.float32, 0.999), (torch.uint8, 0.999)]:
        for k, (h, w) in enumerate([(1, 1), (17, 23), (16, 16)]):
            x = images(2, 3, h, w, seed=k, dtype=dtype)
            for q in (1, 75):
                a, b = both(x, quality=q, subsampling=subsampling, mode="float")
                assert a.dtype == b.dtype == x.dtype
                label = f"float {dtype} {h}x{w} q={q}"
                assert_nearly_equal(a, b, label, identical=identical, within_one=0.9999)
    x = images(2, 1, 9, 13, seed=1, dtype=torch.float32)
    tables = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(0)) * 30 + 0.5
    for q, t in [(1, None), (75, None), (50, tables)]:
        a, b = both(x, quality=q, mode="float", tables=t)
        assert_nearly_equal(a, b, f"float L q={q}", identical=0.999, within_one=0.9999)
    a, b = both(images(2, 3, 9, 13, seed=2, dtype=torch.float64), mode="float", tables=tables)
    assert_nearly_equal(a, b, "float, non-integer tables", identical=0.9999)


# ----------------------------------------------------------------------------------------------
# Differentiable mode: values and gradients
# ----------------------------------------------------------------------------------------------


def forward_backward(x, backend, *, tables=None, **kw):
    """Output, gradient of a fixed random projection w.r.t. the image (and the tables)."""
    x = x.detach().clone().requires_grad_(True)
    t = None if tables is None else tables.detach().clone().requires_grad_(True)
    y = jpeg.jpeg_simulate(x, mode="differentiable", tables=t, backend=backend, **kw)
    w = torch.randn(y.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    (y * w.to(y)).sum().backward()
    return y.detach(), x.grad, None if t is None else t.grad


@pytest.mark.parametrize("rounding", ["cubic", "ste"])
@pytest.mark.parametrize("subsampling", SUBSAMPLINGS)
def test_differentiable_float64_values_and_gradients(subsampling, rounding):
    for k, (h, w, c) in enumerate([(1, 1, 3), (5, 7, 3), (17, 23, 3), (16, 16, 1), (9, 20, 1)]):
        x = images(2, c, h, w, seed=k, dtype=torch.float64)
        for q in (5, 75):
            kw = {"quality": q, "subsampling": subsampling, "rounding": rounding}
            y, gx, _ = forward_backward(x, "triton", **kw)
            ry, rgx, _ = forward_backward(x, "torch", **kw)
            label = f"{h}x{w}x{c} q={q}"
            torch.testing.assert_close(y, ry, rtol=0, atol=1e-10, msg=label)
            torch.testing.assert_close(gx, rgx, rtol=0, atol=1e-9 * max(1.0, rgx.abs().max()),
                                       msg=label)  # fmt: skip


@pytest.mark.parametrize("rounding", ["cubic", "ste"])
def test_differentiable_float32_against_float64(rounding):
    """float32 values and gradients: their error against the float64 reference at most twice
    that of the float32 reference (plus one float32 ulp of the scale)."""
    for s in SUBSAMPLINGS:
        for c in (3, 1):
            x64 = images(2, c, 17, 23, seed=3, dtype=torch.float64)
            kw = {"quality": 50, "subsampling": s, "rounding": rounding}
            truth = forward_backward(x64, "torch", **kw)
            ours = forward_backward(x64.float(), "triton", **kw)
            theirs = forward_backward(x64.float(), "torch", **kw)
            for k, name in enumerate(("values", "gradients")):
                scale = float(truth[k].abs().max())
                err_ours = float((ours[k].double() - truth[k]).abs().max())
                err_ref = float((theirs[k].double() - truth[k]).abs().max())
                assert err_ours <= 2 * err_ref + 1.2e-7 * scale, (
                    f"{s} C={c} {name}: error {err_ours:.3g} vs the reference's {err_ref:.3g}"
                )


def test_differentiable_uint8_input_and_value_range():
    x = images(1, 3, 12, 10, seed=4)
    a, b = both(x, quality=50, mode="differentiable")
    assert a.dtype == torch.uint8
    # integer samples meet exact rounding ties, where the order of float sums decides
    assert_nearly_equal(a, b, "uint8", identical=0.98, within_one=0.995)
    xf = images(1, 3, 12, 10, seed=4, dtype=torch.float32) * 255
    a, b = both(xf, quality=50, mode="differentiable", value_range=255)
    # float32 outputs: equal up to float32 rounding of the 0..255 values
    assert_nearly_equal(a, b, "value_range=255", identical=0.999, tol=256 * 2.0**-23 * 4)


def test_differentiable_table_gradients_from_the_reference():
    x = images(1, 3, 10, 12, seed=6, dtype=torch.float64)
    tables = torch.stack(
        [torch.from_numpy(ref.quant_table(40, c)).double() for c in ("luma", "chroma")]
    )
    tables = tables.to(DEVICE)
    for rounding in ("cubic", "ste"):
        ours = forward_backward(x, "triton", tables=tables, rounding=rounding)
        theirs = forward_backward(x, "torch", tables=tables, rounding=rounding)
        for a, b in zip(ours, theirs):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)
    # tables only: no image gradient is computed
    t = tables.clone().requires_grad_(True)
    y = jpeg.jpeg_simulate(x, mode="differentiable", tables=t, backend="triton")
    y.sum().backward()
    assert t.grad is not None and torch.isfinite(t.grad).all()


def test_differentiable_gradcheck():
    """torch.autograd.gradcheck of the Triton forward / backward pair (cubic rounding, float64,
    away from the jumps of the rounding)."""
    for c, s in [(1, "4:4:4"), (3, "4:2:0"), (3, "4:2:2")]:
        x = images(1, c, 3, 5, seed=c, dtype=torch.float64).requires_grad_(True)

        def f(t, s=s):
            return jpeg.jpeg_simulate(t, 30, s, mode="differentiable", backend="triton")

        assert torch.autograd.gradcheck(f, (x,), eps=1e-7, atol=1e-5, fast_mode=True)


# ----------------------------------------------------------------------------------------------
# The GPU formulation of the transforms, under the interpreter
# ----------------------------------------------------------------------------------------------


def test_compiled_formulation(monkeypatch):
    """Compiled, the kernels use rank-1 updates with compile-time ISLOW constants for the
    matrix products; the interpreter normally takes broadcast products (far fewer steps). Run
    the compiled formulation once per mode here."""
    import triton.language as tl

    kj = kernels()
    if not kj._INTERPRETED:
        pytest.skip("compiled kernels already use the rank-1 formulation")
    monkeypatch.setattr(kj, "_BROADCAST", tl.constexpr(False))
    x = images(2, 3, 9, 17, seed=9)
    for s in SUBSAMPLINGS:
        assert_equal(*both(x, quality=30, subsampling=s), f"exact {s}")
    assert_equal(*both(x[:, :1], quality=30), "exact L")
    xf = images(1, 3, 9, 17, seed=9, dtype=torch.float64)
    a, b = both(xf, quality=30, mode="float")
    assert_nearly_equal(a, b, "float", identical=0.9999)
    ours = forward_backward(xf, "triton", quality=30)
    theirs = forward_backward(xf, "torch", quality=30)
    torch.testing.assert_close(ours[0], theirs[0], rtol=0, atol=1e-10)
    torch.testing.assert_close(ours[1], theirs[1], rtol=0, atol=1e-9)


# ----------------------------------------------------------------------------------------------
# Building blocks and dispatch
# ----------------------------------------------------------------------------------------------


def test_islow_matrices_reproduce_the_reference_transforms():
    fwd, inv = kernels().islow_matrices()

    def descale(v, n):
        return (v + (1 << (n - 1))) >> n

    g = torch.Generator().manual_seed(0)
    blocks = torch.randint(-128, 128, (500, 8, 8), generator=g, dtype=torch.int64)
    blocks[:4] = torch.tensor([-128, 127]).repeat(4)[None, None, :8] * torch.tensor(
        [1, -1, 1, -1]
    ).view(4, 1, 1)
    p = descale(blocks @ fwd.T, 11)  # rows
    coef = descale(fwd @ p, 15)  # columns
    assert torch.equal(coef, ref.fdct_islow(blocks).to(torch.int64))
    deq = torch.randint(-2048, 2049, (500, 8, 8), generator=g, dtype=torch.int64)
    w = descale(inv @ deq, 11)  # columns
    rec = descale(w @ inv.T, 18)  # rows
    assert torch.equal(rec, ref.idct_islow(deq))


def test_reciprocal_quantization_equals_division():
    """floor((|c| + 4 q + 0.5) * fl32(1 / (8 q))) == (|c| + 4 q) // (8 q): every |c| < 2**15 for
    the 8-bit tables and a sample of the larger ones (the kernels' quantizer)."""
    g = np.random.default_rng(0)
    c = np.arange(1 << 15, dtype=np.int64)
    for q in [*range(1, 256), *g.integers(256, 8192, 64).tolist(), 8191]:
        num = c + 4 * q
        z = np.floor((num.astype(np.float32) + np.float32(0.5)) * np.float32(1.0 / (8 * q)))
        assert np.array_equal(z.astype(np.int64), num // (8 * q)), q


def test_dispatch():
    x = images(1, 3, 8, 8, seed=0)
    out = jpeg.jpeg_simulate(x, backend="triton")
    assert torch.equal(out, jpeg.jpeg_simulate(x, backend="torch"))
    with pytest.raises(BackendError, match="block_dct"):
        jpeg.block_dct(torch.zeros(8, 8, device=DEVICE), backend="triton")
    kj = kernels()
    assert set(kj.SIMULATE) == {"exact", "float", "differentiable"}
    t = torch.ones(1, 8, 8, dtype=torch.int64)
    with pytest.raises(ValueError, match="1..8191"):
        kj.simulate_exact(x, t * 9000)
    with pytest.raises(TypeError, match="dtype"):
        kj.simulate_exact(x.float(), t)
    with pytest.raises(ValueError, match="C in"):
        kj.simulate_float(torch.zeros(1, 2, 8, 8, device=DEVICE), t.double())
    with pytest.raises(ValueError, match="rounding"):
        kj.simulate_differentiable(x.double(), t.double(), rounding="nearest")


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("FASTPERC_GPU_COMPILE") != "1",
    reason="compiling for a GPU takes minutes: set FASTPERC_GPU_COMPILE=1",
)
def test_kernels_compile_for_a_gpu():
    """Every kernel variant compiles for sm_90 without a GPU (in a process without the
    interpreter), without spilling registers in the forward kernels."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
    code = "from fastperc.kernels import jpeg\nfor l in jpeg.compile_for_gpu():\n    print(l)"
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-4000:]
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("_")]
    assert len(lines) == 23, res.stdout
