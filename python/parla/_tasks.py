"""Tasks, task spaces and task lists with Parla's semantics.

A ``TaskSpace`` maps keys (tuples of any hashable values) to ``Task`` objects; indexing
creates the element on first reference, so a task can depend on an element spawned later.
Each element is backed by an element of a core task space (``parla._core.TaskSpace``) of the
runtime it is used in: dependencies on elements not spawned yet are the runtime's
placeholders, resolved in C++.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from numbers import Integral
from typing import Any

from parla import _core
from parla._scope import AwaitRequest, current_scope

__all__ = [
    "AtomicTaskSpace",
    "Task",
    "TaskCollection",
    "TaskList",
    "TaskSpace",
    "flatten_tasks",
]


class Task:
    """A task: an element of a TaskSpace (``T[3]``) or the anonymous task ``@spawn()``
    returned. Awaitable inside ``async def`` bodies: ``x = await T[3]`` waits for it and
    gives its return value."""

    __slots__ = ("__weakref__", "_h", "_idx", "_name", "_scope", "_space")

    def __init__(self, space: TaskSpace | None = None, idx: tuple[Any, ...] = (), name: str = ""):
        self._space = space
        self._idx = idx
        self._name = name
        self._h: Any = None  # core handle, made in the runtime that first uses it
        self._scope: Any = None

    # -- identity --------------------------------------------------------------------------
    @property
    def name(self) -> str:
        if self._space is not None:
            return self._space._element_name(self._idx)
        return self._name

    @property
    def taskspace(self) -> TaskSpace | None:
        return self._space

    @property
    def idx(self) -> tuple[Any, ...]:
        return self._idx

    def __repr__(self) -> str:
        return f"Task({self.name})"

    # -- state and result ------------------------------------------------------------------
    @property
    def state(self) -> str:
        """created (not spawned), pending, ready, running, completed, failed or cancelled."""
        h = self._h
        return "created" if h is None else h.state  # type: ignore[no-any-return]

    @property
    def done(self) -> bool:
        h = self._h
        return h is not None and h.done  # type: ignore[no-any-return]

    def is_completed(self) -> bool:
        return self.state == "completed"

    @property
    def result(self) -> Any:
        """As in Parla: the body's return value once completed, the exception if it failed
        (or the one that cancelled it), else None."""
        h = self._h
        if h is None:
            return None
        state = h.state
        if state == "completed":
            return h.result()
        if state in ("failed", "cancelled"):
            return h.exception()
        return None

    def get_result(self) -> Any:
        """The return value; raises the task's exception if it failed."""
        return self._handle(self._scope or current_scope()).result()

    def wait(self) -> Any:
        """Blocks until the task is done (releasing the GIL); raises its failure. Inside an
        ``async def`` body prefer ``await task`` (no thread is held)."""
        scope = self._scope or current_scope()
        h = self._handle(scope)
        if h is not None:
            scope.rt.wait([h])
        return self.result

    def __await__(self) -> Any:
        return (yield AwaitRequest([self], self))

    # -- the core handle -------------------------------------------------------------------
    def _handle(self, scope: Any) -> Any:
        """This task's handle in `scope`'s runtime (None: it finished in an earlier one)."""
        h = self._h
        if h is not None:
            if self._scope is scope:
                return h
            if h.done:
                return None
            raise RuntimeError(
                f"task {self.name} belongs to another, still running Parla runtime; "
                "tasks of different `with Parla():` blocks cannot depend on each other"
            )
        if self._space is None:
            raise RuntimeError(f"task {self.name} was never spawned")
        core = self._space._core_in(scope)
        h = core.handle(self._space._core_key(self._idx))
        self._h = h
        self._scope = scope
        return h


class TaskCollection:
    """A group of tasks: awaitable, waitable, iterable, usable as a dependency."""

    __slots__ = ("_tasks",)

    def __init__(self, tasks: Iterable[Any] = ()):
        self._tasks: list[Task] = flatten_tasks(tasks)

    @property
    def tasks(self) -> list[Task]:
        return self._tasks

    def __await__(self) -> Any:
        return (yield AwaitRequest(list(self.tasks)))

    def wait(self) -> None:
        """Blocks until every task is done (GIL released); raises the first failure."""
        _wait_tasks(self.tasks)

    def __len__(self) -> int:
        return len(self._tasks)

    def __iter__(self) -> Iterator[Task]:
        return iter(self._tasks)

    def __contains__(self, task: object) -> bool:
        return task in self._tasks

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._tasks})"


class TaskList(TaskCollection):
    """A list of tasks, e.g. a TaskSpace slice ``T[0:4]``."""

    __slots__ = ()

    def __getitem__(self, index: Any) -> Any:
        r = self._tasks[index]
        return TaskList(r) if isinstance(index, slice) else r

    def __add__(self, other: Iterable[Any]) -> TaskList:
        return TaskList(self._tasks + flatten_tasks(other))


class TaskSpace:
    """A named collection of tasks indexed by keys: ``T[3]``, ``T[1, 2]``, ``T["setup"]``,
    ``T[0, "a"]``. Slices and lists expand (``T[0:4]``, ``T[0:2, [1, 3]]``) into a TaskList;
    an int outside the space's bounds (negative ints, with no ``start``) gives an empty
    TaskList, so ``dependencies=[T[i - 1]]`` needs no special case for i = 0.

    ``shape``/``start`` bound integer keys per dimension (optional)."""

    def __init__(
        self,
        name: str = "",
        create: bool = True,
        shape: int | tuple[int, ...] | None = None,
        start: int | tuple[int, ...] | None = None,
    ):
        self._name = name
        self._create = create
        self.shape = (shape,) if isinstance(shape, int) else shape
        self.start = (start,) if isinstance(start, int) else start
        self._tasks: dict[tuple[Any, ...], Task] = {}
        self._core: Any = None
        self._core_scope: Any = None

    @property
    def name(self) -> str:
        return self._name

    @property
    def tasks(self) -> list[Task]:
        return list(self._tasks.values())

    def _bounds(self, dim: int) -> tuple[int, int | None]:
        lo = self.start[dim] if self.start is not None and dim < len(self.start) else 0
        hi = lo + self.shape[dim] if self.shape is not None and dim < len(self.shape) else None
        return lo, hi

    def _get(self, key: tuple[Any, ...]) -> Task | None:
        task = self._tasks.get(key)
        if task is None and self._create:
            task = self._tasks.setdefault(key, Task(self, key))
        return task

    def __getitem__(self, index: Any) -> Any:
        if type(index) is int:  # the common case, kept short
            lo, hi = self._bounds(0)
            task = self._get((index,)) if lo <= index and (hi is None or index < hi) else None
            return task if task is not None else TaskList()
        if not isinstance(index, tuple):
            index = (index,)
        keys: list[tuple[Any, ...]] = []
        self._expand((), index, 0, keys)
        tasks = [t for t in map(self._get, keys) if t is not None]
        return tasks[0] if len(tasks) == 1 else TaskList(tasks)

    def _expand(
        self, prefix: tuple[Any, ...], rest: tuple[Any, ...], dim: int, out: list[Any]
    ) -> None:
        if not rest:
            out.append(prefix)
            return
        i, rest = rest[0], rest[1:]
        lo, hi = self._bounds(dim)
        if isinstance(i, slice):
            first = lo if i.start is None else max(i.start, lo)
            if hi is not None:
                stop = hi if i.stop is None else min(i.stop, hi)
            else:
                stop = first if i.stop is None else i.stop
            for v in range(first, stop, i.step or 1):
                self._expand((*prefix, v), rest, dim + 1, out)
        elif isinstance(i, str):
            self._expand((*prefix, i), rest, dim + 1, out)
        elif isinstance(i, Integral) and not isinstance(i, bool):
            v = int(i)
            if lo <= v and (hi is None or v < hi):
                self._expand((*prefix, v), rest, dim + 1, out)
        elif isinstance(i, (list, range, tuple)):
            for v in i:
                self._expand(
                    (*prefix, int(v) if isinstance(v, Integral) else v), rest, dim + 1, out
                )
        else:
            self._expand((*prefix, i), rest, dim + 1, out)

    # -- core space ------------------------------------------------------------------------
    def _core_in(self, scope: Any) -> Any:
        if self._core_scope is not scope:
            self._core = _core.TaskSpace(scope.rt, self._name or "TaskSpace")
            self._core_scope = scope
        return self._core

    @staticmethod
    def _core_key(idx: tuple[Any, ...]) -> Any:
        if len(idx) == 1 and type(idx[0]) in (int, str):
            return idx[0]
        if len(idx) <= 4 and all(type(k) is int for k in idx):
            return idx
        return ",".join(repr(k) for k in idx)

    def _element_name(self, idx: tuple[Any, ...]) -> str:
        key = self._core_key(idx)
        name = self._name or "TaskSpace"
        if isinstance(key, str):
            return f'{name}["{key}"]'
        if isinstance(key, int):
            return f"{name}[{key}]"
        return f"{name}[{','.join(map(str, key))}]"

    # -- collection protocol ---------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._tasks)

    def __iter__(self) -> Iterator[Task]:
        return iter(list(self._tasks.values()))

    def __contains__(self, task: object) -> bool:
        return isinstance(task, Task) and task._space is self

    def __await__(self) -> Any:
        return (yield AwaitRequest(list(self._tasks.values())))

    def wait(self) -> None:
        """Blocks until every element referenced so far is done (GIL released); raises the
        first failure."""
        _wait_tasks(list(self._tasks.values()))

    @property
    def view(self) -> TaskSpace:
        """The same elements, without creating new ones on indexing."""
        v = type(self)(self._name, create=False, shape=self.shape, start=self.start)
        v._tasks = self._tasks
        return v

    def __repr__(self) -> str:
        return f"TaskSpace({self._name}, ntasks={len(self)})"


class AtomicTaskSpace(TaskSpace):
    """Parla's AtomicTaskSpace: here the same as TaskSpace (every element is already
    tracked by the runtime)."""

    def __repr__(self) -> str:
        return f"AtomicTaskSpace({self._name}, ntasks={len(self)})"


def flatten_tasks(tasks: Any, out: list[Task] | None = None) -> list[Task]:
    """Tasks, task lists, task spaces and (nested) containers of them -> a list of tasks."""
    if out is None:
        out = []
    if tasks is None:
        return out
    if isinstance(tasks, Task):
        out.append(tasks)
    elif type(tasks) is list or type(tasks) is tuple:  # before the slower Iterable check
        for t in tasks:
            flatten_tasks(t, out)
    elif isinstance(tasks, (TaskCollection, TaskSpace)):
        out.extend(tasks.tasks)
    elif isinstance(tasks, dict):
        for t in tasks.values():
            flatten_tasks(t, out)
    elif isinstance(tasks, Iterable) and not isinstance(tasks, (str, bytes)):
        for t in tasks:
            flatten_tasks(t, out)
    else:
        raise TypeError(
            f"{tasks!r} is not a task: dependencies and awaits take tasks (T[i]), "
            "slices (T[0:4]), task spaces, and lists of them"
        )
    return out


def handles_in(scope: Any, tasks: Any) -> list[Any]:
    """Core handles of `tasks` in `scope`'s runtime (tasks finished in earlier runtimes are
    left out: there is nothing to wait for)."""
    out = []
    for t in tasks if type(tasks) is list else flatten_tasks(tasks):
        h = t._h
        if h is None or t._scope is not scope:
            h = t._handle(scope)
            if h is None:
                continue
        out.append(h)
    return out


def _wait_tasks(tasks: list[Task]) -> None:
    if not tasks:
        return
    scope = current_scope()
    assert scope is not None
    scope.rt.wait(handles_in(scope, tasks))
