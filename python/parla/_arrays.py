"""Arrays on the current device: clone_here and copy (Parla's parla.array helpers), and
optional CuPy support (used only when CuPy is installed and a CUDA GPU is in use)."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

__all__ = ["clone_here", "copy", "cupy_module", "is_cupy_array"]

_cupy: Any = False  # False: not looked up yet; None: not installed


def cupy_module() -> Any:
    """CuPy, or None when it is not installed (imported on first use only)."""
    global _cupy
    if _cupy is False:
        try:
            import cupy

            _cupy = cupy
        except Exception:  # ImportError, or a CuPy that cannot find CUDA
            _cupy = None
    return _cupy


def is_cupy_array(x: Any) -> bool:
    # Only if CuPy was imported by someone: an array cannot be a CuPy array otherwise.
    return (
        "cupy" in sys.modules
        and type(x).__module__.startswith("cupy")
        and hasattr(x, "__cuda_array_interface__")
    )


def _on_cuda_gpu() -> int | None:
    """The CUDA device index of the current task, or None (cpu, simulated GPU, no task)."""
    from parla._scope import current_scope, get_current_devices
    from parla.devices import gpu

    device = get_current_devices()[0]
    scope = current_scope(required=False)
    if (
        device.architecture is gpu
        and scope is not None
        and scope.cuda
        and cupy_module() is not None
    ):
        return device.index
    return None


def clone_here(source: Any, kind: Any = None) -> Any:
    """A copy of `source` on the current task's device: a CuPy array on a CUDA GPU, else a
    NumPy array (simulated GPUs keep their data in host memory)."""
    if hasattr(source, "_parla_clone_here"):
        return source._parla_clone_here()
    index = _on_cuda_gpu()
    if index is not None:
        cupy = cupy_module()
        with cupy.cuda.Device(index):
            return cupy.array(source, copy=True)
    if is_cupy_array(source):
        return source.get()
    return np.array(source, copy=True)


def copy(destination: Any, source: Any) -> None:
    """Copies `source` into `destination` (an array or a slice of one), converting between
    NumPy and CuPy as needed."""
    if is_cupy_array(destination):
        cupy = cupy_module()
        destination[...] = cupy.asarray(source)
    elif is_cupy_array(source):
        destination[...] = source.get()
    else:
        destination[...] = source
