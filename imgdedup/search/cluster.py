"""Duplicate clusters of the pair graph, each with a keeper.

Without verification a cluster is a connected component of the pair graph.
With it (:func:`cluster_pairs` ``verify=``), only verified pairs join images,
and a cluster never chains: every member is a verified duplicate of the keeper
(checked directly when the two were not a candidate pair); the others of a
component form further clusters around their own keepers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

#: Folder names (any level) and file-name words that mark a file as a copy, not the original.
COPY_NAMES = re.compile(
    r"(^|[^a-z])(cop(y|ies)|exports?|exported|thumbs?|thumbnails?|resized|previews?|small|cache)([^a-z]|$)"
)
#: Largest number of direct keeper checks made for one component (a guard against pathological graphs).
MAX_KEEPER_CHECKS = 20_000


@dataclass(frozen=True)
class ClusterMember:
    index: int
    distance: int  # Hamming distance to the keeper's hash
    similarity: float | None = None  # cosine similarity to the keeper, when the run has embeddings
    evidence: str | None = None  # how it was verified against the keeper (see imgdedup.search.verify)
    scores: dict = field(default_factory=dict)  # the verification's scores


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


def looks_like_copy(path: str) -> bool:
    """Whether a relative path sits in a folder named like copies/exports/thumbnails, or its name says copy."""
    parts = path.lower().replace("\\", "/").split("/")
    stem = parts[-1].rsplit(".", 1)[0]
    return any(COPY_NAMES.search(part) for part in parts[:-1]) or bool(
        re.search(r"(^|[^a-z])cop(y|ies)([^a-z]|$)|\(\d+\)$", stem)
    )


#: Formats that lose detail when written (Pillow's names); a file in another format is lossless
#: or as good as its source, and ranks before these at one resolution.
LOSSY = frozenset({"JPEG", "MPO", "WEBP", "HEIF", "HEIC", "AVIF", "JPEG2000"})


def keeper_order(
    width: np.ndarray,
    height: np.ndarray,
    file_size: np.ndarray,
    mtime_ns: np.ndarray | None = None,
    ids: Sequence[str] | None = None,
    camera: np.ndarray | None = None,
    formats: Sequence[str] | None = None,
) -> np.ndarray:
    """Rank of every image as a keeper, preferring the original over its copies.

    In order: outside folders named like copies, exports or thumbnails (and not
    named ``... copy`` / ``(1)``, when ``ids`` are given); highest resolution;
    camera metadata (when ``camera`` is given); a lossless format (PNG, TIFF,
    BMP, ... when ``formats`` are given: a JPEG copy of a PNG is the larger file
    when the picture is flat, yet the PNG is the original); largest file (at one
    resolution, the less compressed); oldest modification time (when
    ``mtime_ns`` is given); then path order.

    Parameters
    ----------
    width, height, file_size : (N,) int ndarray
    mtime_ns : (N,) int ndarray, optional
    ids : sequence of N str, optional
        Relative paths, in file (path) order.
    camera : (N,) bool ndarray, optional
        The file's EXIF names a camera.

    Returns
    -------
    (N,) int64 ndarray of ranks, 0 = best.
    """
    pixels = np.asarray(width, dtype=np.int64) * np.asarray(height, dtype=np.int64)
    n = len(pixels)
    copy = np.zeros(n, bool) if ids is None else np.fromiter((looks_like_copy(p) for p in ids), dtype=bool, count=n)
    has_camera = np.zeros(n, bool) if camera is None else np.asarray(camera, dtype=bool)
    mtime = np.zeros(n, np.int64) if mtime_ns is None else np.asarray(mtime_ns, dtype=np.int64)
    lossy = np.zeros(n, bool) if formats is None else np.fromiter((str(f).upper() in LOSSY for f in formats), bool, n)
    order = np.lexsort((np.arange(n), mtime, -np.asarray(file_size, dtype=np.int64), lossy, ~has_camera, -pixels, copy))
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


#: ``verify(a, b)`` for two image indices: (is a verified duplicate, evidence, scores).
Verifier = Callable[[int, int], tuple[bool, str, dict]]


def verified_groups(
    n: int, i: np.ndarray, j: np.ndarray, keeper_rank: np.ndarray, verify: Verifier
) -> list[tuple[int, dict[int, tuple[str, dict]]]]:
    """Groups of images around keepers, every member verified against its keeper.

    Candidate pairs are verified; each connected component of the verified pairs
    is split: its keeper is the image verified against the most others of the
    component, the best-ranked of those (copies are verified against their
    original, not always against each other: a crop against a stretched copy, so
    the original holds the group together), and a member is every other image
    of the component verified against it (directly when the two were a candidate
    pair, else by a fresh check); the rest form groups of their own the same way.

    Returns
    -------
    list of (keeper, {member: (evidence, scores)}), every group with at least one member.
    """
    import networkx as nx  # graph analysis of the few verified pairs; components of all pairs use scipy

    graph = nx.Graph()
    verdicts: dict[tuple[int, int], tuple[bool, str, dict]] = {}
    for a, b in zip(np.asarray(i).tolist(), np.asarray(j).tolist()):
        if a >= n or b >= n:
            raise ValueError(f"pair index out of range for n={n}")
        key = (min(a, b), max(a, b))
        if key not in verdicts:
            verdicts[key] = verify(*key)
        if verdicts[key][0]:
            graph.add_edge(*key)
    groups = []
    for component in nx.connected_components(graph):
        remaining = set(component)
        checks = 0
        while len(remaining) > 1:
            degree = graph.subgraph(remaining).degree
            keeper = min(remaining, key=lambda k: (-degree[k], int(keeper_rank[k]), k))
            members: dict[int, tuple[str, dict]] = {}
            for other in sorted(remaining - {keeper}):
                key = (min(keeper, other), max(keeper, other))
                if key not in verdicts and checks < MAX_KEEPER_CHECKS:
                    checks += 1
                    verdicts[key] = verify(*key)
                verdict = verdicts.get(key)
                if verdict is not None and verdict[0]:
                    members[other] = (
                        verdict[1] if graph.has_edge(*key) else f"{verdict[1]} (keeper check)",
                        verdict[2],
                    )
            remaining.discard(keeper)
            remaining -= set(members)
            if members:
                groups.append((keeper, members))
            # what is left may have fallen apart: keep only images still joined to another
            left = graph.subgraph(remaining)
            remaining = {k for k in remaining if left.degree(k) > 0}
    return groups


def cluster_pairs(
    n: int,
    i: np.ndarray,
    j: np.ndarray,
    hashes: np.ndarray,
    keeper_rank: np.ndarray,
    embeddings: np.ndarray | None = None,
    verify: Verifier | None = None,
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
    verify : callable, optional
        ``verify(a, b) -> (ok, evidence, scores)``; when given, clusters are
        :func:`verified_groups` (no chaining) and members carry their evidence.

    Returns
    -------
    list of Cluster, ordered by their first member's index.
    """
    if verify is None:
        groups = []
        for members in connected_components(n, i, j):
            keeper = int(members[np.argmin(keeper_rank[members])])
            groups.append((keeper, {int(m): (None, {}) for m in members if m != keeper}))
    else:
        groups = verified_groups(n, i, j, keeper_rank, verify)
    return clusters_of_groups(groups, hashes, embeddings, verified=verify is not None)


def clusters_of_groups(
    groups: Sequence[tuple[int, dict[int, tuple[str | None, dict]]]],
    hashes: np.ndarray,
    embeddings: np.ndarray | None = None,
    verified: bool = False,
) -> list[Cluster]:
    """:class:`Cluster` objects of ``(keeper, {member: (evidence, scores)})`` groups.

    Each member carries its Hamming distance to the keeper (and its similarity, when
    ``embeddings`` are given); the keeper's evidence is ``"keeper"`` when ``verified``.
    Clusters are ordered by their first member's index.
    """
    clusters = []
    for keeper, evidence in groups:
        members = np.asarray([keeper, *sorted(evidence)], dtype=np.int64)
        distances = np.bitwise_count(hashes[members] ^ hashes[keeper]).astype(np.int64)
        if embeddings is None:
            similarities = None
            order = np.lexsort((members, distances, members != keeper))
        else:
            similarities = np.asarray(embeddings[members], dtype=np.float32) @ np.asarray(
                embeddings[keeper], dtype=np.float32
            )
            order = np.lexsort((members, -similarities, members != keeper))
        clusters.append(
            Cluster(
                keeper=keeper,
                members=tuple(
                    ClusterMember(
                        int(members[k]),
                        int(distances[k]),
                        None if similarities is None else round(float(similarities[k]), 4),
                        *(("keeper" if verified else None, {}) if members[k] == keeper else evidence[int(members[k])]),
                    )
                    for k in order
                ),
            )
        )
    clusters.sort(key=lambda c: min(c.indices))
    return clusters


def neighbour_lists(
    n: int, i: np.ndarray, j: np.ndarray, score: np.ndarray, higher_is_closer: bool = False
) -> list[list[tuple[int, float]]]:
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
