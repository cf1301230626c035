"""What every step of the porting guide shares and does not change: the command line of the
baseline, and the result line with its check (docs/porting.md). The numerics stay in
``apps/heat/heat_mpi4py.py``; the steps import them from there."""

from __future__ import annotations

import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import heat_mpi4py as base


def parse_args(step: str, argv=None, extra=None):
    """The baseline's options (--n, --dims, --iters, --boundary, ...) plus a step's own."""
    import argparse

    parser = argparse.ArgumentParser(
        description=f"Porting guide, {step} (docs/porting.md): the heat baseline on the way to "
        "Parla. Prints one JSON line last on stdout.")
    parser.add_argument("--n", type=int, default=1024, help="global cells per axis")
    parser.add_argument("--dims", type=int, choices=(2, 3), default=2)
    parser.add_argument("--iters", type=int, default=100)
    parser.add_argument("--boundary", choices=("fixed", "periodic"), default="fixed")
    if extra is not None:
        extra(parser)
    return parser.parse_args(argv)


def report(step: str, args, comm, checksum: float, elapsed: float, workers: int,
           devices=("cpu",)) -> int:
    """Checks the checksum against a serial NumPy run of the same problem (grids up to
    2**18 cells; larger ones are checked by bounds only), prints the JSON line on rank 0 and
    returns the exit status."""
    check = {"ok": bool(np.isfinite(checksum) and checksum > 0), "checksum": checksum}
    cells = args.n**args.dims
    if cells <= 1 << 18:
        want = None
        if comm.Get_rank() == 0:
            ref = base.serial_reference(args.n, args.dims, args.iters, args.boundary == "periodic")
            want = base.checksum_from_digits(base.checksum_digits(ref))
        want = comm.bcast(want, root=0)
        check["serial_checksum"] = want
        check["ok"] = check["ok"] and checksum == want
    updates = cells * args.iters
    result = {
        "app": f"heat_porting_{step}",
        "ranks": comm.Get_size(),
        "workers": workers,
        "devices": list(devices),
        "params": {"n": args.n, "dims": args.dims, "iters": args.iters,
                   "boundary": args.boundary},
        "seconds": elapsed,
        "metrics": {"mlups": updates / elapsed / 1e6 if elapsed > 0 else 0.0,
                    "gbs": 16.0 * updates / elapsed / 1e9 if elapsed > 0 else 0.0},
        "check": check,
    }
    if comm.Get_rank() == 0:
        print(f"[{step}] {elapsed:.3f} s, checksum {checksum!r}, ok={check['ok']}",
              file=sys.stderr, flush=True)
        print(json.dumps(result), flush=True)
    return 0 if check["ok"] else 1
