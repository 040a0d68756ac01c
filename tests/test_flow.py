import csv
import json
import shutil
from datetime import datetime, timezone

import pytest

from imgdedup.config import load_config
from imgdedup.flows.dedup import dedup_flow
from imgdedup.pipeline.inprocess import find_duplicates_in_folder
from imgdedup.storage.store import Store
from tests.conftest import found_pairs, known_pairs


@pytest.mark.usefixtures("prefect_harness")
def test_flow_on_two_dask_workers_equals_find(sample_folder, tmp_path):
    """The Prefect flow (DaskTaskRunner, 2 worker processes, several chunks) gives find's exact outputs."""
    folder, truth = sample_folder
    summary = dedup_flow(
        path=str(folder), out=str(tmp_path / "flow"), store=str(tmp_path / "flow-store"), chunk_size=7, n_workers=2
    )
    find_duplicates_in_folder(folder, load_config(chunk_size=7, store=str(tmp_path / "find-store")), tmp_path / "find")
    flow_dups = (tmp_path / "flow" / "duplicates.json").read_text()
    assert flow_dups == (tmp_path / "find" / "duplicates.json").read_text()
    assert found_pairs(json.loads(flow_dups)) == known_pairs(truth)
    assert summary.clusters == 5
    flow_clusters = json.loads((tmp_path / "flow" / "clusters.json").read_text())
    find_clusters = json.loads((tmp_path / "find" / "clusters.json").read_text())
    assert flow_clusters["clusters"] == find_clusters["clusters"]
    assert len(list((tmp_path / "flow" / "work").glob("chunk-*.json"))) == -(-len(truth) // 7)


@pytest.mark.usefixtures("prefect_harness")
def test_flow_publishes_artifacts(sample_folder, tmp_path):
    from prefect.artifacts import Artifact

    folder, _ = sample_folder
    dedup_flow(path=str(folder), out=str(tmp_path / "flow"), store=str(tmp_path / "store"), n_workers=1)
    table = Artifact.get("dedup-largest-clusters")
    summary = Artifact.get("dedup-summary")
    assert table is not None and summary is not None
    assert "report.html" in summary.data and f"imgdedup review {tmp_path / 'flow'}" in summary.data
    assert len(json.loads(table.data)) == 5


@pytest.mark.usefixtures("prefect_harness")
def test_a_failed_chunk_task_does_not_stop_the_run_and_is_retried(sample_folder, tmp_path):
    """One chunk's store rows cannot be written: the run still finishes, records that chunk's files as not
    processed, and the next run reads them; runs are named after their effective settings."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter

    folder, truth = sample_folder
    config = load_config(method="phash", chunk_size=7)
    store = Store.open(tmp_path / "store", row_chunk=16)
    store.ensure_array(config.hash_array("phash"), 0, "uint64")
    # chunk 1 owns rows 16..31, Zarr chunk c/1: a folder there makes every write of that chunk fail
    poison = tmp_path / "store" / "arrays.zarr" / config.hash_array("phash") / "c" / "1"
    (poison / "in-the-way").mkdir(parents=True)
    first = dedup_flow(
        path=str(folder),
        method="phash",
        out=str(tmp_path / "run1"),
        store=str(tmp_path / "store"),
        chunk_size=7,
        n_workers=2,
    )
    poisoned = [
        name for name, _, _ in json.loads((tmp_path / "run1" / "work" / "chunk-00001.json").read_text())["files"]
    ]
    with open(tmp_path / "run1" / "errors.csv", newline="") as handle:
        errors = {row["path"]: row["reason"] for row in csv.DictReader(handle)}
    assert errors == {name: "not processed: its chunk task failed" for name in poisoned}
    assert first.unreadable == len(poisoned) and first.images == len(truth) - len(poisoned)

    shutil.rmtree(poison)
    second = dedup_flow(
        path=str(folder),
        method="phash",
        out=str(tmp_path / "run2"),
        store=str(tmp_path / "store"),
        chunk_size=7,
        n_workers=2,
    )
    assert (second.unreadable, second.images, second.decoded) == (0, len(truth), len(poisoned))
    assert found_pairs(json.loads((tmp_path / "run2" / "duplicates.json").read_text())) == known_pairs(truth)

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(name={"any_": [f"dedup-{folder.name}-phash-t{config.threshold}"]})
        )
    assert len(runs) >= 2


@pytest.mark.usefixtures("prefect_harness")
def test_flow_fans_the_search_out_in_tiles_and_equals_one_search(sample_folder, tmp_path):
    """Partitions of 9 images: the flow's index runs one task per tile, and its outputs equal find's single search."""
    folder, truth = sample_folder
    settings = tmp_path / "tiles.yaml"
    settings.write_text("search_block: 9\nchunk_size: 7\n")
    dedup_flow(
        path=str(folder),
        out=str(tmp_path / "flow"),
        store=str(tmp_path / "flow-store"),
        config=str(settings),
        n_workers=2,
    )
    find_duplicates_in_folder(folder, load_config(chunk_size=7, store=str(tmp_path / "find-store")), tmp_path / "find")
    n_parts = -(-len(truth) // 9)
    assert len(list((tmp_path / "flow" / "work").glob("tile-*.npz"))) == n_parts * (n_parts + 1) // 2
    assert len(list((tmp_path / "find" / "work").glob("tile-*.npz"))) == 1
    for name in ("duplicates.json", "clusters.csv"):
        assert (tmp_path / "flow" / name).read_text() == (tmp_path / "find" / name).read_text()
    flow_clusters = json.loads((tmp_path / "flow" / "clusters.json").read_text())
    assert flow_clusters["clusters"] == json.loads((tmp_path / "find" / "clusters.json").read_text())["clusters"]


@pytest.mark.usefixtures("prefect_harness")
def test_flow_verifies_its_candidates_in_tasks_on_the_dask_workers(sample_folder, tmp_path, monkeypatch):
    """Verification jobs of 2 images: verify_job tasks on the workers, nothing described in the flow's
    process, and the clusters of find's verification on threads."""
    from prefect import get_client
    from prefect.client.schemas.filters import TaskRunFilter

    import imgdedup.pipeline.clustering as clustering
    import imgdedup.pipeline.verification as verification

    folder, truth = sample_folder
    find_duplicates_in_folder(
        folder, load_config(find_workers=1, store=str(tmp_path / "find-store")), tmp_path / "find"
    )
    described = []
    real_describe = verification.describe_candidates

    def describe_candidates(table, indices, *args, **kwargs):
        described.append(len(indices))
        return real_describe(table, indices, *args, **kwargs)

    monkeypatch.setattr(verification, "describe_candidates", describe_candidates)
    monkeypatch.setattr(clustering, "VERIFY_BATCH_IMAGES", 2)
    started = datetime.now(timezone.utc)
    summary = dedup_flow(
        path=str(folder), out=str(tmp_path / "flow"), store=str(tmp_path / "flow-store"), chunk_size=7, n_workers=2
    )
    assert described == []
    flow_clusters = json.loads((tmp_path / "flow" / "clusters.json").read_text())
    find_clusters = json.loads((tmp_path / "find" / "clusters.json").read_text())
    assert flow_clusters["clusters"] == find_clusters["clusters"] and summary.clusters == 5
    assert flow_clusters["verification"] == find_clusters["verification"]
    assert found_pairs(json.loads((tmp_path / "flow" / "duplicates.json").read_text())) == known_pairs(truth)

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            task_run_filter=TaskRunFilter(name={"like_": "verify_job-"}, start_time={"after_": started})
        )
    assert len(runs) >= 2 and all(run.state.is_completed() for run in runs)
