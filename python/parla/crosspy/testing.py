"""Global NumPy references for distributed arrays (what the tests compare against).

``expected_ghosted(g, partition)`` is what a partition's ghosted buffer holds after
``exchange_halos()`` when the whole array equals the global NumPy array ``g``, and the mask of
the cells an exchange defines (``star`` leaves corners alone, ``none`` leaves the ghosts
outside the global domain alone). ``jacobi_reference`` is the serial NumPy loop a Jacobi
sweep on a distributed array must reproduce bit for bit.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["expected_ghosted", "jacobi_reference", "jacobi_update", "padded"]


def padded(g: np.ndarray, ghosts: tuple[int, ...], boundary: Any) -> np.ndarray:
    """`g` padded by `ghosts[d]` cells on both sides of axis d, as the boundary defines
    them: ``periodic`` wraps, ``("constant", v)`` holds v, ``none`` holds zeros."""
    pad = [(w, w) for w in ghosts]
    if boundary == "periodic":
        return np.pad(g, pad, mode="wrap")
    value = boundary[1] if isinstance(boundary, tuple) else 0
    return np.pad(g, pad, mode="constant", constant_values=value)


def expected_ghosted(
    g: np.ndarray,
    box: tuple[slice, ...],
    ghosts: tuple[int, ...],
    boundary: Any,
    stencil: str,
) -> tuple[np.ndarray, np.ndarray]:
    """(values, mask) of the ghosted buffer of the partition owning `box` of `g`: the
    values an exchange puts there, and True where the exchange defines them."""
    full = padded(g, ghosts, boundary)
    values = full[tuple(slice(b.start, b.stop + 2 * w) for b, w in zip(box, ghosts))]
    outside = np.zeros(values.shape, dtype=np.int64)  # axes on which a cell is a ghost
    defined = np.ones(values.shape, dtype=bool)
    for d, (b, w) in enumerate(zip(box, ghosts)):
        n = b.stop - b.start
        shape = [1] * g.ndim
        shape[d] = n + 2 * w
        local = np.arange(n + 2 * w).reshape(shape)
        outside = outside + ((local < w) | (local >= n + w))
        if boundary == "none":
            global_index = local + b.start - w
            defined &= (global_index >= 0) & (global_index < g.shape[d])
    if stencil == "star":
        defined &= outside <= 1
    return values, np.broadcast_to(defined, values.shape)


def jacobi_update(u: np.ndarray) -> np.ndarray:
    """One Jacobi sweep of the ghosted array `u` (ghost width 1): the mean of the 2 x ndim
    face neighbours of each interior cell, summed in axis order."""
    nd = u.ndim
    inner = tuple(slice(1, -1) for _ in range(nd))
    total = None
    for d in range(nd):
        for lo in (slice(None, -2), slice(2, None)):
            idx = list(inner)
            idx[d] = lo
            term = u[tuple(idx)]
            total = term if total is None else total + term
    assert total is not None
    return total * (1.0 / (2 * nd))


def jacobi_reference(u0: np.ndarray, steps: int, boundary: Any) -> np.ndarray:
    """`steps` Jacobi sweeps of the global array `u0` with ghost width 1."""
    u = u0.copy()
    for _ in range(steps):
        u = jacobi_update(padded(u, (1,) * u.ndim, boundary))
    return u
