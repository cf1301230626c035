"""Parla's ``parla.cython.variants`` path."""

from parla._variants import specialize

__all__ = ["specialize"]
