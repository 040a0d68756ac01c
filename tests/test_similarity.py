"""Exact cosine search: the low-precision filter never loses or invents a pair."""

import numpy as np
import pytest
import torch

from imgdedup.search.cosine import cosine_pairs, cosine_query, pair_dots


def unit_rows(n: int, dim: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def near_threshold(n: int, dim: int, threshold: float, seed: int) -> np.ndarray:
    """Random unit rows plus rows planted at similarities within 0.004 of the threshold on both sides."""
    rng = np.random.default_rng(seed)
    x = unit_rows(n, dim, seed)
    for k in range(0, n - 1, 2):
        a = x[k]
        noise = rng.standard_normal(dim).astype(np.float32)
        noise -= noise @ a * a
        noise /= np.linalg.norm(noise)
        target = threshold + rng.uniform(-0.004, 0.004)
        x[k + 1] = target * a + np.sqrt(1 - target**2) * noise
    return x


def brute_pairs(x: np.ndarray, threshold: float) -> set[tuple[int, int]]:
    sims = x.astype(np.float64) @ x.astype(np.float64).T
    i, j = np.nonzero(np.triu(sims >= threshold, 1))
    return set(zip(i.tolist(), j.tolist()))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_pairs_equal_brute_force_next_to_the_threshold(dtype):
    x = near_threshold(600, 96, 0.9, seed=1)
    i, j, s = cosine_pairs(x, 0.9, block=64, dtype=dtype)
    expected = brute_pairs(x, 0.9)
    found = set(zip(i.tolist(), j.tolist()))
    # float32 dot products may differ from float64 in the last bits: allow disagreement only there
    exact = x.astype(np.float64) @ x.astype(np.float64).T
    assert all(abs(exact[a, b] - 0.9) < 1e-6 for a, b in found ^ expected)
    assert len(expected) > 100
    assert np.all(i < j)
    np.testing.assert_allclose(s, np.einsum("ij,ij->i", x[i], x[j]), rtol=0, atol=1e-6)
    assert list(zip(i.tolist(), j.tolist())) == sorted(found)


def test_filters_agree_exactly():
    x = near_threshold(500, 1280, 0.9, seed=2).astype(np.float16)
    low = cosine_pairs(x, 0.9, dtype=torch.bfloat16)
    high = cosine_pairs(x, 0.9, dtype=torch.float32)
    for a, b in zip(low, high):
        np.testing.assert_array_equal(a, b)
    assert len(low[0]) > 50


def test_query_finds_new_against_old_only():
    x = near_threshold(400, 64, 0.85, seed=3)
    old, new = x[0::2], x[1::2]  # every planted pair is (old k, new k)
    q, k, s = cosine_query(old, new, 0.85, block=32, dtype=torch.bfloat16)
    sims = new.astype(np.float64) @ old.astype(np.float64).T
    expected = set(zip(*map(np.ndarray.tolist, np.nonzero(sims >= 0.85))))
    found = set(zip(q.tolist(), k.tolist()))
    assert all(abs(sims[a, b] - 0.85) < 1e-6 for a, b in found ^ expected)
    assert expected
    np.testing.assert_allclose(s, np.einsum("ij,ij->i", new[q], old[k]), atol=1e-6)


def test_empty_and_bad_input():
    assert all(len(a) == 0 for a in cosine_pairs(np.zeros((0, 8), np.float32), 0.9))
    assert all(len(a) == 0 for a in cosine_query(np.zeros((0, 8), np.float32), unit_rows(3, 8, 0), 0.9))
    with pytest.raises(ValueError, match="min_similarity"):
        cosine_pairs(unit_rows(3, 8, 0), 1.5)
    with pytest.raises(ValueError, match="2-D"):
        cosine_pairs(np.zeros(8, np.float32), 0.5)
    with pytest.raises(TypeError, match="float"):
        cosine_pairs(np.zeros((3, 8), np.int32), 0.5)
    with pytest.raises(ValueError, match="dtype"):
        cosine_pairs(unit_rows(3, 8, 0), 0.5, dtype=torch.float16)


def test_pair_dots_gathers_a_batch_of_pairs_at_a_time_and_equals_one_gather(tmp_path, monkeypatch):
    import imgdedup.search.cosine as cosine
    from imgdedup.storage.store import PositionRows, Store

    rng = np.random.default_rng(7)
    a, b = rng.normal(size=(50, 16)).astype(np.float32), rng.normal(size=(40, 16)).astype(np.float32)
    ia, ib = rng.integers(0, 50, 1000), rng.integers(0, 40, 1000)
    want = np.einsum("ij,ij->i", a[ia], b[ib])
    monkeypatch.setattr(cosine, "VERIFY_BATCH", 7)  # 143 batches, the last of 6 pairs
    got = pair_dots(a, ia, b, ib)
    assert got.dtype == np.float32 and np.array_equal(got, want)
    assert len(pair_dots(a, ia[:0], b, ib[:0])) == 0
    # rows read from a store for the paired images only, indexed like the whole array
    store = Store.open(tmp_path / "store", row_chunk=8)
    store.ensure_array("embeddings", 50, "float16", width=16)
    store.write_rows("embeddings", 0, a.astype(np.float16))
    left, right = ia[:100], ia[100:200]
    rows = PositionRows(store, "embeddings", np.arange(50), np.concatenate([left, right]))
    stored = a.astype(np.float16).astype(np.float32)
    assert np.array_equal(pair_dots(rows, left, rows, right), np.einsum("ij,ij->i", stored[left], stored[right]))
