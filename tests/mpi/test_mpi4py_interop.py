"""parla.mpi from Python: communication tasks on PArrays and NumPy buffers, collectives, and a
program that uses mpi4py for its own messages while the runtime exchanges others, at once."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from mpi4py import MPI

from parla import Parla, TaskSpace, mpi, parray, spawn

WORLD = MPI.COMM_WORLD
RANK = WORLD.Get_rank()
SIZE = WORLD.Get_size()
NEXT = (RANK + 1) % SIZE
PREV = (RANK - 1) % SIZE


def expected(sender: int, receiver: int, round_: int, n: int) -> np.ndarray:
    return np.arange(n, dtype=np.float64) * 0.5 + sender * 1000 + receiver * 10 + round_


@pytest.mark.parametrize("comm_kind", ["world", "dup", "split"])
def test_ring_of_parrays_orders_compute_around_messages(comm_kind: str) -> None:
    app = {"world": WORLD, "dup": WORLD.Dup(), "split": WORLD.Split(0, SIZE - RANK)}[comm_kind]
    me, n_ranks = app.Get_rank(), app.Get_size()
    nxt, prv = (me + 1) % n_ranks, (me - 1) % n_ranks
    rng = np.random.default_rng(7)
    sizes = [int(s) for s in rng.integers(1, 50000, size=8)]
    ok = []
    with Parla(n_workers=2), mpi.Comm(app) as comm:
        assert (comm.rank, comm.size) == (me, n_ranks)
        out = parray.asarray(np.zeros(max(sizes)))
        inp = parray.asarray(np.zeros(max(sizes)))
        for r, n in enumerate(sizes):

            @spawn(output=[out[:n]])
            def produce(r=r, n=n):
                out[:n] = expected(me, nxt, r, n)

            comm.send(out[:n], dest=nxt, tag=2)
            comm.recv(inp[:n], source=prv, tag=2)

            @spawn(input=[inp[:n]])
            def check(r=r, n=n):
                ok.append(bool(np.array_equal(np.asarray(inp[:n].array), expected(prv, me, r, n))))

    assert ok == [True] * len(sizes)
    if comm_kind != "world":
        app.Free()


def test_numpy_buffers_collectives_and_explicit_dependencies() -> None:
    with Parla(n_workers=2), mpi.Comm() as comm:
        T = TaskSpace("T")
        a = np.full(1000, RANK, dtype=np.int64)
        b = np.empty(1000, dtype=np.int64)
        comm.send(a, dest=NEXT, tag=1, taskid=T[0])
        comm.recv(b, source=PREV, tag=1, taskid=T[1])
        total = np.array([RANK + 1.0, -RANK], dtype=np.float64)
        comm.allreduce(total, "sum", taskid=T[2])
        biggest = np.array([RANK], dtype=np.int32)
        comm.allreduce(biggest, "max", taskid=T[3])
        root_data = np.arange(16, dtype=np.uint8) if RANK == 0 else np.zeros(16, np.uint8)
        comm.bcast(root_data, root=0, taskid=T[4])
        comm.barrier(taskid=T[5], dependencies=[T[0:5]])
        seen = []

        @spawn(T[6], dependencies=[T[5]])
        def after():
            seen.append(int(b[0]))

    assert seen == [PREV]
    assert np.all(b == PREV)
    assert total[0] == SIZE * (SIZE + 1) / 2 and total[1] == -SIZE * (SIZE - 1) / 2
    assert biggest[0] == SIZE - 1
    assert np.array_equal(root_data, np.arange(16, dtype=np.uint8))


def test_mpi4py_and_the_runtime_exchange_concurrently() -> None:
    """The application's own mpi4py traffic (same peers, same tag, from the main thread and a
    helper thread) runs while runtime tasks exchange on the duplicate: no cross-matching."""
    assert MPI.Query_thread() == MPI.THREAD_MULTIPLE
    rounds = 20
    app_got: list[int] = []

    def app_traffic() -> None:
        for r in range(rounds):
            got = WORLD.sendrecv(RANK * 100 + r, dest=NEXT, sendtag=0, source=PREV, recvtag=0)
            app_got.append(got)

    with Parla(n_workers=2), mpi.Comm() as comm:
        bufs_out = [np.full(257, RANK * 1000 + r, dtype=np.int64) for r in range(rounds)]
        bufs_in = [np.zeros(257, dtype=np.int64) for _ in range(rounds)]
        for r in range(rounds):
            comm.send(bufs_out[r], dest=NEXT, tag=0)
            comm.recv(bufs_in[r], source=PREV, tag=0)
        helper = threading.Thread(target=app_traffic)
        helper.start()
        # The main thread talks too, on a duplicate the test owns.
        mine = WORLD.Dup()
        for r in range(rounds):
            got = mine.sendrecv(-r, dest=NEXT, sendtag=0, source=PREV, recvtag=0)
            assert got == -r
        mine.Free()
        helper.join()

    assert app_got == [PREV * 100 + r for r in range(rounds)]
    for r in range(rounds):
        assert np.all(bufs_in[r] == PREV * 1000 + r), r


def test_progress_thread_sleeps_when_idle() -> None:
    import time

    with Parla(n_workers=1), mpi.Comm() as comm:
        comm.barrier()
        time.sleep(0.1)
        before = comm.progress_stats()
        time.sleep(0.4)
        after = comm.progress_stats()
    assert after["polls"] == before["polls"]
    assert after["wakeups"] - before["wakeups"] <= 8


def test_progress_posts_from_the_calling_thread() -> None:
    # The main thread spawns a send and a receive and calls comm.progress() instead of waiting
    # (as while it computes): its passes post and complete them. Several rounds: the engine
    # thread may win a pass now and then, never all of them.
    import time

    moved = 0
    with Parla(n_workers=1), mpi.Comm() as comm:
        for r in range(5):
            comm.barrier().wait()
            out = np.full(16, RANK * 100.0 + r)
            got = np.zeros(16)
            s = comm.send(out, dest=NEXT, tag=3)
            g = comm.recv(got, source=PREV, tag=3)
            deadline = time.monotonic() + 20
            while not (s.done and g.done) and time.monotonic() < deadline:
                moved += bool(comm.progress())
            assert s.done and g.done
            assert np.all(got == PREV * 100.0 + r)
        assert comm.progress_stats()["driven"] >= moved > 0
    with pytest.raises(RuntimeError, match="was closed"):
        comm.progress()


def test_errors_name_what_to_fix() -> None:
    with Parla(n_workers=1), mpi.Comm() as comm:
        with pytest.raises(ValueError, match="does not exist"):
            comm.send(np.zeros(4), dest=SIZE + 3)
        with pytest.raises(ValueError, match="tag"):
            comm.send(np.zeros(4), dest=NEXT, tag=comm.max_tag + 1)
        with pytest.raises(TypeError, match="mpi4py communicator"):
            mpi.Comm("not a communicator")
    assert isinstance(mpi.cuda_aware(), bool)


def test_device_buffer_path_is_reported() -> None:
    # No CUDA device here (simulated GPUs at most): device data is always staged, and the
    # communicator says why.
    with Parla(n_workers=1, sim_gpus=1), mpi.Comm(WORLD) as comm:
        assert comm.cuda_aware is False
        assert comm.cuda_aware_reason, "a reason is always given"
