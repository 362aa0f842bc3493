"""Write the seed corpus fuzz/corpus/: small JPEG files covering the code paths of the parser and
decoder (sampling factors, greyscale, CMYK/Adobe, progressive, restart intervals, metadata).

    python fuzz/make_corpus.py

Deterministic: the image is a fixed crop of a bundled photo, re-encoded by Pillow.
"""

from __future__ import annotations

import io
import pathlib

import numpy as np
from PIL import Image

from fastperc.data import load_photo

OUT = pathlib.Path(__file__).resolve().parent / "corpus"


def main() -> None:
    photo = load_photo("chelsea")
    img = Image.fromarray(np.ascontiguousarray(photo[120:143, 200:237]))  # 37 x 23
    grey = img.convert("L")
    cases: dict[str, tuple[Image.Image, dict]] = {
        "q75_420": (img, {"quality": 75}),
        "q90_444": (img, {"quality": 90, "subsampling": 0}),
        "q50_422": (img, {"quality": 50, "subsampling": 1}),
        "q5_420": (img, {"quality": 5}),
        "q100_444": (img, {"quality": 100, "subsampling": 0}),
        "grey_q60": (grey, {"quality": 60}),
        "cmyk_q70": (img.convert("CMYK"), {"quality": 70}),
        "progressive_420": (img, {"quality": 80, "progressive": True}),
        "progressive_grey": (grey, {"quality": 80, "progressive": True}),
        "progressive_444_rst": (img, {"quality": 85, "subsampling": 0, "progressive": True,
                                      "restart_marker_blocks": 2}),
        "restart_blocks3": (img, {"quality": 70, "restart_marker_blocks": 3}),
        "restart_rows1_grey": (grey, {"quality": 70, "restart_marker_rows": 1}),
        "optimized_huffman": (img, {"quality": 65, "optimize": True}),
        "metadata": (img, {"quality": 40, "comment": b"seed", "exif": Image.Exif().tobytes(),
                           "icc_profile": b"\0" * 64}),
    }  # fmt: skip
    OUT.mkdir(exist_ok=True)
    for name, (im, kwargs) in cases.items():
        buf = io.BytesIO()
        im.save(buf, "JPEG", **kwargs)
        (OUT / f"{name}.jpg").write_bytes(buf.getvalue())


if __name__ == "__main__":
    main()
