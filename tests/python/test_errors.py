"""Failures: the original exception with its traceback and the task's name, cancelled
dependents, waits that raise, deadlocks reported instead of hangs."""

# Task bodies use loop variables on purpose: spawn copies them when the task is spawned
# (Parla's capture semantics), and Parla programs reuse body names.
# ruff: noqa: B023, SIM117

import traceback

import pytest

from parla import Parla, TaskSpace, spawn
from parla._core import DeadlockError


def _fail(message):
    raise ValueError(message)


def test_parla_exit_raises_the_original_exception_with_the_task_name():
    ran = []
    with pytest.raises(ValueError, match="boom") as info, Parla(2):
        T = TaskSpace("T")
        for i in range(3):

            @spawn(T[i], dependencies=[T[i - 1]])
            def step():
                if i == 1:
                    _fail("boom")
                ran.append(i)

    error = info.value
    assert ran == [0]  # T[2] was cancelled: it never ran
    assert error.parla_task == "T[1]"
    assert "raised in Parla task 'T[1]'" in error.__notes__
    text = "".join(traceback.format_exception(error))
    assert "in step" in text and "in _fail" in text  # the body's frames are kept
    assert "raised in Parla task 'T[1]'" in text


def test_wait_on_a_cancelled_dependent_raises_the_cause():
    with Parla(1):
        T = TaskSpace("T")

        @spawn(T[0])
        def bad():
            raise KeyError("missing")

        @spawn(T[1], dependencies=[T[0]])
        def never():
            pass

        with pytest.raises(KeyError, match="missing") as info:
            T[1].wait()
        assert info.value.parla_task == "T[0]"
        assert T[1].state == "cancelled" and isinstance(T[1].result, KeyError)


def test_a_failing_coroutine_reports_its_exception():
    with pytest.raises(ZeroDivisionError) as info, Parla(1):

        @spawn()
        async def divider():
            @spawn()
            def one():
                return 1

            x = await one
            return x / 0

    assert info.value.parla_task == "divider"


def test_an_await_of_a_failed_task_fails_the_awaiting_task():
    with pytest.raises(RuntimeError, match="inner failure"), Parla(1):

        @spawn()
        async def outer():
            @spawn()
            def inner():
                raise RuntimeError("inner failure")

            await inner

    assert outer.state == "failed"


def test_the_block_own_exception_wins_over_task_failures():
    with pytest.raises(LookupError, match="from the block"), Parla(1):

        @spawn()
        def bad():
            raise ValueError("task")

        raise LookupError("from the block")


def test_a_dependency_never_spawned_is_a_deadlock_report_not_a_hang():
    with pytest.raises(DeadlockError, match="never spawned") as info:
        with Parla(1, deadlock_timeout=0.3):
            T = TaskSpace("T")

            @spawn(T[1], dependencies=[T[0]])
            def waits_forever():
                pass

    assert any("T[0]" in line for line in info.value.blocked)
