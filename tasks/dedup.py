"""Prefect tasks for the dedup flow: each calls one stage of :mod:`imgdedup.pipeline`.

Tasks exchange paths inside the run folder, never pixel arrays. The hash task
works on one chunk of files (hundreds to thousands of images), so Prefect's
per-task cost stays small beside the work.
"""

from __future__ import annotations

from pathlib import Path

from prefect import task

from imgdedup import pipeline
from imgdedup.config import Config


@task(name="preprocess", retries=1, retry_delay_seconds=2)
def preprocess(path: str, out_dir: str, config: Config) -> list[str]:
    return [str(p) for p in pipeline.preprocess(path, Path(out_dir), config)]


@task(name="hash_chunk", retries=2, retry_delay_seconds=1, task_run_name="hash_chunk-{files_path}")
def hash_chunk(files_path: str, config: Config) -> str:
    return str(pipeline.hash_chunk(Path(files_path), config))


@task(name="index", retries=1)
def index(hash_paths: list[str], config: Config, out_dir: str) -> str:
    return str(pipeline.index([Path(p) for p in hash_paths], config, Path(out_dir)))


@task(name="cluster", retries=1)
def cluster(files_paths: list[str], hash_paths: list[str], pairs_path: str, config: Config, out_dir: str) -> str:
    return str(pipeline.cluster([Path(p) for p in files_paths], [Path(p) for p in hash_paths], Path(pairs_path), config, Path(out_dir)))


@task(name="report", retries=1)
def report(clusters_path: str, config: Config, out_dir: str, seconds: dict[str, float]) -> pipeline.RunSummary:
    return pipeline.report(Path(clusters_path), config, Path(out_dir), seconds)
