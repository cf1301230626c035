"""PArray: an array with a copy per device, moved by the runtime.

A PArray is backed by a core ``DataBlock`` in the runtime that first uses it. Tasks declare
what they read and write (``@spawn(input=[A], output=[B[0]], inout=[C])``); before a task
runs, the runtime copies every input to the task's device and invalidates stale copies, and
it orders tasks that touch overlapping data (reader after writer, writer after readers) in
spawn order. Inside the body, ``A.array`` is the copy on the task's device: a NumPy array on
the cpu and on simulated GPUs (their memory is host memory), a CuPy array on CUDA GPUs.

Slices (``A[0]``, ``A[2:4]``, ``A[:, 1]``) are PArrays over part of the same data; disjoint
row slices of a C-ordered array are independent byte ranges, so tasks on different slices
run in parallel and move only their part.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

try:
    from numpy.lib.array_utils import byte_bounds  # NumPy >= 2.0
except ImportError:  # pragma: no cover - NumPy 1.x
    from numpy import byte_bounds  # type: ignore[attr-defined,no-redef]

from parla import _core
from parla._arrays import cupy_module, is_cupy_array

__all__ = ["PArray", "array", "asarray", "asarray_batch", "data_accesses"]


class _Storage:
    """The data of a PArray and of all its slices: a host array until a runtime uses it, then
    a DataBlock of that runtime (a later runtime gets a new block holding the final
    contents of the previous one)."""

    __slots__ = (
        "block",
        "dtype",
        "name",
        "nbytes",
        "owner",
        "pending",
        "scope",
        "shape",
        "template",
    )

    def __init__(self, data: np.ndarray, name: str, owner: Any):
        self.owner = owner  # the task that made it (its local data until a spawn uses it)
        self.pending: np.ndarray | None = data
        self.dtype = data.dtype
        self.shape = data.shape
        self.nbytes = data.nbytes
        self.name = name
        self.block: Any = None
        self.scope: Any = None
        # Address arithmetic only (never read): C-ordered strides over a 1-element buffer.
        strides = np.empty((0,), dtype=data.dtype).strides if data.ndim == 0 else _c_strides(data)
        self.template = as_strided(
            np.zeros(1, dtype=data.dtype), data.shape, strides, writeable=False
        )

    def bind(self, scope: Any) -> Any:
        """This storage's block in `scope`'s runtime, made (and filled) on first use."""
        if self.scope is scope:
            return self.block
        if self.block is not None:
            if not self.scope.rt.closed:
                raise RuntimeError(
                    f"PArray {self.name} is used by another Parla runtime that is still open; "
                    "a PArray belongs to one runtime at a time"
                )
            data = self.host_copy()
        else:
            data = self.pending
        block = _core.DataBlock(scope.rt, max(self.nbytes, 1), self.name)
        if self.nbytes:
            host = np.frombuffer(block.host_memory(), dtype=np.uint8, count=self.nbytes)
            host[:] = np.ascontiguousarray(data).reshape(-1).view(np.uint8)
        self.block, self.scope, self.pending = block, scope, None
        return block

    def host_copy(self) -> np.ndarray:
        """The current contents, as a new host array (waits for tasks writing it)."""
        if self.block is None:
            assert self.pending is not None
            return self.pending.copy()
        if not self.scope.rt.closed:
            self.block.sync_to_host(self.scope.rt)
        mem = self.block.host_memory()
        return (
            np.frombuffer(mem, dtype=self.dtype, count=int(np.prod(self.shape)))
            .reshape(self.shape)
            .copy()
        )


def _c_strides(data: np.ndarray) -> tuple[int, ...]:
    strides, step = [], data.itemsize
    for n in reversed(data.shape):
        strides.append(step)
        step *= max(n, 1)
    return tuple(reversed(strides))


class PArray:
    """An array managed by the runtime; see the module documentation. Make one with
    ``parray.asarray(numpy_or_cupy_array)``."""

    __slots__ = ("_len", "_lo", "_offset", "_storage", "_view")

    def __init__(self, storage: _Storage, view: np.ndarray):
        self._storage = storage
        self._view = view  # the slice of storage.template this PArray covers
        base = storage.template.__array_interface__["data"][0]
        if view.size:
            lo, hi = byte_bounds(view)
        else:
            lo = hi = view.__array_interface__["data"][0]
        self._lo = lo - base  # covered byte range [lo, lo + len) of the storage
        self._len = hi - lo
        self._offset = view.__array_interface__["data"][0] - lo  # first element within it

    # -- description -----------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self._view.shape  # type: ignore[no-any-return]

    @property
    def dtype(self) -> np.dtype[Any]:
        return self._view.dtype

    @property
    def ndim(self) -> int:
        return self._view.ndim

    @property
    def size(self) -> int:
        return self._view.size

    @property
    def nbytes(self) -> int:
        return self._view.nbytes

    @property
    def name(self) -> str:
        return self._storage.name

    def __len__(self) -> int:
        return len(self._view)

    # -- the copy on the current device ----------------------------------------------------
    @property
    def array(self) -> Any:
        """Inside a task: the copy on the task's device (the task must declare the PArray
        in input/output/inout). Outside tasks: the current contents, as a new host array."""
        from parla._scope import get_current_task

        storage = self._storage
        task = get_current_task()
        if task is None or storage.block is None or storage.scope is not task._scope:
            if task is not None and storage.block is None:
                if storage.owner is not task:
                    raise RuntimeError(
                        f"PArray {self.name} is used by task {task.name}, which did not "
                        "declare it; add it to the task's input, output or inout"
                    )
                return self._on(storage.pending)  # a PArray local to this task
            return self._on(storage.host_copy())
        if self._len == 0:
            return np.empty(self.shape, self.dtype)
        address, memory = _core.task_data(storage.block, self._lo, self._len)
        if memory is not None:
            return np.ndarray(
                self.shape,
                self.dtype,
                buffer=memory,
                offset=self._offset,
                strides=self._view.strides,
            )
        cupy = cupy_module()
        if cupy is None:
            raise RuntimeError(f"PArray {self.name} is on a CUDA GPU, but CuPy is not installed")
        mem = cupy.cuda.UnownedMemory(address, self._len, self)
        ptr = cupy.cuda.MemoryPointer(mem, self._offset)
        return cupy.ndarray(self.shape, self.dtype, ptr, strides=self._view.strides)

    def _on(self, whole: Any) -> Any:
        """This PArray's part of an array holding the whole storage."""
        if self._view is self._storage.template:
            return whole
        flat = whole.reshape(-1).view(np.uint8)
        return np.ndarray(
            self.shape,
            self.dtype,
            buffer=flat,
            offset=self._lo + self._offset,
            strides=self._view.strides,
        )

    def update(self, value: Any) -> None:
        """Overwrites the contents on the current device with `value` (same shape)."""
        _assign(self.array, (Ellipsis,), value)

    def get(self) -> Any:
        return self.array

    # -- slicing ---------------------------------------------------------------------------
    def _sub(self, index: Any) -> tuple[PArray, bool]:
        """The PArray over `index`, and whether `index` picks a single element (then the
        PArray is 0-d): element reads and writes touch only that element's bytes."""
        view = self._view[index]
        if isinstance(view, np.ndarray):
            return PArray(self._storage, view), False
        key = index if isinstance(index, tuple) else (index,)
        return PArray(self._storage, self._view[(*key, Ellipsis)]), True

    def __getitem__(self, index: Any) -> Any:
        sub, element = self._sub(index)
        return sub.array[()] if element else sub

    def __setitem__(self, index: Any, value: Any) -> None:
        sub, _ = self._sub(index)
        _assign(sub.array, (Ellipsis,), value)

    # -- NumPy interoperability ------------------------------------------------------------
    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        a = self.array
        if is_cupy_array(a):
            a = a.get()
        return np.asarray(a, dtype=dtype)

    def _binary(self, other: Any, op: Any) -> PArray:
        b = other.array if isinstance(other, PArray) else other
        return asarray(op(self.array, b))

    def __add__(self, other: Any) -> PArray:
        return self._binary(other, operator.add)

    def __sub__(self, other: Any) -> PArray:
        return self._binary(other, operator.sub)

    def __mul__(self, other: Any) -> PArray:
        return self._binary(other, operator.mul)

    def __truediv__(self, other: Any) -> PArray:
        return self._binary(other, operator.truediv)

    def __matmul__(self, other: Any) -> PArray:
        return self._binary(other, operator.matmul)

    __radd__ = __add__
    __rmul__ = __mul__

    def __repr__(self) -> str:
        return f"PArray({self.array!r})"

    def __str__(self) -> str:
        return str(self.array)

    # -- hooks used by spawn and clone_here ------------------------------------------------
    def _access(self, scope: Any) -> tuple[Any, int, int] | None:
        if self._len == 0:
            return None
        return (self._storage.bind(scope), self._lo, self._len)

    def _parla_placement(self) -> tuple[int, int]:
        """The device with the newest copy (a GPU whose copy is the only valid one), else
        the cpu: `placement=[A]` runs the task where A is."""
        storage = self._storage
        if storage.block is not None and not storage.scope.rt.closed and self._len:
            scope = storage.scope
            for dev_id, device in enumerate(scope.devices):
                if dev_id and storage.block.coherence(scope.rt, dev_id, self._lo) == "modified":
                    return device._spec  # type: ignore[no-any-return]
        return (0, 0)

    def _parla_clone_here(self) -> Any:
        from parla._arrays import clone_here

        return clone_here(self.array)


def _assign(target: Any, index: Any, value: Any) -> None:
    if isinstance(value, PArray):
        value = value.array
    if is_cupy_array(target) and not is_cupy_array(value):
        value = cupy_module().asarray(value)
    elif is_cupy_array(value) and not is_cupy_array(target):
        value = value.get()
    target[index] = value


_counter = 0


def asarray(data: Any, name: str | None = None) -> PArray:
    """A PArray holding `data` (a NumPy or CuPy array, or anything np.asarray takes). The
    data are copied into the runtime's storage when a task first uses the PArray."""
    global _counter
    if isinstance(data, PArray):
        return data
    host = data.get() if is_cupy_array(data) else np.array(data, copy=True, order="C")
    if name is None:
        _counter += 1
        name = f"parray{_counter}"
    from parla._scope import get_current_task

    storage = _Storage(host, name, get_current_task())
    return PArray(storage, storage.template)


array = asarray


def asarray_batch(*arrays: Any) -> Any:
    """asarray applied to each array of (nested) lists or tuples, keeping their structure."""

    def convert(x: Any) -> Any:
        if isinstance(x, (list, tuple)):
            return type(x)(convert(y) for y in x)
        return asarray(x)

    return convert(arrays[0] if len(arrays) == 1 else list(arrays))


def data_accesses(scope: Any, input: Any, output: Any, inout: Any) -> tuple[list[Any], ...]:
    """The core's access lists of a spawn: PArrays (or Parla's `(PArray, device index)`
    pairs) -> `(block, offset, bytes)`."""

    def convert(items: Any) -> list[Any]:
        out: list[Any] = []
        for item in items or ():
            if isinstance(item, tuple) and item and isinstance(item[0], PArray):
                item = item[0]
            if isinstance(item, (list, tuple)):
                out.extend(convert(item))
                continue
            if not isinstance(item, PArray):
                raise TypeError(
                    "input/output/inout take PArrays (parray.asarray(...)), "
                    f"not {type(item).__name__}"
                )
            access = item._access(scope)
            if access is not None:
                out.append(access)
        return out

    return convert(input), convert(output), convert(inout)
