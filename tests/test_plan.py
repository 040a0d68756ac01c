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


def test_commit_finds_the_files_no_chunk_processed():
    """A file is not processed when the manifest has no entry of its fingerprint, or its entry was
    read without error but lacks a feature the run needs; an entry recorded as unreadable counts as done."""
    import numpy as np

    from imgdedup.imaging.discover import FileRecord
    from imgdedup.pipeline.chunks import _not_processed
    from imgdedup.storage.store import STATUS_ERROR, STATUS_OK, Manifest

    ids = ["same.jpg", "touched.jpg", "no-hash.jpg", "unreadable.jpg"]
    manifest = Manifest(
        ids=ids,
        size=np.array([10, 20, 30, 40]),
        mtime_ns=np.array([1, 2, 3, 4]),
        status=np.array([STATUS_OK, STATUS_OK, STATUS_OK, STATUS_ERROR], dtype=np.uint8),
        reason=np.array(["", "", "", "cannot identify image file"]),
        row=np.array([0, 1, 2, -1]),
        width=np.full(4, 8, np.int32),
        height=np.full(4, 8, np.int32),
        formats=np.array(["JPEG"] * 4),
        digests=np.array(["a", "b", "c", "d"], "U32"),
        features={"hash:phash": np.array([True, True, False, False])},
    )
    records = [
        FileRecord("same.jpg", 10, 1),
        FileRecord("touched.jpg", 20, 99),  # modified since its entry was written
        FileRecord("no-hash.jpg", 30, 3),
        FileRecord("unreadable.jpg", 40, 4),
        FileRecord("new.jpg", 50, 5),
    ]
    assert _not_processed(manifest, records, ["hash:phash"]).tolist() == [False, True, True, False, True]
    assert _not_processed(manifest, records, []).tolist() == [False, True, False, False, True]
    empty = Manifest(ids=[])
    assert _not_processed(empty, records[:2], ["hash:phash"]).tolist() == [True, True]
