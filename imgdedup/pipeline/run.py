"""Run bookkeeping: the run folder, the store it uses, the clock and the summary of a run.

Run folder layout::

    OUT/duplicates.json clusters.json clusters.csv errors.csv report.html summary.json
    OUT/thumbs/<digest>-<size>.jpg
    OUT/work/plan.json            what this run reuses and processes
    OUT/work/discovered.json      every file found, with size and mtime
    OUT/work/chunk-NNNNN.json     one chunk task: files and the store rows it owns
    OUT/work/search.npz           the index search cut into tiles
    OUT/work/tile-NNNNN.npz       one tile's pairs
    OUT/work/pairs.npz            every duplicate pair of the run

The store (see :mod:`imgdedup.storage.store`) keeps hashes, embeddings and the
manifest between runs; only new and changed files are decoded.
"""

from __future__ import annotations

import datetime as _dt
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from imgdedup.config import Config
from imgdedup.errors import OutputError
from imgdedup.review.report import display_name, human_bytes
from imgdedup.storage import locations
from imgdedup.storage.locations import Location, as_location, join
from imgdedup.storage.store import Store, default_store_path

WORK = "work"


def show_name(name: str) -> str:
    """A file name for a terminal: undecodable bytes as U+FFFD, control characters escaped."""
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in display_name(name))


@dataclass(frozen=True)
class RunSummary:
    root: str
    out_dir: str
    store: str
    method: str
    threshold: int
    files: int
    images: int
    unreadable: int
    decoded: int
    clusters: int
    duplicates: int
    reclaimable_bytes: int
    report: str
    seconds: dict[str, float]
    suppressed_pairs: int = 0  # pairs a person marked "not duplicates" in an earlier review
    scores: dict | None = None  # pairwise precision/recall against a ground truth (find --truth)
    unreadable_files: tuple = ()  # the first few (path, reason); all are in errors.csv

    def lines(self) -> list[str]:
        return [
            f"images:       {self.images} ({self.files} files scanned, {self.decoded} read this run)",
            f"unreadable:   {self.unreadable}",
            *(f"  {show_name(path)}: {reason}" for path, reason in self.unreadable_files),
            *(
                [f"  ... and {self.unreadable - len(self.unreadable_files)} more (errors.csv)"]
                if self.unreadable > len(self.unreadable_files)
                else []
            ),
            f"clusters:     {self.clusters}",
            f"duplicates:   {self.duplicates}",
            *(
                [f"suppressed:   {self.suppressed_pairs} pairs marked not duplicates in a review"]
                if self.suppressed_pairs
                else []
            ),
            f"reclaimable:  {human_bytes(self.reclaimable_bytes)}",
            *(
                [
                    f"truth:        precision {self.scores['precision']:.4f}, recall {self.scores['recall']:.4f} "
                    f"(tp {self.scores['tp']}, fp {self.scores['fp']}, fn {self.scores['fn']})"
                ]
                if self.scores
                else []
            ),
            f"report:       {self.report}",
            f"review:       imgdedup review {self.out_dir}",
        ]


class StageClock:
    """Seconds per stage, summed over every ``with clock("hash"): ...`` block of that name."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - started


def default_out_dir(base: str | os.PathLike = "imgdedup-runs") -> Path:
    """A new folder under ``base`` named after the current time."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    candidate = Path(base) / stamp
    n = 1
    while candidate.exists():
        n += 1
        candidate = Path(base) / f"{stamp}-{n}"
    return candidate


def prepare_out_dir(out_dir: str | os.PathLike) -> Location:
    """Make the run folder (a local folder or a URL prefix) and check it can be written."""
    out = as_location(out_dir, OutputError)
    locations.filesystem(out, OutputError)  # an unknown protocol or missing backend says so
    try:
        locations.make_folder(join(out, WORK))
        probe = join(out, WORK, ".write-test")
        locations.write_bytes(probe, b"")
        locations.remove(probe)
        locations.write_bytes(join(out, locations.RUN_MARKER), b"")  # before any discovery: never an input
    except OSError as exc:
        raise OutputError(f"cannot write to output folder {str(out)!r}: {exc.strerror or exc}") from None
    return out


def open_store(root: str | os.PathLike, config: Config) -> Store:
    """The run's store: ``config.store``, or the default one for this root."""
    return Store.open(config.store or default_store_path(root), row_chunk=min(1024, max(16, config.chunk_size)))
