"""Ranks on one node started with disjoint core masks (what `srun --cpu-bind=cores` or
`mpirun --bind-to core` give them) keep to them: every worker of each rank's runtime, tasks
with and without a core reservation, and the BLAS limit inside a context task."""

from __future__ import annotations

import os

import pytest
from mpi4py import MPI

from parla import Parla, TaskSpace, spawn
from parla.tasks import get_current_context

WORLD = MPI.COMM_WORLD
RANK = WORLD.Get_rank()
SIZE = WORLD.Get_size()
NODE_CORES = sorted(os.sched_getaffinity(0))


@pytest.fixture
def own_core():
    """Binds this rank to one core, as a launcher would, and restores the mask afterwards."""
    before = os.sched_getaffinity(0)
    core = NODE_CORES[RANK % len(NODE_CORES)]
    os.sched_setaffinity(0, {core})
    yield core
    os.sched_setaffinity(0, before)


def test_ranks_with_disjoint_masks_keep_to_them(own_core: int) -> None:
    with Parla(n_workers=2):
        T = TaskSpace("T")
        for i in range(16):
            # Half plain tasks, half holding every core of the rank (vcus=1.0).
            @spawn(T[i], vcus=1.0 if i % 2 else None)
            def t():
                return get_current_context().cores, sorted(os.sched_getaffinity(0))

    seen = [T[i].result for i in range(16)]  # the runtime has finished them
    for _, mask in seen:
        assert mask == [own_core], f"rank {RANK} bound to core {own_core} saw a task on {mask}"
    assert {cores for cores, _ in seen} == {0, 1}  # vcus=1.0 of a 1-core rank is that core
    everyone = WORLD.allgather((own_core, sorted({c for _, m in seen for c in m})))
    for r, (core, used) in enumerate(everyone):
        assert used == [core], f"rank {r}: bound to {core}, its tasks ran on {used}"
    # Ranks given different cores used different cores (ranks beyond the core count share).
    by_core: dict[int, set[int]] = {}
    for r, (core, _) in enumerate(everyone):
        by_core.setdefault(core, set()).add(r)
    assert len(by_core) == min(SIZE, len(NODE_CORES))


def test_blas_inside_a_context_task_uses_the_rank_share(own_core: int) -> None:
    threadpoolctl = pytest.importorskip("threadpoolctl")
    pytest.importorskip("numpy")

    with Parla(n_workers=2):

        @spawn(vcus=1.0)
        def t():
            info = threadpoolctl.threadpool_info()
            return [i["num_threads"] for i in info if i["user_api"] == "blas"]

    assert t.result and set(t.result) == {1}, (
        f"rank {RANK}: BLAS threads in a 1-core context {t.result}"
    )
