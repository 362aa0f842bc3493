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
