"""Duplicate clusters: connected components of the pair graph, each with a keeper."""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np


@dataclass(frozen=True)
class ClusterMember:
    index: int
    distance: int  # Hamming distance to the keeper's hash


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


def cluster_pairs(
    n: int,
    i: np.ndarray,
    j: np.ndarray,
    hashes: np.ndarray,
    keeper_rank: np.ndarray,
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

    Returns
    -------
    list of Cluster, ordered by their first member's index.
    """
    graph = nx.Graph()
    graph.add_edges_from(zip(np.asarray(i).tolist(), np.asarray(j).tolist()))
    clusters = []
    for component in nx.connected_components(graph):
        members = np.fromiter(component, dtype=np.int64)
        if np.any(members >= n):
            raise ValueError(f"pair index out of range for n={n}")
        keeper = int(members[np.argmin(keeper_rank[members])])
        distances = np.bitwise_count(hashes[members] ^ hashes[keeper]).astype(np.int64)
        order = np.lexsort((members, distances, members != keeper))
        clusters.append(
            Cluster(keeper=keeper, members=tuple(ClusterMember(int(members[k]), int(distances[k])) for k in order))
        )
    clusters.sort(key=lambda c: min(c.indices))
    return clusters


def neighbour_lists(n: int, i: np.ndarray, j: np.ndarray, distance: np.ndarray) -> list[list[tuple[int, int]]]:
    """For each image, its direct neighbours as ``(index, distance)`` sorted by distance then index.

    This is imagededup's ``find_duplicates`` shape: a pair within the threshold,
    not membership of the same cluster.
    """
    lists: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    for a, b, d in zip(np.asarray(i).tolist(), np.asarray(j).tolist(), np.asarray(distance).tolist()):
        lists[a].append((b, d))
        lists[b].append((a, d))
    for entry in lists:
        entry.sort(key=lambda t: (t[1], t[0]))
    return lists
