#!/usr/bin/env python3
"""Library contexts: two concurrent BLAS-heavy tasks (matrix products), each holding half of
the cores (vcus=0.5: its worker pinned to them, BLAS and OpenMP limited to that many
threads), against the same tasks with the library threads left at their defaults. Both
variants run in the same process, interleaved.

Two BLAS libraries are measured when present:

- ``numpy``: NumPy's own OpenBLAS (pthreads). It serialises concurrent callers on one thread
  pool, so its defaults do not oversubscribe the node; the goal there is "never slower".
- ``openblas-openmp``: an OpenMP-built OpenBLAS (Debian's ``libopenblas0-openmp``, called
  through ctypes), where each concurrent caller starts its own OpenMP team of every core's
  threads: the defaults oversubscribe, and the goal is contexts <= 0.9 x default.

Progress goes to stderr; the last stdout line is the DESIGN §6 JSON object, with
metrics.seconds = {"contexts": ..., "default": ...} for the first measured BLAS whose
defaults oversubscribe (else NumPy's), and metrics.blas holding every BLAS measured.

    .venv/bin/python bench/bench_vlc.py [--size 1024] [--products 8] [--repeat 5]
                                        [--settle 0.3] [--blas numpy,openblas-openmp]
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from parla import Parla, TaskSpace, spawn
from parla.devices import cpu

# Where Debian (and Ubuntu) put the OpenMP build of OpenBLAS; PARLA_OPENMP_BLAS overrides.
OPENMP_BLAS_PATHS = [
    "/usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so.0",
    "/usr/lib/aarch64-linux-gnu/openblas-openmp/libopenblas.so.0",
]

Product = Callable[[np.ndarray, np.ndarray, np.ndarray], None]  # out = a @ b


def numpy_product(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    np.matmul(a, b, out=out)


def openmp_blas_candidates() -> list[str]:
    if os.environ.get("PARLA_OPENMP_BLAS"):
        return [os.environ["PARLA_OPENMP_BLAS"]]
    return OPENMP_BLAS_PATHS


def openmp_blas_product() -> tuple[Product, str] | None:
    """cblas_dgemm of an OpenMP-built OpenBLAS, or None when there is none."""
    path = next((c for c in openmp_blas_candidates() if Path(c).exists()), None)
    if path is None:
        return None
    dgemm = ctypes.CDLL(path).cblas_dgemm
    p, i = ctypes.c_void_p, ctypes.c_int
    dgemm.argtypes = [i, i, i, i, i, i, ctypes.c_double, p, i, p, i, ctypes.c_double, p, i]
    dgemm.restype = None
    row_major, no_trans = 101, 111

    def product(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
        n = a.shape[0]
        # ctypes releases the GIL for the call, so two tasks' products run at once.
        dgemm(row_major, no_trans, no_trans, n, n, n, 1.0, a.ctypes.data, n, b.ctypes.data, n, 0.0,
              out.ctypes.data, n)  # fmt: skip

    return product, str(Path(path).resolve())


def run(mats: list[np.ndarray], products: int, vcus: float, product: Product) -> float:
    """Wall seconds for one task per matrix, each doing `products` products, all at once."""
    with Parla(len(mats)):
        T = TaskSpace("T")
        start = time.perf_counter()
        for i, m in enumerate(mats):

            @spawn(T[i], placement=cpu, vcus=vcus)
            def heavy():
                x = m.copy()  # noqa: B023 (spawn copies `m` at spawn: Parla's semantics)
                y = np.empty_like(x)
                for _ in range(products):
                    product(x, m, y)  # noqa: B023
                    x, y = y, x
                    x /= np.abs(x).max()

    return time.perf_counter() - start


def blas_threads(filepath_part: str) -> int | None:
    """Default thread count of the loaded BLAS whose path contains `filepath_part`."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    counts = [
        i["num_threads"]
        for i in threadpool_info()
        if i["user_api"] == "blas" and filepath_part in i["filepath"]
    ]
    return max(counts) if counts else None


def measure(
    name: str, product: Product, threads: int | None, args: argparse.Namespace, cores: int
) -> dict:
    vcus = 1.0 / args.tasks
    rng = np.random.default_rng(0)
    mats = [rng.random((args.size, args.size)) for _ in range(args.tasks)]
    run(mats, 1, vcus, product)  # warm up BLAS's threads and the allocator
    run(mats, 1, 0.0, product)
    contexts, default = [], []
    for _ in range(args.repeat):  # interleaved, so drifts in the machine hit both alike
        # Each round starts from an idle BLAS: a pthreads OpenBLAS's pool threads spin
        # (sched_yield) for ~2^28 cycles after their last job before they sleep, and would
        # take cores from the next round's tasks — a carry-over from the round before, not a
        # cost of the round measured (docs/python.md, "Library contexts").
        time.sleep(args.settle)
        contexts.append(run(mats, args.products, vcus, product))
        time.sleep(args.settle)
        default.append(run(mats, args.products, 0.0, product))
    x, y = statistics.median(contexts), statistics.median(default)
    oversubscribed = threads is not None and threads * args.tasks > cores and name != "numpy"
    limit = 0.9 if oversubscribed else 1.05  # never slower (5% noise allowance)
    print(
        f"{name}: {args.tasks} tasks x {args.products} products of {args.size}^2 on {cores} cores "
        f"(default {threads} threads per call{', oversubscribing' if oversubscribed else ''}): "
        f"contexts {x:.3f} s, default {y:.3f} s, ratio {x / y:.2f} (goal <= {limit})",
        file=sys.stderr,
    )
    return {
        "contexts": x,
        "default": y,
        "ratio": x / y,
        "default_threads": threads,
        "oversubscribed": oversubscribed,
        "ratio_max": limit,
        "ok": x <= limit * y,
        "runs": {"contexts": contexts, "default": default},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024, help="matrix size")
    parser.add_argument("--products", type=int, default=8, help="matrix products per task")
    parser.add_argument("--tasks", type=int, default=2, help="concurrent tasks")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--settle",
        type=float,
        default=0.3,
        help="seconds idle before each timed round (BLAS pool threads go to sleep)",
    )
    parser.add_argument(
        "--blas",
        default="numpy,openblas-openmp",
        help="comma-separated: numpy, openblas-openmp (skipped with a message when not installed)",
    )
    args = parser.parse_args()
    if args.settle < 0:
        parser.error(
            f"--settle is seconds of idle time before each round: give 0 or more, not {args.settle}"
        )
    wanted = [b.strip() for b in args.blas.split(",") if b.strip()]
    for b in wanted:
        if b not in ("numpy", "openblas-openmp"):
            parser.error(f"--blas: unknown library '{b}' (choose from numpy, openblas-openmp)")

    cores = len(os.sched_getaffinity(0))
    try:
        import threadpoolctl  # noqa: F401
    except ImportError:
        print("threadpoolctl is missing: library contexts cannot limit BLAS", file=sys.stderr)
    results: dict[str, dict] = {}
    libraries: dict[str, str] = {}
    for b in wanted:
        if b == "numpy":
            libraries[b] = "numpy"
            results[b] = measure(b, numpy_product, blas_threads("openblas"), args, cores)
            continue
        found = openmp_blas_product()
        if found is None:
            print(
                f"openblas-openmp: none of {', '.join(openmp_blas_candidates())} exists "
                "(apt-get install libopenblas0-openmp, or set "
                "PARLA_OPENMP_BLAS=/path/to/libopenblas.so): skipped",
                file=sys.stderr,
            )
            continue
        product, path = found
        libraries[b] = path
        results[b] = measure(b, product, blas_threads("openblas-openmp"), args, cores)
    if not results:
        parser.error("no BLAS library to measure")
    headline = next(
        (r for r in results.values() if r["oversubscribed"]), next(iter(results.values()))
    )
    result = {
        "app": "bench_vlc",
        "ranks": 1,
        "workers": args.tasks,
        "devices": ["cpu"],
        "params": {
            "size": args.size,
            "products": args.products,
            "tasks": args.tasks,
            "vcus": 1.0 / args.tasks,
            "repeat": args.repeat,
            "settle": args.settle,
            "cores": cores,
            "blas": libraries,
        },
        "seconds": headline["contexts"],
        "metrics": {
            "seconds": {"contexts": headline["contexts"], "default": headline["default"]},
            "ratio": headline["ratio"],
            "oversubscribed": headline["oversubscribed"],
            "blas": results,
        },
        "check": {"ok": all(r["ok"] for r in results.values())},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
