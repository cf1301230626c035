"""Parla's ``parla.common.array`` path."""

from parla._arrays import clone_here, copy

__all__ = ["clone_here", "copy"]
