"""How a run's files are cut into chunk tasks."""

import pytest

from imgdedup.pipeline.plan import MIN_SPLIT_CHUNK, chunk_bounds


def sizes(bounds):
    return [stop - start for start, stop in bounds]


@pytest.mark.parametrize(
    "n_files, chunk_size, n_workers",
    [
        (1, 2000, 2),
        (249, 2000, 2),
        (1500, 2000, 2),
        (2001, 2000, 2),
        (10_000, 2000, 2),
        (10_001, 2000, 4),
        (7, 3, 1),
        (100, 7, 8),
        (5000, 1, 2),
    ],
)
def test_chunks_cover_every_file_once_in_order(n_files, chunk_size, n_workers):
    bounds = chunk_bounds(n_files, chunk_size, n_workers)
    assert bounds[0][0] == 0 and bounds[-1][1] == n_files
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    assert max(sizes(bounds)) <= chunk_size
    assert max(sizes(bounds)) - min(sizes(bounds)) <= 1


def test_small_runs_are_split_across_workers_but_not_into_tiny_tasks():
    assert sizes(chunk_bounds(1500, 2000, 2)) == [750, 750]
    assert sizes(chunk_bounds(1500, 2000, 8)) == [250] * 6
    assert len(chunk_bounds(2 * MIN_SPLIT_CHUNK - 1, 2000, 2)) == 1
    assert sizes(chunk_bounds(4100, 2000, 2)) == [1367, 1367, 1366]
    assert chunk_bounds(0, 2000, 2) == []


def test_whole_rounds_keep_every_worker_busy_to_the_last_chunk():
    assert sizes(chunk_bounds(10_000, 2000, 2, whole_rounds=True)) == [1667] * 4 + [1666] * 2
    assert sizes(chunk_bounds(400, 2000, 2, min_split=64, whole_rounds=True)) == [200, 200]
    assert sizes(chunk_bounds(100, 2000, 2, min_split=64, whole_rounds=True)) == [100]
    assert sizes(chunk_bounds(4100, 2000, 2)) == [1367, 1367, 1366]  # the flow's plan is unchanged
