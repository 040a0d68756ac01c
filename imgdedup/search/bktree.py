"""A Burkhard-Keller tree over 64-bit hashes: exact Hamming-radius queries, one at a time.

For many queries at once :func:`imgdedup.search.hamming.hamming_query` is much
faster; the tree serves the compat API and the tests as an independent check.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from imgdedup.search.popcount import check_hash_int, check_radius

__all__ = ["BKTree"]


class BKTree:
    """A Burkhard-Keller tree over 64-bit hashes under Hamming distance, for one query at a time.

    Each node's children are keyed by their distance to it; the triangle
    inequality lets a query within ``radius`` of the node's hash skip every
    child whose edge distance differs from the query's by more than
    ``radius``. Queries are exact. For many queries at once,
    :func:`hamming_query` is much faster.

    Parameters
    ----------
    hashes : Mapping[key, int] or sequence of int
        Hashes in ``0 .. 2**64 - 1``. With a mapping the keys are returned by
        :meth:`query`; with a sequence, the positions.
    """

    def __init__(self, hashes: Mapping[Any, int] | Sequence[int] | np.ndarray) -> None:
        if isinstance(hashes, Mapping):
            items = list(hashes.items())
        else:
            arr = np.asarray(hashes) if isinstance(hashes, np.ndarray) else None
            if arr is not None and arr.ndim != 1:
                raise ValueError(f"`hashes` must be 1-D, got an array of shape {arr.shape}")
            items = list(enumerate(hashes))
        self._keys: list[Any] = []
        self._hashes: list[int] = []
        # Node n: its children as {edge distance: child node}.
        self._children: list[dict[int, int]] = []
        for key, value in items:
            self._add(key, check_hash_int(f"hashes[{key!r}]", value))

    def __len__(self) -> int:
        return len(self._keys)

    def _add(self, key: Any, value: int) -> None:
        node = len(self._keys)
        self._keys.append(key)
        self._hashes.append(value)
        self._children.append({})
        if node == 0:
            return
        current = 0
        while True:
            d = (value ^ self._hashes[current]).bit_count()
            child = self._children[current].get(d)
            if child is None:
                self._children[current][d] = node
                return
            current = child

    def query(self, hash: int, radius: int) -> list[tuple[Any, int]]:
        """Every stored hash within ``radius`` bits of ``hash``.

        Parameters
        ----------
        hash : int
            The hash to look up, ``0 .. 2**64 - 1``.
        radius : int
            Largest Hamming distance reported, ``0 .. 64`` (inclusive).

        Returns
        -------
        list of (key, distance)
            Sorted by distance, then insertion order.
        """
        value = check_hash_int("hash", hash)
        radius = check_radius(radius)
        found: list[tuple[int, int]] = []  # (distance, node); node number is insertion order
        if not self._keys:
            return []
        stack = [0]
        while stack:
            node = stack.pop()
            d = (value ^ self._hashes[node]).bit_count()
            if d <= radius:
                found.append((d, node))
            for edge, child in self._children[node].items():
                if d - radius <= edge <= d + radius:
                    stack.append(child)
        found.sort()
        return [(self._keys[node], d) for d, node in found]
