"""Verification in the cluster stage: describe the candidates' images, verify their pairs, keep the verdicts.

:class:`PairChecks` is what :func:`imgdedup.pipeline.clustering.cluster` hands to
the clustering as its verifier: it verifies each candidate pair once (on a
thread per core), and any other pair the clustering asks about (a member against
its keeper) when asked, reusing the verdicts an earlier run kept in the store
(:mod:`imgdedup.search.verdicts`), so an unchanged rerun decodes nothing again.

Memory holds one batch's evidence (about 60 KB an image), not every candidate's:
the pairs come a batch of at most a few thousand images at a time
(:mod:`imgdedup.search.batches`). In ``find`` the batches are
:class:`~imgdedup.pipeline.verify_jobs.VerifyJob` s on the worker processes
(:mod:`imgdedup.pipeline.verify_jobs`), in ``run`` ``verify_job`` tasks on
the Dask workers; either sends back verdicts only. With one core, or too few batches
to be worth the workers, this process verifies them on its threads.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from imgdedup.config import Config
from imgdedup.pipeline.results import ImageTable
from imgdedup.pipeline.verify_jobs import (
    JobResult,
    MapJobs,
    VerifyJob,
    describe_candidates,
    describe_file,
    judge,
    table_record,
)
from imgdedup.search.batches import pair_batches
from imgdedup.search.verdicts import (
    NO_SCORES,
    Verdict,
    as_digest_bytes,
    build_table,
    load_verdicts,
    positions_in,
    renumbered,
    save_verdicts,
    slim,
    verdicts_location,
)
from imgdedup.search.verify import VERIFY_RULES
from imgdedup.storage.store import Store

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


def verdict_settings(config: Config) -> dict:
    """What a verdict depends on besides the two files: the rules' version and thresholds."""
    fields = [
        name for name in type(config).model_fields if name.startswith("verify_") and name not in CANDIDATE_SETTINGS
    ]
    return {"rules": VERIFY_RULES, **{name: getattr(config, name) for name in sorted(fields)}}


class PairChecks:
    """Verdicts of a run's pairs (see the module docstring), checked a batch at a time.

    :meth:`candidates` takes the run's candidate pairs and the verdicts an
    earlier run kept of them; :meth:`check` describes one batch's images and
    verifies its pairs no earlier run verified; :meth:`verify` answers for any
    pair, and checks any other pair when asked (a member against its keeper),
    describing its images when the batch held them not. The evidence of a batch
    is dropped when the next is checked (:meth:`forget` drops what is held), so
    memory holds one batch's evidence, not every candidate's. The candidates'
    verdicts are arrays (a million generated scenes have 3.1 million chance pairs:
    held as Python tuples by pair, they took gigabytes).

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
        self.kept = load_verdicts(self.location)
        n = len(table.ids)
        self._digests = as_digest_bytes(table.digests)
        # facts of each image, by its digest: from the kept file, then from this run's descriptions
        self._fact_known, self._fact_camera, self._fact_low = self.kept.facts_of(self._digests)
        # the candidate pairs as sorted keys a * N + b (a < b), and their verdicts: ok, a reason code
        # (-1: not judged yet), and the scores of verified ones by position
        self._keys = np.zeros(0, dtype=np.int64)
        self._ok = np.zeros(0, dtype=bool)
        self._code = np.zeros(0, dtype=np.int16)
        self._counted = np.zeros(0, dtype=bool)
        self._scores: dict[int, Mapping] = {}
        self._reasons: list[str] = []
        self._code_of: dict[str, int] = {}
        self._extra: dict[tuple[int, int], Verdict] = {}  # pairs checked on request: a member and its keeper
        self.outcomes: dict[str, int] = {}
        self.evidence: dict = {}
        self.camera = np.zeros(n, bool)
        self.low_information = 0
        self._seen = np.zeros(n, bool)  # images whose facts are taken (in two batches: once)
        # one pool for every batch: threads made afresh per batch each take a malloc arena of their
        # own, and the arenas' fragments added 0.9 GB to `run`'s flow process at 100k images
        self._pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 1)

    def _reason_code(self, reason: str) -> int:
        code = self._code_of.get(reason)
        if code is None:
            code = self._code_of[reason] = len(self._reasons)
            self._reasons.append(reason)
        return code

    def _kept_codes(self) -> np.ndarray:
        """The kept file's reason codes as this run's."""
        return np.asarray([self._reason_code(r) for r in self.kept.reasons] or [0], dtype=np.int16)

    def _pair_keys(self, i, j) -> np.ndarray:
        """The key ``a * N + b`` (``a <= b``) of each pair ``(i[k], j[k])``, either order."""
        i, j = np.asarray(i, dtype=np.int64), np.asarray(j, dtype=np.int64)
        return np.minimum(i, j) * len(self.table.ids) + np.maximum(i, j)

    def candidates(self, i: np.ndarray, j: np.ndarray) -> None:
        """Take the run's candidate pairs ``(i, j)``, with the verdicts an earlier run kept of them."""
        self._keys = np.unique(self._pair_keys(i, j))
        self._ok = np.zeros(len(self._keys), dtype=bool)
        self._code = np.full(len(self._keys), -1, dtype=np.int16)
        self._counted = np.zeros(len(self._keys), dtype=bool)
        self._scores = {}
        a, b = self._pairs_at(np.arange(len(self._keys)))
        rows = self.kept.rows_of(self._digests[a], self._digests[b])
        hit = np.flatnonzero(rows >= 0)
        self._ok[hit] = self.kept.ok[rows[hit]]
        self._code[hit] = self._kept_codes()[self.kept.evidence[rows[hit]]]
        verified = hit[self._ok[hit]]
        for position, row in zip(verified.tolist(), rows[verified].tolist()):
            self._scores[position] = self.kept.scores.get(row) or {}

    def _positions(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Positions of the candidate pairs ``(i, j)`` among the candidates, each once."""
        found = positions_in(self._keys, np.unique(self._pair_keys(i, j)))
        if np.any(found < 0):
            raise ValueError("pairs that are not among the candidates (call `candidates` first)")
        return found

    def _pairs_at(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.divmod(self._keys[positions], len(self.table.ids))

    def _keep(self, position: int, verdict: Verdict) -> None:
        self._ok[position] = verdict[0]
        self._code[position] = self._reason_code(verdict[1])
        if verdict[0]:
            self._scores[position] = verdict[2]

    def _take_facts(self, k: int, camera: bool, low_information: bool) -> None:
        self._fact_known[k], self._fact_camera[k], self._fact_low[k] = True, camera, low_information

    def check(self, i: np.ndarray, j: np.ndarray) -> None:
        """Describe the images of candidate pairs ``(i, j)`` and verify those no earlier run verified."""
        self._check_planned(*self._plan(i, j))

    def _check_planned(self, positions, todo, involved, undescribed) -> None:
        """:meth:`check` of pairs :meth:`_plan` planned."""
        ta, tb = self._pairs_at(todo)
        wanted = np.unique(np.concatenate([ta, tb, undescribed]))
        self.forget()  # the last batch's evidence, before this one's is read: its keeper checks are done
        self.evidence = describe_candidates(self.table, wanted, self.config.max_image_pixels, pool=self._pool)
        for k, found in self.evidence.items():
            if found is not None:
                self._take_facts(k, found.camera, found.low_information)
        # on a thread per core (OpenCV's matching and warping release the GIL); keeper checks
        # come later, one by one, as the clustering asks
        keys = list(zip(ta.tolist(), tb.tolist()))
        for position, verdict in zip(todo.tolist(), self._pool.map(self._judge, keys)):
            self._keep(position, slim(verdict))
        self._count(positions, involved)

    def check_in_jobs(self, i: np.ndarray, j: np.ndarray, map_jobs: MapJobs, job_images: int) -> None:
        """Verify the candidate pairs ``(i, j)`` no earlier run verified in :class:`VerifyJob` s of at
        most ``job_images`` files each (:func:`pair_batches`), run by ``map_jobs`` (e.g. on worker
        processes) :data:`JOB_WAVE` jobs at a time; this process holds no evidence."""
        table = self.table
        positions, todo, involved, undescribed = self._plan(i, j)
        ta, tb = self._pairs_at(todo)
        batches = pair_batches(len(table.ids), ta, tb, job_images) if len(todo) else []
        if len(batches) < MIN_JOBS:  # too few to pay for starting worker processes: this process's threads
            self._check_planned(positions, todo, involved, undescribed)
            return
        in_jobs = np.zeros(len(table.ids), dtype=bool)
        in_jobs[ta] = in_jobs[tb] = True
        alone = undescribed[~in_jobs[undescribed]]

        def jobs():
            # built as they are handed out, a wave at a time: memory holds JOB_WAVE jobs, not all
            for batch in batches:
                yield self._job(np.unique(np.concatenate([ta[batch], tb[batch]])), ta[batch], tb[batch]), todo[batch]
            for start in range(0, len(alone), job_images):  # facts only: a camera, low information
                yield self._job(alone[start : start + job_images], ta[:0], tb[:0]), todo[:0]

        for wave in _waves(jobs(), JOB_WAVE):
            for (job, kept_at), result in zip(wave, map_jobs([job for job, _ in wave])):
                self._take_result(job, kept_at, result)
        self._count(positions, involved)

    def _plan(self, i: np.ndarray, j: np.ndarray):
        """The candidates' positions, those no earlier run verified, their images, and the images
        whose facts no earlier run took."""
        positions = self._positions(i, j)
        todo = positions[self._code[positions] < 0]
        involved = np.unique(np.concatenate(self._pairs_at(positions)))
        undescribed = involved[~self._fact_known[involved]]
        return positions, todo, involved, undescribed

    def _job(self, images: np.ndarray, first: np.ndarray, second: np.ndarray) -> VerifyJob:
        table = self.table
        images = np.asarray(images, dtype=np.int64)
        return VerifyJob(
            root=str(table.root),
            images=images,
            ids=tuple(table.ids[k] for k in images.tolist()),
            sizes=np.asarray(table.sizes)[images],
            mtime_ns=np.asarray(table.mtime_ns)[images],
            first=first,
            second=second,
            same=self._digests[first] == self._digests[second],
            settings=self.settings,
            max_pixels=self.config.max_image_pixels,
        )

    def _take_result(self, job: VerifyJob, positions: np.ndarray, result: JobResult) -> None:
        """Keep a job's verdicts (of the candidates at ``positions``) and its files' facts."""
        codes = np.asarray([self._reason_code(r) for r in result.reasons] or [0], dtype=np.int16)
        self._ok[positions] = result.ok
        self._code[positions] = codes[result.codes]
        for k, scores in result.scores.items():
            self._scores[int(positions[k])] = scores
        described = job.images[result.described]
        self._fact_known[described] = True
        self._fact_camera[described] = result.camera[result.described]
        self._fact_low[described] = result.low_information[result.described]

    def _count(self, positions: np.ndarray, involved: np.ndarray) -> None:
        """Count the outcomes of the candidates at ``positions`` and take the facts of ``involved``
        images (each pair and image once)."""
        fresh = positions[~self._counted[positions]]
        self._counted[fresh] = True
        for code, count in enumerate(np.bincount(self._code[fresh], minlength=len(self._reasons)).tolist()):
            if count:
                reason = self._reasons[code]
                self.outcomes[reason] = self.outcomes.get(reason, 0) + count
        first = involved[~self._seen[involved]]
        self._seen[first] = True
        known = first[self._fact_known[first]]
        self.camera[known] = self._fact_camera[known]
        self.low_information += int(self._fact_low[known].sum())

    def forget(self) -> None:
        """Drop the evidence of the last batch checked."""
        self.evidence = {}

    def close(self) -> None:
        """Drop the evidence held and end the threads (verdicts stay; :meth:`save` keeps them)."""
        self.forget()
        self._pool.shutdown()

    def _judge(self, key: tuple[int, int]) -> Verdict:
        for k in key:  # a keeper check comes after its batch's evidence was dropped
            if k not in self.evidence:
                self.evidence[k] = describe_file(
                    self.table.root, table_record(self.table, k), self.config.max_image_pixels
                )
        a, b = key
        return judge(self.evidence.get(a), self.evidence.get(b), self._digests[a] == self._digests[b], self.settings)

    def _verdict_at(self, position: int) -> Verdict:
        reason = self._reasons[int(self._code[position])]
        if self._ok[position]:
            return True, reason, self._scores.get(position) or {}
        return slim((False, reason, NO_SCORES))

    def verified(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Whether each candidate pair ``(i, j)`` is verified (every one checked by now)."""
        found = positions_in(self._keys, self._pair_keys(i, j))
        if np.any(found < 0) or np.any(self._code[found] < 0):
            raise ValueError("pairs that are not checked candidates")
        return self._ok[found]

    def verify(self, a: int, b: int) -> Verdict:
        """The verdict of images ``a`` and ``b`` (a :data:`imgdedup.search.cluster.Verifier`)."""
        key = (min(a, b), max(a, b))
        position = int(positions_in(self._keys, self._pair_keys([a], [b]))[0])
        if position >= 0:
            if self._code[position] < 0:  # a candidate no batch held yet
                self._keep(position, slim(self._recall_or_judge(key)))
            if not self._counted[position]:
                self._count(np.asarray([position]), np.zeros(0, dtype=np.int64))
            return self._verdict_at(position)
        verdict = self._extra.get(key)
        if verdict is None:  # checked and counted once
            verdict = self._extra[key] = slim(self._recall_or_judge(key))
            self.outcomes[verdict[1]] = self.outcomes.get(verdict[1], 0) + 1
        return verdict

    def _recall_or_judge(self, key: tuple[int, int]) -> Verdict:
        """The kept verdict of two images, or a fresh one."""
        row = int(self.kept.rows_of(self._digests[[key[0]]], self._digests[[key[1]]])[0])
        return self.kept.verdict(row) if row >= 0 else self._judge(key)

    def save(self) -> None:
        """Keep this run's verdicts in the store, with those of its current files from earlier runs."""
        judged = np.flatnonzero(self._code >= 0)
        a, b = self._pairs_at(judged)
        extra = list(self._extra.items())
        run_a = np.concatenate([a, np.asarray([k[0] for k, _ in extra], dtype=np.int64)])
        run_b = np.concatenate([b, np.asarray([k[1] for k, _ in extra], dtype=np.int64)])
        ok = np.concatenate([self._ok[judged], np.asarray([v[0] for _, v in extra], dtype=bool)])
        codes = np.concatenate(
            [self._code[judged], np.asarray([self._reason_code(v[1]) for _, v in extra], dtype=np.int16)]
        )
        scores = renumbered(self._scores, judged, len(self._keys))
        scores.update({len(judged) + n: v[2] for n, (_, v) in enumerate(extra) if v[0]})
        readable = codes != self._reason_code("unreadable")  # it may be readable next time
        # an earlier run's verdicts and facts of files still here
        kept = self.kept
        current = positions_in(np.unique(self._digests), kept.digests) >= 0
        old = np.flatnonzero(current[kept.a] & current[kept.b])
        run_rows = np.flatnonzero(readable)
        offset = len(self._digests)
        old_fact_at = np.flatnonzero(current[kept.described])
        old_facts = kept.described[old_fact_at]
        known = np.flatnonzero(self._fact_known)
        table = build_table(
            np.concatenate([self._digests, kept.digests]),
            np.concatenate([run_a[run_rows], offset + kept.a[old]]),
            np.concatenate([run_b[run_rows], offset + kept.b[old]]),
            np.concatenate([ok[run_rows], kept.ok[old]]),
            np.concatenate([codes[run_rows], self._kept_codes()[kept.evidence[old]]]),
            tuple(self._reasons),
            {
                **renumbered(scores, run_rows, len(codes)),
                **{len(run_rows) + n: s for n, s in renumbered(kept.scores, old, len(kept)).items()},
            },
            (
                np.concatenate([self._digests[known], kept.digests[old_facts]]),
                np.concatenate([self._fact_camera[known], kept.camera[old_fact_at]]),
                np.concatenate([self._fact_low[known], kept.low_information[old_fact_at]]),
            ),
        )
        save_verdicts(self.location, table)
