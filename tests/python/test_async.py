"""async def bodies: await tasks, slices and task spaces; continuations hold no thread."""

# Task bodies use loop variables on purpose: spawn copies them when the task is spawned
# (Parla's capture semantics), and Parla programs reuse body names.
# ruff: noqa: B023

import time

import pytest

from parla import Parla, TaskSpace, spawn


def test_await_returns_the_awaited_tasks_value():
    with Parla(2):

        @spawn()
        async def main_task():
            T = TaskSpace("T")
            for i in range(3):

                @spawn(T[i])
                async def task():
                    return [i] * 3

            a, b, c = await T[0], await T[1], await T[2]
            return a + b + c

    assert main_task.result == [0, 0, 0, 1, 1, 1, 2, 2, 2]


def test_await_a_task_space_and_a_slice_as_barriers():
    log = []
    with Parla(2):

        @spawn()
        async def main_task():
            A, B = TaskSpace("A"), TaskSpace("B")
            for i in range(4):

                @spawn(A[i])
                def in_a():
                    time.sleep(0.002)
                    log.append(("A", i))

            await A
            log.append("barrier A")
            for i in range(4):

                @spawn(B[i])
                def in_b():
                    log.append(("B", i))

            await B[0:4]
            log.append("barrier B")

            @spawn()
            def last():
                return "handle"

            return await last  # the handle the decorator returned is awaitable too

    assert main_task.result == "handle"
    assert log.index("barrier A") == 4 and sorted(log[:4]) == [("A", i) for i in range(4)]
    assert log[-1] == "barrier B" and sorted(log[5:9]) == [("B", i) for i in range(4)]


def test_awaiting_tasks_hold_no_worker():
    # One worker, eight tasks that each await a task spawned after all of them: if an await
    # held its thread, the first one would block the only worker forever.
    with Parla(1, deadlock_timeout=10):
        T, U = TaskSpace("T"), TaskSpace("U")
        for i in range(8):

            @spawn(T[i], placement=None)
            async def waiter():
                return (await U[i]) + 1

        for i in range(8):

            @spawn(U[i])
            def producer():
                return i * 10

    assert [T[i].result for i in range(8)] == [i * 10 + 1 for i in range(8)]


def test_the_coroutine_sees_its_own_task_and_devices_after_await():
    from parla.devices import gpu
    from parla.tasks import get_current_devices, get_current_task

    with Parla(1, sim_gpus=1):

        @spawn(placement=gpu(0))
        async def on_gpu():
            before = (get_current_task().name, get_current_devices())

            @spawn()
            def other():
                time.sleep(0.01)

            await other
            return before, (get_current_task().name, get_current_devices())

    assert on_gpu.result == (("on_gpu", [gpu(0)]), ("on_gpu", [gpu(0)]))


def test_an_async_task_is_done_only_when_its_coroutine_returns():
    with Parla(2):
        T = TaskSpace("T")

        @spawn(T[0])
        async def slow():
            @spawn()
            def inner():
                time.sleep(0.02)
                return 5

            return await inner

        @spawn(T[1], dependencies=[T[0]])
        def after():
            return T[0].result * 2

    assert T[1].result == 10


def test_awaiting_something_else_fails_the_task():
    import asyncio

    with pytest.raises(TypeError, match="can await tasks"), Parla(1):

        @spawn()
        async def bad():
            await asyncio.sleep(0)
