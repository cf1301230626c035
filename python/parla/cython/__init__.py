"""Parla's ``parla.cython`` import paths (Parla's Cython modules), kept so programs written
against Parla import unchanged. Here they are plain Python over :mod:`parla._core`."""
