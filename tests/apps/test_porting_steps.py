"""The programs of the porting guide (apps/heat/porting/step{1..4}.py, docs/porting.md): each
step runs and gives the heat baseline's checksum exactly (and its own serial check passes)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from apprun import HEAT_BASE, PORTING, baseline, run

STEPS = [(step, np) for step in (1, 2, 3, 4) for np in (1, 2, 4)]


def want(dims: int, n: int, boundary: str) -> float:
    r = baseline(HEAT_BASE, "--n", str(n), "--dims", str(dims), "--iters", "12",
                 "--boundary", boundary, "--verify", "yes")
    assert r["check"]["ok"] and r["check"]["serial_identical"]
    return r["check"]["checksum"]


@pytest.mark.parametrize("step,np", STEPS, ids=[f"step{s}-np{p}" for s, p in STEPS])
def test_step_gives_the_baseline_checksum(step, np):
    r = run(np, PORTING / f"step{step}.py", "--n", "29", "--iters", "12")
    assert r["app"] == f"heat_porting_step{step}"
    assert r["check"]["ok"], r["check"]
    assert r["check"]["checksum"] == r["check"]["serial_checksum"] == want(2, 29, "fixed")
    if step == 4:
        assert r["devices"] == ["gpu(0)", "gpu(1)"]


@pytest.mark.parametrize("step", [2, 3, 4])
def test_step_3d_periodic(step):
    r = run(2, PORTING / f"step{step}.py", "--n", "11", "--dims", "3", "--iters", "12",
            "--boundary", "periodic")
    assert r["check"]["ok"], r["check"]
    assert r["check"]["checksum"] == want(3, 11, "periodic")


@pytest.mark.parametrize("step", [1, 2, 3, 4])
def test_step_help(step):
    p = subprocess.run([sys.executable, str(PORTING / f"step{step}.py"), "--help"],
                       capture_output=True, text=True)
    assert p.returncode == 0 and "--n" in p.stdout and "porting" in p.stdout.lower()
