"""Ports of the examples in Parla's tutorial topics, written against Parla's API exactly as
the tutorials use it (CuPy kernels replaced by NumPy on simulated GPUs), each checked."""

# Task bodies use loop variables on purpose: spawn copies them when the task is spawned
# (Parla's capture semantics), and Parla programs reuse body names.
# ruff: noqa: B023, F811

import time

import numpy as np
import pytest

from parla import Parla, TaskSpace, parray, sleep_nogil, spawn
from parla._core import DeadlockError
from parla.cpu import cpu
from parla.cuda import gpu
from parla.tasks import get_current_context, get_current_devices, get_current_task, specialize


@pytest.fixture
def sim_gpus(monkeypatch):
    monkeypatch.setenv("PARLA_SIM_GPUS", "2")
    monkeypatch.setenv("PARLA_NUM_WORKERS", "2")


# ---- 0: hello world ------------------------------------------------------------------------


def test_hello_world(capsys):
    def main():
        @spawn()
        def hello_world():
            print("Hello, World!", flush=True)

    with Parla():
        main()
    assert capsys.readouterr().out == "Hello, World!\n"


# ---- 1: control flow -----------------------------------------------------------------------


def test_taskspaces(capsys):
    def taskspace_example():
        task_space = TaskSpace("Your First TaskSpace")

        @spawn(taskid=task_space[0])
        async def task_0():
            print("I am task 0", flush=True)

        @spawn(task_space[1])
        async def task_1():
            print("I am task 1", flush=True)

        @spawn(task_space[1, 0, 0, 0, 1])
        async def task_2():
            print("I am task (1, 0, 0, 0, 1)", flush=True)

        @spawn(taskid=task_space[(0, "a")])
        async def task_3():
            print('I am task (0, "a")', flush=True)

        @spawn(taskid=task_space[0, "b"])
        async def task_4():
            print('I am task (0, "b")', flush=True)

        print("TaskSpace: ", task_space, flush=True)

    with Parla():
        taskspace_example()
    out = capsys.readouterr().out.splitlines()
    assert "TaskSpace:  TaskSpace(Your First TaskSpace, ntasks=5)" in out
    assert sorted(line for line in out if line.startswith("I am")) == sorted(
        [
            "I am task 0",
            "I am task 1",
            "I am task (1, 0, 0, 0, 1)",
            'I am task (0, "a")',
            'I am task (0, "b")',
        ]
    )


def test_dependencies(capsys):
    def dependency_example_1():
        space_A = TaskSpace("TS_A")

        @spawn(space_A[1], dependencies=[space_A[0]])  # spawned first, waits for A[0]
        async def task_1_in_A():
            print("I am task 1 in TS_A", flush=True)

        @spawn(space_A[0])
        async def task_0_in_A():
            time.sleep(0.01)
            print("I am task 0 in TS_A", flush=True)

    def dependency_example_2():
        space_A, space_B = TaskSpace("TS_A"), TaskSpace("TS_B")
        for i in range(4):

            @spawn(space_A[i])
            async def task_in_A():
                print(f"I am task {i} in TS_A", flush=True)

        @spawn(space_B[0], dependencies=[space_A[0:2]])
        async def task_0_in_B():
            print("I am task 0 in TS_B", flush=True)

    with Parla():
        dependency_example_1()
    assert capsys.readouterr().out == "I am task 0 in TS_A\nI am task 1 in TS_A\n"
    with Parla():
        dependency_example_2()
    out = capsys.readouterr().out.splitlines()
    b = out.index("I am task 0 in TS_B")
    assert {"I am task 0 in TS_A", "I am task 1 in TS_A"} <= set(out[:b]) and len(out) == 5


def test_barriers(capsys):
    def barrier_example():
        @spawn()
        async def main_task():
            space_A, space_B = TaskSpace("TS_A"), TaskSpace("TS_B")
            for i in range(4):

                @spawn(space_A[i])
                async def task_in_A():
                    print(f"I am task {i} in TS_A", flush=True)

            await space_A
            print("Everything in TS_A is guaranteed to be completed.", flush=True)
            for i in range(4):

                @spawn(space_B[i])
                async def task_in_B():
                    time.sleep(0.001 * i)
                    print(f"I am task {i} in TS_B", flush=True)

            await space_B[0]
            print("Task 0 in TS_B is guaranteed to be completed.", flush=True)
            await task_in_B
            print("Task 3 in TS_B guaranteed to be completed.", flush=True)

    with Parla():
        barrier_example()
    out = capsys.readouterr().out.splitlines()
    assert out.index("Everything in TS_A is guaranteed to be completed.") == 4
    assert out.index("I am task 0 in TS_B") < out.index(
        "Task 0 in TS_B is guaranteed to be completed."
    )
    assert out.index("I am task 3 in TS_B") < out.index(
        "Task 3 in TS_B guaranteed to be completed."
    )


# ---- 2: variable capture and return --------------------------------------------------------


def test_capture_and_return(capsys):
    def local_capture():
        @spawn()
        async def main_task():
            T = TaskSpace("TaskSpace A")
            for i in range(3):
                dep = [T[i - 1]] if i > 0 else []

                @spawn(T[i], dependencies=dep)
                async def task():
                    nonlocal i
                    i = i + 4
                    print("Check Task State [", i, "]", flush=True)

            await T
            shared_array = np.zeros(3)
            T = TaskSpace("TaskSpace B")
            for i in range(3):

                @spawn(T[i])
                async def task():
                    shared_array[i] = i

            await T
            print("Shared Array:", shared_array, flush=True)

    def local_return():
        @spawn()
        async def main_task():
            T = TaskSpace("TaskSpace D")
            for i in range(3):

                @spawn(T[i])
                async def task():
                    return np.zeros(3) + i

            array1, array2, array3 = await T[0], await T[1], await T[2]
            print("Arrays:", array1, array2, array3, flush=True)

    with Parla():
        local_capture()
    with Parla():
        local_return()
    assert capsys.readouterr().out.splitlines() == [
        "Check Task State [ 4 ]",
        "Check Task State [ 5 ]",
        "Check Task State [ 6 ]",
        "Shared Array: [0. 1. 2.]",
        "Arrays: [0. 0. 0.] [1. 1. 1.] [2. 2. 2.]",
    ]


# ---- 3: devices and architectures ----------------------------------------------------------


def test_cpu_placement_and_placement_through_data(capsys):
    def elemwise_add(x, y):
        print("Output>>", *[x[i] + y[i] for i in range(len(x))])

    def main():
        @spawn(placement=cpu)
        async def start_tasks():
            x, y = np.array([1, 2, 3, 4]), np.array([5, 6, 7, 8])

            @spawn(placement=cpu)
            async def single_cpu_task():
                elemwise_add(x, y)

            await single_cpu_task

            @spawn(placement=[x, y])
            async def through_data():
                print("on", get_current_context().devices)
                elemwise_add(x, y)

            await through_data

    with Parla():
        main()
    assert capsys.readouterr().out.splitlines() == [
        "Output>> 6 8 10 12",
        "on [cpu]",
        "Output>> 6 8 10 12",
    ]


def test_heterogeneous_devices_and_variants(sim_gpus):
    @specialize
    def elemwise_add():
        return "cpu kernel"

    @elemwise_add.variant(gpu)
    def elemwise_add_gpu():
        return "gpu kernel"

    def main():
        @spawn(placement=cpu)
        async def start_tasks():
            results = []
            for _ in range(6):

                @spawn(placement=[cpu, gpu])
                async def single_task_on_both():
                    return (get_current_context().devices[0], elemwise_add())

                results.append(await single_task_on_both)
            return results

        return start_tasks

    with Parla():
        start = main()
    for device, kernel in start.result:
        assert kernel == ("gpu kernel" if device.architecture is gpu else "cpu kernel")


def test_gpu_partitions_with_clone_here_and_copy(sim_gpus):
    from parla.array import clone_here, copy

    def elemwise_add(x, y):
        return x + y

    x_c, y_c, z_c = np.array([1, 2, 3, 4]), np.array([5, 6, 7, 8]), np.array([0, 0, 0, 0])

    def main():
        @spawn(placement=cpu)
        async def start_tasks():
            for gpu_id in range(2):

                @spawn(placement=gpu(gpu_id))
                async def workpart_across_gpus(gpu_id=gpu_id):
                    part = slice(2 * gpu_id, 2 * gpu_id + 2)
                    z_chunk = elemwise_add(clone_here(x_c[part]), clone_here(y_c[part]))
                    copy(z_c[part], z_chunk)

                await workpart_across_gpus

    with Parla():
        main()
    np.testing.assert_array_equal(z_c, [6, 8, 10, 12])


# ---- tutorial/ examples 1-11: placement, vcus, chains, barriers, variants ------------------


def _workload(log, microseconds=2000):
    active_task = get_current_task()
    start_t = time.perf_counter()
    sleep_nogil(microseconds)
    log.append((active_task.name, start_t, time.perf_counter()))


def test_spawn_on_gpu_from_a_main_task(sim_gpus, capsys):
    def main():
        @spawn(placement=cpu, vcus=0)
        async def main_task():
            T = TaskSpace("T")

            @spawn(T[1], placement=[cpu], dependencies=[T[0]])
            def mytask2():
                print(f"Hi I'm {T[1]}. I'm currently {T[1].state}.", flush=True)

            @spawn(T[0], placement=[gpu(0)])
            def mytask():
                print(f"Hi I'm {T[0]} on {get_current_context()}.", flush=True)

    with Parla():
        main()
    assert capsys.readouterr().out.splitlines() == [
        "Hi I'm Task(T[0]) on TaskEnvironment([gpu(0)]).",
        "Hi I'm Task(T[1]). I'm currently running.",
    ]


def test_vcus_let_two_tasks_share_the_cpu(sim_gpus):
    log = []

    def main(load):
        @spawn(placement=cpu, vcus=0)
        async def main_task():
            T = TaskSpace("T")
            for i in range(2):

                @spawn(T[i], placement=[cpu], vcus=load)
                def mytask():
                    _workload(log, 30_000)  # long enough for the second worker to wake

    with Parla():
        main(0.5)
    (_, a0, a1), (_, b0, b1) = log
    assert min(a1, b1) > max(a0, b0)  # both fit: they overlap
    log.clear()
    with Parla():
        main(0.75)
    (_, a0, a1), (_, b0, b1) = sorted(log, key=lambda e: e[1])
    assert b0 >= a1  # they do not fit together: one after the other


def test_serial_chain_with_t_minus_one(sim_gpus):
    log = []

    def main():
        @spawn(placement=cpu, vcus=0)
        async def main_task():
            T = TaskSpace("T")
            for k in range(10):

                @spawn(T[k], placement=[cpu], vcus=0.5, dependencies=[T[k - 1]])
                def mytask():
                    _workload(log)

    with Parla():
        main()
    assert [name for name, _, _ in log] == [f"T[{k}]" for k in range(10)]
    assert all(log[k + 1][1] >= log[k][2] for k in range(9))


def test_a_dependency_on_a_task_never_spawned_is_reported(sim_gpus, monkeypatch):
    monkeypatch.setenv("PARLA_DEADLOCK_TIMEOUT", "0.3")
    log = []

    def main():
        @spawn(placement=cpu, vcus=0)
        async def main_task():
            T = TaskSpace("T")
            for i in range(10):
                if i == 5:
                    continue

                @spawn(T[i], placement=[cpu], vcus=0.5)
                def mytask():
                    _workload(log)

            @spawn(T[11], placement=[cpu], vcus=0.5, dependencies=[T[0:10]])
            def final():
                _workload(log)

    # Parla hangs here forever; this runtime reports what is blocked.
    with pytest.raises(DeadlockError, match=r"T\[5\]"), Parla():
        main()
    assert "T[11]" not in [name for name, _, _ in log]


def test_barrier_with_await_t(sim_gpus):
    log = []

    def main():
        @spawn(placement=cpu, vcus=0)
        async def main_task():
            T = TaskSpace("T")
            for i in range(10):

                @spawn(T[i], placement=[cpu], vcus=0.5)
                def mytask():
                    _workload(log)

            await T
            log.append(("barrier", time.perf_counter(), time.perf_counter()))
            for i in range(10):

                @spawn(T[i + 10], placement=[cpu], vcus=0.5)
                def mytask():
                    _workload(log)

    with Parla():
        main()
    names = [name for name, _, _ in log]
    assert names.index("barrier") == 10 and len(names) == 21


def test_list_placement_and_multi_device_tuple(sim_gpus):
    seen = []

    def main():
        @spawn(placement=cpu, vcus=0)
        async def main_task():
            T = TaskSpace("T")
            for i in range(6):

                @spawn(T[i], placement=[gpu, cpu], vcus=0.5)
                def mytask():
                    seen.append(("one", tuple(get_current_context().devices)))

            @spawn(T[6], placement=[(cpu, gpu)])
            def both():
                seen.append(("tuple", tuple(device.devices[0] for device in get_current_context())))

    with Parla():
        main()
    ones = [devices for kind, devices in seen if kind == "one"]
    assert len(ones) == 6 and all(len(d) == 1 and d[0] in (cpu(0), gpu(0), gpu(1)) for d in ones)
    ((_, devices),) = [s for s in seen if s[0] == "tuple"]
    assert devices[0] == cpu(0) and devices[1].architecture is gpu


def test_multi_device_task_on_both_simulated_gpus(sim_gpus):
    """A tuple placement spawns one task holding both GPUs (PARLA_SIM_GPUS=2); inside it
    get_current_devices() lists both, and the context iterates them one device at a time."""
    seen = {}

    def main():
        @spawn(placement=cpu, vcus=0)
        async def main_task():
            T = TaskSpace("T")

            @spawn(T[0], placement=(gpu(0), gpu(1)))
            def on_both():
                seen["devices"] = get_current_devices()
                seen["each"] = []
                for device in get_current_context():
                    with device:
                        seen["each"].append(list(device.devices))
                return len(get_current_devices())

            @spawn(T[1], placement=[(gpu(1), gpu(0))])
            def on_both_as_a_list_option():
                seen["option"] = get_current_devices()

            seen["count"] = await T[0]
            await T[1]

    with Parla():
        main()
    assert sorted(seen["devices"], key=repr) == [gpu(0), gpu(1)]
    assert sorted(seen["option"], key=repr) == [gpu(0), gpu(1)]
    assert sorted(seen["each"], key=repr) == [[gpu(0)], [gpu(1)]]
    assert seen["count"] == 2


# ---- 5 and 6: task constraints and automatic data movement (NumPy on simulated GPUs) -------


def test_task_constraints_with_memory(sim_gpus):
    data = [np.random.default_rng(i).random(1 << 12) for i in range(2)]
    expected = [np.sqrt(d) for d in data]

    def gpu_sqrt(i):
        from parla.array import clone_here

        data[i] = np.sqrt(clone_here(data[i]))

    def main():
        @spawn()
        async def task_launcher():
            for i in range(2):

                @spawn(placement=gpu(0), memory=1 << 20)
                async def t2():
                    gpu_sqrt(i)

                await t2

    with Parla():
        main()
    for got, want in zip(data, expected):
        np.testing.assert_allclose(got, want)


def test_automatic_data_movement(sim_gpus):
    A = parray.asarray([[1, 2], [3, 4]])
    B = parray.asarray(np.random.default_rng(0).random((2, 2)))
    b0 = B.array.copy()

    def main():
        @spawn(placement=cpu)
        async def task_launcher():
            ts = TaskSpace("tasks")

            @spawn(ts[0], placement=gpu(0), input=[A])
            async def read_only_task():
                return A.array.sum()

            @spawn(ts[1], placement=gpu(1), output=[B])
            async def write_only_task():
                B.update(np.sqrt(b0))

            @spawn(ts[2], [ts[0:2]], placement=cpu, input=[A], inout=[B])
            async def write_and_write_task():
                B[0][1] = np.sum((B + A).array)

            @spawn(ts[3], [ts[2]], placement=gpu(1), inout=[A[0]])
            async def write_row():
                A[0] = np.sqrt(A[0].array)

            await ts

    with Parla():
        main()
    expected_b = np.sqrt(b0)
    expected_b[0, 1] = np.sum(expected_b + np.array([[1, 2], [3, 4]]))
    np.testing.assert_allclose(B.array, expected_b)
    np.testing.assert_array_equal(A.array, [[1, 1], [3, 4]])  # int sqrt of row 0, as in NumPy
