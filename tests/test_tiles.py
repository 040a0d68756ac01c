"""The index search cut into tiles equals the single search, pair for pair and value for value."""

import numpy as np
import pytest

import imgdedup.search.tiles as tiles
from imgdedup.search.cosine import cosine_pairs
from imgdedup.search.hamming import hamming_pairs
from imgdedup.search.tiles import (
    Component,
    merge_tiles,
    partition_bounds,
    plan_search,
    search_tile,
    tile_table,
    worker_block,
)
from imgdedup.storage.store import Store


def planted_hashes(rng, n: int) -> np.ndarray:
    hashes = rng.integers(0, 2**63, n, dtype=np.uint64) * np.uint64(2) + rng.integers(0, 2, n, dtype=np.uint64)
    for k in range(0, n - 1, 7):  # near copies everywhere, so pairs cross every partition boundary
        flips = rng.choice(64, int(rng.integers(0, 12)), replace=False)
        hashes[rng.integers(0, n)] = hashes[k] ^ np.uint64(sum(1 << int(b) for b in flips))
    return hashes


def planted_embeddings(rng, n: int, dim: int = 32) -> np.ndarray:
    x = rng.normal(size=(n, dim)).astype(np.float32)
    for k in range(0, n - 1, 5):
        x[rng.integers(0, n)] = x[k] + rng.normal(scale=0.15, size=dim)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float16).astype(np.float32)  # the store keeps float16


def store_with(tmp_path, name: str, values: np.ndarray) -> tuple[Store, np.ndarray]:
    """A store holding ``values`` at scattered rows (as runs leave them); returns it and each value's row."""
    store = Store.open(tmp_path / "store", row_chunk=64)
    rows = np.sort(np.random.default_rng(5).choice(3 * len(values), len(values), replace=False)).astype(np.int64)
    full = np.zeros((3 * len(values),) + values.shape[1:], dtype=values.dtype if values.ndim == 1 else np.float16)
    full[rows] = values
    store.ensure_array(name, len(full), str(full.dtype), width=values.shape[1] if values.ndim == 2 else None)
    store.write_rows(name, 0, full)
    return store, rows


def tiled(store, component, rows, new_mask, block, workers=1):
    plan = plan_search(component, rows, new_mask, block, workers)
    return plan, merge_tiles(plan, [search_tile(store, plan, t) for t in range(len(plan.tiles))])


def assert_same(got, want):
    for a, b in zip(got, want):
        assert a.dtype == b.dtype or a.dtype.kind == b.dtype.kind
        np.testing.assert_array_equal(a, b)


def test_partitions_cover_every_item_once_and_tiles_every_pair_once():
    assert partition_bounds(10, 4) == [(0, 3), (3, 7), (7, 10)]
    assert partition_bounds(0, 4) == [] and partition_bounds(4, 4) == [(0, 4)]
    with pytest.raises(ValueError, match="`block`"):
        partition_bounds(10, 0)
    assert len(tile_table(10, 0, 4)) == 6  # 3 partitions: 3 with themselves, 3 pairs
    assert len(tile_table(10, 5, 4)) == 6 + 2 * 3  # and 2 old partitions x 3 joined ones


@pytest.mark.parametrize("block", [1000, 97, 250])
def test_hamming_tiles_equal_the_single_search(tmp_path, block):
    hashes = planted_hashes(np.random.default_rng(1), 1000)
    store, rows = store_with(tmp_path, "hashes_phash", hashes)
    component = Component("hamming", "hashes_phash", 10, str(tmp_path / "cache.npz"))
    plan, got = tiled(store, component, rows, np.ones(len(rows), bool), block)
    assert len(plan.tiles) == len(tile_table(1000, 0, block))
    want = hamming_pairs(hashes, 10)
    assert len(want[0]) > 80
    assert_same(got, want)


@pytest.mark.parametrize("block", [600, 101])
def test_cosine_tiles_equal_the_single_search(tmp_path, block):
    x = planted_embeddings(np.random.default_rng(2), 600)
    store, rows = store_with(tmp_path, "embeddings", x)
    component = Component("cosine", "embeddings", 0.9, str(tmp_path / "cache.npz"))
    _, got = tiled(store, component, rows, np.ones(len(rows), bool), block)
    want = cosine_pairs(x, 0.9)
    assert len(want[0]) > 50
    assert_same(got, want)


def test_incremental_tiles_reuse_the_cache_and_equal_a_full_search(tmp_path):
    """A second search with new images tiles old x new and new x new only, and finds the full search's pairs."""
    hashes = planted_hashes(np.random.default_rng(3), 900)
    store, rows = store_with(tmp_path, "hashes_phash", hashes)
    component = Component("hamming", "hashes_phash", 10, str(tmp_path / "cache.npz"))
    first = np.arange(600)
    tiled(store, component, rows[first], np.ones(600, bool), 1000)  # last run: the first 600 images
    new_mask = np.arange(900) >= 600
    plan, got = tiled(store, component, rows, new_mask, 128)
    assert len(plan.old) == 600 and len(plan.joined) == 300 and len(plan.kept_i) > 0
    assert len(plan.tiles) == len(tile_table(300, 600, 128))
    assert_same(got, hamming_pairs(hashes, 10))


def test_a_search_is_cut_so_that_every_worker_has_a_tile():
    assert worker_block(100_000, 200_000, 1) == 100_000  # one worker: one tile
    assert worker_block(100_000, 200_000, 2) == 50_000  # 2 partitions: 3 tiles
    assert worker_block(100_000, 200_000, 4) == 33_334  # 3 partitions: 6 tiles
    assert worker_block(100_000, 200_000, 8) == 25_000  # 4 partitions: 10 tiles
    assert worker_block(100_000, 40_000, 2) == 40_000  # never above the configured block
    assert worker_block(12_000, 200_000, 2) == tiles.MIN_SPLIT_BLOCK  # nor cut below the floor
    assert worker_block(500, 97, 2) == 97
    with pytest.raises(ValueError, match="`workers`"):
        worker_block(10, 10, 0)


def test_a_search_cut_for_workers_equals_the_single_search(tmp_path, monkeypatch):
    monkeypatch.setattr(tiles, "MIN_SPLIT_BLOCK", 50)
    x = planted_embeddings(np.random.default_rng(4), 600)
    store, rows = store_with(tmp_path, "embeddings", x)
    component = Component("cosine", "embeddings", 0.9, str(tmp_path / "cache.npz"))
    plan, got = tiled(store, component, rows, np.ones(len(rows), bool), 200_000, workers=2)
    assert len(plan.tiles) == 3  # two partitions of 300
    assert_same(got, cosine_pairs(x, 0.9))
