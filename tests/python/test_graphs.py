"""Task graphs at depth and at scale: tasks that spawn and wait for tasks, and graphs of
100,000 tasks, each checked task by task."""

# Task bodies use loop variables on purpose: spawn copies them when the task is spawned
# (Parla's capture semantics).
# ruff: noqa: B023

import time

import pytest

from parla import Parla, TaskSpace, spawn
from parla.devices import cpu

# A hang would show as a DeadlockError after this many seconds instead of a stuck test.
DEADLOCK_TIMEOUT = 30.0
LARGE = 100_000


# ---- nested spawns -------------------------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 2])
def test_async_bodies_spawn_and_await_two_levels_of_children(workers):
    with Parla(workers, deadlock_timeout=DEADLOCK_TIMEOUT):

        @spawn(placement=cpu)
        async def parent():
            children = TaskSpace("C")
            for i in range(4):

                @spawn(children[i])
                async def child():
                    grandchildren = TaskSpace(f"G{i}")
                    for j in range(3):

                        @spawn(grandchildren[j])
                        def grandchild():
                            return 10 * i + j

                    await grandchildren  # a barrier: every grandchild is done
                    return sum(t.result for t in grandchildren.tasks)

            return [await children[i] for i in range(4)]

    # child i returns (10i + 0) + (10i + 1) + (10i + 2)
    assert parent.result == [30 * i + 3 for i in range(4)]


@pytest.mark.parametrize("workers", [1, 2])
def test_recursive_spawns_that_wait_compute_fibonacci(workers):
    """Each call spawns two tasks and blocks in wait(): with one worker the waits nest on one
    thread, which runs the children itself."""
    ran = []

    def fib(n):
        if n < 2:
            ran.append(n)
            return n
        T = TaskSpace(f"fib{n}")
        for k in (1, 2):

            @spawn(T[k], placement=cpu)
            def sub():
                return fib(n - k)

        T.wait()
        ran.append(n)
        return T[1].result + T[2].result

    with Parla(workers, deadlock_timeout=DEADLOCK_TIMEOUT):

        @spawn(placement=cpu)
        def root():
            return fib(12)

    assert root.result == 144
    assert len(ran) == 2 * 233 - 1  # calls of the naive recursion: 2 fib(13) - 1


def test_a_body_waits_for_a_task_it_did_not_spawn():
    """A nested task may wait for a sibling of its parent: dependencies across levels."""
    with Parla(2, deadlock_timeout=DEADLOCK_TIMEOUT):
        T = TaskSpace("T")

        @spawn(T["late"], dependencies=[T["gate"]])
        def late():
            return "late"

        @spawn(T["outer"])
        async def outer():
            @spawn(T["inner"])
            def inner():
                return T["late"].wait() + "+inner"  # waits, helping run tasks meanwhile

            @spawn(T["gate"])
            def gate():
                return "gate"

            return await T["inner"]

    assert outer.result == "late+inner"
    assert [T[k].state for k in ("gate", "late", "inner", "outer")] == ["completed"] * 4


# ---- 100,000 tasks ---------------------------------------------------------------------------


def test_a_hundred_thousand_independent_tasks_each_run_exactly_once():
    counts = [0] * LARGE
    start = time.perf_counter()
    with Parla(2, deadlock_timeout=DEADLOCK_TIMEOUT):
        T = TaskSpace("T")
        for i in range(LARGE):

            @spawn(T[i], placement=cpu)
            def inc():
                counts[i] += 1  # pure Python: the GIL makes `+=` on a list slot safe
                return i

    elapsed = time.perf_counter() - start
    assert counts == [1] * LARGE
    assert len(T) == LARGE
    assert all(t.state == "completed" for t in T.tasks)
    assert T[LARGE - 1].result == LARGE - 1
    assert elapsed < 30, f"{LARGE} empty tasks took {elapsed:.1f} s"


def test_a_chain_of_a_hundred_thousand_tasks_passes_a_counter_along():
    """T[i] depends on T[i - 1] and returns its result + 1; `order` records that they ran in
    order, each once."""
    order = []
    with Parla(2, deadlock_timeout=DEADLOCK_TIMEOUT):
        T = TaskSpace("T")
        for i in range(LARGE):
            prev = T[i - 1]  # an empty TaskList for i = 0

            @spawn(T[i], dependencies=[prev], placement=cpu)
            def step():
                order.append(i)
                return prev.result + 1 if i else 1

    assert T[LARGE - 1].result == LARGE
    assert order == list(range(LARGE))


def test_a_chain_of_awaits_passes_a_counter_along():
    """The same chain through `await` (each continuation resumes when its predecessor is
    done), spawned in reverse so every await starts on a placeholder."""
    n = 20_000
    with Parla(2, deadlock_timeout=DEADLOCK_TIMEOUT):
        T = TaskSpace("T")
        for i in reversed(range(n)):

            @spawn(T[i], placement=cpu)
            async def step():
                return (await T[i - 1]) + 1 if i else 1

    assert [T[i].result for i in (0, 1, n - 1)] == [1, 2, n]
