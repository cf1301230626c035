"""The Parla ports of apps/heat and apps/cg against their mpi4py baselines, at 1, 2 and 4 ranks:

- heat.py with the numpy kernel gives the baseline's checksum exactly (and the serial NumPy
  run's array bit for bit), on the cpu, on several partitions per rank and on simulated GPUs;
- heat.py with the native kernel (the library's fused kernel) agrees to 1e-12 relative, on
  simulated GPUs and on the cpu (it is in fact identical: same operation order, no FMA);
- cg.py's residual history equals the baseline's to 1e-10 relative, with the same number of
  iterations;
- the C++ heat (build/apps/heat/parla_heat) and the Python port give the same checksum;
- a wrong expected checksum fails the run (the check is not a formality).
"""

from __future__ import annotations

import sys

import pytest
from apprun import (
    CG_BASE,
    CG_PORT,
    HEAT_BASE,
    HEAT_CXX,
    HEAT_PORT,
    baseline,
    has_module,
    has_native_kernels,
    run,
)

NATIVE = has_native_kernels()
needs_native = pytest.mark.skipif(
    not NATIVE, reason="the installed parla._core has no kernels module (rebuild: scripts/build)")


def heat_args(dims: int, n: int, boundary: str, iters: int = 15) -> list[str]:
    return ["--n", str(n), "--dims", str(dims), "--iters", str(iters), "--boundary", boundary]


def heat_baseline(dims: int, n: int, boundary: str) -> float:
    r = baseline(HEAT_BASE, *heat_args(dims, n, boundary), "--verify", "yes")
    assert r["check"]["ok"] and r["check"]["serial_identical"], r["check"]
    return r["check"]["checksum"]


def check_port(r: dict, want: float, exact: bool) -> None:
    check = r["check"]
    assert check["ok"], check
    assert check["matches_baseline"] is True, check
    if exact:
        assert check["checksum"] == want, (check["checksum"], want)
        assert check["serial_identical"] is True, check
    else:
        assert abs(check["checksum"] - want) <= 1e-12 * abs(want), (check["checksum"], want)
        assert check["serial_close"] is True, check
    m = r["metrics"]
    assert m["mlups"] > 0 and m["gbs"] > 0
    assert 0.0 <= m["hidden_comm_fraction"] <= 1.0, m
    assert set(m["overlap_seconds"]) == {"both", "exchange_only", "sweep_only"}


@pytest.mark.parametrize("script", [HEAT_PORT, CG_PORT], ids=["heat", "cg"])
def test_help(script):
    import subprocess
    import sys

    p = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    for flag in ("--n", "--dims", "--devices"):
        assert flag in p.stdout


# (dims, n, boundary, rank counts): every rank count for two cases, 2 ranks for the others.
HEAT_CASES = [(2, 29, "fixed", (1, 2, 4)), (3, 11, "periodic", (1, 2, 4)),
              (2, 29, "periodic", (2,)), (3, 11, "fixed", (2,))]


@pytest.mark.parametrize("dims,n,boundary,ranks", HEAT_CASES,
                         ids=[f"{d}d-{b}" for d, _, b, _ in HEAT_CASES])
def test_heat_port_numpy_gives_the_baseline_checksum(dims, n, boundary, ranks):
    want = heat_baseline(dims, n, boundary)
    for np in ranks:
        r = run(np, HEAT_PORT, *heat_args(dims, n, boundary), "--kernel", "numpy",
                "--verify", "yes", "--expect-checksum", repr(want))
        check_port(r, want, exact=True)
        assert r["params"]["kernel"] == "numpy" and r["devices"] == ["cpu"]


@pytest.mark.parametrize("np,dims,devices", [(2, 2, "cpu,cpu"), (2, 2, "gpu:2"),
                                             (4, 3, "cpu,gpu:2")])
def test_heat_port_numpy_on_several_devices(np, dims, devices):
    n = 29 if dims == 2 else 11
    want = heat_baseline(dims, n, "fixed")
    r = run(np, HEAT_PORT, *heat_args(dims, n, "fixed"), "--devices", devices,
            "--verify", "yes", "--expect-checksum", repr(want))
    check_port(r, want, exact=True)
    assert len(r["devices"]) == len(devices.split(",")) + ("gpu:2" in devices)


@needs_native
@pytest.mark.parametrize("np,dims,boundary,devices", [
    (1, 2, "fixed", "gpu:2"), (2, 2, "fixed", "gpu:2"), (4, 2, "fixed", "gpu:2"),
    (2, 2, "periodic", "cpu"), (2, 3, "periodic", "gpu:2")])
def test_heat_port_native_kernel(np, dims, boundary, devices):
    n = 29 if dims == 2 else 11
    want = heat_baseline(dims, n, boundary)
    r = run(np, HEAT_PORT, *heat_args(dims, n, boundary), "--kernel", "native",
            "--devices", devices, "--verify", "yes", "--expect-checksum", repr(want))
    check_port(r, want, exact=False)
    assert r["params"]["kernel"] == "native"
    if devices == "gpu:2":
        assert r["devices"] == ["gpu(0)", "gpu(1)"] and r["params"]["sim_gpus"] == 2
    # Same operation order and no contraction: in fact the same bits.
    assert r["check"]["checksum"] == want


@pytest.mark.skipif(not has_module("numba"), reason="numba is not installed")
def test_heat_port_numba_kernel():
    want = heat_baseline(2, 29, "fixed")
    r = run(2, HEAT_PORT, *heat_args(2, 29, "fixed"), "--kernel", "numba", "--verify", "yes",
            "--expect-checksum", repr(want))
    check_port(r, want, exact=False)


def test_heat_port_fails_on_a_wrong_checksum():
    want = heat_baseline(2, 29, "fixed")
    wrong = want * (1 + 1e-15)
    assert wrong != want
    r = run(2, HEAT_PORT, *heat_args(2, 29, "fixed"), "--expect-checksum", repr(wrong),
            expect_rc=1)
    assert r["check"]["ok"] is False and r["check"]["matches_baseline"] is False


def test_heat_port_rejects_unknown_devices():
    import subprocess
    import sys

    p = subprocess.run([sys.executable, str(HEAT_PORT), "--devices", "tpu0", "--n", "8"],
                       capture_output=True, text=True)
    assert p.returncode != 0 and "--devices" in p.stderr and "tpu0" in p.stderr


CG_CASES = [(2, 24, 1, "cpu"), (2, 24, 2, "cpu"), (2, 24, 4, "cpu"), (3, 10, 2, "cpu"),
            (2, 24, 2, "gpu:2")]


@pytest.mark.parametrize("dims,n,np,devices", CG_CASES,
                         ids=[f"{d}d-np{p}-{dev}" for d, _, p, dev in CG_CASES])
def test_cg_port_history_equals_the_baseline(dims, n, np, devices, tmp_path):
    args = ["--n", str(n), "--dims", str(dims), "--tol", "1e-10", "--maxiter", "500"]
    base = baseline(CG_BASE, *args, np=np)
    assert base["check"]["ok"]
    want = base["metrics"]["history"]
    history = tmp_path / "baseline.json"
    history.write_text(__import__("json").dumps(want))
    r = run(np, CG_PORT, *args, "--devices", devices, "--expect-history", str(history))
    assert r["check"]["ok"] and r["check"]["matches_baseline"], r["check"]
    got = r["metrics"]["history"]
    assert len(got) == len(want) == r["metrics"]["iterations"]
    worst = max(abs(a - b) / abs(a) for a, b in zip(want, got))
    assert worst <= 1e-10, worst
    assert got[-1] <= 1e-10 and r["check"]["true_residual"] <= 1e-9


@pytest.mark.skipif(not HEAT_CXX, reason="PARLA_HEAT_CXX (the C++ heat app) not given")
@pytest.mark.parametrize("np,dims,boundary,sim_gpus", [(2, 2, "fixed", 0), (4, 3, "periodic", 2)])
def test_cxx_heat_equals_python_heat(np, dims, boundary, sim_gpus):
    n = 29 if dims == 2 else 11
    common = heat_args(dims, n, boundary)
    py = run(np, HEAT_PORT, *common, "--devices", f"gpu:{sim_gpus}" if sim_gpus else "cpu",
             "--verify", "yes")
    extra = ["--sim-gpus", str(sim_gpus), "--devices", str(sim_gpus)] if sim_gpus else []
    cxx = run(np, HEAT_CXX, *common, "--workers", "2", "--triad-elements", "0", "--verify",
              "yes", *extra)
    assert py["check"]["ok"] and cxx["check"]["ok"], (py["check"], cxx["check"])
    assert cxx["check"]["checksum"] == py["check"]["checksum"]
    assert cxx["check"]["checksum"] == heat_baseline(dims, n, boundary)


def test_demo_script_runs_heat_with_traces(tmp_path):
    """scripts/demo (README): heat 2-D on 2 ranks, the result line, one valid trace per rank."""
    import json
    import os
    import subprocess

    from apprun import ROOT

    env = dict(os.environ, PARLA_SKIP_BUILD="1", PARLA_BUILD_DIR=str(tmp_path),
               PARLA_DEMO_PYTHON=sys.executable)
    env.pop("PARLA_DEMO", None)
    p = subprocess.run(["bash", str(ROOT / "scripts" / "demo"), "--n", "64", "--iters", "10"],
                       capture_output=True, text=True, env=env, timeout=240)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "result checked: ok" in p.stderr
    assert "ui.perfetto.dev" in p.stderr and "chrome://tracing" in p.stderr
    result = json.loads(p.stdout.strip().splitlines()[-1])
    assert result["app"] == "heat" and result["ranks"] == 2 and result["check"]["ok"]
    for rank in (0, 1):
        trace = tmp_path / f"demo-trace.{rank}.json"
        assert str(trace) in p.stderr
        events = json.loads(trace.read_text())["traceEvents"]
        names = {e.get("name", "") for e in events if e.get("cat") == "task"}
        assert any("sweep" in n for n in names) and any("halo" in n for n in names), names
