"""Parla 0.2's ``parla.cuda`` path: ``from parla.cuda import gpu``."""

from parla.devices import gpu

__all__ = ["gpu"]
