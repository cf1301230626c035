"""Parla 0.2's ``parla.task_collections`` path."""

from parla._tasks import AtomicTaskSpace, TaskCollection, TaskList, TaskSpace

Tasks = TaskCollection

__all__ = ["AtomicTaskSpace", "TaskCollection", "TaskList", "TaskSpace", "Tasks"]
