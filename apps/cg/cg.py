#!/usr/bin/env python3
"""Conjugate gradient for the 2-D/3-D Poisson problem on Parla-MPI: the port of ``cg_mpi4py.py``.

Same problem, operator (and its operation order), right-hand side, iteration and stopping rule
as the baseline (its module docstring is normative), on ``parla.crosspy`` arrays: the search
direction ``p`` has one ghost layer (constant 0 outside the grid), ``x``, ``r``, ``b``, ``Ap``
none. Per iteration: ``p.exchange_halos()``; ``Ap = A p`` as split tasks (the interior does not
wait for the halos); ``p.Ap`` and ``r.r`` as non-blocking dot products (futures): the update of
``x`` is spawned while ``r.r``'s allreduce is in flight. Dots are combined per partition, then
per rank, then across ranks, so they round differently from the baseline's ``np.dot``; the
residual history agrees with the baseline's to 1e-10 relative (``--expect-history FILE``
checks it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(1, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "heat"))
from cg_mpi4py import right_hand_side  # the normative definitions, shared with the baseline

from heat import parse_devices, sim_gpus_for  # --devices / --sim-gpus as in apps/heat


def operator_kernel(dims: int):
    """``out = A p`` on a tile (``p`` ghosted), the baseline's expression."""
    if dims == 2:
        def apply(out, p):
            g = p.ghosted
            out.interior[...] = 4.0 * g[1:-1, 1:-1] - (
                ((g[:-2, 1:-1] + g[2:, 1:-1]) + g[1:-1, :-2]) + g[1:-1, 2:]
            )
    else:
        def apply(out, p):
            g = p.ghosted
            out.interior[...] = 6.0 * g[1:-1, 1:-1, 1:-1] - (
                ((((g[:-2, 1:-1, 1:-1] + g[2:, 1:-1, 1:-1]) + g[1:-1, :-2, 1:-1])
                  + g[1:-1, 2:, 1:-1]) + g[1:-1, 1:-1, :-2])
                + g[1:-1, 1:-1, 2:]
            )
    return apply


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Conjugate gradient for the Poisson problem on Parla-MPI distributed "
        "arrays (the port of cg_mpi4py.py). Prints one JSON line last on stdout.")
    p.add_argument("--n", type=int, default=512, help="global cells per axis (default 512)")
    p.add_argument("--dims", type=int, choices=(2, 3), default=2, help="2 (5-point) or 3 (7-point)")
    p.add_argument("--tol", type=float, default=1e-8, help="relative residual (default 1e-8)")
    p.add_argument("--maxiter", type=int, default=10000, help="iteration limit (default 10000)")
    p.add_argument("--devices", default="cpu",
                   help="this rank's devices, comma-separated: cpu, gpu:N (N GPUs), gpu0, ... "
                   "(the rank's block is split over them along axis 0; default cpu)")
    p.add_argument("--sim-gpus", type=int, default=None,
                   help="simulated GPUs per rank (default: PARLA_SIM_GPUS, or as many as "
                   "--devices names when Parla was built without CUDA)")
    p.add_argument("--workers", type=int, default=None, help="worker threads per rank")
    p.add_argument("--history", metavar="FILE", help="write the residual history here")
    p.add_argument("--expect-history", metavar="FILE",
                   help="fail unless the history matches this one (a baseline's) to 1e-10")
    p.add_argument("--progress", type=int, default=0,
                   help="print the residual to stderr every this many iterations")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from mpi4py import MPI

    import parla.crosspy as xp
    from parla import Parla
    from parla.devices import cpu, gpu

    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    nd, n = args.dims, args.n
    wanted = parse_devices(args.devices)
    devices = [cpu(0) if kind == "cpu" else gpu(i) for kind, i in wanted]
    parla_kw = {"sim_gpus": sim_gpus_for(args, wanted)}
    if args.workers is not None:
        parla_kw["n_workers"] = args.workers
    apply_a = operator_kernel(nd)

    def log(msg):
        if rank == 0:
            print(f"[cg] {msg}", file=sys.stderr, flush=True)

    with Parla(**parla_kw) as scope:
        shape = (n,) * nd
        p = xp.zeros(shape, ghosts=1, boundary=("constant", 0.0), devices=devices, name="p")
        b, x, r, ap = (xp.zeros(shape, devices=devices, name=s) for s in ("b", "x", "r", "ap"))
        b.map(lambda t: right_hand_side([s.start for s in t.box], t.shape), out=b, name="rhs")
        r.assign(b)
        p.assign(r)
        bnorm = np.sqrt(b.dot(b))
        rr = r.dot(r)
        history: list[float] = []
        log(f"{nd}-D n={n} tol={args.tol} ranks={size} grid={list(p.grid)}")

        comm.Barrier()
        t0 = MPI.Wtime()
        converged = False
        while len(history) < args.maxiter:
            p.exchange_halos()
            ap.map(apply_a, p, region="split", name="apply_A")
            alpha = rr / p.dot(ap, non_blocking=True).result()

            def axpy_r(rt, apt, alpha=alpha):
                rt.interior[...] -= alpha * apt.interior

            def axpy_x(xt, pt, alpha=alpha):
                xt.interior[...] += alpha * pt.interior

            r.map(axpy_r, ap, name="update_r")
            rr_future = r.dot(r, non_blocking=True)
            x.map(axpy_x, p, halo=False, name="update_x")  # overlaps the allreduce of r.r
            rr_new = rr_future.result()
            history.append(float(np.sqrt(rr_new) / bnorm))
            if args.progress and len(history) % args.progress == 0:
                log(f"iteration {len(history)}: relative residual {history[-1]:.3e}")
            if history[-1] <= args.tol:
                converged = True
                break

            def update_p(pt, rt, beta=rr_new / rr):
                pt.interior[...] = rt.interior + beta * pt.interior

            p.map(update_p, r, halo=False, name="update_p")
            rr = rr_new
        x.wait()
        elapsed = comm.allreduce(MPI.Wtime() - t0, op=MPI.MAX)

        # The true residual from x itself.
        xg = xp.zeros(shape, ghosts=1, boundary=("constant", 0.0), devices=devices, name="xg")
        xg.assign(x)
        xg.exchange_halos()
        ap.map(apply_a, xg, name="apply_A_x")

        def residual(apt, bt):
            apt.interior[...] = bt.interior - apt.interior

        ap.map(residual, b, name="residual")
        true_residual = float(ap.norm2() / bnorm)
        workers = scope.num_workers
        grid = list(p.grid)
        for a in (p, b, x, r, ap, xg):
            a.close()

    verified = true_residual <= 10 * args.tol
    check = {"ok": bool(converged and verified), "converged": converged,
             "verified": bool(verified), "true_residual": true_residual}
    if args.expect_history:
        with open(args.expect_history) as f:
            want = json.load(f)
        same = len(want) == len(history) and all(
            abs(a - b) <= 1e-10 * abs(a) for a, b in zip(want, history))
        check["matches_baseline"] = bool(same)
        check["ok"] = check["ok"] and same
    iters, cells = len(history), n**nd
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
    result = {"app": "cg", "ranks": size, "workers": workers,
              "devices": [str(d) for d in devices],
              "params": {"n": n, "dims": nd, "tol": args.tol, "maxiter": args.maxiter,
                         "grid": grid},
              "seconds": elapsed, "metrics": metrics, "check": check}
    log(f"{'converged' if converged else 'NOT converged'} after {iters} iterations in "
        f"{elapsed:.3f} s, true residual {true_residual:.3e}")
    if rank == 0:
        print(json.dumps(result), flush=True)
    return 0 if check["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
