"""Report stage: the report page, ``summary.json`` and scores against a ground truth."""

from __future__ import annotations

import os
from typing import Mapping, Sequence

from imgdedup.config import Config
from imgdedup.pipeline.results import read_json, write_json
from imgdedup.pipeline.run import WORK, RunSummary
from imgdedup.review.report import human_bytes, render_report
from imgdedup.review.thumbnails import fetch_from_store, keep_in_store, needed_thumbnails
from imgdedup.search.tiers import TIERS
from imgdedup.storage import locations
from imgdedup.storage.locations import as_location, join

UNREADABLE_SHOWN = 5  # unreadable files named in the summary lines


def truth_scores(truth: Mapping[str, Sequence[str]], out_dir: str | os.PathLike) -> dict:
    """Pairwise precision/recall of the run's ``duplicates.json`` against a ground truth, on the files both name."""
    from imgdedup.compat.evaluation import pairwise_scores

    retrieved = read_json(join(as_location(out_dir), "duplicates.json"))
    common = set(truth) & set(retrieved)
    return pairwise_scores(
        {k: [v for v in vs if v in common] for k, vs in truth.items() if k in common},
        {k: [v for v in vs if v in common] for k, vs in retrieved.items() if k in common},
    )


def report(
    clusters_path: str | os.PathLike,
    config: Config,
    out_dir: str | os.PathLike,
    seconds: dict[str, float],
    truth: Mapping[str, Sequence[str]] | None = None,
) -> RunSummary:
    """Render report.html and write summary.json; return the run's summary.

    ``truth`` (a ground-truth map, imagededup's format) adds the run's pairwise
    precision and recall against it to the page and the summary.
    """
    out_dir = as_location(out_dir)
    scores = truth_scores(truth, out_dir) if truth is not None else None
    document = read_json(clusters_path)
    errors = [tuple(e) for e in document["errors"]]
    clusters = document["clusters"]
    summary = RunSummary(
        root=document["root"],
        out_dir=str(out_dir),
        store=document["store"],
        method=config.method,
        threshold=config.threshold,
        files=document["files"],
        images=document["images"],
        unreadable=len(errors),
        decoded=document["decoded"],
        clusters=len(clusters),
        duplicates=sum(len(c["members"]) - 1 for c in clusters),
        reclaimable_bytes=sum(c["reclaimable_bytes"] for c in clusters),
        report=str(join(out_dir, "report.html")),
        seconds=dict(seconds),
        suppressed_pairs=int(document.get("suppressed_pairs", 0)),
        scores=scores,
        unreadable_files=tuple(tuple(e) for e in errors[:UNREADABLE_SHOWN]),
    )
    thresholds = f"threshold {config.threshold}"
    if config.uses_embeddings:
        thresholds += f", min similarity {config.min_similarity}"
    tiers = {t: sum(1 for c in clusters for m in c["members"] if m.get("tier") == t) for t in TIERS}
    shown = {
        "folder": summary.root,
        "method": f"{config.method}{' (compat)' if config.compat else ''}, {thresholds}",
        "files scanned": summary.files,
        "images": summary.images,
        "read this run": summary.decoded,
        "unreadable": summary.unreadable,
        "clusters": summary.clusters,
        "duplicate files": summary.duplicates,
        "reclaimable": human_bytes(summary.reclaimable_bytes),
        "duplicates by tier": ", ".join(f"{t} {n}" for t, n in tiers.items()),
        "low-information images": document.get("low_information", 0),
        "verification checks": ", ".join(f"{k} {v}" for k, v in document.get("verification", {}).items()) or "none",
        "pairs marked not duplicates": document.get("suppressed_pairs", 0),
        "pairs vetoed by rules": ", ".join(f"{k} {v}" for k, v in document.get("vetoed_pairs", {}).items()) or "none",
        "seconds per stage": ", ".join(f"{k} {v:.2f}" for k, v in seconds.items()),
    }
    by_similarity = config.uses_embeddings
    pair_values = None
    try:
        key = "similarity" if by_similarity else "distance"
        pair_values = locations.load_npz(join(out_dir, WORK, "pairs.npz"), [key])[key]
    except FileNotFoundError:
        pass
    needed = needed_thumbnails(clusters, config.thumbnail_size)
    fetch_from_store(document["store"], out_dir, needed)  # thumbnails made by earlier runs into other folders
    render_report(
        document,
        errors,
        shown,
        out_dir,
        config.thumbnail_size,
        pair_distances=pair_values,
        similarity=by_similarity,
        threshold=config.min_similarity if by_similarity else config.threshold,
        distance_label="cosine similarity" if by_similarity else "Hamming distance",
        scores=scores,
    )
    keep_in_store(document["store"], out_dir, needed)
    write_json(join(out_dir, "summary.json"), summary.__dict__)
    return summary
