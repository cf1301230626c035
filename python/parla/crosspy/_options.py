"""Arguments of the distributed-array constructors, checked and put in the form of
``parla::mpi::DistArrayOptions``. Every error names the numbers that are wrong."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from parla.devices import CPU_KIND, Architecture, Device, cpu

__all__ = ["DTYPES", "build_options", "check_dtype", "normalize_boundary"]

DTYPES = ("float64", "float32", "int64", "int32")


def check_dtype(dtype: Any) -> np.dtype[Any]:
    try:
        dt = np.dtype(dtype)
    except TypeError as e:
        raise TypeError(f"dtype {dtype!r} is not a NumPy dtype") from e
    if dt.name not in DTYPES:
        raise TypeError(
            f"distributed arrays hold {', '.join(DTYPES)} elements, not {dt.name}; "
            f"convert first (a.astype(np.float64))"
        )
    return dt


def _shape(shape: Any) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    shape = tuple(int(n) for n in shape)
    if not 1 <= len(shape) <= 3:
        raise ValueError(
            f"distributed arrays have 1 to 3 dimensions; shape {shape} has {len(shape)}"
        )
    if any(n < 1 for n in shape):
        raise ValueError(f"shape {shape}: every extent must be >= 1")
    return shape


def _per_axis(value: Any, ndim: int, what: str) -> tuple[int, ...]:
    if isinstance(value, (int, np.integer)):
        return (int(value),) * ndim
    values = tuple(int(v) for v in value)
    if len(values) == 1:
        return values * ndim
    if len(values) != ndim:
        raise ValueError(f"{what} {values} has {len(values)} entries for a {ndim}-D array")
    return values


def normalize_boundary(boundary: Any) -> tuple[str, float]:
    """'none' | 'periodic' | ('constant', value) (or 'constant' for 0) -> (kind, value)."""
    if boundary is None:
        return "none", 0.0
    if isinstance(boundary, str):
        if boundary in ("none", "periodic"):
            return boundary, 0.0
        if boundary == "constant":
            return "constant", 0.0
    elif isinstance(boundary, (tuple, list)) and len(boundary) == 2 and boundary[0] == "constant":
        return "constant", float(boundary[1])
    raise ValueError(
        f"boundary must be 'none', 'periodic' or ('constant', value), not {boundary!r}"
    )


def _device_spec(device: Any, scope: Any) -> tuple[int, int]:
    if isinstance(device, Architecture):
        device = device(0)
    if not isinstance(device, Device):
        raise TypeError(f"devices= takes cpu(0), gpu(i), ...; not {device!r}")
    if scope is not None and device not in scope.devices:
        gpus = sum(1 for d in scope.devices if d.architecture.kind != CPU_KIND)
        raise ValueError(
            f"device {device} is not in this runtime, which has cpu and {gpus} GPU(s) "
            f"(Parla(sim_gpus=N) or PARLA_SIM_GPUS=N simulates GPUs)"
        )
    return device._spec  # type: ignore[no-any-return]


def _points(sizes: Sequence[int], total: int, what: str) -> list[int]:
    sizes = [int(s) for s in sizes]
    if any(s < 0 for s in sizes) or sum(sizes) != total:
        raise ValueError(f"{what} {sizes} must be non-negative sizes adding up to {total}")
    points = [0]
    for s in sizes:
        points.append(points[-1] + s)
    return points


def build_options(
    shape: Any,
    dtype: Any,
    *,
    comm_size: int,
    grid: Any = None,
    splits: Any = None,
    ghosts: Any = 0,
    boundary: Any = "none",
    stencil: str = "star",
    devices: Any = None,
    axis: int = 0,
    device_splits: Any = None,
    name: str | None = None,
    scope: Any = None,
) -> dict[str, Any]:
    """The options dict of ``_core.crosspy.DistArray``."""
    from mpi4py import MPI

    shp = _shape(shape)
    ndim = len(shp)
    dt = check_dtype(dtype)
    if grid is None:
        dims = [int(d) for d in MPI.Compute_dims(comm_size, ndim)]
    else:
        dims = [int(g) for g in grid] if isinstance(grid, Sequence) else [int(grid)]
        if len(dims) != ndim:
            raise ValueError(f"grid {tuple(dims)} has {len(dims)} axes for a {ndim}-D array")
        if int(np.prod(dims)) != comm_size:
            raise ValueError(
                f"grid {tuple(dims)} has {int(np.prod(dims))} ranks but the communicator has "
                f"{comm_size}"
            )
    for d, (n, p) in enumerate(zip(shp, dims)):
        if n < p:
            raise ValueError(
                f"shape {shp} is smaller than the process grid {tuple(dims)}: axis {d} has "
                f"{n} cells for {p} ranks (use fewer ranks or a grid with fewer along axis {d})"
            )
    points: list[list[int]] = []
    if splits is not None:
        if len(splits) != ndim:
            raise ValueError(f"splits has {len(splits)} entries for a {ndim}-D array")
        for d, sizes in enumerate(splits):
            if sizes is None:
                points.append([])
                continue
            if len(sizes) != dims[d]:
                raise ValueError(
                    f"splits[{d}] {list(sizes)} has {len(sizes)} sizes for {dims[d]} ranks "
                    f"along axis {d}"
                )
            points.append(_points(sizes, shp[d], f"splits[{d}]"))
            if min(sizes) < 1:
                raise ValueError(f"splits[{d}] {list(sizes)}: every rank needs >= 1 cell")
    width = _per_axis(ghosts, ndim, "ghosts")
    if any(w < 0 for w in width):
        raise ValueError(f"ghost widths {width} must be >= 0")
    kind, value = normalize_boundary(boundary)
    if stencil not in ("star", "box"):
        raise ValueError(f"stencil must be 'star' or 'box', not {stencil!r}")
    if devices is None:
        devices = [cpu(0)]
    if isinstance(devices, (Device, Architecture)):
        devices = [devices]
    specs = [_device_spec(d, scope) for d in devices]
    if not specs:
        raise ValueError("devices=[] names no device; leave it out for the cpu")
    if not 0 <= axis < ndim:
        raise ValueError(f"axis {axis} is not an axis of a {ndim}-D array")
    dev_points: list[int] = []
    if device_splits is not None:
        if len(device_splits) != len(specs):
            raise ValueError(
                f"device_splits {list(device_splits)} has {len(device_splits)} sizes for "
                f"{len(specs)} devices"
            )
        dev_points = _points(device_splits, sum(int(s) for s in device_splits), "device_splits")
    return {
        "shape": list(shp),
        "dtype": dt.name,
        "grid": dims,
        "splits": points,
        "ghosts": list(width),
        "boundary": kind,
        "boundary_value": value,
        "stencil": stencil,
        "devices": specs,
        "device_axis": axis,
        "device_splits": dev_points,
        "name": name or "",
    }
