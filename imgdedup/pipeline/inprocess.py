"""The whole job in this process: every stage in turn, chunks and tiles on a process pool."""

from __future__ import annotations

import os
from typing import Callable, Mapping, Sequence

from imgdedup.config import Config
from imgdedup.pipeline.chunks import commit, preprocess, process_chunk_or_skip
from imgdedup.pipeline.clustering import cluster
from imgdedup.pipeline.indexing import count_tiles, index_tile, merge_index, plan_index
from imgdedup.pipeline.plan import read_chunk_work, read_plan
from imgdedup.pipeline.pool import WorkerPool, find_workers, map_chunks, threads_per_worker
from imgdedup.pipeline.reporting import report
from imgdedup.pipeline.run import RunSummary, StageClock, open_store, prepare_out_dir
from imgdedup.pipeline.verify_jobs import run_verify_job

#: ``progress(stage, done, total)``: a stage starts (``done`` 0) and advances; ``total`` is None
#: for a stage that has no count. Stages: discover (files found), read (images read, hashed and,
#: for embedding methods, embedded), commit, search, cluster, report.
Progress = Callable[[str, int, "int | None"], None]


def find_duplicates_in_folder(
    root: str | os.PathLike,
    config: Config,
    out_dir: str | os.PathLike,
    progress: Progress | None = None,
    truth: Mapping[str, Sequence[str]] | None = None,
) -> RunSummary:
    """Run every stage in this process, as the flow does (``truth``: see :func:`~imgdedup.pipeline.reporting.report`).

    Chunks, the search's tiles and the verification jobs run on one pool of
    ``config.find_workers`` processes (default: one per core), started once; the
    result does not depend on their number.
    """
    out = prepare_out_dir(out_dir)
    store = open_store(root, config)
    workers = find_workers(config.find_workers)
    clock = StageClock()
    tell = progress or (lambda stage, done, total: None)
    with store.lock(), WorkerPool(workers) as pool:
        tell("discover", 0, None)
        with clock("preprocess"):
            plan_path = preprocess(root, out, config, store, workers)
        plan = read_plan(plan_path)
        tell("discover", plan.discovered, plan.discovered)
        tell("read", 0, plan.to_process)
        chunk_paths = [str(p) for p in plan.chunk_paths]
        sizes = [len(read_chunk_work(p).files) for p in chunk_paths]
        done = 0

        def chunk_done(number: int) -> None:
            nonlocal done
            done += sizes[number]
            tell("read", done, plan.to_process)

        # In this process the embedder may use every core; in a pool, each worker its share.
        threads = None if workers == 1 or len(chunk_paths) <= 1 else threads_per_worker(workers)
        with clock("hash"):
            map_chunks(process_chunk_or_skip, chunk_paths, (config, threads), workers, chunk_done, pool)
        tell("commit", 0, None)
        with clock("commit"):
            commit(plan_path, config)
        tell("search", 0, None)
        with clock("index"):
            search_path = plan_index(plan_path, config, out, workers)
            tiles = list(range(count_tiles(search_path)))
            tile_paths = map_chunks(index_tile, tiles, (str(plan_path), str(search_path), str(out)), workers, pool=pool)
            pairs_path = merge_index(plan_path, search_path, tile_paths, config, out)
        tell("cluster", 0, None)
        with clock("cluster"):
            # verification jobs on the worker processes: threads of one process reach ~1.7 cores
            map_jobs = None if workers == 1 else (lambda jobs: map_chunks(run_verify_job, jobs, (), workers, pool=pool))
            clusters_path = cluster(plan_path, pairs_path, config, out, map_jobs)
        tell("report", 0, None)
        return report(clusters_path, config, out, clock.seconds, truth)
