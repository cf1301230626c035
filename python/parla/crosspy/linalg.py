"""``xp.linalg.norm`` and ``xp.linalg.dot``: NumPy-style spellings of the reductions."""

from __future__ import annotations

from typing import Any

__all__ = ["dot", "norm"]


def norm(x: Any, ord: Any = None, non_blocking: bool = False) -> Any:
    """The Euclidean (Frobenius) norm of a distributed array (``ord`` None, 2 or 'fro')."""
    if ord not in (None, 2, "fro"):
        raise ValueError(f"xp.linalg.norm computes the 2-norm only, not ord={ord!r}")
    return x.norm2(non_blocking=non_blocking)


def dot(x: Any, y: Any, non_blocking: bool = False) -> Any:
    return x.dot(y, non_blocking=non_blocking)
