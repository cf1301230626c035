#!/usr/bin/env python3
"""Explicit heat equation / Jacobi sweep on Parla-MPI: the port of ``heat_mpi4py.py``.

The same problem, update formula, boundary and checksum as the baseline (its module docstring
is normative), on a ``parla.crosspy`` distributed array. What changes against the baseline:

- the arrays are ``xp.zeros(shape, ghosts=1, boundary=...)``: the process grid
  (``MPI.Compute_dims``), the ghost layers and the halo plan come with them, and the rank's
  block can be split over several devices along axis 0 (``--devices cpu``, ``--devices
  gpu:2``, ``--devices cpu,gpu0``; GPUs are simulated when Parla has no CUDA, or with
  ``--sim-gpus N`` / ``PARLA_SIM_GPUS=N``);
- the hand-written ``Sendrecv`` exchange becomes ``u.exchange_halos()`` (tasks);
- the sweep is ``v.map(kernel, u, region="split")``: per partition an interior task that
  does not wait for the halos (it overlaps them) and a boundary task that does.

Kernels (``--kernel``): ``numpy`` (the baseline's expression: the checksum is identical
bit for bit), ``native`` (``parla._core.kernels``, the library's fused C++/CUDA kernel, same
operation order, no contraction: identical too; the check allows 1e-12 relative), ``numba``
(the same loop under ``numba.njit``; needs numba installed).

Metrics as the baseline's (``mlups``, ``gbs`` = 16 bytes per cell update, ``seconds`` of the
slowest rank), plus ``hidden_comm_fraction``, the share of the halo-exchange time that the
overlapped loop hides behind the sweeps. It is measured by timing, after the main loop,
``--overlap-rounds`` rounds of ``--overlap-iters`` iterations three ways: the loop as run
(exchange + split sweep, ``t_both``), the exchanges alone (``t_x``; each one waited for
before the next is spawned, since in the loop an exchange sits between two sweeps and cannot
be pipelined with the next) and the sweeps alone (``t_s``, the same tasks without the wait
for the halos). From the medians,
``hidden = (t_x + t_s - t_both) / t_x`` clipped to [0, 1]: 1 when the loop costs no more than
its sweeps, 0 when it costs sweeps + exchanges. On a loaded machine the difference of
medians is noisy; the three medians are reported in ``metrics.overlap_seconds``.
``--expect-checksum X`` makes the check compare with a baseline's checksum (exactly for
numpy, 1e-12 relative otherwise).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from heat_mpi4py import (  # the normative definitions, shared with the baseline
    checksum_digits,
    checksum_from_digits,
    coefficients,
    initial_condition,
    serial_reference,
)


def numpy_kernel(c0: float, c1: float, dims: int):
    """The baseline's expression, writing ``out``'s tile from ``u``'s ghosted tile."""

    if dims == 2:
        def sweep(out, u):
            g = u.ghosted
            out.interior[...] = c0 * g[1:-1, 1:-1] + c1 * (
                ((g[:-2, 1:-1] + g[2:, 1:-1]) + g[1:-1, :-2]) + g[1:-1, 2:]
            )
    else:
        def sweep(out, u):
            g = u.ghosted
            out.interior[...] = c0 * g[1:-1, 1:-1, 1:-1] + c1 * (
                ((((g[:-2, 1:-1, 1:-1] + g[2:, 1:-1, 1:-1]) + g[1:-1, :-2, 1:-1])
                  + g[1:-1, 2:, 1:-1]) + g[1:-1, 1:-1, :-2])
                + g[1:-1, 1:-1, 2:]
            )
    return sweep


def native_kernel(c0: float, c1: float, dims: int, threads: int):
    """The library's fused kernel on the ghosted tiles (same shape and strides: both arrays
    have one ghost layer), updating exactly the tile's cells."""
    try:
        from parla._core import kernels
    except ImportError:
        kernels = None
    if kernels is None:
        raise SystemExit("heat.py: --kernel native needs parla._core.kernels (a parla built "
                         "with python/bindings/bind_kernels.cpp); rebuild with scripts/build")
    fn = kernels.jacobi_2d5 if dims == 2 else kernels.jacobi_3d7

    def sweep(out, u):
        src, dst = u.ghosted, out.ghosted
        if isinstance(src, np.ndarray):
            fn(src, dst, c0=c0, c1=c1, threads=threads)
        else:  # a CuPy array on a CUDA GPU: the CUDA kernel on the current stream
            import cupy

            cai_in, cai_out = src.__cuda_array_interface__, dst.__cuda_array_interface__
            strides = [s // 8 for s in src.strides]
            kernels.jacobi_cuda(cai_in["data"][0], cai_out["data"][0], list(src.shape),
                                strides, None, c0, c1, cupy.cuda.get_current_stream().ptr)
    return sweep


def numba_kernel(c0: float, c1: float, dims: int):
    try:
        import numba
    except ImportError:
        raise SystemExit("heat.py: --kernel numba needs numba (pip install numba); "
                         "--kernel native is the library's compiled kernel") from None
    if dims == 2:
        @numba.njit(cache=True, error_model="numpy")
        def loop(g, o):
            for i in range(1, g.shape[0] - 1):
                for j in range(1, g.shape[1] - 1):
                    s = ((g[i - 1, j] + g[i + 1, j]) + g[i, j - 1]) + g[i, j + 1]
                    o[i, j] = c0 * g[i, j] + c1 * s
    else:
        @numba.njit(cache=True, error_model="numpy")
        def loop(g, o):
            for i in range(1, g.shape[0] - 1):
                for j in range(1, g.shape[1] - 1):
                    for k in range(1, g.shape[2] - 1):
                        s = ((((g[i - 1, j, k] + g[i + 1, j, k]) + g[i, j - 1, k])
                              + g[i, j + 1, k]) + g[i, j, k - 1]) + g[i, j, k + 1]
                        o[i, j, k] = c0 * g[i, j, k] + c1 * s

    def sweep(out, u):
        loop(u.ghosted, out.ghosted)
    return sweep


def parse_devices(text: str) -> list[tuple[str, int]]:
    """``cpu``, ``gpu:N`` (N GPUs: gpu0 .. gpuN-1), ``gpuI`` / ``gpu(I)``, comma-separated, as
    (kind, index) pairs; a device may repeat (``cpu,cpu``: two partitions on the cpu)."""
    out: list[tuple[str, int]] = []
    for name in (t.strip() for t in text.split(",")):
        if name == "cpu":
            out.append(("cpu", 0))
        elif name.startswith("gpu:") and name[4:].isdigit() and int(name[4:]) > 0:
            out.extend(("gpu", i) for i in range(int(name[4:])))
        elif name.startswith("gpu(") and name.endswith(")") and name[4:-1].isdigit():
            out.append(("gpu", int(name[4:-1])))
        elif name.startswith("gpu") and name[3:].isdigit():
            out.append(("gpu", int(name[3:])))
        else:
            raise SystemExit(f"heat.py: --devices takes cpu, gpu:N, gpuI names, not {name!r}")
    return out


def sim_gpus_for(args, devices) -> int | None:
    """Simulated GPUs per rank: --sim-gpus, else PARLA_SIM_GPUS (None: the runtime reads it),
    else, when --devices names GPUs this rank does not have (no CUDA, or fewer devices), as
    many as it names (reported on stderr)."""
    if args.sim_gpus is not None:
        return args.sim_gpus
    wanted = 1 + max((i for kind, i in devices if kind == "gpu"), default=-1)
    if "PARLA_SIM_GPUS" in os.environ or not wanted:
        return None
    import parla
    from parla import Parla

    have = 0
    if parla.build_config.get("cuda"):
        with Parla(1, sim_gpus=0) as probe:
            have = probe.rt.num_gpus
    if have >= wanted:
        return None
    if os.environ.get("OMPI_COMM_WORLD_RANK", os.environ.get("PMI_RANK", "0")) == "0":
        print(f"[heat] {have} CUDA GPU(s) here: simulating {wanted} (--sim-gpus)",
              file=sys.stderr, flush=True)
    return wanted


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Explicit heat / Jacobi sweep on Parla-MPI distributed arrays (the port "
        "of heat_mpi4py.py: same numerics, same checksum). Prints one JSON line last on stdout.")
    p.add_argument("--n", type=int, default=1024, help="global cells per axis (default 1024)")
    p.add_argument("--dims", type=int, choices=(2, 3), default=2, help="2 (5-point) or 3 (7-point)")
    p.add_argument("--iters", type=int, default=100, help="iterations (default 100)")
    p.add_argument("--boundary", choices=("fixed", "periodic"), default="fixed",
                   help="fixed (Dirichlet 0) or periodic (default fixed)")
    p.add_argument("--kernel", choices=("numpy", "numba", "native"), default="numpy",
                   help="sweep kernel (default numpy)")
    p.add_argument("--devices", default="cpu",
                   help="this rank's devices, comma-separated: cpu, gpu:N (N GPUs), gpu0, ... "
                   "(the rank's block is split over them along axis 0; default cpu)")
    p.add_argument("--sim-gpus", type=int, default=None,
                   help="simulated GPUs per rank (default: PARLA_SIM_GPUS, or as many as "
                   "--devices names when Parla was built without CUDA)")
    p.add_argument("--workers", type=int, default=None, help="worker threads per rank")
    p.add_argument("--threads", type=int, default=1, help="native kernel threads per task")
    p.add_argument("--overlap-iters", type=int, default=None,
                   help="iterations per timed round behind hidden_comm_fraction "
                   "(default iters/10, at least 1; 0: skip)")
    p.add_argument("--overlap-rounds", type=int, default=3,
                   help="rounds of (overlapped, exchange-only, sweep-only) runs; medians count "
                   "(default 3)")
    p.add_argument("--expect-checksum", type=float, default=None,
                   help="fail unless the checksum equals this (a baseline's)")
    p.add_argument("--verify", choices=("auto", "yes", "no"), default="auto",
                   help="gather and compare with the serial NumPy run (auto: n**dims <= 2**18)")
    p.add_argument("--progress", type=int, default=0,
                   help="report every this many iterations on stderr (0: never)")
    return p.parse_args(argv)


def global_checksum(a, comm) -> float:
    """The baseline's checksum of a distributed array: exact digit sums per partition."""
    from mpi4py import MPI

    local = np.zeros(6, dtype=np.int64)
    for p in range(len(a.partitions)):
        local += np.array(checksum_digits(a.local(p)), dtype=np.int64)
    total = np.empty_like(local)
    comm.Allreduce(local, total, op=MPI.SUM)
    return checksum_from_digits(total.tolist())


def main(argv=None) -> int:
    args = parse_args(argv)
    from mpi4py import MPI

    import parla.crosspy as xp
    from parla import Parla

    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    dims, n, periodic = args.dims, args.n, args.boundary == "periodic"
    c0, c1 = coefficients(dims)

    def log(msg):
        if rank == 0:
            print(f"[heat] {msg}", file=sys.stderr, flush=True)

    if args.kernel == "numpy":
        kernel = numpy_kernel(c0, c1, dims)
    elif args.kernel == "native":
        kernel = native_kernel(c0, c1, dims, args.threads)
    else:
        kernel = numba_kernel(c0, c1, dims)
    from parla.devices import cpu, gpu

    wanted = parse_devices(args.devices)
    devices = [cpu(0) if kind == "cpu" else gpu(i) for kind, i in wanted]
    parla_kw = {"sim_gpus": sim_gpus_for(args, wanted)}
    if args.workers is not None:
        parla_kw["n_workers"] = args.workers

    with Parla(**parla_kw) as scope:
        boundary = "periodic" if periodic else ("constant", 0.0)
        kw = {"ghosts": 1, "boundary": boundary, "devices": devices}
        u = xp.zeros((n,) * dims, **kw, name="u")
        v = xp.zeros((n,) * dims, **kw, name="v")

        def init(t):
            return initial_condition([s.start for s in t.box], t.shape)

        u.map(init, out=u, halo=False, name="init")
        u.wait()
        initial_sum = global_checksum(u, comm)
        log(f"{dims}-D n={n} iters={args.iters} boundary={args.boundary} ranks={size} "
            f"grid={list(u.grid)} kernel={args.kernel} partitions/rank={len(u.partitions)}")

        # Warm-up, not timed: halo plans, connections, the kernel (numba compiles here). An
        # exchange rewrites ghost cells with what they hold anyway; v is overwritten by the
        # first iteration.
        for _ in range(2):
            u.exchange_halos()
            v.exchange_halos()
        v.map(kernel, u, region="split", name="warmup")
        u.wait()
        v.wait()

        comm.Barrier()
        t0 = MPI.Wtime()
        cur, nxt = u, v
        for it in range(args.iters):
            cur.exchange_halos()
            nxt.map(kernel, cur, region="split", name="sweep")
            cur, nxt = nxt, cur
            if args.progress and (it + 1) % args.progress == 0:
                cur.wait()
                log(f"iteration {it + 1}/{args.iters}")
        cur.wait()
        nxt.wait()
        elapsed = comm.allreduce(MPI.Wtime() - t0, op=MPI.MAX)

        checksum = global_checksum(cur, comm)
        lo = comm.allreduce(min(float(cur.local(p).min()) for p in range(len(cur.partitions))),
                            op=MPI.MIN)
        hi = comm.allreduce(max(float(cur.local(p).max()) for p in range(len(cur.partitions))),
                            op=MPI.MAX)
        bounds_ok = bool(np.isfinite(lo) and np.isfinite(hi) and lo >= 0.0 and hi < 1.0)
        drift = abs(checksum - initial_sum) / initial_sum
        mass_ok = drift <= 1e-12 * max(args.iters, 1) if periodic else checksum <= initial_sum
        check = {"ok": bool(bounds_ok and mass_ok), "checksum": checksum,
                 "initial_checksum": initial_sum, "bounds": bounds_ok, "mass": bool(mass_ok)}

        cells = n**dims
        if args.verify == "yes" or (args.verify == "auto" and cells <= 1 << 18):
            whole = cur.gather(0)
            if rank == 0:
                ref = serial_reference(n, dims, args.iters, periodic)
                if args.kernel == "numpy":
                    same = bool(np.array_equal(whole, ref))
                else:
                    same = bool(np.allclose(whole, ref, rtol=1e-12, atol=0.0))
                check["serial_identical" if args.kernel == "numpy" else "serial_close"] = same
                check["ok"] = check["ok"] and same
            check = comm.bcast(check, root=0)
        if args.expect_checksum is not None:
            want = args.expect_checksum
            same = (checksum == want if args.kernel == "numpy"
                    else abs(checksum - want) <= 1e-12 * abs(want))
            check["matches_baseline"] = bool(same)
            check["ok"] = check["ok"] and same

        # hidden_comm_fraction: rounds of k iterations three ways, the overlapped loop (t_both),
        # the exchanges alone (t_x) and the sweeps alone (t_s); from the medians,
        # (t_x + t_s - t_both) / t_x, clipped to [0, 1], is the share of the exchange time the
        # overlapped loop did not pay. Each time is the slowest rank's.
        k = max(1, args.iters // 10) if args.overlap_iters is None else args.overlap_iters
        hidden, t_x, t_s, t_b = None, 0.0, 0.0, 0.0
        if k > 0:
            def timed(what):
                nonlocal cur, nxt
                comm.Barrier()
                t = MPI.Wtime()
                for _ in range(k):
                    if what != "sweep":
                        cur.exchange_halos()
                    if what == "exchange":
                        # In the loop each exchange sits between two sweeps: it cannot be
                        # pipelined with the next one, so neither is it here.
                        cur.wait()
                    if what != "exchange":
                        nxt.map(kernel, cur, region="split", halo=what == "both",
                                name=f"sweep_{what}")
                        cur, nxt = nxt, cur
                cur.wait()
                nxt.wait()
                return comm.allreduce(MPI.Wtime() - t, op=MPI.MAX)

            rounds = {"both": [], "exchange": [], "sweep": []}
            for _ in range(args.overlap_rounds):
                for what in rounds:
                    rounds[what].append(timed(what))
            t_b, t_x, t_s = (float(np.median(rounds[w])) for w in ("both", "exchange", "sweep"))
            hidden = min(1.0, max(0.0, (t_x + t_s - t_b) / t_x)) if t_x > 0 else 1.0
        workers = scope.num_workers
        sim_gpus = sum(1 for d in scope.devices if d.architecture is gpu) if not scope.cuda else 0
        grid = list(u.grid)
        u.close()
        v.close()

    updates = cells * args.iters
    result = {
        "app": "heat",
        "ranks": size,
        "workers": workers,
        "devices": [str(d) for d in devices],
        "params": {"n": n, "dims": dims, "iters": args.iters, "boundary": args.boundary,
                   "kernel": args.kernel, "threads": args.threads, "grid": grid,
                   "sim_gpus": sim_gpus},
        "seconds": elapsed,
        "metrics": {"mlups": updates / elapsed / 1e6 if elapsed > 0 else 0.0,
                    "gbs": 16.0 * updates / elapsed / 1e9 if elapsed > 0 else 0.0,
                    "bytes_per_update": 16, "hidden_comm_fraction": hidden,
                    "overlap_seconds": {"both": t_b, "exchange_only": t_x, "sweep_only": t_s},
                    "overlap_iters": k, "overlap_rounds": args.overlap_rounds},
        "check": check,
    }
    log(f"done in {elapsed:.3f} s, checksum {checksum!r}, ok={check['ok']}")
    if rank == 0:
        print(json.dumps(result), flush=True)
    return 0 if check["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
