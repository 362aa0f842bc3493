"""Bad input gets a clear ValueError/TypeError naming the argument, never a crash."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fastperc import color

from .conftest import usable_fast_backends

BACKENDS = ["torch", *usable_fast_backends()]


@pytest.mark.parametrize("backend", BACKENDS)
def test_wrong_channels_rank_and_empty(backend):
    with pytest.raises(ValueError, match=r"`image` of shape \(\*, 3, H, W\).*got \(2, 4, 8, 8\)"):
        color.rgb_to_ycbcr(torch.zeros(2, 4, 8, 8), backend=backend)
    with pytest.raises(ValueError, match=r"`image` of shape \(\*, H, W, 3\).*got \(8, 8, 4\)"):
        color.rgb_to_ycbcr(np.zeros((8, 8, 4), np.float32), backend=backend)
    with pytest.raises(ValueError, match=r"`image` of shape .* got \(8, 8\)"):
        color.rgb_to_gray(torch.zeros(8, 8), backend=backend)
    with pytest.raises(ValueError, match="non-empty `image`"):
        color.rgb_to_ycbcr(torch.zeros(0, 3, 8, 8), backend=backend)
    with pytest.raises(ValueError, match="non-empty `image`"):
        color.rgb_to_ycbcr(torch.zeros(3, 0, 8), backend=backend)


def test_wrong_types_and_dtypes():
    with pytest.raises(TypeError, match="`image` to be a torch.Tensor or numpy.ndarray, got list"):
        color.rgb_to_ycbcr([[[0, 0, 0]]])
    with pytest.raises(TypeError, match=r"`image` with dtype in .*got int32"):
        color.rgb_to_ycbcr(torch.zeros(3, 4, 4, dtype=torch.int32))
    with pytest.raises(TypeError, match="`image` with dtype"):
        color.rgb_to_ycbcr(np.zeros((4, 4, 3), np.int64))
    with pytest.raises(TypeError, match="`image` with dtype"):
        color.rgb_to_ycbcr(np.zeros((4, 4, 3), bool))
    with pytest.raises(TypeError, match="`image` with dtype"):
        color.rgb_to_ycbcr(torch.zeros(3, 4, 4, dtype=torch.complex64))
    with pytest.raises(TypeError, match=r"`image` with dtype in \(float16"):
        color.linear_to_srgb(torch.zeros(3, 4, 4, dtype=torch.uint8))
    with pytest.raises(TypeError, match=r"`image` with dtype in \(float16"):
        color.lab_to_rgb(torch.zeros(3, 4, 4, dtype=torch.uint8))


def test_value_range_checks():
    with pytest.raises(ValueError, match="`value_range`=1 does not fit uint8 `image`"):
        color.rgb_to_ycbcr(torch.zeros(3, 4, 4, dtype=torch.uint8), value_range=1)
    with pytest.raises(ValueError, match="`value_range` to be a positive finite number"):
        color.rgb_to_ycbcr(torch.zeros(3, 4, 4), value_range=-1)
    with pytest.raises(ValueError, match="positive finite"):
        color.rgb_to_ycbcr(torch.zeros(3, 4, 4), value_range=float("nan"))
    with pytest.raises(TypeError, match="`value_range` to be a positive number"):
        color.rgb_to_ycbcr(torch.zeros(3, 4, 4), value_range="255")
    # accepted spellings
    color.rgb_to_ycbcr(torch.zeros(3, 4, 4, dtype=torch.uint8), value_range=255)
    color.rgb_to_ycbcr(torch.zeros(3, 4, 4), value_range=255.0)


def test_option_checks():
    x = torch.zeros(3, 4, 4)
    with pytest.raises(
        ValueError, match=r"`standard` to be one of \('bt601', 'bt709'\), got 'bt2020'"
    ):
        color.rgb_to_ycbcr(x, standard="bt2020")
    with pytest.raises(TypeError, match="`full_range` to be a bool"):
        color.rgb_to_ycbcr(x, full_range=1)
    with pytest.raises(ValueError, match="`layout` to be one of"):
        color.rgb_to_ycbcr(x, layout="nchw")
    with pytest.raises(ValueError, match="`subsampling` to be one of"):
        color.chroma_downsample(x, "4:1:1")
    with pytest.raises(ValueError, match="`method` to be one of"):
        color.chroma_upsample(torch.zeros(1, 4, 4), torch.zeros(2, 2, 2), method="bilinear")
    with pytest.raises(ValueError, match="`backend` to be one of"):
        color.rgb_to_ycbcr(x, backend="cuda")


def test_chroma_upsample_shape_checks():
    y = torch.zeros(1, 5, 7, dtype=torch.uint8)
    with pytest.raises(ValueError, match=r"chroma size 3x4 \(4:2:0 of a 5x7 `y`\), got .*size 3x3"):
        color.chroma_upsample(y, torch.zeros(2, 3, 3, dtype=torch.uint8))
    with pytest.raises(TypeError, match="same type, dtype and device"):
        color.chroma_upsample(y, torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match=r"`cbcr` of shape"):
        color.chroma_upsample(y, torch.zeros(3, 3, 4, dtype=torch.uint8))
    with pytest.raises(ValueError, match="batch"):
        color.chroma_upsample(y[None].expand(2, 1, 5, 7), torch.zeros(2, 3, 4, dtype=torch.uint8))


def test_nan_propagates_never_hides():
    x = torch.full((3, 2, 2), float("nan"))
    for backend in BACKENDS:
        assert torch.isnan(color.rgb_to_ycbcr(x, backend=backend)).all()
        assert torch.isnan(color.rgb_to_lab(x, backend=backend)).all()


def test_inputs_are_never_written(photo):
    ro = photo.copy()
    ro.setflags(write=False)
    for backend in BACKENDS:
        color.rgb_to_ycbcr(ro, backend=backend)
        color.chroma_downsample(ro, backend=backend)
    np.testing.assert_array_equal(ro, photo)
