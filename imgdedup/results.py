"""The result files of a run: duplicates.json, clusters.json, clusters.csv, errors.csv.

Paths are written exactly as on disk. JSON uses ``\\u`` escapes for anything
outside ASCII, so a name that is not valid UTF-8 survives as a surrogate escape
(``os.fsencode`` of the loaded string gives the original bytes) and the file
stays valid JSON. CSV is UTF-8 with the original bytes of undecodable names.
Every file is written to a temporary name and renamed.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from imgdedup.chunks import HashChunk, atomic_write_text
from imgdedup.cluster import Cluster, neighbour_lists
from imgdedup.io import FileRecord

CLUSTER_CSV_FIELDS = ("cluster", "path", "keeper", "distance", "width", "height", "bytes", "format", "digest")


@dataclass
class Scan:
    """Everything known about the files of one run, in file order.

    ``images`` holds one row per readable image; ``image_ids`` and
    ``image_sizes`` are aligned with it.
    """

    root: str
    records: list[FileRecord]
    images: HashChunk

    @property
    def image_ids(self) -> list[str]:
        return [self.records[p].id for p in self.images.positions.tolist()]

    @property
    def image_sizes(self) -> np.ndarray:
        return np.asarray([self.records[p].size for p in self.images.positions.tolist()], dtype=np.int64)

    @property
    def errors(self) -> list[tuple[str, str]]:
        return [(self.records[p].id, reason) for p, reason in self.images.errors]


def duplicates_map(ids: Sequence[str], i: np.ndarray, j: np.ndarray, distance: np.ndarray, scores: bool = False) -> dict:
    """imagededup's ``find_duplicates`` result: every image a key, its neighbours as values."""
    lists = neighbour_lists(len(ids), i, j, distance)
    if scores:
        return {ids[k]: [(ids[b], d) for b, d in entry] for k, entry in enumerate(lists)}
    return {ids[k]: [ids[b] for b, _ in entry] for k, entry in enumerate(lists)}


def clusters_document(scan: Scan, clusters: Sequence[Cluster], method: str, threshold: int) -> dict:
    ids, sizes, images = scan.image_ids, scan.image_sizes, scan.images
    out = []
    for number, cluster in enumerate(clusters, start=1):
        members = [
            {
                "path": ids[m.index],
                "keeper": m.index == cluster.keeper,
                "distance": m.distance,
                "width": int(images.width[m.index]),
                "height": int(images.height[m.index]),
                "bytes": int(sizes[m.index]),
                "format": str(images.formats[m.index]),
                "digest": str(images.digests[m.index]),
            }
            for m in cluster.members
        ]
        reclaimable = sum(m["bytes"] for m in members if not m["keeper"])
        out.append({"cluster": number, "keeper": ids[cluster.keeper], "reclaimable_bytes": reclaimable, "members": members})
    return {"root": scan.root, "method": method, "threshold": threshold, "clusters": out}


def write_json(path: Path, document) -> Path:
    atomic_write_text(path, json.dumps(document, indent=2, ensure_ascii=True) + "\n")
    return path


def _csv_text(header: Sequence[str], rows) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def write_clusters_csv(path: Path, document: dict) -> Path:
    rows = (
        [c["cluster"], m["path"], int(m["keeper"]), m["distance"], m["width"], m["height"], m["bytes"], m["format"], m["digest"]]
        for c in document["clusters"]
        for m in c["members"]
    )
    atomic_write_text(path, _csv_text(CLUSTER_CSV_FIELDS, rows), errors="surrogateescape")
    return path


def write_errors_csv(path: Path, errors: Sequence[tuple[str, str]]) -> Path:
    atomic_write_text(path, _csv_text(("path", "reason"), errors), errors="surrogateescape")
    return path


def read_json(path: Path):
    return json.loads(Path(path).read_text(encoding="utf-8"))
