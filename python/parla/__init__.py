"""Parla-MPI: Parla's task-based programming model on every MPI rank.

Parla's API on the C++ runtime (:mod:`parla._core`)::

    from parla import Parla, spawn, TaskSpace, parray
    from parla.devices import cpu, gpu

    with Parla():
        T = TaskSpace("T")
        for i in range(4):
            @spawn(T[i], dependencies=[T[i - 1]], placement=cpu)
            def step():
                ...
"""

from parla import parray
from parla._core import __version__, build_config, sleep_gil, sleep_nogil
from parla._scope import (
    Parla,
    get_current_context,
    get_current_devices,
    get_current_stream,
    get_current_task,
)
from parla._spawn import spawn
from parla._tasks import AtomicTaskSpace, Task, TaskList, TaskSpace
from parla._tasks import TaskCollection as Tasks
from parla._variants import specialize

__all__ = [
    "AtomicTaskSpace",
    "Parla",
    "Task",
    "TaskList",
    "TaskSpace",
    "Tasks",
    "__version__",
    "build_config",
    "get_current_context",
    "get_current_devices",
    "get_current_stream",
    "get_current_task",
    "parray",
    "sleep_gil",
    "sleep_nogil",
    "spawn",
    "specialize",
]
