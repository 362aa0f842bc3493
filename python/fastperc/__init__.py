"""fastperc: fast, exact, perception-aware building blocks for image evaluation.

Sub-modules:

* :mod:`fastperc.color` - colour conversions and chroma subsampling (libjpeg-exact for uint8);
* :mod:`fastperc.jpeg` - JPEG in the DCT domain: tables, block DCT, a libjpeg-exact round trip;
* :mod:`fastperc.stats` - streaming feature statistics, Fréchet distance, KID, CMMD, PR/DC, IS;
* :mod:`fastperc.dispatch` - backend selection (C++ on CPU, Triton on CUDA, PyTorch reference);
* :mod:`fastperc.reference` - the pure-PyTorch specification of every op.
"""

from __future__ import annotations

from . import color, data, dispatch, jpeg, reference, stats
from .dispatch import BackendError, available_backends

__version__ = "0.1.0"

__all__ = [
    "BackendError",
    "__version__",
    "available_backends",
    "color",
    "data",
    "dispatch",
    "jpeg",
    "reference",
    "stats",
]
