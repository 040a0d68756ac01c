"""``plot_duplicates``: a duplicate map (``find_duplicates`` output) shown as imgdedup's review report.

The page is the one a run writes (:func:`imgdedup.review.report.render_report`):
the images of the map grouped into clusters (connected components of its
pairs), each with a suggested keeper (highest resolution, then largest file),
thumbnails in ``thumbs/`` beside the page. It takes both call forms::

    plot_duplicates(image_dir="photos", duplicate_map=duplicates, save_path="duplicates_report.html", num_images=50)
    plot_duplicates("photos", duplicates, "a.jpg", "a_duplicates.html")   # imagededup's: one image's group

imagededup draws a matplotlib figure instead; here ``outfile`` must be an HTML file.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Mapping, Optional

import numpy as np

from imgdedup.imaging.discover import discover_images
from imgdedup.imaging.hash_chunk import hash_images
from imgdedup.pipeline.results import ImageTable, clusters_document
from imgdedup.search.cluster import cluster_pairs, keeper_order

#: Where the report goes when no path is given (in the current folder).
DEFAULT_REPORT = "duplicates_report.html"


def plot_duplicates(
    image_dir: str | os.PathLike,
    duplicate_map: Mapping[str, list],
    filename: Optional[str] = None,
    outfile: Optional[str | os.PathLike] = None,
    *,
    save_path: Optional[str | os.PathLike] = None,
    num_images: int = 50,
    thumbnail_size: int = 160,
) -> Path:
    """Write the review report of ``duplicate_map`` and return its path.

    Parameters
    ----------
    image_dir : folder the map's names are relative to.
    duplicate_map : ``{name: [dup, ...]}`` or ``{name: [(dup, score), ...]}``.
    filename : only this image's group (imagededup's ``plot_duplicates``); it must have duplicates.
    outfile, save_path : the HTML file to write (two names for one thing); default :data:`DEFAULT_REPORT`.
    num_images : at most this many groups, largest reclaimable first.
    thumbnail_size : longest side of a thumbnail, in pixels.

    Distances shown are phash bits to each group's keeper.
    """
    if not os.path.isdir(image_dir):
        raise ValueError(f"`image_dir` must be an existing folder, got {str(image_dir)!r}")
    if not isinstance(duplicate_map, Mapping):
        raise ValueError(f"`duplicate_map` must be a dict of name -> duplicates, got {type(duplicate_map).__name__}")
    if isinstance(num_images, bool) or not isinstance(num_images, int) or num_images < 1:
        raise ValueError(f"`num_images` must be an int >= 1, got {num_images!r}")
    if outfile is not None and save_path is not None and Path(outfile) != Path(save_path):
        raise ValueError("give the report's path once: `outfile` or `save_path`")
    target = Path(outfile if outfile is not None else save_path if save_path is not None else DEFAULT_REPORT)
    if target.suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"`outfile` must be an .html file (the plot is imgdedup's review report), got {str(target)!r}")
    pairs = _pairs(duplicate_map, filename)
    document, errors = _clusters(Path(image_dir), pairs)
    total = len(document["clusters"])
    document["clusters"] = sorted(document["clusters"], key=lambda c: (-c["reclaimable_bytes"], c["cluster"]))[
        :num_images
    ]
    summary = {
        "folder": document["root"],
        "duplicate map": f"{len(duplicate_map)} images, {len(pairs)} pairs",
        "groups shown": f"{len(document['clusters'])} of {total}",
        "distance": "phash bits to the group's keeper",
    }
    return _render(document, errors, summary, target, thumbnail_size)


def _pairs(duplicate_map: Mapping[str, list], filename: Optional[str]) -> list[tuple[str, str]]:
    """Unordered pairs of the map (scores dropped), or those of ``filename`` only."""
    if filename is not None:
        if filename not in duplicate_map:
            raise ValueError(f"`filename` {filename!r} is not a key of `duplicate_map`")
        if not duplicate_map[filename]:
            raise ValueError("Provided filename has no duplicates!")
        items = [(filename, duplicate_map[filename])]
    else:
        items = list(duplicate_map.items())
    seen: set[tuple[str, str]] = set()
    out = []
    for name, values in items:
        if not isinstance(values, (list, tuple)):
            raise ValueError(f"`duplicate_map`[{name!r}] must be a list, got {type(values).__name__}")
        for value in values:
            other = value[0] if isinstance(value, (list, tuple)) else value
            pair = (name, other) if name < other else (other, name)
            if other != name and pair not in seen:
                seen.add(pair)
                out.append(pair)
    return out


def _clusters(root: Path, pairs: list[tuple[str, str]]) -> tuple[dict, list[tuple[str, str]]]:
    """The clusters.json document of ``pairs`` (files read for their size, format, digest and phash)."""
    names = list(dict.fromkeys(n for pair in pairs for n in pair))
    wanted = set(names)
    records = [r for r in discover_images(root, recursive=True) if r.id in wanted]
    missing = wanted - {r.id for r in records}
    if missing:
        raise ValueError(
            f"{len(missing)} name(s) of `duplicate_map` are not files under {str(root)!r}, e.g. {sorted(missing)[:3]}"
        )
    chunk = hash_images(root, records, 0, ("phash",))
    readable = chunk.positions.tolist()
    ids = [records[p].id for p in readable]
    table = ImageTable(
        root=str(root.resolve()),
        ids=ids,
        sizes=np.asarray([records[p].size for p in readable], dtype=np.int64),
        mtime_ns=np.asarray([records[p].mtime_ns for p in readable], dtype=np.int64),
        width=chunk.width,
        height=chunk.height,
        formats=chunk.formats,
        digests=chunk.digests,
    )
    index = {name: k for k, name in enumerate(ids)}
    kept = [(index[a], index[b]) for a, b in pairs if a in index and b in index]
    i = np.asarray([a for a, _ in kept], dtype=np.int64)
    j = np.asarray([b for _, b in kept], dtype=np.int64)
    clusters = cluster_pairs(len(ids), i, j, chunk.hashes[:, 0], keeper_order(table.width, table.height, table.sizes))
    errors = [(records[p].id, reason) for p, reason in chunk.errors]
    return clusters_document(table, clusters, {"method": "phash", "threshold": None}), errors


def _render(document: dict, errors: list, summary: dict, target: Path, thumbnail_size: int) -> Path:
    """Render into a fresh folder beside ``target``, then move the page to ``target`` and its thumbnails beside it."""
    from imgdedup.review.report import THUMBS, render_report

    folder = target.resolve().parent
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".imgdedup-report-", dir=folder))
    try:
        page = Path(str(render_report(document, errors, summary, staging, thumbnail_size)))
        thumbs = folder / THUMBS
        thumbs.mkdir(exist_ok=True)
        for thumb in (staging / THUMBS).glob("*"):
            os.replace(thumb, thumbs / thumb.name)  # named by content digest and size: same name, same picture
        os.replace(page, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
