"""pytest-benchmark suite for the colour ops: ``python -m pytest bench/ --benchmark-only``.

Each group times fastperc's backends next to the peers on the same 1024x1024 data; the
standalone ``bench_color.py`` writes the recorded table.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import fastperc
from fastperc import color, dispatch

SIZE = 1024
_photo = fastperc.data.load_photo("astronaut")
U8 = np.ascontiguousarray(np.tile(_photo, (SIZE // 256, SIZE // 256, 1)))
F32 = torch.from_numpy(U8).permute(2, 0, 1)[None].float().div(255).contiguous()
BACKENDS = [b for b in ("cpp", "torch") if dispatch.available_backends()[b] is None]


@pytest.mark.benchmark(group="rgb_to_ycbcr float32")
@pytest.mark.parametrize("backend", BACKENDS)
def test_ycbcr_f32_fastperc(benchmark, backend):
    benchmark(color.rgb_to_ycbcr, F32, backend=backend)


@pytest.mark.benchmark(group="rgb_to_ycbcr float32")
def test_ycbcr_f32_kornia(benchmark):
    kc = pytest.importorskip("kornia.color")
    benchmark(kc.rgb_to_ycbcr, F32)


@pytest.mark.benchmark(group="rgb_to_ycbcr uint8")
@pytest.mark.parametrize("backend", BACKENDS)
def test_ycbcr_u8_fastperc(benchmark, backend):
    benchmark(color.rgb_to_ycbcr, U8, backend=backend)


@pytest.mark.benchmark(group="rgb_to_ycbcr uint8")
def test_ycbcr_u8_pillow(benchmark):
    from PIL import Image

    im = Image.fromarray(U8)
    benchmark(im.convert, "YCbCr")


@pytest.mark.benchmark(group="rgb_to_lab float32")
@pytest.mark.parametrize("backend", BACKENDS)
def test_lab_fastperc(benchmark, backend):
    benchmark(color.rgb_to_lab, F32, backend=backend)


@pytest.mark.benchmark(group="rgb_to_lab float32")
def test_lab_kornia(benchmark):
    kc = pytest.importorskip("kornia.color")
    benchmark(kc.rgb_to_lab, F32)
