"""Library contexts (Parla's Virtual Library Contexts): a cpu task that reserves vcus runs
its numerical libraries on as many threads as it has cores.

The runtime pins such a task's worker to max(1, round(vcus * N)) of the rank's N cores
(``get_current_context().cores``); around its body this module limits

- OpenMP to that many threads, on the task's own thread (OpenMP's thread count is
  per thread, so concurrent tasks each get their own);
- BLAS (NumPy's OpenBLAS, MKL, BLIS) to the smallest reservation among the running context
  tasks: BLAS thread counts are process-wide, so the smallest one is the only value that
  oversubscribes no running task's cores. The defaults come back when the last one ends.

Both go through threadpoolctl, imported on the first task with a reservation (so ``import
parla`` stays fast); without it, a warning says so once and the limits are skipped.
"""

from __future__ import annotations

import sys
import threading
import warnings
from typing import Any

from ._core import loaded_objects_generation

__all__ = ["library_context"]

_lock = threading.Lock()
_controller: Any = None  # a ThreadpoolController, False when threadpoolctl is missing
_libraries_seen: tuple[int, int] = (-1, -1)  # (modules, loaded objects) when it was built
_active: list[int] = []  # BLAS limits of the running context tasks
_blas_original: Any = None  # [(lib controller, threads)] from before the first context task
_blas_now = 0  # the BLAS limit in force, 0 when none


def _get_controller() -> Any:
    """The cached controller, rebuilt when libraries may have come or gone: a module was
    imported, or a shared object was loaded some other way (ctypes.CDLL, dlopen)."""
    global _controller, _libraries_seen
    if _controller is False:
        return None
    seen = (len(sys.modules), loaded_objects_generation())
    if _controller is None or _libraries_seen != seen:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            warnings.warn(
                "parla: threadpoolctl is not installed, so tasks with vcus do not limit the "
                "threads of BLAS and OpenMP (pip install threadpoolctl)",
                RuntimeWarning,
                stacklevel=4,
            )
            _controller = False
            return None
        _controller = ThreadpoolController()
        # After building it: threadpoolctl's own imports count as changes.
        _libraries_seen = (len(sys.modules), loaded_objects_generation())
    return _controller


def _release_blas_control() -> None:
    # threadpoolctl (>= 3.6) lets only the first thread that limits a process-wide OpenBLAS
    # change it afterwards; here every change is serialised under _lock, from whichever
    # worker runs the task, so hand control back each time.
    try:
        from threadpoolctl import OpenBLASController

        OpenBLASController.clear_controlling_thread(force=True)
    except (ImportError, AttributeError, TypeError):
        pass


def _set_blas(controller: Any, limit: int) -> None:
    """Sets every BLAS to `limit` threads (0: back to the original counts). Under _lock."""
    global _blas_original, _blas_now
    if limit == _blas_now:
        return
    libs = [lc for lc in controller.lib_controllers if lc.user_api == "blas"]
    if _blas_original is None:
        _blas_original = [(lc, lc.get_num_threads()) for lc in libs]
    _release_blas_control()
    if limit:
        for lc in libs:
            lc.set_num_threads(limit)
    else:
        for lc, n in _blas_original:
            if n is not None:
                lc.set_num_threads(n)
        _blas_original = None
    _release_blas_control()
    _blas_now = limit


class library_context:
    """``with library_context(n):`` runs the block with OpenMP and BLAS limited to ``n``
    threads (see the module's doc). The runtime enters one around every body of a task with
    a core reservation."""

    __slots__ = ("_controller", "_cores", "_omp")

    def __init__(self, cores: int):
        self._cores = cores
        self._controller: Any = None
        self._omp: list[tuple[Any, Any]] = []

    def __enter__(self) -> library_context:
        with _lock:
            controller = _get_controller()
            if controller is None:
                return self
            self._controller = controller
            _active.append(self._cores)
            _set_blas(controller, min(_active))
        # OpenMP's thread count is per thread: set it on this one, for this body.
        for lc in controller.lib_controllers:
            if lc.user_api == "openmp":
                self._omp.append((lc, lc.get_num_threads()))
                lc.set_num_threads(self._cores)
        return self

    def __exit__(self, *exc: object) -> None:
        for lc, n in reversed(self._omp):
            if n is not None:
                lc.set_num_threads(n)
        self._omp.clear()
        if self._controller is None:
            return
        with _lock:
            _active.remove(self._cores)
            _set_blas(self._controller, min(_active) if _active else 0)
        self._controller = None
