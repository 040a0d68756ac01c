"""Connected components of the pair graph: scipy's sparse search, checked against networkx."""

import networkx as nx
import numpy as np
import pytest

from imgdedup.search.cluster import connected_components


def test_components_equal_networkx_on_a_random_pair_graph():
    rng = np.random.default_rng(0)
    n = 5000
    i, j = rng.integers(0, n, 3000), rng.integers(0, n, 3000)
    keep = i != j
    i, j = np.minimum(i, j)[keep], np.maximum(i, j)[keep]
    graph = nx.Graph()
    graph.add_edges_from(zip(i.tolist(), j.tolist()))
    want = sorted(sorted(c) for c in nx.connected_components(graph))
    got = connected_components(n, i, j)
    assert [g.tolist() for g in got] == want
    assert all(len(g) >= 2 for g in got)


def test_no_pairs_no_components_and_bad_indices_are_named():
    assert connected_components(10, np.zeros(0, np.int64), np.zeros(0, np.int64)) == []
    assert [g.tolist() for g in connected_components(10, np.array([7, 1]), np.array([8, 2]))] == [[1, 2], [7, 8]]
    with pytest.raises(ValueError, match="out of range for n=3"):
        connected_components(3, np.array([0]), np.array([3]))
