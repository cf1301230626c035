#!/usr/bin/env python3
"""Porting step 3: the array's halo plan replaces the halo code (docs/porting.md).

``u`` and ``v`` become ``parla.crosspy`` arrays with one ghost layer: the process grid
(``MPI.Compute_dims``, as the baseline), the ghost cells, the boundary and the halo plan come
with them. ``u.exchange_halos()`` spawns the exchange as tasks (pack, send/receive, unpack),
and ``v.map(sweep, u, region="split")`` spawns per partition an interior task, which does
not read ghost cells and so runs while the halos travel, and a boundary task, which waits
for them. No wait in the loop: the arrays order their own tasks. The sweep is the baseline's
expression on a tile: ``t.ghosted`` is the tile grown by its ghost layer.
"""

from __future__ import annotations

import sys

import numpy as np
from common import base, parse_args, report
from mpi4py import MPI

import parla.crosspy as xp
from parla import Parla


def make_sweep(dims: int):
    c0, c1 = base.coefficients(dims)

    def sweep(out, u):                            # out, u: Tiles of v and u
        g = u.ghosted
        if dims == 2:
            out.interior[...] = c0 * g[1:-1, 1:-1] + c1 * (
                ((g[:-2, 1:-1] + g[2:, 1:-1]) + g[1:-1, :-2]) + g[1:-1, 2:])
        else:
            out.interior[...] = c0 * g[1:-1, 1:-1, 1:-1] + c1 * (
                ((((g[:-2, 1:-1, 1:-1] + g[2:, 1:-1, 1:-1]) + g[1:-1, :-2, 1:-1])
                  + g[1:-1, 2:, 1:-1]) + g[1:-1, 1:-1, :-2]) + g[1:-1, 1:-1, 2:])
    return sweep


def checksum(a, comm) -> float:
    """The baseline's checksum from this rank's partitions (host copies of the owned cells)."""
    digits = np.zeros(6, dtype=np.int64)
    for p in range(len(a.partitions)):
        digits += np.array(base.checksum_digits(a.local(p)), dtype=np.int64)
    total = np.empty_like(digits)
    comm.Allreduce(digits, total, op=MPI.SUM)
    return base.checksum_from_digits(total.tolist())


def run(args, devices, sim_gpus=None) -> int:
    comm = MPI.COMM_WORLD
    sweep = make_sweep(args.dims)
    with Parla(sim_gpus=sim_gpus) as parla:
        boundary = "periodic" if args.boundary == "periodic" else ("constant", 0.0)
        u = xp.zeros((args.n,) * args.dims, ghosts=1, boundary=boundary, devices=devices,
                     name="u")
        v = xp.empty_like(u, name="v")
        u.map(lambda t: base.initial_condition([s.start for s in t.box], t.shape), halo=False)

        comm.Barrier()
        t0 = MPI.Wtime()
        for _ in range(args.iters):
            u.exchange_halos()                    # <- was: exchange_halos(cart, u)
            v.map(sweep, u, region="split")       # <- was: jacobi_step(u, out, c0, c1)
            u, v = v, u
        u.wait()
        elapsed = comm.allreduce(MPI.Wtime() - t0, op=MPI.MAX)
        total = checksum(u, comm)
        workers = parla.num_workers
        u.close()
        v.close()
    return report(f"step{4 if sim_gpus is not None else 3}", args, comm, total, elapsed,
                  workers, [str(d) for d in devices])


def main(argv=None) -> int:
    from parla.devices import cpu

    return run(parse_args("step3", argv), [cpu(0)])


if __name__ == "__main__":
    sys.exit(main())
