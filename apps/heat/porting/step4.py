#!/usr/bin/env python3
"""Porting step 4: the blocks move to GPUs (docs/porting.md).

Step 3 with ``devices=[gpu(0), gpu(1)]``: each rank's block is split along axis 0 over its
GPUs, one partition each. The sweep is unchanged: on a CUDA GPU a tile is a CuPy array (the
same expression runs as CuPy kernels on the task's stream), on a simulated GPU a NumPy array
in the device's own memory. The halo plan now also holds device-to-device copies between the
two partitions of a rank. Without CUDA GPUs (or with ``--sim-gpus N``) the GPUs are
simulated (``PARLA_SIM_GPUS``): same code paths, host memory.
"""

from __future__ import annotations

import os
import sys

from common import parse_args
from step3 import run

import parla
from parla.devices import gpu


def main(argv=None) -> int:
    args = parse_args("step4", argv, lambda p: (
        p.add_argument("--gpus", type=int, default=2, help="GPUs per rank (default 2)"),
        p.add_argument("--sim-gpus", type=int, default=None,
                       help="simulate this many GPUs per rank (default: PARLA_SIM_GPUS, or "
                       "--gpus when Parla was built without CUDA)")))
    sim = args.sim_gpus
    if sim is None and "PARLA_SIM_GPUS" not in os.environ and not parla.build_config["cuda"]:
        sim = args.gpus
    if sim is None:
        sim = int(os.environ.get("PARLA_SIM_GPUS", "0"))
    return run(args, [gpu(i) for i in range(args.gpus)], sim_gpus=sim)


if __name__ == "__main__":
    sys.exit(main())
