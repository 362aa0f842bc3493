"""fastperc.resize against its peers (Pillow "F" images, clean-fid, PyTorch's interpolate, the
legacy TF-Inception resize) and every fast backend against the reference.

Reference tolerances: <= 1e-4 on 0..255 data against Pillow and clean-fid (both round their
intermediate and result to float32; the spec is float64), float32 rounding against PyTorch.
Fast backends: the C++ kernel sums in float64 and rounds once, so its float32 results are
within half a float32 ulp of the reference; Triton rounds its intermediate to float32 as well.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import fastperc
from fastperc import BackendError
from fastperc.reference import resize as ref
from fastperc.resize import resize

from .conftest import fast_backends

PIL_FILTERS = {
    "pil_bicubic": Image.BICUBIC,
    "pil_bilinear": Image.BILINEAR,
    "pil_lanczos": Image.LANCZOS,
    "pil_hamming": Image.HAMMING,
    "pil_box": Image.BOX,
}
# (in_h, in_w) -> (out_h, out_w): down, up, odd, mixed, 1x1 both ways, unchanged axis
SIZE_PAIRS = [
    ((512, 512), (299, 299)),
    ((37, 53), (299, 299)),
    ((17, 31), (9, 40)),
    ((5, 7), (1, 1)),
    ((1, 1), (3, 5)),
    ((64, 48), (64, 17)),
    ((2, 301), (7, 3)),
]


def _pil_resize(x: np.ndarray, size: tuple[int, int], flt) -> np.ndarray:
    """Pillow on each channel of an HWC array as an "F" image (clean-fid's way), unclipped."""
    chans = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(x[..., k], np.float32), mode="F").resize(
                (size[1], size[0]), resample=flt
            )
        )
        for k in range(x.shape[-1])
    ]
    return np.stack(chans, axis=-1).astype(np.float64)


def _noise(h: int, w: int, c: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, c), dtype=np.uint8)


# ----------------------------------------------------------------------------------------------
# The reference against the peers
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", list(PIL_FILTERS))
@pytest.mark.parametrize(("src", "dst"), SIZE_PAIRS, ids=lambda s: "x".join(map(str, s)))
def test_reference_matches_pillow_float_images(method, src, dst):
    x = _noise(*src, c=2, seed=src[0] * 1000 + src[1]).astype(np.float64)
    x[0, 0, 0] = 0.0  # extremes in the data: overshoot past 0..255 at the edges of the filters
    x[-1, -1, -1] = 255.0
    expected = _pil_resize(x, dst, PIL_FILTERS[method])
    got = ref.resize(torch.from_numpy(x).permute(2, 0, 1)[None], dst, method, clip=False)
    got = got[0].permute(1, 2, 0).numpy()
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= 1e-4


@pytest.mark.parametrize("method", list(PIL_FILTERS))
def test_pil_methods_match_pillow_on_photos(photos, method):
    for name, img in photos.items():
        expected = _pil_resize(img, (299, 299), PIL_FILTERS[method]).clip(0, 255)
        for backend in ("torch", "cpp"):
            out = resize(img, 299, method, backend=backend)
            err = np.abs(out.astype(np.float64) - expected).max()
            assert err <= 1e-4, f"{name} {backend}: {err}"


def test_clean_fid_resizer(photos):
    """clean-fid's "clean" resize itself: make_resizer("PIL", False, "bicubic", (299, 299))."""
    from cleanfid.resize import make_resizer

    fn = make_resizer("PIL", False, "bicubic", (299, 299))
    crops = dict(photos)
    crops["odd"] = photos["chelsea"][:203, :301]
    crops["noise"] = _noise(512, 512)
    crops["upscale"] = photos["coffee"][:100, :150]
    for name, img in crops.items():
        expected = fn(img)
        for backend in ("cpp", "torch"):
            out = resize(img, 299, backend=backend)  # the default: pil_bicubic, clip
            assert out.dtype == np.float32 and out.shape == expected.shape
            err = np.abs(out.astype(np.float64) - expected).max()
            assert err <= 1e-4, f"{name} {backend}: {err}"


def test_clean_fid_resizer_non_square():
    """Pillow's size is (width, height); fastperc's (height, width)."""
    from cleanfid.resize import make_resizer

    img = _noise(90, 70, seed=3)
    expected = make_resizer("PIL", False, "bicubic", (41, 23))(img)  # width 41, height 23
    out = resize(img, (23, 41))
    assert out.shape == expected.shape == (23, 41, 3)
    assert np.abs(out - expected).max() <= 1e-4


@pytest.mark.parametrize(("src", "dst"), [*SIZE_PAIRS, ((299, 299), (299, 299))])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_bilinear_matches_interpolate(src, dst, dtype):
    x = torch.rand(2, 3, *src, generator=torch.Generator().manual_seed(7), dtype=dtype) * 255
    expected = F.interpolate(x, size=dst, mode="bilinear", align_corners=False)
    for backend in ("torch", "cpp"):
        got = resize(x, dst, "bilinear", value_range=255, backend=backend)
        atol = 1e-12 if dtype == torch.float64 else 6e-5  # PyTorch sums in float32
        torch.testing.assert_close(got, expected, rtol=0, atol=atol)


def test_bilinear_is_pytorch_fid_resize(photos):
    """pytorch-fid resizes [0, 1] float32 batches inside the network: the same numbers."""
    x = torch.from_numpy(photos["coffee"]).permute(2, 0, 1)[None].float() / 255
    expected = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
    torch.testing.assert_close(resize(x, 299, "bilinear"), expected, rtol=0, atol=1e-6)


def _legacy_tf_network_resize(x: torch.Tensor, size: int = 299) -> torch.Tensor:
    """The resize in clean-fid's legacy_tensorflow Inception (inception-2015-12-05.pt)."""
    batch, channels, height, width = x.shape
    x = x.to(torch.float32)
    theta = torch.eye(2, 3)
    theta[0, 2] += theta[0, 0] / width - theta[0, 0] / size
    theta[1, 2] += theta[1, 1] / height - theta[1, 1] / size
    theta = theta.unsqueeze(0).repeat([batch, 1, 1])
    grid = F.affine_grid(theta, [batch, channels, size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def test_legacy_tensorflow_matches_the_network(photos):
    for name, img in photos.items():
        x = torch.from_numpy(img).permute(2, 0, 1)[None]
        expected = _legacy_tf_network_resize(x)
        for backend in ("torch", "cpp"):
            got = resize(x, 299, "legacy_tensorflow", backend=backend)
            err = (got - expected).abs().max().item()
            assert err <= 1e-4, f"{name} {backend}: {err}"
    # TF1 semantics: source coordinate o * in / out, no half-pixel offset, border clamp
    t = ref.taps("legacy_tensorflow", 4, 2)
    np.testing.assert_allclose(t.dense(), [[1, 0, 0, 0], [0, 0, 1, 0]], atol=1e-7)


def test_tables_are_consistent():
    for method in ref.METHODS:
        for n, m in [(512, 299), (7, 20), (1, 4), (9, 1), (300, 300)]:
            t = ref.taps(method, n, m)
            assert t.start.shape == (m,) and t.weight.shape == (m, t.k)
            assert (t.start >= 0).all() and (t.start + t.k <= n).all()
            np.testing.assert_allclose(t.weight.sum(1), 1.0, atol=1e-6)
            tt = ref.transposed(t)
            np.testing.assert_array_equal(tt.dense(), t.dense().T)


# ----------------------------------------------------------------------------------------------
# Clipping, dtypes, containers
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["torch", *fast_backends()])
def test_clip_defaults_and_nan(backend):
    x = torch.zeros(1, 1, 8, 8)
    x[..., 4:] = 1.0  # a step: bicubic overshoots on both sides
    clipped = resize(x, (8, 19), backend=backend)
    free = resize(x, (8, 19), clip=False, backend=backend)
    assert clipped.min() == 0 and clipped.max() == 1
    assert free.min() < 0 and free.max() > 1
    torch.testing.assert_close(clipped, free.clamp(0, 1))
    lin = resize(x, (8, 19), "bilinear", backend=backend)  # no clip by default, none needed
    assert lin.min() >= 0 and lin.max() <= 1
    x = torch.rand(1, 1, 32, 32)
    x[0, 0, 3, 3] = float("nan")  # reaches only the outputs that read it
    out = resize(x, (16, 16), backend=backend)
    assert out[0, 0, :2, :2].isnan().all() and not out[0, 0, 8:, 8:].isnan().any()


def test_value_range_and_output_dtypes(photo):
    u8 = resize(photo, 64)
    assert u8.dtype == np.float32 and u8.max() > 1.5  # 0..255 scale
    f = resize(photo.astype(np.float32) / 255, 64)
    np.testing.assert_allclose(f * 255, u8, atol=2e-4)
    f255 = resize(photo.astype(np.float64), 64, value_range=255)
    assert f255.dtype == np.float64
    np.testing.assert_allclose(f255, u8, atol=2e-5)
    half = resize(torch.from_numpy(photo).permute(2, 0, 1).half() / 255, 64)
    assert half.dtype == torch.float32 and half.shape == (3, 64, 64)


def test_callable_module_and_layouts(photo):
    assert fastperc.resize(photo, 33) is not None
    a = fastperc.resize(photo, (20, 30))
    b = fastperc.resize.resize(photo, (20, 30))
    np.testing.assert_array_equal(a, b)
    assert a.shape == (20, 30, 3)
    t = torch.from_numpy(photo).permute(2, 0, 1)
    np.testing.assert_array_equal(resize(t, (20, 30)).permute(1, 2, 0).numpy(), a)
    batch = np.stack([photo, photo[::-1]])
    out = resize(batch, (20, 30))
    assert out.shape == (2, 20, 30, 3)
    np.testing.assert_array_equal(out[0], a)
    cl = resize(t[None].contiguous(memory_format=torch.channels_last), (20, 30))
    assert cl.is_contiguous(memory_format=torch.channels_last)
    gray = resize(photo[..., :1], 20)
    assert gray.shape == (20, 20, 1)


# ----------------------------------------------------------------------------------------------
# Fast backends against the reference
# ----------------------------------------------------------------------------------------------

DTYPES = [torch.uint8, torch.float16, torch.bfloat16, torch.float32, torch.float64]
LAYOUTS = ["nchw", "nhwc_numpy", "channels_last", "strided"]


def _layout(x: torch.Tensor, layout: str):
    """Present an NCHW tensor in a layout; return (input, to_nchw of an output)."""
    if layout == "nchw":
        return x, lambda o: o
    if layout == "nhwc_numpy" and x.dtype != torch.bfloat16:
        return x.permute(0, 2, 3, 1).numpy(), lambda o: torch.from_numpy(o).permute(0, 3, 1, 2)
    if layout in ("channels_last", "nhwc_numpy"):
        return x.contiguous(memory_format=torch.channels_last), lambda o: o
    big = torch.zeros((x.shape[0], x.shape[1], 2 * x.shape[2] + 1, 3 * x.shape[3]), dtype=x.dtype)
    big[:, :, 1::2, ::3] = x
    return big[:, :, 1::2, ::3], lambda o: o


def _random(shape, dtype, gen):
    if dtype == torch.uint8:
        return torch.randint(0, 256, shape, generator=gen, dtype=torch.uint8)
    return torch.rand(shape, generator=gen, dtype=torch.float64).to(dtype)


def _cases(backend: str):
    methods = list(ref.METHODS)
    shapes = [((1, 3, 1, 1), (3, 2)), ((2, 3, 17, 31), (9, 40)), ((1, 4, 40, 33), (13, 13)),
              ((3, 1, 5, 64), (7, 21)), ((1, 3, 64, 64), (29, 70))]  # fmt: skip
    i = 0
    for dtype in DTYPES:
        for layout in LAYOUTS:
            for shape, size in shapes if backend == "cpp" else shapes[:3]:
                i += 1
                if backend == "triton" and i % 3:
                    continue
                yield methods[i % len(methods)], dtype, layout, shape, size


@pytest.mark.parametrize("backend", fast_backends())
def test_fast_backends_match_reference(backend, poisoned):
    gen = torch.Generator().manual_seed(99)
    for method, dtype, layout, shape, size in _cases(backend):
        x = _random(shape, dtype, gen)
        inp, to_nchw = _layout(x, layout)
        for clip in (None, False):
            out = resize(inp, size, method, clip=clip, backend=backend)
            got = to_nchw(out)
            want_clip = ref.DEFAULT_CLIP[method] if clip is None else clip
            hi = 255.0 if dtype == torch.uint8 else 1.0
            expected = ref.resize(x, size, method, clip=want_clip, high=hi)
            what = f"{backend} {method} {dtype} {layout} {shape}->{size} clip={clip}"
            out_dtype = torch.float64 if dtype == torch.float64 else torch.float32
            assert got.dtype == out_dtype, what
            assert tuple(got.shape) == (shape[0], shape[1], *size), what
            scale = max(1.0, float(expected.abs().max()))
            rel = 1e-12 if dtype == torch.float64 else (1.2e-7 if backend == "cpp" else 4e-7)
            torch.testing.assert_close(
                got.double(), expected, rtol=0, atol=rel * scale, msg=lambda m, w=what: f"{w}: {m}"
            )


@pytest.mark.parametrize("backend", fast_backends())
def test_fast_backends_on_a_photo_batch(backend, photos):
    img = (
        photos["astronaut"][100:300, 150:310] if backend == "cpp" else photos["astronaut"][:48, :40]
    )
    batch = np.stack([img, img[::-1], img[:, ::-1]])
    expected = resize(batch, (23, 17), backend="torch")
    np.testing.assert_allclose(resize(batch, (23, 17), backend=backend), expected, atol=1e-4)


def test_cpp_threads_agree(photos):
    img = np.stack([photos["astronaut"]] * 4)
    a = resize(img, 299, backend="cpp")
    prev = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        b = resize(img, 299, backend="cpp")
    finally:
        torch.set_num_threads(prev)
    np.testing.assert_array_equal(a, b)


def _generic_layout(x: np.ndarray) -> np.ndarray:
    """The same uint8 NHWC pixels in memory whose rows the C++ kernel's AVX-512 path does not
    take (pixel stride C + 1): they go through the portable kernel."""
    wide = np.zeros((*x.shape[:-1], x.shape[-1] + 1), np.uint8)
    wide[..., :-1] = x
    return wide[..., :-1]


# (in_h, in_w) -> (out_h, out_w): full and partial tiles of 8 rows / 8 pixels, odd widths,
# upscaling (consecutive outputs sharing their first tap), strong downscaling (many taps),
# single rows and columns, partial strips of 64 samples
FAST_PATH_SIZES = [
    ((512, 512), (299, 299)),
    ((37, 53), (70, 61)),
    ((64, 48), (17, 9)),
    ((300, 200), (11, 7)),
    ((9, 130), (1, 3)),
    ((1, 1), (5, 9)),
    ((23, 22), (23, 22)),
]


@pytest.mark.parametrize("method", ref.METHODS)
def test_cpp_uint8_paths_agree_bitwise(method):
    """uint8 packed-RGB / planar rows take the AVX-512 path on CPUs that have it, other
    layouts the portable kernel: the same operations in the same order, the same bits."""
    rng = np.random.default_rng(5)
    for (h, w), size in FAST_PATH_SIZES:
        for c in (3, 1, 4):
            x = rng.integers(0, 256, (2, h, w, c), dtype=np.uint8)
            for clip in (None, False):
                want = resize(_generic_layout(x), size, method, clip=clip, backend="cpp")
                hwc = resize(x, size, method, clip=clip, backend="cpp")
                np.testing.assert_array_equal(hwc, want, err_msg=f"{h}x{w}x{c}->{size}")
                t = torch.from_numpy(x).permute(0, 3, 1, 2)
                for chw in (t.contiguous(), t.contiguous(memory_format=torch.channels_last)):
                    got = resize(chw, size, method, clip=clip, backend="cpp")
                    np.testing.assert_array_equal(got.permute(0, 2, 3, 1).numpy(), want)


def test_cpp_uint8_paths_agree_on_photos(photos):
    for name, img in photos.items():
        flipped = img[::-1]  # negative row stride
        for x in (img, flipped, img[1:, 3:]):
            want = resize(_generic_layout(x), 299, backend="cpp")
            np.testing.assert_array_equal(resize(x, 299, backend="cpp"), want, err_msg=name)


def test_cpp_scratch_reuse_and_threads(photos):
    """The C++ scratch buffer is kept per calling thread between calls: growing, shrinking and
    concurrent calls (the GIL is released) give what a lone call gives."""
    from concurrent.futures import ThreadPoolExecutor

    img = photos["astronaut"]
    jobs = [(img, 299), (img[:40, :50], (7, 90)), (img, 64), (img[:5, :5], 1), (img, (300, 17))]
    want = [resize(x, s, backend="cpp") for x, s in jobs]
    again = [resize(x, s, backend="cpp") for x, s in reversed(jobs)][::-1]
    for a, b in zip(want, again):
        np.testing.assert_array_equal(a, b)
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda j: resize(j[0], j[1], backend="cpp"), jobs * 4))
    for i, g in enumerate(got):
        np.testing.assert_array_equal(g, want[i % len(jobs)])


def test_numpy_uint8_shortcut_matches_general_path(monkeypatch, photo):
    """uint8 numpy images skip the torch round trip on the C++ backend: same results, same
    container, and the general path (its checks, the other backends) everywhere else."""
    import fastperc.resize as mod

    cases = [photo, np.stack([photo, photo[::-1]]), photo[::2, ::3], photo[..., :1]]
    fast = [resize(x, (31, 45), "pil_lanczos", backend=b) for x in cases for b in ("cpp", "auto")]
    monkeypatch.setattr(mod, "_numpy_u8_to_cpp", lambda *a: False)
    slow = [resize(x, (31, 45), "pil_lanczos", backend=b) for x in cases for b in ("cpp", "auto")]
    for a, b in zip(fast, slow):
        assert type(a) is np.ndarray and a.dtype == b.dtype == np.float32
        assert a.shape == b.shape and a.flags.writeable
        np.testing.assert_array_equal(a, b)
    monkeypatch.undo()
    assert not mod._numpy_u8_to_cpp(photo, "auto", None, "torch")
    assert not mod._numpy_u8_to_cpp(photo, "chw", None, "cpp")
    assert not mod._numpy_u8_to_cpp(photo, "auto", 255, "cpp")
    assert not mod._numpy_u8_to_cpp(photo.astype(np.float32), "auto", None, "cpp")
    assert not mod._numpy_u8_to_cpp(photo[:0], "auto", None, "cpp")
    monkeypatch.setenv("FASTPERC_BACKEND", "torch")
    assert not mod._numpy_u8_to_cpp(photo, "auto", None, "auto")
    assert mod._numpy_u8_to_cpp(photo, "auto", None, "cpp")
    with pytest.raises(ValueError, match="`images`"):
        resize(photo[:0], 4)


# ----------------------------------------------------------------------------------------------
# Gradients
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["pil_bicubic", "pil_lanczos", "bilinear", "legacy_tensorflow"])
def test_reference_gradcheck(method):
    x = torch.rand(2, 2, 6, 7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda v: resize(v, (4, 9), method, clip=False, backend="torch"), (x,)
    )
    # "auto" picks the differentiable reference for inputs that require grad
    y = resize(x, (4, 9), method)
    assert y.requires_grad


@pytest.mark.triton
@pytest.mark.parametrize("backend", [p for p in fast_backends() if p.id == "triton"])
def test_triton_backward(backend):
    from fastperc.kernels import resize as kern

    x = torch.rand(1, 1, 4, 5, dtype=torch.float64, requires_grad=True)
    ty = ref.taps("pil_bicubic", 4, 3, False)
    tx = ref.taps("pil_bicubic", 5, 7, False)
    assert torch.autograd.gradcheck(lambda v: kern.resize_differentiable(v, ty, tx), (x,))
    # through the public function, clipped, against the reference's gradient
    g = torch.rand(1, 2, 4, 9, dtype=torch.float64)
    x2 = (torch.rand(1, 2, 6, 7, dtype=torch.float64) * 1.2 - 0.1).requires_grad_(True)
    (resize(x2, (4, 9), backend=backend) * g).sum().backward()
    gt = x2.grad.clone()
    x2.grad = None
    (resize(x2, (4, 9), backend="torch") * g).sum().backward()
    torch.testing.assert_close(gt, x2.grad, rtol=0, atol=1e-12)
    x32 = torch.rand(1, 1, 5, 5, requires_grad=True)
    resize(x32, 3, backend=backend).sum().backward()
    assert x32.grad is not None and x32.grad.dtype == torch.float32


def test_cpp_refuses_gradients():
    x = torch.rand(1, 3, 8, 8, requires_grad=True)
    with pytest.raises(BackendError, match="gradients"):
        resize(x, 4, backend="cpp")
    with torch.no_grad():
        assert resize(x, 4, backend="cpp").shape == (1, 3, 4, 4)


# ----------------------------------------------------------------------------------------------
# Errors
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, -3, 2.5, "299", (3,), (3, 4, 5), (0, 4), True, None, (2, 3.0)])
def test_bad_size(size):
    with pytest.raises(ValueError, match="`size`"):
        resize(np.zeros((4, 4, 3), np.uint8), size)


def test_bad_arguments():
    img = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(ValueError, match="`method`"):
        resize(img, 2, "bicubic")
    with pytest.raises(ValueError, match="`method`"):
        resize(img, 2, None)
    with pytest.raises(TypeError, match="`clip`"):
        resize(img, 2, clip=1)
    with pytest.raises(ValueError, match="`value_range`"):
        resize(img, 2, value_range=1.0)
    with pytest.raises(ValueError, match="`layout`"):
        resize(img, 2, layout="nchw")
    with pytest.raises(TypeError, match="`images`"):
        resize([[1, 2]], 2)
    with pytest.raises(TypeError, match="`images`"):
        resize(np.zeros((4, 4, 3), np.int32), 2)
    with pytest.raises(ValueError, match="`images`"):
        resize(np.zeros((4, 4), np.uint8), 2)
    with pytest.raises(ValueError, match="`backend`"):
        resize(img, 2, backend="cuda")


def test_cpp_binding_checks_its_arguments():
    from fastperc import _ext

    if not _ext.cpp_available():
        pytest.skip("C++ extension not built")
    C = _ext.cpp()
    src = np.zeros((1, 1, 8, 8), np.uint8)
    dst = np.zeros((1, 1, 4, 4), np.float32)
    t = ref.taps("pil_bicubic", 8, 4)
    good = (t.start, t.weight, t.start, t.weight, True, 0.0, 255.0, "u8")
    C.resize(src, dst, *good)
    bad_start = t.start.copy()
    bad_start[1] = 8
    with pytest.raises(ValueError, match="`y_start`"):
        C.resize(src, dst, bad_start, t.weight, t.start, t.weight, True, 0.0, 255.0, "u8")
    with pytest.raises(TypeError, match="`x_start`"):
        C.resize(
            src, dst, t.start, t.weight, t.start.astype(np.int32), t.weight, True, 0.0, 1.0, "u8"
        )
    with pytest.raises(ValueError, match="`x_weight`"):
        C.resize(src, dst, t.start, t.weight, t.start, t.weight[:, :0], True, 0.0, 1.0, "u8")
    with pytest.raises(TypeError, match="`dst`"):
        C.resize(src, dst.astype(np.float64), *good)
    with pytest.raises(ValueError, match="`dst`"):
        C.resize(src, np.zeros((1, 2, 4, 4), np.float32), *good)
    with pytest.raises(ValueError, match="`y_start`"):
        C.resize(src, np.zeros((1, 1, 5, 4), np.float32), *good)
    with pytest.raises(ValueError, match="`lo`"):
        C.resize(src, dst, t.start, t.weight, t.start, t.weight, True, 1.0, 0.0, "u8")
    with pytest.raises(TypeError, match="`clip`"):
        C.resize(src, dst, t.start, t.weight, t.start, t.weight, 1, 0.0, 1.0, "u8")
    nan_w = t.weight.copy()
    nan_w[0, 0] = np.nan
    with pytest.raises(ValueError, match="`y_weight`"):
        C.resize(src, dst, t.start, nan_w, t.start, t.weight, True, 0.0, 1.0, "u8")
