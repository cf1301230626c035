"""DistArray: the Python face of ``parla::mpi::DistArray`` (see parla.crosspy)."""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Sequence
from typing import Any, Callable

import numpy as np

from parla import _core
from parla._scope import AwaitRequest, _run, current_scope
from parla._tasks import Task, TaskCollection, TaskSpace
from parla.crosspy._options import build_options, check_dtype
from parla.devices import CPU_KIND, cpu, gpu

__all__ = ["DistArray", "Future", "Partition", "Tile", "comm_for"]

_REGIONS = ("all", "interior", "boundary", "split")
_live_arrays: weakref.WeakSet[DistArray] = weakref.WeakSet()
_comms: list[tuple[Any, Any, Any]] = []  # (scope, mpi4py communicator, parla.mpi.Comm)
_comms_lock = threading.Lock()


# ---- communicators ---------------------------------------------------------------------------


def comm_for(comm: Any, scope: Any) -> Any:
    """The parla.mpi.Comm to build arrays on: `comm` itself if it is one, else one per
    (Parla scope, mpi4py communicator), made on first use (the runtime works on a duplicate)
    and closed when the scope ends, after the scope's arrays."""
    from mpi4py import MPI

    from parla import mpi

    _watch(scope)
    if isinstance(comm, mpi.Comm):
        return comm
    app = MPI.COMM_WORLD if comm is None else comm
    with _comms_lock:
        for s, a, c in _comms:
            if s is scope and a == app:
                return c
    made = mpi.Comm(app)
    with _comms_lock:
        _comms.append((scope, app, made))
    return made


def _watch(scope: Any) -> None:
    """Arrange for the scope's arrays and communicators to close when it ends: a
    communicator must not outlive its runtime, and an array not its communicator."""
    if not getattr(scope, "_crosspy_watched", False):
        scope._crosspy_watched = True
        scope.at_exit(lambda: _end_scope(scope))


def _end_scope(scope: Any) -> None:
    for array in list(_live_arrays):
        if array._scope is scope:
            array.close()
    with _comms_lock:
        mine = [entry for entry in _comms if entry[0] is scope]
        for entry in mine:
            _comms.remove(entry)
    for _, _, comm in mine:
        comm.close()


# ---- futures ---------------------------------------------------------------------------------


class Future(TaskCollection):
    """A reduction in flight: ``result()`` (or ``wait()``) blocks, ``await f`` inside an
    ``async def`` task body does not hold a thread, and a Future is a dependency like a
    task (``@spawn(dependencies=[f])``)."""

    __slots__ = ("_convert", "_f")

    def __init__(self, core: Any, scope: Any, convert: Callable[[float], Any]):
        task = Task(name="reduction")
        task._h = core.task
        task._scope = scope
        super().__init__([task])
        self._f = core
        self._convert = convert

    @property
    def done(self) -> bool:
        return bool(self._f.done)

    def result(self) -> Any:
        """The value (waits, with the GIL released, helping to run tasks)."""
        return self._convert(self._f.get())

    def wait(self) -> Any:  # type: ignore[override]
        return self.result()

    def __await__(self) -> Any:
        yield AwaitRequest(list(self.tasks))
        return self.result()

    def __repr__(self) -> str:
        return f"Future({'done' if self.done else 'pending'})"


# ---- tiles: what a map body sees -------------------------------------------------------------


class Tile:
    """One array's part of a ``map`` task: the cells of one box of one partition.

    - ``interior``: the box's owned cells (a NumPy array on the cpu and simulated GPUs, a
      CuPy array on CUDA GPUs; a view, zero-copy; write results here or return them);
    - ``ghosted``: the box grown by the array's ghost width on every side (what a stencil
      reads: ``ghosted[1:-1, 1:-1]`` is ``interior`` for width 1);
    - ``block``: the partition's whole ghosted buffer;
    - ``box``: the global index of ``interior`` (a tuple of slices);
    - ``device``, ``partition``.

    A Tile passes for its interior array: ``np.asarray(t)``, ``__array_interface__``,
    ``__cuda_array_interface__`` and ``__dlpack__`` all give ``interior``.
    """

    __slots__ = ("_hi", "_lo", "block", "box", "device", "ghosts", "partition")

    def __init__(
        self,
        block: Any,
        ghosts: tuple[int, ...],
        lo: tuple[int, ...],
        hi: tuple[int, ...],
        offset: Sequence[int],
        device: Any,
        partition: int,
    ):
        self.block = block
        self.ghosts = ghosts
        self._lo = lo
        self._hi = hi
        self.box = tuple(slice(o + a, o + b) for o, a, b in zip(offset, lo, hi))
        self.device = device
        self.partition = partition

    @property
    def interior(self) -> Any:
        zipped = zip(self.ghosts, self._lo, self._hi)
        return self.block[tuple(slice(g + a, g + b) for g, a, b in zipped)]

    @property
    def ghosted(self) -> Any:
        zipped = zip(self.ghosts, self._lo, self._hi)
        return self.block[tuple(slice(a, b + 2 * g) for g, a, b in zipped)]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(b - a for a, b in zip(self._lo, self._hi))

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        a = self.interior
        if hasattr(a, "get") and not isinstance(a, np.ndarray):
            a = a.get()
        return np.asarray(a, dtype=dtype)

    @property
    def __array_interface__(self) -> dict[str, Any]:
        a = self.interior
        if not isinstance(a, np.ndarray):
            raise AttributeError("__array_interface__: this tile is on a CUDA GPU")
        return a.__array_interface__  # type: ignore[no-any-return]

    @property
    def __cuda_array_interface__(self) -> dict[str, Any]:
        a = self.interior
        if isinstance(a, np.ndarray):
            raise AttributeError("__cuda_array_interface__: this tile is in host memory")
        return a.__cuda_array_interface__  # type: ignore[no-any-return]

    def __dlpack__(self, **kwargs: Any) -> Any:
        return self.interior.__dlpack__(**kwargs)

    def __dlpack_device__(self) -> Any:
        return self.interior.__dlpack_device__()

    def __repr__(self) -> str:
        return f"Tile(box={_box_str(self.box)}, device={self.device}, partition={self.partition})"


def _box_str(box: tuple[slice, ...]) -> str:
    return "[" + ", ".join(f"{s.start}:{s.stop}" for s in box) + "]"


# ---- partitions: host views outside tasks ----------------------------------------------------


class Partition(_core.crosspy.Partition):  # type: ignore[misc,name-defined]
    """One partition of this rank: its ghosted block, seen from outside tasks.

    The buffer protocol, ``__array_interface__`` and ``__dlpack__`` give the ghosted block's
    host copy, zero-copy, once the array's tasks are done (they wait for them). It is
    writable for cpu partitions (no task may run on the array meanwhile), read-only for GPU
    partitions, whose newest copy is on the device. ``interior`` and ``ghosted`` are NumPy
    views of it; ``box`` is the global index of the owned cells.
    """

    def __init__(self, array: DistArray, info: dict[str, Any]):
        kind, index = info["device"]
        device = cpu(index) if kind == CPU_KIND else gpu(index)
        super().__init__(array._a, info["local_index"], array._scope.rt, kind == CPU_KIND)
        self.array = array
        self.index = int(info["local_index"])
        self.global_index = int(info["global_index"])
        self.coords = tuple(info["coords"])
        self.device = device
        self.offset = tuple(int(o) for o in info["offset"])
        self.extent = tuple(int(e) for e in info["extent"])
        self.ghosted_extent = tuple(int(e) for e in info["ghosted_extent"])
        self.ghosts = tuple(int(g) for g in info["ghosts"])
        self.box = tuple(slice(o, o + e) for o, e in zip(self.offset, self.extent))

    @property
    def ghosted(self) -> np.ndarray:
        """The whole ghosted block (host copy, zero-copy)."""
        return np.asarray(memoryview(self))

    @property
    def interior(self) -> np.ndarray:
        """The owned cells (host copy, zero-copy)."""
        return self.ghosted[tuple(slice(g, g + e) for g, e in zip(self.ghosts, self.extent))]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        a = self.ghosted
        return np.array(a, dtype=dtype) if copy else np.asarray(a, dtype=dtype)

    @property
    def __array_interface__(self) -> dict[str, Any]:
        return self.ghosted.__array_interface__  # type: ignore[no-any-return]

    def __dlpack__(self, **kwargs: Any) -> Any:
        return self.ghosted.__dlpack__(**kwargs)

    def __dlpack_device__(self) -> Any:
        return self.ghosted.__dlpack_device__()

    def __repr__(self) -> str:
        return (
            f"Partition({self.array.name}, {self.index}, box={_box_str(self.box)}, "
            f"ghosts={self.ghosts}, device={self.device})"
        )


# ---- the array -------------------------------------------------------------------------------


class _ArraySpace(TaskSpace):
    """The TaskSpace of an array operation (a core space of the array's tasks). Its Task
    objects are made the first time they are used: most callers only wait for the space or
    pass it on as a dependency, and an exchange every step should not build Python objects
    that nothing reads."""

    def __init__(self, scope: Any, name: str, core: Any):
        # TaskSpace.__init__'s fields, set directly (one of these per exchange, every step),
        # all but _tasks, made on first use (the cached property below).
        self._name = name
        self._create = True
        self.shape = None
        self.start = None
        self._core = core
        self._core_scope = scope

    @functools.cached_property
    def _tasks(self) -> dict[tuple[Any, ...], Task]:
        tasks: dict[tuple[Any, ...], Task] = {}
        for key, handle in _core.crosspy.space_elements(self._core):
            t = Task(self, tuple(key))
            t._h = handle
            t._scope = self._core_scope
            tasks[tuple(key)] = t
        # Two threads looking first at once: both get the dict stored first.
        return self.__dict__.setdefault("_tasks", tasks)  # type: ignore[no-any-return]

    def wait(self) -> None:
        if "_tasks" not in self.__dict__ and current_scope() is self._core_scope:
            self._core_scope.rt.wait_space(self._core)  # no Task objects needed
            return
        super().wait()

    @property
    def view(self) -> TaskSpace:
        v = TaskSpace(self._name, create=False, shape=self.shape, start=self.start)
        v._tasks = self._tasks
        return v


class DistArray:
    """A distributed array: a global shape (1-3 D) over a Cartesian grid of ranks, each
    rank's block split across its devices into partitions with ghost layers. Made by
    ``zeros``/``ones``/``empty``/``full``/``from_global``/``array``/``load``; see
    parla.crosspy. Operations spawn tasks and return their TaskSpace at once; reductions,
    ``gather``, ``save`` and ``np.asarray(x)`` wait."""

    def __init__(self, core: Any, comm: Any, scope: Any):
        self._a = core
        self._comm = comm
        self._scope = scope
        self._parts: list[Partition] | None = None
        self._infos: list[dict[str, Any]] = core.partitions()
        self._dtype = np.dtype(core.dtype)
        self._shape = tuple(int(n) for n in core.shape)
        self._ghosts = tuple(int(g) for g in core.ghosts)
        self._halo_name = f"{core.name}.halo"
        _live_arrays.add(self)

    # -- description -----------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self._shape

    @property
    def dtype(self) -> np.dtype[Any]:
        return self._dtype

    @property
    def ndim(self) -> int:
        return len(self._shape)

    @property
    def size(self) -> int:
        return int(np.prod(self._shape))

    @property
    def nbytes(self) -> int:
        return self.size * self._dtype.itemsize

    def __len__(self) -> int:
        return self._shape[0]

    @property
    def ghosts(self) -> tuple[int, ...]:
        """Ghost width per axis."""
        return self._ghosts

    @property
    def grid(self) -> tuple[int, ...]:
        """Ranks per axis."""
        return tuple(self._core.grid)

    @property
    def coords(self) -> tuple[int, ...]:
        """This rank's position in the grid."""
        return tuple(self._core.coords)

    @property
    def boundary(self) -> Any:
        kind = self._core.boundary
        return ("constant", self._core.boundary_value) if kind == "constant" else kind

    @property
    def stencil(self) -> str:
        return self._core.stencil  # type: ignore[no-any-return]

    @property
    def name(self) -> str:
        return self._core.name  # type: ignore[no-any-return]

    @property
    def comm(self) -> Any:
        """The parla.mpi.Comm the array communicates on."""
        return self._comm

    @property
    def splits(self) -> list[list[int]]:
        """Per axis, the ownership points of the ranks (grid[d] + 1 of them)."""
        return [list(s) for s in self._core.splits]

    @property
    def partition_bounds(self) -> list[list[int]]:
        """Per axis, the boundaries of all partitions (device splits included)."""
        return [list(s) for s in self._core.partition_bounds]

    @property
    def devices(self) -> list[Any]:
        """The devices of this rank's partitions, in order."""
        return [p.device for p in self.partitions]

    @property
    def device_axis(self) -> int:
        return self._core.device_axis  # type: ignore[no-any-return]

    @property
    def partitions(self) -> list[Partition]:
        """This rank's partitions."""
        if self._parts is None:
            self._parts = [Partition(self, info) for info in self._infos]
        return self._parts

    @property
    def local_box(self) -> tuple[slice, ...]:
        """The global index of this rank's block."""
        pts = self.splits
        return tuple(slice(pts[d][c], pts[d][c + 1]) for d, c in enumerate(self.coords))

    def describe_halo_plan(self) -> str:
        """One line per halo of this rank: partition, direction, route, peer, boxes."""
        return self._core.describe_halo_plan()  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        if self._a is None:
            return "DistArray(closed)"
        return (
            f"DistArray({self.name}, shape={self.shape}, dtype={self.dtype}, grid={self.grid}, "
            f"ghosts={self.ghosts}, boundary={self.boundary!r}, stencil={self.stencil!r}, "
            f"devices={self.devices})"
        )

    @property
    def _core(self) -> Any:
        if self._a is None:
            raise RuntimeError("this distributed array was closed")
        return self._a

    # -- tasks -----------------------------------------------------------------------------
    def exchange_halos(self) -> TaskSpace:
        """Spawn one halo exchange (pack -> copy or send/receive -> unpack tasks, from the
        plan built with the array) and return its TaskSpace. The array's own operations that
        read ghost cells already depend on it; interior updates do not."""
        return _ArraySpace(self._scope, self._halo_name, self._core.exchange_halos())

    def map(
        self,
        fn: Callable[..., Any],
        *others: DistArray,
        out: DistArray | None = None,
        region: str = "all",
        halo: bool = True,
        name: str | None = None,
    ) -> TaskSpace:
        """Spawn one task per partition (two for ``region='split'``) on its device, running
        ``fn(tile, *other_tiles)``: a :class:`Tile` of this array and of each of ``others``
        for each box of the region (the whole partition for ``'all'``; the owned cells
        away from the faces for ``'interior'``; the band next to the faces for
        ``'boundary'``, up to 2·ndim boxes; both, as an interior task that does not wait
        for the halo exchange and a boundary task that does, for ``'split'``).

        What ``fn`` returns (if not None) is stored in the box's cells of ``out``, or of
        this array when there is no ``out``; ``fn`` may also write the tiles of the written
        array in place (``tile.interior[...] = ...``). Every array must have
        the same shape, grid, partitions and devices. ``halo=False``: the tasks do not read
        ghost cells (no wait for the last exchange). Returns the tasks' TaskSpace."""
        if region not in _REGIONS:
            raise ValueError(f"region must be one of {', '.join(_REGIONS)}, not {region!r}")
        operands = [self, *others]
        for k, other in enumerate(operands + ([out] if out is not None else [])):
            if not isinstance(other, DistArray):
                raise TypeError(f"map: operand {k} is a {type(other).__name__}, not a DistArray")
            self._check_conformable(other, "map")
        # Each array is declared once: read, or read-write if it is written.
        arrays: list[DistArray] = []
        for a in [*operands, *([out] if out is not None else [])]:
            if all(a is not b for b in arrays):
                arrays.append(a)
        written = out if out is not None else self
        modes = ["readwrite" if a is written else "read" for a in arrays]
        # Arrays the body reads with their ghost cells wait for their last exchange.
        ghosts = [halo and any(a.ghosts) and any(a is b for b in operands) for a in arrays]
        slot = [next(i for i, b in enumerate(arrays) if b is a) for a in operands]
        out_slot = next(i for i, b in enumerate(arrays) if b is written)
        geometry = [a._infos for a in arrays]
        dtypes = [a.dtype for a in arrays]
        scope = self._scope
        devices = scope.devices
        label = name or getattr(fn, "__name__", "map")
        task = Task(name=f"{self.name}.{label}")
        task._scope = scope

        def callback(
            p: int, boxes: list[Any], pointers: list[Any], interior: bool, dev: int
        ) -> None:
            def body() -> None:
                blocks = [
                    _view(pointers[i], geometry[i][p], dtypes[i], devices[dev])
                    for i in range(len(arrays))
                ]
                for lo, hi in boxes:
                    tiles = [
                        Tile(blocks[i], tuple(geometry[i][p]["ghosts"]), lo, hi,
                             geometry[i][p]["offset"], devices[dev], p)
                        for i in range(len(arrays))
                    ]
                    result = fn(*(tiles[i] for i in slot))
                    if result is not None:
                        target = tiles[out_slot].interior
                        target[...] = result

            _run(task, body, (dev,), None)

        core = self._core.for_each(
            [a._core for a in arrays], modes, ghosts, region, callback, f"{self.name}.{label}"
        )
        return _ArraySpace(scope, f"{self.name}.{label}", core)

    for_each = map

    def fill(self, value: Any) -> TaskSpace:
        """Set every owned cell to `value` (tasks; ghost cells are untouched)."""
        return _ArraySpace(self._scope, f"{self.name}.fill", self._core.fill(float(value)))

    def assign(self, other: DistArray) -> TaskSpace:
        """Copy `other`'s owned cells into this array's (tasks; same shape and dtype)."""
        self._check_conformable(other, "assign")
        if other.dtype != self.dtype:
            raise TypeError(f"assign: dtypes differ ({self.dtype} and {other.dtype})")
        return _ArraySpace(self._scope, f"{self.name}.copy", self._core.copy_from(other._core))

    def copy(self) -> DistArray:
        """A new array like this one with the same owned cells."""
        y = empty_like(self)
        y.assign(self)
        return y

    def wait(self) -> None:
        """Wait for every task of the array spawned so far (GIL released)."""
        self._core.wait()

    # -- reductions ------------------------------------------------------------------------
    def _reduce(self, op: str, other: DistArray | None, non_blocking: bool) -> Any:
        if other is not None:
            if not isinstance(other, DistArray):
                raise TypeError(f"dot takes a DistArray, not {type(other).__name__}")
            self._check_conformable(other, "dot")
        integer = self.dtype.kind == "i" and op in ("sum", "min", "max") and other is None
        convert: Callable[[float], Any] = _to_int if integer else float
        f = Future(self._core.reduce_async(op, None if other is None else other._core),
                   self._scope, convert)
        return f if non_blocking else f.result()

    def sum(self, non_blocking: bool = False) -> Any:
        """Sum of every element (int for integer arrays; a Future if non_blocking)."""
        return self._reduce("sum", None, non_blocking)

    def min(self, non_blocking: bool = False) -> Any:
        return self._reduce("min", None, non_blocking)

    def max(self, non_blocking: bool = False) -> Any:
        return self._reduce("max", None, non_blocking)

    def norm2(self, non_blocking: bool = False) -> Any:
        """Euclidean norm (sqrt of the sum of squares), as a float."""
        return self._reduce("norm2", None, non_blocking)

    def dot(self, other: DistArray, non_blocking: bool = False) -> Any:
        """Sum of the elementwise products with `other`, as a float."""
        return self._reduce("dot", other, non_blocking)

    def sum_async(self) -> Future:
        return self._reduce("sum", None, True)  # type: ignore[no-any-return]

    def min_async(self) -> Future:
        return self._reduce("min", None, True)  # type: ignore[no-any-return]

    def max_async(self) -> Future:
        return self._reduce("max", None, True)  # type: ignore[no-any-return]

    def norm2_async(self) -> Future:
        return self._reduce("norm2", None, True)  # type: ignore[no-any-return]

    def dot_async(self, other: DistArray) -> Future:
        return self._reduce("dot", other, True)  # type: ignore[no-any-return]

    # -- redistribution and I/O ------------------------------------------------------------
    def gather(self, root: int = 0) -> np.ndarray | None:
        """The global array as a NumPy array on rank `root`, None elsewhere (collective)."""
        data = self._core.gather(root)
        if self._comm.rank != root:
            return None
        return data.view(self.dtype).reshape(self.shape)  # type: ignore[no-any-return]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        """The global array on every rank (collective: every rank must call it)."""
        data = self._core.gather_all().view(self.dtype).reshape(self.shape)
        return data if dtype is None else data.astype(dtype)  # type: ignore[no-any-return]

    def local(self, partition: int = 0, ghosts: bool = False) -> np.ndarray:
        """A host copy of one of this rank's partitions (owned cells, or the ghosted block)."""
        part = self._infos[partition]
        shape = part["ghosted_extent"] if ghosts else part["extent"]
        data = self._core.local_copy(partition, ghosts)
        return data.view(self.dtype).reshape(tuple(shape))  # type: ignore[no-any-return]

    def save(self, path: str) -> None:
        """Write the global array to `path` (collective MPI-IO; a small header holds dtype
        and shape, so ``xp.load`` reads it back at any rank count and grid)."""
        self._core.save(str(path))

    # -- lifetime --------------------------------------------------------------------------
    def close(self) -> None:
        """Drop this handle (tasks already spawned still complete). Arrays are closed
        anyway when their ``with Parla():`` block ends."""
        if self._a is not None:
            a, self._a = self._a, None
            self._parts = None
            _live_arrays.discard(self)
            a.close()

    def __enter__(self) -> DistArray:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- checks ----------------------------------------------------------------------------
    def _check_conformable(self, other: DistArray, what: str) -> None:
        if other.shape != self.shape:
            raise ValueError(
                f"{what}: arrays of shapes {self.shape} and {other.shape} do not match"
            )
        if other._a is None:
            raise RuntimeError(f"{what}: {other.name if other._a else 'an array'} was closed")
        if other is self:
            return
        if other.grid != self.grid or other.partition_bounds != self.partition_bounds:
            raise ValueError(
                f"{what}: {self.name} and {other.name} are distributed differently (grids "
                f"{self.grid} and {other.grid}, partition bounds {self.partition_bounds} and "
                f"{other.partition_bounds}); make one with xp.empty_like(other)"
            )
        if other.devices != self.devices:
            raise ValueError(
                f"{what}: {self.name} is on {self.devices} but {other.name} on {other.devices}"
            )


def _to_int(value: float) -> int:
    return round(value)


def _view(pointer: tuple[int, Any], info: dict[str, Any], dtype: np.dtype[Any], device: Any) -> Any:
    """The ghosted block of a partition on the task's device, zero-copy."""
    address, memory = pointer
    shape = tuple(info["ghosted_extent"])
    if memory is not None:
        return np.ndarray(shape, dtype, buffer=memory)
    from parla._arrays import cupy_module

    cupy = cupy_module()
    if cupy is None:
        raise RuntimeError(f"a partition is on CUDA {device}, but CuPy is not installed")
    nbytes = int(np.prod(shape)) * dtype.itemsize
    mem = cupy.cuda.UnownedMemory(address, nbytes, None, device.index)
    return cupy.ndarray(shape, dtype, cupy.cuda.MemoryPointer(mem, 0))


# ---- constructors ----------------------------------------------------------------------------


def _scope() -> Any:
    return current_scope()


def _make(kind: str, shape: Any, dtype: Any, comm: Any, data: Any = None, root: int = 0,
          **kw: Any) -> DistArray:
    scope = _scope()
    c = comm_for(comm, scope)
    options = build_options(shape, dtype, comm_size=c.size, scope=scope, **kw)
    if kind == "zeros":
        core = _translate(lambda: _core.crosspy.DistArray.create(scope.rt, c._c, options))
    else:
        core = _translate(
            lambda: _core.crosspy.DistArray.from_global(scope.rt, c._c, options, data, root)
        )
    return DistArray(core, c, scope)


def _translate(make: Callable[[], Any]) -> Any:
    """Option errors the C++ side finds (ghost wider than a partition, ...) as ValueError."""
    try:
        return make()
    except _core.TaskError:
        raise
    except _core.ParlaError as e:
        raise ValueError(str(e)) from None


def zeros(shape: Any, dtype: Any = np.float64, *, comm: Any = None, **kw: Any) -> DistArray:
    """A distributed array of zeros (ghost cells too; ``('constant', v)`` ghosts hold v).

    ``grid`` (ranks per axis; default ``MPI.Compute_dims``), ``splits`` (per axis, None or
    the block size of each rank), ``ghosts`` (int or per axis), ``boundary`` ('none',
    'periodic', ('constant', v)), ``stencil`` ('star', 'box'), ``devices`` (this rank's
    devices, e.g. ``[cpu(0), gpu(0), gpu(1)]``; a device may repeat), ``axis`` (along which
    the rank's block is split across them), ``device_splits`` (sizes per device), ``name``,
    ``comm`` (an mpi4py communicator or a parla.mpi.Comm; default COMM_WORLD)."""
    return _make("zeros", shape, dtype, comm, **kw)


def empty(shape: Any, dtype: Any = np.float64, *, comm: Any = None, **kw: Any) -> DistArray:
    """Same as zeros (the runtime's blocks start zeroed)."""
    return zeros(shape, dtype, comm=comm, **kw)


def full(shape: Any, fill_value: Any, dtype: Any = np.float64, *, comm: Any = None,
         **kw: Any) -> DistArray:
    """A distributed array with every owned cell `fill_value` (a fill task per partition)."""
    x = zeros(shape, dtype, comm=comm, **kw)
    x.fill(fill_value)
    return x


def ones(shape: Any, dtype: Any = np.float64, *, comm: Any = None, **kw: Any) -> DistArray:
    return full(shape, 1, dtype, comm=comm, **kw)


def from_global(a: Any, root: int = 0, *, shape: Any = None, dtype: Any = None,
                comm: Any = None, **kw: Any) -> DistArray:
    """Scatter the NumPy array `a`, held by rank `root` (others pass None and give
    ``shape=``, ``dtype=``, or receive them from root), into a new distributed array."""
    scope = _scope()
    c = comm_for(comm, scope)
    if c.rank == root:
        if a is None:
            raise ValueError(f"from_global: rank {root} (the root) must pass the array")
        host = np.asarray(a)
        if dtype is None:
            dtype = host.dtype
        check_dtype(dtype)
        host = np.ascontiguousarray(host, dtype=dtype)
        if shape is not None and tuple(shape) != host.shape:
            raise ValueError(f"from_global: shape={tuple(shape)} but the array is {host.shape}")
        shape = host.shape
    else:
        host = None
    # Always (collective): non-root ranks may leave out shape and dtype.
    got_shape, got_dtype = _bcast_meta(c, shape, dtype, root)
    if c.rank != root:
        if shape is not None and tuple(shape) != got_shape:
            raise ValueError(
                f"from_global: rank {c.rank} passed shape={tuple(shape)} but the root's array "
                f"is {got_shape}"
            )
        shape, dtype = got_shape, got_dtype
    return _make("from_global", shape, dtype, c, data=host, root=root, **kw)


def _bcast_meta(c: Any, shape: Any, dtype: Any, root: int) -> tuple[tuple[int, ...], str]:
    """Root's shape and dtype, broadcast over the runtime's communicator."""
    from parla.crosspy._options import DTYPES

    meta = np.zeros(5, dtype=np.int64)
    if c.rank == root:
        meta[0] = len(shape)
        meta[1 : 1 + len(shape)] = shape
        meta[4] = DTYPES.index(np.dtype(dtype).name)
    c.bcast(meta, root=root).wait()
    return tuple(int(n) for n in meta[1 : 1 + int(meta[0])]), DTYPES[int(meta[4])]


def array(data: Any, *, axis: int = 0, distribution: Any = None, dtype: Any = None,
          ghosts: Any = 0, boundary: Any = "none", stencil: str = "star",
          name: str | None = None) -> DistArray:
    """CrossPy's constructors, inside this rank (communicator COMM_SELF):

    - ``array([block0, block1, ...], axis=0)``: the concatenation of NumPy blocks along
      `axis`, one partition per block (on ``distribution``'s devices, default the cpu);
    - ``array(a, distribution=[cpu(0), gpu(0), gpu(1)], axis=0)``: `a` split evenly along
      `axis` over those devices.

    The blocks are copied once into the partitions (which carry ghost layers)."""
    from mpi4py import MPI

    if isinstance(data, (list, tuple)) and data and not np.isscalar(data[0]) and all(
        hasattr(b, "shape") for b in data
    ):
        blocks = [np.asarray(b.get() if hasattr(b, "get") and not isinstance(b, np.ndarray)
                             else b) for b in data]
        first = blocks[0]
        for k, b in enumerate(blocks):
            rest = [n for d, n in enumerate(b.shape) if d != axis]
            want = [n for d, n in enumerate(first.shape) if d != axis]
            if b.ndim != first.ndim or rest != want:
                raise ValueError(
                    f"array: block {k} has shape {b.shape}, which does not stack with block 0 "
                    f"{first.shape} along axis {axis}"
                )
        devices = list(distribution) if distribution is not None else [cpu(0)] * len(blocks)
        if len(devices) != len(blocks):
            raise ValueError(
                f"array: {len(blocks)} blocks but distribution names {len(devices)} devices"
            )
        whole = np.concatenate(blocks, axis=axis)
        sizes = [b.shape[axis] for b in blocks]
    else:
        whole = np.asarray(data.get() if hasattr(data, "get") and not isinstance(data, np.ndarray)
                           else data)
        devices = list(distribution) if distribution is not None else [cpu(0)]
        sizes = None
    return from_global(
        whole,
        0,
        dtype=dtype or whole.dtype,
        comm=MPI.COMM_SELF,
        ghosts=ghosts,
        boundary=boundary,
        stencil=stencil,
        devices=devices,
        axis=axis,
        device_splits=sizes,
        name=name,
    )


def load(path: str, *, comm: Any = None, shape: Any = None, dtype: Any = None, grid: Any = None,
         ghosts: Any = 0, boundary: Any = "none", stencil: str = "star", devices: Any = None,
         axis: int = 0, name: str | None = None) -> DistArray:
    """Read an array written by ``x.save(path)`` (collective MPI-IO), at any rank count,
    grid and devices; shape and dtype come from the file (checked if given)."""
    scope = _scope()
    c = comm_for(comm, scope)
    from parla.crosspy._options import _device_spec, normalize_boundary

    kind, value = normalize_boundary(boundary)
    options: dict[str, Any] = {
        "boundary": kind,
        "boundary_value": value,
        "stencil": stencil,
        "device_axis": axis,
        "name": name or "",
    }
    if shape is not None:
        options["shape"] = [int(n) for n in shape]
    if dtype is not None:
        options["dtype"] = check_dtype(dtype).name
    if grid is not None:
        options["grid"] = [int(g) for g in grid]
    options["ghosts"] = [int(g) for g in ghosts] if isinstance(ghosts, Sequence) else [int(ghosts)]
    options["devices"] = [_device_spec(d, scope) for d in (devices or [cpu(0)])]
    core = _translate(lambda: _core.crosspy.DistArray.load(scope.rt, c._c, str(path), options))
    return DistArray(core, c, scope)


def _like(x: DistArray, name: str | None) -> dict[str, Any]:
    sizes = None
    if len(x.partitions) > 1:
        sizes = [p.extent[x.device_axis] for p in x.partitions]
    return {
        "grid": list(x.grid),
        "splits": [[b - a for a, b in zip(s, s[1:])] for s in x.splits],
        "ghosts": list(x.ghosts),
        "boundary": x.boundary,
        "stencil": x.stencil,
        "devices": x.devices,
        "axis": x.device_axis,
        "device_splits": sizes,
        "name": name,
    }


def empty_like(x: DistArray, dtype: Any = None, *, name: str | None = None) -> DistArray:
    """A new array distributed exactly like `x` (zero-filled)."""
    return zeros(x.shape, dtype or x.dtype, comm=x.comm, **_like(x, name))


zeros_like = empty_like


def full_like(x: DistArray, fill_value: Any, dtype: Any = None, *,
              name: str | None = None) -> DistArray:
    y = empty_like(x, dtype, name=name)
    y.fill(fill_value)
    return y


def dot(x: DistArray, y: DistArray, non_blocking: bool = False) -> Any:
    """Sum of the elementwise products of two conformable arrays (a float)."""
    if not isinstance(x, DistArray):
        raise TypeError(f"dot takes DistArrays, not {type(x).__name__}")
    return x.dot(y, non_blocking=non_blocking)


def close_all() -> None:
    """Close every array (at exit, before the communicators close)."""
    for x in list(_live_arrays):
        x.close()
    with _comms_lock:
        comms = [c for _, _, c in _comms]
        _comms.clear()
    for comm in comms:
        comm.close()
