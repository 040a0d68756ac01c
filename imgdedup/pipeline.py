"""The dedup job as stage functions over a run folder: preprocess -> hash -> index -> cluster -> report.

Stages take and return paths inside the run folder, never pixel arrays, so the
same functions run in-process (:func:`find_duplicates_in_folder`, the ``find``
command) and as Prefect tasks on Dask workers (``flows/dedup.py``): one code
path, identical results.

Run folder layout::

    OUT/duplicates.json clusters.json clusters.csv errors.csv report.html summary.json
    OUT/thumbs/<digest>.jpg
    OUT/work/files-NNNNN.json    one chunk of discovered files
    OUT/work/hashes-NNNNN.npz    that chunk's hashes and image metadata
    OUT/work/pairs.npz           every pair within the threshold
"""

from __future__ import annotations

import datetime as _dt
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from imgdedup.chunks import (
    concatenate_chunks,
    hash_chunk_path,
    hash_images,
    load_hash_chunk,
    read_file_chunk,
    save_hash_chunk,
    write_file_chunks,
)
from imgdedup.cluster import cluster_pairs, keeper_order
from imgdedup.config import Config
from imgdedup.errors import OutputError
from imgdedup.index import hamming_pairs
from imgdedup.io import discover_images
from imgdedup.report import human_bytes, render_report
from imgdedup.results import (
    Scan,
    clusters_document,
    duplicates_map,
    read_json,
    write_clusters_csv,
    write_errors_csv,
    write_json,
)

WORK = "work"


@dataclass(frozen=True)
class RunSummary:
    root: str
    out_dir: str
    method: str
    threshold: int
    files: int
    images: int
    unreadable: int
    clusters: int
    duplicates: int
    reclaimable_bytes: int
    report: str
    seconds: dict[str, float]

    def lines(self) -> list[str]:
        return [
            f"images:       {self.images} ({self.files} files scanned)",
            f"unreadable:   {self.unreadable}",
            f"clusters:     {self.clusters}",
            f"duplicates:   {self.duplicates}",
            f"reclaimable:  {human_bytes(self.reclaimable_bytes)}",
            f"report:       {self.report}",
        ]


def default_out_dir(base: str | os.PathLike = "imgdedup-runs") -> Path:
    """A new folder under ``base`` named after the current time."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    candidate = Path(base) / stamp
    n = 1
    while candidate.exists():
        n += 1
        candidate = Path(base) / f"{stamp}-{n}"
    return candidate


def prepare_out_dir(out_dir: str | os.PathLike) -> Path:
    out = Path(out_dir)
    try:
        (out / WORK).mkdir(parents=True, exist_ok=True)
        probe = out / WORK / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise OutputError(f"cannot write to output folder {str(out)!r}: {exc.strerror or exc}") from None
    return out


# --- stages ----------------------------------------------------------------------

def preprocess(root: str | os.PathLike, out_dir: Path, config: Config) -> list[Path]:
    """Discover and fingerprint the files; write them as chunk files. Returns their paths."""
    records = discover_images(root, recursive=config.recursive)
    return write_file_chunks(root, records, config.chunk_size, Path(out_dir) / WORK)


def hash_chunk(files_path: Path, config: Config) -> Path:
    """Hash one chunk of files and save the result next to it. Returns its path."""
    root, start, records = read_file_chunk(files_path)
    chunk = hash_images(root, records, start, (config.method,), compat=config.compat, max_pixels=config.max_image_pixels)
    return save_hash_chunk(chunk, hash_chunk_path(files_path))


def load_scan(files_paths: Sequence[Path], hash_paths: Sequence[Path], config: Config) -> Scan:
    root, records = "", []
    for path in sorted(files_paths):
        root, _, chunk_records = read_file_chunk(path)
        records.extend(chunk_records)
    images = concatenate_chunks([load_hash_chunk(p) for p in hash_paths], (config.method,))
    return Scan(root=root, records=records, images=images)


def index(hash_paths: Sequence[Path], config: Config, out_dir: Path) -> Path:
    """Find every pair of images within ``config.threshold``; save as ``pairs.npz``."""
    images = concatenate_chunks([load_hash_chunk(p) for p in hash_paths], (config.method,))
    i, j, distance = hamming_pairs(images.hashes[:, 0], config.threshold)
    path = Path(out_dir) / WORK / "pairs.npz"
    tmp = path.with_name("pairs.tmp.npz")
    np.savez(tmp, i=i, j=j, distance=distance)
    os.replace(tmp, path)
    return path


def cluster(files_paths: Sequence[Path], hash_paths: Sequence[Path], pairs_path: Path, config: Config, out_dir: Path) -> Path:
    """Cluster the pairs and write duplicates.json, clusters.json/.csv and errors.csv."""
    out_dir = Path(out_dir)
    scan = load_scan(files_paths, hash_paths, config)
    with np.load(pairs_path, allow_pickle=False) as pairs:
        i, j, distance = pairs["i"], pairs["j"], pairs["distance"]
    hashes = scan.images.hashes[:, 0]
    ids = scan.image_ids
    rank = keeper_order(scan.images.width, scan.images.height, scan.image_sizes)
    clusters = cluster_pairs(len(ids), i, j, hashes, rank)
    document = clusters_document(scan, clusters, config.method, config.threshold)
    write_json(out_dir / "duplicates.json", duplicates_map(ids, i, j, distance))
    write_clusters_csv(out_dir / "clusters.csv", document)
    write_errors_csv(out_dir / "errors.csv", scan.errors)
    document["files"] = len(scan.records)
    document["images"] = len(ids)
    document["errors"] = [list(e) for e in scan.errors]
    return write_json(out_dir / "clusters.json", document)


def report(clusters_path: Path, config: Config, out_dir: Path, seconds: dict[str, float]) -> RunSummary:
    """Render report.html and write summary.json; return the run's summary."""
    out_dir = Path(out_dir)
    document = read_json(clusters_path)
    errors = [tuple(e) for e in document["errors"]]
    clusters = document["clusters"]
    summary = RunSummary(
        root=document["root"],
        out_dir=str(out_dir),
        method=config.method,
        threshold=config.threshold,
        files=document["files"],
        images=document["images"],
        unreadable=len(errors),
        clusters=len(clusters),
        duplicates=sum(len(c["members"]) - 1 for c in clusters),
        reclaimable_bytes=sum(c["reclaimable_bytes"] for c in clusters),
        report=str(out_dir / "report.html"),
        seconds=dict(seconds),
    )
    shown = {
        "folder": summary.root,
        "method": f"{config.method}{' (compat)' if config.compat else ''}, threshold {config.threshold}",
        "files scanned": summary.files,
        "images": summary.images,
        "unreadable": summary.unreadable,
        "clusters": summary.clusters,
        "duplicate files": summary.duplicates,
        "reclaimable": human_bytes(summary.reclaimable_bytes),
        "seconds per stage": ", ".join(f"{k} {v:.2f}" for k, v in seconds.items()),
    }
    render_report(document, errors, shown, out_dir, config.thumbnail_size)
    write_json(out_dir / "summary.json", summary.__dict__)
    return summary


# --- in-process run ----------------------------------------------------------------

Progress = Callable[[str, int, int], None]


def find_duplicates_in_folder(root: str | os.PathLike, config: Config, out_dir: str | os.PathLike, progress: Progress | None = None) -> RunSummary:
    """Run every stage in this process, chunk by chunk, exactly as the flow does."""
    out = prepare_out_dir(out_dir)
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    files_paths = preprocess(root, out, config)
    seconds["preprocess"] = time.perf_counter() - started

    started = time.perf_counter()
    hash_paths = []
    for number, files_path in enumerate(files_paths, start=1):
        hash_paths.append(hash_chunk(files_path, config))
        if progress:
            progress("hash", number, len(files_paths))
    seconds["hash"] = time.perf_counter() - started

    started = time.perf_counter()
    pairs_path = index(hash_paths, config, out)
    seconds["index"] = time.perf_counter() - started

    started = time.perf_counter()
    clusters_path = cluster(files_paths, hash_paths, pairs_path, config, out)
    seconds["cluster"] = time.perf_counter() - started

    return report(clusters_path, config, out, seconds)
