"""Pure-PyTorch reference implementations: the readable specification of every op.

Every fast backend (C++ in ``csrc/``, Triton in ``kernels/``) is tested against these
functions. They work on ``torch.Tensor`` batches laid out as ``[N, C, H, W]`` (any strides)
and favour clarity over speed.
"""

from . import color, jpeg

__all__ = ["color", "jpeg"]
