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
MapJobs = Callable[[Sequence["VerifyJob"]], Sequence["JobResult"]]


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

    Files are ``images`` (indices in the run's image table) with their ``ids``, ``sizes`` and
    ``mtime_ns``; pairs are ``(first[k], second[k])`` by image index, ``same[k]`` when their
    contents are equal. Arrays, not a Python object per file and pair: the flow process builds
    and pickles hundreds of jobs of thousands of pairs at a million images. Only verdicts and
    facts come back (:class:`JobResult`): the evidence (about 60 KB an image) stays in the worker.
    """

    root: str
    images: np.ndarray
    ids: tuple[str, ...]
    sizes: np.ndarray
    mtime_ns: np.ndarray
    first: np.ndarray
    second: np.ndarray
    same: np.ndarray
    settings: VerifySettings
    max_pixels: int


@dataclass(frozen=True)
class JobResult:
    """What a :class:`VerifyJob` sends back, as arrays aligned with its pairs and its files.

    ``ok[k]`` and ``reasons[codes[k]]`` are pair ``k``'s verdict; ``scores`` holds the
    verified pairs' scores by ``k`` (a refuted pair keeps its reason only, as it is kept:
    most of a large run's pairs are refuted chance look-alikes). ``described[f]`` says
    whether file ``f`` was readable, ``camera`` and ``low_information`` its facts.
    """

    ok: np.ndarray
    codes: np.ndarray
    reasons: tuple[str, ...]
    scores: dict[int, dict]
    described: np.ndarray
    camera: np.ndarray
    low_information: np.ndarray


def run_verify_job(job: VerifyJob) -> JobResult:
    """Describe a job's files and verify its pairs."""
    files = zip(job.images.tolist(), job.ids, job.sizes.tolist(), job.mtime_ns.tolist())
    evidence = {
        k: describe_file(job.root, FileRecord(id=file_id, size=size, mtime_ns=mtime), job.max_pixels)
        for k, file_id, size, mtime in files
    }
    ok = np.zeros(len(job.first), dtype=bool)
    codes = np.zeros(len(job.first), dtype=np.int16)
    reasons: dict[str, int] = {}
    scores: dict[int, dict] = {}
    for n, (a, b, same) in enumerate(zip(job.first.tolist(), job.second.tolist(), job.same.tolist())):
        verified, reason, pair_scores = judge(evidence.get(a), evidence.get(b), same, job.settings)
        ok[n], codes[n] = verified, reasons.setdefault(reason, len(reasons))
        if verified:
            scores[n] = dict(pair_scores)
    found = [evidence[k] for k in job.images.tolist()]
    return JobResult(
        ok,
        codes,
        tuple(reasons),
        scores,
        np.asarray([f is not None for f in found], dtype=bool),
        np.asarray([f is not None and f.camera for f in found], dtype=bool),
        np.asarray([f is not None and f.low_information for f in found], dtype=bool),
    )
