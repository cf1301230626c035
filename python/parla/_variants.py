"""Function variants: one implementation per architecture, chosen where the task runs."""

from __future__ import annotations

import functools
from typing import Any, Callable

from parla.devices import Architecture, Device

__all__ = ["specialize", "specialized"]


class specialize:
    """``@specialize`` makes a function with variants::

        @specialize
        def kernel(x): ...               # default

        @kernel.variant(gpu)             # or architecture=gpu, or gpu(1), or several
        def kernel_gpu(x): ...

    Calling ``kernel`` inside a task runs the variant for the task's device: a variant for
    that exact device first, then one for its architecture, else the default.
    """

    def __init__(self, default: Callable[..., Any]):
        self._default = default
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
        for target in targets:
            if not isinstance(target, (Architecture, Device)):
                raise TypeError(
                    f"variant() takes architectures or devices (cpu, gpu, gpu(1)), not {target!r}"
                )

        def register(fn: Callable[..., Any]) -> specialize:
            for target in targets:
                if target in self._variants:
                    raise ValueError(f"{self.__name__} already has a variant for {target!r}")
                self._variants[target] = fn
            return self

        return register

    def get_variant(self, device: Device) -> Callable[..., Any]:
        fn = self._variants.get(device)
        if fn is None:
            fn = self._variants.get(device.architecture, self._default)
        return fn

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from parla._scope import get_current_devices

        return self.get_variant(get_current_devices()[0])(*args, **kwargs)


specialized = specialize
