#!/usr/bin/env python3
"""Porting step 1: the baseline's time loop inside ``with Parla():`` (docs/porting.md).

Nothing else changes: the Cartesian communicator, the ghosted NumPy arrays, the ``Sendrecv``
halo code and the NumPy sweep are the baseline's own functions. What this step checks is the
environment: the Parla runtime (worker threads, its duplicate of the communicator, the
progress thread) coexists with the application's own mpi4py calls, and the launcher does not
pin the rank's threads to one core (``mpiexec --bind-to none``).
"""

from __future__ import annotations

import sys

import numpy as np
from common import base, parse_args, report
from mpi4py import MPI

from parla import Parla


def main(argv=None) -> int:
    args = parse_args("step1", argv)
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

    with Parla() as parla:                        # <- new: the runtime runs on every rank
        cart.Barrier()
        t0 = MPI.Wtime()
        for _ in range(args.iters):               # the baseline's loop, unchanged
            base.exchange_halos(cart, u)
            base.jacobi_step(u, out, c0, c1)
            u, out = out, u
        elapsed = cart.allreduce(MPI.Wtime() - t0, op=MPI.MAX)
        workers = parla.num_workers

    checksum = base.global_checksum(u[interior], cart)
    return report("step1", args, cart, checksum, elapsed, workers)


if __name__ == "__main__":
    sys.exit(main())
