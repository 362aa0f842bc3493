"""The C++ JPEG round trip (``csrc/jpeg_sim.cpp``) against the reference and against Pillow.

* exact mode: bit for bit equal to ``reference.jpeg.simulate_exact`` over awkward sizes, every
  quality of the issue's grid, the three subsamplings, greyscale, batches, dtypes, layouts,
  strides and custom tables, and to Pillow's encode + decode of real photographs;
* float and differentiable modes: within tight bounds of the reference (float: also within one
  level of Pillow);
* the reference's ``decode_exact`` of coefficients read from Pillow's files equals Pillow's
  decode of the same files, bit for bit;
* poisoned outputs, thread counts, and argument checks of the binding.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from fastperc import _ext, jpeg
from fastperc.jpeg_io import read_coefficients
from fastperc.reference import jpeg as ref

pytestmark = pytest.mark.skipif(not _ext.cpp_available(), reason="fastperc._C is not built")

QUALITIES = [1, 5, 10, 25, 50, 75, 90, 95, 100]
SUBSAMPLINGS = {"4:4:4": 0, "4:2:2": 1, "4:2:0": 2}  # ours -> Pillow's `subsampling`
SIZES = [(1, 1), (3, 5), (2, 17), (17, 31), (31, 17), (64, 64), (33, 65), (1000, 3), (3, 1000)]


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """The reference runs many small tensor ops per call: on a busy 2-core machine one intra-op
    thread is fastest. (The C++ kernel shares the OpenMP runtime; the thread tests set their
    own counts.)"""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def cpp():
    return _ext.cpp()


def tables_for(quality: int) -> torch.Tensor:
    return torch.from_numpy(
        np.stack([ref.quant_table(quality, "luma"), ref.quant_table(quality, "chroma")])
    )


def pillow_roundtrip(img: np.ndarray, quality: int, subsampling: str | None = None) -> np.ndarray:
    kw = {"quality": quality}
    if subsampling is not None and img.ndim == 3:
        kw["subsampling"] = SUBSAMPLINGS[subsampling]
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", **kw)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())))


def crop(img: np.ndarray, h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if img.shape[0] < h or img.shape[1] < w:  # tile small photos up to the size
        reps = (-(-h // img.shape[0]), -(-w // img.shape[1]), 1)
        img = np.tile(img, reps)
    y = int(rng.integers(0, img.shape[0] - h + 1))
    x = int(rng.integers(0, img.shape[1] - w + 1))
    return np.ascontiguousarray(img[y : y + h, x : x + w])


def identical(ours, theirs, label: str) -> str | None:
    """None when equal, else the fraction of identical pixels and the largest difference."""
    a = np.asarray(ours).astype(np.int64)
    b = np.asarray(theirs).astype(np.int64)
    assert a.shape == b.shape, f"{label}: shape {a.shape} vs {b.shape}"
    if np.array_equal(a, b):
        return None
    return f"{label}: {(a == b).mean():.6f} identical, max |diff| {np.abs(a - b).max()}"


def assert_all(failures: list[str | None]) -> None:
    bad = [f for f in failures if f is not None]
    assert not bad, "\n".join(bad)


@pytest.fixture(scope="module")
def batch(photos) -> dict[tuple[int, int], np.ndarray]:
    """Per size, a batch [3, H, W, 3]: two photo crops and uniform noise."""
    rng = np.random.default_rng(1)
    out = {}
    for k, (h, w) in enumerate(SIZES):
        imgs = [crop(photos["astronaut"], h, w, k), crop(photos["coffee"], h, w, k + 50)]
        imgs.append(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        out[(h, w)] = np.stack(imgs)
    return out


# ----------------------------------------------------------------------------------------------
# Exact mode: equal to the reference bit for bit
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("subsampling", list(SUBSAMPLINGS))
@pytest.mark.parametrize("quality", QUALITIES)
def test_exact_equals_reference_awkward_sizes(batch, quality, subsampling):
    tabs = tables_for(quality)
    failures = []
    for (h, w), imgs in batch.items():
        x = torch.from_numpy(imgs).permute(0, 3, 1, 2)  # NCHW view of the HWC batch
        expect = ref.simulate_exact(x, tabs, subsampling)
        ours = jpeg.jpeg_simulate(x, quality, subsampling, backend="cpp")
        failures.append(identical(ours, expect, f"{h}x{w} q={quality} {subsampling}"))
        grey = x[:, :1]  # one component: a greyscale JPEG
        expect = ref.simulate_exact(grey, tabs, subsampling)
        ours = jpeg.jpeg_simulate(grey, quality, subsampling, backend="cpp")
        failures.append(identical(ours, expect, f"grey {h}x{w} q={quality}"))
    assert_all(failures)


def test_exact_layouts_dtypes_and_strides(batch):
    imgs = batch[(33, 65)]
    tabs = tables_for(70)
    x = torch.from_numpy(imgs).permute(0, 3, 1, 2).contiguous()
    expect = ref.simulate_exact(x, tabs, "4:2:0")
    # numpy HWC: one image and the batch
    out = jpeg.jpeg_simulate(imgs[0], 70, backend="cpp")
    assert isinstance(out, np.ndarray) and out.shape == imgs[0].shape
    assert np.array_equal(out, expect[0].permute(1, 2, 0).numpy())
    out = jpeg.jpeg_simulate(imgs[None], 70, backend="cpp")
    assert out.shape == (1, *imgs.shape)
    assert np.array_equal(out[0], expect.permute(0, 2, 3, 1).numpy())
    # torch NCHW, channels_last, CHW
    assert torch.equal(jpeg.jpeg_simulate(x, 70, backend="cpp"), expect)
    cl = x.contiguous(memory_format=torch.channels_last)
    out = jpeg.jpeg_simulate(cl, 70, backend="cpp")
    assert out.is_contiguous(memory_format=torch.channels_last) and torch.equal(out, expect)
    assert torch.equal(jpeg.jpeg_simulate(x[1], 70, backend="cpp"), expect[1])
    # non-contiguous views: every other row and a column window of a larger tensor, a channel
    # permutation (negative-free but arbitrary strides), numpy views with steps and reversal
    big = torch.from_numpy(np.tile(imgs, (1, 2, 2, 1))).permute(0, 3, 1, 2)
    view = big[:, :, ::2, 3 : 3 + 65]
    expect_v = ref.simulate_exact(view, tabs, "4:2:0")
    assert torch.equal(jpeg.jpeg_simulate(view, 70, backend="cpp"), expect_v)
    bgr = x[:, [2, 1, 0]]
    assert torch.equal(
        jpeg.jpeg_simulate(bgr, 70, backend="cpp"), ref.simulate_exact(bgr, tabs, "4:2:0")
    )
    flipped = imgs[0][::-1, ::2]
    expect_f = ref.simulate_exact(
        torch.from_numpy(np.ascontiguousarray(flipped)).permute(2, 0, 1)[None], tabs, "4:2:0"
    )
    out = jpeg.jpeg_simulate(flipped, 70, backend="cpp")
    assert np.array_equal(out, expect_f[0].permute(1, 2, 0).numpy())
    # a read-only broadcast batch (zero stride)
    bc = np.broadcast_to(imgs[1], (4, *imgs[1].shape))
    out = jpeg.jpeg_simulate(bc, 70, backend="cpp")
    assert all(np.array_equal(o, expect[1].permute(1, 2, 0).numpy()) for o in out)
    # layout="hwc" on a torch tensor
    out = jpeg.jpeg_simulate(torch.from_numpy(imgs[2]), 70, layout="hwc", backend="cpp")
    assert torch.equal(out, expect[2].permute(1, 2, 0))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
@pytest.mark.parametrize("value_range", [1.0, 255.0])
def test_exact_float_inputs_match_the_reference_path(batch, dtype, value_range):
    """Float images go through the same rounding to 8 bits and back as the reference path."""
    imgs = batch[(17, 31)]
    x = torch.from_numpy(imgs).permute(0, 3, 1, 2).to(torch.float64) / 255 * value_range
    x = (x + 0.3 * torch.rand(x.shape, generator=torch.Generator().manual_seed(2))).to(dtype)
    kw = {"value_range": value_range}
    ours = jpeg.jpeg_simulate(x, 40, "4:2:2", backend="cpp", **kw)
    theirs = jpeg.jpeg_simulate(x, 40, "4:2:2", backend="torch", **kw)
    assert ours.dtype == dtype and torch.equal(ours, theirs)


def test_exact_custom_tables(batch):
    rng = np.random.default_rng(3)
    imgs = torch.from_numpy(batch[(31, 17)]).permute(0, 3, 1, 2)
    failures = []
    for k in (1, 2, 3):
        tabs = rng.integers(1, 8192, (k, 8, 8)) if k == 3 else rng.integers(1, 300, (k, 8, 8))
        for s in SUBSAMPLINGS:
            expect = ref.simulate_exact(imgs, torch.from_numpy(tabs), s)
            ours = jpeg.jpeg_simulate(imgs, subsampling=s, tables=tabs, backend="cpp")
            failures.append(identical(ours, expect, f"K={k} {s}"))
    # a single (8, 8) table for every component, as a float tensor of integers
    tab = torch.from_numpy(rng.integers(1, 60, (8, 8))).double()
    expect = ref.simulate_exact(imgs, tab[None].long(), "4:2:0")
    failures.append(identical(jpeg.jpeg_simulate(imgs, tables=tab, backend="cpp"), expect, "8x8"))
    assert_all(failures)


def test_exact_range_limiting_saturates():
    """A block whose q=1 reconstruction overshoots past the range-limit mask (see test_jpeg)."""
    block = np.array(
        [
            [254, 254, 245, 1, 1, 1, 1, 58],
            [254, 254, 254, 1, 1, 1, 1, 55],
            [80, 254, 254, 1, 1, 1, 1, 1],
            [1, 1, 254, 254, 254, 156, 254, 1],
            [1, 1, 51, 254, 254, 254, 254, 1],
            [1, 1, 1, 254, 254, 254, 254, 254],
            [1, 1, 1, 108, 254, 254, 254, 254],
            [1, 1, 63, 28, 1, 112, 254, 249],
        ],
        dtype=np.uint8,
    )
    x = torch.from_numpy(block)[None, None]
    expect = ref.simulate_exact(x, tables_for(1), "4:4:4", "clamp")
    assert torch.equal(jpeg.jpeg_simulate(x, 1, backend="cpp"), expect)
    assert int(expect[0, 0, 0, 0]) == 255


# ----------------------------------------------------------------------------------------------
# Exact mode: equal to Pillow on real photographs
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("subsampling", list(SUBSAMPLINGS))
def test_exact_equals_pillow_photos(photos, subsampling):
    failures = []
    for name, img in sorted(photos.items()):
        for q in QUALITIES:
            part = crop(img, 157, 203, q)  # odd sizes: partial blocks and MCUs on both edges
            ours = jpeg.jpeg_simulate(part, q, subsampling, backend="cpp")
            failures.append(
                identical(ours, pillow_roundtrip(part, q, subsampling), f"{name} q={q}")
            )
    # whole photos at Pillow's defaults for this subsampling
    for name, img in sorted(photos.items()):
        ours = jpeg.jpeg_simulate(img, 75, subsampling, backend="cpp")
        failures.append(identical(ours, pillow_roundtrip(img, 75, subsampling), f"{name} full"))
    assert_all(failures)


def test_exact_equals_pillow_greyscale(photos):
    failures = []
    for q in QUALITIES:
        g = np.asarray(Image.fromarray(crop(photos["chelsea"], 93, 141, q)).convert("L"))
        ours = jpeg.jpeg_simulate(g[..., None], q, backend="cpp")[..., 0]
        failures.append(identical(ours, pillow_roundtrip(g, q), f"L q={q}"))
    assert_all(failures)


# ----------------------------------------------------------------------------------------------
# The reference's decoder on coefficients read from Pillow's files equals Pillow's decoder
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("subsampling", [*SUBSAMPLINGS, "L"])
@pytest.mark.parametrize("quality", [5, 50, 90, 100])
def test_decode_exact_of_read_coefficients_equals_pillow(photos, quality, subsampling):
    img = crop(photos["coffee"], 61, 93, quality)
    kw = {"quality": quality}
    if subsampling == "L":
        img = np.asarray(Image.fromarray(img).convert("L"))
    else:
        kw["subsampling"] = SUBSAMPLINGS[subsampling]
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", **kw)
    data = buf.getvalue()
    theirs = np.asarray(Image.open(io.BytesIO(data)))
    rc = read_coefficients(data)
    coefs = [torch.from_numpy(c.astype(np.int64))[None] for c in rc.coefficients]
    tabs = torch.from_numpy(np.stack([t.astype(np.int64) for t in rc.quant_tables]))
    mode = "4:4:4" if subsampling == "L" else subsampling
    ours = ref.decode_exact(coefs, tabs, mode, rc.height, rc.width)[0].permute(1, 2, 0).numpy()
    if subsampling == "L":
        ours = ours[..., 0]
    assert np.array_equal(ours, theirs), identical(ours, theirs, f"{subsampling} q={quality}")
    # and the coefficients are those our encoder computes from the same pixels
    if subsampling != "L":
        x = torch.from_numpy(img).permute(2, 0, 1)[None]
        mine = ref.encode_exact(x, tables_for(quality), subsampling)
        for k, (c, m) in enumerate(zip(coefs, mine)):
            hb, wb = m.shape[1:3]
            assert torch.equal(c[:, :hb, :wb], m), f"component {k}"


# ----------------------------------------------------------------------------------------------
# Float and differentiable modes
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("subsampling", list(SUBSAMPLINGS))
def test_float_mode_matches_reference(photos, dtype, subsampling):
    """Same rounding points as the reference. The kernel converts colours in the work dtype,
    the reference in float64: where the exact value ties at a half (Y = 86.5 of 8-bit RGB),
    float32 may round the other way and the block's quantization tips (rare); float64 input
    agrees to the last bits."""
    for q in (5, 50, 95):
        imgs = np.stack([crop(p, 61, 93, q) for p in photos.values()])
        x = torch.from_numpy(imgs).permute(0, 3, 1, 2).to(dtype) / 255
        ours = jpeg.jpeg_simulate(x, q, subsampling, mode="float", backend="cpp")
        theirs = jpeg.jpeg_simulate(x, q, subsampling, mode="float", backend="torch")
        diff = ((ours - theirs).abs() * 255).double()
        if dtype == torch.float64:
            assert float(diff.max()) < 1e-9, q
        else:
            assert (diff <= 1e-3).double().mean() > 0.99, (q, float(diff.max()))
            assert (diff <= 1.01).double().mean() > 0.995, (q, float(diff.max()))
        # uint8 in and out: rounded the same way
        u8 = jpeg.jpeg_simulate(imgs, q, subsampling, mode="float", backend="cpp")
        ref8 = jpeg.jpeg_simulate(imgs, q, subsampling, mode="float", backend="torch")
        assert (u8 == ref8).mean() > 0.99, q


def test_float_mode_within_one_of_pillow(photos):
    bad = []
    for name, img in sorted(photos.items()):
        part = crop(img, 200, 256, 11)
        for s in SUBSAMPLINGS:
            for q in QUALITIES:
                ours = jpeg.jpeg_simulate(part, q, s, mode="float", backend="cpp").astype(int)
                within = (np.abs(ours - pillow_roundtrip(part, q, s)) <= 1).mean()
                if within < 0.99:
                    bad.append(f"{name} q={q} {s}: {within:.4f} within 1")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("subsampling", list(SUBSAMPLINGS))
def test_float_mode_packed_rows_equal_general_rows(batch, photos, subsampling):
    """Packed 8-bit RGB (uint8 [.., H, W, 3] with adjacent channels) takes the fused rows of the
    float mode, other layouts the general ones: the same operations, so the same bytes. Awkward
    sizes (widths below 16, between multiples of 16, two-wide chroma), noise, integer and
    non-integer tables, and through the binding a packed input with a planar output and the
    reverse (each side on its own)."""
    rng = np.random.default_rng(3)
    extra = {
        (h, w): np.stack([crop(photos["coffee"], h, w, h + w), crop(photos["chelsea"], h, w, w)])
        for h, w in [(16, 16), (9, 4), (18, 5), (7, 47), (40, 48), (21, 250)]
    }
    custom = rng.uniform(0.5, 30.0, (3, 8, 8))
    for (h, w), imgs in {**batch, **extra}.items():
        for tables in (None, custom):
            kw = {"tables": tables} if tables is not None else {}
            packed = jpeg.jpeg_simulate(imgs, 70, subsampling, mode="float", backend="cpp", **kw)
            planar_in = torch.from_numpy(imgs).permute(0, 3, 1, 2).contiguous()
            planar = jpeg.jpeg_simulate(
                planar_in, 70, subsampling, mode="float", backend="cpp", **kw
            )
            assert np.array_equal(packed, planar.permute(0, 2, 3, 1).numpy()), (h, w, tables)
        tabs = tables_for(70).double().numpy()
        args = ("u8", "float", "nearest", subsampling, tabs, 255.0)
        to_planar = np.full((imgs.shape[0], 3, h, w), 7, np.uint8)
        cpp().jpeg_simulate(imgs.transpose(0, 3, 1, 2), to_planar, *args)
        to_packed = np.full_like(imgs, 7)
        cpp().jpeg_simulate(planar_in.numpy(), to_packed.transpose(0, 3, 1, 2), *args)
        expect = jpeg.jpeg_simulate(imgs, 70, subsampling, mode="float", backend="cpp")
        assert np.array_equal(to_planar.transpose(0, 2, 3, 1), expect), (h, w)
        assert np.array_equal(to_packed, expect), (h, w)


@pytest.mark.parametrize("rounding", ["ste", "cubic"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_differentiable_forward_matches_reference(photos, rounding, dtype):
    """On images with random fractional parts (no exact rounding ties, where the reference's own
    float error decides) the forward values agree to float precision nearly everywhere."""
    g = torch.Generator().manual_seed(4)
    imgs = np.stack([crop(p, 45, 77, 3) for p in photos.values()])
    x = torch.from_numpy(imgs).permute(0, 3, 1, 2).double()
    x = ((x + torch.rand(x.shape, generator=g, dtype=torch.float64)) / 256).to(dtype)
    tol = 1e-3 if dtype == torch.float32 else 1e-9
    for s in SUBSAMPLINGS:
        for q in (10, 60, 97):
            kw = {"mode": "differentiable", "rounding": rounding}
            ours = jpeg.jpeg_simulate(x, q, s, backend="cpp", **kw)
            theirs = jpeg.jpeg_simulate(x, q, s, backend="torch", **kw)
            diff = ((ours - theirs).abs() * 255).double()
            assert (diff <= tol).double().mean() > 0.99, (s, q, float(diff.max()))
            assert float(diff.max()) < 2.0, (s, q)
    # greyscale and uint8 input (rounded output)
    grey = x[:, :1]
    ours = jpeg.jpeg_simulate(grey, 50, mode="differentiable", backend="cpp")
    theirs = jpeg.jpeg_simulate(grey, 50, mode="differentiable", backend="torch")
    assert ((ours - theirs).abs() * 255 <= tol).double().mean() > 0.99
    u8 = jpeg.jpeg_simulate(imgs, 50, mode="differentiable", rounding=rounding, backend="cpp")
    ref8 = jpeg.jpeg_simulate(imgs, 50, mode="differentiable", rounding=rounding, backend="torch")
    assert (u8 == ref8).mean() > 0.99 and np.abs(u8.astype(int) - ref8).max() <= 2


def test_differentiable_with_gradients_uses_the_reference():
    x = torch.rand(1, 3, 9, 11, dtype=torch.float64, requires_grad=True)
    out = jpeg.jpeg_simulate(x, 60, mode="differentiable", backend="cpp")
    assert out.requires_grad
    out.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    with torch.no_grad():  # no gradient wanted: the kernel
        fast = jpeg.jpeg_simulate(x, 60, mode="differentiable", backend="cpp")
    assert not fast.requires_grad and torch.allclose(fast, out.detach(), atol=1e-9)


def test_float_custom_tables_and_special_values():
    rng = np.random.default_rng(5)
    x = torch.from_numpy(rng.random((2, 3, 19, 23)))
    tabs = rng.uniform(0.5, 40.0, (3, 8, 8))  # not integers: the division path
    for mode in ("float", "differentiable"):
        ours = jpeg.jpeg_simulate(x, mode=mode, tables=tabs, backend="cpp")
        theirs = jpeg.jpeg_simulate(x, mode=mode, tables=tabs, backend="torch")
        assert ((ours - theirs).abs() * 255 <= 1e-6).double().mean() > 0.999, mode
    # out-of-range, infinite and NaN inputs never crash; finite results stay finite
    y = x.clone()
    y[0, 0, 0, :4] = torch.tensor([float("nan"), float("inf"), -float("inf"), 1e30])
    for mode in ("exact", "float", "differentiable"):
        out = jpeg.jpeg_simulate(y, mode=mode, backend="cpp")
        assert out.shape == y.shape
        if mode != "differentiable":
            assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1


# ----------------------------------------------------------------------------------------------
# Outputs fully written; threads
# ----------------------------------------------------------------------------------------------


def test_outputs_fully_written(poisoned, batch):
    imgs = batch[(17, 31)]
    x = torch.from_numpy(imgs).permute(0, 3, 1, 2)
    for s in SUBSAMPLINGS:
        expect = ref.simulate_exact(x, tables_for(80), s)
        assert torch.equal(jpeg.jpeg_simulate(x, 80, s, backend="cpp"), expect)
        cl = x.contiguous(memory_format=torch.channels_last)
        assert torch.equal(jpeg.jpeg_simulate(cl, 80, s, backend="cpp"), expect)
        out = jpeg.jpeg_simulate(imgs, 80, s, backend="cpp")
        assert np.array_equal(out, expect.permute(0, 2, 3, 1).numpy())
        grey = ref.simulate_exact(x[:, :1], tables_for(80), s)
        assert torch.equal(jpeg.jpeg_simulate(x[:, :1], 80, s, backend="cpp"), grey)
    f = x.double() / 255
    for mode in ("float", "differentiable"):
        ours = jpeg.jpeg_simulate(f, 80, mode=mode, backend="cpp")
        theirs = jpeg.jpeg_simulate(f, 80, mode=mode, backend="torch")
        assert torch.allclose(ours, theirs, atol=1e-3)
        ours = jpeg.jpeg_simulate(
            f.float().numpy().transpose(0, 2, 3, 1), 80, mode=mode, backend="cpp"
        )
        assert np.allclose(ours, theirs.permute(0, 2, 3, 1).numpy(), atol=2e-3)


@pytest.fixture
def threads():
    n = cpp().get_num_threads()
    yield cpp()
    cpp().set_num_threads(n)


def test_thread_counts_give_identical_results(threads, photos):
    assert threads.get_num_threads() >= 1
    one_image = np.ascontiguousarray(np.tile(photos["astronaut"], (1, 2, 1))[:509, :1003])
    many = np.stack([crop(photos["coffee"], 130, 70, k) for k in range(9)])
    results = {}
    for n in (1, 2, 3):
        threads.set_num_threads(n)
        assert threads.get_num_threads() == n
        results[n] = [
            jpeg.jpeg_simulate(one_image, 50, s, mode=m, backend="cpp")
            for s in SUBSAMPLINGS
            for m in ("exact", "float")
        ] + [jpeg.jpeg_simulate(many, 30, backend="cpp")]
    for n in (2, 3):
        for a, b in zip(results[1], results[n]):
            assert np.array_equal(a, b)
    threads.set_num_threads(1)
    assert np.array_equal(results[1][-1][4], jpeg.jpeg_simulate(many[4], 30, backend="cpp"))


def test_auto_backend_uses_cpp_on_cpu(monkeypatch):
    calls = []
    real = jpeg._SIMULATE_IMAGES["cpp"]
    monkeypatch.setitem(jpeg._SIMULATE_IMAGES, "cpp", lambda *a: calls.append(1) or real(*a))
    img = np.zeros((9, 9, 3), np.uint8)
    jpeg.jpeg_simulate(img)
    assert calls == [1]
    monkeypatch.setenv("FASTPERC_BACKEND", "cpp")
    jpeg.jpeg_simulate(img)
    assert calls == [1, 1]


# ----------------------------------------------------------------------------------------------
# The binding checks every argument
# ----------------------------------------------------------------------------------------------


def _args(**kw):
    x = np.zeros((1, 3, 8, 8), np.uint8)
    args = {
        "src": x,
        "dst": np.zeros_like(x),
        "dtype": "u8",
        "mode": "exact",
        "rounding": "nearest",
        "subsampling": "4:2:0",
        "tables": np.ones((2, 8, 8)),
        "value_range": 255.0,
    }
    args.update(kw)
    return args


@pytest.mark.parametrize(
    ("kw", "exc", "match"),
    [
        ({"dtype": "u16"}, ValueError, "`dtype`"),
        ({"dtype": 8}, TypeError, "`dtype`"),
        ({"dtype": "f32"}, TypeError, "`src`"),
        ({"mode": "fast"}, ValueError, "`mode`"),
        ({"mode": None}, TypeError, "`mode`"),
        ({"rounding": "ste"}, ValueError, "`rounding`"),
        ({"mode": "differentiable"}, ValueError, "`rounding`"),
        ({"subsampling": "4:1:1"}, ValueError, "`subsampling`"),
        ({"value_range": 1.0}, ValueError, "`value_range`"),
        ({"value_range": float("nan")}, ValueError, "`value_range`"),
        ({"value_range": "255"}, TypeError, "`value_range`"),
        ({"src": [[0]]}, TypeError, "`src`"),
        ({"src": np.zeros((3, 8, 8), np.uint8)}, ValueError, "`src`"),
        ({"src": np.zeros((1, 2, 8, 8), np.uint8)}, ValueError, "`src`"),
        ({"src": np.zeros((1, 3, 0, 8), np.uint8)}, ValueError, "`src`"),
        ({"dst": np.zeros((1, 3, 8, 9), np.uint8)}, ValueError, "`dst`"),
        ({"dst": np.zeros((1, 3, 8, 8), np.float32)}, TypeError, "`dst`"),
        ({"tables": np.ones((4, 8, 8))}, ValueError, "`tables`"),
        ({"tables": np.ones((8, 7))}, ValueError, "`tables`"),
        ({"tables": np.zeros((8, 8))}, ValueError, "`tables`"),
        ({"tables": np.full((8, 8), np.nan)}, ValueError, "`tables`"),
        ({"tables": np.full((8, 8), 1.5)}, ValueError, "`tables`"),
        ({"tables": np.full((8, 8), 8192)}, ValueError, "`tables`"),
        ({"tables": [[1] * 8] * 8}, TypeError, "`tables`"),
        ({"tables": np.ones((8, 8), bool)}, TypeError, "`tables`"),
        ({"tables": np.full((8, 8), "a")}, TypeError, "`tables`"),
    ],
)
def test_binding_argument_errors(kw, exc, match):
    with pytest.raises(exc, match=match):
        cpp().jpeg_simulate(**_args(**kw))


def test_binding_memory_errors_and_valid_extremes():
    x = np.zeros((1, 3, 8, 8), np.uint8)
    ro = np.zeros_like(x)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="`dst`"):
        cpp().jpeg_simulate(**_args(dst=ro))
    with pytest.raises(ValueError, match="overlap"):
        cpp().jpeg_simulate(**_args(src=x, dst=x))
    with pytest.raises(ValueError, match="`dst`"):  # self-overlapping output
        cpp().jpeg_simulate(**_args(dst=np.broadcast_to(np.zeros((1, 1, 1, 1), np.uint8), x.shape)))
    # accepted extremes: the largest exact table, tiny float tables, empty batch
    cpp().jpeg_simulate(**_args(tables=np.full((3, 8, 8), 8191)))
    f = np.random.default_rng(0).random((1, 3, 8, 8))
    out = np.empty_like(f)
    cpp().jpeg_simulate(
        **_args(
            src=f, dst=out, dtype="f64", mode="float", tables=np.full((8, 8), 1e-3), value_range=1.0
        )
    )
    assert np.isfinite(out).all()
    cpp().jpeg_simulate(
        **_args(src=np.zeros((0, 3, 8, 8), np.uint8), dst=np.zeros((0, 3, 8, 8), np.uint8))
    )
    for bad in (0, -1, 5000):
        with pytest.raises(ValueError, match="`n`"):
            cpp().set_num_threads(bad)
    with pytest.raises(TypeError, match="`n`"):
        cpp().set_num_threads("2")
