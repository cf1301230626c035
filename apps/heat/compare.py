#!/usr/bin/env python3
"""Side-by-side timing of the heat programs in one run (the numbers of docs/apps.md).

Runs, ``--repeats`` times and interleaved (so a change of machine load hits every variant
alike): the mpi4py baseline, the Parla port with the numpy kernel, the port with the native
kernel, and the C++ app (which measures a STREAM triad right after its loop). Reports the
median (and the best) of each, the ratios port/baseline, native/baseline and C++ GB/s /
triad GB/s, and checks that every run gave the baseline's checksum. The last line on stdout is JSON.

    .venv/bin/python apps/heat/compare.py --ranks 2 --n 4096 --iters 50 --repeats 3 \\
        --cxx build/apps/heat/parla_heat
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ranks", type=int, default=2)
    p.add_argument("--n", type=int, default=4096)
    p.add_argument("--dims", type=int, choices=(2, 3), default=2)
    p.add_argument("--iters", type=int, default=50)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--cxx", default=None, help="the C++ app (build/apps/heat/parla_heat)")
    p.add_argument("--cxx-workers", type=int, default=1,
                   help="worker threads per rank of the C++ app (default 1: one per core)")
    p.add_argument("--port-workers", type=int, default=None,
                   help="worker threads per rank of the Python port (default: the runtime's)")
    p.add_argument("--variants", default="baseline,port_numpy,port_native,cxx",
                   help="comma list of baseline, port_numpy, port_native, port_numba, cxx")
    p.add_argument("--mpiexec", default=os.environ.get("PARLA_MPIEXEC", "mpiexec"))
    p.add_argument("--mpiexec-flags", default="--bind-to none --oversubscribe")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    launch = [args.mpiexec, *shlex.split(args.mpiexec_flags), "-n", str(args.ranks)]
    common = ["--n", str(args.n), "--dims", str(args.dims), "--iters", str(args.iters)]
    py = sys.executable
    workers = [] if args.port_workers is None else ["--workers", str(args.port_workers)]
    commands = {
        "baseline": [py, str(HERE / "heat_mpi4py.py"), *common],
        "port_numpy": [py, str(HERE / "heat.py"), *common, "--kernel", "numpy", *workers],
        "port_native": [py, str(HERE / "heat.py"), *common, "--kernel", "native", *workers],
        "port_numba": [py, str(HERE / "heat.py"), *common, "--kernel", "numba", *workers],
        "cxx": [args.cxx or "", *common, "--workers", str(args.cxx_workers)],
    }
    variants = [v for v in args.variants.split(",") if v != "cxx" or args.cxx]
    runs: dict[str, list[dict]] = {v: [] for v in variants}
    for rep in range(args.repeats):
        for v in variants:
            cmd = [*launch, *commands[v]]
            p = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if p.returncode != 0:
                print(f"[compare] {shlex.join(cmd)} failed:\n{p.stderr[-3000:]}", file=sys.stderr)
                return 1
            r = json.loads(p.stdout.strip().splitlines()[-1])
            runs[v].append(r)
            m = r["metrics"]
            extra = f", triad {m['stream_triad_gbs']:.1f} GB/s" if "stream_triad_gbs" in m else ""
            print(f"[compare] {rep + 1}/{args.repeats} {v}: {r['seconds']:.3f} s, "
                  f"{m['mlups']:.1f} MLUPS, {m['gbs']:.2f} GB/s{extra}", file=sys.stderr,
                  flush=True)

    def med(v, f):
        return statistics.median(f(r) for r in runs[v]) if runs.get(v) else None

    summary = {v: {"seconds": med(v, lambda r: r["seconds"]),
                   "mlups": med(v, lambda r: r["metrics"]["mlups"]),
                   "best_mlups": max(r["metrics"]["mlups"] for r in runs[v]),
                   "gbs": med(v, lambda r: r["metrics"]["gbs"]),
                   "hidden_comm_fraction": med(
                       v, lambda r: r["metrics"].get("hidden_comm_fraction") or 0.0)}
               for v in variants}
    if "cxx" in runs:
        summary["cxx"]["stream_triad_gbs"] = med("cxx", lambda r: r["metrics"]["stream_triad_gbs"])
        summary["cxx"]["fraction_of_stream"] = med(
            "cxx", lambda r: r["metrics"]["gbs"] / r["metrics"]["stream_triad_gbs"])
    want = runs[variants[0]][0]["check"]["checksum"]
    same = {v: all(r["check"]["checksum"] == want and r["check"]["ok"] for r in runs[v])
            for v in variants}
    ratios = {}
    base = summary.get("baseline", {})
    for v in ("port_numpy", "port_native", "port_numba", "cxx"):
        if base and v in summary:
            ratios[f"{v}/baseline"] = summary[v]["mlups"] / base["mlups"]
            ratios[f"{v}/baseline (best of each)"] = summary[v]["best_mlups"] / base["best_mlups"]
    if "cxx" in runs:
        ratios["cxx gbs/triad (best of each)"] = (
            max(r["metrics"]["gbs"] for r in runs["cxx"])
            / max(r["metrics"]["stream_triad_gbs"] for r in runs["cxx"]))
    load = os.getloadavg()
    result = {"app": "heat_compare", "ranks": args.ranks, "workers": args.cxx_workers,
              "devices": ["cpu"],
              "params": {"n": args.n, "dims": args.dims, "iters": args.iters,
                         "repeats": args.repeats, "launcher": shlex.join(launch)},
              "seconds": sum(r["seconds"] for v in variants for r in runs[v]),
              "metrics": {"median": summary, "ratios": ratios, "loadavg": list(load)},
              "check": {"ok": all(same.values()), "checksum": want, "same_checksum": same}}
    print(json.dumps(result))
    return 0 if result["check"]["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
