"""Prefect tasks for the dedup flow: each calls one stage of :mod:`imgdedup.pipeline`.

Tasks exchange paths or URLs (the run folder, the store), never pixel arrays. Chunk
tasks work on one chunk of files (hundreds to thousands of images), so
Prefect's per-task cost stays small beside the work.
"""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from imgdedup.config import Config
from imgdedup.pipeline import chunks, clustering, indexing, reporting
from imgdedup.pipeline.run import RunSummary
from imgdedup.pipeline.verify_jobs import JobResult, MapJobs, VerifyJob, run_verify_job
from imgdedup.storage.store import Store


@task(name="preprocess", retries=1, retry_delay_seconds=2)
def preprocess(path: str, out_dir: str, config: Config, store_path: str) -> str:
    return str(chunks.preprocess(path, out_dir, config, Store.open(store_path)))


@task(name="hash_chunk", retries=2, retry_delay_seconds=1, task_run_name="hash_chunk-{chunk_path}")
def hash_chunk(chunk_path: str, config: Config) -> str:
    return str(chunks.hash_chunk(chunk_path, config))


@task(name="embed_chunk", retries=2, retry_delay_seconds=1, task_run_name="embed_chunk-{chunk_path}")
def embed_chunk(hashed_path: str, chunk_path: str, config: Config) -> str:
    return str(chunks.embed_chunk(hashed_path, chunk_path, config, threads=config.threads_per_worker))


@task(name="commit", retries=1)
def commit(plan_path: str, config: Config) -> str:
    return str(chunks.commit(plan_path, config))


@task(name="plan_index", retries=1)
def plan_index(plan_path: str, config: Config, out_dir: str, workers: int = 1) -> str:
    return str(indexing.plan_index(plan_path, config, out_dir, workers))


@task(name="index_tile", retries=2, retry_delay_seconds=1, task_run_name="index_tile-{number}")
def index_tile(number: int, plan_path: str, search_path: str, out_dir: str) -> str:
    return str(indexing.index_tile(number, plan_path, search_path, out_dir))


@task(name="merge_index", retries=1)
def merge_index(plan_path: str, search_path: str, tile_paths: list[str], config: Config, out_dir: str) -> str:
    return str(indexing.merge_index(plan_path, search_path, tile_paths, config, out_dir))


@task(name="verify_job", retries=2, retry_delay_seconds=1, task_run_name="verify_job-{number}")
def verify_job(number: int, job: VerifyJob) -> JobResult:
    return run_verify_job(job)


# not cached: ``map_jobs`` is a function of the running flow (it submits verify_job tasks), not data
@task(name="cluster", retries=1, cache_policy=NO_CACHE)
def cluster(plan_path: str, pairs_path: str, config: Config, out_dir: str, map_jobs: MapJobs | None = None) -> str:
    return str(clustering.cluster(plan_path, pairs_path, config, out_dir, map_jobs))


@task(name="report", retries=1)
def report(clusters_path: str, config: Config, out_dir: str, seconds: dict[str, float]) -> RunSummary:
    return reporting.report(clusters_path, config, out_dir, seconds)
