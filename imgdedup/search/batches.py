"""Batches of candidate pairs whose images fit in memory together, for work a batch at a time.

Verification describes every image of a pair (about 60 KB of evidence each); at
scale the candidate pairs touch most of the collection, and chance pairs chain
into components of many thousands of images (13,797 of 100k generated scenes
in one), so neither all candidates' evidence nor a whole component's fits in
bounded memory. :func:`pair_batches` cuts the pairs into batches of at most a
given number of images, ordered so that batches share few images;
:func:`component_batches` cuts them into batches of whole components, for work
that must see a component at once (grouping verified pairs around keepers).

Imports numpy and scipy only.
"""

from __future__ import annotations

import numpy as np


def _pair_graph(n: int, i: np.ndarray, j: np.ndarray, max_images: int, least: int):
    """``(i, j, graph)``: the pairs as int64 and their sparse graph, or None when there are no pairs;
    ``max_images`` below ``least`` is a ValueError."""
    from scipy.sparse import coo_matrix

    if max_images < least:
        raise ValueError(f"`max_images` must be at least {least}, got {max_images!r}")
    i, j = np.asarray(i, dtype=np.int64), np.asarray(j, dtype=np.int64)
    if len(i) == 0:
        return None
    return i, j, coo_matrix((np.ones(len(i), dtype=np.int8), (i, j)), shape=(n, n)).tocsr()


def pair_batches(n: int, i: np.ndarray, j: np.ndarray, max_images: int) -> list[np.ndarray]:
    """The pairs cut into batches of at most ``max_images`` images each (at least 2).

    Images are ordered by the reverse Cuthill-McKee order of the pair graph
    (scipy), which numbers joined images close together; pairs are taken in the
    order of their later image and a batch closes when the next pair would bring
    it past ``max_images`` images. An image whose pairs fall in two batches is in
    both (described twice): the order keeps that rare.

    Returns
    -------
    list of (P_b,) int64 ndarray
        Positions in ``i``/``j`` of each batch's pairs; together every position once.
    """
    from scipy.sparse.csgraph import reverse_cuthill_mckee

    found = _pair_graph(n, i, j, max_images, least=2)  # a batch holds at least one pair
    if found is None:
        return []
    i, j, graph = found
    order = reverse_cuthill_mckee((graph + graph.T).tocsr(), symmetric_mode=True)
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n)
    later = np.maximum(position[i], position[j])
    earlier = np.minimum(position[i], position[j])
    ranked = np.lexsort((earlier, later))
    batches, current, images = [], [], set()
    for k, a, b in zip(ranked.tolist(), i[ranked].tolist(), j[ranked].tolist()):
        grows = (a not in images) + (b not in images)
        if current and len(images) + grows > max_images:
            batches.append(np.asarray(current, dtype=np.int64))
            current, images = [], set()
        current.append(k)
        images.update((a, b))
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
    from scipy.sparse.csgraph import connected_components as components

    found = _pair_graph(n, i, j, max_images, least=1)
    if found is None:
        return []
    i, j, graph = found
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
