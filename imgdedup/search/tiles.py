"""The index search cut into tiles: partitions of the images, searched pairwise, each reading only its rows.

A run's search (Hamming pairs of one hash within a radius, or cosine pairs of
the embeddings above a similarity) is an all-pairs join over ``N`` images, or,
when the store's cache of last run's pairs can be reused, a join of the new
images with themselves and with the old ones. Either join is cut into
partitions of at most ``block`` images and one *tile* per pair of partitions:

- a partition with itself: :func:`~imgdedup.search.hamming.hamming_pairs` (or
  :func:`~imgdedup.search.cosine.cosine_pairs`) over its rows;
- two partitions: :func:`~imgdedup.search.hamming.hamming_query` (or
  :func:`~imgdedup.search.cosine.cosine_query`) of one against the other.

Every pair ``i < j`` of the join lies in exactly one tile, and each tile's
search is exact, so the union of the tiles is the single search's result,
pair for pair and value for value (a float32 dot product is the same whichever
tile computes it). A tile reads only the store rows of its two partitions
(their Zarr chunks), so tiles run as separate Dask tasks on any worker.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from imgdedup.search.cosine import cosine_pairs, cosine_query
from imgdedup.search.hamming import hamming_pairs, hamming_query
from imgdedup.search.nearest import NeighbourCap, capped_cross, capped_pairs
from imgdedup.storage import locations
from imgdedup.storage.locations import Location
from imgdedup.storage.store import Store

Pairs = tuple[np.ndarray, np.ndarray, np.ndarray]

#: Images per partition: a tile of two holds 2 x 200k hashes (3 MB) or 2 x 200k x 320 float32 (0.5 GB).
DEFAULT_BLOCK = 200_000
#: Smallest partition cut only to give every worker a tile: below it a search takes seconds, and
#: more tiles cost more in reading and merging than the workers save.
MIN_SPLIT_BLOCK = 10_000
KINDS = ("hamming", "cosine")
#: Which list a tile's left side comes from: the joined images, or (incremental runs) the old ones.
_JOINED, _OLD = 0, 1


@dataclass(frozen=True)
class Component:
    """One search: ``hamming`` pairs of store array ``array`` within ``parameter`` bits, or
    ``cosine`` pairs of its rows with similarity at least ``parameter``; its pairs are cached at ``cache``.

    ``cap`` (cosine only): keep just the pairs that may be among each image's nearest
    (:mod:`imgdedup.search.nearest`), reading the store arrays ``hash_arrays`` for its rule.
    """

    kind: str
    array: str
    parameter: float
    cache: str
    cap: NeighbourCap | None = None
    hash_arrays: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"`kind` must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.cap is not None and (self.kind != "cosine" or len(self.hash_arrays) != 2):
            raise ValueError("`cap` needs a cosine component and two `hash_arrays`")

    def values(self, store: Store, rows: np.ndarray):
        """What the search reads of ``rows``: the array's values (and, capped, the rule's hashes)."""
        values = store.read_rows(self.array, rows)
        values = values.astype(np.float32) if self.kind == "cosine" else values
        if self.cap is None:
            return values
        return values, tuple(store.read_rows(name, rows) for name in self.hash_arrays)

    def pairs(self, values) -> Pairs:
        if self.cap is not None:
            return capped_pairs(*values, self.parameter, self.cap)
        if self.kind == "cosine":
            return cosine_pairs(values, self.parameter)
        return hamming_pairs(values, int(self.parameter))

    def query(self, index, query) -> Pairs:
        """``(query position, index position, value)`` of every pair across the two sets."""
        if self.cap is not None:
            return capped_cross(*index, *query, self.parameter, self.cap)
        if self.kind == "cosine":
            return cosine_query(index, query, self.parameter)
        return hamming_query(index, query, int(self.parameter))

    @property
    def value_dtype(self) -> np.dtype:
        return np.dtype(np.float32 if self.kind == "cosine" else np.uint8)


@dataclass
class SearchPlan:
    """A search cut into tiles.

    ``rows`` : (N,) int64, the store row of each image. ``joined`` : positions
    joined with themselves (all images, or the new ones); ``old`` : positions
    whose cached pairs are reused, joined with ``joined`` (empty for a full
    search). ``kept_i, kept_j, kept_value`` : the reused cached pairs, image
    positions. ``tiles`` : (T, 5) int64 rows ``(left list, a0, a1, b0, b1)``,
    the left side ``joined[a0:a1]`` or ``old[a0:a1]``, the right side
    ``joined[b0:b1]``; a tile whose sides are the same partition is a self join.
    """

    component: Component
    rows: np.ndarray
    joined: np.ndarray
    old: np.ndarray
    kept_i: np.ndarray
    kept_j: np.ndarray
    kept_value: np.ndarray
    tiles: np.ndarray = field(default_factory=lambda: np.zeros((0, 5), np.int64))

    def save(self, path: Location) -> Location:
        c = self.component
        return locations.save_npz(
            path,
            kind=np.array(c.kind),
            array=np.array(c.array),
            parameter=np.array(c.parameter, np.float64),
            cache=np.array(c.cache),
            cap=c.cap.to_array() if c.cap is not None else np.zeros(0),
            hash_arrays=np.array(c.hash_arrays, dtype=str),
            rows=self.rows,
            joined=self.joined,
            old=self.old,
            kept_i=self.kept_i,
            kept_j=self.kept_j,
            kept_value=self.kept_value,
            tiles=self.tiles,
        )

    @classmethod
    def load(cls, path: Location) -> SearchPlan:
        data = locations.load_npz(path)
        component = Component(
            str(data["kind"]),
            str(data["array"]),
            float(data["parameter"]),
            str(data["cache"]),
            NeighbourCap.from_array(data.get("cap", np.zeros(0))),
            tuple(str(name) for name in data.get("hash_arrays", ())),
        )
        return cls(
            component,
            data["rows"],
            data["joined"],
            data["old"],
            data["kept_i"],
            data["kept_j"],
            data["kept_value"],
            data["tiles"],
        )


def partition_bounds(n: int, block: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of near-equal partitions of ``n`` items, each at most ``block``."""
    if isinstance(block, bool) or not isinstance(block, (int, np.integer)) or block < 1:
        raise ValueError(f"`block` must be a positive int, got {block!r}")
    if n <= 0:
        return []
    parts = -(-n // block)
    edges = np.linspace(0, n, parts + 1).round().astype(np.int64)
    return list(zip(edges[:-1].tolist(), edges[1:].tolist()))


def worker_block(n: int, block: int, workers: int) -> int:
    """The partition size for a join of ``n`` images on ``workers`` workers: at most ``block``, and
    small enough that there are at least as many tiles as workers (``P`` partitions make
    ``P (P + 1) / 2`` tiles), but not below :data:`MIN_SPLIT_BLOCK`.

    With one tile a 100k-image cosine search ran on one core for minutes while the other
    waited; two partitions make three tiles (two self joins of a quarter of the work each, one
    cross join of half), which two workers share evenly. The pairs do not depend on the cut.
    """
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ValueError(f"`workers` must be a positive int, got {workers!r}")
    parts = 1
    while parts * (parts + 1) // 2 < workers:
        parts += 1
    return max(1, min(block, max(MIN_SPLIT_BLOCK, -(-n // parts))))


def tile_table(n_joined: int, n_old: int, block: int) -> np.ndarray:
    """The tiles of a join: every pair of ``joined`` partitions (``a <= b``), and every ``old`` x ``joined`` one."""
    joined = partition_bounds(n_joined, block)
    tiles = [(_JOINED, *joined[a], *joined[b]) for a in range(len(joined)) for b in range(a, len(joined))]
    tiles += [(_OLD, *left, *right) for left in partition_bounds(n_old, block) for right in joined]
    return np.asarray(tiles, dtype=np.int64).reshape(-1, 5)


def plan_search(
    component: Component, rows: np.ndarray, new_mask: np.ndarray, block: int = DEFAULT_BLOCK, workers: int = 1
) -> SearchPlan:
    """Plan the search of ``rows`` (``new_mask``: images not in the last run), reusing the cache when it
    covers the old ones, in partitions of at most ``block`` images, cut smaller for ``workers`` (:func:`worker_block`)."""
    rows = np.asarray(rows, dtype=np.int64)
    new_mask = np.asarray(new_mask, dtype=bool)
    if new_mask.shape != rows.shape:
        raise ValueError(f"`new_mask` must have the shape of `rows` {rows.shape}, got {new_mask.shape}")
    everything = np.arange(len(rows), dtype=np.int64)
    empty = np.zeros(0, np.int64)
    plan = SearchPlan(component, rows, everything, empty, empty, empty, np.zeros(0, component.value_dtype))
    cache = locations.as_location(component.cache)
    if locations.exists(cache):
        data = locations.load_npz(cache, ("rows", "row_i", "row_j", "value"))
        covered, row_i, row_j, value = data["rows"], data["row_i"], data["row_j"], data["value"]
        if np.isin(rows[~new_mask], covered).all():
            if component.cap is not None:
                # a capped cache holds each image's nearest only: an image that lost one of its
                # cached pairs to a removed image may need a pair the cache dropped, so it is searched again
                removed = np.setdiff1d(covered, rows)
                lost = np.union1d(row_j[np.isin(row_i, removed)], row_i[np.isin(row_j, removed)])
                new_mask = new_mask | np.isin(rows, lost)
            old = np.flatnonzero(~new_mask)
            old_rows = rows[old]
            keep = np.isin(row_i, old_rows) & np.isin(row_j, old_rows)
            ki, kj = _to_positions(rows, row_i[keep], row_j[keep])
            plan = SearchPlan(
                component, rows, np.flatnonzero(new_mask), old, ki, kj, value[keep].astype(component.value_dtype)
            )
    plan.tiles = tile_table(
        len(plan.joined), len(plan.old), worker_block(max(len(plan.joined), len(plan.old)), block, workers)
    )
    return plan


def search_tile(store: Store, plan: SearchPlan, number: int) -> Pairs:
    """The pairs of tile ``number``: ``(i, j, value)`` in image positions (not yet ordered)."""
    if not 0 <= number < len(plan.tiles):
        raise ValueError(f"`number` must be a tile of the plan (0..{len(plan.tiles) - 1}), got {number!r}")
    side, a0, a1, b0, b1 = plan.tiles[number].tolist()
    right = plan.joined[b0:b1]
    right_values = plan.component.values(store, plan.rows[right])
    if side == _JOINED and (a0, a1) == (b0, b1):
        i, j, value = plan.component.pairs(right_values)
        return right[i], right[j], value
    left = (plan.joined if side == _JOINED else plan.old)[a0:a1]
    q, k, value = plan.component.query(plan.component.values(store, plan.rows[left]), right_values)
    return left[k], right[q], value


def merge_tiles(plan: SearchPlan, found: list[Pairs]) -> Pairs:
    """Every pair of the search, ``i < j`` sorted, from the reused pairs and every tile's; saves the cache."""
    dtype = plan.component.value_dtype
    i = np.concatenate([plan.kept_i, *(f[0] for f in found)]).astype(np.int64)
    j = np.concatenate([plan.kept_j, *(f[1] for f in found)]).astype(np.int64)
    value = np.concatenate([plan.kept_value, *(np.asarray(f[2]).astype(dtype) for f in found)]).astype(dtype)
    a, b = np.minimum(i, j), np.maximum(i, j)
    order = np.lexsort((b, a))
    a, b, value = a[order], b[order], value[order]
    rows = plan.rows
    locations.save_npz(
        locations.as_location(plan.component.cache), rows=rows, row_i=rows[a], row_j=rows[b], value=value
    )
    return a, b, value


def save_tile(path: Location, found: Pairs) -> Location:
    return locations.save_npz(path, i=found[0], j=found[1], value=found[2])


def load_tile(path: Location) -> Pairs:
    data = locations.load_npz(locations.as_location(path), ("i", "j", "value"))
    return data["i"], data["j"], data["value"]


def _to_positions(rows: np.ndarray, row_i: np.ndarray, row_j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(rows, kind="stable")
    sorted_rows = rows[order]
    return order[np.searchsorted(sorted_rows, row_i)], order[np.searchsorted(sorted_rows, row_j)]
