"""The runtime scope (``with Parla():``), the task-local context, and the runner that every
task body goes through.

A ``Parla()`` block owns one ``parla._core.Runtime``. Blocks nest: spawns outside any task go
to the innermost open block; spawns inside a task go to the runtime running that task.
"""

from __future__ import annotations

import functools
import os
import threading
from typing import Any

from parla import _core
from parla.devices import CPU_KIND, GPU_KIND, Device, Stream, cpu, gpu

__all__ = [
    "Parla",
    "TaskEnvironment",
    "current_scope",
    "get_current_context",
    "get_current_devices",
    "get_current_stream",
    "get_current_task",
]


class _Locals(threading.local):
    """Per thread: the stack of tasks whose bodies run on it (a body that waits may run
    other bodies on the same thread, hence a stack). Each frame is (task, device ids)."""

    def __init__(self) -> None:
        self.frames: list[tuple[Any, tuple[int, ...]]] = []


_locals = _Locals()
_scopes: list[Parla] = []  # open `with Parla():` blocks, innermost last
_scopes_lock = threading.Lock()


def current_scope(required: bool = True) -> Parla | None:
    """The Parla scope new tasks go to: the one running the current task, else the innermost
    open ``with Parla():`` block."""
    frames = _locals.frames
    if frames:
        return frames[-1][0]._scope  # type: ignore[no-any-return]
    if _scopes:
        return _scopes[-1]
    if required:
        raise RuntimeError(
            "no Parla runtime is active: spawn tasks inside a `with Parla():` block "
            "(from parla import Parla), or from a task running in one"
        )
    return None


class Parla:
    """The Parla runtime scope::

        with Parla():
            main()          # spawns tasks

    Entering starts the node runtime: ``n_workers`` cpu workers (default: PARLA_NUM_WORKERS,
    then PARLA_NUM_THREADS, then the number of cores) and ``sim_gpus`` simulated GPUs
    (default: PARLA_SIM_GPUS, else none; CUDA GPUs when built with CUDA). Leaving waits for
    every task, re-raises the first task failure (the original exception, with a note naming
    the task) and stops the workers. A ``Parla`` object can be entered once.
    """

    def __init__(
        self,
        n_workers: int | None = None,
        *,
        sim_gpus: int | None = None,
        deadlock_timeout: float | None = None,
        trace: str | None = None,
        **kwds: Any,
    ):
        if n_workers is None:
            env = os.environ.get("PARLA_NUM_WORKERS") or os.environ.get("PARLA_NUM_THREADS")
            n_workers = int(env) if env else 0
        self.n_workers = n_workers
        self.sim_gpus = -1 if sim_gpus is None else sim_gpus
        self.deadlock_timeout = deadlock_timeout or 0.0
        self.trace = trace or ""
        self.kwds = kwds  # Parla's scheduler options (logfile, dev_config_file, ...): ignored
        self.rt: Any = None
        self.devices: list[Device] = []
        self.cuda = False
        self.default_placement: list[Any] = []
        self._used = False
        self._at_exit: list[Any] = []

    def __enter__(self) -> Parla:
        if self._used:
            raise ValueError("a Parla object can be entered only once; make a new Parla()")
        self._used = True
        self.rt = _core.Runtime(
            num_workers=self.n_workers,
            sim_gpus=self.sim_gpus,
            deadlock_timeout=self.deadlock_timeout,
            trace_path=self.trace,
            runner=_run,
        )
        self.devices = []
        for info in self.rt.device_info:
            arch = cpu if info["kind"] == "cpu" else gpu
            self.devices.append(arch(info["index"]))
            if info["backend"] == "cuda":
                self.cuda = True
        # Parla's default placement: any architecture the runtime has.
        self.default_placement = [([(CPU_KIND, 0)], None, None)]
        if self.rt.num_gpus:
            self.default_placement.append(([(GPU_KIND, -1)], None, None))
        with _scopes_lock:
            _scopes.append(self)
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        try:
            try:
                self.rt.wait_all()
            except BaseException as failure:
                if exc is None:
                    raise
                # The block's own exception wins; mention the task failure on it.
                if hasattr(exc, "add_note"):
                    exc.add_note(f"a Parla task also failed: {failure!r}")
        finally:
            with _scopes_lock:
                if self in _scopes:
                    _scopes.remove(self)
            try:
                for fn in reversed(self._at_exit):
                    fn()
            finally:
                self._at_exit.clear()
                self.rt.close()
        return False

    def at_exit(self, fn: Any) -> None:
        """Call `fn()` when the block ends, after every task is done and before the runtime
        stops (last registered first): e.g. closing communicators made for this runtime."""
        self._at_exit.append(fn)

    def handles_of(self, tasks: Any) -> list[Any]:
        """The core handles of tasks (for waiting or as dependencies) in this runtime."""
        from parla._tasks import handles_in

        return handles_in(self, tasks)

    @property
    def num_workers(self) -> int:
        return self.rt.num_workers  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        state = "closed" if self.rt is None or self.rt.closed else f"devices={self.devices}"
        return f"Parla({state})"


# ---- the task-local context ------------------------------------------------------------------


class TaskEnvironment:
    """What get_current_context() returns inside a task: the devices it holds.

    Iterating gives one environment per device; ``with env:`` makes its first device
    current (CuPy's current device on CUDA GPUs)."""

    __slots__ = ("devices",)

    def __init__(self, devices: list[Device]):
        self.devices = devices

    @property
    def device(self) -> Device:
        return self.devices[0]

    @property
    def architecture(self) -> Any:
        return self.devices[0].architecture

    @property
    def gpus(self) -> list[Device]:
        return [d for d in self.devices if d.architecture is gpu]

    @property
    def cpus(self) -> list[Device]:
        return [d for d in self.devices if d.architecture is cpu]

    @property
    def cores(self) -> int:
        """Cores reserved for the running task: a cpu task with vcus v on a rank of N cores
        holds max(1, round(v * N)) of them, and its BLAS and OpenMP use that many threads;
        0 when the task reserves no vcus (or outside a task)."""
        return _core.task_cores()

    def __iter__(self) -> Any:
        return iter([TaskEnvironment([d]) for d in self.devices])

    def __len__(self) -> int:
        return len(self.devices)

    def __getitem__(self, i: int) -> TaskEnvironment:
        return TaskEnvironment([self.devices[i]])

    def __contains__(self, device: object) -> bool:
        return device in self.devices

    def __enter__(self) -> TaskEnvironment:
        self.devices[0].__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.devices[0].__exit__(*exc)

    def synchronize(self) -> None:
        """Wait for the device work of this task (nothing to wait for off CUDA)."""
        stream = get_current_stream()
        stream.synchronize()

    def __repr__(self) -> str:
        return f"TaskEnvironment({self.devices})"


def get_current_task() -> Any:
    """The task whose body is running on this thread, else None."""
    frames = _locals.frames
    return frames[-1][0] if frames else None


def get_current_devices() -> list[Device]:
    """The devices the current task holds (``[cpu]`` outside any task)."""
    frames = _locals.frames
    if not frames:
        return [cpu(0)]
    task, ids = frames[-1]
    devices = task._scope.devices
    return [devices[i] for i in ids]


def get_current_context() -> TaskEnvironment:
    """The current task's environment (its devices)."""
    return TaskEnvironment(get_current_devices())


def get_current_stream() -> Any:
    """The current task's stream: CuPy's current stream on CUDA GPUs, else a stand-in."""
    device = get_current_devices()[0]
    from parla.devices import _cupy_for

    cupy = _cupy_for(device)
    if cupy is not None:
        return cupy.cuda.get_current_stream()
    return Stream(device)


# ---- the runner -------------------------------------------------------------------------------


class AwaitRequest:
    """What awaiting a task, a slice or a task space yields to the runner: the tasks to wait
    for and, for a single task, the one whose result the await returns."""

    __slots__ = ("single", "tasks")

    def __init__(self, tasks: list[Any], single: Any = None):
        self.tasks = tasks
        self.single = single


def _run(task: Any, fn: Any, devices: tuple[int, ...], completion: Any) -> Any:
    """Called by the runtime, holding the GIL, for every Python body and continuation."""
    cores = _core.task_cores()
    if cores:
        from parla._contexts import library_context

        with library_context(cores):
            return _run_body(task, fn, devices, completion)
    return _run_body(task, fn, devices, completion)


def _run_body(task: Any, fn: Any, devices: tuple[int, ...], completion: Any) -> Any:
    frames = _locals.frames
    frames.append((task, devices))
    try:
        scope = task._scope
        if scope.cuda and scope.devices[devices[0]].architecture is gpu:
            from parla._arrays import cupy_module

            cupy = cupy_module()
            if cupy is None:  # a CUDA task without CuPy: plain Python
                return fn() if completion is None else _advance(task, fn(), completion, None)
            # CuPy work goes on the task's stream: the task completes when it has finished.
            handle = _core.task_stream_handle()
            stream = cupy.cuda.ExternalStream(handle) if handle else cupy.cuda.Stream.null
            with cupy.cuda.Device(scope.devices[devices[0]].index), stream:
                if completion is None:
                    return fn()
                _advance(task, fn(), completion, None)
                return None
        if completion is None:
            return fn()
        _advance(task, fn(), completion, None)
        return None
    finally:
        frames.pop()


def _advance(task: Any, coro: Any, completion: Any, value: Any) -> None:
    """Runs a coroutine body until it awaits something unfinished (then spawns the
    continuation that resumes it) or returns (then completes the task)."""
    scope = task._scope
    while True:
        try:
            request = coro.send(value)
        except StopIteration as stop:
            completion.fulfill(stop.value)
            return
        except BaseException as error:
            completion.fail(error)
            return
        if not isinstance(request, AwaitRequest):
            coro.close()
            completion.fail(
                TypeError(
                    f"task {task.name} awaited {request!r}; a Parla task body can await tasks, "
                    "task-space slices and task spaces only"
                )
            )
            return
        handles = scope.handles_of(request.tasks)
        if all(h.state == "completed" for h in handles):
            value = request.single.result if request.single is not None else None
            continue  # nothing to wait for: no continuation task needed
        completion.continue_after(
            handles, task, functools.partial(_resume, task, coro, completion, request)
        )
        return


def _resume(task: Any, coro: Any, completion: Any, request: AwaitRequest) -> None:
    value = request.single.result if request.single is not None else None
    _advance(task, coro, completion, value)
