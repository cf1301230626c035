"""Parla-MPI: Parla's task-based programming model on every MPI rank.

The compiled runtime lives in :mod:`parla._core`; this package is the public API on top.
"""

from parla._core import __version__, build_config

__all__ = ["__version__", "build_config"]
