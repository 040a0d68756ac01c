"""The capped cosine search keeps each image's nearest pairs only, and hybrid's candidates chosen from it
equal the candidates chosen from every pair: tiled or not, full or incremental, with tied scores."""

import numpy as np
import pytest

from imgdedup.search.cosine import cosine_pairs
from imgdedup.search.nearest import NeighbourCap, candidates, capped_pairs
from imgdedup.search.tiles import Component, merge_tiles, plan_search, search_tile
from imgdedup.storage.store import Store

CAP = NeighbourCap(rule_partners=4, neighbours=2, min_similarity=0.975, hybrid_floor=0.9, threshold=12)
FLOOR = 0.85
VERIFY_FLOOR = 0.86
HASHES = ("trimmed_phash", "trimmed_dhash")


def dense_set(n: int, seed: int = 0):
    """Embeddings in a few tight groups (most pairs of a group reach the floor), exact copies among
    them (tied scores), and hashes where some pairs are near."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(6, 24))
    x = centres[rng.integers(0, 6, n)] + rng.normal(scale=0.18, size=(n, 24))
    for k in range(0, n - 1, 9):
        x[rng.integers(0, n)] = x[k]  # identical vectors: every score of one of them ties with the other's
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    x = x.astype(np.float16).astype(np.float32)  # the store keeps float16
    phash = rng.integers(0, 2**63, n, dtype=np.uint64)
    dhash = rng.integers(0, 2**63, n, dtype=np.uint64)
    for k in range(0, n - 1, 4):
        other = rng.integers(0, n)
        phash[other] = phash[k] ^ np.uint64(int(rng.integers(0, 2**10)))
    return x, (phash, dhash)


def store_of(tmp_path, x, hashes):
    """A store with the embeddings and both hashes at scattered rows; returns it and each image's row."""
    store = Store.open(tmp_path / "store", row_chunk=64)
    n = len(x)
    rows = np.sort(np.random.default_rng(5).choice(2 * n, n, replace=False)).astype(np.int64)
    full = np.zeros((2 * n, x.shape[1]), np.float16)
    full[rows] = x
    store.ensure_array("embeddings", 2 * n, "float16", width=x.shape[1])
    store.write_rows("embeddings", 0, full)
    for name, values in zip(HASHES, hashes):
        column = np.zeros(2 * n, np.uint64)
        column[rows] = values
        store.ensure_array(name, 2 * n, "uint64")
        store.write_rows(name, 0, column)
    return store, rows


def selected(i, j, s, hashes, cap=CAP):
    """The candidate pairs chosen from pairs ``(i, j, s)``, as sorted (i, j, s)."""
    distance = np.minimum(*(np.bitwise_count(h[i] ^ h[j]) for h in hashes))
    keep = candidates(i, j, s, distance, cap, VERIFY_FLOOR)
    return i[keep], j[keep], s[keep]


def every_pair_selection(x, hashes, positions):
    """The selection from the uncapped search over the images at ``positions``, in those positions' numbering."""
    sub = x[positions]
    i, j, s = cosine_pairs(sub, FLOOR)
    return selected(positions[i], positions[j], s, hashes)


def assert_same(got, want):
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)


def capped_component(tmp_path):
    return Component("cosine", "embeddings", FLOOR, str(tmp_path / "cache.npz"), CAP, HASHES)


def tiled(store, component, rows, new_mask, block):
    plan = plan_search(component, rows, new_mask, block)
    return plan, merge_tiles(plan, [search_tile(store, plan, t) for t in range(len(plan.tiles))])


def test_capped_search_keeps_few_pairs_and_the_same_candidates():
    x, hashes = dense_set(500)
    every = cosine_pairs(x, FLOOR)
    capped = capped_pairs(x, hashes, FLOOR, CAP)
    assert len(every[0]) > 15_000  # dense: most pairs of a group reach the floor
    # about k pairs an image (ties may add a few), not most of the N**2 / 2
    assert len(capped[0]) <= 1.1 * len(x) * (CAP.rule_partners + CAP.neighbours) < len(every[0]) / 5
    want = selected(*every, hashes)
    assert len(want[0]) > 200
    assert_same(selected(*capped, hashes), want)
    # the kept scores are each pair's own float32 dot product, as the uncapped search gives them
    lookup = dict(zip(zip(every[0].tolist(), every[1].tolist()), every[2].tolist()))
    assert all(lookup[(a, b)] == s for a, b, s in zip(*(v.tolist() for v in capped)))


@pytest.mark.parametrize("block", [420, 97, 160])
def test_capped_tiles_choose_the_candidates_of_every_pair(tmp_path, block):
    x, hashes = dense_set(420, seed=1)
    store, rows = store_of(tmp_path, x, hashes)
    _, got = tiled(store, capped_component(tmp_path), rows, np.ones(len(rows), bool), block)
    want = every_pair_selection(x, hashes, np.arange(len(x)))
    assert len(want[0]) > 150
    assert_same(selected(*got, hashes), want)


def test_plan_keeps_the_cap_through_save_and_load(tmp_path):
    x, hashes = dense_set(50)
    store, rows = store_of(tmp_path, x, hashes)
    plan = plan_search(capped_component(tmp_path), rows, np.ones(len(rows), bool), 20)
    from imgdedup.search.tiles import SearchPlan

    loaded = SearchPlan.load(plan.save(tmp_path / "plan.npz"))
    assert loaded.component == plan.component and loaded.component.cap == CAP


def test_incremental_capped_search_with_new_and_removed_images_equals_a_full_one(tmp_path):
    """The cache holds each image's nearest only: an image whose cached partner is gone is searched again."""
    x, hashes = dense_set(450, seed=2)
    store, rows = store_of(tmp_path, x, hashes)
    component = capped_component(tmp_path)
    first = np.arange(350)
    tiled(store, component, rows[first], np.ones(350, bool), 1000)  # last run: the first 350 images
    rng = np.random.default_rng(9)
    removed = rng.choice(350, 40, replace=False)
    now = np.setdiff1d(np.arange(450), removed)  # 40 gone, 100 new
    new_mask = now >= 350
    plan, got = tiled(store, component, rows[now], new_mask, 128)
    assert len(plan.kept_i) > 0 and len(plan.old) < 310  # reused, and some old images searched again
    want = every_pair_selection(x, hashes, now)
    assert len(want[0]) > 150
    # got is in positions of `now`; the selection of every pair is in image numbers
    assert_same(selected(now[got[0]], now[got[1]], got[2], hashes), want)


def test_the_near_rule_adds_hash_near_pairs_below_the_floor_and_the_capped_search_keeps_them():
    near_cap = NeighbourCap(4, 2, 0.975, 0.9, 12, near_floor=0.0, near_bits=8)
    x, hashes = dense_set(500)
    every = cosine_pairs(x, 0.0)
    want = selected(*every, hashes, near_cap)
    distance = np.minimum(*(np.bitwise_count(h[want[0]] ^ h[want[1]]) for h in hashes))
    below = (want[2] < FLOOR) & (distance <= 8)
    assert below.sum() > 10  # hash-near pairs the floor alone would not reach
    assert_same(selected(*capped_pairs(x, hashes, 0.0, near_cap), hashes, near_cap), want)
    # the cap and its plan files keep the near rule
    assert NeighbourCap.from_array(near_cap.to_array()) == near_cap and near_cap.tag != CAP.tag
    assert NeighbourCap.from_array(CAP.to_array()[:5]) == CAP  # a plan saved before the near rule


def test_cap_parameters_are_validated():
    with pytest.raises(ValueError, match="`neighbours`"):
        NeighbourCap(rule_partners=3, neighbours=0, min_similarity=0.9, hybrid_floor=0.9, threshold=10)
    with pytest.raises(ValueError, match="`cap`"):
        Component("hamming", "hashes_phash", 10, "cache.npz", CAP, HASHES)
