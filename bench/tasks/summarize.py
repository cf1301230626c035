#!/usr/bin/env python3
"""Markdown table of bench_tasks JSON lines (the .jsonl files run_all.sh writes).

    bench/tasks/summarize.py [--max-other PCT] round1.jsonl [round2.jsonl ...]

One row per pattern, one column per system: the median over the files (invocations) of each
invocation's median us/task, with the range over invocations in brackets when there is more
than one. Rows whose check failed in any invocation are marked FAILED instead of a number.

With --max-other, invocations during which other processes used more than PCT % of the
machine (the .noise file run_all.sh writes next to each .jsonl) are left out; the last
column says how many invocations each row kept.
"""

import argparse
import json
import os
import statistics
from collections import defaultdict

# Markdown tables use an en dash for ranges and empty cells.
DASH = "\u2013"

SYSTEMS = ["parla", "starpu", "tbb", "tbb_task_group"]


def label(params):
    name = params["pattern"]
    if params.get("join"):
        name += " + join"
    if params["pattern"] == "stencil":
        name += f" (K={params['width']})"
    return f"{name}, {params['tasks']:,} tasks"


def read_noise(path):
    noise_path = os.path.splitext(path)[0] + ".noise"
    if not os.path.exists(noise_path):
        return []
    with open(noise_path) as f:
        return [float(x) for x in f.read().split()]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-other", type=float, default=None)
    parser.add_argument("jsonl", nargs="+")
    args = parser.parse_args()

    runs = defaultdict(lambda: defaultdict(list))  # row -> system -> [us/task per invocation]
    failed = defaultdict(set)
    kept = defaultdict(int)
    noise_kept = defaultdict(list)
    order = []
    for path in args.jsonl:
        noise = read_noise(path)
        with open(path) as f:
            lines = [line for line in f if line.strip()]
        for i, line in enumerate(lines):
            d = json.loads(line)
            row = label(d["params"])
            if row not in order:
                order.append(row)
            other = noise[i] if i < len(noise) else None
            if args.max_other is not None and (other is None or other > args.max_other):
                continue
            kept[row] += 1
            if other is not None:
                noise_kept[row].append(other)
            for system, us in d["metrics"]["us_per_task"].items():
                if us is None or not d["check"].get(system, {}).get("ok", False):
                    failed[row].add(system)
                else:
                    runs[row][system].append(us)

    present = [s for s in SYSTEMS if any(s in runs[r] or s in failed[r] for r in order)]
    print(
        "| pattern | "
        + " | ".join(f"{s} µs/task" for s in present)
        + " | Parla / StarPU | invocations (others' CPU %) |"
    )
    print("|---|" + "---:|" * (len(present) + 2))
    for row in order:
        cells = []
        for s in present:
            values = runs[row].get(s, [])
            if s in failed[row]:
                cells.append("FAILED")
            elif not values:
                cells.append(DASH)
            elif len(values) == 1:
                cells.append(f"{values[0]:.3f}")
            else:
                median = statistics.median(values)
                cells.append(f"{median:.3f} [{min(values):.3f}{DASH}{max(values):.3f}]")
        p, q = runs[row].get("parla"), runs[row].get("starpu")
        ratio = f"{statistics.median(p) / statistics.median(q):.2f}" if p and q else DASH
        others = ", ".join(f"{x:.0f}" for x in noise_kept[row])
        print(f"| {row} | " + " | ".join(cells) + f" | {ratio} | {kept[row]} ({others}) |")


if __name__ == "__main__":
    main()
