"""Parla's ``parla.common.spawn`` path."""

from parla._spawn import spawn

__all__ = ["spawn"]
