"""Distributed arrays with halo exchanges as tasks (CrossPy-style): ``import parla.crosspy as xp``.

An array is partitioned across the ranks of a communicator (a Cartesian grid) and, inside
each rank, across its devices (cpu, GPUs; simulated GPUs too); every partition carries ghost
layers. Halo exchanges, per-partition compute and reductions are tasks in the rank's Parla
task graph, ordered by the array itself::

    import numpy as np
    import parla.crosspy as xp
    from parla import Parla
    from parla.devices import cpu, gpu

    with Parla():
        u = xp.from_global(u0 if rank == 0 else None, ghosts=1, boundary="periodic",
                           devices=[cpu(0), gpu(0)])
        v = xp.empty_like(u)
        for step in range(100):
            u.exchange_halos()                       # pack -> send/recv or copy -> unpack
            u.map(lambda t: 0.25 * (t.ghosted[:-2, 1:-1] + t.ghosted[2:, 1:-1]
                                    + t.ghosted[1:-1, :-2] + t.ghosted[1:-1, 2:]),
                  out=v, region="split")             # interior overlaps the exchange
            u, v = v, u
        print(u.norm2())

See docs/arrays.md.
"""

from __future__ import annotations

import atexit

import parla.mpi as _mpi  # noqa: F401  (its exit handler must be registered before ours)
from parla.crosspy import linalg, testing
from parla.crosspy._dist_array import (
    DistArray,
    Future,
    Partition,
    Tile,
    array,
    close_all,
    dot,
    empty,
    empty_like,
    from_global,
    full,
    full_like,
    load,
    ones,
    zeros,
    zeros_like,
)
from parla.crosspy._options import DTYPES

asarray = array

__all__ = [
    "DTYPES",
    "DistArray",
    "Future",
    "Partition",
    "Tile",
    "array",
    "asarray",
    "close_all",
    "dot",
    "empty",
    "empty_like",
    "from_global",
    "full",
    "full_like",
    "linalg",
    "load",
    "ones",
    "testing",
    "zeros",
    "zeros_like",
]

# Exit handlers run last-registered first: arrays are dropped before parla.mpi closes the
# communicators they use.
atexit.register(close_all)
