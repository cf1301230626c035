#!/usr/bin/env python3
"""Python API benchmarks: spawn overhead of empty tasks, and the parallel speedup of
NumPy-heavy tasks (the GIL is released on the runtime's hot path and inside NumPy).

Progress goes to stderr; the last stdout line is the DESIGN §6 JSON object.

    .venv/bin/python bench/bench_python.py [--tasks 10000] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np

from parla import Parla, TaskSpace, spawn
from parla.devices import cpu


def empty_tasks(n: int, workers: int, chain: bool) -> float:
    """Seconds per task to spawn and finish `n` empty tasks (independent or a chain)."""
    with Parla(workers):
        T = TaskSpace("T")
        start = time.perf_counter()
        for i in range(n):

            @spawn(T[i], dependencies=[T[i - 1]] if chain else (), placement=cpu)
            def empty():
                pass

    return (time.perf_counter() - start) / n


def numpy_tasks(workers: int, tasks: int, size: int, reps: int) -> float:
    """Wall seconds for `tasks` independent tasks each doing `reps` matrix products."""
    rng = np.random.default_rng(0)
    mats = [rng.random((size, size)) for _ in range(tasks)]
    with Parla(workers):
        start = time.perf_counter()
        for i in range(tasks):

            @spawn(placement=cpu)
            def heavy():
                x = m = mats[i]  # noqa: B023 (spawn copies `i` at spawn: Parla's semantics)
                for _ in range(reps):
                    x = x @ m
                    x /= np.abs(x).max()

    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000, help="empty tasks per overhead run")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--size", type=int, default=256, help="matrix size of the NumPy tasks")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    # NumPy's own threads would hide the runtime's parallelism.
    try:
        from threadpoolctl import threadpool_limits  # type: ignore[import-not-found]

        threadpool_limits(1)
    except ImportError:
        pass

    indep = statistics.median(
        empty_tasks(args.tasks, args.workers, False) for _ in range(args.repeat)
    )
    chain = statistics.median(
        empty_tasks(args.tasks, args.workers, True) for _ in range(args.repeat)
    )
    print(
        f"empty tasks: {indep * 1e6:.2f} us/task independent, {chain * 1e6:.2f} us/task chain",
        file=sys.stderr,
    )
    one = statistics.median(numpy_tasks(1, 8, args.size, 20) for _ in range(args.repeat))
    many = statistics.median(
        numpy_tasks(args.workers, 8, args.size, 20) for _ in range(args.repeat)
    )
    speedup = one / many
    print(
        f"numpy tasks: {one:.3f} s on 1 worker, {many:.3f} s on {args.workers}: {speedup:.2f}x",
        file=sys.stderr,
    )
    result = {
        "app": "bench_python",
        "ranks": 1,
        "workers": args.workers,
        "devices": ["cpu"],
        "params": {"tasks": args.tasks, "size": args.size, "repeat": args.repeat},
        "seconds": many,
        "metrics": {
            "spawn_us_per_task_independent": indep * 1e6,
            "spawn_us_per_task_chain": chain * 1e6,
            "numpy_seconds_1_worker": one,
            "numpy_seconds_n_workers": many,
            "numpy_speedup": speedup,
        },
        "check": {"ok": speedup >= 1.3 if args.workers >= 2 else True, "speedup_min": 1.3},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
