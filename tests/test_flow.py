import json

import pytest

from imgdedup.flows.dedup import dedup_flow
from imgdedup.config import load_config
from imgdedup.pipeline.stages import find_duplicates_in_folder
from tests.conftest import found_pairs, known_pairs


@pytest.mark.usefixtures("prefect_harness")
def test_flow_on_two_dask_workers_equals_find(sample_folder, tmp_path):
    """The Prefect flow (DaskTaskRunner, 2 worker processes, several chunks) gives find's exact outputs."""
    folder, truth = sample_folder
    summary = dedup_flow(path=str(folder), out=str(tmp_path / "flow"), store=str(tmp_path / "flow-store"), chunk_size=7, n_workers=2)
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
