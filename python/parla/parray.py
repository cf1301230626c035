"""Parla's ``parray`` module: ``from parla import parray; A = parray.asarray(x)``."""

from parla._parray import PArray, array, asarray, asarray_batch

__all__ = ["PArray", "array", "asarray", "asarray_batch"]
