"""Batches of candidate pairs whose images fit in memory together, for work a batch at a time.

Verification describes every image of a pair (about 60 KB of evidence each); at
scale the candidate pairs touch most of the collection, and chance pairs chain
into components of many thousands of images (13,797 of 100k generated scenes
in one), so neither all candidates' evidence nor a whole component's fits in
bounded memory. :func:`pair_batches` cuts the pairs into batches of at most a
given number of images, so that batches share few images: an image in two
batches is described twice. It partitions the pair graph with METIS (pymetis),
which cuts 14 % of the 3.1 million chance pairs of a million generated scenes
where the reverse Cuthill-McKee order used before cut most: 1.35 descriptions
an image instead of 2.67. :func:`component_batches` cuts the pairs into batches
of whole components, for work that must see a component at once (grouping
verified pairs around keepers).

Imports numpy, scipy and pymetis only.
"""

from __future__ import annotations

import numpy as np


def _pairs(i: np.ndarray, j: np.ndarray, max_images: int, least: int):
    """The pairs as int64 arrays, or None when there are none; ``max_images`` below ``least`` is a
    ValueError."""
    if max_images < least:
        raise ValueError(f"`max_images` must be at least {least}, got {max_images!r}")
    i, j = np.asarray(i, dtype=np.int64), np.asarray(j, dtype=np.int64)
    return (i, j) if len(i) else None


#: Images of a METIS part, as a share of a batch's bound: the rest is room for the images its cut
#: pairs bring from other parts. On a million generated scenes (batches of 4096) a half gives 1.35
#: descriptions an image, 0.4 gives 1.37 and 0.3 gives 1.41 (more, smaller parts cut more pairs).
PART_SHARE = 0.5


def pair_batches(n: int, i: np.ndarray, j: np.ndarray, max_images: int) -> list[np.ndarray]:
    """The pairs cut into batches of at most ``max_images`` images each (at least 2).

    The pair graph's images are split into parts of about ``PART_SHARE * max_images``
    images by METIS, which keeps the pairs cut between parts few. A pair goes with
    the lower of its two images' parts; a part's pairs are one batch, or, when the
    images they bring from other parts take it past ``max_images``, are cut into
    batches in order of the part they reach out to. An image whose pairs fall in
    two batches is in both (described twice). Seeded: the same pairs give the same
    batches.

    Returns
    -------
    list of (P_b,) int64 ndarray
        Positions in ``i``/``j`` of each batch's pairs; together every position once.
    """
    found = _pairs(i, j, max_images, least=2)  # a batch holds at least one pair
    if found is None:
        return []
    i, j = found
    images, compact = np.unique(np.concatenate([i, j]), return_inverse=True)
    a, b = compact[: len(i)], compact[len(i) :]
    if len(images) <= max_images:
        return [np.arange(len(i), dtype=np.int64)]
    part = _parts(a, b, len(images), int(np.ceil(len(images) / (PART_SHARE * max_images))))
    owner, reach = np.minimum(part[a], part[b]), np.maximum(part[a], part[b])
    ranked = np.lexsort((reach, owner))
    groups = np.split(ranked, np.flatnonzero(np.diff(owner[ranked])) + 1)
    batches = []
    for group in groups:
        if len(np.unique(np.concatenate([a[group], b[group]]))) <= max_images:
            batches.append(group.astype(np.int64))
        else:  # a part with many pairs cut: rare, and the only pairs walked one by one
            batches += _filled(group, a, b, max_images)
    return batches


def _parts(a: np.ndarray, b: np.ndarray, count: int, parts: int) -> np.ndarray:
    """The METIS part (0..parts-1) of each of ``count`` images joined by the pairs ``(a, b)``."""
    import pymetis
    from scipy.sparse import coo_matrix

    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(count, count)).tocsr()
    graph = (graph + graph.T).tocsr()  # METIS wants each edge both ways, once (duplicates summed)
    graph.setdiag(0)  # and no image joined to itself
    graph.eliminate_zeros()
    adjacency = pymetis.CSRAdjacency(graph.indptr.astype(np.int32), graph.indices.astype(np.int32))
    found = pymetis.part_graph(parts, adjacency=adjacency, options=pymetis.Options(seed=1))
    return np.asarray(found.vertex_part, dtype=np.int64)


def _filled(group: np.ndarray, a: np.ndarray, b: np.ndarray, max_images: int) -> list[np.ndarray]:
    """The pairs at positions ``group`` in batches filled in order up to ``max_images`` images."""
    batches, current, images = [], [], set()
    for k, x, y in zip(group.tolist(), a[group].tolist(), b[group].tolist()):
        grows = (x not in images) + (y not in images)
        if current and len(images) + grows > max_images:
            batches.append(np.asarray(current, dtype=np.int64))
            current, images = [], set()
        current.append(k)
        images.update((x, y))
    batches.append(np.asarray(current, dtype=np.int64))
    return batches


def component_batches(n: int, i: np.ndarray, j: np.ndarray, max_images: int) -> list[np.ndarray]:
    """The pairs cut into batches of whole connected components, for work a batch at a time.

    Components go into a batch in the order of their first member until the next
    would take it past ``max_images`` images (a component larger than that is a
    batch of its own). Every pair of a component is in one batch, so checks
    within a component (a member against its keeper) never need another batch.

    Returns
    -------
    list of (P_b,) int64 ndarray
        Positions in ``i``/``j`` of each batch's pairs, ascending; together every position once.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components as components

    found = _pairs(i, j, max_images, least=1)
    if found is None:
        return []
    i, j = found
    graph = coo_matrix((np.ones(len(i), dtype=np.int8), (i, j)), shape=(n, n)).tocsr()
    count, labels = components(graph, directed=False)
    linked = np.unique(np.concatenate([i, j]))
    sizes = np.bincount(labels[linked], minlength=count)
    first = np.full(count, n, dtype=np.int64)
    np.minimum.at(first, labels[linked], linked)
    batch_of_label = np.zeros(count, dtype=np.int64)
    batch, filled = 0, 0
    for label in np.argsort(first, kind="stable")[: len(np.unique(labels[linked]))].tolist():
        if filled and filled + sizes[label] > max_images:
            batch, filled = batch + 1, 0
        batch_of_label[label] = batch
        filled += int(sizes[label])
    of_pair = batch_of_label[labels[i]]
    order = np.argsort(of_pair, kind="stable")
    return np.split(order, np.flatnonzero(np.diff(of_pair[order])) + 1)
