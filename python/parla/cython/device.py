"""Parla's ``parla.cython.device`` path."""

from parla.devices import Architecture, Device, PlacementHint, Stream

PlacementSource = (Architecture, Device, PlacementHint)

__all__ = ["Architecture", "Device", "PlacementHint", "PlacementSource", "Stream"]
