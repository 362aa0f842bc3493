"""Triton GPU kernels of fastperc (imported lazily; optional).

Each module holds the kernels of one op family and their launchers, which take torch tensors
in the ``[N, C, H, W]`` strided layout used by :mod:`fastperc.color` and write into a given
output. They run on CUDA tensors, or on CPU tensors under ``TRITON_INTERPRET=1``.
"""
