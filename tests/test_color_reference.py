"""The reference colour ops against the outside world: libjpeg-turbo (through Pillow),
Pillow's own conversions, scikit-image and kornia, on real photographs."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from fastperc import color
from fastperc.reference import color as ref

kornia_color = pytest.importorskip("kornia.color")
skcolor = pytest.importorskip("skimage.color")


def _jccolor_tables_convert(rgb: np.ndarray) -> np.ndarray:
    """An independent transcription of libjpeg's jccolor.c: build the 8 lookup tables the way
    rgb_ycc_start does and sum them as rgb_ycc_convert does."""
    i = np.arange(256, dtype=np.int64)

    def fix(x: float) -> int:
        return int(x * 65536 + 0.5)

    half, cbcr_off = 1 << 15, 128 << 16
    r_y, g_y, b_y = fix(0.299) * i, fix(0.587) * i, fix(0.114) * i + half
    r_cb, g_cb = -fix(0.16874) * i, -fix(0.33126) * i
    b_cb = fix(0.5) * i + cbcr_off + half - 1  # also R_CR
    g_cr, b_cr = -fix(0.41869) * i, -fix(0.08131) * i
    r, g, b = (rgb[..., k].astype(np.int64) for k in range(3))
    y = (r_y[r] + g_y[g] + b_y[b]) >> 16
    cb = (r_cb[r] + g_cb[g] + b_cb[b]) >> 16
    cr = (b_cb[r] + g_cr[g] + b_cr[b]) >> 16
    return np.stack([y, cb, cr], axis=-1).astype(np.uint8)


def test_rgb_to_ycbcr_uint8_equals_libjpeg_tables(photos):
    every_colour = np.stack(np.meshgrid(*[np.arange(0, 256, 3)] * 3, indexing="ij"), -1)
    for img in [*photos.values(), every_colour.astype(np.uint8)]:
        ours = color.rgb_to_ycbcr(img, backend="torch")
        np.testing.assert_array_equal(ours, _jccolor_tables_convert(img))


@pytest.mark.parametrize("subsampling", [0, 1, 2], ids=["444", "422", "420"])
def test_ycbcr_to_rgb_uint8_equals_libjpeg_decoder(photos, subsampling):
    """Pillow's JPEG decoder asked for YCbCr output skips only jdcolor.c's conversion, so our
    conversion of that output must give its RGB decode bit for bit."""
    for img in photos.values():
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, "JPEG", quality=75, subsampling=subsampling)
        im = Image.open(io.BytesIO(buf.getvalue()))
        im.draft("YCbCr", im.size)
        assert im.mode == "YCbCr"
        ycc = np.asarray(im)
        rgb = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
        np.testing.assert_array_equal(color.ycbcr_to_rgb(ycc, backend="torch"), rgb)


def test_ycbcr_vs_pillow_convert_within_one(photos):
    for img in photos.values():
        ours = color.rgb_to_ycbcr(img, backend="torch").astype(int)
        theirs = np.asarray(Image.fromarray(img).convert("YCbCr")).astype(int)
        assert np.abs(ours - theirs).max() <= 1
        back = color.ycbcr_to_rgb(theirs.astype(np.uint8), backend="torch").astype(int)
        pil_back = np.asarray(Image.fromarray(theirs.astype(np.uint8), "YCbCr").convert("RGB"))
        assert np.abs(back - pil_back).max() <= 1


def test_gray_equals_pillow_L(photos):
    for img in photos.values():
        ours = color.rgb_to_gray(img, backend="torch")[..., 0]
        np.testing.assert_array_equal(ours, np.asarray(Image.fromarray(img).convert("L")))


def test_lab_xyz_vs_scikit_image(photos):
    for img in photos.values():
        f = img.astype(np.float64) / 255
        np.testing.assert_allclose(
            color.rgb_to_xyz(f, backend="torch"), skcolor.rgb2xyz(f), rtol=0, atol=1e-12
        )
        lab = skcolor.rgb2lab(f)
        np.testing.assert_allclose(color.rgb_to_lab(f, backend="torch"), lab, rtol=0, atol=1e-10)
        with warnings.catch_warnings():  # lab2rgb warns about clipped negative Z
            warnings.simplefilter("ignore")
            np.testing.assert_allclose(
                color.lab_to_rgb(lab, backend="torch"), skcolor.lab2rgb(lab), atol=1e-12
            )
            xyz = skcolor.rgb2xyz(f)
            np.testing.assert_allclose(
                color.xyz_to_rgb(xyz, backend="torch"), skcolor.xyz2rgb(xyz), atol=1e-12
            )
        # uint8 input is read as value / 255
        np.testing.assert_allclose(color.rgb_to_lab(img, backend="torch"), lab, atol=1e-4)


def test_vs_kornia(photo):
    t = torch.from_numpy(photo).permute(2, 0, 1)[None].double() / 255
    k = kornia_color
    torch.testing.assert_close(color.srgb_to_linear(t, backend="torch"), k.rgb_to_linear_rgb(t))
    lin = k.rgb_to_linear_rgb(t)
    torch.testing.assert_close(color.linear_to_srgb(lin, backend="torch"), k.linear_rgb_to_rgb(lin))
    torch.testing.assert_close(color.rgb_to_xyz(t, backend="torch"), k.rgb_to_xyz(lin))
    torch.testing.assert_close(
        color.rgb_to_xyz(lin, linear=True, backend="torch"), k.rgb_to_xyz(lin)
    )
    torch.testing.assert_close(color.rgb_to_lab(t, backend="torch"), k.rgb_to_lab(t))
    lab = k.rgb_to_lab(t)
    torch.testing.assert_close(color.lab_to_rgb(lab, backend="torch"), k.lab_to_rgb(lab))
    torch.testing.assert_close(color.rgb_to_gray(t, backend="torch"), k.rgb_to_grayscale(t))
    # kornia centres chroma on 0.5 where JPEG uses 128/255; its luma is the same.
    ours = color.rgb_to_ycbcr(t, backend="torch")
    theirs = k.rgb_to_ycbcr(t)
    torch.testing.assert_close(ours[:, 0], theirs[:, 0])
    # ... and scales chroma by the rounded 0.564 and 0.713 (1 / 1.772 and 1 / 1.402)
    torch.testing.assert_close(ours[:, 1:] - (128 / 255 - 0.5), theirs[:, 1:], atol=2e-4, rtol=0)
    # kornia's inverse uses 4-digit constants (1.403, 0.714, 0.344, 1.773)
    shifted = theirs + torch.tensor([0, 128 / 255 - 0.5, 128 / 255 - 0.5]).view(1, 3, 1, 1)
    torch.testing.assert_close(
        color.ycbcr_to_rgb(shifted.double(), backend="torch"),
        k.ycbcr_to_rgb(theirs),
        atol=1e-3,
        rtol=0,
    )


def test_float_matches_uint8_scale(photo):
    """A float image on 0..255 gives the unrounded version of the 8-bit result."""
    f = photo.astype(np.float64)
    ycc = color.rgb_to_ycbcr(f, value_range=255, backend="torch")
    assert np.abs(ycc - color.rgb_to_ycbcr(photo, backend="torch")).max() <= 0.51 + 1e-9
    unit = color.rgb_to_ycbcr(f / 255, backend="torch")
    np.testing.assert_allclose(unit * 255, ycc, atol=1e-9)


@pytest.mark.parametrize("standard", ["bt601", "bt709"])
@pytest.mark.parametrize("full_range", [True, False])
def test_round_trips(photo, standard, full_range):
    kw = dict(standard=standard, full_range=full_range, backend="torch")
    f = photo.astype(np.float64) / 255
    np.testing.assert_allclose(color.ycbcr_to_rgb(color.rgb_to_ycbcr(f, **kw), **kw), f, atol=1e-12)
    back = color.ycbcr_to_rgb(color.rgb_to_ycbcr(photo, **kw), **kw).astype(int)
    # 8-bit YCbCr cannot hold every RGB triple; studio swing loses a little more.
    assert np.abs(back - photo).max() <= (2 if full_range else 3)
    lab = color.rgb_to_lab(f, backend="torch")
    np.testing.assert_allclose(color.lab_to_rgb(lab, backend="torch"), f, atol=1e-10)
    xyz = color.rgb_to_xyz(f, backend="torch")
    np.testing.assert_allclose(color.xyz_to_rgb(xyz, backend="torch"), f, atol=1e-12)
    lin = color.srgb_to_linear(f, backend="torch")
    np.testing.assert_allclose(color.linear_to_srgb(lin, backend="torch"), f, atol=1e-12)


def test_studio_range_levels():
    white = np.full((1, 1, 3), 255, np.uint8)
    black = np.zeros((1, 1, 3), np.uint8)
    for std in ("bt601", "bt709"):
        kw = dict(full_range=False, standard=std, backend="torch")
        assert color.rgb_to_ycbcr(white, **kw).ravel().tolist() == [235, 128, 128]
        assert color.rgb_to_ycbcr(black, **kw).ravel().tolist() == [16, 128, 128]
    red = color.rgb_to_ycbcr(
        np.array([[[1.0, 0, 0]]]), full_range=False, standard="bt709", backend="torch"
    )
    # BT.709 studio swing: Y = 16 + 219 * 0.2126, Cr = 128 + 224 * 0.5 (on the 0..255 scale)
    np.testing.assert_allclose(
        red.ravel() * 255, [16 + 219 * 0.2126, 128 - 224 * 0.5 * 0.2126 / (1 - 0.0722), 240]
    )


def test_chroma_downsample_libjpeg_bias():
    # 2x4 block: output column 0 has bias 1, column 1 bias 2 (jcsample.c h2v2_downsample)
    ycc = np.zeros((2, 4, 3), np.uint8)
    ycc[..., 1] = [[0, 1, 0, 1], [0, 0, 0, 0]]  # sums 1 and 1
    ycc[..., 2] = [[1, 0, 1, 1], [0, 0, 1, 0]]  # sums 1 and 3
    _, c = color.chroma_downsample(ycc, "4:2:0", backend="torch")
    assert c[..., 0].tolist() == [[(1 + 1) >> 2, (1 + 2) >> 2]]
    assert c[..., 1].tolist() == [[(1 + 1) >> 2, (3 + 2) >> 2]]
    _, c = color.chroma_downsample(ycc, "4:2:2", backend="torch")
    assert c[0, :, 0].tolist() == [(0 + 1 + 0) >> 1, (0 + 1 + 1) >> 1]


def test_chroma_upsample_matches_libjpeg_fancy_formula():
    """Hand-computed libjpeg h2v2/h2v1 fancy upsampling on a 3x3 chroma plane."""
    rng = np.random.default_rng(0)
    c = rng.integers(0, 256, size=(3, 3, 2), dtype=np.uint8)
    y = np.zeros((6, 6, 1), np.uint8)
    out = color.chroma_upsample(y, c, "4:2:0", backend="torch")[..., 1].astype(int)
    p = c[..., 0].astype(int)
    pr = np.pad(p, 1, mode="edge")
    for oy in range(6):
        for ox in range(6):
            i, j = oy // 2 + 1, ox // 2 + 1
            ni = i - 1 if oy % 2 == 0 else i + 1

            def colsum(jj, i=i, ni=ni):
                return 3 * pr[i, jj] + pr[ni, jj]

            if ox % 2 == 0:
                want = (3 * colsum(j) + colsum(j - 1) + 8) >> 4
            else:
                want = (3 * colsum(j) + colsum(j + 1) + 7) >> 4
            assert out[oy, ox] == want, (oy, ox)
    y2 = np.zeros((3, 6, 1), np.uint8)
    out = color.chroma_upsample(y2, c, "4:2:2", backend="torch")[..., 1].astype(int)
    pc = np.pad(p, ((0, 0), (1, 1)), mode="edge")
    for oy in range(3):
        for ox in range(6):
            j = ox // 2 + 1
            want = (
                (3 * pc[oy, j] + pc[oy, j - 1] + 1) >> 2
                if ox % 2 == 0
                else (3 * pc[oy, j] + pc[oy, j + 1] + 2) >> 2
            )
            assert out[oy, ox] == want


def test_chroma_fancy_falls_back_to_nearest_when_narrow():
    c = np.array([[[10, 20], [30, 40]]], np.uint8)  # 1x2 chroma
    y = np.zeros((2, 4, 1), np.uint8)
    fancy = color.chroma_upsample(y, c, "4:2:0", method="fancy", backend="torch")
    nearest = color.chroma_upsample(y, c, "4:2:0", method="nearest", backend="torch")
    np.testing.assert_array_equal(fancy, nearest)


def test_chroma_resampling_constant_and_round_trip(photo):
    ycc = color.rgb_to_ycbcr(photo, backend="torch")
    for ss in ("4:2:0", "4:2:2", "4:4:4"):
        y, c = color.chroma_downsample(ycc, ss, backend="torch")
        assert c.shape[:2] == ref.chroma_size(*photo.shape[:2], ss)
        for method in ("fancy", "nearest"):
            back = color.chroma_upsample(y, c, ss, method=method, backend="torch")
            np.testing.assert_array_equal(back[..., 0], ycc[..., 0])
            err = np.abs(back.astype(int) - ycc.astype(int))[..., 1:]
            assert err.mean() < 2.0
    flat = np.full((7, 9, 3), 77, np.uint8)
    y, c = color.chroma_downsample(flat, "4:2:0", backend="torch")
    assert (c == 77).all()
    np.testing.assert_array_equal(color.chroma_upsample(y, c, "4:2:0", backend="torch"), flat)
