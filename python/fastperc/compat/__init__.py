"""Drop-in replacements for the FID libraries people already use.

Each sub-module mirrors one peer's public functions with the same names, parameter names,
order and defaults, and computes with fastperc (float64 statistics, the exact symmetric
Fréchet distance, the fast Inception and image readers):

* :mod:`fastperc.compat.pytorch_fid` - ``pytorch_fid.fid_score`` and ``pytorch_fid.inception``
  (also ``python -m fastperc.compat.pytorch_fid path1 path2``);
* :mod:`fastperc.compat.cleanfid` - ``cleanfid.fid`` (``compute_fid``, ``compute_kid``,
  ``make_custom_stats``, ``frechet_distance``, ``kernel_distance``, ...);
* :mod:`fastperc.compat.torchmetrics` - ``torchmetrics.image.fid.FrechetInceptionDistance``
  and ``torchmetrics.image.kid.KernelInceptionDistance``, synced over ``torch.distributed``.

The change a user makes is one import line, e.g.::

    from pytorch_fid import fid_score                 # before
    import fastperc.compat.pytorch_fid as fid_score   # after

See ``docs/compat.md`` for every peer. The sub-modules are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["cleanfid", "pytorch_fid", "torchmetrics"]


def __getattr__(name: str) -> Any:
    # Lazy, so that ``python -m fastperc.compat.pytorch_fid`` does not find the module already
    # imported by its package.
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
