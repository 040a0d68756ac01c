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

    hybrid: every hybrid pair has cosine >= the floor (``verify_floor`` when pairs are
    verified), so that is searched and the few candidates are judged by hash
    afterwards (:func:`finish_pairs`).
    """
    if config.uses_embeddings:
        similarity = (
            min(config.hybrid_floor, config.min_similarity, *((config.verify_floor,) if verifies(config) else ()))
            if config.method == "hybrid"
            else config.min_similarity
        )
        return Component(
            "cosine", "embeddings", similarity, str(join(store.path, "pairs", f"cosine-s{similarity:.6f}.npz"))
        )
    array = config.hash_array(config.hash_methods[0])
    return Component(
        "hamming", array, config.threshold, str(join(store.path, "pairs", f"{array}-r{config.threshold}.npz"))
    )


def plan_pairs(store: Store, rows: np.ndarray, new_mask: np.ndarray, config: Config) -> SearchPlan:
    """The run's search cut into tiles of at most ``config.search_block`` images a side."""
    return plan_search(search_component(store, config), rows, new_mask, config.search_block)


def trimmed_distance(store: Store, rows: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """The smaller of the trimmed phash and dhash distances of pairs ``(i, j)`` (uint8)."""
    phash, dhash = (store.read_rows(name, rows) for name in TRIMMED_HASH_ARRAYS)
    return np.minimum(np.bitwise_count(phash[i] ^ phash[j]), np.bitwise_count(dhash[i] ^ dhash[j])).astype(np.uint8)


#: With verification, the most pairs of the hybrid rule one image keeps as candidates (its most similar).
RULE_PARTNERS = 10


def nearest_of(mask: np.ndarray, i: np.ndarray, j: np.ndarray, similarity: np.ndarray, k: int) -> np.ndarray:
    """Keep-mask (over all pairs) of the pairs in ``mask`` among the ``k`` most similar of either
    image, ranked among the pairs in ``mask`` only (:func:`nearest_partners`)."""
    keep = np.zeros(len(i), dtype=bool)
    chosen = np.flatnonzero(mask)
    keep[chosen[nearest_partners(i[chosen], j[chosen], similarity[chosen], k)]] = True
    return keep


def nearest_partners(i: np.ndarray, j: np.ndarray, similarity: np.ndarray, k: int) -> np.ndarray:
    """Keep-mask of the pairs that are among the ``k`` most similar of either of their images.

    Ties go by the pair's position, so the mask depends on the pairs alone.

    Parameters
    ----------
    i, j : (P,) int ndarray
    similarity : (P,) float ndarray
    k : int, at least 1

    Returns
    -------
    (P,) bool ndarray
    """
    if k < 1:
        raise ValueError(f"`k` must be at least 1, got {k!r}")
    keep = np.zeros(len(i), dtype=bool)
    if not len(i):
        return keep
    pair = np.arange(len(i))
    # every pair once under each of its two images, ranked within each image by similarity
    image = np.concatenate([i, j])
    pairs = np.concatenate([pair, pair])
    scores = np.concatenate([similarity, similarity])
    order = np.lexsort((pairs, -scores, image))
    sorted_image = image[order]
    start = np.flatnonzero(np.r_[True, sorted_image[1:] != sorted_image[:-1]])
    rank = np.arange(len(order)) - np.repeat(start, np.diff(np.r_[start, len(order)]))
    keep[pairs[order[rank < k]]] = True
    return keep


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
    primary = config.hash_methods[0]
    if config.method == "hybrid":
        ci, cj, cs = found
        near = trimmed_distance(store, rows, ci, cj)
        keep = (cs >= config.min_similarity) | ((near <= config.threshold) & (cs >= config.hybrid_floor))
        if verifies(config):
            # verification confirms each pair on its own evidence, so the candidates reach further
            # (crops), but a pair past the rule only when it is one of its image's
            # `verify_neighbours` most similar of all (more let look-alikes in: tuning-half
            # precision 0.983 with every such pair, 0.994 with 3);
            # the rule's own pairs are capped too, at RULE_PARTNERS an image: the cluster stage
            # checks the rest of a group against its keeper, and dense neighbourhoods (smooth
            # generated scenes) no longer flood it (221k candidate pairs of 10k scenes)
            wide = ~keep & (cs >= config.verify_floor) & nearest_partners(ci, cj, cs, config.verify_neighbours)
            keep &= nearest_of(keep, ci, cj, cs, RULE_PARTNERS)
            keep |= wide
        i, j, distance = ci[keep], cj[keep], near[keep]
    else:
        i, j, _ = found
        hashes = store.read_rows(config.hash_array(primary), rows)
        distance = np.bitwise_count(hashes[i] ^ hashes[j]).astype(np.uint8)
    if config.uses_embeddings:
        vectors = PositionRows(store, "embeddings", rows, np.concatenate([i, j]))
        similarity = np.einsum("ij,ij->i", vectors[i], vectors[j]).astype(np.float32)
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
