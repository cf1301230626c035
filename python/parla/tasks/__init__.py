"""Parla's ``parla.tasks``: spawn, task spaces and the current-task queries."""

from parla._scope import (
    TaskEnvironment,
    get_current_context,
    get_current_devices,
    get_current_stream,
    get_current_task,
)
from parla._spawn import spawn
from parla._tasks import AtomicTaskSpace, Task, TaskCollection, TaskList, TaskSpace, flatten_tasks
from parla._variants import specialize

Tasks = TaskCollection
BackendTaskSpace = TaskSpace

__all__ = [
    "AtomicTaskSpace",
    "BackendTaskSpace",
    "Task",
    "TaskCollection",
    "TaskEnvironment",
    "TaskList",
    "TaskSpace",
    "Tasks",
    "flatten_tasks",
    "get_current_context",
    "get_current_devices",
    "get_current_stream",
    "get_current_task",
    "spawn",
    "specialize",
]
