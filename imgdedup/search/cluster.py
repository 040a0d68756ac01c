"""Duplicate clusters: connected components of the pair graph, each with a keeper."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ClusterMember:
    index: int
    distance: int  # Hamming distance to the keeper's hash
    similarity: float | None = None  # cosine similarity to the keeper, when the run has embeddings


@dataclass(frozen=True)
class Cluster:
    """A set of images that are duplicates of each other (transitively).

    ``keeper`` is the suggested image to keep; ``members`` lists every image,
    the keeper first, then by distance to the keeper and file order.
    """

    keeper: int
    members: tuple[ClusterMember, ...]

    @property
    def indices(self) -> list[int]:
        return [m.index for m in self.members]


def keeper_order(width: np.ndarray, height: np.ndarray, file_size: np.ndarray) -> np.ndarray:
    """Rank of every image as a keeper: highest resolution, then largest file, then path order.

    Returns ``(N,)`` int64 ranks, 0 = best.
    """
    pixels = np.asarray(width, dtype=np.int64) * np.asarray(height, dtype=np.int64)
    order = np.lexsort((np.arange(len(pixels)), -np.asarray(file_size, dtype=np.int64), -pixels))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank


def connected_components(n: int, i: np.ndarray, j: np.ndarray) -> list[np.ndarray]:
    """The groups of images joined (transitively) by pairs, each of two or more.

    scipy's sparse graph search: memory O(N + P) in flat arrays (networkx holds a
    dict per node and edge, ~30x slower at 500k edges), so tens of millions of
    pairs fit in a worker.

    Parameters
    ----------
    n : int
        Number of images; every index in ``i`` and ``j`` is below it.
    i, j : (P,) int ndarray
        Pairs of image indices.

    Returns
    -------
    list of (K,) int64 ndarray
        Each component's members, ascending; components ordered by their first member.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components as components

    i, j = np.asarray(i, dtype=np.int64), np.asarray(j, dtype=np.int64)
    if i.shape != j.shape or i.ndim != 1:
        raise ValueError(f"`i` and `j` must be 1-D arrays of one length, got shapes {i.shape} and {j.shape}")
    if len(i) == 0:
        return []
    if min(int(i.min()), int(j.min())) < 0 or max(int(i.max()), int(j.max())) >= n:
        raise ValueError(f"pair index out of range for n={n}")
    graph = coo_matrix((np.ones(len(i), dtype=np.int8), (i, j)), shape=(n, n)).tocsr()
    _, labels = components(graph, directed=False)
    linked = np.unique(np.concatenate([i, j]))  # images in no pair are components of one: skipped
    by_label = linked[np.argsort(labels[linked], kind="stable")]
    bounds = np.flatnonzero(np.diff(labels[by_label])) + 1
    groups = np.split(by_label, bounds)
    groups.sort(key=lambda members: int(members[0]))
    return groups


def cluster_pairs(
    n: int,
    i: np.ndarray,
    j: np.ndarray,
    hashes: np.ndarray,
    keeper_rank: np.ndarray,
    embeddings: np.ndarray | None = None,
) -> list[Cluster]:
    """Group images joined by pairs into clusters.

    Parameters
    ----------
    n : int
        Number of images; indices in ``i`` and ``j`` are below it.
    i, j : (P,) int ndarray
        The pairs found by the search.
    hashes : (N,) uint64 ndarray
        Used for each member's distance to the keeper.
    keeper_rank : (N,) int ndarray
        From :func:`keeper_order`; the lowest rank in a cluster is its keeper.
    embeddings : (N, D) float ndarray, optional
        L2-normalised; when given, members also carry their similarity to the
        keeper and are ordered by it. Anything indexed like such an array
        will do (only the rows of images in pairs are read).

    Returns
    -------
    list of Cluster, ordered by their first member's index.
    """
    clusters = []
    for members in connected_components(n, i, j):
        keeper = int(members[np.argmin(keeper_rank[members])])
        distances = np.bitwise_count(hashes[members] ^ hashes[keeper]).astype(np.int64)
        if embeddings is None:
            similarities = None
            order = np.lexsort((members, distances, members != keeper))
        else:
            similarities = np.asarray(embeddings[members], dtype=np.float32) @ np.asarray(embeddings[keeper], dtype=np.float32)
            order = np.lexsort((members, -similarities, members != keeper))
        clusters.append(
            Cluster(
                keeper=keeper,
                members=tuple(
                    ClusterMember(int(members[k]), int(distances[k]), None if similarities is None else round(float(similarities[k]), 4))
                    for k in order
                ),
            )
        )
    clusters.sort(key=lambda c: min(c.indices))
    return clusters


def neighbour_lists(n: int, i: np.ndarray, j: np.ndarray, score: np.ndarray, higher_is_closer: bool = False) -> list[list[tuple[int, float]]]:
    """For each image, its direct neighbours as ``(index, score)``, nearest first, then by index.

    This is imagededup's ``find_duplicates`` shape: a pair within the threshold,
    not membership of the same cluster. ``score`` is a distance, or a
    similarity when ``higher_is_closer``.
    """
    lists: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    for a, b, d in zip(np.asarray(i).tolist(), np.asarray(j).tolist(), np.asarray(score).tolist()):
        lists[a].append((b, d))
        lists[b].append((a, d))
    sign = -1 if higher_is_closer else 1
    for entry in lists:
        entry.sort(key=lambda t: (sign * t[1], t[0]))
    return lists
