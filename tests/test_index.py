"""imgdedup.search.hamming: exact Hamming-radius search, checked against brute force."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imgdedup.search.hamming import BKTree, hamming_distance, hamming_pairs, hamming_query, popcount64

ONE = np.uint64(1)


# --------------------------------------------------------------------------- #
# References and data
# --------------------------------------------------------------------------- #


def brute_pairs(hashes: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All pairs i < j within radius, one row of popcounts at a time."""
    out_i, out_j, out_d = [], [], []
    for i in range(hashes.size):
        d = np.bitwise_count(hashes[i] ^ hashes[i + 1 :])
        j = np.flatnonzero(d <= radius) + i + 1
        out_i.append(np.full(j.size, i))
        out_j.append(j)
        out_d.append(d[j - i - 1])
    if not out_i:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.uint8)
    return np.concatenate(out_i), np.concatenate(out_j), np.concatenate(out_d).astype(np.uint8)


def brute_query(index: np.ndarray, queries: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    out_q, out_i, out_d = [], [], []
    for q in range(queries.size):
        d = np.bitwise_count(queries[q] ^ index)
        i = np.flatnonzero(d <= radius)
        out_q.append(np.full(i.size, q))
        out_i.append(i)
        out_d.append(d[i])
    if not out_q:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.uint8)
    return np.concatenate(out_q), np.concatenate(out_i), np.concatenate(out_d).astype(np.uint8)


def flip_bits(rng: np.random.Generator, value: np.uint64, k: int) -> np.uint64:
    """``value`` with exactly ``k`` distinct random bits flipped."""
    mask = 0
    for bit in rng.choice(64, size=k, replace=False):
        mask |= 1 << int(bit)
    return value ^ np.uint64(mask)


def hash_set(rng: np.random.Generator, n: int, planted: int, max_flips: int, duplicates: int) -> np.ndarray:
    """``n`` random hashes, then ``planted`` of them replaced by near copies of others and ``duplicates`` by exact copies."""
    h = rng.integers(0, 2**64, n, dtype=np.uint64, endpoint=False)
    if n >= 2:
        for _ in range(planted):
            src, dst = rng.integers(0, n, 2)
            h[dst] = flip_bits(rng, h[src], int(rng.integers(0, max_flips + 1)))
        for _ in range(duplicates):
            src, dst = rng.integers(0, n, 2)
            h[dst] = h[src]
    return h


def assert_same(got: tuple, expected: tuple) -> None:
    names = ("first index", "second index", "distance")
    for name, g, e, dtype in zip(names, got, expected, (np.int64, np.int64, np.uint8)):
        assert g.dtype == dtype, f"{name}: dtype {g.dtype}"
        np.testing.assert_array_equal(g, e, err_msg=name)


@st.composite
def hash_sets(draw, max_n: int = 300) -> np.ndarray:
    n = draw(st.integers(0, max_n))
    planted = draw(st.integers(0, max(0, n // 2)))
    max_flips = draw(st.integers(0, 16))
    duplicates = draw(st.integers(0, 5))
    seed = draw(st.integers(0, 2**32 - 1))
    return hash_set(np.random.default_rng(seed), n, planted, max_flips, duplicates)


def valid_substrings(radius: int) -> list[int]:
    """Substring counts hamming_pairs accepts for this radius (0 = brute force)."""
    out = [0]
    for m in range(1, radius + 2):
        try:
            hamming_pairs(np.zeros(0, np.uint64), radius, substrings=m)
        except ValueError:
            continue
        out.append(m)
    return out


PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --------------------------------------------------------------------------- #
# hamming_pairs
# --------------------------------------------------------------------------- #


@PROPERTY
@given(hashes=hash_sets(), radius=st.integers(0, 64), pick=st.integers(0, 2**16))
def test_pairs_equal_brute_force(hashes: np.ndarray, radius: int, pick: int) -> None:
    """hamming_pairs returns exactly the brute-force pairs, whatever layout (auto, brute force or m substrings) it uses."""
    expected = brute_pairs(hashes, radius)
    assert_same(hamming_pairs(hashes, radius), expected)
    choices = valid_substrings(radius)
    assert_same(hamming_pairs(hashes, radius, substrings=choices[pick % len(choices)]), expected)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hashes=hash_sets(max_n=120), radius=st.integers(0, 16))
def test_pairs_equal_brute_force_for_every_layout(hashes: np.ndarray, radius: int) -> None:
    """Every accepted substring count gives the brute-force pairs, including pigeonhole edge cases."""
    expected = brute_pairs(hashes, radius)
    for m in valid_substrings(radius):
        assert_same(hamming_pairs(hashes, radius, substrings=m), expected)


def test_pairs_radius_is_inclusive() -> None:
    """A pair at exactly the radius is reported; one bit further is not."""
    base = np.uint64(0x0123456789ABCDEF)
    for r in (0, 1, 5, 10, 63):
        at_r = flip_bits(np.random.default_rng(r), base, r)
        h = np.array([base, at_r], dtype=np.uint64)
        layouts = valid_substrings(r)
        for m in sorted(set(layouts[:5] + layouts[-2:])):
            i, j, d = hamming_pairs(h, r, substrings=m)
            assert (i.tolist(), j.tolist(), d.tolist()) == ([0], [1], [r])
        beyond = flip_bits(np.random.default_rng(r), base, r + 1)
        assert hamming_pairs(np.array([base, beyond], dtype=np.uint64), r)[0].size == 0


def test_pairs_radius_64_returns_every_pair() -> None:
    """At radius 64 every pair is within range, including complements."""
    h = np.array([0, 2**64 - 1, 5, 5], dtype=np.uint64)
    i, j, d = hamming_pairs(h, 64)
    assert list(zip(i.tolist(), j.tolist(), d.tolist())) == [
        (0, 1, 64),
        (0, 2, 2),
        (0, 3, 2),
        (1, 2, 62),
        (1, 3, 62),
        (2, 3, 0),
    ]


@pytest.mark.parametrize("n", [0, 1])
def test_pairs_of_fewer_than_two_hashes_are_empty(n: int) -> None:
    """No pairs exist among zero or one hash; the empty result keeps its dtypes."""
    i, j, d = hamming_pairs(np.arange(n, dtype=np.uint64), 10)
    assert (i.size, j.size, d.size) == (0, 0, 0)
    assert (i.dtype, j.dtype, d.dtype) == (np.int64, np.int64, np.uint8)


def test_pairs_accept_narrower_unsigned_and_strided_input() -> None:
    """uint8..uint32 hashes are widened losslessly; a strided column is read correctly."""
    small = np.array([0b1010, 0b1011, 0b0101], dtype=np.uint16)
    assert_same(hamming_pairs(small, 1), brute_pairs(small.astype(np.uint64), 1))
    table = np.array([[1, 9], [3, 9], [7, 9]], dtype=np.uint64)
    assert_same(hamming_pairs(table[:, 0], 1), (np.array([0, 1]), np.array([1, 2]), np.array([1, 1], np.uint8)))


def test_pairs_large_duplicate_groups_are_complete() -> None:
    """A hash repeated more times than one block holds still yields every pair (buckets are split, not truncated)."""
    rng = np.random.default_rng(7)
    h = np.concatenate(
        [
            np.full(1300, 0xDEADBEEF, dtype=np.uint64),
            [flip_bits(rng, np.uint64(0xDEADBEEF), int(k)) for k in rng.integers(1, 6, 300)],
            rng.integers(0, 2**64, 400, dtype=np.uint64, endpoint=False),
        ]
    ).astype(np.uint64)
    expected = brute_pairs(h, 4)
    assert expected[0].size > 1300 * 1299 // 2
    for m in (0, 3, 5):
        assert_same(hamming_pairs(h, 4, substrings=m), expected)
    same = np.full(1500, 42, dtype=np.uint64)
    i, j, d = hamming_pairs(same, 10, substrings=4)
    assert i.size == 1500 * 1499 // 2 and not d.any()
    assert_same((i, j, d), brute_pairs(same, 10))


def test_pairs_200k_hashes_find_every_planted_pair() -> None:
    """Among 200k random hashes, 500 planted pairs at distances 0..10 are all found, and 300 sampled rows match direct popcounts."""
    rng = np.random.default_rng(2024)
    n, radius = 200_000, 10
    h = rng.integers(0, 2**64, n, dtype=np.uint64, endpoint=False)
    positions = rng.choice(n, size=1000, replace=False)
    src, dst = positions[:500], positions[500:]
    distances = np.arange(500) % (radius + 1)
    for s, t, k in zip(src, dst, distances):
        h[t] = flip_bits(rng, h[s], int(k))

    i, j, d = hamming_pairs(h, radius)

    found = dict(zip(zip(i.tolist(), j.tolist()), d.tolist()))
    for s, t, k in zip(src.tolist(), dst.tolist(), distances.tolist()):
        assert found.get((min(s, t), max(s, t))) == k
    assert np.all(i < j) and np.all(np.diff(i * n + j) > 0), "pairs must be unique and sorted by (i, j)"
    for row in rng.choice(n, size=300, replace=False).tolist():
        dist = np.bitwise_count(h[row] ^ h)
        partners = np.flatnonzero(dist <= radius)
        partners = partners[partners != row]
        mine = (i == row) | (j == row)
        got = np.where(i[mine] == row, j[mine], i[mine])
        np.testing.assert_array_equal(np.sort(got), partners, err_msg=f"row {row}")
        np.testing.assert_array_equal(d[mine][np.argsort(got)], dist[partners])


# --------------------------------------------------------------------------- #
# hamming_query
# --------------------------------------------------------------------------- #


@PROPERTY
@given(
    index=hash_sets(max_n=200),
    queries=hash_sets(max_n=60),
    radius=st.integers(0, 64),
    pick=st.integers(0, 2**16),
    near=st.booleans(),
)
def test_query_equals_brute_force(index: np.ndarray, queries: np.ndarray, radius: int, pick: int, near: bool) -> None:
    """hamming_query returns exactly the brute-force (query, index) pairs, sorted by query then index."""
    if near and index.size:
        # Queries that are perturbed copies of indexed hashes, so there is something to find.
        rng = np.random.default_rng(pick)
        queries = np.array(
            [flip_bits(rng, index[k], int(rng.integers(0, 12))) for k in rng.integers(0, index.size, queries.size)],
            dtype=np.uint64,
        )
    expected = brute_query(index, queries, radius)
    assert_same(hamming_query(index, queries, radius), expected)
    choices = valid_substrings(radius)
    assert_same(hamming_query(index, queries, radius, substrings=choices[pick % len(choices)]), expected)


def test_query_does_not_pair_index_with_itself() -> None:
    """Near-duplicates inside the index are not reported: only query-to-index pairs are."""
    index = np.array([10, 11, 1 << 40], dtype=np.uint64)
    q, i, d = hamming_query(index, np.array([(1 << 40) | 1], dtype=np.uint64), 1)
    assert (q.tolist(), i.tolist(), d.tolist()) == ([0], [2], [1])


# --------------------------------------------------------------------------- #
# BKTree
# --------------------------------------------------------------------------- #


@PROPERTY
@given(hashes=hash_sets(max_n=150), radius=st.integers(0, 64), seed=st.integers(0, 2**32 - 1))
def test_bktree_equals_brute_force(hashes: np.ndarray, radius: int, seed: int) -> None:
    """BKTree.query returns every stored hash within radius, sorted by (distance, insertion order)."""
    rng = np.random.default_rng(seed)
    keys = [f"img{k}" for k in range(hashes.size)]
    tree = BKTree(dict(zip(keys, hashes.tolist())))
    by_position = BKTree(hashes)
    queries = [int(x) for x in rng.integers(0, 2**64, 3, dtype=np.uint64, endpoint=False)]
    queries += (
        [int(flip_bits(rng, hashes[k], int(rng.integers(0, 8)))) for k in rng.integers(0, max(1, hashes.size), 3)]
        if hashes.size
        else []
    )
    for q in queries:
        dist = np.bitwise_count(np.uint64(q) ^ hashes)
        hits = sorted((int(dist[k]), k) for k in np.flatnonzero(dist <= radius).tolist())
        assert tree.query(q, radius) == [(keys[k], d) for d, k in hits]
        assert by_position.query(q, radius) == [(k, d) for d, k in hits]


def test_bktree_duplicates_and_empty() -> None:
    """Equal hashes are all returned in insertion order; an empty tree finds nothing."""
    tree = BKTree([7, 7, 6, 7])
    assert tree.query(7, 0) == [(0, 0), (1, 0), (3, 0)]
    assert tree.query(7, 1) == [(0, 0), (1, 0), (3, 0), (2, 1)]
    assert len(tree) == 4
    assert BKTree([]).query(0, 64) == []


# --------------------------------------------------------------------------- #
# Scalar helpers
# --------------------------------------------------------------------------- #


def test_popcount64_and_hamming_distance() -> None:
    """popcount64 counts set bits as uint8 over any shape; hamming_distance counts differing bits of two ints."""
    x = np.array([[0, 1], [2**64 - 1, 0xF0F0]], dtype=np.uint64)
    out = popcount64(x)
    assert out.dtype == np.uint8 and out.tolist() == [[0, 1], [64, 8]]
    assert hamming_distance(0, 2**64 - 1) == 64
    assert hamming_distance(np.uint64(0b1100), 0b1010) == 2


# --------------------------------------------------------------------------- #
# Validation
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("radius", [-1, 65, 3.5, True, "10", None])
def test_bad_radius_is_rejected(radius) -> None:
    """A radius that is not an int in 0..64 raises ValueError naming the parameter and the value."""
    h = np.zeros(3, dtype=np.uint64)
    message = f"`radius` must be an int in 0..64, got {radius!r}"
    with pytest.raises(ValueError, match=f"^{__import__('re').escape(message)}$"):
        hamming_pairs(h, radius)
    with pytest.raises(ValueError, match="`radius` must be an int in 0..64"):
        hamming_query(h, h, radius)
    with pytest.raises(ValueError, match="`radius` must be an int in 0..64"):
        BKTree([1]).query(1, radius)


def test_two_dimensional_hashes_are_rejected() -> None:
    """A 2-D array raises ValueError naming the parameter and its shape."""
    with pytest.raises(
        ValueError, match=r"`hashes` must be a 1-D array of 64-bit hashes, got an array of shape \(2, 2\)"
    ):
        hamming_pairs(np.zeros((2, 2), dtype=np.uint64), 3)
    with pytest.raises(ValueError, match=r"`query_hashes` must be a 1-D array"):
        hamming_query(np.zeros(2, dtype=np.uint64), np.zeros((1, 2), dtype=np.uint64), 3)


@pytest.mark.parametrize(
    "bad", [np.zeros(3, dtype=np.float64), np.zeros(3, dtype=np.int64), np.zeros(3, dtype=bool), [1, 2, 3]]
)
def test_non_unsigned_hashes_are_rejected(bad) -> None:
    """Float, signed or bool arrays (and plain lists, which become int64) raise TypeError explaining the conversion."""
    with pytest.raises(TypeError, match=r"`hashes` must have an unsigned integer dtype \(uint64 hashes\), got dtype"):
        hamming_pairs(bad, 3)
    with pytest.raises(TypeError, match=r"`index_hashes` must have an unsigned integer dtype"):
        hamming_query(bad, np.zeros(1, dtype=np.uint64), 3)


def test_bad_substrings_and_scalar_hashes_are_rejected() -> None:
    """Invalid layouts and out-of-range scalar hashes raise ValueError naming parameter and value."""
    h = np.zeros(3, dtype=np.uint64)
    with pytest.raises(
        ValueError,
        match=r"`substrings` must be None \(automatic\), 0 \(brute force\) or an int in 1..4 for radius 3, got 5",
    ):
        hamming_pairs(h, 3, substrings=5)
    with pytest.raises(ValueError, match=r"`substrings`=1 with radius 10 needs"):
        hamming_pairs(h, 10, substrings=1)
    with pytest.raises(ValueError, match=r"`a` must be an int in 0..2\*\*64-1, got -1"):
        hamming_distance(-1, 0)
    with pytest.raises(ValueError, match=r"`hashes\['x'\]` must be an int in 0..2\*\*64-1, got 1.5"):
        BKTree({"x": 1.5})
    with pytest.raises(TypeError, match="`x` must have an unsigned integer dtype, got dtype float64"):
        popcount64(np.zeros(2))
