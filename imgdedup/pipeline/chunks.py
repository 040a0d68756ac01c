"""Chunk stages: plan the run's chunks, hash and embed each one into the store, commit them.

The chunk functions run in this process (:func:`imgdedup.pipeline.inprocess.find_duplicates_in_folder`)
or as Prefect tasks on Dask workers (``imgdedup.tasks.dedup``); each reads and writes only its
own rows of the store and its own work files.
"""

from __future__ import annotations

import logging
import os

import numpy as np

from imgdedup.config import Config
from imgdedup.errors import ImageLoadError, StoreError
from imgdedup.imaging.decode import decoder_signature
from imgdedup.imaging.discover import content_digest, discover_images, read_bytes, root_location
from imgdedup.imaging.hash_chunk import hash_images
from imgdedup.pipeline.embedders import embed_files, embedder_for, embedding_settings
from imgdedup.pipeline.plan import (
    ChunkWork,
    RunPlan,
    chunk_bounds,
    files_to_process,
    new_run_id,
    order_like,
    padded_rows,
    read_chunk_work,
    read_discovered,
    read_plan,
    write_chunk_work,
    write_discovered,
    write_plan,
)
from imgdedup.pipeline.pool import FIND_MIN_SPLIT
from imgdedup.pipeline.run import WORK
from imgdedup.search.incremental import TRIMMED_HASH_ARRAYS
from imgdedup.storage import locations
from imgdedup.storage.locations import Location, as_location, join
from imgdedup.storage.store import STATUS_ERROR, STATUS_OK, Manifest, Store, merge_pending

log = logging.getLogger(__name__)


def preprocess(
    root: str | os.PathLike,
    out_dir: str | os.PathLike,
    config: Config,
    store: Store,
    workers: int | None = None,
) -> Location:
    """Discover files, compare them with the store, plan chunk tasks; return the plan's path.

    The caller holds the store's lock. Chunks committed by an interrupted run are
    merged first, so their work is not repeated. ``workers`` (``find``'s
    processes) plans whole rounds of smaller chunks for them; by default the
    chunks suit ``config.n_workers`` Dask workers.
    """
    out_dir = as_location(out_dir)
    store.claim_root(root_location(root))
    manifest = merge_pending(store, store.load_manifest())
    store.save_manifest(manifest)
    for path in store.pending_paths():
        locations.remove(path)
    records = discover_images(root, recursive=config.recursive)
    todo = files_to_process(
        records, manifest, config.features, decoder_signature(config.compat, config.max_image_pixels)
    )
    run_id = new_run_id()
    if workers is None:
        bounds = chunk_bounds(len(todo), config.chunk_size, config.n_workers)
    else:  # a process pool's task costs milliseconds, not a Prefect task's tenths of a second
        bounds = chunk_bounds(len(todo), config.chunk_size, workers, min_split=FIND_MIN_SPLIT, whole_rounds=True)
    per_chunk = padded_rows(max((stop - start for start, stop in bounds), default=1), store.row_chunk)
    base_row = -(-store.n_rows() // store.row_chunk) * store.row_chunk
    n_chunks = len(bounds)
    if n_chunks:
        rows = base_row + n_chunks * per_chunk
        for method in config.hash_methods:
            store.ensure_array(config.hash_array(method), rows, "uint64")
        if config.uses_embeddings:
            settings = embedding_settings(config)
            group = store.group()
            existing = group["embeddings"] if "embeddings" in group else None
            if existing is not None and all(existing.attrs.get(k) == v for k, v in settings.items()):
                # The store records the model's identity; each embed task checks its own against it,
                # so this process need not build a model (seconds) just to grow the array.
                store.ensure_array("embeddings", rows, "float16", width=existing.shape[1], attributes=settings)
            else:
                embedder = embedder_for(config)
                store.ensure_array(
                    "embeddings",
                    rows,
                    "float16",
                    width=embedder.dim,
                    attributes={**settings, "identity": embedder.identity},
                )
            for name in TRIMMED_HASH_ARRAYS:
                store.ensure_array(name, rows, "uint64")
    elif config.uses_embeddings and "embeddings" in store.group():
        store.ensure_array("embeddings", 0, "float16", attributes=embedding_settings(config))
    chunk_paths = []
    for number, (start, stop) in enumerate(bounds):
        files = [records[k] for k in todo[start:stop]]
        work = ChunkWork(
            root=root_location(root),
            store=str(store.path),
            run_id=run_id,
            number=number,
            row_start=base_row + number * per_chunk,
            files=files,
        )
        chunk_paths.append(str(write_chunk_work(work, join(out_dir, WORK, f"chunk-{number:05d}.json"))))
    plan = RunPlan(
        run_id=run_id,
        root=root_location(root),
        store=str(store.path),
        features=list(config.features),
        discovered=len(records),
        reused=len(records) - len(todo),
        to_process=len(todo),
        chunk_paths=chunk_paths,
        discovered_path=str(write_discovered(records, join(out_dir, WORK, "discovered.json"))),
        base_row=base_row,
    )
    return write_plan(plan, join(out_dir, WORK, "plan.json"))


def _chunk_manifest(
    work: ChunkWork, chunk, errors: dict[int, str], features: dict[str, bool], refused_under: str
) -> Manifest:
    """Manifest entries of one chunk: readable files at their rows, the others with their reason and
    the decoder settings they were refused under."""
    ok = chunk.positions.tolist()
    n = len(work.files)
    row = np.full(n, -1, dtype=np.int64)
    row[ok] = work.row_start + np.arange(len(ok))
    status = np.full(n, STATUS_OK, dtype=np.uint8)
    reason = np.full(n, "", dtype=object)
    for position, why in errors.items():
        status[position], reason[position], row[position] = STATUS_ERROR, why, -1
    width, height = np.zeros(n, np.int32), np.zeros(n, np.int32)
    formats, digests = np.full(n, "", dtype=object), np.full(n, "", dtype=object)
    width[ok], height[ok], formats[ok], digests[ok] = chunk.width, chunk.height, chunk.formats, chunk.digests
    good = status == STATUS_OK
    return Manifest(
        ids=[r.id for r in work.files],
        size=np.asarray([r.size for r in work.files], dtype=np.int64),
        mtime_ns=np.asarray([r.mtime_ns for r in work.files], dtype=np.int64),
        status=status,
        reason=reason.astype(str),
        row=row,
        width=width,
        height=height,
        formats=formats.astype(str),
        digests=digests.astype("U32"),
        features={feature: good & present for feature, present in features.items()},
        refused_under=np.where(good, "", refused_under),
    )


def hash_chunk(work_path: str | os.PathLike, config: Config) -> Location:
    """Read and hash one chunk of files into its rows of the store (CPU work).

    Without embeddings this commits the chunk and returns the commit file;
    otherwise it returns the chunk's staged entries for :func:`embed_chunk`.
    """
    work: ChunkWork = read_chunk_work(work_path)
    store = Store.open(work.store)
    methods = config.hash_methods
    chunk = hash_images(work.root, work.files, 0, methods, compat=config.compat, max_pixels=config.max_image_pixels)
    for column, method in enumerate(methods):
        store.write_rows(config.hash_array(method), work.row_start, chunk.hashes[:, column])
    features = {feature: True for feature in config.features if feature.startswith("hash:")}
    if config.uses_embeddings:
        features["embedding"] = False
    manifest = _chunk_manifest(
        work, chunk, dict(chunk.errors), features, decoder_signature(config.compat, config.max_image_pixels)
    )
    if config.uses_embeddings:
        path = locations.sibling(
            work_path, locations.name(as_location(work_path)).removesuffix(".json") + ".hashed.npz"
        )
    else:
        path = store.pending_path(work.run_id, work.number)
    manifest.save(path)
    return path


def embed_chunk(
    hashed_path: str | os.PathLike, work_path: str | os.PathLike, config: Config, threads: int | None = None
) -> Location:
    """Embed the readable files of a hashed chunk into its rows of the store (GPU or CPU work); commit it."""
    work: ChunkWork = read_chunk_work(work_path)
    store = Store.open(work.store)
    manifest = Manifest.load(hashed_path)
    ok = np.flatnonzero(manifest.status == STATUS_OK)
    changed: dict[int, str] = {}
    if len(ok):
        datas = []
        for position in ok.tolist():
            # The file must still be the one hash_chunk read, or its hashes and embedding would
            # describe two versions: same size and mtime as at discovery, and the same digest.
            try:
                data = read_bytes(work.root, work.files[position], check_unchanged=True)
            except ImageLoadError as exc:
                data, changed[position] = b"", exc.reason
            if position not in changed and content_digest(data) != manifest.digests[position]:
                data, changed[position] = (
                    b"",
                    "changed after hashing (other content): not read, run again to include it",
                )
            datas.append(data)  # b"" keeps the rows aligned; embed_files records it as failed
        embedder = embedder_for(config, threads)
        recorded = store.group(mode="r")["embeddings"].attrs.get("identity")
        if recorded != embedder.identity:
            changed = sorted(
                k
                for k in set(recorded or {}) | set(embedder.identity)
                if (recorded or {}).get(k) != embedder.identity.get(k)
            )
            raise StoreError(
                f"store {str(store.path)!r} holds embeddings of another model ({', '.join(changed)} differ); "
                "use another --store"
            )
        vectors, hashes, failed = embed_files(embedder, datas)
        # Readable files take consecutive rows from the chunk's first readable one.
        first = int(manifest.row[ok[0]])
        store.write_rows("embeddings", first, vectors.astype(np.float16))
        for column, name in enumerate(TRIMMED_HASH_ARRAYS):
            store.write_rows(name, first, hashes[:, column])
        for k, why in failed.items():
            position = ok[k]
            manifest.status[position], manifest.row[position] = STATUS_ERROR, -1
            manifest.reason = manifest.reason.astype(object)
            manifest.reason[position] = changed.get(int(position)) or f"cannot embed: {why}"
            manifest.refused_under = manifest.refused_under.astype(object)
            manifest.refused_under[position] = decoder_signature(config.compat, config.max_image_pixels)
        manifest.refused_under = manifest.refused_under.astype(str)
        manifest.reason = manifest.reason.astype(str)
    good = manifest.status == STATUS_OK
    manifest.features = {name: mask & good for name, mask in manifest.features.items()}
    manifest.features["embedding"] = good
    path = store.pending_path(work.run_id, work.number)
    manifest.save(path)
    return path


def process_chunk(work_path: str | os.PathLike, config: Config, threads: int | None = None) -> Location:
    """Hash, and embed when the run needs it, one chunk; returns its commit file."""
    staged = hash_chunk(work_path, config)
    return embed_chunk(staged, work_path, config, threads) if config.uses_embeddings else staged


def process_chunk_or_skip(work_path: str | os.PathLike, config: Config, threads: int | None = None) -> Location | None:
    """:func:`process_chunk`, or None when the chunk fails, as a failed chunk task does in the flow: the run
    goes on, :func:`commit` records the chunk's files as not processed and the next run retries them.

    A :class:`StoreError` (the store as a whole cannot be used: every chunk would fail alike) is raised.
    """
    try:
        return process_chunk(work_path, config, threads)
    except StoreError:
        raise
    except Exception as exc:  # any failure of one chunk (a bug, a store write, memory) costs only its files
        # One line, not a traceback on the person's terminal; the debug log keeps the traceback.
        log.warning(
            "chunk %s failed (%s: %s); its files are recorded as not processed, the next run retries them",
            work_path,
            type(exc).__name__,
            exc,
        )
        log.debug("chunk %s failed", work_path, exc_info=True)
        return None


def _not_processed(manifest: Manifest, records: list, features) -> np.ndarray:
    """Whether each discovered file lacks a manifest entry of its fingerprint, or an entry read
    without error lacks one of ``features``: its chunk failed. Array by array, not file by file (a
    million files' Python loop, each asking for a feature mask, took 24 s)."""
    position = manifest.position()
    found = np.fromiter((position.get(r.id, -1) for r in records), dtype=np.int64, count=len(records))
    if not len(manifest):
        return np.ones(len(records), dtype=bool)
    at = np.maximum(found, 0)
    sizes = np.fromiter((r.size for r in records), dtype=np.int64, count=len(records))
    mtimes = np.fromiter((r.mtime_ns for r in records), dtype=np.int64, count=len(records))
    fresh = (found >= 0) & (manifest.size[at] == sizes) & (manifest.mtime_ns[at] == mtimes)
    complete = np.ones(len(records), dtype=bool)
    for feature in features:
        complete &= manifest.has(feature)[at]
    return ~fresh | ((manifest.status[at] == STATUS_OK) & ~complete)


def commit(plan_path: str | os.PathLike, config: Config) -> Location:
    """Merge the run's committed chunks into the manifest, drop deleted files; return the manifest path.

    A discovered file whose entry does not match its fingerprint or lacks a
    needed feature was not processed (its chunk failed): it is recorded as an
    error and retried by the next run.
    """
    plan = read_plan(plan_path)
    store = Store.open(plan.store)
    records = read_discovered(plan.discovered_path)
    manifest = merge_pending(store, store.load_manifest())
    missing = [records[k] for k in np.flatnonzero(_not_processed(manifest, records, plan.features)).tolist()]
    if missing:
        n = len(missing)
        failed = Manifest(
            ids=[r.id for r in missing],
            size=np.full(n, -1, np.int64),
            mtime_ns=np.zeros(n, np.int64),
            status=np.full(n, STATUS_ERROR, np.uint8),
            reason=np.full(n, "not processed: its chunk task failed"),
            row=np.full(n, -1, np.int64),
            width=np.zeros(n, np.int32),
            height=np.zeros(n, np.int32),
            formats=np.full(n, ""),
            digests=np.full(n, "", "U32"),
        )
        manifest = Manifest.concatenate([manifest, failed])
        last = {file_id: k for k, file_id in enumerate(manifest.ids)}
        manifest = manifest.take(np.fromiter(sorted(last.values()), dtype=np.int64))
    manifest = order_like(manifest, records)
    store.save_manifest(manifest)
    for path in store.pending_paths():
        locations.remove(path)
    return store.manifest_path
