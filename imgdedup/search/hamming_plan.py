"""How a Hamming-radius search is laid out: substrings, their thresholds, and a cost model.

Multi-index hashing cuts the 64 bits into ``m`` substrings (:class:`Part`);
:func:`plan_layout` picks ``m`` from the input sizes and the radius by the
predicted cost of each layout (:func:`mih_cost`), or None when blocked brute
force is cheaper. See :mod:`imgdedup.search.hamming` for the algorithm.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

_U64 = np.uint64

# Substring keys up to this many bits are looked up in a direct table, if the
# table is not much larger than the hashes (else binary search).
_TABLE_BITS = 22
_TABLE_PER_HASH = 16
# Never enumerate more neighbour masks than this per substring.
MAX_MASKS = 1 << 16

# Cost model, in nanoseconds on one core, measured on random hashes.
_NS_PER_ELEMENT = 2.0  # one XOR + popcount + compare in a dense block
_NS_PER_BUCKET_PAIR = 35.0  # grouping and gathering one bucket pair
_NS_PER_TABLE_PROBE = 3.0  # one mask probe, direct table
_NS_PER_SEARCH_PROBE = 40.0  # one mask probe, binary search
_NS_PER_ITEM_PER_PART = 120.0  # sorting and gathering one hash per substring
_NS_PER_PART = 5e6  # fixed cost of one substring: mask lists, thread pool, small arrays
_NS_PER_TABLE_SLOT = 1.0  # allocating and filling the direct lookup table


@dataclass(frozen=True)
class Part:
    """One substring: bits ``shift .. shift + bits - 1`` may differ in up to ``threshold`` bits."""

    shift: int
    bits: int
    threshold: int

    @property
    def n_masks(self) -> int:
        return sum(math.comb(self.bits, k) for k in range(self.threshold + 1))

    def keys(self, hashes: np.ndarray) -> np.ndarray:
        if self.bits == 64:
            return hashes
        return (hashes >> _U64(self.shift)) & _U64((1 << self.bits) - 1)

    def within(self, xor: np.ndarray) -> np.ndarray:
        """Whether each XOR of two hashes has at most ``threshold`` bits set on this substring."""
        return np.bitwise_count(self.keys(xor)) <= self.threshold


def substring_parts(m: int, radius: int) -> tuple[Part, ...]:
    """``m`` near-equal substrings whose thresholds sum to ``radius + 1 - m`` (the pigeonhole bound)."""
    base, longer = divmod(64, m)
    bits = [base + 1] * longer + [base] * (m - longer)
    spare = radius + 1 - m
    # Longer substrings take the larger thresholds: their candidate rate
    # V(b, t) / 2^b grows more slowly with t.
    thresholds = [spare // m + (1 if k < spare % m else 0) for k in range(m)]
    parts, shift = [], 0
    for b, t in zip(bits, thresholds):
        parts.append(Part(shift, b, t))
        shift += b
    return tuple(parts)


def mih_cost(parts: Sequence[Part], n_left: int, n_right: int, self_join: bool) -> float:
    """Predicted seconds of the multi-index search on uniformly random hashes."""
    ns = 0.0
    for p in parts:
        space = 2.0**p.bits
        occupied_left = space * -math.expm1(-n_left / space)
        occupied_right = space * -math.expm1(-n_right / space)
        masks = p.n_masks
        probes = occupied_left * masks * (0.5 if self_join else 1.0)
        bucket_pairs = probes * occupied_right / space
        candidates = n_left * n_right * masks / space * (0.5 if self_join else 1.0)
        table = use_table(p.bits, n_right)
        probe_ns = _NS_PER_TABLE_PROBE if table else _NS_PER_SEARCH_PROBE
        # Every bucket pair costs at least one element; padding adds ~10 %.
        elements = max(1.1 * candidates, bucket_pairs)
        ns += (
            probes * probe_ns
            + bucket_pairs * _NS_PER_BUCKET_PAIR
            + elements * _NS_PER_ELEMENT
            + (n_left + n_right) * _NS_PER_ITEM_PER_PART
            + _NS_PER_PART
            + (space * _NS_PER_TABLE_SLOT if table else 0.0)
        )
    return ns * 1e-9


def plan_layout(n_left: int, n_right: int, radius: int, self_join: bool) -> tuple[Part, ...] | None:
    """The cheapest substring layout, or None when blocked brute force is cheaper."""
    pairs = n_left * n_right * (0.5 if self_join else 1.0)
    best_cost = pairs * _NS_PER_ELEMENT * 1e-9
    best = None
    for m in range(1, min(radius + 1, 16) + 1):
        parts = substring_parts(m, radius)
        if any(p.n_masks > MAX_MASKS for p in parts) or (m > 1 and any(p.bits > 32 for p in parts)):
            continue
        cost = mih_cost(parts, n_left, n_right, self_join)
        if cost < best_cost:
            best, best_cost = parts, cost
    return best


def use_table(bits: int, n: int) -> bool:
    return bits <= _TABLE_BITS and 1 << bits <= _TABLE_PER_HASH * max(n, 1)


def masks_by_top_bit(part: Part) -> dict[int, np.ndarray]:
    """Non-zero masks of at most ``threshold`` bits, grouped by their highest set bit."""
    groups: dict[int, list[int]] = {}
    for k in range(1, part.threshold + 1):
        for combo in itertools.combinations(range(part.bits), k):
            groups.setdefault(combo[-1], []).append(sum(1 << c for c in combo))
    return {top: np.array(sorted(v), dtype=_U64) for top, v in sorted(groups.items())}
