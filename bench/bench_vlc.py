#!/usr/bin/env python3
"""Library contexts: two concurrent BLAS-heavy tasks (matrix products), each holding half of
the cores (vcus=0.5: its worker pinned to them, BLAS limited to that many threads), against
the same tasks with the library threads left at their defaults (every task's BLAS uses every
core: the node is oversubscribed). Both variants run in the same process, interleaved.

Progress goes to stderr; the last stdout line is the DESIGN §6 JSON object, with
metrics.seconds = {"contexts": ..., "default": ...}.

    .venv/bin/python bench/bench_vlc.py [--size 1024] [--products 8] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

from parla import Parla, TaskSpace, spawn
from parla.devices import cpu


def run(mats: list[np.ndarray], products: int, vcus: float) -> float:
    """Wall seconds for one task per matrix, each doing `products` products, all at once."""
    with Parla(len(mats)):
        T = TaskSpace("T")
        start = time.perf_counter()
        for i, m in enumerate(mats):

            @spawn(T[i], placement=cpu, vcus=vcus)
            def heavy():
                x = m  # noqa: B023 (spawn copies `m` at spawn: Parla's semantics)
                for _ in range(products):
                    x = x @ m  # noqa: B023
                    x /= np.abs(x).max()

    return time.perf_counter() - start


def blas_threads() -> int | None:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    counts = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
    return max(counts) if counts else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024, help="matrix size")
    parser.add_argument("--products", type=int, default=8, help="matrix products per task")
    parser.add_argument("--tasks", type=int, default=2, help="concurrent tasks")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    cores = len(os.sched_getaffinity(0))
    default_threads = blas_threads()
    if default_threads is None:
        print("threadpoolctl is missing: library contexts cannot limit BLAS", file=sys.stderr)
    vcus = 1.0 / args.tasks
    rng = np.random.default_rng(0)
    mats = [rng.random((args.size, args.size)) for _ in range(args.tasks)]
    run(mats, 1, vcus)  # warm up BLAS's thread pool and the allocator
    run(mats, 1, 0.0)
    contexts, default = [], []
    for _ in range(args.repeat):  # interleaved, so drifts in the machine hit both alike
        contexts.append(run(mats, args.products, vcus))
        default.append(run(mats, args.products, 0.0))
    x, y = statistics.median(contexts), statistics.median(default)
    oversubscribed = default_threads is not None and default_threads * args.tasks > cores
    print(
        f"{args.tasks} tasks x {args.products} products of {args.size}^2 on {cores} cores "
        f"(BLAS default {default_threads} threads): contexts {x:.3f} s, default {y:.3f} s, "
        f"ratio {x / y:.2f}",
        file=sys.stderr,
    )
    limit = 0.9 if oversubscribed else 1.05  # never slower (5% noise allowance)
    result = {
        "app": "bench_vlc",
        "ranks": 1,
        "workers": args.tasks,
        "devices": ["cpu"],
        "params": {
            "size": args.size,
            "products": args.products,
            "tasks": args.tasks,
            "vcus": vcus,
            "repeat": args.repeat,
            "cores": cores,
            "blas_default_threads": default_threads,
        },
        "seconds": x,
        "metrics": {
            "seconds": {"contexts": x, "default": y},
            "ratio": x / y,
            "oversubscribed": oversubscribed,
            "runs": {"contexts": contexts, "default": default},
        },
        "check": {"ok": x <= limit * y, "ratio_max": limit},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
