"""Cluster stage: verify candidate pairs, cluster them, write the result files."""

from __future__ import annotations

import os

import numpy as np

from imgdedup.config import Config
from imgdedup.pipeline.embedders import embedding_settings
from imgdedup.pipeline.indexing import image_table
from imgdedup.pipeline.plan import read_plan
from imgdedup.pipeline.results import (
    ImageTable,
    clusters_document,
    duplicates_map,
    write_clusters_csv,
    write_errors_csv,
    write_json,
)
from imgdedup.pipeline.verification import PairChecks
from imgdedup.pipeline.verify_jobs import MapJobs
from imgdedup.search.batches import component_batches, pair_batches
from imgdedup.search.cluster import cluster_pairs, clusters_of_groups, keeper_order, verified_groups
from imgdedup.search.cosine import pair_dots
from imgdedup.search.incremental import TRIMMED_HASH_ARRAYS
from imgdedup.search.rules import suppress_pairs, veto_pairs
from imgdedup.search.tiers import member_tier
from imgdedup.storage import locations
from imgdedup.storage.locations import Location, as_location, join
from imgdedup.storage.store import STATUS_ERROR, PositionRows, Store


def cluster_member_pairs(clusters) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of members of each cluster, as index arrays ``(i, j)`` with ``i < j``."""
    pairs = [(min(a, b), max(a, b)) for c in clusters for n, a in enumerate(c.indices) for b in c.indices[n + 1 :]]
    found = np.asarray(sorted(pairs), dtype=np.int64).reshape(-1, 2)
    return found[:, 0], found[:, 1]


#: Most images whose verification evidence is held at once (about 60 KB each).
VERIFY_BATCH_IMAGES = 4096


def verified_clusters(
    table: ImageTable,
    checks: PairChecks,
    i: np.ndarray,
    j: np.ndarray,
    hashes: np.ndarray,
    embeddings=None,
    batch_images: int | None = None,
    map_jobs: MapJobs | None = None,
) -> list:
    """Clusters of the verified pairs (:func:`verified_groups`), in memory bounded by ``batch_images``.

    The candidate pairs are verified a batch of images at a time
    (:func:`pair_batches`); then the verified pairs are grouped around keepers a
    batch of whole components at a time (:func:`component_batches`: a member
    checked against its keeper is described again, which is rare), each batch's
    evidence dropped before the next. The clusters equal those of one
    :func:`cluster_pairs` over all pairs. ``batch_images`` defaults to
    :data:`VERIFY_BATCH_IMAGES`. With ``map_jobs`` the candidate pairs are verified
    in :class:`~imgdedup.pipeline.verify_jobs.VerifyJob` s of that many images
    (``find`` runs them on its worker processes, ``run`` as tasks on its Dask workers).
    """
    batch_images = batch_images or VERIFY_BATCH_IMAGES
    n = len(table.ids)
    checks.candidates(i, j)
    if map_jobs is not None:
        checks.check_in_jobs(i, j, map_jobs, batch_images)
    else:
        for batch in pair_batches(n, i, j, batch_images):
            checks.check(i[batch], j[batch])
    checks.forget()
    # the keeper order needs the camera facts the descriptions found
    rank = keeper_order(table.width, table.height, table.sizes, table.mtime_ns, table.ids, checks.camera, table.formats)
    verified = checks.verified(i, j)
    i, j = i[verified], j[verified]
    groups = []
    for batch in component_batches(n, i, j, batch_images):
        groups += verified_groups(n, i[batch], j[batch], rank, checks.verify)
        checks.forget()
    return clusters_of_groups(groups, hashes, embeddings, verified=True)


def run_settings(config: Config) -> dict:
    settings: dict = {"method": config.method, "threshold": config.threshold, "compat": config.compat}
    if config.uses_embeddings:
        settings.update({"min_similarity": config.min_similarity, **embedding_settings(config)})
    if config.method == "hybrid":
        settings.update({"hybrid_hashes": list(TRIMMED_HASH_ARRAYS), "hybrid_floor": config.hybrid_floor})
    settings["verify"] = config.verify and not config.compat
    if settings["verify"]:
        settings.update(
            {
                name: getattr(config, name)
                for name in (
                    "verify_floor",
                    "verify_neighbours",
                    "verify_near_floor",
                    "verify_near_bits",
                    "verify_aligned",
                    "verify_fine",
                    "verify_colour",
                    "verify_inliers",
                    "verify_registered",
                    "verify_blocks",
                )
            }
        )
    return settings


def cluster(
    plan_path: str | os.PathLike,
    pairs_path: str | os.PathLike,
    config: Config,
    out_dir: str | os.PathLike,
    map_jobs: MapJobs | None = None,
) -> Location:
    """Cluster the pairs and write duplicates.json, clusters.json/.csv and errors.csv.

    ``map_jobs`` runs the verification's jobs (see :func:`verified_clusters`); without it the
    pairs are verified on this process's threads.
    """
    out_dir = as_location(out_dir)
    plan = read_plan(plan_path)
    store = Store.open(plan.store)
    manifest = store.load_manifest()
    table, rows = image_table(manifest, plan.root)
    files = len(manifest)
    errors = [
        (manifest.ids[k], str(manifest.reason[k])) for k in np.flatnonzero(manifest.status == STATUS_ERROR).tolist()
    ]
    del manifest  # a million files' manifest is about 300 MB that verification has no use for
    pairs = locations.load_npz(as_location(pairs_path))
    i, j, distance, similarity = pairs["i"], pairs["j"], pairs["distance"], pairs["similarity"]
    keep, vetoed = veto_pairs(i, j, table.ids, table.width, table.height, config.pair_rules)
    apart = suppress_pairs(i, j, table.digests, store.not_duplicates())  # marked in `imgdedup review`
    suppressed = int((keep & ~apart).sum())
    keep &= apart
    i, j, distance, similarity = i[keep], j[keep], distance[keep], similarity[keep]
    if len(rows):
        # hybrid judges hash distances on the trimmed image: so do its distances to the keeper
        distance_array = (
            TRIMMED_HASH_ARRAYS[0] if config.method == "hybrid" else config.hash_array(config.hash_methods[0])
        )
        hashes = store.read_rows(distance_array, rows)
        embeddings = PositionRows(store, "embeddings", rows, np.concatenate([i, j])) if config.uses_embeddings else None
    else:
        hashes, embeddings = np.zeros(0, np.uint64), None
    checks = None
    if config.verify and not config.compat and len(i):
        checks = PairChecks(table, store, config)
        try:
            clusters = verified_clusters(table, checks, i, j, hashes, embeddings, map_jobs=map_jobs)
        finally:
            checks.close()
        checks.save()
    else:
        rank = keeper_order(table.width, table.height, table.sizes, table.mtime_ns, table.ids, None, table.formats)
        clusters = cluster_pairs(len(table.ids), i, j, hashes, rank, embeddings)
    document = clusters_document(
        table,
        clusters,
        run_settings(config),
        tier_of=lambda **kw: member_tier(
            method=config.method,
            threshold=config.threshold,
            min_similarity=config.min_similarity,
            review_bits=config.review_bits,
            review_similarity=config.review_similarity,
            **kw,
        ),
    )
    document["candidate_pairs"] = int(len(i))
    if checks is not None:
        # duplicates.json lists each image's cluster: verified pairs, and pairs joined through the
        # keeper both were verified against (candidates are each image's nearest few only)
        i, j = cluster_member_pairs(clusters)
        distance = np.bitwise_count(hashes[i] ^ hashes[j]).astype(np.uint8)
        if embeddings is not None and len(i):
            similarity = pair_dots(embeddings, i, embeddings, j)
        else:
            similarity = np.full(len(i), np.nan, np.float32)
    document["verification"] = (
        {} if checks is None else dict(sorted(checks.outcomes.items()))
    )  # checks made, by evidence or reason refuted
    document["low_information"] = 0 if checks is None else checks.low_information
    document["vetoed_pairs"] = vetoed
    document["suppressed_pairs"] = suppressed
    by_similarity = config.uses_embeddings
    write_json(
        join(out_dir, "duplicates.json"),
        duplicates_map(table.ids, i, j, similarity if by_similarity else distance, higher_is_closer=by_similarity),
    )
    write_clusters_csv(join(out_dir, "clusters.csv"), document)
    write_errors_csv(join(out_dir, "errors.csv"), errors)
    document.update(
        files=files,
        images=len(table.ids),
        decoded=plan.to_process,
        store=plan.store,
        errors=[list(e) for e in errors],
    )
    return write_json(join(out_dir, "clusters.json"), document)
