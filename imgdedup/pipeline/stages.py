"""The dedup job as stage functions: preprocess -> process chunks -> commit -> index -> cluster -> report.

Stages take and return paths (the run folder, the store), never pixel arrays,
so the same functions run in-process (:func:`find_duplicates_in_folder`, the
``find`` command) and as Prefect tasks on Dask workers (``flows/dedup.py``):
one code path, identical results.

The run folder and the store are each a local folder or a URL prefix on object
storage (``s3://bucket/runs/x``; see :mod:`imgdedup.storage.locations`). The work
files the stages pass to each other live in the run folder, so with a URL run
folder every worker of a multi-machine cluster reads them from the bucket;
with a local one the workers need to share that file system.

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
import logging
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

from imgdedup.config import Config
from imgdedup.errors import ImageLoadError, OutputError, StoreError
from imgdedup.imaging.decode import decoder_signature
from imgdedup.imaging.describe import describe_image
from imgdedup.imaging.discover import FileRecord, content_digest, discover_images, read_bytes, root_location
from imgdedup.imaging.hash_chunk import hash_images
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
from imgdedup.pipeline.pool import FIND_MIN_SPLIT, find_workers, map_chunks, threads_per_worker
from imgdedup.pipeline.results import (
    ImageTable,
    clusters_document,
    duplicates_map,
    read_json,
    write_clusters_csv,
    write_errors_csv,
    write_json,
)
from imgdedup.review.report import display_name, human_bytes, render_report
from imgdedup.review.thumbnails import fetch_from_store, keep_in_store, needed_thumbnails
from imgdedup.search.cluster import cluster_pairs, keeper_order
from imgdedup.search.incremental import TRIMMED_HASH_ARRAYS, empty_pairs, finish_pairs, plan_pairs
from imgdedup.search.rules import suppress_pairs, veto_pairs
from imgdedup.search.tiers import TIERS, member_tier
from imgdedup.search.tiles import SearchPlan, load_tile, merge_tiles, save_tile, search_tile
from imgdedup.search.verify import verify_pair
from imgdedup.storage import locations
from imgdedup.storage.locations import Location, as_location, join
from imgdedup.storage.store import (
    STATUS_ERROR,
    STATUS_OK,
    Manifest,
    PositionRows,
    Store,
    default_store_path,
    merge_pending,
)

WORK = "work"

log = logging.getLogger(__name__)


UNREADABLE_SHOWN = 5  # unreadable files named in the summary lines


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


# --- embeddings ----------------------------------------------------------------

_EMBEDDERS: dict[tuple, object] = {}


def embedder_for(config: Config, threads: int | None = None):
    """One embedder per process and setting: building it (model, ONNX session) takes seconds."""
    from imgdedup.embedding.embedder import load_embedder

    settings = embedding_settings(config)
    key = (tuple(sorted(settings.items())), config.runtime, config.device, config.embed_batch_size, threads)
    if key not in _EMBEDDERS:
        _EMBEDDERS[key] = load_embedder(
            config.model,
            pooling=config.pooling,
            mirror=config.mirror,
            layer=config.embed_layer,
            grayscale=config.grayscale,
            trim=config.trim,
            runtime=config.runtime,
            device=config.device,
            batch_size=config.embed_batch_size,
            threads=threads,
        )
    return _EMBEDDERS[key]


def embedding_settings(config: Config) -> dict:
    """What the config says about embeddings; checked against the store without building a model."""
    return {
        "model": config.model,
        "layer": config.embed_layer,
        "pooling": config.pooling,
        "mirror": config.mirror,
        "grayscale": config.grayscale,
        "trim": config.trim,
    }


def embed_files(embedder, datas: list[bytes]) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    """Embed a batch, with the trimmed hashes; if it fails, one by one so one bad file costs only itself."""
    try:
        return *embedder.embed_and_hash_bytes(datas), {}
    except ImageLoadError:
        pass
    vectors = np.zeros((len(datas), embedder.dim), dtype=np.float32)
    hashes = np.zeros((len(datas), 2), dtype=np.uint64)
    failed: dict[int, str] = {}
    for k, data in enumerate(datas):
        try:
            one_vector, one_hashes = embedder.embed_and_hash_bytes([data])
            vectors[k], hashes[k] = one_vector[0], one_hashes[0]
        except ImageLoadError as exc:
            failed[k] = exc.reason
    return vectors, hashes, failed


# --- stages ----------------------------------------------------------------------


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
    position = manifest.position()
    missing = []
    for record in records:
        m = position.get(record.id)
        fresh = m is not None and manifest.size[m] == record.size and manifest.mtime_ns[m] == record.mtime_ns
        if not fresh or (manifest.status[m] == STATUS_OK and not all(manifest.has(f)[m] for f in plan.features)):
            missing.append(record)
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


def image_table(manifest: Manifest, root: str) -> tuple[ImageTable, np.ndarray]:
    """The readable images of the manifest (file order) and their store rows."""
    ok = np.flatnonzero(manifest.status == STATUS_OK)
    part = manifest.take(ok)
    table = ImageTable(
        root=root,
        ids=part.ids,
        sizes=part.size,
        mtime_ns=part.mtime_ns,
        width=part.width,
        height=part.height,
        formats=part.formats,
        digests=part.digests,
    )
    return table, part.row


def index(plan_path: str | os.PathLike, config: Config, out_dir: str | os.PathLike) -> Location:
    """Find every duplicate pair of the run (incrementally when the store allows); save as ``pairs.npz``.

    In this process, tile by tile; the flow runs the same three steps as tasks:
    :func:`plan_index`, :func:`index_tile` for each tile, :func:`merge_index`.
    """
    search_path = plan_index(plan_path, config, out_dir)
    tile_paths = [index_tile(number, plan_path, search_path, out_dir) for number in range(count_tiles(search_path))]
    return merge_index(plan_path, search_path, tile_paths, config, out_dir)


def plan_index(plan_path: str | os.PathLike, config: Config, out_dir: str | os.PathLike) -> Location:
    """Cut the run's search into tiles (see :mod:`imgdedup.search.tiles`); save the plan as ``search.npz``."""
    plan = read_plan(plan_path)
    store = Store.open(plan.store)
    _, rows = image_table(store.load_manifest(), plan.root)
    search = plan_pairs(store, rows, rows >= plan.base_row, config)
    return search.save(join(out_dir, WORK, "search.npz"))


def count_tiles(search_path: str | os.PathLike) -> int:
    return len(locations.load_npz(as_location(search_path), ["tiles"])["tiles"])


def index_tile(
    number: int, plan_path: str | os.PathLike, search_path: str | os.PathLike, out_dir: str | os.PathLike
) -> Location:
    """Search tile ``number``, reading only the store rows of its two partitions; save its pairs."""
    store = Store.open(read_plan(plan_path).store)
    found = search_tile(store, SearchPlan.load(as_location(search_path)), number)
    return save_tile(join(out_dir, WORK, f"tile-{number:05d}.npz"), found)


def merge_index(
    plan_path: str | os.PathLike,
    search_path: str | os.PathLike,
    tile_paths: Iterable[str | os.PathLike],
    config: Config,
    out_dir: str | os.PathLike,
) -> Location:
    """Merge the tiles' pairs (and the reused cached ones) into the run's pairs; save as ``pairs.npz``."""
    plan = read_plan(plan_path)
    store = Store.open(plan.store)
    search = SearchPlan.load(as_location(search_path))
    if len(search.rows):
        found = merge_tiles(search, [load_tile(path) for path in tile_paths])
        pairs = finish_pairs(store, search.rows, config, found)
    else:
        pairs = empty_pairs()
    path = join(out_dir, WORK, "pairs.npz")
    return locations.save_npz(path, i=pairs.i, j=pairs.j, distance=pairs.distance, similarity=pairs.similarity)


def describe_candidates(table: ImageTable, indices: np.ndarray, max_pixels: int) -> dict:
    """:class:`ImageEvidence` of the images in candidate pairs (None for a file unreadable now)."""
    found: dict = {}
    for k in np.asarray(indices).tolist():
        record = FileRecord(id=table.ids[k], size=int(table.sizes[k]), mtime_ns=int(table.mtime_ns[k]))
        try:
            found[k] = describe_image(read_bytes(table.root, record), max_pixels)
        except (ImageLoadError, MemoryError):
            found[k] = None
    return found


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
    plan_path: str | os.PathLike, pairs_path: str | os.PathLike, config: Config, out_dir: str | os.PathLike
) -> Location:
    """Cluster the pairs and write duplicates.json, clusters.json/.csv and errors.csv."""
    out_dir = as_location(out_dir)
    plan = read_plan(plan_path)
    store = Store.open(plan.store)
    manifest = store.load_manifest()
    table, rows = image_table(manifest, plan.root)
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
    verifier, evidence, outcomes, verdicts = None, {}, {}, {}
    if config.verify and not config.compat and len(i):
        evidence = describe_candidates(table, np.unique(np.concatenate([i, j])), config.max_image_pixels)
        settings = config.verify_settings

        def verifier(a: int, b: int) -> tuple[bool, str, dict]:
            key = (min(a, b), max(a, b))
            if key not in verdicts:
                if evidence.get(a) is None or evidence.get(b) is None:
                    verdicts[key] = (False, "unreadable", {})
                else:
                    verdict = verify_pair(evidence[a], evidence[b], table.digests[a] == table.digests[b], settings)
                    verdicts[key] = (verdict.ok, verdict.evidence, verdict.scores)
                outcomes[verdicts[key][1]] = outcomes.get(verdicts[key][1], 0) + 1
            return verdicts[key]

    camera = np.zeros(len(table.ids), bool)
    for k, found in evidence.items():
        camera[k] = found is not None and found.camera
    rank = keeper_order(table.width, table.height, table.sizes, table.mtime_ns, table.ids, camera)
    clusters = cluster_pairs(len(table.ids), i, j, hashes, rank, embeddings, verify=verifier)
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
    if verifier is not None:  # duplicates.json lists verified pairs only
        confirmed = np.fromiter((verifier(a, b)[0] for a, b in zip(i.tolist(), j.tolist())), dtype=bool, count=len(i))
        i, j, distance, similarity = i[confirmed], j[confirmed], distance[confirmed], similarity[confirmed]
    document["verification"] = dict(sorted(outcomes.items()))  # checks made, by evidence or reason refuted
    document["low_information"] = sum(1 for found in evidence.values() if found is not None and found.low_information)
    document["vetoed_pairs"] = vetoed
    document["suppressed_pairs"] = suppressed
    by_similarity = config.uses_embeddings
    write_json(
        join(out_dir, "duplicates.json"),
        duplicates_map(table.ids, i, j, similarity if by_similarity else distance, higher_is_closer=by_similarity),
    )
    errors = [
        (manifest.ids[k], str(manifest.reason[k])) for k in np.flatnonzero(manifest.status == STATUS_ERROR).tolist()
    ]
    write_clusters_csv(join(out_dir, "clusters.csv"), document)
    write_errors_csv(join(out_dir, "errors.csv"), errors)
    document.update(
        files=len(manifest),
        images=len(table.ids),
        decoded=plan.to_process,
        store=plan.store,
        errors=[list(e) for e in errors],
    )
    return write_json(join(out_dir, "clusters.json"), document)


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


# --- in-process run ----------------------------------------------------------------

#: ``progress(stage, done, total)``: a stage starts (``done`` 0) and advances; ``total`` is None
#: for a stage that has no count. Stages: discover (files found), read (images read, hashed and,
#: for embedding methods, embedded), commit, search, cluster, report.
Progress = Callable[[str, int, "int | None"], None]


def find_duplicates_in_folder(
    root: str | os.PathLike,
    config: Config,
    out_dir: str | os.PathLike,
    progress: Progress | None = None,
    truth: Mapping[str, Sequence[str]] | None = None,
) -> RunSummary:
    """Run every stage in this process, as the flow does (``truth``: see :func:`report`).

    Chunks, and the search's tiles, run on a pool of ``config.find_workers``
    processes (default: one per core); the result does not depend on their number.
    """
    out = prepare_out_dir(out_dir)
    store = open_store(root, config)
    workers = find_workers(config.find_workers)
    clock = StageClock()
    tell = progress or (lambda stage, done, total: None)
    with store.lock():
        tell("discover", 0, None)
        with clock("preprocess"):
            plan_path = preprocess(root, out, config, store, workers)
        plan = read_plan(plan_path)
        tell("discover", plan.discovered, plan.discovered)
        tell("read", 0, plan.to_process)
        chunk_paths = [str(p) for p in plan.chunk_paths]
        sizes = [len(read_chunk_work(p).files) for p in chunk_paths]
        done = 0

        def chunk_done(number: int) -> None:
            nonlocal done
            done += sizes[number]
            tell("read", done, plan.to_process)

        # In this process the embedder may use every core; in a pool, each worker its share.
        threads = None if workers == 1 or len(chunk_paths) <= 1 else threads_per_worker(workers)
        with clock("hash"):
            map_chunks(process_chunk_or_skip, chunk_paths, (config, threads), workers, chunk_done)
        tell("commit", 0, None)
        with clock("commit"):
            commit(plan_path, config)
        tell("search", 0, None)
        with clock("index"):
            search_path = plan_index(plan_path, config, out)
            tiles = list(range(count_tiles(search_path)))
            tile_paths = map_chunks(index_tile, tiles, (str(plan_path), str(search_path), str(out)), workers)
            pairs_path = merge_index(plan_path, search_path, tile_paths, config, out)
        tell("cluster", 0, None)
        with clock("cluster"):
            clusters_path = cluster(plan_path, pairs_path, config, out)
        tell("report", 0, None)
        return report(clusters_path, config, out, clock.seconds, truth)
