"""pytest under mpiexec: a test that fails on one rank aborts the whole job (MPI_Abort), so
the other ranks cannot hang in a collective waiting for it."""

from __future__ import annotations

import sys
from typing import Any

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: Any, call: Any) -> Any:
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        from mpi4py import MPI

        rank = MPI.COMM_WORLD.Get_rank()
        sys.stderr.write(
            f"[rank {rank}] {item.nodeid} failed:\n{report.longreprtext}\n"
            f"[rank {rank}] aborting the job\n"
        )
        sys.stderr.flush()
        MPI.COMM_WORLD.Abort(1)
