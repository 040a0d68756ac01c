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
import os
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from imgdedup.search.cluster import Cluster, neighbour_lists
from imgdedup.storage.locations import Location, as_location, atomic_write_text, read_text

CLUSTER_CSV_FIELDS = (
    "cluster",
    "path",
    "keeper",
    "tier",
    "distance",
    "similarity",
    "width",
    "height",
    "bytes",
    "format",
    "digest",
)


@dataclass
class ImageTable:
    """The readable images of a run, in file order, with what the report and keeper need."""

    root: str
    ids: list[str]
    sizes: np.ndarray
    mtime_ns: np.ndarray
    width: np.ndarray
    height: np.ndarray
    formats: np.ndarray
    digests: np.ndarray


def duplicates_map(
    ids: Sequence[str],
    i: np.ndarray,
    j: np.ndarray,
    score: np.ndarray,
    scores: bool = False,
    higher_is_closer: bool = False,
) -> dict:
    """imagededup's ``find_duplicates`` result: every image a key, its neighbours as values."""
    lists = neighbour_lists(len(ids), i, j, score, higher_is_closer)
    if scores:
        return {ids[k]: [(ids[b], d) for b, d in entry] for k, entry in enumerate(lists)}
    return {ids[k]: [ids[b] for b, _ in entry] for k, entry in enumerate(lists)}


def clusters_document(
    table: ImageTable, clusters: Sequence[Cluster], settings: dict, tier_of: Callable[..., str] | None = None
) -> dict:
    """The clusters.json document: settings, then each cluster with its members' metadata.

    ``tier_of(same_digest=, same_dimensions=, distance=, similarity=)`` names each
    non-keeper member's tier (see :mod:`imgdedup.search.tiers`).
    """
    ids = table.ids
    out = []
    for number, cluster in enumerate(clusters, start=1):
        members = []
        k = cluster.keeper
        for m in cluster.members:
            entry = {
                "path": ids[m.index],
                "keeper": m.index == cluster.keeper,
                "distance": m.distance,
                "width": int(table.width[m.index]),
                "height": int(table.height[m.index]),
                "bytes": int(table.sizes[m.index]),
                "format": str(table.formats[m.index]),
                "digest": str(table.digests[m.index]),
                "mtime_ns": int(table.mtime_ns[m.index]),
            }
            if m.similarity is not None:
                entry["similarity"] = m.similarity
            if m.evidence is not None:
                entry["evidence"] = m.evidence  # how it was verified against the keeper
                entry["verification"] = m.scores
            if tier_of is not None:
                entry["tier"] = (
                    "keeper"
                    if m.index == k
                    else tier_of(
                        same_digest=table.digests[m.index] == table.digests[k],
                        same_dimensions=(table.width[m.index], table.height[m.index])
                        == (table.width[k], table.height[k]),
                        distance=m.distance,
                        similarity=m.similarity,
                    )
                )
            members.append(entry)
        reclaimable = sum(m["bytes"] for m in members if not m["keeper"])
        out.append(
            {"cluster": number, "keeper": ids[cluster.keeper], "reclaimable_bytes": reclaimable, "members": members}
        )
    return {"root": table.root, **settings, "clusters": out}


def write_json(path: Location, document) -> Location:
    atomic_write_text(path, json.dumps(document, indent=2, ensure_ascii=True) + "\n")
    return path


def _csv_text(header: Sequence[str], rows) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def write_clusters_csv(path: Location, document: dict) -> Location:
    rows = (
        [
            c["cluster"],
            m["path"],
            int(m["keeper"]),
            m.get("tier", ""),
            m["distance"],
            m.get("similarity", ""),
            m["width"],
            m["height"],
            m["bytes"],
            m["format"],
            m["digest"],
        ]
        for c in document["clusters"]
        for m in c["members"]
    )
    atomic_write_text(path, _csv_text(CLUSTER_CSV_FIELDS, rows), errors="surrogateescape")
    return path


def write_errors_csv(path: Location, errors: Sequence[tuple[str, str]]) -> Location:
    atomic_write_text(path, _csv_text(("path", "reason"), errors), errors="surrogateescape")
    return path


def read_json(path: str | os.PathLike):
    return json.loads(read_text(as_location(path)))
