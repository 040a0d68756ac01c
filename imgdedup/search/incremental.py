"""Duplicate pairs over the store, searched incrementally when the store allows.

Each component search (Hamming pairs of one hash within a radius, cosine pairs
of the embeddings above a similarity) caches its pairs in the store, in row
space, with the rows it covered. The next run reuses the cache for pairs among
unchanged images and only searches new-vs-old (query mode) and new-vs-new;
its result equals a full search over the same images. A change of radius or
similarity invalidates the component's cache (the search then runs in full, on
stored vectors, with no decoding).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from imgdedup.storage import locations
from imgdedup.config import Config
from imgdedup.search.hamming import hamming_pairs, hamming_query
from imgdedup.storage.locations import Location, join
from imgdedup.search.cosine import cosine_pairs, cosine_query
from imgdedup.storage.store import PositionRows, Store

Pairs = tuple[np.ndarray, np.ndarray, np.ndarray]

#: Store arrays of the phash and dhash of each image as the embedder prepares it (hybrid's hashes).
TRIMMED_HASH_ARRAYS = ("trimmed_phash", "trimmed_dhash")


@dataclass
class PairSet:
    """Duplicate pairs in image-index space, ``i < j``, sorted.

    ``distance`` is the Hamming distance of the run's hash; ``similarity`` the
    cosine similarity of the embeddings (NaN when the run has none).
    """

    i: np.ndarray
    j: np.ndarray
    distance: np.ndarray
    similarity: np.ndarray


def _to_index_space(rows: np.ndarray, row_i: np.ndarray, row_j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(rows, kind="stable")
    sorted_rows = rows[order]
    return order[np.searchsorted(sorted_rows, row_i)], order[np.searchsorted(sorted_rows, row_j)]


def _normalise(i: np.ndarray, j: np.ndarray, value: np.ndarray) -> Pairs:
    a, b = np.minimum(i, j), np.maximum(i, j)
    order = np.lexsort((b, a))
    return a[order].astype(np.int64), b[order].astype(np.int64), value[order]


def cached_search(
    cache: Location,
    rows: np.ndarray,
    new_mask: np.ndarray,
    values: np.ndarray,
    all_pairs: Callable[[np.ndarray], Pairs],
    query: Callable[[np.ndarray, np.ndarray], Pairs],
) -> Pairs:
    """All pairs among ``values`` (rows aligned with ``rows``), reusing ``cache`` for unchanged rows."""
    old = np.flatnonzero(~new_mask)
    new = np.flatnonzero(new_mask)
    result: Pairs | None = None
    if locations.exists(cache):
        data = locations.load_npz(cache, ("rows", "row_i", "row_j", "value"))
        covered, row_i, row_j, cached_value = data["rows"], data["row_i"], data["row_j"], data["value"]
        old_rows = rows[old]
        if np.isin(old_rows, covered).all():
            keep = np.isin(row_i, old_rows) & np.isin(row_j, old_rows)
            ci, cj = _to_index_space(rows, row_i[keep], row_j[keep])
            q, k, qv = query(values[old], values[new])
            ni, nj, nv = all_pairs(values[new])
            result = _normalise(
                np.concatenate([ci, old[k], new[ni]]),
                np.concatenate([cj, new[q], new[nj]]),
                np.concatenate([cached_value[keep], qv.astype(cached_value.dtype), nv.astype(cached_value.dtype)]),
            )
    if result is None:
        result = all_pairs(values)
    i, j, value = result
    locations.save_npz(cache, rows=rows, row_i=rows[i], row_j=rows[j], value=value)
    return result


def hash_search(store: Store, array: str, radius: int, rows: np.ndarray, new_mask: np.ndarray) -> Pairs:
    hashes = store.read_rows(array, rows)
    return cached_search(
        join(store.path, "pairs", f"{array}-r{radius}.npz"), rows, new_mask, hashes,
        lambda v: hamming_pairs(v, radius), lambda old, new: hamming_query(old, new, radius),
    )


def cosine_search(store: Store, min_similarity: float, rows: np.ndarray, new_mask: np.ndarray) -> Pairs:
    embeddings = store.read_rows("embeddings", rows).astype(np.float32)
    return cached_search(
        join(store.path, "pairs", f"cosine-s{min_similarity:.6f}.npz"), rows, new_mask, embeddings,
        lambda v: cosine_pairs(v, min_similarity), lambda old, new: cosine_query(old, new, min_similarity),
    )


def trimmed_distance(store: Store, rows: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """The smaller of the trimmed phash and dhash distances of pairs ``(i, j)`` (uint8)."""
    phash, dhash = (store.read_rows(name, rows) for name in TRIMMED_HASH_ARRAYS)
    return np.minimum(np.bitwise_count(phash[i] ^ phash[j]), np.bitwise_count(dhash[i] ^ dhash[j])).astype(np.uint8)


def search_pairs(store: Store, rows: np.ndarray, new_mask: np.ndarray, config: Config) -> PairSet:
    """The run's duplicate pairs by its method, with distance and similarity for each.

    ``hybrid``: a pair counts when its cosine similarity is at least
    ``min_similarity``, or when its similarity is at least ``hybrid_floor`` and
    the smaller of its phash and dhash distances, both taken on the image as
    the embedder prepares it (margins trimmed, grey), is within ``threshold``:
    the embedding vetoes hash collisions, the hashes rescue copies the
    embedding scores lower. Its ``distance`` is that smaller distance. With
    ``verify`` every pair with similarity at least ``hybrid_floor`` is a candidate
    (the cluster stage verifies each, see :mod:`imgdedup.search.verify`).
    """
    n = len(rows)
    primary = config.hash_methods[0]
    if n == 0:
        empty = np.zeros(0, np.int64)
        return PairSet(i=empty, j=empty, distance=np.zeros(0, np.uint8), similarity=np.zeros(0, np.float32))
    if config.method == "hybrid":
        # Every hybrid pair has cosine >= the floor: search that, then judge the few candidates by hash.
        floor = min(config.hybrid_floor, config.min_similarity)
        ci, cj, cs = cosine_search(store, floor, rows, new_mask)
        near = trimmed_distance(store, rows, ci, cj)
        keep = (cs >= config.min_similarity) | ((near <= config.threshold) & (cs >= config.hybrid_floor))
        if config.verify and not config.compat:
            # verification confirms each pair on its own evidence, so the candidates reach further: crops
            keep |= cs >= config.hybrid_floor
        i, j, distance = ci[keep], cj[keep], near[keep]
    else:
        if config.method == "cnn":
            i, j, _ = cosine_search(store, config.min_similarity, rows, new_mask)
        else:
            i, j, _ = hash_search(store, config.hash_array(primary), config.threshold, rows, new_mask)
        hashes = store.read_rows(config.hash_array(primary), rows)
        distance = np.bitwise_count(hashes[i] ^ hashes[j]).astype(np.uint8)
    if config.uses_embeddings:
        vectors = PositionRows(store, "embeddings", rows, np.concatenate([i, j]))
        similarity = np.einsum("ij,ij->i", vectors[i], vectors[j]).astype(np.float32)
    else:
        similarity = np.full(len(i), np.nan, dtype=np.float32)
    return PairSet(i=i, j=j, distance=distance, similarity=similarity)
