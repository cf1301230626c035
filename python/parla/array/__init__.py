"""Parla's ``parla.array``: clone_here, copy, and the PArray constructors."""

from parla._arrays import clone_here, copy
from parla.parray import PArray, array, asarray, asarray_batch

__all__ = ["PArray", "array", "asarray", "asarray_batch", "clone_here", "copy"]
