"""Parla 0.2's ``parla.cpu`` path: ``from parla.cpu import cpu``."""

from parla.devices import cpu

__all__ = ["cpu"]
