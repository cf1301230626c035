#!/usr/bin/env python3
"""Spawn overhead of empty Python tasks: Parla against Dask's threaded scheduler.

Both systems run the same graph of N near-empty tasks (each only counts that it ran):
`independent` (no edges) or `chain` (task i depends on task i - 1). The time per task is
measured from the first spawn until every task is complete, with the runtime (Parla) and
the thread pool (Dask) already started; the median over the repeats is reported.

Progress goes to stderr; the last stdout line is the DESIGN §6 JSON object.

    .venv/bin/python bench/bench_spawn.py --pattern independent --tasks 20000 --workers 2 --repeat 5
    .venv/bin/python bench/bench_spawn.py --pattern chain --tasks 5000 --workers 2 --repeat 5
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from typing import Any, Callable

from parla import Parla, TaskSpace, spawn
from parla.devices import cpu


def parla_run(pattern: str, n: int, workers: int) -> tuple[float, int]:
    """Seconds to spawn `n` tasks and see them complete, and how many bodies ran."""
    ran = itertools.count()
    tick = ran.__next__  # atomic under the GIL, as cheap as a body can be
    with Parla(workers):
        T = TaskSpace("T")
        start = time.perf_counter()
        if pattern == "chain":
            for i in range(n):

                @spawn(T[i], dependencies=[T[i - 1]], placement=cpu)
                def body():
                    tick()

            T[n - 1].wait()
        else:
            for i in range(n):

                @spawn(T[i], placement=cpu)
                def body():
                    tick()

            T.wait()
        seconds = time.perf_counter() - start
    return seconds, next(ran)


def dask_run(pattern: str, n: int, workers: int) -> tuple[float, int]:
    """The same graph as a Dask graph dict, run by `dask.threaded.get`."""
    import dask.threaded

    ran = itertools.count()
    tick = ran.__next__

    def body(*_: Any) -> None:
        tick()

    start = time.perf_counter()
    if pattern == "chain":
        dsk: dict[Any, Any] = {("t", 0): (body,)}
        for i in range(1, n):
            dsk["t", i] = (body, ("t", i - 1))
        dask.threaded.get(dsk, ("t", n - 1), num_workers=workers)
    else:
        dsk = {("t", i): (body,) for i in range(n)}
        dask.threaded.get(dsk, list(dsk), num_workers=workers)
    seconds = time.perf_counter() - start
    return seconds, next(ran)


def measure(
    name: str, run: Callable[[str, int, int], tuple[float, int]], args: argparse.Namespace
) -> tuple[float, list[int]]:
    """Median µs per task over `args.repeat` runs (after one warm-up run), and each run's
    count of bodies that ran."""
    run(args.pattern, min(args.tasks, 1000), args.workers)  # imports, thread pools, caches
    times, counts = [], []
    for r in range(args.repeat):
        seconds, count = run(args.pattern, args.tasks, args.workers)
        times.append(seconds / args.tasks * 1e6)
        counts.append(count)
        print(
            f"{name} run {r + 1}/{args.repeat}: {times[-1]:.2f} us/task, {count} tasks ran",
            file=sys.stderr,
        )
    return statistics.median(times), counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pattern", choices=["independent", "chain"], default="independent")
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    wall = time.perf_counter()
    parla_us, parla_counts = measure("parla", parla_run, args)
    dask_us, dask_counts = measure("dask", dask_run, args)
    ratio = parla_us / dask_us
    print(
        f"{args.pattern}, {args.tasks} tasks, {args.workers} workers: parla {parla_us:.2f} "
        f"us/task, dask {dask_us:.2f} us/task, parla/dask {ratio:.3f} (medians of {args.repeat})",
        file=sys.stderr,
    )
    ok = all(c == args.tasks for c in parla_counts + dask_counts)
    result = {
        "app": "bench_spawn",
        "ranks": 1,
        "workers": args.workers,
        "devices": ["cpu"],
        "params": {"pattern": args.pattern, "tasks": args.tasks, "repeat": args.repeat},
        "seconds": time.perf_counter() - wall,
        "metrics": {
            "us_per_task": {"parla": parla_us, "dask": dask_us},
            "ratio_parla_over_dask": ratio,
        },
        "check": {
            "ok": ok,
            "tasks_expected": args.tasks,
            "tasks_ran": {"parla": parla_counts, "dask": dask_counts},
        },
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
