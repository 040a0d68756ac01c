"""Duplicate pairs over the store, searched incrementally when the store allows.

Each component search (Hamming pairs of one hash within a radius, cosine pairs
of the embeddings above a similarity) caches its pairs in the store, in row
space, with the rows it covered. The next run reuses the cache for pairs among
unchanged images and only searches new-vs-old (query mode) and new-vs-new;
its result equals a full search over the same images. A change of radius or
similarity invalidates the component's cache (the search then runs in full, on
stored vectors, with no decoding). The search itself is cut into tiles
(:mod:`imgdedup.search.tiles`) that the flow runs as separate tasks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from imgdedup.config import Config
from imgdedup.search.cosine import pair_dots
from imgdedup.search.nearest import NeighbourCap, candidates, hash_distance
from imgdedup.search.tiles import (
    Component,
    Pairs,
    SearchPlan,
    merge_tiles,
    plan_search,
    search_tile,
)
from imgdedup.storage.locations import join
from imgdedup.storage.store import PositionRows, Store

#: Store arrays of the phash and dhash of each image as the embedder prepares it (hybrid's hashes).
TRIMMED_HASH_ARRAYS = ("trimmed_phash", "trimmed_dhash")
#: With verification, the most pairs of the hybrid rule one image keeps as candidates (its most similar).
RULE_PARTNERS = 10


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


def verifies(config: Config) -> bool:
    """Whether the run verifies its candidate pairs (compat runs reproduce imagededup: they do not)."""
    return config.verify and not config.compat


def search_component(store: Store, config: Config) -> Component:
    """The one search a run's method needs, with the store file that caches its pairs.

    hybrid: every hybrid pair has cosine >= the floor (the lowest of ``verify_floor`` and
    ``verify_near_floor`` when pairs are verified), so that is searched, keeping each image's
    nearest (:mod:`imgdedup.search.nearest`), and the few candidates are judged by hash
    afterwards (:func:`finish_pairs`).
    """
    if config.uses_embeddings:
        hybrid = config.method == "hybrid"
        similarity = (
            min(
                config.hybrid_floor,
                config.min_similarity,
                *((config.verify_floor, config.verify_near_floor) if verifies(config) else ()),
            )
            if hybrid
            else config.min_similarity
        )
        if hybrid and verifies(config):
            # the candidates are each image's nearest few: the search keeps only those (imgdedup.search.nearest)
            cap = NeighbourCap(
                RULE_PARTNERS,
                config.verify_neighbours,
                config.min_similarity,
                config.hybrid_floor,
                config.threshold,
                config.verify_near_floor,
                config.verify_near_bits,
            )
            cache = join(store.path, "pairs", f"cosine-s{similarity:.6f}-{cap.tag}.npz")
            return Component("cosine", "embeddings", similarity, str(cache), cap, TRIMMED_HASH_ARRAYS)
        return Component(
            "cosine", "embeddings", similarity, str(join(store.path, "pairs", f"cosine-s{similarity:.6f}.npz"))
        )
    array = config.hash_array(config.hash_methods[0])
    return Component(
        "hamming", array, config.threshold, str(join(store.path, "pairs", f"{array}-r{config.threshold}.npz"))
    )


def plan_pairs(store: Store, rows: np.ndarray, new_mask: np.ndarray, config: Config, workers: int = 1) -> SearchPlan:
    """The run's search cut into tiles of at most ``config.search_block`` images a side, and at least
    as many as ``workers`` (see :func:`~imgdedup.search.tiles.worker_block`)."""
    return plan_search(search_component(store, config), rows, new_mask, config.search_block, workers)


def trimmed_distance(store: Store, rows: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """The smaller of the trimmed phash and dhash distances of pairs ``(i, j)`` (uint8)."""
    hashes = tuple(store.read_rows(name, rows) for name in TRIMMED_HASH_ARRAYS)
    return hash_distance(hashes, i, hashes, j)


def finish_pairs(store: Store, rows: np.ndarray, config: Config, found: Pairs) -> PairSet:
    """The run's duplicate pairs from its search's pairs ``found`` (see :func:`search_pairs`).

    ``hybrid``: a pair counts when its cosine similarity is at least
    ``min_similarity``, or when its similarity is at least ``hybrid_floor`` and
    the smaller of its phash and dhash distances, both taken on the image as
    the embedder prepares it (margins trimmed, grey), is within ``threshold``.
    With ``verify`` a pair with similarity at least ``verify_floor`` is a candidate
    too when it is among the ``verify_neighbours`` most similar pairs of either image, and the rule's pairs are capped at :data:`RULE_PARTNERS` an image the same
    way (the cluster stage verifies each, see :mod:`imgdedup.search.verify`, and
    checks the rest of a group against its keeper).
    """
    if config.method == "hybrid":
        ci, cj, cs = found
        near = trimmed_distance(store, rows, ci, cj)
        component = search_component(store, config)
        if component.cap is not None:
            keep = candidates(ci, cj, cs, near, component.cap, config.verify_floor)
        else:
            keep = (cs >= config.min_similarity) | ((near <= config.threshold) & (cs >= config.hybrid_floor))
        i, j, distance = ci[keep], cj[keep], near[keep]
    else:
        i, j, _ = found
        hashes = store.read_rows(config.hash_array(config.hash_methods[0]), rows)
        distance = np.bitwise_count(hashes[i] ^ hashes[j]).astype(np.uint8)
    if config.uses_embeddings:
        vectors = PositionRows(store, "embeddings", rows, np.concatenate([i, j]))
        similarity = pair_dots(vectors, i, vectors, j)
    else:
        similarity = np.full(len(i), np.nan, dtype=np.float32)
    return PairSet(i=i, j=j, distance=distance, similarity=similarity)


def empty_pairs() -> PairSet:
    empty = np.zeros(0, np.int64)
    return PairSet(i=empty, j=empty, distance=np.zeros(0, np.uint8), similarity=np.zeros(0, np.float32))


def search_pairs(store: Store, rows: np.ndarray, new_mask: np.ndarray, config: Config) -> PairSet:
    """The run's duplicate pairs by its method, with distance and similarity for each, in this process.

    ``hybrid``: a pair counts when its cosine similarity is at least
    ``min_similarity``, or when its similarity is at least ``hybrid_floor`` and
    the smaller of its phash and dhash distances, both taken on the image as
    the embedder prepares it (margins trimmed, grey), is within ``threshold``:
    the embedding vetoes hash collisions, the hashes rescue copies the
    embedding scores lower. Its ``distance`` is that smaller distance.

    The flow runs the same steps as tasks: :func:`plan_pairs`, one
    :func:`~imgdedup.search.tiles.search_tile` per tile, then
    :func:`~imgdedup.search.tiles.merge_tiles` and :func:`finish_pairs`.
    """
    if len(rows) == 0:
        return empty_pairs()
    plan = plan_pairs(store, rows, new_mask, config)
    found = [search_tile(store, plan, number) for number in range(len(plan.tiles))]
    return finish_pairs(store, rows, config, merge_tiles(plan, found))
