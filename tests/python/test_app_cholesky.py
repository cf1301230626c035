"""apps/cholesky: the blocked Cholesky task graph (POTRF/TRSM/SYRK/GEMM on PArray tiles) on
the cpu alone and over simulated GPUs, checked by its residual and against NumPy."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "apps" / "cholesky" / "cholesky.py"


def run(*args, expect_rc=0):
    env = dict(os.environ, PARLA_DEADLOCK_TIMEOUT="30")
    env.pop("PARLA_SIM_GPUS", None)  # the tests say how many GPUs they simulate
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=60, env=env
    )
    assert proc.returncode == expect_rc, proc.stderr
    return proc


def result(*args):
    proc = run(*args)
    lines = proc.stdout.strip().splitlines()
    return json.loads(lines[-1])  # the JSON line is the last on stdout


@pytest.mark.parametrize(
    ("sim_gpus", "devices", "expected"),
    [
        (0, "all", ["cpu"]),
        (2, "all", ["cpu", "gpu(0)", "gpu(1)"]),
        (2, "gpu", ["gpu(0)", "gpu(1)"]),
    ],
)
def test_factorization_is_accurate_on_every_device_mix(sim_gpus, devices, expected):
    r = result(
        "--n",
        "384",
        "--block",
        "64",
        "--workers",
        "2",
        "--sim-gpus",
        str(sim_gpus),
        "--devices",
        devices,
    )
    assert r["app"] == "cholesky" and r["ranks"] == 1 and r["workers"] == 2
    assert r["devices"] == expected
    assert r["check"]["ok"] is True
    assert r["check"]["residual"] < 1e-12
    assert r["check"]["max_abs_diff_vs_baseline"] < 1e-10
    assert r["metrics"]["gflops"] > 0 and r["metrics"]["baseline_gflops"] > 0
    assert r["params"]["tiles"] == 6


def test_one_tile_and_uneven_worker_counts():
    r = result("--n", "96", "--block", "96", "--workers", "1")
    assert r["check"]["ok"] and r["check"]["residual"] < 1e-12


def test_block_must_divide_n_and_help_works():
    proc = run("--n", "100", "--block", "64", expect_rc=2)
    assert "must divide" in proc.stderr
    assert "--block" in run("--help").stdout


def test_gpu_devices_without_gpus_is_a_clear_error():
    proc = run("--n", "128", "--block", "64", "--sim-gpus", "0", "--devices", "gpu(3)", expect_rc=1)
    assert "gpu(3) requested but this runtime has 0 GPUs" in proc.stderr
