"""fastperc: fast, exact, perception-aware building blocks for image evaluation.

Sub-modules:

* :mod:`fastperc.color` - colour conversions and chroma subsampling (libjpeg-exact for uint8);
* :mod:`fastperc.jpeg` - JPEG in the DCT domain: tables, block DCT, a libjpeg-exact round trip;
* :mod:`fastperc.metrics` - PSNR, SSIM, MS-SSIM, CIEDE2000 (full-reference metrics);
* :mod:`fastperc.stats` - streaming feature statistics, Fréchet distance, KID, CMMD, PR/DC, IS;
* :mod:`fastperc.inputs` - image sources (folders, archives, arrays, datasets, generators);
* :func:`fastperc.audit` - how two image sets are stored, and what of it moves FID;
* :mod:`fastperc.pipeline` - images to features to FID/KID (:func:`fid`, :func:`kid`,
  :func:`compute_stats`), :mod:`fastperc.sensitivity` - the JPEG-sensitivity experiment;
* :mod:`fastperc.models` - feature extractors: the FID Inception-v3, EfficientNet-Lite0;
* :mod:`fastperc.dispatch` - backend selection (C++ on CPU, Triton on CUDA, PyTorch reference);
* :mod:`fastperc.reference` - the pure-PyTorch specification of every op.
"""

from __future__ import annotations

from . import color, data, dispatch, jpeg, reference, stats
from .dispatch import BackendError, available_backends

__version__ = "0.1.0"

__all__ = [
    "AuditReport",
    "BackendError",
    "Finding",
    "SetAudit",
    "__version__",
    "audit",
    "audit_set",
    "available_backends",
    "color",
    "compute_stats",
    "data",
    "dispatch",
    "extract_features",
    "fid",
    "inputs",
    "jpeg",
    "kid",
    "metrics",
    "models",
    "pipeline",
    "reference",
    "resize",
    "sensitivity",
    "stats",
]

_LAZY_MODULES = {"pipeline", "sensitivity", "inputs", "models", "resize", "metrics", "compat"}
_LAZY_FUNCTIONS = {
    "AuditReport": "_audit",
    "Finding": "_audit",
    "SetAudit": "_audit",
    "audit": "_audit",
    "audit_set": "_audit",
    "compute_stats": "pipeline",
    "extract_features": "pipeline",
    "fid": "pipeline",
    "kid": "pipeline",
}


def __getattr__(name: str) -> object:
    import importlib

    if name in _LAZY_MODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in _LAZY_FUNCTIONS:
        return getattr(importlib.import_module(f".{_LAZY_FUNCTIONS[name]}", __name__), name)
    raise AttributeError(f"module 'fastperc' has no attribute {name!r}")
