"""No GIL on the hot path: NumPy-heavy bodies of different tasks overlap in time."""

# Task bodies use loop variables on purpose: spawn copies them when the task is spawned
# (Parla's capture semantics), and Parla programs reuse body names.
# ruff: noqa: B023

import time

import numpy as np

from parla import Parla, TaskSpace, sleep_nogil, spawn
from parla.devices import cpu


def _overlap(intervals):
    (a0, a1), (b0, b1) = intervals
    return min(a1, b1) - max(a0, b0)


def test_two_numpy_tasks_run_at_the_same_time():
    x = np.random.default_rng(0).random((300, 300))
    stamps = {}
    with Parla(2):
        T = TaskSpace("T")
        for i in range(2):

            @spawn(T[i], placement=cpu)
            def heavy():
                start = time.perf_counter()
                while time.perf_counter() - start < 0.15:
                    np.dot(x, x)  # releases the GIL inside
                stamps[i] = (start, time.perf_counter())

    assert _overlap([stamps[0], stamps[1]]) > 0.05


def test_sleep_nogil_bodies_overlap_and_the_spawner_is_not_blocked():
    stamps = {}
    with Parla(2):
        T = TaskSpace("T")
        spawn_started = time.perf_counter()
        for i in range(2):

            @spawn(T[i], placement=cpu)
            def busy():
                start = time.perf_counter()
                sleep_nogil(100_000)  # 0.1 s without the GIL
                stamps[i] = (start, time.perf_counter())

        spawn_time = time.perf_counter() - spawn_started
    assert spawn_time < 0.05  # spawning returned while the bodies ran
    assert _overlap([stamps[0], stamps[1]]) > 0.03
