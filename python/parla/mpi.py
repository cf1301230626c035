"""Communication tasks: MPI messages in each rank's task graph (``from parla import mpi``).

A communicator made from an mpi4py communicator (default ``MPI.COMM_WORLD``), inside a
``with Parla():`` block::

    from mpi4py import MPI
    from parla import Parla, TaskSpace, mpi, parray, spawn

    with Parla():
        comm = mpi.Comm(MPI.COMM_WORLD)        # the runtime works on a duplicate
        A = parray.asarray(np.zeros(1024))
        T = TaskSpace("T")

        @spawn(T[0], output=[A])
        def produce():
            A[:] = comm.rank

        comm.send(A, dest=(comm.rank + 1) % comm.size, taskid=T[1])   # reads A: after T[0]
        comm.recv(B, source=(comm.rank - 1) % comm.size)               # writes B
        comm.close()  # or `with mpi.Comm() as comm:`

Every method spawns a task and returns it (``taskid=``, ``dependencies=`` as for
``@spawn``); the task completes when the MPI request completes. Data: a PArray (or a slice
of one: the task declares ``input`` for a send, ``output`` for a receive, so compute tasks
order themselves around it), or any contiguous buffer (a NumPy array: no inferred ordering,
use ``dependencies``; it is kept alive until the request completes).

Tags are deterministic: the k-th send to a rank with a tag matches that rank's k-th receive
from this rank with that tag, whatever order the tasks become ready in. MPI must run with
``MPI_THREAD_MULTIPLE`` when the program also uses mpi4py while tasks run (mpi4py's default).
A communication task that fails (or is cancelled because its input's producer failed) aborts
the whole job with its message, so the other ranks do not wait forever
(``abort_on_failure=False`` or ``PARLA_MPI_ABORT_ON_FAILURE=0`` to handle failures yourself).
"""

from __future__ import annotations

import atexit
import contextlib
import weakref
from typing import Any

from mpi4py import MPI  # initialises MPI (thread level "multiple" unless mpi4py.rc says otherwise)

from parla import _core
from parla._scope import current_scope
from parla._tasks import Task, TaskList, flatten_tasks

__all__ = ["Comm", "cuda_aware"]

_DTYPES = {
    "int32": "i32",
    "int64": "i64",
    "uint64": "u64",
    "uint8": "u8",
    "float32": "f32",
    "float64": "f64",
}
_live: weakref.WeakSet[Comm] = weakref.WeakSet()


def cuda_aware() -> bool:
    """Whether MPI sends CUDA device memory directly (PARLA_CUDA_AWARE_MPI=0|1 overrides)."""
    return bool(_core.mpi.cuda_aware())


class Comm:
    """The runtime's communicator for the current ``with Parla():`` block."""

    def __init__(self, comm: Any = None, *, abort_on_failure: bool | None = None):
        scope = current_scope()
        assert scope is not None
        self._scope = scope
        flag = -1 if abort_on_failure is None else int(bool(abort_on_failure))
        self._c = _core.mpi.Comm(scope.rt, MPI.COMM_WORLD if comm is None else comm, flag)
        _live.add(self)

    # -- description -----------------------------------------------------------------------
    @property
    def rank(self) -> int:
        return self._c.rank  # type: ignore[no-any-return]

    @property
    def size(self) -> int:
        return self._c.size  # type: ignore[no-any-return]

    @property
    def max_tag(self) -> int:
        return self._c.max_tag  # type: ignore[no-any-return]

    @property
    def transport(self) -> str:
        return self._c.transport  # type: ignore[no-any-return]

    @property
    def cuda_aware(self) -> bool:
        """Whether CUDA device buffers go to MPI directly (else staged through pinned host
        memory); ``cuda_aware_reason`` says why."""
        return self._c.cuda_aware  # type: ignore[no-any-return]

    @property
    def cuda_aware_reason(self) -> str:
        return self._c.cuda_aware_reason  # type: ignore[no-any-return]

    def progress_stats(self) -> dict[str, int]:
        return self._c.progress_stats()  # type: ignore[no-any-return]

    def progress(self) -> bool:
        """Make one pass of the progress engine on this thread: post the communication this
        thread released and test what is outstanding (a wait does this by itself). Call it
        after spawning sends and receives when this thread computes before it waits, so the
        messages go out first. True if anything moved; False on a worker thread, while
        another thread makes a pass, or once the ``with Parla():`` block has ended; raises
        RuntimeError once the communicator is closed."""
        return self._c.progress()  # type: ignore[no-any-return]

    # -- communication tasks ---------------------------------------------------------------
    def send(
        self, data: Any, dest: int, tag: int = 0, *, taskid: Any = None, dependencies: Any = ()
    ) -> Task:
        """Send `data` to rank `dest` (a task that reads it)."""
        return self._spawn("send", data, (dest, tag), taskid, dependencies)

    def recv(
        self, data: Any, source: int, tag: int = 0, *, taskid: Any = None, dependencies: Any = ()
    ) -> Task:
        """Receive exactly `data`'s bytes from rank `source` into it (a task that writes it)."""
        return self._spawn("recv", data, (source, tag), taskid, dependencies)

    def allreduce(
        self, data: Any, op: str = "sum", *, taskid: Any = None, dependencies: Any = ()
    ) -> Task:
        """In-place allreduce of `data` ('sum', 'prod', 'min', 'max') over every rank."""
        return self._spawn("allreduce", data, (_dtype_of(data), op), taskid, dependencies)

    def bcast(
        self, data: Any, root: int = 0, *, taskid: Any = None, dependencies: Any = ()
    ) -> Task:
        """Broadcast `data` from `root` into every rank's `data`."""
        return self._spawn("bcast", data, (root,), taskid, dependencies)

    def barrier(self, *, taskid: Any = None, dependencies: Any = ()) -> Task:
        """A task that completes once every rank's barrier task has started."""
        t, key = self._task(taskid, "barrier")
        h = self._c.barrier(key, self._deps(dependencies))
        return self._bind(t, h)

    def abort(self, message: str, code: int = 1) -> None:
        """Print ``[rank r] message`` and end the whole job (MPI_Abort)."""
        self._c.abort(message, code)

    # -- lifetime --------------------------------------------------------------------------
    def close(self) -> None:
        """Wait for this communicator's tasks and stop its progress thread. Call it before
        the ``with Parla():`` block ends (or use ``with mpi.Comm() as comm:``)."""
        if self._c is not None:
            rt = self._scope.rt
            self._c.close(rt is not None and not rt.closed)
            _live.discard(self)

    def __enter__(self) -> Comm:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers ---------------------------------------------------------------------------
    def _deps(self, dependencies: Any) -> list[Any]:
        return self._scope.handles_of(flatten_tasks(dependencies))  # type: ignore[no-any-return]

    def _task(self, taskid: Any, name: str) -> tuple[Task, Any]:
        scope = self._scope
        if isinstance(taskid, Task):
            key = taskid._handle(scope)
            if key is None:
                raise RuntimeError(f"task {taskid.name} already ran in an earlier Parla runtime")
            return taskid, key
        if taskid is None:
            t = Task(name=name)
            t._scope = scope
            return t, None
        if isinstance(taskid, TaskList):
            raise ValueError(f"taskid= takes one task (T[i]), not a list of {len(taskid)}")
        raise TypeError(f"taskid= takes a TaskSpace element (T[i]), not {taskid!r}")

    def _bind(self, t: Task, h: Any) -> Task:
        t._h = h
        t._scope = self._scope
        return t

    def _spawn(
        self, kind: str, data: Any, args: tuple[Any, ...], taskid: Any, dependencies: Any
    ) -> Task:
        t, key = self._task(taskid, f"mpi.{kind}")
        deps = self._deps(dependencies)
        access = _block_of(data, self._scope)
        if access is not None:
            block, offset, nbytes = access
            h = getattr(self._c, kind)(block, offset, nbytes, *args, key, deps)
        else:
            h = getattr(self._c, kind + "_buffer")(data, *args, key, deps)
        return self._bind(t, h)


def _block_of(data: Any, scope: Any) -> tuple[Any, int, int] | None:
    """(block, offset, bytes) of a PArray or PArray slice; None for a plain buffer."""
    from parla._parray import PArray

    if isinstance(data, PArray):
        if not data._view.flags.c_contiguous:
            raise ValueError(
                "parla.mpi sends and receives contiguous PArrays or slices; this slice is "
                "strided (copy it into a contiguous PArray first)"
            )
        access = data._access(scope)
        if access is None:
            raise ValueError("parla.mpi: an empty PArray has nothing to send or receive")
        return access  # type: ignore[no-any-return]
    return None


def _dtype_of(data: Any) -> str:
    dtype = getattr(data, "dtype", None)
    name = str(dtype) if dtype is not None else "uint8"
    if name not in _DTYPES:
        raise ValueError(f"allreduce supports {', '.join(_DTYPES)} data, not {name}")
    return _DTYPES[name]


@atexit.register
def _close_all() -> None:
    # Registered after mpi4py's own exit handler (imported above), so it runs first: every
    # progress thread stops before MPI_Finalize.
    for comm in list(_live):
        with contextlib.suppress(Exception):  # the runtime may be gone: nothing to wait for
            comm.close()
