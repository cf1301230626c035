"""PArray: copies per device moved by the runtime, slices, and dependencies inferred from
input/output/inout (NumPy on the cpu and on simulated GPUs)."""

# Task bodies use loop variables on purpose: spawn copies them when the task is spawned
# (Parla's capture semantics), and Parla programs reuse body names.
# ruff: noqa: B023, SIM117

import time

import numpy as np
import pytest

from parla import Parla, TaskSpace, parray, spawn
from parla.array import clone_here, copy
from parla.devices import cpu, gpu


def test_asarray_copies_the_data_and_array_reads_it_back():
    source = np.arange(6.0).reshape(2, 3)
    A = parray.asarray(source)
    source[0, 0] = 99  # the PArray holds its own copy
    assert A.shape == (2, 3) and A.dtype == np.float64 and len(A) == 2
    np.testing.assert_array_equal(A.array, np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(np.asarray(A[1]), [3.0, 4.0, 5.0])


@pytest.mark.parametrize("where", [cpu, gpu(0), gpu(1)])
def test_a_task_reads_and_writes_its_device_copy(where):
    A = parray.asarray(np.arange(4.0))
    with Parla(1, sim_gpus=2):

        @spawn(placement=where, inout=[A])
        def double():
            assert isinstance(A.array, np.ndarray)
            A.array[:] *= 2
            return A.array.sum()

    assert double.result == 12.0
    np.testing.assert_array_equal(A.array, [0.0, 2.0, 4.0, 6.0])


def test_data_moves_between_devices_in_spawn_order_without_explicit_dependencies():
    A = parray.asarray(np.zeros(1000))
    seen = {}
    with Parla(2, sim_gpus=2):
        # No dependencies given: each reader follows the writer before it (inferred).
        @spawn(placement=gpu(0), output=[A])
        def produce():
            time.sleep(0.02)
            A.update(np.full(1000, 7.0))

        @spawn(placement=gpu(1), inout=[A])
        def add_one():
            seen["gpu(1) read"] = float(A.array[0])
            A.array[:] += 1

        @spawn(placement=cpu, input=[A])
        def check():
            seen["cpu read"] = float(A.array.mean())

    assert seen == {"gpu(1) read": 7.0, "cpu read": 8.0}
    np.testing.assert_array_equal(A.array, np.full(1000, 8.0))


def test_disjoint_row_slices_are_independent():
    A = parray.asarray(np.zeros((4, 1000)))
    stamps = {}
    with Parla(2, sim_gpus=2):
        for i in range(2):

            @spawn(placement=gpu(i), inout=[A[2 * i : 2 * i + 2]])
            def fill():
                start = time.perf_counter()
                A[2 * i : 2 * i + 2].array[:] = i + 1
                time.sleep(0.05)  # both must be running at once to finish in time
                stamps[i] = (start, time.perf_counter())

        @spawn(placement=cpu, input=[A])
        def total():
            return A.array.sum(axis=1)

    (a0, a1), (b0, b1) = stamps[0], stamps[1]
    assert min(a1, b1) - max(a0, b0) > 0.02
    np.testing.assert_array_equal(total.result, [1000, 1000, 2000, 2000])


def test_column_slices_and_nested_slices():
    A = parray.asarray(np.arange(12.0).reshape(3, 4))
    with Parla(1, sim_gpus=1):

        @spawn(placement=gpu(0), inout=[A[:, 1]])
        def column():
            A[:, 1].array[:] = -1

        @spawn(placement=cpu, inout=[A[2]])
        def element():
            A[2][3] = 100  # a PArray element assignment writes the current device's copy

    expected = np.arange(12.0).reshape(3, 4)
    expected[:, 1] = -1
    expected[2, 3] = 100
    np.testing.assert_array_equal(A.array, expected)


def test_using_a_parray_without_declaring_it_is_an_error():
    A = parray.asarray(np.ones(3))
    B = parray.asarray(np.ones(3))
    with pytest.raises(RuntimeError, match="did not declare"):  # never used by a task yet
        with Parla(1):

            @spawn(placement=cpu, input=[A])
            def uses_b():
                return B.array.sum()


def test_placement_by_data_follows_the_newest_copy():
    from parla.tasks import get_current_devices

    A = parray.asarray(np.ones(3))
    with Parla(1, sim_gpus=2):

        @spawn(placement=gpu(1), inout=[A])
        def write():
            A.array[:] = 3

        write.wait()

        @spawn(placement=[A], input=[A])
        def follow():
            return get_current_devices()[0]

    assert follow.result == gpu(1)


def test_clone_here_and_copy():
    x = np.arange(5.0)
    with Parla(1, sim_gpus=1):

        @spawn(placement=gpu(0))
        def work():
            y = clone_here(x[1:3])
            y *= 10
            copy(x[1:3], y)
            return type(y)

    assert work.result is np.ndarray
    np.testing.assert_array_equal(x, [0, 10, 20, 3, 4])


def test_arithmetic_and_a_parray_used_by_two_runtimes():
    A = parray.asarray([[1, 2], [3, 4]])
    B = parray.asarray(np.ones((2, 2), dtype=np.int64))
    with Parla(1, sim_gpus=1):
        T = TaskSpace("T")

        @spawn(T[0], placement=cpu, input=[A], inout=[B])
        def combine():
            B[0][1] = np.sum((B + A).array)

    assert B.array[0, 1] == 14
    with Parla(1, sim_gpus=1):  # a second runtime starts from the final contents

        @spawn(placement=gpu(0), inout=[B])
        def again():
            B.array[:] += 1

    np.testing.assert_array_equal(B.array, [[2, 15], [2, 2]])


def test_an_undeclared_parray_of_the_runtime_is_an_error_too():
    A = parray.asarray(np.ones(3))
    with pytest.raises(RuntimeError, match="did not declare"), Parla(1):

        @spawn(placement=cpu, inout=[A])
        def declares():
            A.array[:] = 2

        @spawn(placement=cpu, dependencies=[declares])
        def does_not():
            return A.array.sum()
