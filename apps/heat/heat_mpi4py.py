#!/usr/bin/env python3
"""Explicit heat equation / Jacobi sweep, 2-D 5-point and 3-D 7-point: the mpi4py + NumPy baseline.

Written the way mpi4py codes are written today: a Cartesian communicator from
``MPI.Compute_dims``/``Create_cart``, one NumPy array per rank with one ghost layer, halos
exchanged with ``Sendrecv`` (faces along axis 0 are contiguous and sent directly, the others are
packed with ``np.ascontiguousarray``), reductions with ``Allreduce``. The Parla port
(``heat.py``), the C++ app (``build/apps/heat``) and the native kernels
(``parla::kernels::jacobi_2d5/3d7``) must reproduce what this file computes, so the numerical
definition is spelled out here and is normative.

Problem
    Global grid of ``n`` cells per axis (``n**dims`` cells), cell ``(i, j[, k])`` with global
    indices in ``[0, n)``, row-major with the last axis fastest.

Initial condition (exact in float64, independent of the decomposition)
    ``u0[i, j]    = ((13*i + 7*j) % 64) / 64``            (2-D)
    ``u0[i, j, k] = ((13*i + 7*j + 3*k) % 64) / 64``      (3-D)

Boundary (``--boundary``)
    ``fixed``: Dirichlet 0. The cells outside ``[0, n)`` hold 0 at every step; all ``n**dims``
    cells are updated. ``periodic``: the neighbour of cell ``-1`` is cell ``n - 1`` (and so on).

Update (one iteration; ``u`` is the old state, every cell reads only old values)
    2-D: ``out = c0*u[i,j] + c1*(((u[i-1,j] + u[i+1,j]) + u[i,j-1]) + u[i,j+1])``
    3-D: ``out = c0*u[i,j,k] + c1*(((((u[i-1,j,k] + u[i+1,j,k]) + u[i,j-1,k]) + u[i,j+1,k])
                                    + u[i,j,k-1]) + u[i,j,k+1])``
    with ``c1 = 1/8`` and ``c0 = 1 - 2*dims*c1`` (0.5 in 2-D, 0.25 in 3-D): all exact, all
    weights non-negative, so every value stays in ``[0, 1)``. Evaluated in float64 exactly in
    this order: ``c0*u`` rounded, the neighbour sum left to right each addition rounded,
    ``c1*sum`` rounded, then the final addition. No fused multiply-add. Any implementation
    that follows this order gets the same bits (NumPy does, element by element; C/C++ must be
    compiled with ``-ffp-contract=off``).

Checksum (``check.checksum``; identical bits for every decomposition and rank count)
    Each value ``v`` in ``[0, 1)`` is split exactly into six 24-bit digits
    ``v = sum_k d_k 2**(-24(k+1)) + (rest < 2**-144)``: ``a = v * 2**24; d_0 = floor(a);
    a = (a - d_0) * 2**24; d_1 = floor(a); ...`` (every step is exact in float64). The digit
    sums ``D_k = sum over all cells of d_k`` are exact integers (int64 per rank, combined
    with an exact integer allreduce). They are normalised (for ``k = 5..1``:
    ``D_{k-1} += D_k >> 24; D_k &= 2**24 - 1``), and the checksum is the float64 value of
    ``((((D_5*2**-144 + D_4*2**-120) + D_3*2**-96) + D_2*2**-72) + D_1*2**-48) + D_0*2**-24``
    evaluated left to right (every term is exact; only the additions round). It is the sum
    of all cells truncated below 2**-144, so it depends only on the global array.

Metrics: ``mlups`` (million cell updates per second), ``gbs`` = 16 bytes per cell update
(one float64 read of ``u`` and one write of ``out``: the minimum traffic of a sweep when the
neighbours come from cache; write-allocate traffic not counted) / seconds. ``seconds`` is the
slowest rank's time for the iteration loop (halo exchanges included).

Check: every value finite and in ``[0, 1)``; mass conserved (periodic: relative change of the
checksum below ``1e-12 * iters``) or not increased (fixed); with ``--verify`` (default for
grids of up to 2**18 cells), rank 0 recomputes the whole run serially with ``np.pad`` and
compares bit for bit.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

DIGIT_BITS = 24
DIGITS = 6
C1 = 0.125


def coefficients(dims: int) -> tuple[float, float]:
    """``(c0, c1)`` of the update for ``dims`` = 2 or 3."""
    return 1.0 - 2 * dims * C1, C1


def initial_condition(starts, extents) -> np.ndarray:
    """The initial values of the box of global cells ``starts .. starts + extents``."""
    weights = (13, 7, 3)[: len(extents)]
    idx = np.ix_(*[np.arange(s, s + e, dtype=np.int64) for s, e in zip(starts, extents)])
    total = sum(w * i for w, i in zip(weights, idx))
    return (total % 64).astype(np.float64) / 64.0


def checksum_digits(values: np.ndarray) -> list[int]:
    """Exact per-digit integer sums ``D_k`` of ``values`` (any shape, any layout)."""
    a = np.asarray(values, dtype=np.float64).ravel()
    sums = []
    for _ in range(DIGITS):
        a = a * float(1 << DIGIT_BITS)
        d = np.floor(a)
        a -= d
        sums.append(int(d.astype(np.int64).sum()))
    return sums


def checksum_from_digits(digit_sums) -> float:
    """The checksum from the global digit sums (see the module docstring)."""
    d = [int(x) for x in digit_sums]
    mask = (1 << DIGIT_BITS) - 1
    for k in range(DIGITS - 1, 0, -1):
        d[k - 1] += d[k] >> DIGIT_BITS
        d[k] &= mask
    total = 0.0
    for k in range(DIGITS - 1, -1, -1):
        total += float(d[k]) * 2.0 ** (-DIGIT_BITS * (k + 1))
    return total


def global_checksum(local_interior: np.ndarray, comm) -> float:
    """Checksum of a distributed array given each rank's interior (exact integer allreduce)."""
    from mpi4py import MPI

    local = np.array(checksum_digits(local_interior), dtype=np.int64)
    total = np.empty_like(local)
    comm.Allreduce(local, total, op=MPI.SUM)
    return checksum_from_digits(total.tolist())


def jacobi_step(u: np.ndarray, out: np.ndarray, c0: float, c1: float) -> None:
    """One sweep over the interior of the ghosted array ``u`` into ``out`` (same shape)."""
    if u.ndim == 2:
        out[1:-1, 1:-1] = c0 * u[1:-1, 1:-1] + c1 * (
            ((u[:-2, 1:-1] + u[2:, 1:-1]) + u[1:-1, :-2]) + u[1:-1, 2:]
        )
    else:
        out[1:-1, 1:-1, 1:-1] = c0 * u[1:-1, 1:-1, 1:-1] + c1 * (
            ((((u[:-2, 1:-1, 1:-1] + u[2:, 1:-1, 1:-1]) + u[1:-1, :-2, 1:-1])
              + u[1:-1, 2:, 1:-1]) + u[1:-1, 1:-1, :-2])
            + u[1:-1, 1:-1, 2:]
        )


def serial_reference(n: int, dims: int, iters: int, periodic: bool) -> np.ndarray:
    """The whole run on one array (for --verify): pad with wrap or zeros, then sweep."""
    c0, c1 = coefficients(dims)
    u = initial_condition((0,) * dims, (n,) * dims)
    for _ in range(iters):
        g = np.pad(u, 1, mode="wrap" if periodic else "constant")
        out = np.empty_like(g)
        jacobi_step(g, out, c0, c1)
        u = out[(slice(1, -1),) * dims].copy()
    return u


def block_range(n: int, parts: int, coord: int) -> tuple[int, int]:
    """``(start, extent)`` of block ``coord`` when ``n`` cells are split into ``parts``."""
    base, extra = divmod(n, parts)
    return coord * base + min(coord, extra), base + (1 if coord < extra else 0)


def exchange_halos(cart, u: np.ndarray) -> None:
    """Fills the one-cell ghost faces of ``u`` from the Cartesian neighbours (star stencil)."""
    for axis in range(u.ndim):
        lo, hi = cart.Shift(axis, 1)

        def face(index, axis=axis):
            sl = [slice(1, -1)] * u.ndim
            sl[axis] = index
            return tuple(sl)

        if axis == 0:
            # A plane of axis 0 is contiguous in C order: send and receive in place. The
            # whole plane (ghost rim included) travels, which keeps it one contiguous buffer.
            cart.Sendrecv(u[-2], dest=hi, sendtag=0, recvbuf=u[0], source=lo, recvtag=0)
            cart.Sendrecv(u[1], dest=lo, sendtag=1, recvbuf=u[-1], source=hi, recvtag=1)
        else:
            send_hi = np.ascontiguousarray(u[face(-2)])
            send_lo = np.ascontiguousarray(u[face(1)])
            recv = np.empty_like(send_hi)
            cart.Sendrecv(send_hi, dest=hi, sendtag=2 * axis, recvbuf=recv, source=lo,
                          recvtag=2 * axis)
            if lo >= 0:  # MPI.PROC_NULL is negative: a fixed boundary keeps its zeros
                u[face(0)] = recv
            cart.Sendrecv(send_lo, dest=lo, sendtag=2 * axis + 1, recvbuf=recv, source=hi,
                          recvtag=2 * axis + 1)
            if hi >= 0:
                u[face(-1)] = recv


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Explicit heat / Jacobi sweep with mpi4py + NumPy (the baseline of "
        "apps/heat). Prints one JSON line last on stdout.")
    p.add_argument("--n", type=int, default=1024, help="global cells per axis (default 1024)")
    p.add_argument("--dims", type=int, choices=(2, 3), default=2, help="2 (5-point) or 3 (7-point)")
    p.add_argument("--iters", type=int, default=100, help="iterations (default 100)")
    p.add_argument("--boundary", choices=("fixed", "periodic"), default="fixed",
                   help="fixed (Dirichlet 0) or periodic (default fixed)")
    p.add_argument("--warmup", type=int, default=2, help="untimed iterations first (default 2)")
    p.add_argument("--verify", choices=("auto", "yes", "no"), default="auto",
                   help="recompute serially on rank 0 and compare bit for bit "
                   "(auto: when n**dims <= 2**18)")
    p.add_argument("--progress", type=int, default=0,
                   help="print progress to stderr every this many iterations (0: never)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    dims_n, n, periodic = args.dims, args.n, args.boundary == "periodic"
    pgrid = MPI.Compute_dims(comm.Get_size(), dims_n)
    if n < max(pgrid):
        if comm.Get_rank() == 0:
            print(f"heat_mpi4py: --n {n} is smaller than the process grid {pgrid}", file=sys.stderr)
        return 2
    cart = comm.Create_cart(pgrid, periods=[periodic] * dims_n, reorder=True)
    rank, size = cart.Get_rank(), cart.Get_size()
    coords = cart.Get_coords(rank)
    ranges = [block_range(n, p, c) for p, c in zip(pgrid, coords)]
    starts = [r[0] for r in ranges]
    extents = [r[1] for r in ranges]
    interior = (slice(1, -1),) * dims_n

    def log(msg):
        if rank == 0:
            print(f"[heat_mpi4py] {msg}", file=sys.stderr, flush=True)

    log(f"{dims_n}-D n={n} iters={args.iters} boundary={args.boundary} ranks={size} "
        f"grid={pgrid}")
    c0, c1 = coefficients(dims_n)
    u = np.zeros([e + 2 for e in extents])
    u[interior] = initial_condition(starts, extents)
    out = np.zeros_like(u)
    initial_sum = global_checksum(u[interior], cart)

    for _ in range(args.warmup):  # warm caches and the MPI connections on copies
        exchange_halos(cart, u.copy())
    cart.Barrier()
    t0 = MPI.Wtime()
    for it in range(args.iters):
        exchange_halos(cart, u)
        jacobi_step(u, out, c0, c1)
        u, out = out, u
        if args.progress and (it + 1) % args.progress == 0:
            log(f"iteration {it + 1}/{args.iters}")
    elapsed = cart.allreduce(MPI.Wtime() - t0, op=MPI.MAX)

    mine = u[interior]
    local_ok = bool(np.all(np.isfinite(mine)) and mine.min() >= 0.0 and mine.max() < 1.0)
    bounds_ok = cart.allreduce(local_ok, op=MPI.LAND)
    checksum = global_checksum(mine, cart)
    drift = abs(checksum - initial_sum) / initial_sum
    mass_ok = drift <= 1e-12 * max(args.iters, 1) if periodic else checksum <= initial_sum
    check = {"ok": bool(bounds_ok and mass_ok), "checksum": checksum,
             "initial_checksum": initial_sum, "bounds": bounds_ok, "mass": bool(mass_ok)}

    cells = n**dims_n
    verify = args.verify == "yes" or (args.verify == "auto" and cells <= 1 << 18)
    if verify:
        blocks = cart.gather((starts, extents, mine.copy()), root=0)
        if rank == 0:
            whole = np.empty((n,) * dims_n)
            for s, e, block in blocks:
                whole[tuple(slice(a, a + b) for a, b in zip(s, e))] = block
            ref = serial_reference(n, dims_n, args.iters, periodic)
            same = bool(np.array_equal(whole, ref))
            check["serial_identical"] = same
            check["ok"] = check["ok"] and same
        check = cart.bcast(check, root=0)

    updates = cells * args.iters
    result = {
        "app": "heat_mpi4py",
        "ranks": size,
        "workers": 1,
        "devices": ["cpu"],
        "params": {"n": n, "dims": dims_n, "iters": args.iters, "boundary": args.boundary,
                   "grid": list(pgrid), "kernel": "numpy"},
        "seconds": elapsed,
        "metrics": {"mlups": updates / elapsed / 1e6 if elapsed > 0 else 0.0,
                    "gbs": 16.0 * updates / elapsed / 1e9 if elapsed > 0 else 0.0,
                    "bytes_per_update": 16},
        "check": check,
    }
    log(f"done in {elapsed:.3f} s, checksum {checksum!r}, ok={check['ok']}")
    if rank == 0:
        print(json.dumps(result), flush=True)
    return 0 if check["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
