"""The ``dedup`` flow: preprocess -> hash and embed chunks (on Dask) -> commit -> index -> cluster -> report.

``dedup_flow`` takes the run's parameters (as a deployment or the ``run``
command passes them), builds the configuration and the Dask task runner from
them, and runs ``dedup_stages`` on that runner: a LocalCluster sized by the
config, or an existing scheduler given by ``address``.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Optional

import dask
from prefect import flow, get_run_logger, unmapped
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect_dask import DaskTaskRunner

from imgdedup.config import Config, Cosine, FolderRule, Method, PositiveInt, PositiveNumber, Threshold, load_config
from imgdedup.storage.locations import join
from imgdedup.storage.locations import is_url
from imgdedup.pipeline.stages import RunSummary, default_out_dir, open_store, prepare_out_dir
from imgdedup.review.report import human_bytes
from imgdedup.pipeline.results import read_json
from imgdedup.flows.placement import Placement, place_tasks, scheduler_worker_resources
from imgdedup.pipeline.plan import read_plan
from imgdedup.tasks.dedup import cluster, commit, embed_chunk, hash_chunk, index, preprocess, report

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
            "dashboard_address": ":0",  # a free port: a fixed one may be taken (and its warning is an error in tests)
            # declared, so chunk tasks can ask for CPU workers (see imgdedup.flows.placement)
            "resources": {"CPU": config.threads_per_worker},
        }
    )


def current_placement() -> Placement:
    """Resource requests for this run's chunk tasks, from the workers of its Dask cluster."""
    from prefect.context import get_run_context

    client = get_run_context().task_runner.client
    return place_tasks(scheduler_worker_resources(client.scheduler_info()))


def on_resources(resources: dict | None):
    return dask.annotate(resources=resources) if resources else contextlib.nullcontext()


@flow(name="dedup-stages")
def dedup_stages(path: str, config: Config, out_dir: str, store_path: str) -> RunSummary:
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    plan_path = preprocess(path, out_dir, config, store_path)
    seconds["preprocess"] = time.perf_counter() - started

    started = time.perf_counter()
    chunk_paths = read_plan(plan_path).chunk_paths
    placement = current_placement()
    with on_resources(placement.hash):
        chunk_futures = hash_chunk.map(chunk_paths, config=unmapped(config))
    if config.uses_embeddings:
        with on_resources(placement.embed):
            chunk_futures = embed_chunk.map(chunk_futures, chunk_paths, config=unmapped(config))
    logger, chunk_results = get_run_logger(), []
    for number, future in enumerate(chunk_futures, start=1):  # in order: a log line as each chunk is in
        chunk_results.append(future.result())
        logger.info("chunk %d/%d done (%.0f s into reading)", number, len(chunk_futures), time.perf_counter() - started)
    seconds["hash"] = time.perf_counter() - started

    started = time.perf_counter()
    manifest_path = commit(plan_path, config, chunk_results)
    seconds["commit"] = time.perf_counter() - started

    started = time.perf_counter()
    pairs_path = index(plan_path, config, out_dir, manifest_path)
    seconds["index"] = time.perf_counter() - started

    started = time.perf_counter()
    clusters_path = cluster(plan_path, pairs_path, config, out_dir)
    seconds["cluster"] = time.perf_counter() - started

    return report(clusters_path, config, out_dir, seconds)


def artifact_key(base: str) -> str:
    """``base``, suffixed with the deployment's name when run from one, so each deployment keeps its own history."""
    import re

    from prefect.runtime import deployment

    name = deployment.name
    return base if not name else f"{base}-{re.sub(r'[^a-z0-9]+', '-', str(name).lower()).strip('-')}"


def publish_artifacts(summary: RunSummary, clusters_path: str) -> None:
    clusters = sorted(read_json(clusters_path)["clusters"], key=lambda c: (-c["reclaimable_bytes"], c["cluster"]))
    rows = [
        {
            "cluster": c["cluster"],
            "images": len(c["members"]),
            "keeper": os.fsencode(c["keeper"]).decode("utf-8", "replace"),
            "reclaimable": human_bytes(c["reclaimable_bytes"]),
        }
        for c in clusters[:ARTIFACT_ROWS]
    ]
    create_table_artifact(key=artifact_key("dedup-largest-clusters"), table=rows, description=f"Largest of {len(clusters)} clusters")
    report_uri = summary.report if is_url(summary.report) else Path(summary.report).resolve().as_uri()
    create_markdown_artifact(
        key=artifact_key("dedup-summary"),
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
                "",
                f"Review and decide in the browser: `imgdedup review {summary.out_dir}`; "
                f"clean up the exact copies: `imgdedup apply {summary.out_dir} --action delete --tier exact`",
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
    method: Optional[Method] = None,
    threshold: Optional[Threshold] = None,
    min_similarity: Optional[Cosine] = None,
    out: Optional[str] = None,
    store: Optional[str] = None,
    config: Optional[str] = None,
    address: Optional[str] = None,
    compat: Optional[bool] = None,
    recursive: Optional[bool] = None,
    chunk_size: Optional[PositiveInt] = None,
    n_workers: Optional[PositiveInt] = None,
    rule_folders: Optional[FolderRule] = None,
    rule_ignore: Optional[list[str]] = None,
    rule_max_resolution_ratio: Optional[PositiveNumber] = None,
    rule_max_aspect_difference: Optional[PositiveNumber] = None,
) -> RunSummary:
    """Find duplicate images under ``path``; parameters left empty come from the config.

    Args:
        path: Folder of images to scan, or a URL prefix (s3://bucket/photos, any fsspec protocol).
        method: hybrid (default), cnn, phash, dhash, ahash or whash.
        threshold: Largest Hamming distance (0-64) counted as a duplicate.
        min_similarity: cnn/hybrid: smallest cosine similarity counted as a duplicate.
        out: Run folder for the results, a local folder or a URL such as s3://bucket/runs/x
            (default: a new folder under ./imgdedup-runs/).
        store: Incremental store, a local folder or a URL (default: one per scanned root).
        config: A YAML configuration path, or a name in configs/.
        address: An existing Dask scheduler (tcp://host:8786); default: a LocalCluster.
        compat: imagededup 0.3.3's pixel path.
        recursive: Walk sub-folders.
        chunk_size: Images per chunk task.
        n_workers: Worker processes of the LocalCluster.
        rule_folders: Pair rule: any, same (pairs only within a folder) or different (only across folders).
        rule_ignore: Pair rule: glob patterns; pairs with a matching file are vetoed.
        rule_max_resolution_ratio: Pair rule: largest ratio of pixel counts within a pair.
        rule_max_aspect_difference: Pair rule: largest relative difference of aspect ratios within a pair.
    """
    settings = load_config(
        config, method=method, threshold=threshold, min_similarity=min_similarity, store=store, address=address,
        compat=compat, recursive=recursive, chunk_size=chunk_size, n_workers=n_workers, rule_folders=rule_folders,
        rule_ignore=tuple(rule_ignore) if rule_ignore is not None else None,
        rule_max_resolution_ratio=rule_max_resolution_ratio, rule_max_aspect_difference=rule_max_aspect_difference,
    )
    out_dir = str(prepare_out_dir(out or default_out_dir()))
    run_store = open_store(path, settings)
    with run_store.lock():
        runner = dask_task_runner(settings)
        summary = dedup_stages.with_options(task_runner=runner)(path, settings, out_dir, str(run_store.path))
    publish_artifacts(summary, str(join(out_dir, "clusters.json")))
    return summary
