"""Library contexts: a cpu task with vcus runs on its share of the cores, and BLAS and
OpenMP inside it use that many threads (restored afterwards)."""

import ctypes
import ctypes.util
import os
import threading

import pytest

from parla import Parla, TaskSpace, spawn
from parla.devices import cpu, gpu
from parla.tasks import get_current_context

np = pytest.importorskip("numpy")
threadpoolctl = pytest.importorskip("threadpoolctl")

CORES = sorted(os.sched_getaffinity(0))


def share(vcus):
    return max(1, round(vcus * len(CORES)))


def blas_threads():
    info = [i for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
    assert info, "NumPy's BLAS is not visible to threadpoolctl"
    return [i["num_threads"] for i in info]


def seen_in_task(**options):
    @spawn(**options)
    def t():
        return get_current_context().cores, sorted(os.sched_getaffinity(0)), blas_threads()

    return t


@pytest.mark.parametrize("vcus", [0.5, 1.0])
def test_blas_threads_and_affinity_follow_the_reservation(vcus):
    default = blas_threads()
    with Parla(2):
        t = seen_in_task(placement=cpu, vcus=vcus)
    cores, mask, threads = t.result
    assert cores == share(vcus)
    assert len(mask) == share(vcus) and set(mask) <= set(CORES)
    assert threads == [share(vcus)] * len(default)
    assert blas_threads() == default  # restored


def test_tasks_without_vcus_keep_the_defaults():
    default = blas_threads()
    with Parla(2, sim_gpus=1):
        plain = seen_in_task(placement=cpu)
        on_gpu = seen_in_task(placement=gpu(0), vcus=0.5)
    assert plain.result == (0, CORES, default)
    assert on_gpu.result[0] == 0 and on_gpu.result[2] == default


@pytest.mark.skipif(len(CORES) < 2, reason="needs two cores")
def test_concurrent_context_tasks_split_the_cores():
    default = blas_threads()
    both = threading.Barrier(2, timeout=30)
    with Parla(2):
        T = TaskSpace("T")
        for i in range(2):

            @spawn(T[i], vcus=0.5)
            def t():
                both.wait()  # both running at once
                seen = sorted(os.sched_getaffinity(0)), blas_threads()
                both.wait()  # neither restores before the other has looked
                return seen

    (mask0, threads0), (mask1, threads1) = T[0].result, T[1].result
    assert not set(mask0) & set(mask1)
    assert threads0 == threads1 == [share(0.5)] * len(default)
    assert blas_threads() == default


def test_openmp_threads_follow_the_reservation(monkeypatch):
    path = ctypes.util.find_library("gomp")
    if path is None:
        pytest.skip("no libgomp")
    gomp = ctypes.CDLL(path)
    monkeypatch.setattr("parla._contexts._controller", None)  # rescan the loaded libraries
    outside = gomp.omp_get_max_threads()
    with Parla(2):

        @spawn(vcus=0.5)
        def t():
            return gomp.omp_get_max_threads()

    assert t.result == share(0.5)
    assert gomp.omp_get_max_threads() == outside


def test_missing_threadpoolctl_is_reported_once(monkeypatch):
    import sys

    monkeypatch.setattr("parla._contexts._controller", None)
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)  # import fails
    missing = "threadpoolctl is not installed"
    with pytest.warns(RuntimeWarning, match=missing) as record, Parla(1):
        for _ in range(3):
            seen_in_task(vcus=1.0)
    assert len([w for w in record if "threadpoolctl" in str(w.message)]) == 1
    monkeypatch.setattr("parla._contexts._controller", None)


OPENMP_OPENBLAS = "/usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so.0"


@pytest.mark.skipif(
    not os.path.exists(OPENMP_OPENBLAS),
    reason="needs libopenblas0-openmp (scripts/build installs it)",
)
def test_a_blas_loaded_with_ctypes_later_is_limited_too():
    def first_seen_threads():
        with Parla(2):
            t = seen_in_task(vcus=0.5)  # the contexts scan the loaded libraries here
        return t.result[2]

    assert first_seen_threads() == [share(0.5)] * len(blas_threads())
    # Loaded without importing a module: only the loader knows it arrived.
    ctypes.CDLL(OPENMP_OPENBLAS)

    def openmp_openblas_threads():
        # What its dgemm will use: with the OpenMP threading layer that is the calling thread's
        # omp_get_max_threads() (openblas_get_num_threads() is stale before OpenBLAS 0.3.34).
        (n,) = [
            i["num_threads"]
            for i in threadpoolctl.threadpool_info()
            if "openblas-openmp" in i["filepath"]
        ]
        return n

    outside = openmp_openblas_threads()
    if outside == share(0.5):
        pytest.skip(
            f"OpenMP defaults to {outside} thread(s) here: a limit to {share(0.5)} would not show"
        )
    with Parla(2):

        @spawn(vcus=0.5)
        def t():
            return openmp_openblas_threads(), blas_threads()

    inside, all_blas = t.result
    assert inside == share(0.5)
    assert all_blas == [share(0.5)] * len(all_blas)
    assert openmp_openblas_threads() == outside  # restored
