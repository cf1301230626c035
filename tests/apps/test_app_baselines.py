"""The mpi4py baselines of apps/heat and apps/cg at 1, 2 and 4 ranks: each run checks itself,
the heat checksum is identical (bit for bit) at every rank count, and the CG residual history
agrees across rank counts to 1e-10 relative.

Each test starts its own jobs with mpiexec (tests/apps/apprun.py: PARLA_MPIEXEC,
PARLA_MPIEXEC_FLAGS override the launcher; Open MPI gets --oversubscribe --bind-to none, and
root is allowed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from apprun import CG_BASE as CG
from apprun import HEAT_BASE as HEAT
from apprun import HEAT_CXX, RANKS, baseline, run


@pytest.mark.parametrize("script", [HEAT, CG], ids=["heat", "cg"])
def test_help(script):
    p = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True)
    assert p.returncode == 0 and "--n" in p.stdout and "--dims" in p.stdout


@pytest.mark.parametrize("dims,n", [(2, 29), (3, 11)])
@pytest.mark.parametrize("boundary", ["fixed", "periodic"])
def test_heat_checksum_is_identical_at_every_rank_count(dims, n, boundary):
    args = ["--n", str(n), "--dims", str(dims), "--iters", "15", "--boundary", boundary,
            "--verify", "yes"]
    results = {np: baseline(HEAT, *args, np=np) for np in RANKS}
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


@pytest.mark.skipif(not HEAT_CXX, reason="PARLA_HEAT_CXX (the C++ heat app) not given")
@pytest.mark.parametrize("dims,n", [(2, 29), (3, 11)])
@pytest.mark.parametrize("boundary", ["fixed", "periodic"])
@pytest.mark.parametrize("sim_gpus", [0, 2])
def test_cxx_heat_reproduces_the_baseline_checksum(dims, n, boundary, sim_gpus):
    common = ["--n", str(n), "--dims", str(dims), "--iters", "15", "--boundary", boundary]
    want = baseline(HEAT, *common, "--verify", "yes", np=2)["check"]["checksum"]
    extra = ["--sim-gpus", str(sim_gpus), "--devices", str(sim_gpus)] if sim_gpus else []
    # Every rank count on the cpu; simulated GPUs at 1 and 4 ranks (2 is in test_app_ports).
    for np in RANKS if not sim_gpus else (1, 4):
        r = run(np, Path(HEAT_CXX), *common, "--workers", "2", "--triad-elements", "0",
                "--verify", "yes", *extra)
        assert r["check"]["ok"] and r["check"]["serial_identical"], (np, r["check"])
        assert r["check"]["checksum"] == want, (np, r["check"]["checksum"], want)
