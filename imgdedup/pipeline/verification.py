"""Verification in the cluster stage: describe the candidates' images, verify their pairs, keep the verdicts.

:class:`PairChecks` is what :func:`imgdedup.pipeline.clustering.cluster` hands to
the clustering as its verifier: it verifies each candidate pair once (on a
thread per core), and any other pair the clustering asks about (a member against
its keeper) when asked, reusing the verdicts an earlier run kept in the store
(:mod:`imgdedup.search.verdicts`), so an unchanged rerun decodes nothing again.

Memory holds one batch's evidence (about 60 KB an image), not every candidate's:
the pairs come a batch of at most a few thousand images at a time
(:mod:`imgdedup.search.batches`). In ``find`` the batches are :class:`VerifyJob` s
on the worker processes (:func:`run_verify_job`), in ``run`` ``verify_job`` tasks on
the Dask workers; either sends back verdicts only. With one core, or too few batches
to be worth the workers, this process verifies them on its threads.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from imgdedup.config import Config
from imgdedup.errors import ImageLoadError
from imgdedup.imaging.describe import describe_image
from imgdedup.imaging.discover import FileRecord, read_bytes
from imgdedup.pipeline.results import ImageTable
from imgdedup.search.batches import pair_batches
from imgdedup.search.verdicts import Verdict, digest_key, load_verdicts, save_verdicts, slim, verdicts_location
from imgdedup.search.verify import VERIFY_RULES, VerifySettings, verify_pair
from imgdedup.storage.store import Store

#: ``map_jobs(jobs)``: each :class:`VerifyJob`'s :func:`run_verify_job` result, in order.
MapJobs = Callable[[Sequence["VerifyJob"]], Sequence[tuple]]
#: Fewest jobs worth worker processes: fewer run on this process's threads (starting the
#: workers costs about a second of imports each).
MIN_JOBS = 2
#: Jobs handed to ``map_jobs`` at once. A million generated scenes have 3.1 million chance
#: candidate pairs, whose jobs, all built and submitted together, took the flow process past 4 GB;
#: a wave ends when its slowest job does, so it is many jobs long.
JOB_WAVE = 64
#: Settings that choose the candidates, not a verdict.
CANDIDATE_SETTINGS = ("verify_floor", "verify_neighbours", "verify_near_floor", "verify_near_bits")


def _waves(items: Iterator, size: int) -> Iterator[list]:
    """``items`` in lists of ``size`` (the last one shorter)."""
    wave = []
    for item in items:
        wave.append(item)
        if len(wave) == size:
            yield wave
            wave = []
    if wave:
        yield wave


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


def verdict_settings(config: Config) -> dict:
    """What a verdict depends on besides the two files: the rules' version and thresholds."""
    fields = [
        name for name in type(config).model_fields if name.startswith("verify_") and name not in CANDIDATE_SETTINGS
    ]
    return {"rules": VERIFY_RULES, **{name: getattr(config, name) for name in sorted(fields)}}


class PairChecks:
    """Verdicts of a run's pairs (see the module docstring), checked a batch at a time.

    :meth:`check` describes one batch's images and verifies its candidate pairs;
    :meth:`verify` answers for any pair checked, and checks any other pair when
    asked (a member against its keeper), describing its images when the batch
    held them not. The evidence of a batch is dropped when the next is checked
    (:meth:`forget` drops what is held), so memory holds one batch's evidence,
    not every candidate's.

    Attributes
    ----------
    outcomes : dict
        Checks made by this run, by evidence or reason refuted (pairs verified by
        an earlier run count too: the summary says how the run's pairs were judged).
    camera : (N,) bool ndarray
        Whether each image of a checked batch names a camera in its EXIF.
    low_information : int
        Images of checked batches that are low-information.
    """

    def __init__(self, table: ImageTable, store: Store, config: Config):
        self.table, self.config, self.settings = table, config, config.verify_settings
        self.location = verdicts_location(store.path, verdict_settings(config))
        self.cache = load_verdicts(self.location)
        self.verdicts: dict[tuple[int, int], Verdict] = {}
        self.outcomes: dict[str, int] = {}
        self.evidence: dict = {}
        self.camera = np.zeros(len(table.ids), bool)
        self.low_information = 0
        self._counted: set[tuple[int, int]] = set()
        self._seen = np.zeros(len(table.ids), bool)  # images whose facts are taken (in two batches: once)
        # one pool for every batch: threads made afresh per batch each take a malloc arena of their
        # own, and the arenas' fragments added 0.9 GB to `run`'s flow process at 100k images
        self._pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 1)

    def check(self, i: np.ndarray, j: np.ndarray) -> None:
        """Describe the images of pairs ``(i, j)`` and verify the pairs no earlier run verified."""
        self._check_planned(*self._plan(i, j))

    def _check_planned(self, keys, todo, involved, undescribed) -> None:
        """:meth:`check` of pairs :meth:`_plan` planned."""
        table = self.table
        wanted = np.unique(np.asarray([k for key in todo for k in key] + undescribed, dtype=np.int64))
        self.forget()  # the last batch's evidence, before this one's is read: its keeper checks are done
        self.evidence = describe_candidates(table, wanted, self.config.max_image_pixels, pool=self._pool)
        for k, found in self.evidence.items():
            if found is not None:
                self.cache.facts[str(table.digests[k])] = (found.camera, found.low_information)
        # on a thread per core (OpenCV's matching and warping release the GIL); keeper checks
        # come later, one by one, as the clustering asks
        for key, verdict in zip(todo, self._pool.map(self._judge, todo)):
            self.verdicts[key] = slim(verdict)
        self._count(keys, involved)

    def check_in_jobs(self, i: np.ndarray, j: np.ndarray, map_jobs: MapJobs, job_images: int) -> None:
        """Verify the pairs ``(i, j)`` no earlier run verified in :class:`VerifyJob` s of at most
        ``job_images`` files each (:func:`pair_batches`), run by ``map_jobs`` (e.g. on worker
        processes) :data:`JOB_WAVE` jobs at a time; this process holds no evidence."""
        table = self.table
        keys, todo, involved, undescribed = self._plan(i, j)
        ti, tj = np.asarray(todo, dtype=np.int64).reshape(-1, 2).T
        batches = pair_batches(len(table.ids), ti, tj, job_images) if todo else []
        if len(batches) < MIN_JOBS:  # too few to pay for starting worker processes: this process's threads
            self._check_planned(keys, todo, involved, undescribed)
            return
        in_jobs = np.zeros(len(table.ids), dtype=bool)
        in_jobs[ti] = in_jobs[tj] = True
        alone = np.asarray([k for k in undescribed if not in_jobs[k]], dtype=np.int64)

        def jobs():
            # built as they are handed out, a wave at a time: memory holds JOB_WAVE jobs, not all
            for batch in batches:
                pairs = [(a, b) for a, b in zip(ti[batch].tolist(), tj[batch].tolist())]
                yield self._job(np.unique(np.concatenate([ti[batch], tj[batch]])), pairs)
            for start in range(0, len(alone), job_images):  # facts only: a camera, low information
                yield self._job(alone[start : start + job_images], [])

        for wave in _waves(jobs(), JOB_WAVE):
            for job, (verdicts, facts) in zip(wave, map_jobs(wave)):
                for (a, b, _), verdict in zip(job.pairs, verdicts):
                    self.verdicts[(a, b)] = slim(verdict)
                for k, found in facts.items():
                    if found is not None:
                        self.cache.facts[str(table.digests[k])] = found
        self._count(keys, involved)

    def _plan(self, i: np.ndarray, j: np.ndarray):
        """The pairs as sorted keys, those no earlier run verified, their images, and the images
        whose facts no earlier run took."""
        table = self.table
        keys = sorted({(min(a, b), max(a, b)) for a, b in zip(np.asarray(i).tolist(), np.asarray(j).tolist())})
        todo = [key for key in keys if digest_key(table.digests, *key) not in self.cache.verdicts]
        involved = np.unique(np.asarray(keys, dtype=np.int64).ravel())
        undescribed = [k for k in involved.tolist() if str(table.digests[k]) not in self.cache.facts]
        return keys, todo, involved, undescribed

    def _job(self, images: np.ndarray, pairs: list[tuple[int, int]]) -> VerifyJob:
        table = self.table
        files = tuple((k, table_record(table, k)) for k in np.asarray(images).tolist())
        same = [bool(table.digests[a] == table.digests[b]) for a, b in pairs]
        return VerifyJob(
            str(table.root),
            files,
            tuple((a, b, s) for (a, b), s in zip(pairs, same)),
            self.settings,
            self.config.max_image_pixels,
        )

    def _count(self, keys: list[tuple[int, int]], involved: np.ndarray) -> None:
        """Count the outcomes of ``keys`` and take the facts of ``involved`` images (each image once)."""
        for key in keys:
            self.verify(*key)
        for k in involved[~self._seen[involved]].tolist():
            self._seen[k] = True
            facts = self.cache.facts.get(str(self.table.digests[k]))
            if facts is not None:
                self.camera[k] = facts[0]
                self.low_information += int(facts[1])

    def forget(self) -> None:
        """Drop the evidence of the last batch checked."""
        self.evidence = {}

    def close(self) -> None:
        """Drop the evidence held and end the threads (verdicts stay; :meth:`save` keeps them)."""
        self.forget()
        self._pool.shutdown()

    def _judge(self, key: tuple[int, int]) -> Verdict:
        known = self.cache.verdicts.get(digest_key(self.table.digests, *key))
        if known is not None:
            return known
        for k in key:  # a keeper check comes after its batch's evidence was dropped
            if k not in self.evidence:
                self.evidence[k] = describe_file(
                    self.table.root, table_record(self.table, k), self.config.max_image_pixels
                )
        a, b = key
        return judge(
            self.evidence.get(a), self.evidence.get(b), self.table.digests[a] == self.table.digests[b], self.settings
        )

    def verify(self, a: int, b: int) -> Verdict:
        """The verdict of images ``a`` and ``b`` (a :data:`imgdedup.search.cluster.Verifier`)."""
        key = (min(a, b), max(a, b))
        if key not in self.verdicts:
            self.verdicts[key] = slim(self._judge(key))
        if key not in self._counted:
            self._counted.add(key)
            outcome = self.verdicts[key][1]
            self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        return self.verdicts[key]

    def save(self) -> None:
        """Keep this run's verdicts in the store, with those of its current files from earlier runs."""
        for key, verdict in self.verdicts.items():
            if verdict[1] != "unreadable":  # it may be readable next time
                self.cache.verdicts[digest_key(self.table.digests, *key)] = verdict
        save_verdicts(self.location, self.cache.kept(str(d) for d in self.table.digests))
