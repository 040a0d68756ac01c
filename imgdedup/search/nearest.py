"""Cosine search that keeps each image's nearest candidates only: hybrid's search when pairs are verified.

With verification, hybrid's candidates are few an image (see
:func:`imgdedup.search.incremental.finish_pairs`): of the pairs with cosine >= the
search floor, those among the ``neighbours`` most similar of either image, and of
the rule's pairs (cosine >= ``min_similarity``, or >= ``hybrid_floor`` with the
smaller trimmed phash/dhash distance within ``threshold``) those among the
``rule_partners`` most similar of either image. A plain threshold search keeps
every pair above the floor first: on images the embedding scores alike (smooth
generated scenes, bursts of photographs) that is most of the ``N**2 / 2`` pairs
(4.3 GB at 10k images, far more at 100k).

This search keeps, for each row of a block of rows, only what can still be among
those nearest: per row the ``k``-th largest score among its pairs (and among its
rule pairs) is found with :func:`numpy.partition`, and the pairs at or above it
are kept, ties included. A pair among an image's ``k`` nearest overall is among
its ``k`` nearest in any part of the search, so the union over tiles holds every
pair the final selection can choose, and the final selection on it equals the
selection on every pair (tests compare them; :func:`finish_pairs` makes it).

Scores from the block's matrix product may differ from the per-pair float32 dot
product in the last bits, so every comparison takes a margin (a pair whose
threshold test is uncertain counts as a candidate but not towards the ``k``-th
score) and the kept pairs are scored again one dot product each, as
:mod:`imgdedup.search.cosine` does.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass

import numpy as np

from imgdedup.search.cosine import FILTER_MARGIN, _check, _check_threshold, pair_dots

#: Bytes of block scores held at once (one float32 block; a few masks of its size come with it).
BLOCK_BYTES = 64 * 2**20
Hashes = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class NeighbourCap:
    """What a capped search keeps: the ``neighbours`` nearest pairs and the ``rule_partners``
    nearest rule pairs of each image (the rule: cosine >= ``min_similarity``, or cosine >=
    ``hybrid_floor`` and hash distance <= ``threshold``, or cosine >= ``near_floor`` and hash
    distance <= ``near_bits``; ``near_bits`` -1: no such third part)."""

    rule_partners: int
    neighbours: int
    min_similarity: float
    hybrid_floor: float
    threshold: int
    near_floor: float = 1.0
    near_bits: int = -1

    def __post_init__(self) -> None:
        for name in ("rule_partners", "neighbours"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"`{name}` must be a positive int, got {value!r}")
        _check_threshold(self.min_similarity)
        _check_threshold(self.hybrid_floor)
        _check_threshold(self.near_floor)

    def rule(self, similarity: np.ndarray, distance: np.ndarray, margin: float = 0.0) -> np.ndarray:
        """Whether pairs of cosine ``similarity`` and hash ``distance`` pass the rule, every
        cosine threshold moved by ``margin``."""
        return (
            (similarity >= self.min_similarity + margin)
            | ((similarity >= self.hybrid_floor + margin) & (distance <= self.threshold))
            | ((similarity >= self.near_floor + margin) & (distance <= self.near_bits))
        )

    @property
    def tag(self) -> str:
        """Names the cap in a cache file: a change of any field is another cache."""
        near = f"-n{self.near_floor:.6f}-b{self.near_bits}" if self.near_bits >= 0 else ""
        return (
            f"k{self.rule_partners}-{self.neighbours}-m{self.min_similarity:.6f}"
            f"-f{self.hybrid_floor:.6f}-t{self.threshold}{near}"
        )

    def to_array(self) -> np.ndarray:
        return np.array(astuple(self), dtype=np.float64)

    @classmethod
    def from_array(cls, array: np.ndarray) -> NeighbourCap | None:
        if array.size == 0:
            return None
        k_rule, k_all, min_similarity, hybrid_floor, threshold, *near = array.tolist()
        near_floor, near_bits = near or (1.0, -1)  # plans saved before the near rule
        return cls(
            int(k_rule),
            int(k_all),
            float(min_similarity),
            float(hybrid_floor),
            int(threshold),
            float(near_floor),
            int(near_bits),
        )


def hash_distance(left: Hashes, i: np.ndarray, right: Hashes, j: np.ndarray) -> np.ndarray:
    """The rule's hash distance of pairs ``(left[i], right[j])``: the smaller of the two hashes'
    (trimmed phash, trimmed dhash) Hamming distances, uint8."""
    return np.minimum(np.bitwise_count(left[0][i] ^ right[0][j]), np.bitwise_count(left[1][i] ^ right[1][j])).astype(
        np.uint8
    )


def _kth_largest(scores: np.ndarray, k: int) -> np.ndarray:
    """Per row, the ``k``-th largest value (``-inf`` where a row has fewer than ``k`` finite ones)."""
    width = scores.shape[1]
    if k > width:
        return np.full(len(scores), -np.inf, np.float32)
    return np.partition(scores, width - k, axis=1)[:, width - k]


def _nearest_in_block(
    scores: np.ndarray, near: "callable", floor: float, cap: NeighbourCap, eps: float
) -> tuple[np.ndarray, np.ndarray]:
    """``(row, column)`` of the block's pairs that may be among their row's nearest (see the module)."""
    r, c = np.nonzero(scores >= floor - eps)
    if not len(r):
        return r, c
    s = scores[r, c]
    distance = near(r, c)
    sure_rule = cap.rule(s, distance, eps) & (s >= floor + eps)
    maybe_rule = cap.rule(s, distance, -eps)
    ranked = np.full(scores.shape, -np.inf, np.float32)
    sure = s >= floor + eps
    ranked[r[sure], c[sure]] = s[sure]
    kth_all = _kth_largest(ranked, cap.neighbours)
    ranked.fill(-np.inf)
    ranked[r[sure_rule], c[sure_rule]] = s[sure_rule]
    kth_rule = _kth_largest(ranked, cap.rule_partners)
    keep = (s >= kth_all[r] - eps) | (maybe_rule & (s >= kth_rule[r] - eps))
    return r[keep], c[keep]


def capped_query(
    index: np.ndarray,
    index_hashes: Hashes,
    query: np.ndarray,
    query_hashes: Hashes,
    floor: float,
    cap: NeighbourCap,
    same: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(query, index, similarity)`` of each query row's pairs that may be among its nearest.

    ``same``: query and index are one set (a pair of a row with itself is not a pair).
    Scores are float32 dot products, each pair's own; only pairs >= ``floor`` are returned.
    """
    floor = _check_threshold(floor)
    index, query = _check(index, "index"), _check(query, "query")
    if len(index) == 0 or len(query) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    max_norm_sq = 1.01 * max(float(np.einsum("ij,ij->i", x, x).max()) for x in (index, query))
    eps = 2 * FILTER_MARGIN["float32"] * max(max_norm_sq, 1.0)
    step = int(max(1, min(4096, BLOCK_BYTES // (4 * len(index)))))
    out_q, out_k = [], []
    for start in range(0, len(query), step):
        stop = min(start + step, len(query))
        scores = query[start:stop] @ index.T
        if same:
            scores[np.arange(stop - start), np.arange(start, stop)] = -np.inf

        def near(r, c, start=start):
            return hash_distance(query_hashes, r + start, index_hashes, c)

        r, c = _nearest_in_block(scores, near, floor, cap, eps)
        out_q.append(r + start)
        out_k.append(c)
    q, k = np.concatenate(out_q).astype(np.int64), np.concatenate(out_k).astype(np.int64)
    s = pair_dots(query, q, index, k)
    ok = s >= floor
    return q[ok], k[ok], s[ok]


def capped_pairs(
    embeddings: np.ndarray, hashes: Hashes, floor: float, cap: NeighbourCap
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs ``i < j`` of one set that may be among the nearest of ``i`` or of ``j``, sorted."""
    q, k, s = capped_query(embeddings, hashes, embeddings, hashes, floor, cap, same=True)
    return _unique(np.minimum(q, k), np.maximum(q, k), s)


def capped_cross(
    left: np.ndarray, left_hashes: Hashes, right: np.ndarray, right_hashes: Hashes, floor: float, cap: NeighbourCap
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(right, left, similarity)`` of the pairs across two sets that may be among the nearest of either side."""
    q, k, s = capped_query(left, left_hashes, right, right_hashes, floor, cap)
    k2, q2, s2 = capped_query(right, right_hashes, left, left_hashes, floor, cap)
    return _unique(np.concatenate([q, q2]), np.concatenate([k, k2]), np.concatenate([s, s2]))


def _unique(a: np.ndarray, b: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each ``(a, b)`` once (both directions found it with the same dot product), sorted by (a, b)."""
    order = np.lexsort((b, a))
    a, b, s = a[order], b[order], s[order]
    first = np.r_[True, (a[1:] != a[:-1]) | (b[1:] != b[:-1])] if len(a) else np.zeros(0, bool)
    return a[first], b[first], s[first]


# --- the final selection, on the merged pairs ----------------------------------------


def candidates(
    i: np.ndarray, j: np.ndarray, similarity: np.ndarray, distance: np.ndarray, cap: NeighbourCap, verify_floor: float
) -> np.ndarray:
    """Keep-mask of hybrid's candidate pairs when they are verified, over pairs ``(i, j)`` with
    their cosine ``similarity`` and hash ``distance``.

    The rule's pairs (see :class:`NeighbourCap`) among the ``rule_partners`` most similar rule
    pairs of either image, and the pairs with similarity >= ``verify_floor`` among the
    ``neighbours`` most similar pairs of all of either image. Verification confirms each pair on
    its own evidence, so the candidates reach past the rule (crops, and with ``near_bits`` the
    pairs whose hashes are nearly equal though the embedding scores them lower: blurred sprites,
    JPEG copies of gradients), but only that far: more let
    look-alikes in (tuning-half precision 0.983 with every such pair, 0.994 with 3); the rule's own
    pairs are capped too, the cluster stage checks the rest of a group against its keeper, and
    dense neighbourhoods (smooth generated scenes) no longer flood it (221k candidate pairs of 10k
    scenes before).
    """
    rule = cap.rule(similarity, distance)
    wide = ~rule & (similarity >= verify_floor) & nearest_partners(i, j, similarity, cap.neighbours)
    return (rule & nearest_of(rule, i, j, similarity, cap.rule_partners)) | wide


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
