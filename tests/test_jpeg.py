"""fastperc.jpeg against libjpeg-turbo (through Pillow) and against the mathematics.

The exact mode must equal Pillow's decode of Pillow's encode bit for bit; failure messages give
the fraction of identical pixels of every failing case.
"""

from __future__ import annotations

import importlib.util
import io
import math

import numpy as np
import pytest
import torch
from PIL import Image

from fastperc import BackendError, jpeg
from fastperc.reference import jpeg as ref

QUALITIES = [1, 5, 10, 25, 50, 75, 90, 95, 100]
SUBSAMPLINGS = {"4:4:4": 0, "4:2:2": 1, "4:2:0": 2}  # ours -> Pillow's `subsampling`
ODD_SIZES = [(1, 1), (2, 3), (5, 4), (9, 17), (17, 9), (37, 53)]
GRID_SIZE = (61, 93)  # neither a multiple of 8 nor of 16


# ----------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------


def pillow_roundtrip(
    img: np.ndarray, quality: int | None = None, subsampling: str | None = None, **kw
) -> np.ndarray:
    """Pillow's encode (to memory) and decode of an HWC RGB or HW greyscale uint8 image."""
    if quality is not None:
        kw["quality"] = quality
    if subsampling is not None and img.ndim == 3:
        kw["subsampling"] = SUBSAMPLINGS[subsampling]
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", **kw)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())))


def compare(ours: np.ndarray, theirs: np.ndarray, label: str) -> str | None:
    """None when identical, else a line with the fraction of identical pixels."""
    ours = np.asarray(ours).astype(np.int64)
    theirs = np.asarray(theirs).astype(np.int64)
    assert ours.shape == theirs.shape, f"{label}: shape {ours.shape} vs {theirs.shape}"
    if np.array_equal(ours, theirs):
        return None
    same = (ours == theirs).all(axis=-1) if ours.ndim == 3 else ours == theirs
    diff = np.abs(ours - theirs)
    return (
        f"{label}: {same.mean():.6f} of pixels identical, {(diff <= 1).mean():.6f} of values within 1, "
        f"max |diff| {diff.max()}"
    )


def assert_all_identical(failures: list[str | None]) -> None:
    bad = [f for f in failures if f is not None]
    assert not bad, "exact mode differs from Pillow:\n" + "\n".join(bad)


def crop(img: np.ndarray, h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y = int(rng.integers(0, img.shape[0] - h + 1))
    x = int(rng.integers(0, img.shape[1] - w + 1))
    return np.ascontiguousarray(img[y : y + h, x : x + w])


def noise(h: int, w: int, c: int | None = 3, seed: int = 0) -> np.ndarray:
    shape = (h, w) if c is None else (h, w, c)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def grey(img: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(img).convert("L"))


@pytest.fixture(scope="module", autouse=True)
def _single_thread():
    """The reference runs hundreds of small tensor ops per call; with two intra-op threads on a
    busy 2-core machine the hand-offs cost several times the work, so this module runs on one."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def grid_images(photos) -> dict[str, np.ndarray]:
    """Crops of the photos and noise, all GRID_SIZE, as one batch."""
    h, w = GRID_SIZE
    out = {n: crop(p, h, w, seed=i) for i, (n, p) in enumerate(sorted(photos.items()))}
    out["noise"] = noise(h, w)
    return out


# ----------------------------------------------------------------------------------------------
# Quantization tables and zigzag order
# ----------------------------------------------------------------------------------------------

ANNEX_K_LUMA = [
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
]  # fmt: skip
ANNEX_K_CHROMA = (
    [17, 18, 24, 47] + [99] * 4 + [18, 21, 26, 66] + [99] * 4
    + [24, 26, 56] + [99] * 5 + [47, 66] + [99] * 6 + [99] * 32
)  # fmt: skip


def libjpeg_table(base: list[int], quality: int, force_baseline: bool) -> list[int]:
    """A direct transcription of jcparam.c: jpeg_quality_scaling, then jpeg_add_quant_table."""
    quality = min(max(quality, 1), 100)
    scale = 5000 // quality if quality < 50 else 200 - quality * 2
    out = []
    for b in base:
        temp = (b * scale + 50) // 100
        if temp <= 0:
            temp = 1
        if temp > 32767:
            temp = 32767
        if force_baseline and temp > 255:
            temp = 255
        out.append(temp)
    return out


@pytest.mark.parametrize("force_baseline", [True, False])
def test_quant_tables_equal_libjpeg_formula_for_every_quality(force_baseline):
    for q in range(1, 101):
        for comp, base in (("luma", ANNEX_K_LUMA), ("chroma", ANNEX_K_CHROMA)):
            ours = jpeg.quant_table(q, comp, force_baseline=force_baseline)
            assert ours.dtype == torch.int32 and ours.shape == (8, 8)
            assert ours.flatten().tolist() == libjpeg_table(base, q, force_baseline), (q, comp)
            scaled = jpeg.scale_table(torch.tensor(base).view(8, 8), q, force_baseline)
            assert torch.equal(scaled, ours)


def test_quant_tables_equal_those_pillow_writes():
    img = noise(8, 8)
    for q in range(1, 101):
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, "JPEG", quality=q)
        tables = Image.open(buf).quantization
        assert list(tables[0]) == jpeg.quant_table(q, "luma").flatten().tolist(), q
        assert list(tables[1]) == jpeg.quant_table(q, "chroma").flatten().tolist(), q


def test_scale_table_types_and_shapes():
    base = np.arange(1, 65, dtype=np.int64)
    out = jpeg.scale_table(base, 10)
    assert isinstance(out, np.ndarray) and out.shape == (64,) and out.dtype == np.int32
    assert out.tolist() == libjpeg_table(base.tolist(), 10, True)
    stacked = jpeg.scale_table(torch.ones(2, 8, 8, dtype=torch.int64) * 200, 1, False)
    assert isinstance(stacked, torch.Tensor) and stacked.shape == (2, 8, 8)
    assert int(stacked.max()) == 10000
    assert jpeg.scale_table([[100] * 8] * 8, 100).unique().tolist() == [1]


#: jutils.c's jpeg_natural_order: natural index of the k-th zigzag coefficient.
NATURAL_ORDER = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5,
    12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
    35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
    58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
]  # fmt: skip


def test_zigzag_order_and_round_trip():
    assert jpeg.ZIGZAG.tolist() == NATURAL_ORDER
    natural = torch.arange(64).view(8, 8)
    assert jpeg.zigzag(natural).tolist() == NATURAL_ORDER
    x = torch.randn(3, 2, 8, 8)
    z = jpeg.zigzag(x)
    assert z.shape == (3, 2, 64)
    assert torch.equal(jpeg.unzigzag(z), x)
    xn = np.random.default_rng(0).integers(-50, 50, (4, 8, 8))
    xn.flags.writeable = False  # read-only arrays are fine (nothing writes to inputs)
    zn = jpeg.zigzag(xn)
    assert isinstance(zn, np.ndarray) and np.array_equal(jpeg.unzigzag(zn), xn)
    # Pillow stores a DQT in zigzag order and returns it in natural order
    assert (
        jpeg.unzigzag(jpeg.zigzag(jpeg.quant_table(50))).tolist() == jpeg.quant_table(50).tolist()
    )


# ----------------------------------------------------------------------------------------------
# DCTs
# ----------------------------------------------------------------------------------------------


def test_dct_matrix_orthonormal_and_block_dct_is_dct_ii():
    d = ref.dct_matrix()
    assert torch.allclose(d @ d.T, torch.eye(8, dtype=torch.float64), atol=1e-14)
    x = torch.rand(3, 16, 24, dtype=torch.float64)
    c = jpeg.block_dct(x)
    assert c.shape == (3, 2, 3, 8, 8)
    # Parseval: the orthonormal transform keeps the energy of every block
    assert torch.allclose((c**2).sum(), (x**2).sum())
    # against the definition of the 2-D DCT-II, block (1, 2) of image 0
    blk = x[0, 8:16, 16:24]
    n = torch.arange(8, dtype=torch.float64)
    a = torch.full((8,), 0.5, dtype=torch.float64)
    a[0] = math.sqrt(1 / 8)
    basis = a[:, None] * torch.cos((2 * n[None, :] + 1) * n[:, None] * math.pi / 16)  # [u, x]
    direct = torch.einsum("vy,ux,yx->vu", basis, basis, blk)
    assert torch.allclose(c[0, 1, 2], direct, atol=1e-12)
    scipy_fft = pytest.importorskip("scipy.fft")
    np.testing.assert_allclose(
        c[0, 1, 2].numpy(), scipy_fft.dctn(blk.numpy(), norm="ortho"), atol=1e-12
    )


@pytest.mark.parametrize(("dtype", "atol"), [(torch.float32, 1e-4), (torch.float64, 1e-11)])
def test_block_dct_idct_identity_any_size(dtype, atol):
    for h, w in [(1, 1), (8, 8), (13, 21), (37, 53)]:
        x = torch.rand(2, 3, h, w, dtype=dtype) * 255
        c = jpeg.block_dct(x)
        assert c.dtype == dtype and c.shape == (2, 3, -(-h // 8), -(-w // 8), 8, 8)
        back = jpeg.block_idct(c, size=(h, w))
        assert torch.allclose(back, x, atol=atol * 255)
        # the padding is edge replication to whole blocks
        full = jpeg.block_idct(c)
        assert torch.allclose(
            full, ref.pad_replicate(x, full.shape[-2], full.shape[-1]), atol=atol * 255
        )


def test_block_dct_numpy_and_integer_input():
    x = np.random.default_rng(1).integers(0, 256, (9, 10), dtype=np.uint8)[::-1]
    x.flags.writeable = False
    c = jpeg.block_dct(x)
    assert isinstance(c, np.ndarray) and c.dtype == np.float32 and c.shape == (2, 2, 8, 8)
    back = jpeg.block_idct(c, size=(9, 10))
    np.testing.assert_allclose(back, x, atol=1e-3)


def test_islow_transforms_against_float():
    rng = np.random.default_rng(2)
    blocks = torch.from_numpy(rng.integers(-128, 128, (4000, 8, 8)))
    c8 = ref.fdct_islow(blocks)
    float8 = 8 * ref.dct2(blocks.double())
    assert (c8.double() - float8).abs().max() <= 2.0
    # the float mode's transform, with libjpeg's rounding points, is mostly equal (uniform noise
    # blocks: 93% of coefficients; photos: more)
    diff = (ref.fdct_float(blocks.double()) - c8.double()).abs()
    assert diff.max() <= 2 and (diff > 1).double().mean() < 1e-4
    assert (diff == 0).double().mean() > 0.9
    # inverse: reconstruct from unquantized coefficients (the DC and AC of c8 / 8)
    deq = ref.round_half_away(c8.double() / 8).to(torch.int64)
    rec = ref.idct_islow(deq)
    assert (rec - blocks).abs().max() <= 2
    diff = (ref.idct_float(deq.double()) - rec.double()).abs()
    assert diff.max() <= 1 and (diff == 0).double().mean() > 0.98


def test_range_limit_matches_jdmaster_table():
    """jdmaster.c's prepare_range_limit_table, transcribed: the C IDCT indexes it with
    ``x & RANGE_MASK`` at an offset of CENTERJSAMPLE past the sample_range_limit pointer."""
    table = np.zeros(5 * 256 + 128, dtype=np.int64)
    base = 256  # sample_range_limit points here; table[base - 256 : base] stays 0
    table[base : base + 256] = np.arange(256)
    post = base + 128  # IDCT_range_limit
    table[post + 128 : post + 512] = 255
    table[post + 512 : post + 1024 - 128] = 0
    table[post + 1024 - 128 : post + 1024] = np.arange(128)
    x = torch.arange(-3000, 3000)
    expected = table[post + (x.numpy() & 1023)]
    assert np.array_equal(ref.range_limit(x, "mask").numpy(), expected)
    inside = (x >= -512) & (x < 512)
    assert torch.equal(ref.range_limit(x, "clamp")[inside], ref.range_limit(x, "mask")[inside])
    assert torch.equal(ref.range_limit(x, "clamp"), (x + 128).clamp(0, 255).to(torch.uint8))


def test_reciprocal_quantization_equals_rounded_division():
    """libjpeg-turbo multiplies by a reciprocal; it must equal division rounded half away from
    zero for every 16-bit coefficient and every divisor 8 * q it can meet."""
    x = torch.arange(-32767, 32768)[None, :]
    qs = torch.tensor([*range(1, 256), 511, 1000, 4095, 4096, 8191])
    for group in qs.split(40):
        d = (group << 3)[:, None]
        recip = ref.quantize_reciprocal(x, d)
        div = ref.divide_round(x, d)
        assert torch.equal(recip, div), group.tolist()
    assert ref.divide_round(torch.tensor([12, -12, 11, -11, 4]), torch.tensor(8)).tolist() == [
        2, -2, 1, -1, 1
    ]  # fmt: skip


def test_quantize_roundings_and_dequantize():
    table = torch.full((8, 8), 4.0)
    c = torch.zeros(8, 8, dtype=torch.float64)
    c[0, :5] = torch.tensor([6.0, -6.0, 5.9, 2.0, -10.1])
    nearest = jpeg.quantize(c, table)
    assert nearest[0, :5].tolist() == [2.0, -2.0, 1.0, 1.0, -3.0]  # halves away from zero
    x = c.clone().requires_grad_(True)
    ste = jpeg.quantize(x, table, rounding="ste")
    assert torch.equal(ste.detach(), nearest)
    ste.sum().backward()
    assert torch.allclose(x.grad, torch.full_like(x, 0.25))
    x = c.clone().requires_grad_(True)
    cubic = jpeg.quantize(x, table, rounding="cubic")
    r = nearest
    assert torch.allclose(cubic.detach(), r + (c / 4 - r) ** 3)
    cubic.sum().backward()
    assert torch.allclose(x.grad, 3 * (c / 4 - r) ** 2 / 4)
    deq = jpeg.dequantize(torch.ones(2, 8, 8, dtype=torch.int16), jpeg.quant_table(50))
    assert deq.dtype == torch.float32 and deq[0, 0, 0] == 16
    qn = jpeg.quantize(np.ones((8, 8)) * 9.0, np.full((8, 8), 2))
    assert isinstance(qn, np.ndarray) and qn[0, 0] == 5.0


# ----------------------------------------------------------------------------------------------
# Exact mode vs Pillow
# ----------------------------------------------------------------------------------------------


def _ours_batch(imgs: list[np.ndarray], quality: int, subsampling: str, **kw) -> np.ndarray:
    return jpeg.jpeg_simulate(np.stack(imgs), quality, subsampling, **kw)


@pytest.mark.parametrize("subsampling", list(SUBSAMPLINGS))
@pytest.mark.parametrize("quality", QUALITIES)
def test_exact_equals_pillow_photos_noise_odd_sizes(grid_images, photos, quality, subsampling):
    failures = []
    names = list(grid_images)
    ours = _ours_batch([grid_images[n] for n in names], quality, subsampling)
    for i, n in enumerate(names):
        theirs = pillow_roundtrip(grid_images[n], quality, subsampling)
        failures.append(compare(ours[i], theirs, f"{n} {GRID_SIZE} q={quality} {subsampling}"))
    for k, (h, w) in enumerate(ODD_SIZES):
        imgs = {"chelsea": crop(photos["chelsea"], h, w, seed=k), "noise": noise(h, w, seed=k)}
        ours = _ours_batch(list(imgs.values()), quality, subsampling)
        for i, (n, img) in enumerate(imgs.items()):
            theirs = pillow_roundtrip(img, quality, subsampling)
            failures.append(compare(ours[i], theirs, f"{n} {h}x{w} q={quality} {subsampling}"))
    assert_all_identical(failures)


@pytest.mark.parametrize("quality", QUALITIES)
def test_exact_equals_pillow_greyscale(photos, quality):
    failures = []
    for k, (h, w) in enumerate([GRID_SIZE, (37, 53), (9, 17), (1, 1)]):
        imgs = [grey(crop(photos["astronaut"], h, w, seed=k)), noise(h, w, c=None, seed=k)]
        ours = jpeg.jpeg_simulate(np.stack(imgs)[..., None], quality)[..., 0]
        for i, img in enumerate(imgs):
            theirs = pillow_roundtrip(img, quality)  # mode "L": one component
            failures.append(compare(ours[i], theirs, f"L #{i} {h}x{w} q={quality}"))
    assert_all_identical(failures)


def test_exact_equals_pillow_full_photos(photos):
    failures = []
    cases = [("astronaut", 75, "4:2:0"), ("chelsea", 90, "4:4:4"), ("coffee", 50, "4:2:2")]
    for name, q, s in cases:
        img = photos[name]
        failures.append(
            compare(
                jpeg.jpeg_simulate(img, q, s),
                pillow_roundtrip(img, q, s),
                f"{name} {img.shape[:2]} q={q} {s}",
            )
        )
    img = grey(photos["chelsea"])
    failures.append(
        compare(
            jpeg.jpeg_simulate(img[..., None], 30)[..., 0],
            pillow_roundtrip(img, 30),
            f"chelsea L {img.shape} q=30",
        )
    )
    # Pillow's defaults: quality 75, 4:2:0
    img = photos["coffee"][:123, :211]
    failures.append(compare(jpeg.jpeg_simulate(img), pillow_roundtrip(img), "coffee defaults"))
    assert_all_identical(failures)


#: An 8x8 block whose q=1 reconstruction overshoots to 552 at pixel (0, 0) (found by a linear
#: program): the inverse DCT's range limiting decides that pixel.
OVERSHOOT_BLOCK = [
    [254, 254, 245, 1, 1, 1, 1, 58],
    [254, 254, 254, 1, 1, 1, 1, 55],
    [80, 254, 254, 1, 1, 1, 1, 1],
    [1, 1, 254, 254, 254, 156, 254, 1],
    [1, 1, 51, 254, 254, 254, 254, 1],
    [1, 1, 1, 254, 254, 254, 254, 254],
    [1, 1, 1, 108, 254, 254, 254, 254],
    [1, 1, 63, 28, 1, 112, 254, 249],
]


def test_exact_range_limiting_beyond_the_mask():
    img = np.array(OVERSHOOT_BLOCK, dtype=np.uint8)
    tables = torch.from_numpy(np.stack([ref.quant_table(1, "luma"), ref.quant_table(1, "chroma")]))
    x = torch.from_numpy(img)[None, None]
    raw = ref.idct_islow(ref.encode_exact(x, tables)[0] * tables[0])
    assert int(raw.max()) >= 512  # outside the range where the C table and saturation agree
    clamp = ref.simulate_exact(x, tables, "4:4:4", "clamp")[0, 0].numpy()
    mask = ref.simulate_exact(x, tables, "4:4:4", "mask")[0, 0].numpy()
    assert clamp[0, 0] == 255 and mask[0, 0] == 0
    theirs = pillow_roundtrip(img, 1)
    # libjpeg-turbo's SIMD inverse DCT saturates, its C version wraps through RANGE_MASK
    assert np.array_equal(theirs, clamp) or np.array_equal(theirs, mask)
    assert np.array_equal(jpeg.jpeg_simulate(img[..., None], 1)[..., 0], clamp)


def test_exact_custom_tables_equal_pillow_qtables(grid_images):
    rng = np.random.default_rng(3)
    luma = rng.integers(1, 400, (8, 8))  # entries above 255: 16-bit tables
    chroma = rng.integers(1, 120, (8, 8))
    img = grid_images["coffee"]
    for s in SUBSAMPLINGS:
        # without `quality` Pillow installs the tables as given (scale 100, no baseline limit)
        theirs = pillow_roundtrip(
            img, None, s, qtables=[luma.ravel().tolist(), chroma.ravel().tolist()]
        )
        ours = jpeg.jpeg_simulate(img, subsampling=s, tables=np.stack([luma, chroma]))
        assert_all_identical([compare(ours, theirs, f"qtables {s}")])
    # one table for every component; three tables, one per component
    one = jpeg.jpeg_simulate(img, tables=torch.from_numpy(luma))
    assert np.array_equal(one, jpeg.jpeg_simulate(img, tables=np.stack([luma, luma, luma])))


def test_exact_batches_layouts_and_dtypes(grid_images):
    a, b = grid_images["astronaut"], grid_images["noise"]
    expect_a = pillow_roundtrip(a, 60, "4:2:0")
    expect_b = pillow_roundtrip(b, 60, "4:2:0")
    # numpy HWC single and batch
    assert np.array_equal(jpeg.jpeg_simulate(a, 60), expect_a)
    batch = jpeg.jpeg_simulate(np.stack([[a, b]]), 60)
    assert batch.shape == (1, 2, *a.shape)
    assert np.array_equal(batch[0, 0], expect_a) and np.array_equal(batch[0, 1], expect_b)
    # torch CHW single, batch, channels_last, hwc layout
    ta = torch.from_numpy(a).permute(2, 0, 1).contiguous()
    out = jpeg.jpeg_simulate(ta, 60)
    assert isinstance(out, torch.Tensor) and out.shape == ta.shape
    assert np.array_equal(out.permute(1, 2, 0).numpy(), expect_a)
    tb = torch.stack([ta, torch.from_numpy(b).permute(2, 0, 1)])
    cl = tb.contiguous(memory_format=torch.channels_last)
    out = jpeg.jpeg_simulate(cl, 60)
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert np.array_equal(out[1].permute(1, 2, 0).numpy(), expect_b)
    out = jpeg.jpeg_simulate(torch.from_numpy(a), 60, layout="hwc")
    assert np.array_equal(out.numpy(), expect_a)
    # floats: rounded to 8 bits, the output on the caller's range
    for dtype in (torch.float16, torch.float32, torch.float64):
        out = jpeg.jpeg_simulate(ta.to(dtype) / 255, 60)
        assert out.dtype == dtype
        assert torch.allclose(
            out.double() * 255,
            torch.from_numpy(expect_a).permute(2, 0, 1).double(),
            atol=0.2 if dtype == torch.float16 else 1e-4,
        )
    out = jpeg.jpeg_simulate(a.astype(np.float32), 60, value_range=255)
    np.testing.assert_allclose(out, expect_a, atol=1e-4)
    # greyscale: torch [1, H, W] and numpy [H, W, 1]
    g = grey(a)
    expect_g = pillow_roundtrip(g, 60)
    assert np.array_equal(jpeg.jpeg_simulate(torch.from_numpy(g)[None], 60)[0].numpy(), expect_g)
    assert np.array_equal(jpeg.jpeg_simulate(g[..., None], 60)[..., 0], expect_g)


def test_outputs_fully_written(poisoned, grid_images):
    img = grid_images["chelsea"]
    assert np.array_equal(jpeg.jpeg_simulate(img, 80), pillow_roundtrip(img, 80, "4:2:0"))
    x = torch.from_numpy(img).permute(2, 0, 1)[None].double()
    tables = torch.from_numpy(
        np.stack([ref.quant_table(80, "luma"), ref.quant_table(80, "chroma")])
    )
    expect = ref.round_half_up(ref.simulate_float(x, tables, "4:2:0"))[0].permute(1, 2, 0)
    out = jpeg.jpeg_simulate(img.astype(np.float64), 80, mode="float", value_range=255)
    assert np.array_equal(np.floor(out + 0.5), expect.numpy())


# ----------------------------------------------------------------------------------------------
# Float and differentiable modes
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("subsampling", list(SUBSAMPLINGS))
def test_float_mode_within_one_of_pillow(photos, subsampling):
    bad = []
    for name, img in sorted(photos.items()):
        img = crop(img, 256, 256, seed=7)
        for q in QUALITIES:
            ours = jpeg.jpeg_simulate(img, q, subsampling, mode="float").astype(int)
            theirs = pillow_roundtrip(img, q, subsampling).astype(int)
            within = (np.abs(ours - theirs) <= 1).mean()
            if within < 0.99:
                bad.append(f"{name} q={q} {subsampling}: {within:.4f} within 1")
    g = grey(photos["astronaut"][:256, :256])
    for q in (10, 50, 90):
        ours = jpeg.jpeg_simulate(g[..., None], q, mode="float")[..., 0].astype(int)
        within = (np.abs(ours - pillow_roundtrip(g, q).astype(int)) <= 1).mean()
        if within < 0.99:
            bad.append(f"L q={q}: {within:.4f} within 1")
    assert not bad, "\n".join(bad)


def test_float_mode_float32_and_float64_agree(grid_images):
    x = torch.from_numpy(grid_images["coffee"]).permute(2, 0, 1) / 255
    a = jpeg.jpeg_simulate(x.float(), 50, mode="float")
    b = jpeg.jpeg_simulate(x.double(), 50, mode="float")
    assert ((a.double() - b).abs() * 255 <= 1.01).double().mean() > 0.999


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / mse))


@pytest.mark.parametrize("rounding", ["ste", "cubic"])
def test_differentiable_close_to_exact(photos, rounding):
    for name, img in sorted(photos.items()):
        img = crop(img, 96, 128, seed=5)
        x = torch.from_numpy(img).permute(2, 0, 1).float() / 255
        for q in (5, 50, 95):
            exact = jpeg.jpeg_simulate(img, q).astype(np.float64)
            d = jpeg.jpeg_simulate(x, q, mode="differentiable", rounding=rounding)
            d = d.permute(1, 2, 0).numpy() * 255
            assert psnr(d, exact) > 36, (name, q)
            assert abs(psnr(d, img) - psnr(exact, img)) < 1.5, (name, q)


def test_differentiable_gradcheck_cubic():
    g = torch.Generator().manual_seed(0)
    x = (0.3 + 0.4 * torch.rand(1, 3, 8, 12, generator=g, dtype=torch.float64)).requires_grad_()
    for s in ("4:2:0", "4:4:4"):
        assert torch.autograd.gradcheck(
            lambda t, s=s: jpeg.jpeg_simulate(t, 75, s, mode="differentiable"),
            (x,),
            fast_mode=True,
        )
    # the full Jacobian on a tiny greyscale image
    xg = (0.3 + 0.4 * torch.rand(1, 1, 3, 5, generator=g, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(
        lambda t: jpeg.jpeg_simulate(t, 60, mode="differentiable", rounding="cubic"), (xg,)
    )


def test_differentiable_ste_gradient_is_that_of_the_unrounded_pipeline(monkeypatch):
    """Straight-through: the backward pass is the one of the pipeline without rounding."""
    monkeypatch.setitem(ref.ROUNDINGS, "identity", lambda t: t)
    g = torch.Generator().manual_seed(1)
    x = 80 + 100 * torch.rand(2, 3, 11, 13, generator=g, dtype=torch.float64)
    w = torch.randn(2, 3, 11, 13, generator=g, dtype=torch.float64)
    tables = torch.from_numpy(
        np.stack([ref.quant_table(90, "luma"), ref.quant_table(90, "chroma")])
    )
    grads = {}
    for r in ("ste", "identity"):
        xi = x.clone().requires_grad_()
        (ref.simulate_differentiable(xi, tables, "4:2:0", r) * w).sum().backward()
        grads[r] = xi.grad
    assert torch.allclose(grads["ste"], grads["identity"], atol=1e-10)
    # and through the public API, gradients reach the input and the tables
    xt = (x / 255).requires_grad_()
    tabs = tables.double().requires_grad_()
    out = jpeg.jpeg_simulate(xt, mode="differentiable", rounding="ste", tables=tabs)
    (out * w).sum().backward()
    assert xt.grad is not None and torch.isfinite(xt.grad).all() and xt.grad.abs().sum() > 0
    assert tabs.grad is not None and torch.isfinite(tabs.grad).all()


def test_differentiable_and_float_modes_with_uint8_and_value_range(grid_images):
    img = grid_images["chelsea"]
    d8 = jpeg.jpeg_simulate(img, 70, mode="differentiable")
    assert d8.dtype == np.uint8 and d8.shape == img.shape
    d255 = jpeg.jpeg_simulate(img.astype(np.float64), 70, mode="differentiable", value_range=255)
    d1 = jpeg.jpeg_simulate(img.astype(np.float64) / 255, 70, mode="differentiable")
    np.testing.assert_allclose(d255, d1 * 255, atol=1e-9)
    assert np.abs(d8.astype(np.float64) - d255).max() <= 0.5 + 1e-9


# ----------------------------------------------------------------------------------------------
# Errors, backends, the file-reading hook
# ----------------------------------------------------------------------------------------------


def test_argument_errors():
    img = noise(8, 8)
    with pytest.raises(ValueError, match="`quality`"):
        jpeg.jpeg_simulate(img, 0)
    with pytest.raises(ValueError, match="`quality`"):
        jpeg.quant_table(101)
    with pytest.raises(TypeError, match="`quality`"):
        jpeg.jpeg_simulate(img, 50.0)
    with pytest.raises(TypeError, match="`quality`"):
        jpeg.scale_table(ANNEX_K_LUMA, True)
    with pytest.raises(ValueError, match="`subsampling`"):
        jpeg.jpeg_simulate(img, subsampling="4:1:1")
    with pytest.raises(ValueError, match="`subsampling`"):
        jpeg.jpeg_simulate(img, subsampling=2)
    with pytest.raises(ValueError, match="`mode`"):
        jpeg.jpeg_simulate(img, mode="fast")
    with pytest.raises(ValueError, match="`rounding`"):
        jpeg.jpeg_simulate(img, rounding="floor")
    with pytest.raises(ValueError, match="`rounding`"):
        jpeg.jpeg_simulate(img, mode="exact", rounding="ste")
    with pytest.raises(ValueError, match="`rounding`"):
        jpeg.quantize(torch.zeros(8, 8), torch.ones(8, 8), rounding="up")
    with pytest.raises(ValueError, match="`component`"):
        jpeg.quant_table(50, "alpha")
    with pytest.raises(TypeError, match="`force_baseline`"):
        jpeg.quant_table(50, "luma", force_baseline=1)
    with pytest.raises(ValueError, match="`tables`"):
        jpeg.jpeg_simulate(img, tables=np.ones((4, 4)))
    with pytest.raises(ValueError, match="`tables`"):
        jpeg.jpeg_simulate(img, tables=np.ones((4, 8, 8)))
    with pytest.raises(ValueError, match="`tables`"):
        jpeg.jpeg_simulate(img, tables=-np.ones((8, 8)))
    with pytest.raises(ValueError, match="`tables`"):
        jpeg.jpeg_simulate(img, tables=np.full((8, 8), 1.5))
    with pytest.raises(ValueError, match="`tables`"):
        jpeg.jpeg_simulate(img, tables=np.full((8, 8), 9000))
    with pytest.raises(TypeError, match="`tables`"):
        jpeg.jpeg_simulate(img, tables="standard")
    with pytest.raises(ValueError, match="`images`"):
        jpeg.jpeg_simulate(noise(8, 8, c=4))
    with pytest.raises(ValueError, match="`images`"):
        jpeg.jpeg_simulate(torch.zeros(2, 8, 8, dtype=torch.uint8))
    with pytest.raises(TypeError, match="`images`"):
        jpeg.jpeg_simulate([[1, 2, 3]])
    with pytest.raises(TypeError, match="`images`"):
        jpeg.jpeg_simulate(torch.zeros(3, 8, 8, dtype=torch.int32))
    with pytest.raises(ValueError, match="`value_range`"):
        jpeg.jpeg_simulate(img, value_range=1.0)
    with pytest.raises(ValueError, match="`table`"):
        jpeg.quantize(torch.zeros(8, 8), torch.ones(4, 4))
    with pytest.raises(ValueError, match="`table`"):
        jpeg.dequantize(torch.zeros(8, 8), torch.zeros(8, 8))
    with pytest.raises(ValueError, match="`coeffs`"):
        jpeg.quantize(torch.zeros(8, 7), torch.ones(8, 8))
    with pytest.raises(ValueError, match="`blocks`"):
        jpeg.zigzag(torch.zeros(4, 4))
    with pytest.raises(ValueError, match="`seq`"):
        jpeg.unzigzag(torch.zeros(63))
    with pytest.raises(ValueError, match="`planes`"):
        jpeg.block_dct(torch.zeros(5))
    with pytest.raises(ValueError, match="`size`"):
        jpeg.block_idct(torch.zeros(2, 3, 8, 8), size=(17, 24))
    with pytest.raises(TypeError, match="`size`"):
        jpeg.block_idct(torch.zeros(2, 3, 8, 8), size=16)
    with pytest.raises(ValueError, match="`base`"):
        jpeg.scale_table(np.full((8, 8), 0.5), 50)
    with pytest.raises(ValueError, match="`base`"):
        jpeg.scale_table(np.ones(10), 50)
    with pytest.raises(TypeError, match="`base`"):
        jpeg.scale_table("table", 50)


def test_backends(monkeypatch):
    img = noise(9, 9)
    expected = jpeg.jpeg_simulate(img, backend="torch")
    assert np.array_equal(jpeg.jpeg_simulate(img, backend="auto"), expected)
    for name in ("cpp", "triton"):
        # The block transforms have no fast backend: naming one raises.
        with pytest.raises(BackendError, match=name):
            jpeg.block_dct(torch.zeros(8, 8), backend=name)
        with pytest.raises(BackendError):
            jpeg.block_idct(torch.zeros(1, 1, 8, 8), backend=name)
    with pytest.raises(ValueError, match="`backend`"):
        jpeg.jpeg_simulate(img, backend="gpu")
    monkeypatch.setenv("FASTPERC_BACKEND", "torch")
    assert np.array_equal(jpeg.jpeg_simulate(img), expected)
    monkeypatch.setenv("FASTPERC_BACKEND", "cpp")
    with pytest.raises(BackendError):
        jpeg.block_dct(torch.zeros(8, 8))


def test_file_reading_names():
    if importlib.util.find_spec("fastperc.jpeg_io") is None:
        with pytest.raises(ImportError):
            jpeg.inspect_jpeg
    else:
        from fastperc import jpeg_io

        assert jpeg.inspect_jpeg is jpeg_io.inspect_jpeg
        assert jpeg.read_coefficients is jpeg_io.read_coefficients
    with pytest.raises(AttributeError):
        jpeg.no_such_name


def test_encode_decode_coefficients_compose_to_exact(grid_images):
    """The reference splits the exact mode at the quantized coefficients (what a JPEG file holds):
    libjpeg's block grid per component, dummy blocks beyond it ignored on decode."""
    img = torch.from_numpy(grid_images["chelsea"]).permute(2, 0, 1)[None]
    tables = torch.from_numpy(
        np.stack([ref.quant_table(80, "luma"), ref.quant_table(80, "chroma")])
    )
    h, w = GRID_SIZE
    coefs = ref.encode_exact(img, tables, "4:2:0")
    assert [tuple(c.shape[1:3]) for c in coefs] == [(8, 12), (4, 6), (4, 6)]
    padded = [torch.nn.functional.pad(c, (0, 0, 0, 0, 0, 1, 0, 2)) for c in coefs]  # dummies
    out = ref.decode_exact(padded, tables, "4:2:0", h, w)
    assert torch.equal(out, ref.simulate_exact(img, tables, "4:2:0"))
