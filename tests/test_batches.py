"""Batches of candidate pairs with bounded images (:mod:`imgdedup.search.batches`)."""

import numpy as np
import pytest

from imgdedup.search.batches import component_batches, pair_batches
from imgdedup.search.cluster import connected_components


def random_pairs(n: int, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    i, j = rng.integers(0, n, count), rng.integers(0, n, count)
    keep = i != j
    return i[keep], j[keep]


def test_pair_batches_hold_at_most_the_bound_and_every_pair_once():
    i, j = random_pairs(3000, 4000, 1)  # one giant component, as chance pairs chain at scale
    assert max(len(c) for c in connected_components(3000, i, j)) > 2000
    batches = pair_batches(3000, i, j, max_images=300)
    assert np.array_equal(np.sort(np.concatenate(batches)), np.arange(len(i)))
    sizes = [len(np.unique(np.concatenate([i[b], j[b]]))) for b in batches]
    assert max(sizes) <= 300 and len(batches) > 10


def test_pair_batches_of_a_component_with_locality_describe_few_images_twice():
    # a 50 x 60 grid of images, each paired with its right and lower neighbours, numbered at random:
    # METIS cuts it into compact parts again
    label = np.random.default_rng(2).permutation(3000).reshape(50, 60)
    i = np.concatenate([label[:, :-1].ravel(), label[:-1, :].ravel()])
    j = np.concatenate([label[:, 1:].ravel(), label[1:, :].ravel()])
    batches = pair_batches(3000, i, j, max_images=300)
    described = sum(len(np.unique(np.concatenate([i[b], j[b]]))) for b in batches)
    assert described < 1.3 * 3000  # images in two batches: the band where one batch meets the next


def test_pair_batches_of_near_neighbours_in_four_dimensions_describe_few_images_twice():
    # chance pairs of hashes join images near each other in a space of many dimensions, where a
    # one-dimensional order (reverse Cuthill-McKee, used before) puts 2.27 descriptions on an image
    from scipy.spatial import cKDTree

    points = np.random.default_rng(3).random((3000, 4))
    pairs = np.asarray(sorted(cKDTree(points).query_pairs(0.16)))
    i, j = pairs[:, 0], pairs[:, 1]
    batches = pair_batches(3000, i, j, max_images=300)
    assert np.array_equal(np.sort(np.concatenate(batches)), np.arange(len(i)))
    described = sum(len(np.unique(np.concatenate([i[b], j[b]]))) for b in batches)
    assert described < 1.5 * len(np.unique(pairs))  # 1.33 with METIS parts
    again = pair_batches(3000, i, j, max_images=300)  # seeded: a rerun plans the same jobs
    assert len(again) == len(batches) and all(np.array_equal(x, y) for x, y in zip(batches, again))


def test_pair_batches_keep_small_components_together():
    # 50 components of 4 images (a chain each), far below the bound
    i = np.asarray([c * 4 + k for c in range(50) for k in range(3)])
    j = i + 1
    for batch in pair_batches(200, i, j, max_images=64):
        images = np.unique(np.concatenate([i[batch], j[batch]]))
        components = set((images // 4).tolist())
        assert all(np.isin(np.arange(c * 4, c * 4 + 4), images).all() for c in components) or len(components) <= 2
    whole = sum(
        1
        for batch in pair_batches(200, i, j, max_images=64)
        for c in set((np.concatenate([i[batch], j[batch]]) // 4).tolist())
        if np.isin(np.arange(c * 4, c * 4 + 4), np.concatenate([i[batch], j[batch]])).all()
    )
    assert whole >= 47  # only a component at a batch's end may be cut


def test_pair_batches_of_no_pairs_and_a_bad_bound():
    assert pair_batches(5, np.array([], int), np.array([], int), 10) == []
    with pytest.raises(ValueError, match="max_images"):
        pair_batches(5, np.array([0]), np.array([1]), 1)


def test_component_batches_keep_components_whole_and_bound_their_images():
    rng = np.random.default_rng(3)
    n = 400
    i, j = rng.integers(0, n, 300), rng.integers(0, n, 300)
    keep = i != j
    i, j = i[keep], j[keep]
    batches = component_batches(n, i, j, max_images=25)
    assert len(batches) > 1
    positions = np.concatenate(batches)
    assert np.array_equal(np.sort(positions), np.arange(len(i)))  # every pair once
    batch_of_image = {}
    components = connected_components(n, i, j)
    for number, batch in enumerate(batches):
        images = np.unique(np.concatenate([i[batch], j[batch]]))
        whole = [c for c in components if np.isin(c, images).any()]
        assert all(np.isin(c, images).all() for c in whole)  # no component is cut
        # over the bound only when one component alone is larger
        assert len(images) <= 25 or len(whole) == 1
        for k in images.tolist():
            batch_of_image[k] = number
    assert all(batch_of_image[a] == batch_of_image[b] for a, b in zip(i.tolist(), j.tolist()))


def test_component_batches_of_no_pairs_and_a_bad_bound():
    assert component_batches(5, np.array([], int), np.array([], int), 10) == []
    with pytest.raises(ValueError, match="max_images"):
        component_batches(5, np.array([0]), np.array([1]), 0)
