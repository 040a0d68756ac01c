"""The ``dedup`` flow: preprocess -> hash and embed chunks (on Dask) -> commit -> index tiles (on Dask) -> cluster
(its verification jobs on Dask) -> report.

``dedup_flow`` takes the run's parameters (as a deployment or the ``run``
command passes them), builds the configuration and the Dask task runner from
them, and runs ``dedup_stages`` on that runner: a LocalCluster sized by the
config, or an existing scheduler given by ``address``.
"""

from __future__ import annotations

import contextlib
import os
import time
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Mapping, Optional

import dask
from prefect import allow_failure, flow, get_run_logger, unmapped
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.futures import PrefectFuture
from prefect_dask import DaskTaskRunner

from imgdedup.config import Config, Cosine, FolderRule, Method, PositiveInt, PositiveNumber, Threshold, load_config
from imgdedup.errors import ImgdedupError
from imgdedup.flows.placement import Placement, place_tasks, scheduler_worker_resources
from imgdedup.pipeline.indexing import count_tiles
from imgdedup.pipeline.inprocess import Progress
from imgdedup.pipeline.plan import read_chunk_work, read_plan
from imgdedup.pipeline.results import read_json
from imgdedup.pipeline.run import RunSummary, StageClock, default_out_dir, open_store, prepare_out_dir
from imgdedup.pipeline.verify_jobs import JobResult, MapJobs, VerifyJob
from imgdedup.review.report import human_bytes
from imgdedup.storage.locations import is_url, join
from imgdedup.tasks.dedup import (
    cluster,
    commit,
    embed_chunk,
    hash_chunk,
    index_tile,
    merge_index,
    plan_index,
    preprocess,
    report,
    verify_job,
)

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


def worker_slots() -> int:
    """How many tasks the run's Dask cluster runs at once (its CPU workers' threads), for cutting the search."""
    from prefect.context import get_run_context

    workers = get_run_context().task_runner.client.scheduler_info()["workers"].values()
    cpu = [w for w in workers if not (w.get("resources") or {}).get("GPU")]
    return max(1, sum(int(w.get("nthreads", 1)) for w in (cpu or workers)))


def on_resources(resources: dict | None):
    return dask.annotate(resources=resources) if resources else contextlib.nullcontext()


#: The ``progress(stage, done, total)`` of a run started in this process (``imgdedup run`` sets it; see
#: :data:`imgdedup.pipeline.inprocess.Progress`): not a flow parameter, since a deployment's run has no terminal.
stage_progress: ContextVar[Progress | None] = ContextVar("imgdedup_stage_progress", default=None)


def tell(stage: str, done: int, total: int | None) -> None:
    progress = stage_progress.get()
    if progress is not None:
        progress(stage, done, total)


@flow(name="dedup-stages")
def dedup_stages(path: str, config: Config, out_dir: str, store_path: str) -> RunSummary:
    clock = StageClock()
    tell("discover", 0, None)
    with clock("preprocess"):
        plan_path = preprocess(path, out_dir, config, store_path)
    plan = read_plan(plan_path)
    tell("discover", plan.discovered, plan.discovered)
    with clock("hash"):
        chunks = chunk_tasks(plan.chunk_paths, config)
        wait_logging(chunks, [len(read_chunk_work(p).files) for p in plan.chunk_paths])
    tell("commit", 0, None)
    with clock("commit"):
        # A failed chunk does not stop the run: commit records its files as not processed, the next run retries them.
        commit(plan_path, config, wait_for=[allow_failure(f) for f in chunks])
    tell("search", 0, None)
    with clock("index"):
        search_path = plan_index(plan_path, config, out_dir, worker_slots())
        # One task per tile of the search: Dask spreads them over the workers, each reads only its rows.
        tiles = index_tile.map(
            list(range(count_tiles(search_path))),
            plan_path=unmapped(plan_path),
            search_path=unmapped(search_path),
            out_dir=unmapped(out_dir),
        )
        pairs_path = merge_index(plan_path, search_path, [f.result() for f in tiles], config, out_dir)
    tell("cluster", 0, None)
    with clock("cluster"):
        clusters_path = cluster(plan_path, pairs_path, config, out_dir, verify_on_workers(current_placement()))
    tell("report", 0, None)
    return report(clusters_path, config, out_dir, clock.seconds)


def verify_on_workers(placement: Placement) -> MapJobs:
    """The cluster stage's ``map_jobs``: its verification jobs as ``verify_job`` tasks on the (CPU) Dask workers.

    The flow process then holds verdicts only, not the evidence of a batch of images, and
    verification uses every worker of the cluster instead of this process's threads.
    """

    def map_jobs(jobs: list[VerifyJob]) -> list[JobResult]:
        with on_resources(placement.hash):
            futures = verify_job.map(list(range(len(jobs))), jobs)
        return [future.result() for future in futures]

    return map_jobs


def wait_logging(futures: list[PrefectFuture], sizes: list[int]) -> None:
    """Wait for every chunk (of ``sizes`` files each), in order, with a log line as each is in (failed ones too:
    see commit), and the files read so far as the ``read`` stage's progress."""
    logger, started = get_run_logger(), time.perf_counter()
    total, done = sum(sizes), 0
    tell("read", 0, total)
    for number, (future, size) in enumerate(zip(futures, sizes), start=1):
        future.wait()
        done += size
        tell("read", done, total)
        logger.info(
            "chunk %d/%d %s (%.0f s into reading)",
            number,
            len(futures),
            "done" if future.state.is_completed() else "FAILED",
            time.perf_counter() - started,
        )


def chunk_tasks(chunk_paths: list[str], config: Config) -> list[PrefectFuture]:
    """Submit every chunk's tasks (hash, then embed when the method needs it); one final future per chunk."""
    placement = current_placement()
    with on_resources(placement.hash):
        futures = hash_chunk.map(chunk_paths, config=unmapped(config))
    if config.uses_embeddings:
        with on_resources(placement.embed):
            futures = embed_chunk.map(futures, chunk_paths, config=unmapped(config))
    return list(futures)


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
    create_table_artifact(
        key=artifact_key("dedup-largest-clusters"), table=rows, description=f"Largest of {len(clusters)} clusters"
    )
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


#: Flow parameters that override the configuration's values.
OVERRIDES = (
    "method",
    "threshold",
    "min_similarity",
    "model",
    "store",
    "address",
    "compat",
    "recursive",
    "chunk_size",
    "n_workers",
    "rule_folders",
    "rule_ignore",
    "rule_max_resolution_ratio",
    "rule_max_aspect_difference",
)


def flow_settings(parameters: Mapping[str, Any]) -> Config:
    """The run's configuration: ``parameters["config"]`` with the flow parameters given (not None) on top."""
    overrides = {name: parameters.get(name) for name in OVERRIDES}
    if overrides["rule_ignore"] is not None:
        overrides["rule_ignore"] = tuple(overrides["rule_ignore"])
    return load_config(parameters.get("config"), **overrides)


def run_name() -> str:
    """Name a run after its effective settings, e.g. ``dedup-photos-phash-t8`` or ``dedup-photos-hybrid-t15-s0.975``."""
    from prefect.runtime import flow_run

    params = flow_run.parameters
    folder = Path(str(params.get("path", "")).rstrip("/")).name
    try:
        settings = flow_settings(params)
    except ImgdedupError:
        return f"dedup-{folder}"  # the flow itself reports the bad parameter
    similarity = f"-s{settings.min_similarity}" if settings.uses_embeddings else ""
    return f"dedup-{folder}-{settings.method}-t{settings.threshold}{similarity}"


@flow(name="dedup", flow_run_name=run_name)
def dedup_flow(
    path: str,
    method: Optional[Method] = None,
    threshold: Optional[Threshold] = None,
    min_similarity: Optional[Cosine] = None,
    model: Optional[str] = None,
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
        model: cnn/hybrid: the embedding model (efficientnet_lite0, torchvision:<name>, timm:<name>).
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
    parameters = dict(locals())  # the flow's parameters, before any other name is bound
    settings = flow_settings(parameters)
    out_dir = str(prepare_out_dir(out or default_out_dir()))
    run_store = open_store(path, settings)
    with run_store.lock():
        runner = dask_task_runner(settings)
        summary = dedup_stages.with_options(task_runner=runner)(path, settings, out_dir, str(run_store.path))
    publish_artifacts(summary, str(join(out_dir, "clusters.json")))
    return summary
