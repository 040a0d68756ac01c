"""Planning a run against the store: which files to (re)process, in which chunks, at which rows.

A file is reused when the store knows it with the same size and mtime and has
every feature the run needs; otherwise it is processed again. Unreadable files
with an unchanged fingerprint keep their recorded reason while it still holds:
they are read again when the decoder settings they were refused under differ
from this run's (``--compat``, ``max_image_pixels``, Pillow, optional decoders
installed since), or when the reason came from the file system or the run
rather than the content (:data:`RETRIED_REASONS`: a permission since fixed, a
file changed while being read, a failed chunk task). The plan and its chunk
files are written into the run folder, so every stage only passes paths.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

from imgdedup.imaging.discover import FileRecord
from imgdedup.storage.locations import Location, as_location, atomic_write_text, read_text
from imgdedup.storage.store import STATUS_ERROR, Manifest


@dataclass(frozen=True)
class ChunkWork:
    """One chunk task: files to process and the store rows it owns."""

    root: str
    store: str
    run_id: str
    number: int
    row_start: int
    files: list[FileRecord]


@dataclass(frozen=True)
class RunPlan:
    run_id: str
    root: str
    store: str
    features: list[str]
    discovered: int
    reused: int
    to_process: int
    chunk_paths: list[str]
    discovered_path: str
    base_row: int


def new_run_id() -> str:
    """Sortable by start time, unique per process."""
    return f"{_dt.datetime.now().strftime('%Y%m%d%H%M%S%f')}-{os.getpid()}"


#: Beginnings of the reasons that say nothing about a file's content: such files are always read again.
RETRIED_REASONS = (
    "permission denied",
    "folder cannot be listed",
    "file missing",
    "broken symlink",
    "symlink loop",
    "cannot read file",
    "changed ",
    "out of memory",
    "not processed",
)


def files_to_process(
    records: Sequence[FileRecord], manifest: Manifest, features: Sequence[str], refused_under: str = ""
) -> list[int]:
    """Positions in ``records`` of the files this run must read.

    ``refused_under`` is this run's :func:`~imgdedup.imaging.decode.decoder_signature`.
    """
    known = manifest.position()
    needed = [manifest.has(f) for f in features]
    todo = []
    for k, record in enumerate(records):
        m = known.get(record.id)
        if m is None or manifest.size[m] != record.size or manifest.mtime_ns[m] != record.mtime_ns:
            todo.append(k)
        elif manifest.status[m] == STATUS_ERROR:
            if manifest.refused_under[m] != refused_under or str(manifest.reason[m]).startswith(RETRIED_REASONS):
                todo.append(k)
        elif not all(mask[m] for mask in needed):
            todo.append(k)
    return todo


#: Smallest chunk worth its own task when a run is split to keep every worker busy:
#: a Prefect task costs 0.15-0.4 s, 250 images take about 1.2 s to hash on one core.
MIN_SPLIT_CHUNK = 250


def chunk_bounds(
    n_files: int,
    chunk_size: int,
    n_workers: int = 1,
    *,
    min_split: int = MIN_SPLIT_CHUNK,
    whole_rounds: bool = False,
) -> list[tuple[int, int]]:
    """``(start, stop)`` of each chunk task over ``n_files`` files, in order.

    At most ``chunk_size`` files per chunk, as few chunks as that allows, but at
    least one per worker while each still gets ``min_split`` files; sizes
    differ by at most one, so no worker waits on one large last chunk. With
    ``whole_rounds`` the number of chunks is also rounded up to a multiple of
    ``n_workers`` (while chunks keep ``min_split`` files), so the last round
    keeps every worker busy.
    """
    if n_files <= 0:
        return []
    n_chunks = max(-(-n_files // chunk_size), min(n_workers, n_files // min_split), 1)
    if whole_rounds and n_workers > 1:
        rounded = -(-n_chunks // n_workers) * n_workers
        if n_files // rounded >= min_split:
            n_chunks = rounded
    size, extra = divmod(n_files, n_chunks)
    bounds, start = [], 0
    for number in range(n_chunks):
        stop = start + size + (number < extra)
        bounds.append((start, stop))
        start = stop
    return bounds


def padded_rows(chunk_size: int, row_chunk: int) -> int:
    """Rows reserved per chunk task: whole Zarr chunks, so no two tasks share one."""
    return -(-chunk_size // row_chunk) * row_chunk


def write_chunk_work(work: ChunkWork, path: Location) -> Location:
    body = asdict(work)
    body["files"] = [[r.id, r.size, r.mtime_ns] for r in work.files]
    atomic_write_text(path, json.dumps(body))
    return path


def read_chunk_work(path: str | os.PathLike) -> ChunkWork:
    body = json.loads(read_text(as_location(path)))
    body["files"] = [FileRecord(i, s, m) for i, s, m in body["files"]]
    return ChunkWork(**body)


def write_discovered(records: Sequence[FileRecord], path: Location) -> Location:
    atomic_write_text(path, json.dumps([[r.id, r.size, r.mtime_ns] for r in records]))
    return path


def read_discovered(path: str | os.PathLike) -> list[FileRecord]:
    return [FileRecord(i, s, m) for i, s, m in json.loads(read_text(as_location(path)))]


def write_plan(plan: RunPlan, path: Location) -> Location:
    atomic_write_text(path, json.dumps(asdict(plan), indent=1))
    return path


def read_plan(path: str | os.PathLike) -> RunPlan:
    return RunPlan(**json.loads(read_text(as_location(path))))


def order_like(manifest: Manifest, records: Sequence[FileRecord]) -> Manifest:
    """The manifest restricted to ``records`` and in their order (deleted files dropped)."""
    position = manifest.position()
    keep = [position[r.id] for r in records if r.id in position]
    return manifest.take(np.asarray(keep, dtype=np.int64))
