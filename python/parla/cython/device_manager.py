"""Parla's ``parla.cython.device_manager`` path: the ``cpu`` and ``gpu`` architectures."""

from parla.devices import Architecture, Device, cpu, gpu

PyArchitecture = Architecture
PyDevice = Device
PyCPUArchitecture = PyCUDAArchitecture = Architecture

__all__ = ["Architecture", "Device", "PyArchitecture", "PyDevice", "cpu", "gpu"]
