"""Parla's ``parla.common`` import paths."""
