"""Devices and placements: ``cpu``, ``gpu``, ``gpu(i)`` and per-option resource hints.

``cpu`` and ``gpu`` are *architectures*: as a placement, ``gpu`` means "any GPU". Calling one
gives a *device* (``gpu(1)``). Indexing either with a dict gives a placement with its own
resource request: ``gpu(0)[{"vcus": 0.5, "memory": 2**20}]``.
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["Architecture", "Device", "PlacementHint", "Stream", "cpu", "gpu"]

CPU_KIND = 0
GPU_KIND = 1


class _Entered(threading.local):
    def __init__(self) -> None:
        self.stack: list[Any] = []  # CuPy device contexts entered by `with device:`


_entered = _Entered()


class Device:
    """One device: ``cpu(0)`` or ``gpu(i)``. Compares equal to the device of the same kind and
    index, so ``get_current_devices()[0] == gpu(1)`` works."""

    __slots__ = ("_architecture", "_index", "_spec")

    def __init__(self, architecture: Architecture, index: int):
        if index < 0:
            raise ValueError(
                f"{architecture.name}({index}): a device index is >= 0 "
                f"(use {architecture.name} alone for any {architecture.name})"
            )
        self._architecture = architecture
        self._index = int(index)
        self._spec = (architecture.kind, self._index)

    @property
    def architecture(self) -> Architecture:
        return self._architecture

    @property
    def index(self) -> int:
        """Index among the devices of its kind (gpu(1).index == 1)."""
        return self._index

    device_id = index
    id = index

    @property
    def name(self) -> str:
        return f"{self._architecture.name}({self._index})" if self._architecture.kind else "cpu"

    def __getitem__(self, hints: dict[str, Any]) -> PlacementHint:
        return PlacementHint(self, hints)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Device) and other._spec == self._spec

    def __hash__(self) -> int:
        return hash(self._spec)

    def __repr__(self) -> str:
        return self.name

    # Parla: `with device:` makes it current (CuPy's current device on CUDA GPUs).
    def __enter__(self) -> Device:
        cupy = _cupy_for(self)
        ctx = cupy.cuda.Device(self._index) if cupy is not None else None
        if ctx is not None:
            ctx.__enter__()
        _entered.stack.append(ctx)
        return self

    def __exit__(self, *exc: object) -> None:
        ctx = _entered.stack.pop()
        if ctx is not None:
            ctx.__exit__(*exc)


class Architecture:
    """A kind of device: ``cpu`` or ``gpu``. As a placement: any device of the kind."""

    __slots__ = ("_devices", "kind", "name")

    def __init__(self, name: str, kind: int):
        self.name = name
        self.kind = kind
        self._devices: dict[int, Device] = {}

    def __call__(self, index: int = 0) -> Device:
        dev = self._devices.get(index)
        if dev is None:
            dev = self._devices[index] = Device(self, index)
        return dev

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, dict):
            return PlacementHint(self, key)
        if isinstance(key, int):
            return self(key)
        raise TypeError(f"{self.name}[...] takes a dict of resource hints or a device index")

    @property
    def devices(self) -> list[Device]:
        """The devices of this kind in the current runtime."""
        from parla._scope import current_scope

        scope = current_scope(required=False)
        if scope is None:
            return []
        return [d for d in scope.devices if d.architecture is self]

    def __len__(self) -> int:
        return len(self.devices)

    def __repr__(self) -> str:
        return self.name

    def __reduce__(self) -> str:
        return self.name


class PlacementHint:
    """A placement (architecture or device) with its own resource request, e.g.
    ``gpu(0)[{"vcus": 0.5}]``. Keys: ``vcus`` (fraction of the device) and ``memory`` (bytes)."""

    __slots__ = ("memory", "target", "vcus")

    def __init__(self, target: Device | Architecture, hints: dict[str, Any]):
        unknown = set(hints) - {"vcus", "memory"}
        if unknown:
            raise ValueError(
                f"unknown resource hint(s) {sorted(unknown)} for {target!r}; "
                "the hints are 'vcus' (a fraction of the device) and 'memory' (bytes)"
            )
        self.target = target
        self.vcus = hints.get("vcus")
        self.memory = hints.get("memory")

    def __repr__(self) -> str:
        parts = {k: v for k, v in (("vcus", self.vcus), ("memory", self.memory)) if v is not None}
        return f"{self.target!r}[{parts!r}]"


class Stream:
    """The stream a task runs on. On CUDA devices with CuPy, get_current_stream() returns
    CuPy's current stream instead; this stand-in (cpu, simulated GPUs) runs work in order on
    the calling thread, so synchronize() has nothing to wait for."""

    __slots__ = ("device",)

    def __init__(self, device: Device):
        self.device = device

    def synchronize(self) -> None:
        """Wait for the work enqueued on the stream (none is pending here)."""

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def __repr__(self) -> str:
        return f"Stream({self.device!r})"


cpu = Architecture("cpu", CPU_KIND)
gpu = Architecture("gpu", GPU_KIND)


def _cupy_for(device: Device) -> Any:
    """CuPy, when `device` is a CUDA GPU of the current runtime and CuPy is installed."""
    if device.architecture.kind != GPU_KIND:
        return None
    from parla._scope import current_scope

    scope = current_scope(required=False)
    if scope is None or not scope.cuda:
        return None
    from parla._arrays import cupy_module

    return cupy_module()
