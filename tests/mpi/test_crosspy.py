"""parla.crosspy at 2-4 ranks: ghost contents after an exchange equal a global NumPy
reference, for 1-D/2-D/3-D x periodic/none/constant x star/box x widths 1-2 x even/uneven
splits x 0-3 simulated GPUs per rank; Jacobi equals a serial NumPy loop bit for bit;
reductions equal NumPy's; gather and np.asarray; save/load across rank counts; errors."""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest
from mpi4py import MPI

import parla.crosspy as xp
from parla import Parla
from parla.crosspy.testing import expected_ghosted, jacobi_reference, jacobi_update
from parla.devices import cpu, gpu

WORLD = MPI.COMM_WORLD
RANK = WORLD.Get_rank()
SIZE = WORLD.Get_size()

SHAPES = {1: (48,), 2: (24, 14), 3: (24, 10, 6)}

# Simulated GPUs per rank -> the devices each rank splits its block across.
DEVICES = {
    0: [cpu(0)],
    1: [gpu(0)],
    2: [cpu(0), gpu(0), gpu(1)],
    3: [gpu(0), gpu(1), gpu(2)],
}


def global_array(shape: tuple[int, ...], dtype: type = np.float64) -> np.ndarray:
    return (np.arange(int(np.prod(shape))) * 3 + 1).astype(dtype).reshape(shape)


def uneven(n: int, parts: int, shift: int) -> list[int]:
    """Block sizes of n cells over `parts` blocks: even, then `shift` cells moved from the
    last block to the first (a ragged split that still leaves every block >= 2 wide)."""
    q, r = divmod(n, parts)
    sizes = [q + (i < r) for i in range(parts)]
    if parts > 1:
        move = min(shift, sizes[-1] - 2)
        sizes[0] += move
        sizes[-1] -= move
    return sizes


def check_ghosts(x: xp.DistArray, g: np.ndarray, boundary: object, stencil: str) -> None:
    for part in x.partitions:
        values, mask = expected_ghosted(g, part.box, x.ghosts, boundary, stencil)
        got = np.asarray(part)
        assert got.shape == values.shape, (part, got.shape, values.shape)
        bad = np.argwhere(mask & (got != values))
        assert bad.size == 0, (
            f"rank {RANK} {part}: {len(bad)} ghost cells differ, first at {tuple(bad[0])}: "
            f"got {got[tuple(bad[0])]}, expected {values[tuple(bad[0])]}"
        )


@pytest.mark.parametrize("ndim", [1, 2, 3])
@pytest.mark.parametrize("boundary", ["periodic", "none", ("constant", -2.0)])
@pytest.mark.parametrize("stencil", ["star", "box"])
@pytest.mark.parametrize("width", [1, 2])
@pytest.mark.parametrize("split", ["even", "uneven"])
@pytest.mark.parametrize("gpus", [0, 1, 2, 3])
def test_ghosts_equal_numpy_reference(
    ndim: int, boundary: object, stencil: str, width: int, split: str, gpus: int
) -> None:
    shape = SHAPES[ndim]
    g = global_array(shape)
    grid = MPI.Compute_dims(SIZE, ndim)
    splits = None
    device_splits = None
    devices = DEVICES[gpus]
    if split == "uneven":
        splits = [uneven(n, p, shift=1 + d) for d, (n, p) in enumerate(zip(shape, grid))]
        if len(devices) > 1:
            # This rank's block along axis 0 (ranks are row-major in the grid), split
            # unevenly across its devices too.
            c0 = int(np.unravel_index(RANK, grid)[0])
            device_splits = uneven(splits[0][c0], len(devices), shift=1)
    with Parla(n_workers=2, sim_gpus=gpus):
        x = xp.from_global(
            g if RANK == 0 else None,
            shape=shape,
            dtype=g.dtype,
            grid=grid,
            splits=splits,
            ghosts=width,
            boundary=boundary,
            stencil=stencil,
            devices=devices,
            device_splits=device_splits,
        )
        assert len(x.partitions) == len(devices)
        if device_splits is not None:
            assert [p.extent[0] for p in x.partitions] == device_splits
        assert {p.device for p in x.partitions} == set(devices)
        x.exchange_halos().wait()
        check_ghosts(x, g, boundary, stencil)
        # The plan is reused: change the data, exchange again.
        x.map(lambda t: t.interior * 2 + 1, out=x)
        x.exchange_halos().wait()
        check_ghosts(x, g * 2 + 1, boundary, stencil)
        x.close()


@pytest.mark.parametrize("ndim", [1, 2, 3])
@pytest.mark.parametrize("boundary", ["periodic", ("constant", 1.5)])
@pytest.mark.parametrize("region", ["all", "split", "manual"])
@pytest.mark.parametrize("gpus", [0, 2])
def test_jacobi_equals_serial_numpy_bit_for_bit(
    ndim: int, boundary: object, region: str, gpus: int
) -> None:
    steps = 50
    shape = SHAPES[ndim]
    rng = np.random.default_rng(42)
    u0 = rng.standard_normal(shape)
    expected = jacobi_reference(u0, steps, boundary)

    def sweep(t: xp.Tile) -> np.ndarray:
        return jacobi_update(t.ghosted)

    with Parla(n_workers=2, sim_gpus=gpus):
        kw = {"ghosts": 1, "boundary": boundary, "devices": DEVICES[gpus]}
        u = xp.from_global(u0 if RANK == 0 else None, shape=shape, **kw)
        v = xp.zeros(shape, **kw)
        for _ in range(steps):
            if region == "manual":
                # Interior first (needs no halo), then the exchange, then the boundary band
                # (which waits for that exchange).
                u.map(sweep, out=v, region="interior")
                u.exchange_halos()
                u.map(sweep, out=v, region="boundary")
            else:
                u.exchange_halos()
                u.map(sweep, out=v, region=region)
            u, v = v, u
        result = np.asarray(u)
        u.close()
        v.close()
    assert result.shape == shape
    assert np.array_equal(result, expected), np.max(np.abs(result - expected))


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64, np.int32])
@pytest.mark.parametrize("gpus", [0, 2])
def test_reductions_equal_numpy(dtype: type, gpus: int) -> None:
    shape = (23, 9)
    g = (global_array(shape) % 97 - 40).astype(dtype)
    h = (global_array(shape) % 13 - 5).astype(dtype)
    with Parla(n_workers=2, sim_gpus=gpus):
        x = xp.from_global(g if RANK == 0 else None, shape=shape, dtype=dtype,
                           devices=DEVICES[gpus], ghosts=1)
        y = xp.from_global(h if RANK == 0 else None, shape=shape, dtype=dtype,
                           devices=DEVICES[gpus], ghosts=1)
        exact = np.issubdtype(dtype, np.integer)
        check = np.testing.assert_array_equal if exact else np.testing.assert_allclose
        check(x.sum(), g.sum())
        check(x.min(), g.min())
        check(x.max(), g.max())
        check(xp.dot(x, y), np.dot(g.ravel().astype(np.float64), h.ravel()))
        np.testing.assert_allclose(x.norm2(), np.linalg.norm(g.ravel().astype(np.float64)),
                                   rtol=1e-6)
        np.testing.assert_allclose(xp.linalg.norm(x), x.norm2())
        # Non-blocking: futures, all in flight at once.
        futures = [x.sum(non_blocking=True), x.max_async(), x.dot_async(y)]
        check(futures[0].result(), g.sum())
        check(futures[1].wait(), g.max())
        check(futures[2].result(), np.dot(g.ravel().astype(np.float64), h.ravel()))
        x.close()
        y.close()


def test_gather_asarray_and_partition_interop() -> None:
    shape = (17, 11)
    g = global_array(shape)
    with Parla(n_workers=2, sim_gpus=1):
        x = xp.from_global(g if RANK == 0 else None, shape=shape, ghosts=(1, 2),
                           devices=[cpu(0), gpu(0)])
        gathered = x.gather(root=SIZE - 1)
        if RANK == SIZE - 1:
            assert np.array_equal(gathered, g)
        else:
            assert gathered is None
        assert np.array_equal(np.asarray(x), g)
        for part in x.partitions:
            assert np.array_equal(part.interior, g[part.box])
            host = np.asarray(part)
            assert host.shape == tuple(
                b.stop - b.start + 2 * w for b, w in zip(part.box, x.ghosts)
            )
            assert np.array_equal(np.from_dlpack(part)[1:-1, 2:-2], g[part.box])
            assert np.array_equal(np.frombuffer(memoryview(part), dtype=g.dtype).reshape(
                host.shape), host)
        x.close()


def test_save_load_across_rank_counts() -> None:
    shape = (19, 13)
    g = global_array(shape, np.float64)
    # One file name for every rank.
    path = WORLD.bcast(os.path.join(tempfile.mkdtemp(), "x.parla") if RANK == 0 else None)
    with Parla(n_workers=2, sim_gpus=1):
        x = xp.from_global(g if RANK == 0 else None, shape=shape, ghosts=1,
                           devices=[cpu(0), gpu(0)])
        x.save(path)
        x.close()
    # Read back on fewer ranks, with a different grid and devices.
    readers = max(1, SIZE - 1)
    sub = WORLD.Split(0 if readers > RANK else MPI.UNDEFINED, RANK)
    if sub != MPI.COMM_NULL:
        with Parla(n_workers=2):
            y = xp.load(path, comm=sub, ghosts=2, boundary="periodic")
            assert y.shape == shape and y.dtype == np.float64
            assert np.array_equal(np.asarray(y), g)
            y.exchange_halos().wait()
            check_ghosts(y, g, "periodic", "star")
            y.close()
        sub.Free()
    WORLD.Barrier()
    if RANK == 0:
        os.remove(path)


def test_errors_name_the_numbers() -> None:
    with Parla(n_workers=1):
        with pytest.raises(ValueError, match=rf"shape \(1,\).*{SIZE}"):
            xp.zeros((1,), grid=[SIZE]) if SIZE > 1 else xp.zeros((0,))
        with pytest.raises(ValueError, match=r"ghost.*5"):
            xp.zeros((4 * SIZE,), ghosts=5)
        with pytest.raises(TypeError, match="complex128"):
            xp.zeros((8,), dtype=np.complex128)
        a = xp.zeros((8 * SIZE,))
        b = xp.zeros((8 * SIZE + 1,))
        with pytest.raises(ValueError, match=rf"\({8 * SIZE},\).*\({8 * SIZE + 1},\)"):
            xp.dot(a, b)
        with pytest.raises(ValueError, match="shape"):
            a.map(lambda t, u: t.interior, b, out=a)
        a.close()
        b.close()
