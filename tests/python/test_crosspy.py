"""parla.crosspy on one rank: partitions across the cpu and simulated GPUs, halo exchanges
between them (and periodic wrap-around onto themselves), map tiles and regions, reductions,
CrossPy constructors, interop, save/load, and the error messages."""

from __future__ import annotations

import os

import numpy as np
import pytest

import parla.crosspy as xp
from parla import Parla, TaskSpace, spawn
from parla.crosspy._options import build_options
from parla.crosspy.testing import expected_ghosted, jacobi_reference, jacobi_update
from parla.devices import cpu, gpu

SHAPES = {1: (23,), 2: (13, 12), 3: (12, 7, 6)}
DEVICES = {
    0: [cpu(0)],
    1: [gpu(0)],
    2: [cpu(0), gpu(0), gpu(1)],
    3: [gpu(0), gpu(1), gpu(2), cpu(0)],
}


def global_array(shape: tuple[int, ...], dtype: type = np.float64) -> np.ndarray:
    return (np.arange(int(np.prod(shape))) * 7 + 3).astype(dtype).reshape(shape)


def check_ghosts(x: xp.DistArray, g: np.ndarray, boundary: object, stencil: str) -> None:
    for part in x.partitions:
        values, mask = expected_ghosted(g, part.box, x.ghosts, boundary, stencil)
        got = np.asarray(part)
        assert got.shape == values.shape
        bad = np.argwhere(mask & (got != values))
        assert bad.size == 0, (
            f"{part}: {len(bad)} ghost cells differ, first at {tuple(bad[0])}: got "
            f"{got[tuple(bad[0])]}, expected {values[tuple(bad[0])]}"
        )


def device_sizes(n: int, parts: int, uneven: bool) -> list[int] | None:
    """Even sizes, then one cell moved from the last device to the first (if the last keeps
    >= 2, the widest ghost tested)."""
    if not uneven or parts == 1:
        return None
    q, r = divmod(n, parts)
    sizes = [q + (i < r) for i in range(parts)]
    if sizes[-1] > 2:
        sizes[0] += 1
        sizes[-1] -= 1
    return sizes


@pytest.mark.parametrize("ndim", [1, 2, 3])
@pytest.mark.parametrize("boundary", ["periodic", "none", ("constant", -1.0)])
@pytest.mark.parametrize("stencil", ["star", "box"])
@pytest.mark.parametrize("width", [1, 2])
@pytest.mark.parametrize("gpus", [0, 1, 2, 3])
def test_ghosts_equal_numpy_reference(
    ndim: int, boundary: object, stencil: str, width: int, gpus: int
) -> None:
    shape = SHAPES[ndim]
    g = global_array(shape)
    devices = DEVICES[gpus]
    axis = 1 if ndim == 2 else 0
    sizes = device_sizes(shape[axis], len(devices), uneven=gpus % 2 == 1)
    with Parla(n_workers=2, sim_gpus=3 if gpus else 0):
        x = xp.from_global(g, ghosts=width, boundary=boundary, stencil=stencil,
                           devices=devices, axis=axis, device_splits=sizes)
        assert [p.device for p in x.partitions] == devices
        if sizes is not None:
            assert [p.extent[axis] for p in x.partitions] == sizes
        halo = x.exchange_halos()
        assert isinstance(halo, TaskSpace)
        halo.wait()
        check_ghosts(x, g, boundary, stencil)
        x.map(lambda t: t.interior * 2 - 5, out=x)
        x.exchange_halos()
        check_ghosts(x, g * 2 - 5, boundary, stencil)
        x.close()


def test_partitions_geometry_and_interop() -> None:
    g = global_array((10, 8))
    with Parla(n_workers=2, sim_gpus=2):
        x = xp.from_global(g, ghosts=(2, 1), devices=[cpu(0), gpu(0), gpu(1)],
                           device_splits=[4, 3, 3])
        assert x.shape == (10, 8) and x.dtype == np.float64 and x.ndim == 2
        assert x.grid == (1, 1) and x.coords == (0, 0) and x.ghosts == (2, 1)
        assert x.partition_bounds[0] == [0, 4, 7, 10]
        assert [p.box for p in x.partitions] == [
            (slice(0, 4), slice(0, 8)),
            (slice(4, 7), slice(0, 8)),
            (slice(7, 10), slice(0, 8)),
        ]
        for p in x.partitions:
            assert np.array_equal(p.interior, g[p.box])
            host = np.asarray(p)
            assert host.shape == (p.extent[0] + 4, p.extent[1] + 2)
            assert np.array_equal(np.asarray(memoryview(p)), host)
            assert p.__array_interface__["shape"] == host.shape
            assert np.array_equal(x.local(p.index), g[p.box])
            assert np.array_equal(x.local(p.index, ghosts=True), host)
        cpu_part = x.partitions[0]
        assert np.array_equal(np.from_dlpack(cpu_part), np.asarray(cpu_part))
        assert memoryview(cpu_part).readonly is False
        assert memoryview(x.partitions[1]).readonly is True
        assert np.array_equal(np.asarray(x), g)
        assert np.array_equal(x.gather(), g)
        assert "DistArray" in repr(x) and "Partition" in repr(x.partitions[0])
        x.close()
        with pytest.raises(RuntimeError, match="closed"):
            x.sum()


def test_crosspy_constructors() -> None:
    b0 = np.arange(12.0).reshape(3, 4)
    b1 = np.arange(12.0, 20.0).reshape(2, 4)
    with Parla(n_workers=2, sim_gpus=2):
        x = xp.array([b0, b1], axis=0)
        assert [p.extent for p in x.partitions] == [(3, 4), (2, 4)]
        assert np.array_equal(np.asarray(x), np.concatenate([b0, b1]))
        a = np.arange(30, dtype=np.int64).reshape(5, 6)
        y = xp.array(a, distribution=[cpu(0), gpu(0), gpu(1)], axis=1)
        assert [p.device for p in y.partitions] == [cpu(0), gpu(0), gpu(1)]
        assert [p.box[1] for p in y.partitions] == [slice(0, 2), slice(2, 4), slice(4, 6)]
        assert np.array_equal(np.asarray(y), a)
        assert y.sum() == a.sum() and isinstance(y.sum(), int)
        z = xp.array([b0.T, b1.T], axis=1, distribution=[gpu(1), cpu(0)])
        assert np.array_equal(np.asarray(z), np.concatenate([b0.T, b1.T], axis=1))
        with pytest.raises(ValueError, match=r"block 1 has shape \(2, 5\).*\(3, 4\)"):
            xp.array([b0, np.zeros((2, 5))], axis=0)
        for arr in (x, y, z):
            arr.close()


def test_map_regions_tiles_and_split_overlap() -> None:
    g = global_array((12, 10))
    seen: list[tuple[str, tuple[slice, ...], object, bool]] = []

    def record(region: str):
        def body(t: xp.Tile) -> None:
            from parla import get_current_devices

            assert get_current_devices() == [t.device]
            assert np.array_equal(t.interior, g[t.box])
            assert t.ghosted.shape == tuple(n + 2 for n in t.shape)
            seen.append((region, t.box, t.device, t.partition))

        return body

    with Parla(n_workers=2, sim_gpus=1):
        x = xp.from_global(g, ghosts=1, boundary="periodic", devices=[cpu(0), gpu(0)])
        for region in ("all", "interior", "boundary"):
            x.map(record(region), region=region).wait()
        cells = {r: np.zeros(g.shape, int) for r in ("all", "interior", "boundary")}
        for region, box, _, _ in seen:
            cells[region][box] += 1
        assert (cells["all"] == 1).all()
        assert (cells["interior"] + cells["boundary"] == 1).all()
        # Interior: the owned cells at least one cell away from each partition's faces.
        for p in x.partitions:
            inner = tuple(slice(b.start + 1, b.stop - 1) for b in p.box)
            assert (cells["interior"][inner] == 1).all()
        T = x.map(lambda t: None, region="split")
        keys = sorted(t.idx for t in T)
        assert keys == [(0, 0), (0, 1), (1, 0), (1, 1)]
        x.close()


def test_jacobi_50_steps_bit_for_bit_on_one_rank() -> None:
    shape = (14, 11)
    u0 = np.random.default_rng(3).standard_normal(shape)
    boundary = ("constant", 0.25)
    expected = jacobi_reference(u0, 50, boundary)
    with Parla(n_workers=2, sim_gpus=2):
        kw = {"ghosts": 1, "boundary": boundary, "devices": [gpu(0), cpu(0), gpu(1)]}
        u = xp.from_global(u0, **kw)
        v = xp.empty_like(u)
        for step in range(50):
            u.exchange_halos()
            u.map(lambda t: jacobi_update(t.ghosted), out=v,
                  region="split" if step % 2 else "all")
            u, v = v, u
        assert np.array_equal(np.asarray(u), expected)
        u.close()
        v.close()


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64, np.int32])
def test_reductions_equal_numpy(dtype: type) -> None:
    g = (global_array((9, 7)) % 31 - 11).astype(dtype)
    h = (global_array((9, 7)) % 5 - 2).astype(dtype)
    with Parla(n_workers=2, sim_gpus=1):
        x = xp.from_global(g, ghosts=1, devices=[cpu(0), gpu(0)], boundary=("constant", 99))
        y = xp.from_global(h, ghosts=1, devices=[cpu(0), gpu(0)])
        assert x.sum() == g.sum() and x.min() == g.min() and x.max() == g.max()
        assert xp.dot(x, y) == pytest.approx(float(np.dot(g.ravel(), h.ravel())))
        assert x.norm2() == pytest.approx(np.linalg.norm(g.ravel().astype(float)))
        assert xp.linalg.norm(x) == x.norm2()
        f = x.sum_async()
        assert isinstance(f, xp.Future) and f.result() == g.sum()
        assert x.max(non_blocking=True).wait() == g.max()
        x.close()
        y.close()


def test_fill_ones_full_copy_and_futures_as_dependencies() -> None:
    with Parla(n_workers=2, sim_gpus=1):
        x = xp.ones((6, 5), devices=[gpu(0), cpu(0)], ghosts=1)
        assert x.sum() == 30
        y = xp.full((6, 5), 2.5, devices=[gpu(0), cpu(0)], ghosts=1)
        z = y.copy()
        z.map(lambda t, u: t.interior + u.interior, x)
        assert np.array_equal(np.asarray(z), np.full((6, 5), 3.5))
        f = z.sum_async()
        got = []

        @spawn(dependencies=[f])
        def after():
            got.append(f.result())

        async def main_task():
            got.append(await z.max_async())

        first = spawn()(main_task)
        after.wait()
        first.wait()
        assert sorted(got) == [3.5, 3.5 * 30]
        for a in (x, y, z):
            a.close()


def test_halo_space_is_a_dependency() -> None:
    with Parla(n_workers=2):
        x = xp.zeros((8,), ghosts=1, boundary="periodic")
        x.map(lambda t: np.arange(8.0)[t.box], out=x)
        halo = x.exchange_halos()
        seen = []

        @spawn(dependencies=[halo])
        def after():
            seen.append(np.asarray(x.partitions[0]).copy())

        after.wait()
        assert list(seen[0]) == [7.0, *range(8), 0.0]
        x.close()


def test_an_exchange_space_waited_for_directly_still_lists_its_tasks() -> None:
    # A plain wait() on an array operation's space needs no Task objects; they are made when
    # the space is first looked into, and must then be the exchange's tasks, all finished.
    with Parla(n_workers=2, sim_gpus=2):
        x = xp.zeros((8, 6), ghosts=1, boundary="periodic", devices=[cpu(0), gpu(0), gpu(1)])
        halo = x.exchange_halos()
        halo.wait()
        tasks = list(halo)
        # Star, periodic, 1 x 1 grid, split along axis 0 across 3 devices: each partition's
        # two row sides come from its device neighbours; its two column sides, copied from
        # itself, are one task.
        assert len(tasks) == len(halo) == 3 * 3
        assert all(t.done for t in tasks)
        assert all(t.taskspace is halo for t in tasks)
        assert sorted({t.idx[0] for t in tasks}) == [0, 1, 2]
        assert set(halo.view.tasks) == set(tasks)
        x.close()


def test_an_exchange_space_still_lists_its_tasks_after_the_runtime_ended() -> None:
    # Nothing looked into the space inside the block: its Task objects are made afterwards,
    # from the records the space holds (the runtime that could create elements is gone).
    with Parla(n_workers=1):
        x = xp.zeros((8,), ghosts=1, boundary="periodic")
        halo = x.exchange_halos()
        halo.wait()
        x.close()
    assert len(halo) == 1  # one partition: its two sides are one copy task
    assert all(t.done for t in halo)
    assert "halo" in repr(halo)


def test_a_failing_map_body_raises_its_exception() -> None:
    def boom(t: xp.Tile) -> None:
        raise ZeroDivisionError("boom in a map body")

    # Raised where the program waits (once: the block's end does not raise it again).
    with Parla(n_workers=2):
        x = xp.zeros((8,), ghosts=1)
        with pytest.raises(ZeroDivisionError, match="boom in a map body"):
            x.map(boom).wait()
        x.close()


def test_save_load_with_other_devices_and_ghosts(tmp_path: os.PathLike) -> None:
    g = global_array((11, 6), np.int32)
    path = os.path.join(tmp_path, "a.parla")
    with Parla(n_workers=2, sim_gpus=2):
        x = xp.from_global(g, devices=[cpu(0), gpu(0)], ghosts=1)
        x.save(path)
        y = xp.load(path, devices=[gpu(1), gpu(0), cpu(0)], ghosts=2, boundary="periodic")
        assert y.shape == g.shape and y.dtype == np.int32
        assert np.array_equal(np.asarray(y), g)
        y.exchange_halos()
        check_ghosts(y, g, "periodic", "star")
        with pytest.raises(ValueError, match="shape"):
            xp.load(path, shape=(3, 3))
        x.close()
        y.close()


def test_errors_name_the_numbers() -> None:
    with Parla(n_workers=1, sim_gpus=1):
        smaller = r"shape \(1, 4\) is smaller than the process grid \(2, 1\)"
        with pytest.raises(ValueError, match=smaller):
            build_options((1, 4), np.float64, comm_size=2, grid=[2, 1])
        with pytest.raises(ValueError, match=r"axis 1 has 1 cells for 2 ranks"):
            build_options((8, 1), np.float64, comm_size=4, grid=None)
        with pytest.raises(ValueError, match=r"grid \(2,\) has 2 ranks but the communicator has 1"):
            xp.zeros((8,), grid=[2])
        with pytest.raises(ValueError, match="ghost"):
            xp.zeros((3,), ghosts=5, boundary="periodic")
        with pytest.raises(ValueError, match="ghost"):
            four = [cpu(0), gpu(0), cpu(0), gpu(0)]
            xp.zeros((8, 8), ghosts=3, boundary="periodic", devices=four)
        with pytest.raises(TypeError, match="complex128"):
            xp.zeros((4,), dtype=np.complex128)
        with pytest.raises(TypeError, match="uint16"):
            xp.from_global(np.zeros(4, np.uint16))
        with pytest.raises(ValueError, match="boundary"):
            xp.zeros((4,), boundary="reflect")
        with pytest.raises(ValueError, match=r"gpu\(3\).*1 GPU"):
            xp.zeros((4,), devices=[gpu(3)])
        a = xp.zeros((8,))
        b = xp.zeros((9,))
        c = xp.zeros((8,), devices=[cpu(0), gpu(0)])
        with pytest.raises(ValueError, match=r"shapes \(8,\) and \(9,\)"):
            xp.dot(a, b)
        with pytest.raises(ValueError, match=r"shapes \(8,\) and \(9,\)"):
            a.map(lambda s, t: s.interior, b)
        with pytest.raises(ValueError, match="distributed differently"):
            a.map(lambda s, t: s.interior, c)
        with pytest.raises(ValueError, match="region"):
            a.map(lambda s: None, region="edges")
        for arr in (a, b, c):
            arr.close()


def test_async_task_awaits_a_reduction() -> None:
    # An `async def` task awaits a reduction without holding a worker.
    with Parla(n_workers=1):
        x = xp.full((16,), 2.0)
        out = []

        async def body():
            out.append(await x.norm2_async())

        spawn()(body).wait()
        assert out == [pytest.approx(8.0)]
        x.close()
