"""Parla's ``parla.common.globals`` path: the current task, context, devices and stream."""

from enum import IntEnum

from parla._scope import (
    get_current_context,
    get_current_devices,
    get_current_stream,
    get_current_task,
)


class DeviceType(IntEnum):
    """Device kinds (Parla's enum)."""

    INVALID = -2
    ANY = -1
    CPU = 0
    GPU = 1


class AccessMode(IntEnum):
    """PArray access modes of @spawn(input=, output=, inout=)."""

    IN = 0
    OUT = 1
    INOUT = 2


def has_environment() -> bool:
    """Whether a task body is running on this thread."""
    return get_current_task() is not None


__all__ = [
    "AccessMode",
    "DeviceType",
    "get_current_context",
    "get_current_devices",
    "get_current_stream",
    "get_current_task",
    "has_environment",
]
