"""Verification jobs: describe a share of a run's images and verify its pairs, anywhere.

:class:`VerifyJob` is the unit :class:`imgdedup.pipeline.verification.PairChecks`
hands to worker processes (``find``) or Dask workers (``run``, the ``verify_job``
task): the files to describe and the pairs to verify, by index.
:func:`run_verify_job` sends back verdicts and each file's facts, never the
evidence (about 60 KB an image). The helpers that describe a run's files
(:func:`describe_file`, :func:`describe_candidates`) and judge two images'
evidence (:func:`judge`) serve both the jobs and ``PairChecks``' own threads.

Imports the imaging and search layers only (never Prefect or Dask).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from imgdedup.errors import ImageLoadError
from imgdedup.imaging.describe import describe_image
from imgdedup.imaging.discover import FileRecord, read_bytes
from imgdedup.pipeline.results import ImageTable
from imgdedup.search.verdicts import Verdict
from imgdedup.search.verify import VerifySettings, verify_pair

#: ``map_jobs(jobs)``: each :class:`VerifyJob`'s :func:`run_verify_job` result, in order.
MapJobs = Callable[[Sequence["VerifyJob"]], Sequence[tuple]]


def describe_file(root: str, record: FileRecord, max_pixels: int):
    """:class:`ImageEvidence` of the file ``record`` under ``root``, or None when it is unreadable now."""
    try:
        return describe_image(read_bytes(root, record), max_pixels)
    except (ImageLoadError, MemoryError):
        return None


def table_record(table: ImageTable, k: int) -> FileRecord:
    """The file of image ``k`` of ``table``."""
    return FileRecord(id=table.ids[k], size=int(table.sizes[k]), mtime_ns=int(table.mtime_ns[k]))


def describe_candidates(
    table: ImageTable, indices: np.ndarray, max_pixels: int, threads: int | None = None, pool: Executor | None = None
) -> dict:
    """:class:`ImageEvidence` of the images in candidate pairs (None for a file unreadable now).

    Images are described on ``pool``, or on ``threads`` threads of their own
    (default: one per core): decoding (Pillow) and keypoints (OpenCV) release
    the GIL, and threads share the result without pickling it.
    """
    wanted = np.asarray(indices).tolist()

    def describe(k: int):
        return describe_file(table.root, table_record(table, k), max_pixels)

    if pool is not None:
        return dict(zip(wanted, pool.map(describe, wanted)))
    with ThreadPoolExecutor(max_workers=threads or os.cpu_count() or 1) as own:
        return dict(zip(wanted, own.map(describe, wanted)))


def judge(a, b, same_digest: bool, settings: VerifySettings) -> Verdict:
    """The verdict of two images' evidence (``None`` for an unreadable file), with its scores
    (:class:`PairChecks` keeps it :func:`slim`)."""
    if a is None or b is None:
        return False, "unreadable", {}
    verdict = verify_pair(a, b, same_digest, settings)
    return verdict.ok, verdict.evidence, verdict.scores


@dataclass(frozen=True)
class VerifyJob:
    """A share of a run's candidate pairs for a worker process: files to describe, pairs to verify.

    ``files`` are ``(index, file)``; ``pairs`` are
    ``(a, b, same digest)`` by index. Only verdicts and facts come back: the
    evidence (about 60 KB an image) stays in the worker.
    """

    root: str
    files: tuple[tuple[int, FileRecord], ...]
    pairs: tuple[tuple[int, int, bool], ...]
    settings: VerifySettings
    max_pixels: int


def run_verify_job(job: VerifyJob) -> tuple[list[Verdict], dict[int, tuple[bool, bool] | None]]:
    """Describe a job's files and verify its pairs: the verdicts (a refuted one without its scores), in
    the order of ``job.pairs``, and each file's ``(camera, low_information)`` (None when unreadable)."""
    evidence = {k: describe_file(job.root, record, job.max_pixels) for k, record in job.files}
    # refuted pairs travel without their scores, as they are kept (slim; one empty dict, pickled once):
    # most of a large run's pairs are refuted chance look-alikes, and their scores filled the flow process
    unscored: dict = {}
    verdicts = []
    for a, b, same in job.pairs:
        verdict = judge(evidence.get(a), evidence.get(b), same, job.settings)
        verdicts.append(verdict if verdict[0] else (verdict[0], verdict[1], unscored))
    facts = {k: None if found is None else (found.camera, found.low_information) for k, found in evidence.items()}
    return verdicts, facts
