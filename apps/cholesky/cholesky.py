#!/usr/bin/env python3
"""Blocked right-looking Cholesky factorisation on Parla: the classic Parla task graph.

The SPD matrix A (float64, n x n) is cut into nt x nt tiles of size block, each tile a
PArray. For every tile column j (right-looking, lower triangle):

    SYRK[j, k]     A[j][j] -= A[j][k] A[j][k]^T           for k < j
    POTRF[j]       A[j][j]  = cholesky(A[j][j])
    GEMM[i, j, k]  A[i][j] -= A[i][k] A[j][k]^T           for i > j, k < j
    TRSM[i, j]     A[i][j]  = A[i][j] L[j][j]^-T          for i > j

with the dependencies of Parla's cholesky example written out (TaskSpaces SYRK, POTRF,
GEMM, TRSM). Tasks of tile column j are placed on devices[j % len(devices)] (1-D
block-cyclic), so a column's tiles stay where they are updated and the panel tiles move to
the devices that read them; the runtime makes those copies (PArray coherence).

Devices: the cpu and every GPU of the runtime; simulated GPUs with --sim-gpus N (or
PARLA_SIM_GPUS). On a CUDA GPU a task's tiles are CuPy arrays and the kernels are cuBLAS /
cuSOLVER through CuPy; on the cpu and on simulated GPUs they are NumPy (BLAS/LAPACK).

Checked by ||L L^T - A||_F / ||A||_F < 1e-12; the baseline is numpy.linalg.cholesky on the
whole matrix (timed too). Progress goes to stderr; the last line on stdout is the JSON result.

    .venv/bin/python apps/cholesky/cholesky.py --n 2048 --block 256 --workers 2
    .venv/bin/python apps/cholesky/cholesky.py --n 1024 --block 128 --sim-gpus 2 --devices gpu
"""

# Task bodies use loop variables on purpose: spawn copies them when the task is spawned
# (Parla's capture semantics).
# ruff: noqa: B023

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import numpy as np


def log(message: str) -> None:
    print(f"cholesky: {message}", file=sys.stderr, flush=True)


def spd_matrix(n: int, seed: int) -> np.ndarray:
    """A random symmetric positive definite matrix: R R^T / n + I (well conditioned)."""
    rng = np.random.default_rng(seed)
    r = rng.standard_normal((n, n))
    a = r @ r.T / n
    a[np.diag_indices(n)] += 1.0
    return a


# ---- tile kernels: NumPy on the cpu and simulated GPUs, CuPy on CUDA GPUs ----------------


def _xp(a: Any) -> Any:
    """The array module of a tile: CuPy for device memory, else NumPy."""
    if hasattr(a, "__cuda_array_interface__"):
        import cupy

        return cupy
    return np


def potrf(a: Any) -> None:
    """a := the lower Cholesky factor of a (in place)."""
    a[:] = _xp(a).linalg.cholesky(a)


def trsm(l_jj: Any, a: Any) -> None:
    """a := a L^-T, i.e. solve X L^T = a (L lower triangular)."""
    xp = _xp(a)
    if xp is np:
        try:
            from scipy.linalg import solve_triangular
        except ImportError:  # NumPy alone: a general solve of the same system
            a[:] = np.linalg.solve(l_jj, a.T).T
        else:
            a[:] = solve_triangular(l_jj, a.T, lower=True, check_finite=False).T
    else:
        from cupyx.scipy.linalg import solve_triangular

        a[:] = solve_triangular(l_jj, a.T, lower=True).T


def syrk(a_jk: Any, a_jj: Any) -> None:
    """a_jj -= a_jk a_jk^T."""
    a_jj -= a_jk @ a_jk.T


def gemm(a_ik: Any, a_jk: Any, a_ij: Any) -> None:
    """a_ij -= a_ik a_jk^T."""
    a_ij -= a_ik @ a_jk.T


# ---- the task graph --------------------------------------------------------------------------


def device_list(spec: str, scope: Any) -> list[Any]:
    """The devices tasks are placed on: 'all' (cpu and every GPU), 'cpu', 'gpu' (every GPU),
    or a comma list of cpu, gpu, gpu(i)."""
    from parla.devices import cpu, gpu

    gpus = [d for d in scope.devices if str(d).startswith("gpu")]
    out: list[Any] = []
    for item in spec.split(","):
        item = item.strip()
        if item == "all":
            out += [cpu(0), *gpus]
        elif item == "cpu":
            out.append(cpu(0))
        elif item == "gpu":
            if not gpus:
                raise SystemExit(
                    "cholesky: --devices gpu but this runtime has no GPU "
                    "(simulate some with --sim-gpus N or PARLA_SIM_GPUS=N)"
                )
            out += gpus
        elif item.startswith("gpu(") and item.endswith(")"):
            i = int(item[4:-1])
            if i >= len(gpus):
                raise SystemExit(
                    f"cholesky: {item} requested but this runtime has {len(gpus)} GPUs"
                )
            out.append(gpu(i))
        else:
            raise SystemExit(f"cholesky: unknown device '{item}' (all, cpu, gpu, gpu(i))")
    return out


def factorize(tiles: list[list[Any]], devices: list[Any]) -> None:
    """Spawns the blocked Cholesky graph over the tiles (PArrays, lower triangle)."""
    from parla import TaskSpace, spawn

    nt = len(tiles)
    SYRK = TaskSpace("SYRK")
    POTRF = TaskSpace("POTRF")
    GEMM = TaskSpace("GEMM")
    TRSM = TaskSpace("TRSM")

    for j in range(nt):
        where = devices[j % len(devices)]
        for k in range(j):
            # Parla copies captured loop variables at spawn time, so each task sees its j, k.
            @spawn(
                SYRK[j, k],
                [TRSM[j, k], SYRK[j, 0:k]],
                placement=where,
                input=[tiles[j][k]],
                inout=[tiles[j][j]],
            )
            def t_syrk():
                syrk(tiles[j][k].array, tiles[j][j].array)

        @spawn(POTRF[j], [SYRK[j, 0:j]], placement=where, inout=[tiles[j][j]])
        def t_potrf():
            potrf(tiles[j][j].array)

        for i in range(j + 1, nt):
            for k in range(j):

                @spawn(
                    GEMM[i, j, k],
                    [TRSM[j, k], TRSM[i, k], GEMM[i, j, 0:k]],
                    placement=where,
                    input=[tiles[i][k], tiles[j][k]],
                    inout=[tiles[i][j]],
                )
                def t_gemm():
                    gemm(tiles[i][k].array, tiles[j][k].array, tiles[i][j].array)

            @spawn(
                TRSM[i, j],
                [GEMM[i, j, 0:j], POTRF[j]],
                placement=where,
                input=[tiles[j][j]],
                inout=[tiles[i][j]],
            )
            def t_trsm():
                trsm(tiles[j][j].array, tiles[i][j].array)


def run_parla(
    a: np.ndarray,
    block: int,
    workers: int | None,
    sim_gpus: int | None,
    devices_spec: str,
    blas_threads: int,
) -> tuple[np.ndarray, float, list[str], int]:
    from parla import Parla, parray

    n = a.shape[0]
    nt = n // block
    tiles = [
        [
            parray.asarray(
                np.ascontiguousarray(a[i * block : (i + 1) * block, j * block : (j + 1) * block]),
                name=f"A[{i}][{j}]",
            )
            if j <= i
            else None
            for j in range(nt)
        ]
        for i in range(nt)
    ]
    import contextlib

    limits: Any = contextlib.nullcontext()
    if blas_threads > 0:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            log("threadpoolctl is not installed: BLAS keeps its own thread count")
        else:
            limits = threadpool_limits(limits=blas_threads, user_api="blas")
    with limits:
        scope = Parla(workers, sim_gpus=sim_gpus)
        with scope:
            devices = device_list(devices_spec, scope)
            names = [str(d) for d in devices]
            n_workers = scope.num_workers
            log(
                f"n {n}, block {block} ({nt}x{nt} tiles, {nt * (nt + 1) * (nt + 2) // 6} tasks), "
                f"{n_workers} workers, devices {names}"
            )
            start = time.perf_counter()
            factorize(tiles, devices)
        seconds = time.perf_counter() - start
    lower = np.zeros_like(a)
    for i in range(nt):
        for j in range(i + 1):
            lower[i * block : (i + 1) * block, j * block : (j + 1) * block] = np.asarray(
                tiles[i][j].array
            )
    return lower, seconds, names, n_workers


def residual(lower: np.ndarray, a: np.ndarray) -> float:
    return float(np.linalg.norm(lower @ lower.T - a) / np.linalg.norm(a))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Blocked Cholesky (POTRF/TRSM/SYRK/GEMM tasks with PArray tiles) on one "
        "rank over its devices, checked against numpy.linalg.cholesky. The last line on stdout "
        "is a JSON object; progress goes to stderr."
    )
    parser.add_argument("--n", type=int, default=2048, help="matrix order (default 2048)")
    parser.add_argument(
        "--block", type=int, default=256, help="tile size; must divide n (default 256)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="cpu workers (default PARLA_NUM_WORKERS, else every core)",
    )
    parser.add_argument(
        "--sim-gpus",
        type=int,
        default=None,
        help="simulated GPUs (default PARLA_SIM_GPUS, else none / the CUDA GPUs)",
    )
    parser.add_argument(
        "--devices",
        default="all",
        help="where tasks go: all (default: cpu and every GPU), cpu, gpu, or a "
        "comma list such as cpu,gpu(1)",
    )
    parser.add_argument(
        "--blas-threads",
        type=int,
        default=1,
        help="BLAS threads inside each task (default 1: the workers are the "
        "parallelism; 0 leaves BLAS alone)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="runs of each version; the fastest counts (default 1)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed of the matrix")
    parser.add_argument(
        "--tolerance",
        type=float,
        default=1e-12,
        help="largest accepted ||LL^T - A||/||A|| (default 1e-12)",
    )
    args = parser.parse_args(argv)
    if args.n < 1 or args.block < 1 or args.n % args.block:
        parser.error(f"--block {args.block} must divide --n {args.n}")

    a = spd_matrix(args.n, args.seed)
    flops = args.n**3 / 3.0

    base_seconds = float("inf")
    for _ in range(args.repeats):
        start = time.perf_counter()
        base = np.linalg.cholesky(a)
        base_seconds = min(base_seconds, time.perf_counter() - start)
    base_residual = residual(base, a)
    log(
        f"numpy.linalg.cholesky: {base_seconds:.4f} s, {flops / base_seconds * 1e-9:.2f} GFLOP/s, "
        f"residual {base_residual:.2e}"
    )

    seconds = float("inf")
    lower = None
    for _ in range(args.repeats):
        lower_r, s, names, workers = run_parla(
            a, args.block, args.workers, args.sim_gpus, args.devices, args.blas_threads
        )
        if s < seconds:
            seconds, lower = s, lower_r
    assert lower is not None
    res = residual(lower, a)
    diff = float(np.max(np.abs(lower - base)))
    ok = bool(res < args.tolerance and np.isfinite(res))
    log(
        f"parla: {seconds:.4f} s, {flops / seconds * 1e-9:.2f} GFLOP/s, residual {res:.2e}, "
        f"max |L - L_numpy| {diff:.2e} -> {'ok' if ok else 'FAILED'}"
    )

    result = {
        "app": "cholesky",
        "ranks": 1,
        "workers": workers,
        "devices": names,
        "params": {
            "n": args.n,
            "block": args.block,
            "tiles": args.n // args.block,
            "devices": args.devices,
            "sim_gpus": args.sim_gpus,
            "blas_threads": args.blas_threads,
            "repeats": args.repeats,
        },
        "seconds": seconds,
        "metrics": {
            "gflops": flops / seconds * 1e-9,
            "baseline_seconds": base_seconds,
            "baseline_gflops": flops / base_seconds * 1e-9,
            "speedup_vs_baseline": base_seconds / seconds,
        },
        "check": {
            "ok": ok,
            "residual": res,
            "tolerance": args.tolerance,
            "baseline_residual": base_residual,
            "max_abs_diff_vs_baseline": diff,
        },
    }
    print(json.dumps(result), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
