"""The ``dedup`` flow: preprocess -> hash (one task per chunk, on Dask) -> index -> cluster -> report.

``dedup_flow`` takes the run's parameters (as a deployment or the ``run``
command passes them), builds the configuration and the Dask task runner from
them, and runs ``dedup_stages`` on that runner: a LocalCluster sized by the
config, or an existing scheduler given by ``address``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Literal, Optional

from prefect import flow, unmapped
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect_dask import DaskTaskRunner

from imgdedup.config import Config, load_config
from imgdedup.pipeline import RunSummary, default_out_dir, prepare_out_dir
from imgdedup.report import human_bytes
from imgdedup.results import read_json
from tasks.dedup import cluster, hash_chunk, index, preprocess, report

ARTIFACT_ROWS = 20


def dask_task_runner(config: Config) -> DaskTaskRunner:
    """A runner on ``config.address``, or a LocalCluster of worker processes."""
    if config.address:
        return DaskTaskRunner(address=config.address)
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": config.n_workers,
            "threads_per_worker": config.threads_per_worker,
            "processes": True,
            "dashboard_address": None,
        }
    )


@flow(name="dedup-stages")
def dedup_stages(path: str, config: Config, out_dir: str) -> RunSummary:
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    files_paths = preprocess(path, out_dir, config)
    seconds["preprocess"] = time.perf_counter() - started

    started = time.perf_counter()
    hash_futures = hash_chunk.map(files_paths, config=unmapped(config))
    hash_paths = [f.result() for f in hash_futures]
    seconds["hash"] = time.perf_counter() - started

    started = time.perf_counter()
    pairs_path = index(hash_paths, config, out_dir)
    seconds["index"] = time.perf_counter() - started

    started = time.perf_counter()
    clusters_path = cluster(files_paths, hash_paths, pairs_path, config, out_dir)
    seconds["cluster"] = time.perf_counter() - started

    summary = report(clusters_path, config, out_dir, seconds)
    publish_artifacts(summary, clusters_path)
    return summary


def publish_artifacts(summary: RunSummary, clusters_path: str) -> None:
    clusters = sorted(read_json(Path(clusters_path))["clusters"], key=lambda c: (-c["reclaimable_bytes"], c["cluster"]))
    rows = [
        {
            "cluster": c["cluster"],
            "images": len(c["members"]),
            "keeper": os.fsencode(c["keeper"]).decode("utf-8", "replace"),
            "reclaimable": human_bytes(c["reclaimable_bytes"]),
        }
        for c in clusters[:ARTIFACT_ROWS]
    ]
    create_table_artifact(key="dedup-largest-clusters", table=rows, description=f"Largest of {len(clusters)} clusters")
    report_uri = Path(summary.report).resolve().as_uri()
    create_markdown_artifact(
        key="dedup-summary",
        markdown="\n".join(
            [
                f"# imgdedup: {summary.root}",
                "",
                "| | |",
                "|---|---|",
                f"| method | {summary.method}, threshold {summary.threshold} |",
                f"| images | {summary.images} of {summary.files} files |",
                f"| unreadable | {summary.unreadable} |",
                f"| clusters | {summary.clusters} |",
                f"| duplicate files | {summary.duplicates} |",
                f"| reclaimable | {human_bytes(summary.reclaimable_bytes)} |",
                "",
                f"Report: [{summary.report}]({report_uri})",
            ]
        ),
        description="Summary of the dedup run",
    )


def run_name() -> str:
    """Name a run after its parameters, e.g. ``dedup-photos-phash-t8``."""
    from prefect.runtime import flow_run

    params = flow_run.parameters
    method = params.get("method") or "default"
    threshold = params.get("threshold")
    return f"dedup-{Path(str(params.get('path', ''))).name}-{method}-t{'default' if threshold is None else threshold}"


@flow(name="dedup", flow_run_name=run_name)
def dedup_flow(
    path: str,
    method: Optional[Literal["phash", "dhash", "ahash", "whash"]] = None,
    threshold: Optional[int] = None,
    out: Optional[str] = None,
    config: Optional[str] = None,
    address: Optional[str] = None,
    compat: Optional[bool] = None,
    recursive: Optional[bool] = None,
    chunk_size: Optional[int] = None,
    n_workers: Optional[int] = None,
) -> RunSummary:
    """Find duplicate images under ``path``; parameters left empty come from the config."""
    settings = load_config(
        config, method=method, threshold=threshold, address=address, compat=compat,
        recursive=recursive, chunk_size=chunk_size, n_workers=n_workers,
    )
    out_dir = str(prepare_out_dir(out or default_out_dir()))
    runner = dask_task_runner(settings)
    return dedup_stages.with_options(task_runner=runner)(path, settings, out_dir)
