#!/usr/bin/env python3
"""Porting step 2: one task per block (docs/porting.md).

The rank's array is cut into ``--blocks`` slabs along axis 0, and every iteration spawns one
sweep task per slab: the tasks run on the rank's worker threads at once (NumPy releases the
GIL inside its loops), each writing its own rows of ``out``. The halo exchange is still the
baseline's ``Sendrecv`` code, on the main thread, between iterations: the main thread waits
for the iteration's tasks before it exchanges again. Same numbers, bit for bit: a sweep of a
slab computes each cell with the same expression as the sweep of the whole array.
"""

from __future__ import annotations

import sys

import numpy as np
from common import base, parse_args, report
from mpi4py import MPI

from parla import Parla, TaskSpace, spawn
from parla.devices import cpu


def sweep_rows(u: np.ndarray, out: np.ndarray, lo: int, hi: int, c0: float, c1: float) -> None:
    """The baseline's sweep restricted to the ghosted rows lo-1 .. hi (interior rows lo..hi-1)."""
    base.jacobi_step(u[lo - 1 : hi + 1], out[lo - 1 : hi + 1], c0, c1)


def main(argv=None) -> int:
    args = parse_args("step2", argv, lambda p: p.add_argument(
        "--blocks", type=int, default=0, help="slabs per rank (default: one per worker)"))
    comm = MPI.COMM_WORLD
    nd, n = args.dims, args.n
    pgrid = MPI.Compute_dims(comm.Get_size(), nd)
    cart = comm.Create_cart(pgrid, periods=[args.boundary == "periodic"] * nd, reorder=True)
    ranges = [base.block_range(n, p, c) for p, c in zip(pgrid, cart.Get_coords(cart.Get_rank()))]
    interior = (slice(1, -1),) * nd
    c0, c1 = base.coefficients(nd)
    u = np.zeros([e + 2 for _, e in ranges])
    u[interior] = base.initial_condition([s for s, _ in ranges], [e for _, e in ranges])
    out = np.zeros_like(u)

    with Parla() as parla:
        rows = ranges[0][1]
        nblocks = min(rows, args.blocks or parla.num_workers)
        slabs = [base.block_range(rows, nblocks, b) for b in range(nblocks)]
        T = TaskSpace("sweep")                    # <- new: one task per (iteration, slab)
        cart.Barrier()
        t0 = MPI.Wtime()
        for it in range(args.iters):
            base.exchange_halos(cart, u)          # still the baseline's halo code
            for b, (start, count) in enumerate(slabs):
                @spawn(T[it, b], placement=cpu)
                def sweep():
                    # Parla copies the captured u, out, start, count when the task is spawned.
                    sweep_rows(u, out, 1 + start, 1 + start + count, c0, c1)  # noqa: B023
            T[it, 0:nblocks].wait()               # the next exchange reads what they wrote
            u, out = out, u
        elapsed = cart.allreduce(MPI.Wtime() - t0, op=MPI.MAX)
        workers = parla.num_workers

    checksum = base.global_checksum(u[interior], cart)
    return report("step2", args, cart, checksum, elapsed, workers)


if __name__ == "__main__":
    sys.exit(main())
