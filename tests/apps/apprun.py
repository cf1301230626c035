"""Starting the apps under mpiexec from the tests of tests/apps, and reading their JSON line.

PARLA_MPIEXEC and PARLA_MPIEXEC_FLAGS override the launcher (CMake sets them); Open MPI gets
``--oversubscribe --bind-to none`` and root is allowed."""

from __future__ import annotations

import functools
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAT_BASE = ROOT / "apps" / "heat" / "heat_mpi4py.py"
HEAT_PORT = ROOT / "apps" / "heat" / "heat.py"
CG_BASE = ROOT / "apps" / "cg" / "cg_mpi4py.py"
CG_PORT = ROOT / "apps" / "cg" / "cg.py"
PORTING = ROOT / "apps" / "heat" / "porting"
HEAT_CXX = os.environ.get("PARLA_HEAT_CXX")  # build/apps/heat/parla_heat, set by CMake
RANKS = (1, 2, 4)
KEYS = ("app", "ranks", "workers", "devices", "params", "seconds", "metrics", "check")


@functools.lru_cache(maxsize=1)
def launcher() -> tuple[str, ...]:
    exe = os.environ.get("PARLA_MPIEXEC", "mpiexec")
    flags = os.environ.get("PARLA_MPIEXEC_FLAGS")
    if flags is None:
        version = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout
        open_mpi = "Open MPI" in version or "OpenRTE" in version
        flags = "--oversubscribe --bind-to none" if open_mpi else ""
    return (exe, *shlex.split(flags))


def run(np: int, script: Path | str, *args: str, env: dict | None = None,
        expect_rc: int = 0) -> dict:
    """Runs ``script`` (a .py file under this Python, or an executable) on ``np`` ranks and
    returns its result (the last stdout line, checked for DESIGN §6's keys)."""
    full_env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    full_env.pop("PARLA_SIM_GPUS", None)
    full_env.update(env or {})
    script = Path(script)
    program = [str(script)] if script.suffix != ".py" else [sys.executable, str(script)]
    cmd = [*launcher(), "-n", str(np), *program, *args]
    p = subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=240)
    assert p.returncode == expect_rc, (
        f"{shlex.join(cmd)} exited {p.returncode}, expected {expect_rc}:\n{p.stdout}\n{p.stderr}")
    lines = p.stdout.strip().splitlines()
    assert lines, f"no output from {shlex.join(cmd)}:\n{p.stderr}"
    result = json.loads(lines[-1])  # the JSON line is the last line on stdout
    for key in KEYS:
        assert key in result, (key, result)
    assert result["ranks"] == np
    return result


@functools.cache
def _cached(np: int, script: str, args: tuple[str, ...]) -> str:
    return json.dumps(run(np, script, *args))


def baseline(script: Path, *args: str, np: int = 2) -> dict:
    """A baseline's result, run once per argument list in this test process."""
    return json.loads(_cached(np, str(script), tuple(args)))


def has_native_kernels() -> bool:
    """Whether the installed parla._core ships the stencil kernels (--kernel native)."""
    probe = "import parla._core as c; raise SystemExit(0 if hasattr(c, 'kernels') else 1)"
    return subprocess.run([sys.executable, "-c", probe], capture_output=True).returncode == 0


def has_module(name: str) -> bool:
    probe = f"import importlib.util as u; raise SystemExit(0 if u.find_spec({name!r}) else 1)"
    return subprocess.run([sys.executable, "-c", probe], capture_output=True).returncode == 0
