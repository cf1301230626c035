#!/usr/bin/env python3
"""Halo exchange of a 2-D array: Parla's halo plan against the hand-written mpi4py exchange.

Both exchange the same 2-D float64 array, periodic, ghost width 1, star stencil (faces, no
corners), over the same Cartesian process grid (``MPI.Compute_dims``):

- ``parla``: ``x = xp.zeros((n, n), ghosts=1, boundary="periodic")`` and
  ``x.exchange_halos().wait()``: the plan built once with the array; each call spawns the
  pack, send/receive (or intra-rank copy) and unpack tasks;
- ``mpi4py``: what users write today: a Cartesian communicator, ``Sendrecv`` of the
  contiguous row faces straight from the array, and of the column faces packed into
  contiguous buffers (``np.ascontiguousarray``) and unpacked after.

Each repeat times ``--iters`` back-to-back exchanges; the figure is the median over
``--repeat`` repeats of µs per exchange (after one warm-up repeat), for each method in the
same run, and the ratio the median of each repeat's own Parla/mpi4py ratio. The ghost
contents of both are checked against each other and against a global NumPy reference.
Progress goes to stderr; the last stdout line is the DESIGN §6 JSON object.

    mpiexec -n 2 --bind-to none .venv/bin/python bench/bench_halo.py --n 8192 --iters 50
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any

import numpy as np
from mpi4py import MPI

import parla.crosspy as xp
from parla import Parla


class Mpi4pyHalo:
    """The hand-written exchange: one (rows + 2) x (cols + 2) array per rank."""

    def __init__(self, comm: Any, n: int, dims: list[int]):
        self.cart = comm.Create_cart(dims, periods=[True, True], reorder=False)
        coords = self.cart.Get_coords(self.cart.Get_rank())
        self.lo = [_split(n, dims[d], coords[d]) for d in range(2)]
        self.hi = [_split(n, dims[d], coords[d] + 1) for d in range(2)]
        rows, cols = self.hi[0] - self.lo[0], self.hi[1] - self.lo[1]
        self.u = np.zeros((rows + 2, cols + 2))
        self.up, self.down = self.cart.Shift(0, 1)
        self.left, self.right = self.cart.Shift(1, 1)
        self.send_col = np.empty(rows)
        self.recv_col = np.empty(rows)

    def exchange(self) -> None:
        u, cart = self.u, self.cart
        # Rows are contiguous: send and receive in place.
        cart.Sendrecv(u[1, 1:-1], dest=self.up, sendtag=0,
                      recvbuf=u[-1, 1:-1], source=self.down, recvtag=0)
        cart.Sendrecv(u[-2, 1:-1], dest=self.down, sendtag=1,
                      recvbuf=u[0, 1:-1], source=self.up, recvtag=1)
        # Columns are strided: pack, exchange, unpack.
        self.send_col[:] = u[1:-1, 1]
        cart.Sendrecv(self.send_col, dest=self.left, sendtag=2,
                      recvbuf=self.recv_col, source=self.right, recvtag=2)
        u[1:-1, -1] = self.recv_col
        self.send_col[:] = u[1:-1, -2]
        cart.Sendrecv(self.send_col, dest=self.right, sendtag=3,
                      recvbuf=self.recv_col, source=self.left, recvtag=3)
        u[1:-1, 0] = self.recv_col


def _split(n: int, parts: int, i: int) -> int:
    """Start of block i of n cells over `parts` blocks (the first n % parts get one more)."""
    q, r = divmod(n, parts)
    return i * q + min(i, r)


def values(n: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """The global array's cells (rows x cols, indices taken modulo n): cell (i, j) holds
    i * n + j, exact in float64. Never builds the n x n array (2 GiB at n = 16384)."""
    return (rows % n)[:, None] * float(n) + (cols % n)[None, :]


def expected_ghosted(n: int, lo: list[int], hi: list[int]) -> np.ndarray:
    """The rank's (rows + 2) x (cols + 2) block of the periodically padded global array."""
    return values(n, np.arange(lo[0] - 1, hi[0] + 1), np.arange(lo[1] - 1, hi[1] + 1))


def star_mask(shape: tuple[int, int]) -> np.ndarray:
    """True except at the four corner cells (a star exchange leaves them alone)."""
    mask = np.ones(shape, dtype=bool)
    for i in (0, -1):
        for j in (0, -1):
            mask[i, j] = False
    return mask


def timed(methods: dict[str, Any], iters: int, repeat: int, comm: Any) -> dict[str, list[float]]:
    """µs per exchange of each method in each of `repeat` timed repeats of `iters`
    exchanges. The methods alternate repeat by repeat, so a busy machine slows them alike;
    the first round is a warm-up."""
    samples: dict[str, list[float]] = {name: [] for name in methods}
    for r in range(repeat + 1):
        for name, exchange in methods.items():
            comm.Barrier()
            start = time.perf_counter()
            for _ in range(iters):
                exchange()
            seconds = time.perf_counter() - start
            # The slowest rank's time is the exchange's time.
            seconds = comm.allreduce(seconds, op=MPI.MAX)
            if r == 0:
                continue
            samples[name].append(seconds / iters * 1e6)
            if comm.Get_rank() == 0:
                print(f"{name} repeat {r}/{repeat}: {samples[name][-1]:.1f} us/exchange",
                      file=sys.stderr)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1024, help="global edge of the n x n array")
    parser.add_argument("--iters", type=int, default=50, help="exchanges per timed repeat")
    parser.add_argument("--repeat", type=int, default=5, help="timed repeats (median)")
    parser.add_argument("--workers", type=int, default=2, help="Parla workers per rank")
    args = parser.parse_args()

    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    n = args.n
    dims = MPI.Compute_dims(size, 2)
    wall = time.perf_counter()

    # -- mpi4py: fill the interior, exchange, check, time --------------------------------
    hand = Mpi4pyHalo(comm, n, dims)
    lo, hi = hand.lo, hand.hi
    reference = expected_ghosted(n, lo, hi)
    mask = star_mask(reference.shape)
    hand.u[1:-1, 1:-1] = reference[1:-1, 1:-1]
    hand.exchange()
    ok_mpi4py = bool(np.array_equal(hand.u[mask], reference[mask]))

    # -- Parla: the same array as a distributed array with a halo plan -------------------
    with Parla(args.workers):
        x = xp.zeros((n, n), np.float64, grid=dims, ghosts=1, boundary="periodic")
        x.map(lambda t: values(n, *(np.arange(b.start, b.stop) for b in t.box)), out=x)
        x.exchange_halos().wait()
        (part,) = x.partitions
        ghosted = np.asarray(part)
        ok_parla = part.box == (slice(lo[0], hi[0]), slice(lo[1], hi[1])) and bool(
            np.array_equal(ghosted[mask], reference[mask])
        )
        del ghosted
        samples = timed(
            {"parla": lambda: x.exchange_halos().wait(), "mpi4py": hand.exchange},
            args.iters,
            args.repeat,
            comm,
        )
        x.close()
    parla_us = statistics.median(samples["parla"])
    mpi4py_us = statistics.median(samples["mpi4py"])
    # The ratio pairs each repeat's two methods (run back to back): a slow phase of the
    # machine weighs on both sides of a pair alike.
    ratio = statistics.median(p / m for p, m in zip(samples["parla"], samples["mpi4py"]))

    ok = bool(comm.allreduce(ok_parla and ok_mpi4py, op=MPI.LAND))
    row_face = (hi[1] - lo[1]) * 8
    col_face = (hi[0] - lo[0]) * 8
    if rank == 0:
        print(
            f"n={n} ({dims[0]}x{dims[1]} ranks, faces {row_face // 1024} KiB rows / "
            f"{col_face // 1024} KiB columns): parla {parla_us:.1f} us/exchange, mpi4py "
            f"{mpi4py_us:.1f} us/exchange, parla/mpi4py {ratio:.3f}",
            file=sys.stderr,
        )
        result = {
            "app": "bench_halo",
            "ranks": size,
            "workers": args.workers,
            "devices": ["cpu"],
            "params": {
                "n": n,
                "iters": args.iters,
                "repeat": args.repeat,
                "grid": list(dims),
                "ghosts": 1,
                "boundary": "periodic",
                "stencil": "star",
                "dtype": "float64",
            },
            "seconds": time.perf_counter() - wall,
            "metrics": {
                "us_per_exchange": {"parla": parla_us, "mpi4py": mpi4py_us},
                "ratio_parla_over_mpi4py": ratio,
                "face_bytes": {"row": row_face, "column": col_face},
            },
            "check": {"ok": ok, "parla": ok_parla, "mpi4py": ok_mpi4py},
        }
        print(json.dumps(result))
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
