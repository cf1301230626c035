"""Parla's API: import paths, spawn, task spaces, dependencies, placement, the current task."""

# Task bodies use loop variables on purpose: spawn copies them when the task is spawned
# (Parla's capture semantics), and Parla programs reuse body names.
# ruff: noqa: B023

import threading
import time

import pytest

from parla import Parla, TaskSpace, spawn


def test_every_parla_import_path_works():
    from parla import Parla as P2
    from parla import parray, sleep_gil, sleep_nogil, specialize  # noqa: F401
    from parla.array import clone_here, copy  # noqa: F401
    from parla.common.globals import (  # noqa: F401
        get_current_context,
        get_current_devices,
        get_current_stream,
    )
    from parla.cpu import cpu as cpu2
    from parla.cuda import gpu as gpu2
    from parla.cython.device_manager import cpu as cpu3
    from parla.cython.device_manager import gpu as gpu3
    from parla.cython.tasks import AtomicTaskSpace  # noqa: F401
    from parla.devices import cpu, gpu
    from parla.function_decorators import specialized  # noqa: F401
    from parla.task_collections import TaskSpace as TS2
    from parla.tasks import AtomicTaskSpace as ATS2  # noqa: F401
    from parla.tasks import TaskSpace as TS3
    from parla.tasks import get_current_task, spawn  # noqa: F401

    assert P2 is Parla and TS2 is TaskSpace and TS3 is TaskSpace
    assert cpu is cpu2 is cpu3 and gpu is gpu2 is gpu3
    assert gpu(1) == gpu(1) and gpu(1) != gpu(0) and repr(gpu(1)) == "gpu(1)"


def test_spawn_outside_a_parla_block_says_so():
    with pytest.raises(RuntimeError, match=r"with Parla\(\):"):

        @spawn()
        def orphan():
            pass


def test_decorator_returns_the_task_and_its_result():
    with Parla(2):

        @spawn()
        def answer():
            return 42

        assert answer.name == "answer"
        answer.wait()
    assert answer.state == "completed"
    assert answer.result == 42


def test_captured_variables_are_copied_at_spawn():
    results = {}
    with Parla(2):
        T = TaskSpace("T")
        for i in range(5):

            @spawn(T[i])
            def task():
                time.sleep(0.001)
                results[i] = i  # `i` as it was when this task was spawned

        i = 100  # a later change is not seen by the tasks
    assert results == {k: k for k in range(5)}


def test_nonlocal_writes_go_to_the_task_copy():
    seen = []
    with Parla(1):
        T = TaskSpace("T")
        for i in range(3):

            @spawn(T[i], dependencies=[T[i - 1]])
            def task():
                nonlocal i
                i = i + 4
                seen.append(i)

    assert seen == [4, 5, 6]


def test_dependencies_order_a_chain_even_when_spawned_in_reverse():
    order = []
    with Parla(2):
        T = TaskSpace("T")
        for i in reversed(range(8)):  # each task depends on one not spawned yet

            @spawn(T[i], dependencies=[T[i - 1]])
            def step():
                order.append(i)

    assert order == list(range(8))


def test_slice_dependencies_wait_for_every_element():
    done = []
    with Parla(2):
        A, B = TaskSpace("A"), TaskSpace("B")

        @spawn(B[0], dependencies=[A[0:4]])
        def after():
            done.append(("B", sorted(x for x in done)))

        for i in range(4):

            @spawn(A[i])
            def work():
                time.sleep(0.002)
                done.append(i)

    assert done[-1] == ("B", [0, 1, 2, 3])


def test_taskspace_indexing_follows_parla():
    with Parla(1):
        T = TaskSpace("T")
        assert T[3] is T[3]
        assert len(T[-1]) == 0  # out of range: an empty list, so T[i - 1] needs no special case
        assert [t.name for t in T[0:3]] == ["T[0]", "T[1]", "T[2]"]
        assert T[1, 2].name == "T[1,2]" and T["setup"].name == 'T["setup"]'
        assert T[0, "a"] is T[(0, "a")]
        assert [t.name for t in T[0:2, [5, 7]]] == ["T[0,5]", "T[0,7]", "T[1,5]", "T[1,7]"]
        assert T[1, 0, 0, 0, 1].name == 'T["1,0,0,0,1"]'  # 5 ints: a string key in the core
        B = TaskSpace("B", shape=(3,))
        assert len(B[0:10]) == 3 and len(B[5]) == 0
        assert repr(T[3]) == "Task(T[3])" and T[3].state == "created"
        for key in [0, (1, 2), "setup", (0, "a"), (1, 0, 0, 0, 1)]:

            @spawn(T[key])
            def t():
                return key

    assert T[0, "a"].result == (0, "a") and T[1, 0, 0, 0, 1].result == (1, 0, 0, 0, 1)
    assert T["setup"].result == "setup"


def test_spawning_one_id_twice_is_an_error():
    with Parla(1):
        T = TaskSpace("T")

        @spawn(T[0])
        def first():
            pass

        with pytest.raises(RuntimeError, match=r"T\[0\].*twice"):

            @spawn(T[0])
            def second():
                pass


def test_current_task_devices_and_context_inside_bodies():
    from parla.devices import cpu, gpu
    from parla.tasks import get_current_context, get_current_devices, get_current_task

    seen = {}
    with Parla(2, sim_gpus=2):
        T = TaskSpace("T")

        @spawn(T[0], placement=gpu(1))
        def on_gpu1():
            seen["t0"] = (
                get_current_task().name,
                get_current_devices(),
                get_current_context().devices,
            )

        @spawn(T[1], placement=cpu)
        def on_cpu():
            seen["t1"] = get_current_devices()

        @spawn(T[2], placement=[(gpu(0), gpu(1))])
        def on_both():
            seen["t2"] = list(get_current_context().devices)

        @spawn(T[3], placement=gpu)
        def on_any_gpu():
            seen["t3"] = get_current_devices()[0]

    assert seen["t0"] == ("T[0]", [gpu(1)], [gpu(1)])
    assert seen["t1"] == [cpu(0)]
    assert sorted(seen["t2"], key=repr) == [gpu(0), gpu(1)]
    assert seen["t3"] in (gpu(0), gpu(1))


def test_list_placement_picks_one_of_the_options():
    from parla.devices import cpu, gpu
    from parla.tasks import get_current_devices

    where = []
    lock = threading.Lock()
    with Parla(2, sim_gpus=1):
        for _ in range(20):

            @spawn(placement=[gpu(0), cpu])
            def anywhere():
                with lock:
                    where.append(get_current_devices()[0])

    assert set(where) <= {gpu(0), cpu(0)} and len(where) == 20


def test_bad_placements_are_reported():
    from parla.devices import gpu

    with Parla(1, sim_gpus=1):
        with pytest.raises(RuntimeError, match=r"gpu\(3\)"):

            @spawn(placement=gpu(3))
            def nowhere():
                pass

        with pytest.raises(TypeError, match="not a device"):

            @spawn(placement="gpu")
            def wrong():
                pass

        with pytest.raises(ValueError, match="unknown resource hint"):
            gpu(0)[{"cores": 2}]


def test_vcus_hints_limit_how_many_tasks_share_a_device():
    from parla.devices import cpu

    active, peak = [0], [0]
    lock = threading.Lock()

    def body():
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.01)
        with lock:
            active[0] -= 1

    with Parla(4):
        for _ in range(6):
            spawn(placement=cpu[{"vcus": 0.5}])(body)  # two fit on the cpu at a time
    assert peak[0] == 2
    peak[0] = 0
    with Parla(4):
        for _ in range(4):
            spawn(placement=cpu, vcus=1)(body)  # one at a time
    assert peak[0] == 1


def test_sequential_and_nested_parla_blocks():
    with Parla(1) as outer:

        @spawn()
        def a():
            return "outer"

        with Parla(1) as inner:
            assert inner is not outer

            @spawn()
            def b():
                return "inner"

        assert b.result == "inner"
    with Parla(1):

        @spawn()
        def c():
            return "again"

    assert (a.result, c.result) == ("outer", "again")
    with pytest.raises(ValueError, match="only once"), outer:
        pass


def test_tasks_spawn_tasks_and_wait_for_them():
    with Parla(2):

        @spawn()
        def parent():
            children = TaskSpace("C")
            for i in range(4):

                @spawn(children[i])
                def child():
                    return i * i

            children.wait()  # a waiting body helps run tasks: no deadlock with 2 workers
            return sum(t.result for t in children.tasks)

    assert parent.result == 0 + 1 + 4 + 9


def test_variants_follow_the_device():
    from parla import specialize
    from parla.devices import cpu, gpu

    @specialize
    def kernel():
        return "default"

    @kernel.variant(gpu)
    def kernel_gpu():
        return "gpu"

    @kernel.variant(gpu(1))
    def kernel_gpu1():
        return "gpu(1)"

    with Parla(1, sim_gpus=2):
        T = TaskSpace("T")
        for i, where in enumerate([cpu, gpu(0), gpu(1)]):

            @spawn(T[i], placement=where)
            def t():
                return kernel()

    assert [T[i].result for i in range(3)] == ["default", "gpu", "gpu(1)"]
