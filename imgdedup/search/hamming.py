"""Exact Hamming-radius search over 64-bit perceptual hashes.

:func:`hamming_pairs` finds every pair of hashes within a radius of each other
(all-pairs self join); :func:`hamming_query` finds, for new hashes, every
indexed hash within the radius (a cross join that never compares the index
with itself). Both are exact. The layout and its cost model live in
:mod:`imgdedup.search.hamming_plan`, bit counts in :mod:`imgdedup.search.popcount`,
and the one-query-at-a-time :class:`BKTree` in :mod:`imgdedup.search.bktree`
(all re-exported here).

Algorithm
---------
Multi-index hashing with the generalised pigeonhole principle. The 64 bits
are cut into ``m`` contiguous substrings of ``b_s`` bits with thresholds
``t_s`` such that ``sum(t_s + 1) > radius``. If two hashes are within
``radius`` then on some substring they differ in at most ``t_s`` bits: were
every substring to differ in at least ``t_s + 1`` bits, the total would
exceed the radius. For each substring ``s``:

1. Hashes are sorted by their substring value, so each distinct value is a
   contiguous *bucket* (O(N log N), a radix sort for 16-bit keys).
2. Every bucket ``v`` is paired with each occupied bucket ``v ^ f`` for every
   mask ``f`` of at most ``t_s`` bits (``V(b, t) = sum_k C(b, k)`` masks,
   looked up in a direct table, or by binary search for long substrings).
   In the self join only ``v < v ^ f`` is kept, so a bucket pair is seen
   once.
3. Each bucket pair is verified as a dense block: XOR, ``np.bitwise_count``
   and compare, over a ``(size_a, size_b, pairs)`` array of bucket pairs
   grouped by (rounded) bucket sizes, so the inner loop is contiguous and
   padding is small.
4. A pair found on substring ``s`` is kept only if no earlier substring
   ``s' < s`` is within its threshold, so each pair is emitted exactly once
   without a global de-duplication.

For random hashes the expected work is ``sum_s [U_s V_s / 2 + N^2 V_s /
2^(b_s + 1)]`` (bucket pairs plus candidate pairs, ``U_s`` the occupied
buckets), against ``N^2 / 2`` for brute force. A small cost model picks
``m`` from the input sizes and the radius, and falls back to blocked brute
force (the same dense kernel over fixed-size blocks) where that is cheaper:
small inputs and large radii. For radius 10, ``m = 4`` substrings of 16 bits
with thresholds ``(2, 2, 2, 1)`` suit about 10^5 to a few 10^6 hashes;
``m = 3`` of about 21 bits suit larger inputs.

Memory is O(N) per substring plus a bounded working block (a few tens of
MB per thread) and the output; no N x N matrix is ever formed. Work is spread
over threads: NumPy releases the GIL inside its loops.

Hashes that are not uniformly distributed (real perceptual hashes are skewed)
make buckets larger and the search slower, never inexact; a heavily repeated
hash costs at worst the quadratic number of pairs it produces.
"""

from __future__ import annotations

import itertools
import math
import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from imgdedup.search.bktree import BKTree
from imgdedup.search.hamming_plan import (
    MAX_MASKS,
    Part,
    masks_by_top_bit,
    plan_layout,
    substring_parts,
    use_table,
)
from imgdedup.search.popcount import (
    check_hashes,
    check_radius,
    hamming_distance,
    popcount64,
)

# BKTree, hamming_distance and popcount64 live in their own modules; this one keeps their import paths.
__all__ = ["BKTree", "hamming_distance", "hamming_pairs", "hamming_query", "popcount64"]

_U64 = np.uint64
_ONES = _U64(0xFFFFFFFFFFFFFFFF)

# Elements in one dense XOR block: 2**18 uint64 (2 MiB) keeps a block and its
# popcounts near the cache while amortising NumPy's per-call cost (measured
# best of 2**16 .. 2**20).
_BLOCK_ELEMENTS = 1 << 18
# Probes (bucket x mask) per work item: bounds the memory of one work item.
_PROBES_PER_ITEM = 1 << 21
# Longest bucket segment verified in one piece; bigger buckets (many equal
# substrings) are split so one block never exceeds _BLOCK_ELEMENTS.
_MAX_SEGMENT = 512

# --------------------------------------------------------------------------- #
# Buckets and the dense verification kernel
# --------------------------------------------------------------------------- #

_Hits = tuple[np.ndarray, np.ndarray, np.ndarray]


class _Sorted:
    """Hashes sorted by one substring key; equal keys form contiguous buckets.

    A bucket longer than ``_MAX_SEGMENT`` (many equal substrings) is split into
    several *sub-buckets*, so one dense block stays bounded; ``first[u]`` and
    ``nsub[u]`` locate the sub-buckets of distinct key ``keys[u]``. Sub-buckets
    are grouped into size classes so that blocks of equal shape are verified
    together.
    """

    def __init__(self, hashes: np.ndarray, part: Part) -> None:
        n = hashes.size
        small = part.keys(hashes).astype(
            np.uint16 if part.bits <= 16 else np.uint32 if part.bits <= 32 else _U64, copy=False
        )
        # Stable: bucket members stay in input order, so results are reproducible.
        self.order = np.argsort(small, kind="stable")
        sorted_keys = small[self.order]
        key_starts = np.flatnonzero(np.concatenate(([True], sorted_keys[1:] != sorted_keys[:-1])))
        key_counts = np.diff(np.append(key_starts, n))
        self.keys = sorted_keys[key_starts]
        self.key_counts = key_counts
        self.nsub = -(-key_counts // _MAX_SEGMENT)
        self.split = bool(self.nsub.max() > 1)
        if self.split:
            self.first = np.cumsum(self.nsub) - self.nsub
            owner = np.repeat(np.arange(key_starts.size), self.nsub)
            piece = np.arange(owner.size) - self.first[owner]
            self.starts = key_starts[owner] + piece * _MAX_SEGMENT
            self.counts = np.minimum(key_counts[owner] - piece * _MAX_SEGMENT, _MAX_SEGMENT)
        else:
            self.starts, self.counts = key_starts, key_counts
        # Padding lets a block read past the last bucket without clipping indices.
        self.sorted_hashes = np.concatenate([hashes[self.order], np.full(_MAX_SEGMENT, _ONES)])
        step = _class_step(n / max(1, key_starts.size))
        rounded = -(-self.counts // step) * step
        self.class_sizes, cls = np.unique(rounded, return_inverse=True)
        # Small dtype: these are gathered at random, so bytes are cache misses.
        self.cls = cls.astype(np.uint16 if self.class_sizes.size < 1 << 16 else np.int64)
        self._table: np.ndarray | None = None
        if use_table(part.bits, n):
            self._table = np.full(1 << part.bits, -1, dtype=np.int32)
            self._table[self.keys] = np.arange(self.keys.size, dtype=np.int32)

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        """Distinct-key number of each key, -1 where no hash has it."""
        if self._table is not None:
            return np.take(self._table, keys)
        pos = np.searchsorted(self.keys, keys)
        np.minimum(pos, self.keys.size - 1, out=pos)
        return np.where(self.keys[pos] == keys, pos, -1)

    def sub_pairs(
        self, other: _Sorted, ua: np.ndarray, ub: np.ndarray, same: bool
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sub-bucket pairs (a, b, diagonal) for distinct-key pairs (ua, ub).

        With ``same``, each pair is a key with itself: every unordered pair of
        its sub-buckets is listed once, ``diagonal`` marking a sub-bucket with
        itself.
        """
        if not (self.split or other.split):
            return ua, ub, np.full(ua.size, same)
        na, nb = self.nsub[ua], other.nsub[ub]
        per = na * nb
        owner = np.repeat(np.arange(ua.size), per)
        offset = np.arange(owner.size) - np.repeat(np.cumsum(per) - per, per)
        pa, pb = np.divmod(offset, nb[owner])
        if same:
            keep = pa <= pb
            owner, pa, pb = owner[keep], pa[keep], pb[keep]
        a = self.first[ua[owner]] + pa if self.split else ua[owner]
        b = other.first[ub[owner]] + pb if other.split else ub[owner]
        return a, b, (pa == pb) if same else np.zeros(a.size, dtype=bool)


def _class_step(mean_count: float) -> int:
    """Bucket-size rounding: coarser for big buckets, to bound the number of block shapes.

    Capped so a rounded sub-bucket stays within the scratch buffers and the
    ``_MAX_SEGMENT`` padding.
    """
    return min(16, max(1, int(round(0.6 * math.sqrt(max(mean_count, 1.0))))))


_LOCAL = threading.local()


@dataclass
class _Buffers:
    xor: np.ndarray
    dist: np.ndarray
    close: np.ndarray


def _buffers() -> _Buffers:
    """Per-thread scratch for one dense block: reused, since fresh multi-MB arrays cost page faults."""
    buf = getattr(_LOCAL, "buffers", None)
    if buf is None:
        n = _BLOCK_ELEMENTS + (_MAX_SEGMENT + 64) ** 2
        buf = _Buffers(np.empty(n, _U64), np.empty(n, np.uint8), np.empty(n, bool))
        _LOCAL.buffers = buf
    return buf


def _block(
    ha: np.ndarray, sa: np.ndarray, ca: int, hb: np.ndarray, sb: np.ndarray, cb: int, radius: int, buf: _Buffers
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """XOR-popcount ``ca`` hashes from each ``sa`` against ``cb`` from each ``sb``: (pair, k, l, distance) within radius."""
    n = sa.size
    size = ca * cb * n
    shape = (ca, cb, n)
    # (ca, cb, n) keeps the inner loop contiguous over the n segment pairs.
    xor = np.bitwise_xor(
        np.take(ha, sa + np.arange(ca)[:, None])[:, None, :],
        np.take(hb, sb + np.arange(cb)[:, None])[None, :, :],
        out=buf.xor[:size].reshape(shape),
    )
    dist = np.bitwise_count(xor, out=buf.dist[:size].reshape(shape))
    close = np.less_equal(dist, radius, out=buf.close[:size].reshape(shape))
    if not close.any():
        return None
    flat = np.flatnonzero(close)
    k, rest = np.divmod(flat, cb * n)
    l, q = np.divmod(rest, n)
    return q, k, l, dist.reshape(-1)[flat]


def _verify(left: _Sorted, right: _Sorted, a: np.ndarray, b: np.ndarray, diag: np.ndarray, radius: int) -> _Hits | None:
    """Every (left index, right index, distance) within ``radius`` between sub-buckets ``a[p]`` and ``b[p]``."""
    if a.size == 0:
        return None
    n_right = right.class_sizes.size
    combo = left.cls[a].astype(np.int64) * n_right + right.cls[b]
    if left.class_sizes.size * n_right <= 1 << 16:
        combo = combo.astype(np.uint16)  # NumPy radix-sorts 16-bit keys
    by_combo = np.argsort(combo, kind="stable")
    combo_sorted = combo[by_combo]
    bounds = np.flatnonzero(np.concatenate(([True], combo_sorted[1:] != combo_sorted[:-1], [True])))
    out_i, out_j, out_d = [], [], []
    buf = _buffers()
    for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
        ca = int(left.class_sizes[int(combo_sorted[lo]) // n_right])
        cb = int(right.class_sizes[int(combo_sorted[lo]) % n_right])
        chunk = max(1, _BLOCK_ELEMENTS // (ca * cb))
        for c0 in range(lo, hi, chunk):
            sel = by_combo[c0 : min(hi, c0 + chunk)]
            pa, pb = a[sel], b[sel]
            sa, sb = left.starts[pa], right.starts[pb]
            got = _block(left.sorted_hashes, sa, ca, right.sorted_hashes, sb, cb, radius, buf)
            if got is None:
                continue
            q, k, l, d = got
            # Rounded-up block shapes read past a bucket's end: drop those.
            keep = (k < left.counts[pa[q]]) & (l < right.counts[pb[q]])
            keep &= ~diag[sel[q]] | (k < l)
            q, k, l = q[keep], k[keep], l[keep]
            out_i.append(left.order[sa[q] + k])
            out_j.append(right.order[sb[q] + l])
            out_d.append(d[keep])
    if not out_i:
        return None
    return np.concatenate(out_i), np.concatenate(out_j), np.concatenate(out_d)


# --------------------------------------------------------------------------- #
# Joins
# --------------------------------------------------------------------------- #


def _n_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _run(items: Iterable[Callable[[], _Hits | None]]) -> list[_Hits]:
    """Run work items on a thread pool (NumPy releases the GIL), a few in flight to bound memory."""
    threads = _n_threads()
    results: list[_Hits] = []

    def keep(got: _Hits | None) -> None:
        if got is not None and got[0].size:
            results.append(got)

    items = iter(items)
    head = list(itertools.islice(items, 2))
    if threads == 1 or len(head) < 2:  # a pool costs more than it saves on one item
        for item in itertools.chain(head, items):
            keep(item())
        return results
    with ThreadPoolExecutor(max_workers=threads) as pool:
        pending: list[Future] = []
        for item in itertools.chain(head, items):
            pending.append(pool.submit(item))
            if len(pending) >= 2 * threads:
                keep(pending.pop(0).result())
        for fut in pending:
            keep(fut.result())
    return results


def _drop_found_earlier(
    hits: _Hits | None, hashes_a: np.ndarray, hashes_b: np.ndarray, earlier: Sequence[Part]
) -> _Hits | None:
    """Keep a pair only on the first substring where it is within threshold, so it is emitted once."""
    if hits is None or not earlier:
        return hits
    i, j, d = hits
    xor = hashes_a[i] ^ hashes_b[j]
    keep = np.ones(i.size, dtype=bool)
    for p in earlier:
        keep &= ~p.within(xor)
    return i[keep], j[keep], d[keep]


def _probes(left: _Sorted, part: Part, self_join: bool) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Chunks of (left key numbers, keys to look up on the right), at most ``_PROBES_PER_ITEM`` each.

    Targets are laid out mask-major: for one mask, ascending left keys map to
    nearby right keys, so lookups and gathers stay cache-local.
    """
    groups = masks_by_top_bit(part)
    if self_join:
        # Only v < v ^ f: the key with the mask's top bit clear.
        plan = [(np.flatnonzero((left.keys >> top) & 1 == 0), masks) for top, masks in groups.items()]
    else:
        every = np.concatenate([np.zeros(1, _U64), *groups.values()])
        plan = [(np.arange(left.keys.size), every)]
    for lhs, masks in plan:
        if lhs.size == 0:
            continue
        keys = left.keys[lhs]
        masks = masks.astype(keys.dtype)
        per = max(1, _PROBES_PER_ITEM // lhs.size)
        for m0 in range(0, masks.size, per):
            for r0 in range(0, lhs.size, _PROBES_PER_ITEM):
                rows = slice(r0, r0 + _PROBES_PER_ITEM)
                yield lhs[rows], (masks[m0 : m0 + per, None] ^ keys[None, rows]).reshape(-1)


def _mih_join(hashes_a: np.ndarray, hashes_b: np.ndarray | None, radius: int, parts: Sequence[Part]) -> list[_Hits]:
    self_join = hashes_b is None
    hb = hashes_a if hashes_b is None else hashes_b
    results: list[_Hits] = []
    for s, part in enumerate(parts):
        left = _Sorted(hashes_a, part)
        right = left if self_join else _Sorted(hb, part)
        earlier = parts[:s]

        def same_key(left: _Sorted = left, earlier: Sequence[Part] = earlier) -> _Hits | None:
            ua = np.flatnonzero(left.key_counts > 1)
            a, b, diag = left.sub_pairs(left, ua, ua, same=True)
            return _drop_found_earlier(_verify(left, left, a, b, diag, radius), hashes_a, hb, earlier)

        def probe(
            lhs: np.ndarray,
            targets: np.ndarray,
            left: _Sorted = left,
            right: _Sorted = right,
            earlier: Sequence[Part] = earlier,
        ) -> _Hits | None:
            found = right.lookup(targets)
            hit = np.flatnonzero(found >= 0)
            a, b, diag = left.sub_pairs(right, lhs[hit % lhs.size], found[hit].astype(np.int64), same=False)
            return _drop_found_earlier(_verify(left, right, a, b, diag, radius), hashes_a, hb, earlier)

        items: Iterator[Callable[[], _Hits | None]] = (
            (lambda lhs=lhs, targets=targets, probe=probe: probe(lhs, targets))
            for lhs, targets in _probes(left, part, self_join)
        )
        if self_join:
            items = itertools.chain([same_key], items)
        results.extend(_run(items))
    return results


def _brute_join(hashes_a: np.ndarray, hashes_b: np.ndarray | None, radius: int) -> list[_Hits]:
    """Blocked all-pairs XOR-popcount: rows of ``hashes_a`` against long contiguous runs of ``hashes_b``."""
    self_join = hashes_b is None
    hb = hashes_a if hashes_b is None else hashes_b
    rows, cols = 64, 4096

    def work(r0: int) -> _Hits | None:
        a = hashes_a[r0 : r0 + rows]
        out_i, out_j, out_d = [], [], []
        # In the self join only columns after the row block's first row can pair with it.
        for c0 in range(r0 if self_join else 0, hb.size, cols):
            dist = np.bitwise_count(a[:, None] ^ hb[None, c0 : c0 + cols])
            close = dist <= radius
            if not close.any():
                continue
            flat = np.flatnonzero(close)
            k, l = np.divmod(flat, dist.shape[1])
            if self_join:
                keep = l + c0 > k + r0
                flat, k, l = flat[keep], k[keep], l[keep]
            out_i.append(k + r0)
            out_j.append(l + c0)
            out_d.append(dist.reshape(-1)[flat])
        if not out_i:
            return None
        return np.concatenate(out_i), np.concatenate(out_j), np.concatenate(out_d)

    return _run(lambda r0=r0: work(r0) for r0 in range(0, hashes_a.size, rows))


def _finish(results: list[_Hits], n_b: int, self_join: bool) -> _Hits:
    if not results:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.uint8)
    i = np.concatenate([r[0] for r in results]).astype(np.int64, copy=False)
    j = np.concatenate([r[1] for r in results]).astype(np.int64, copy=False)
    d = np.concatenate([r[2] for r in results]).astype(np.uint8, copy=False)
    if self_join:
        i, j = np.minimum(i, j), np.maximum(i, j)
    order = np.argsort(i * n_b + j, kind="stable")
    return i[order], j[order], d[order]


def _join(hashes_a: np.ndarray, hashes_b: np.ndarray | None, radius: int, parts: Sequence[Part] | None) -> list[_Hits]:
    if parts is None:
        return _brute_join(hashes_a, hashes_b, radius)
    return _mih_join(hashes_a, hashes_b, radius, parts)


def _resolve_plan(substrings: Any, n_left: int, n_right: int, radius: int, self_join: bool) -> tuple[Part, ...] | None:
    if substrings is None:
        return plan_layout(n_left, n_right, radius, self_join)
    # More than radius + 1 substrings would need negative thresholds.
    most = min(radius + 1, 64)
    if (
        isinstance(substrings, (bool, np.bool_))
        or not isinstance(substrings, (int, np.integer))
        or not 0 <= substrings <= most
    ):
        raise ValueError(
            f"`substrings` must be None (automatic), 0 (brute force) or an int in 1..{most} for radius {radius}, "
            f"got {substrings!r}"
        )
    if substrings == 0:
        return None
    parts = substring_parts(int(substrings), radius)
    if any(p.n_masks > MAX_MASKS for p in parts) or (substrings > 1 and any(p.bits > 32 for p in parts)):
        raise ValueError(
            f"`substrings`={substrings} with radius {radius} needs substrings over 32 bits or more than "
            f"{MAX_MASKS} neighbour masks per substring; use more substrings or None"
        )
    return parts


def hamming_pairs(
    hashes: np.ndarray, radius: int, *, substrings: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair of hashes within ``radius`` bits of each other (exact).

    Parameters
    ----------
    hashes : (N,) uint64 ndarray
        64-bit perceptual hashes. Any unsigned integer dtype is accepted and
        widened; signed or float arrays raise ``TypeError``.
    radius : int
        Largest Hamming distance reported, ``0 .. 64`` (inclusive).
    substrings : int, optional
        Force the search layout: ``0`` for blocked brute force, ``m`` for
        multi-index hashing with ``m`` substrings. The default picks the
        cheapest by a cost model; results are identical either way.

    Returns
    -------
    i : (P,) int64 ndarray
    j : (P,) int64 ndarray
        Positions in ``hashes`` with ``i < j``; pairs sorted by ``(i, j)``.
    distance : (P,) uint8 ndarray
        ``popcount(hashes[i] ^ hashes[j])``, at most ``radius``.

    Raises
    ------
    ValueError
        ``radius`` is not an int in 0..64, ``substrings`` is invalid, or
        ``hashes`` is not 1-D.
    TypeError
        ``hashes`` does not have an unsigned integer dtype.
    """
    radius = check_radius(radius)
    h = check_hashes("hashes", hashes)
    parts = _resolve_plan(substrings, h.size, h.size, radius, self_join=True)
    if h.size < 2:
        return _finish([], 1, True)
    return _finish(_join(h, None, radius, parts), h.size, self_join=True)


def hamming_query(
    index_hashes: np.ndarray, query_hashes: np.ndarray, radius: int, *, substrings: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (query, indexed hash) pair within ``radius`` bits (exact).

    The index is never compared with itself: the cost depends on
    ``len(query_hashes) * len(index_hashes)``, not on the index squared.

    Parameters
    ----------
    index_hashes : (N,) uint64 ndarray
        Hashes already known.
    query_hashes : (Q,) uint64 ndarray
        New hashes to look up.
    radius : int
        Largest Hamming distance reported, ``0 .. 64`` (inclusive).
    substrings : int, optional
        As in :func:`hamming_pairs`.

    Returns
    -------
    query : (P,) int64 ndarray
        Positions in ``query_hashes``.
    index : (P,) int64 ndarray
        Positions in ``index_hashes``; pairs sorted by ``(query, index)``.
    distance : (P,) uint8 ndarray

    Raises
    ------
    ValueError
        ``radius`` is not an int in 0..64, or an input is not 1-D.
    TypeError
        An input does not have an unsigned integer dtype.
    """
    radius = check_radius(radius)
    index = check_hashes("index_hashes", index_hashes)
    query = check_hashes("query_hashes", query_hashes)
    parts = _resolve_plan(substrings, query.size, index.size, radius, self_join=False)
    if index.size == 0 or query.size == 0:
        return _finish([], 1, False)
    return _finish(_join(query, index, radius, parts), index.size, self_join=False)
