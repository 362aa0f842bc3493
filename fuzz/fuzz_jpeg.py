"""Atheris fuzz target for fastperc.jpeg_io (inspect_jpeg and read_coefficients).

Every input may only raise ValueError or NotImplementedError; anything else (another
exception, a crash in the C++ extension) is a finding. A successful read_coefficients is
checked against inspect_jpeg and its own documented shapes. See README.md in this folder.

    python fuzz/fuzz_jpeg.py fuzz/corpus -max_total_time=600 -dict=fuzz/jpeg.dict
"""

from __future__ import annotations

import sys

import atheris
import numpy as np

from fastperc import jpeg_io

# Coverage of the Python layer only (the C++ parser is covered by fuzz_jpeg.cc under libFuzzer).
# The numeric helpers (quality estimation) stay uninstrumented: atheris 3.0's comparison hooks
# leak memory on numpy array comparisons (about 12 kB per call), which ends a long run in an
# out-of-memory report that is no finding of ours.
for _name in (
    "inspect_jpeg",
    "read_coefficients",
    "_info_from_dict",
    "_subsampling_name",
    "_as_path",
    "_as_bytes",
    "_check_max_pixels",
    "_relabel",
):
    setattr(jpeg_io, _name, atheris.instrument_func(getattr(jpeg_io, _name)))

# Small enough to keep each input fast; the default limit is tested separately.
MAX_PIXELS = 1 << 24


def check(data: bytes) -> None:
    try:
        info = jpeg_io.inspect_jpeg(data, max_pixels=MAX_PIXELS)
    except (ValueError, NotImplementedError):
        info = None
    try:
        # A bytearray takes the copying path of the wrapper.
        coefs = jpeg_io.read_coefficients(bytearray(data), max_pixels=MAX_PIXELS)
    except (ValueError, NotImplementedError):
        return
    if info is None:
        raise AssertionError("read_coefficients succeeded where inspect_jpeg failed")
    if (coefs.width, coefs.height) != (info.width, info.height):
        raise AssertionError("size mismatch")
    hmax = max(h for h, _ in coefs.sampling_factors)
    vmax = max(v for _, v in coefs.sampling_factors)
    for arr, (h, v), table in zip(coefs.coefficients, coefs.sampling_factors, coefs.quant_tables):
        want = (-(-info.height // (8 * vmax)) * v, -(-info.width // (8 * hmax)) * h, 8, 8)
        if arr.shape != want or arr.dtype != np.int16:
            raise AssertionError(f"coefficient array {arr.shape} {arr.dtype}, expected {want}")
        if table.shape != (8, 8):
            raise AssertionError("quantization table shape")
    if info.quality is not None and not 1 <= info.quality <= 100:
        raise AssertionError("quality out of range")


def main() -> None:
    atheris.Setup(sys.argv, check)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
