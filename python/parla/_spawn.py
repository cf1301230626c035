"""``@spawn``: Parla's decorator that turns a function into a task."""

from __future__ import annotations

import inspect
import types
from typing import Any, Callable

from parla._scope import current_scope
from parla._tasks import Task, TaskList, flatten_tasks, handles_in
from parla.devices import CPU_KIND, GPU_KIND, Architecture, Device, PlacementHint

__all__ = ["spawn"]


def spawn(
    taskid: Any = None,
    dependencies: Any = (),
    placement: Any = None,
    input: Any = None,
    output: Any = None,
    inout: Any = None,
    vcus: float | None = None,
    memory: int | None = None,
    runahead: Any = None,
    *,
    priority: int = 0,
    task: Any = None,
) -> Callable[[Callable[..., Any]], Task]:
    """Spawn the decorated function as a task; the decorator returns the Task.

    - ``taskid``: an element of a TaskSpace (``T[i]``), or None for an anonymous task.
    - ``dependencies``: tasks, slices (``T[0:4]``), task spaces, nested lists of them; an
      element not spawned yet is waited for.
    - ``placement``: ``cpu``, ``gpu`` (any GPU), ``gpu(i)``, a list (one of these), a tuple
      (all of these at once: a multi-device task), hints like ``gpu(0)[{"vcus": 0.5}]``,
      or arrays (NumPy: cpu, CuPy: its GPU). None: any device of the runtime.
    - ``input``/``output``/``inout``: PArrays (or slices of them) the body reads/writes.
    - ``vcus``: fraction of each device the task holds; ``memory``: bytes it holds.

    Variables the body captures from enclosing functions are copied when the task is
    spawned (Parla's semantics: each task of a loop sees its own ``i``). ``async def``
    bodies may ``await`` tasks, slices and task spaces.
    """
    if task is not None and taskid is None:
        taskid = task
    scope = current_scope()
    assert scope is not None
    del runahead  # Parla's runahead synchronisation: the runtime orders device work itself

    def decorator(body: Callable[..., Any]) -> Task:
        if isinstance(taskid, Task):
            t = taskid
            key = t._handle(scope)
            if key is None:
                raise RuntimeError(f"task {t.name} already ran in an earlier Parla runtime")
        elif taskid is None:
            t = Task(name=getattr(body, "__name__", "task"))
            t._scope = scope  # before spawning: the body may run at once
            key = None
        elif isinstance(taskid, TaskList):
            raise ValueError(
                f"spawn() needs one task id, but {taskid!r} is a list of {len(taskid)}; "
                "index the TaskSpace with a single key (T[i])"
            )
        else:
            raise TypeError(f"spawn(taskid=...) takes a TaskSpace element (T[i]), not {taskid!r}")
        # Fast paths for the common cases (no dependencies; a plain function): each
        # saves about a microsecond of a spawn that costs a few.
        if (type(dependencies) is tuple or type(dependencies) is list) and not dependencies:
            deps: list[Any] = []
        else:
            deps = handles_in(scope, flatten_tasks(dependencies))
        options = _placement(placement, scope)
        coroutine = _is_coroutine_function(body)
        fn = _capture(body)
        accesses = None
        if input or output or inout:
            from parla._parray import data_accesses

            accesses = data_accesses(scope, input, output, inout)
        h = scope.rt.spawn(
            t,
            fn,
            key,
            deps,
            options,
            float(vcus or 0.0),
            int(memory or 0),
            "" if key is not None else t._name,
            coroutine,
            priority,
            *(() if accesses is None else (accesses,)),
        )
        t._h = h
        t._scope = scope
        return t

    return decorator


def _is_coroutine_function(body: Any) -> bool:
    """inspect.iscoroutinefunction, read straight from the code flags for plain functions
    (those with a __dict__ may carry inspect.markcoroutinefunction's mark: ask inspect)."""
    if type(body) is types.FunctionType and not body.__dict__:
        return bool(body.__code__.co_flags & inspect.CO_COROUTINE)
    return inspect.iscoroutinefunction(body)


def _capture(body: Any) -> Any:
    """A copy of `body` whose closure cells are copies, taken now (Parla's capture by value
    at spawn). Empty cells (names bound later) stay shared."""
    closure = getattr(body, "__closure__", None)
    if not closure or not isinstance(body, types.FunctionType):
        return body
    cells = []
    for cell in closure:
        try:
            cells.append(types.CellType(cell.cell_contents))
        except ValueError:
            cells.append(cell)
    fn = types.FunctionType(
        body.__code__, body.__globals__, body.__name__, body.__defaults__, tuple(cells)
    )
    fn.__kwdefaults__ = body.__kwdefaults__
    fn.__qualname__ = body.__qualname__
    fn.__doc__ = body.__doc__
    fn.__dict__.update(body.__dict__)
    return fn


# ---- placement -------------------------------------------------------------------------------

_Option = tuple[list[tuple[int, int]], Any, Any]


def _placement(placement: Any, scope: Any) -> list[_Option]:
    """The core's placement form: a list of options (devices, vcus, memory)."""
    if placement is None:
        return scope.default_placement  # type: ignore[no-any-return]
    if isinstance(placement, list):
        options: list[_Option] = []
        for item in placement:
            options.extend(_options(item))
        if not options:
            raise ValueError("placement=[] names no device; leave placement out for any device")
        return options
    return _options(placement)


def _options(item: Any) -> list[_Option]:
    if isinstance(item, Architecture):
        return [([(item.kind, 0 if item.kind == CPU_KIND else -1)], None, None)]
    if isinstance(item, Device):
        return [([item._spec], None, None)]
    if isinstance(item, PlacementHint):
        ((devices, _, _),) = _options(item.target)
        return [(devices, item.vcus, item.memory)]
    if isinstance(item, tuple):
        devices: list[tuple[int, int]] = []
        vcus = memory = None
        for part in item:
            opts = _options(part)
            if len(opts) != 1:
                raise ValueError(
                    f"a tuple placement holds single devices or architectures; {part!r} is a choice"
                )
            d, v, m = opts[0]
            devices.extend(d)
            vcus = v if v is not None else vcus
            memory = m if m is not None else memory
        return [(devices, vcus, memory)]
    if isinstance(item, list):
        return [o for part in item for o in _options(part)]
    device = _device_of_data(item)
    if device is not None:
        return [([device], None, None)]
    raise TypeError(
        f"placement {item!r} is not a device: use cpu, gpu, gpu(i), a hint like "
        'gpu(0)[{"vcus": 0.5}], an array, or a list/tuple of these'
    )


def _device_of_data(item: Any) -> tuple[int, int] | None:
    """The device holding an array: NumPy arrays on the cpu, CuPy arrays on their GPU,
    PArrays where their newest copy is."""
    from parla._arrays import is_cupy_array

    if hasattr(item, "_parla_placement"):
        return item._parla_placement()  # type: ignore[no-any-return]
    if hasattr(item, "__array_interface__"):
        return (CPU_KIND, 0)
    if is_cupy_array(item):
        return (GPU_KIND, int(item.device.id))
    return None
