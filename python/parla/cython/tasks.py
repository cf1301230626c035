"""Parla's ``parla.cython.tasks`` path: tasks and task spaces."""

from parla._scope import TaskEnvironment
from parla._tasks import AtomicTaskSpace, Task, TaskCollection, TaskList, TaskSpace, flatten_tasks

ComputeTask = Task
BackendTaskSpace = TaskSpace
AtomicTaskList = TaskList

__all__ = [
    "AtomicTaskList",
    "AtomicTaskSpace",
    "BackendTaskSpace",
    "ComputeTask",
    "Task",
    "TaskCollection",
    "TaskEnvironment",
    "TaskList",
    "TaskSpace",
    "flatten_tasks",
]
