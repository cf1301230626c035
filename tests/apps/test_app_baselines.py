"""The mpi4py baselines of apps/heat and apps/cg at 1, 2 and 4 ranks: each run checks itself,
the heat checksum is identical (bit for bit) at every rank count, and the CG residual history
agrees across rank counts to 1e-10 relative.

Each test starts its own jobs with mpiexec (PARLA_MPIEXEC, PARLA_MPIEXEC_FLAGS override the
launcher; Open MPI gets --oversubscribe --bind-to none, and root is allowed)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAT = ROOT / "apps" / "heat" / "heat_mpi4py.py"
CG = ROOT / "apps" / "cg" / "cg_mpi4py.py"
RANKS = (1, 2, 4)


def launcher() -> list[str]:
    exe = os.environ.get("PARLA_MPIEXEC", "mpiexec")
    flags = os.environ.get("PARLA_MPIEXEC_FLAGS")
    if flags is None:
        version = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout
        open_mpi = "Open MPI" in version or "OpenRTE" in version
        flags = "--oversubscribe --bind-to none" if open_mpi else ""
    return [exe, *shlex.split(flags)]


def run(np: int, script: Path, *args: str) -> dict:
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    program = [str(script)] if script.suffix != ".py" else [sys.executable, str(script)]
    cmd = [*launcher(), "-n", str(np), *program, *args]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
    assert p.returncode == 0, f"{shlex.join(cmd)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}"
    lines = p.stdout.strip().splitlines()
    assert lines, f"no output from {shlex.join(cmd)}:\n{p.stderr}"
    result = json.loads(lines[-1])  # the JSON line is the last line on stdout
    for key in ("app", "ranks", "workers", "devices", "params", "seconds", "metrics", "check"):
        assert key in result, key
    assert result["ranks"] == np
    return result


@pytest.mark.parametrize("script", [HEAT, CG], ids=["heat", "cg"])
def test_help(script):
    p = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True)
    assert p.returncode == 0 and "--n" in p.stdout and "--dims" in p.stdout


@pytest.mark.parametrize("dims,n", [(2, 29), (3, 11)])
@pytest.mark.parametrize("boundary", ["fixed", "periodic"])
def test_heat_checksum_is_identical_at_every_rank_count(dims, n, boundary):
    args = ["--n", str(n), "--dims", str(dims), "--iters", "15", "--boundary", boundary,
            "--verify", "yes"]
    results = {np: run(np, HEAT, *args) for np in RANKS}
    for np, r in results.items():
        assert r["check"]["ok"], (np, r["check"])
        assert r["check"]["serial_identical"], np
        assert r["metrics"]["mlups"] > 0
    sums = {np: r["check"]["checksum"] for np, r in results.items()}
    assert len(set(sums.values())) == 1, sums
    if boundary == "periodic":  # this pattern's mass is conserved exactly here
        assert sums[1] == results[1]["check"]["initial_checksum"]


@pytest.mark.parametrize("dims,n", [(2, 24), (3, 10)])
def test_cg_history_agrees_across_rank_counts(dims, n):
    args = ["--n", str(n), "--dims", str(dims), "--tol", "1e-10", "--maxiter", "500"]
    results = {np: run(np, CG, *args) for np in RANKS}
    ref = results[1]["metrics"]["history"]
    assert results[1]["check"]["ok"] and ref[-1] <= 1e-10
    for np, r in results.items():
        assert r["check"]["ok"], (np, r["check"])
        hist = r["metrics"]["history"]
        assert len(hist) == len(ref), (np, len(hist), len(ref))
        worst = max(abs(a - b) / abs(a) for a, b in zip(ref, hist))
        assert worst <= 1e-10, (np, worst)


def test_cg_history_file(tmp_path):
    out = tmp_path / "history.json"
    r = run(2, CG, "--n", "16", "--tol", "1e-8", "--history", str(out))
    assert r["metrics"]["history_file"] == str(out)
    hist = json.loads(out.read_text())
    assert len(hist) == r["metrics"]["iterations"] and hist[-1] <= 1e-8


HEAT_CXX = os.environ.get("PARLA_HEAT_CXX")  # build/apps/heat/parla_heat, set by CMake


@pytest.mark.skipif(not HEAT_CXX, reason="PARLA_HEAT_CXX (the C++ heat app) not given")
@pytest.mark.parametrize("dims,n", [(2, 29), (3, 11)])
@pytest.mark.parametrize("boundary", ["fixed", "periodic"])
@pytest.mark.parametrize("sim_gpus", [0, 2])
def test_cxx_heat_reproduces_the_baseline_checksum(dims, n, boundary, sim_gpus):
    common = ["--n", str(n), "--dims", str(dims), "--iters", "15", "--boundary", boundary]
    want = run(2, HEAT, *common)["check"]["checksum"]
    extra = ["--sim-gpus", str(sim_gpus), "--devices", str(sim_gpus)] if sim_gpus else []
    for np in RANKS:
        r = run(np, Path(HEAT_CXX), *common, "--workers", "2", "--triad-elements", "0",
                "--verify", "yes", *extra)
        assert r["check"]["ok"] and r["check"]["serial_identical"], (np, r["check"])
        assert r["check"]["checksum"] == want, (np, r["check"]["checksum"], want)
