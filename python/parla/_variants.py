"""Function variants: one implementation per architecture, chosen where the task runs."""

from __future__ import annotations

import functools
from typing import Any, Callable

from parla.devices import Architecture, Device

__all__ = ["specialize", "specialized"]

Target = Any  # an Architecture, a Device, or a tuple of them (a multi-device task)


def _check_target(target: Any) -> Target:
    if isinstance(target, (Architecture, Device)):
        return target
    if (
        isinstance(target, tuple)
        and target
        and all(isinstance(t, (Architecture, Device)) for t in target)
    ):
        return target[0] if len(target) == 1 else target
    raise TypeError(
        "variant() takes architectures or devices (cpu, gpu, gpu(1)), or a tuple of them for "
        f"multi-device tasks ((gpu, gpu)), not {target!r}"
    )


def _describe(target: Target) -> str:
    if isinstance(target, tuple):
        return "(" + ", ".join(_describe(t) for t in target) + ")"
    return str(target)


class specialize:
    """``@specialize`` makes a function with variants::

        @specialize
        def kernel(x): ...               # the fallback

        @kernel.variant(gpu)             # or architecture=gpu, or gpu(1), or several
        def kernel_gpu(x): ...

        @kernel.variant((gpu, gpu))      # a task on two GPUs at once
        def kernel_two_gpus(x): ...

    Calling ``kernel`` inside a task runs the variant for the task's devices: for a
    multi-device task a tuple variant matching its devices in order (exact devices before
    architectures), then the variant of its first device; a variant for that exact device
    first, then one for its architecture, else the fallback. ``@specialize(fallback=False)``
    makes the decorated function a name only: a call with no matching variant raises
    NotImplementedError naming the devices and the variants there are.
    """

    def __new__(cls, default: Callable[..., Any] | None = None, *, fallback: bool = True) -> Any:
        if default is None:  # @specialize(fallback=False)
            return functools.partial(cls, fallback=fallback)
        return super().__new__(cls)

    def __init__(self, default: Callable[..., Any] | None = None, *, fallback: bool = True):
        assert default is not None
        self._default: Callable[..., Any] | None = default if fallback else None
        self._variants: dict[Any, Callable[..., Any]] = {}
        functools.update_wrapper(self, default)

    def variant(
        self, *targets: Any, architecture: Any = None
    ) -> Callable[[Callable[..., Any]], Any]:
        if architecture is not None:
            targets = (
                *targets,
                *(architecture if isinstance(architecture, (list, tuple)) else (architecture,)),
            )
        checked = [_check_target(t) for t in targets]

        def register(fn: Callable[..., Any]) -> specialize:
            for target in checked:
                if target in self._variants:
                    raise ValueError(
                        f"{self.__name__} already has a variant for {_describe(target)}"
                    )
                self._variants[target] = fn
            return self

        return register

    def _find(self, devices: list[Device]) -> Callable[..., Any] | None:
        if len(devices) > 1:
            best, best_exact = None, -1
            for key, fn in self._variants.items():
                if not isinstance(key, tuple) or len(key) != len(devices):
                    continue
                if all(k == d or k == d.architecture for k, d in zip(key, devices)):
                    exact = sum(k == d for k, d in zip(key, devices))
                    if exact > best_exact:
                        best, best_exact = fn, exact
            if best is not None:
                return best
        device = devices[0]
        fn = self._variants.get(device)
        if fn is None:
            fn = self._variants.get(device.architecture, self._default)
        return fn

    def get_variant(self, device: Device | list[Device] | tuple[Device, ...]) -> Callable[..., Any]:
        """The implementation a task on ``device`` (or on these devices) would run."""
        devices = list(device) if isinstance(device, (list, tuple)) else [device]
        fn = self._find(devices)
        if fn is None:
            have = ", ".join(_describe(k) for k in self._variants) or "none"
            on = ", ".join(str(d) for d in devices)
            raise NotImplementedError(
                f"{self.__name__} has no variant for a task on {on} and no fallback "
                f"(variants: {have}); add one with @{self.__name__}.variant(...)"
            )
        return fn

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from parla._scope import get_current_devices

        return self.get_variant(get_current_devices())(*args, **kwargs)


specialized = specialize
