"""Small photographs bundled with fastperc (see README.md in this folder for sources)."""

from __future__ import annotations

from importlib import resources

import numpy as np

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")


def photo_path(name: str) -> str:
    """Path of a bundled photo by name (one of :data:`PHOTOS`)."""
    if name not in PHOTOS:
        raise ValueError(f"Expected `name` to be one of {PHOTOS}, got {name!r}")
    return str(resources.files(__name__).joinpath(f"{name}.png"))


def load_photo(name: str) -> np.ndarray:
    """A bundled photo as an ``[H, W, 3]`` uint8 array."""
    from PIL import Image

    with Image.open(photo_path(name)) as im:
        return np.asarray(im.convert("RGB"))


def demo_crops(size: int = 96, *, quick: bool = False) -> np.ndarray:
    """Deterministic ``[N, size, size, 3]`` uint8 crops of the bundled photos, the image set of
    ``fastperc demo`` and of the end-to-end tests.

    Crops start every ``size // 2`` pixels in both directions; each crop is followed by its
    mirror image unless ``quick=True``. With ``size=96`` that is 116 crops (58 with ``quick``).
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 8:
        raise ValueError(f"Expected `size` to be an int >= 8, got {size!r}")
    stride = size // 2
    out = []
    for name in PHOTOS:
        img = load_photo(name)
        h, w = img.shape[:2]
        for y in range(0, h - size + 1, stride):
            for x in range(0, w - size + 1, stride):
                crop = img[y : y + size, x : x + size]
                out.append(crop)
                if not quick:
                    out.append(crop[:, ::-1])
    return np.ascontiguousarray(np.stack(out))
