#!/usr/bin/env python3
"""Conjugate gradient for the 2-D/3-D Poisson problem: the mpi4py + NumPy baseline.

Written the way mpi4py codes are written today: a Cartesian communicator from
``MPI.Compute_dims``/``Create_cart``, one ghosted NumPy array per rank for the search
direction, halos with ``Sendrecv`` (the halo code of ``apps/heat/heat_mpi4py.py``), dot products
as a local ``np.dot`` plus a blocking ``Allreduce``. The Parla port (``cg.py``) must give the
same residual history to 1e-10 relative.

Problem
    ``A x = b`` on ``n**dims`` cells with homogeneous Dirichlet boundary (the cells outside the
    grid are 0). ``A`` is the unscaled negative Laplacian, applied matrix-free:
    2-D ``(A p)[i,j] = 4*p[i,j] - (((p[i-1,j] + p[i+1,j]) + p[i,j-1]) + p[i,j+1])``;
    3-D ``(A p) = 6*p - (((((p[i-1]+p[i+1]) + p[j-1]) + p[j+1]) + p[k-1]) + p[k+1])``.
    ``b[i,j(,k)] = ((13*i + 7*j (+ 3*k)) % 64) / 64 - 0.5`` (exact, decomposition
    independent), ``x0 = 0``.

Iteration (textbook CG; ``dot`` is the global dot product)::

    r = b; p = r; rr = dot(r, r); bnorm = sqrt(dot(b, b))
    repeat: Ap = A p; alpha = rr / dot(p, Ap); x += alpha p; r -= alpha Ap
            rr_new = dot(r, r); history.append(sqrt(rr_new) / bnorm)
            stop when history[-1] <= tol; p = r + (rr_new / rr) p; rr = rr_new

Metrics: ``iterations``, ``history`` (relative residual after each iteration; or written to
``--history FILE`` as JSON), ``mlups`` (cells x iterations per second), ``gbs`` with a byte
model of 112 bytes per cell and iteration (stencil: read p, write Ap 16; two dots: 16 + 8;
three axpy-like updates: 3 x 24; float64, neighbours from cache).

Check: converged within ``--maxiter`` and the true residual ``||b - A x|| / ||b||`` recomputed
from ``x`` is at most ``10 * tol``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "heat"))
from heat_mpi4py import block_range, exchange_halos


def right_hand_side(starts, extents) -> np.ndarray:
    """``b`` on the box of global cells ``starts .. starts + extents``."""
    weights = (13, 7, 3)[: len(extents)]
    idx = np.ix_(*[np.arange(s, s + e, dtype=np.int64) for s, e in zip(starts, extents)])
    total = sum(w * i for w, i in zip(weights, idx))
    return (total % 64).astype(np.float64) / 64.0 - 0.5


def apply_operator(p: np.ndarray, out: np.ndarray) -> None:
    """``out = A p`` on the interior; ``p`` is ghosted (halos filled), ``out`` is not."""
    if p.ndim == 2:
        out[...] = 4.0 * p[1:-1, 1:-1] - (
            ((p[:-2, 1:-1] + p[2:, 1:-1]) + p[1:-1, :-2]) + p[1:-1, 2:]
        )
    else:
        out[...] = 6.0 * p[1:-1, 1:-1, 1:-1] - (
            ((((p[:-2, 1:-1, 1:-1] + p[2:, 1:-1, 1:-1]) + p[1:-1, :-2, 1:-1])
              + p[1:-1, 2:, 1:-1]) + p[1:-1, 1:-1, :-2])
            + p[1:-1, 1:-1, 2:]
        )


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Conjugate gradient for the Poisson problem with mpi4py + NumPy (the "
        "baseline of apps/cg). Prints one JSON line last on stdout.")
    p.add_argument("--n", type=int, default=512, help="global cells per axis (default 512)")
    p.add_argument("--dims", type=int, choices=(2, 3), default=2, help="2 (5-point) or 3 (7-point)")
    p.add_argument("--tol", type=float, default=1e-8,
                   help="relative residual to reach (default 1e-8)")
    p.add_argument("--maxiter", type=int, default=10000, help="iteration limit (default 10000)")
    p.add_argument("--history", metavar="FILE",
                   help="write the residual history here (JSON list) instead of into metrics")
    p.add_argument("--progress", type=int, default=0,
                   help="print the residual to stderr every this many iterations (0: never)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    nd, n = args.dims, args.n
    pgrid = MPI.Compute_dims(comm.Get_size(), nd)
    if n < max(pgrid):
        if comm.Get_rank() == 0:
            print(f"cg_mpi4py: --n {n} is smaller than the process grid {pgrid}", file=sys.stderr)
        return 2
    cart = comm.Create_cart(pgrid, periods=[False] * nd, reorder=True)
    rank, size = cart.Get_rank(), cart.Get_size()
    ranges = [block_range(n, q, c) for q, c in zip(pgrid, cart.Get_coords(rank))]
    starts = [r[0] for r in ranges]
    extents = [r[1] for r in ranges]
    interior = (slice(1, -1),) * nd

    def log(msg):
        if rank == 0:
            print(f"[cg_mpi4py] {msg}", file=sys.stderr, flush=True)

    def dot(a, b):
        local = np.array([np.dot(a.ravel(), b.ravel())])
        total = np.empty(1)
        cart.Allreduce(local, total, op=MPI.SUM)
        return float(total[0])

    log(f"{nd}-D n={n} tol={args.tol} maxiter={args.maxiter} ranks={size} grid={pgrid}")
    b = right_hand_side(starts, extents)
    x = np.zeros_like(b)
    r = b.copy()
    p = np.zeros([e + 2 for e in extents])  # ghosted: the operator reads its neighbours
    p[interior] = r
    ap = np.empty_like(b)
    bnorm = np.sqrt(dot(b, b))
    rr = dot(r, r)
    history = []

    cart.Barrier()
    t0 = MPI.Wtime()
    converged = False
    while len(history) < args.maxiter:
        exchange_halos(cart, p)
        apply_operator(p, ap)
        alpha = rr / dot(p[interior], ap)
        x += alpha * p[interior]
        r -= alpha * ap
        rr_new = dot(r, r)
        history.append(float(np.sqrt(rr_new) / bnorm))
        if args.progress and len(history) % args.progress == 0:
            log(f"iteration {len(history)}: relative residual {history[-1]:.3e}")
        if history[-1] <= args.tol:
            converged = True
            break
        p[interior] = r + (rr_new / rr) * p[interior]
        rr = rr_new
    elapsed = cart.allreduce(MPI.Wtime() - t0, op=MPI.MAX)

    # The true residual, from x itself (not the recurrence).
    xg = np.zeros_like(p)
    xg[interior] = x
    exchange_halos(cart, xg)
    ax = np.empty_like(b)
    apply_operator(xg, ax)
    res = b - ax
    true_residual = float(np.sqrt(dot(res, res)) / bnorm)
    verified = true_residual <= 10 * args.tol

    iters = len(history)
    cells = n**nd
    metrics = {"iterations": iters, "final_residual": history[-1] if history else None,
               "true_residual": true_residual,
               "mlups": cells * iters / elapsed / 1e6 if elapsed > 0 else 0.0,
               "gbs": 112.0 * cells * iters / elapsed / 1e9 if elapsed > 0 else 0.0,
               "bytes_per_cell_iteration": 112}
    if args.history:
        if rank == 0:
            with open(args.history, "w") as f:
                json.dump(history, f)
        metrics["history_file"] = args.history
    else:
        metrics["history"] = history
    result = {
        "app": "cg_mpi4py",
        "ranks": size,
        "workers": 1,
        "devices": ["cpu"],
        "params": {"n": n, "dims": nd, "tol": args.tol, "maxiter": args.maxiter,
                   "grid": list(pgrid)},
        "seconds": elapsed,
        "metrics": metrics,
        "check": {"ok": bool(converged and verified), "converged": converged,
                  "verified": bool(verified), "true_residual": true_residual},
    }
    log(f"{'converged' if converged else 'NOT converged'} after {iters} iterations in "
        f"{elapsed:.3f} s, true residual {true_residual:.3e}")
    if rank == 0:
        print(json.dumps(result), flush=True)
    return 0 if result["check"]["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
