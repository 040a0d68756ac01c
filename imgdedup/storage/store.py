"""The incremental store: what earlier runs learnt about each file, kept between runs.

Layout of a store (a local folder, or a URL prefix on object storage such as
``s3://bucket/stores/photos``; see :mod:`imgdedup.storage.locations`)::

    store.json        version, row chunk size, creation time, the scanned root it belongs to
    .imgdedup-store   empty: marks the folder as a store, which discovery never scans
    manifest.npz      one entry per known file: id, size, mtime, status, row, metadata
    arrays.zarr/      Zarr v3 group: hashes_<method> (N,) uint64, embeddings (N, D) float16
    pending/          results of chunks finished since the manifest was last saved
    pairs/            cached search results, for new-vs-all queries on the next run
    thumbs/           report thumbnails of the current clusters, named by content digest and size
    not_duplicates.json  content-digest pairs a person marked "not duplicates" in ``imgdedup review``
    verdicts/         verdicts of verified pairs by content digests, per verification settings
    lock              held by the run using the store (see :meth:`Store.lock`)

Rows are append-only. A file processed in a run gets fresh rows; its old rows
are left unused. Each chunk task writes only its own row range, padded to the
Zarr row chunk, so concurrent writers never share a Zarr chunk (Zarr 3 loses
rows when processes ``append`` concurrently: the flow resizes once, workers
write disjoint ranges). A chunk's result file in ``pending/`` is written after
its rows, as one whole file (rename locally, one PUT on object storage): it is
the commit point. A run killed at any moment leaves the manifest as it was
plus complete pending chunks, which the next run merges before planning, so it
resumes from the last committed chunk.

On object storage the arrays are Zarr 3 through ``zarr.storage.FsspecStore``
(one object per Zarr chunk, so disjoint row ranges are disjoint objects), with
no consolidated metadata; every other file is one object, written whole.

Everything is read with ``allow_pickle=False`` or as JSON/Zarr: a store from
someone else cannot execute code.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import socket
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from imgdedup.errors import StoreError
from imgdedup.storage import locations
from imgdedup.storage.locations import Location, join

log = logging.getLogger(__name__)

STORE_VERSION = 1
#: :meth:`Store.read_rows` reads only the chunks holding the rows when they span more than this many rows each.
SPARSE_READ = 16
STATUS_OK, STATUS_ERROR = 1, 2


def narrowest(strings: np.ndarray) -> np.ndarray:
    """``strings`` (a Unicode array) no wider than its longest value.

    Columns such as ``refused_under`` are empty for nearly every file, yet a
    concatenation is as wide as its widest part: a million files' column of
    mostly empty strings took 248 MB as 65 characters each.
    """
    strings = np.asarray(strings)
    if strings.dtype.kind != "U" or strings.dtype.itemsize <= 4:
        return strings
    longest = int(np.char.str_len(strings).max()) if len(strings) else 1
    return strings.astype(f"U{max(1, longest)}") if 4 * max(1, longest) < strings.dtype.itemsize else strings


@dataclass
class Manifest:
    """Every known file, one row per file, in arrays aligned by position.

    ``row`` is the file's row in the store's arrays (-1 for unreadable files);
    ``features`` maps a feature name (``hash:phash``, ``embedding``) to a bool
    array saying which files have it. ``refused_under`` is, for an unreadable
    file, the decoder settings it was refused under
    (:func:`imgdedup.imaging.decode.decoder_signature`; ``""`` when unknown, as
    in stores written before it was recorded).
    """

    ids: list[str] = field(default_factory=list)
    size: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    mtime_ns: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    status: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint8))
    reason: np.ndarray = field(default_factory=lambda: np.zeros(0, "U1"))
    row: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    width: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    height: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    formats: np.ndarray = field(default_factory=lambda: np.zeros(0, "U1"))
    digests: np.ndarray = field(default_factory=lambda: np.zeros(0, "U32"))
    features: dict[str, np.ndarray] = field(default_factory=dict)
    refused_under: np.ndarray | None = None

    COLUMNS = ("size", "mtime_ns", "status", "reason", "row", "width", "height", "formats", "digests", "refused_under")

    def __post_init__(self) -> None:
        if self.refused_under is None or len(self.refused_under) != len(self.ids):
            self.refused_under = np.full(len(self.ids), "", dtype="U1")
        self.refused_under = narrowest(self.refused_under)
        self.reason = narrowest(self.reason)

    def __len__(self) -> int:
        return len(self.ids)

    def position(self) -> dict[str, int]:
        return {file_id: k for k, file_id in enumerate(self.ids)}

    def has(self, feature: str) -> np.ndarray:
        mask = self.features.get(feature)  # not .get(feature, zeros): that builds the zeros every call
        return mask if mask is not None else np.zeros(len(self.ids), dtype=bool)

    def take(self, keep: np.ndarray) -> "Manifest":
        """The entries at positions ``keep`` (an index array), in that order."""
        keep = np.asarray(keep, dtype=np.int64)
        return Manifest(
            ids=[self.ids[k] for k in keep.tolist()],
            **{name: getattr(self, name)[keep] for name in self.COLUMNS},
            features={name: mask[keep] for name, mask in self.features.items()},
        )

    @staticmethod
    def concatenate(parts: Sequence["Manifest"]) -> "Manifest":
        parts = [p for p in parts if len(p)]
        if not parts:
            return Manifest()
        names = sorted({name for p in parts for name in p.features})
        return Manifest(
            ids=[i for p in parts for i in p.ids],
            **{name: np.concatenate([getattr(p, name) for p in parts]) for name in Manifest.COLUMNS},
            features={name: np.concatenate([p.has(name) for p in parts]) for name in names},
        )

    def save(self, path: Location) -> None:
        """Write the whole file at once (a hidden temporary name renamed, or one PUT): a commit point."""
        arrays = {name: getattr(self, name) for name in self.COLUMNS}
        arrays.update({f"feature:{name}": mask for name, mask in self.features.items()})
        # Ids as the bytes on disk: names that are not UTF-8 survive exactly.
        ids = np.array([os.fsencode(i) for i in self.ids], dtype=object)
        arrays["ids"] = ids.astype("S") if len(ids) else np.zeros(0, "S1")
        locations.save_npz(locations.as_location(path), sync=True, **arrays)

    @classmethod
    def load(cls, path: Location) -> "Manifest":
        data = locations.load_npz(locations.as_location(path))
        return cls(
            ids=[os.fsdecode(bytes(b)) for b in data["ids"]],
            **{name: data[name] for name in cls.COLUMNS if name in data},  # refused_under: new in this version
            features={key.split(":", 1)[1]: value for key, value in data.items() if key.startswith("feature:")},
        )


class Store:
    """A store (folder or URL prefix); open with :meth:`open`, hold :meth:`lock` while changing it."""

    #: How long an object-storage lock lasts without renewal (see :meth:`lock`).
    LEASE_SECONDS = 120.0

    def __init__(self, path: str | os.PathLike) -> None:
        self.path: Location = locations.as_location(path, StoreError)
        self.arrays_path: Location = join(self.path, "arrays.zarr")

    @property
    def is_remote(self) -> bool:
        return locations.is_remote(self.path)

    # --- life cycle ------------------------------------------------------------

    @classmethod
    def open(cls, path: str | os.PathLike, row_chunk: int = 1024) -> "Store":
        store = cls(path)
        meta = join(store.path, "store.json")
        locations.filesystem(store.path, StoreError)  # an unknown protocol says so
        try:
            for folder in (store.path, join(store.path, "pending"), join(store.path, "pairs")):
                locations.make_folder(folder)
            try:
                body = json.loads(locations.read_text(meta))
            except FileNotFoundError:
                body = {"version": STORE_VERSION, "row_chunk": int(row_chunk), "created": time.time()}
                locations.write_bytes(join(store.path, locations.STORE_MARKER), b"")  # never scanned as input
                locations.write_text(meta, json.dumps(body))
        except OSError as exc:
            raise StoreError(f"cannot create store {str(store.path)!r}: {exc.strerror or exc}") from None
        if body.get("version") != STORE_VERSION:
            raise StoreError(
                f"store {str(store.path)!r} has layout version {body.get('version')}, this imgdedup reads {STORE_VERSION}"
            )
        store.row_chunk = int(body["row_chunk"])
        return store

    def claim_root(self, root: str) -> None:
        """Record ``root`` (a run's absolute folder or URL) as the store's, or refuse another one.

        Entries are keyed by paths relative to the root: a file of another folder
        with the same relative path, size and mtime would reuse this folder's
        hashes. Stores made before roots were recorded take the first one that
        claims them. Call while holding :meth:`lock`.
        """
        meta = join(self.path, "store.json")
        body = json.loads(locations.read_text(meta))
        recorded = body.get("root")
        if recorded is None:
            locations.write_text(meta, json.dumps({**body, "root": root}))
        elif recorded != root:
            raise StoreError(
                f"store {str(self.path)!r} holds the files of {recorded!r}, not {root!r}: "
                "use another --store for this folder (or leave --store out: one store per folder)"
            )

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the store for one run; a second run on it stops with a clear message.

        A local store is locked with ``flock`` on its ``lock`` file: exclusive
        among processes of one machine (and NFS clients where the server
        supports it), released by the kernel when the holder dies.

        A store on object storage is locked with a lease: the ``lock`` object,
        created only if absent (S3's conditional PUT ``If-None-Match: *``), holds
        its owner and an expiry :attr:`LEASE_SECONDS` ahead, renewed by a
        background thread every quarter of that. A lease that has expired (its
        holder died) is taken over with a PUT conditional on the expired
        object's ETag, so two runs never both take it. Release deletes the object
        only if it is still this run's. The guarantee holds while the machines'
        clocks agree within a few seconds and the holder is not stalled for a
        whole lease; the writes themselves are not fenced. Other backends (gs://,
        az://, ...) create the lock object through fsspec's ``mode="create"``,
        which is atomic only where the backend implements it (fsspec's generic
        fallback checks, then writes: advisory), and never take over an expired
        one: the message says to delete it.
        """
        if self.is_remote:
            lease = _Lease(join(self.path, "lock"), str(self.path), self.LEASE_SECONDS)
            lease.acquire()
            try:
                yield
            finally:
                lease.release()
            return
        handle = open(self.path / "lock", "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise StoreError(
                    f"store {str(self.path)!r} is in use by {holder}; wait for that run to finish or use another --store"
                ) from None
            raise
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()}\n")
            handle.flush()
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()

    # --- manifest ----------------------------------------------------------------

    @property
    def manifest_path(self) -> Location:
        return join(self.path, "manifest.npz")

    def load_manifest(self) -> Manifest:
        try:
            return Manifest.load(self.manifest_path)
        except FileNotFoundError:
            return Manifest()

    def save_manifest(self, manifest: Manifest) -> None:
        manifest.save(self.manifest_path)

    # --- pairs a person said are not duplicates ----------------------------------

    def not_duplicates(self) -> set[tuple[str, str]]:
        """The ``(digest, digest)`` pairs (each sorted) marked "not duplicates"; later runs drop them."""
        try:
            body = json.loads(locations.read_text(join(self.path, "not_duplicates.json")))
        except FileNotFoundError:
            return set()
        return {(str(a), str(b)) for a, b in body.get("pairs", [])}

    def mark_not_duplicates(self, add: Sequence[tuple[str, str]] = (), remove: Sequence[tuple[str, str]] = ()) -> None:
        """Add and remove "not duplicates" pairs (whole-file rewrite: one small JSON document)."""
        pairs = (self.not_duplicates() | {tuple(sorted(p)) for p in add}) - {tuple(sorted(p)) for p in remove}
        body = {"version": 1, "pairs": sorted([a, b] for a, b in pairs)}
        locations.write_text(join(self.path, "not_duplicates.json"), json.dumps(body))

    # --- arrays ------------------------------------------------------------------

    def group(self, mode: str = "a"):
        import zarr

        location = str(self.arrays_path)
        if locations.is_remote(self.arrays_path):
            from zarr.storage import FsspecStore

            location = FsspecStore.from_url(location, read_only=mode == "r")
        # Never consolidated metadata: it shows a stale shape after resize, and
        # every writer here resizes first and writes disjoint rows after.
        return zarr.open_group(location, mode=mode, zarr_format=3, use_consolidated=False)

    def n_rows(self) -> int:
        group = self.group()
        return max((array.shape[0] for _, array in group.arrays()), default=0)

    def ensure_array(self, name: str, rows: int, dtype: str, width: int | None = None, attributes: dict | None = None):
        """Create or grow array ``name`` to at least ``rows`` rows; check its attributes match."""
        group = self.group()
        shape = (rows,) if width is None else (rows, width)
        chunks = (self.row_chunk,) if width is None else (self.row_chunk, width)
        if name in group:
            array = group[name]
            if attributes:
                stored = dict(array.attrs)
                different = {k: (stored.get(k), v) for k, v in attributes.items() if stored.get(k) != v}
                if different:
                    detail = "; ".join(f"{k}: store has {a!r}, run uses {b!r}" for k, (a, b) in different.items())
                    raise StoreError(
                        f"store {str(self.path)!r} holds {name} built differently ({detail}); use another --store"
                    )
            if width is not None and array.shape[1] != width:
                raise StoreError(f"store {name} has width {array.shape[1]}, run produces {width}; use another --store")
            if array.shape[0] < rows:
                array.resize(shape)
            return array
        array = group.create_array(name, shape=shape, chunks=chunks, dtype=dtype, fill_value=0)
        if attributes:
            array.attrs.update(attributes)
        return array

    def write_rows(self, name: str, start: int, values: np.ndarray) -> None:
        """Write ``values`` into rows ``start ...`` of an existing array (a chunk task's own range)."""
        if len(values):
            self.group(mode="r+")[name][start : start + len(values)] = values

    def read_rows(self, name: str, rows: np.ndarray) -> np.ndarray:
        array = self.group(mode="r")[name]
        rows = np.asarray(rows, dtype=np.int64)
        if not len(rows):
            return np.zeros((0,) + array.shape[1:], dtype=array.dtype)
        lo, hi = int(rows.min()), int(rows.max()) + 1
        if hi - lo <= SPARSE_READ * len(rows):
            # One contiguous read is far cheaper than fancy indexing across chunks.
            return array[lo:hi][rows - lo]
        # A few rows spread over the array (a run's duplicates among millions): read only their chunks.
        unique, inverse = np.unique(rows, return_inverse=True)
        return array.oindex[unique][inverse]

    # --- pending chunks ----------------------------------------------------------

    def pending_paths(self) -> list[Location]:
        folder = join(self.path, "pending")
        return [join(folder, name) for name in locations.list_names(folder) if name.endswith(".npz")]

    def pending_path(self, run_id: str, chunk: int) -> Location:
        return join(self.path, "pending", f"{run_id}-{chunk:05d}.npz")


class PositionRows:
    """Rows of store array ``name`` for the images at ``positions`` only, as float32, indexed by
    image position like the whole (N, ...) array.

    A run's pairs and clusters concern a few of its images: reading only theirs
    (:meth:`Store.read_rows` then reads just their chunks) spares a full read
    of the array, gigabytes in float32 at millions of images.
    """

    def __init__(self, store: "Store", name: str, rows: np.ndarray, positions: np.ndarray) -> None:
        involved = np.unique(positions)
        self.values = store.read_rows(name, rows[involved]).astype(np.float32)
        self.slot = np.full(len(rows), -1, dtype=np.int64)
        self.slot[involved] = np.arange(len(involved))

    def __getitem__(self, positions):
        slots = self.slot[positions]
        if np.any(slots < 0):
            raise IndexError("row of an image that was not asked for")
        return self.values[slots]


class _Lease:
    """The ``lock`` object of a store on object storage; see :meth:`Store.lock`."""

    def __init__(self, location: str, store: str, seconds: float) -> None:
        self.location, self.store, self.seconds = location, store, float(seconds)
        self.fs, self.key = locations.filesystem(location, StoreError)
        protocols = self.fs.protocol if isinstance(self.fs.protocol, (tuple, list)) else (self.fs.protocol,)
        self.conditional = bool({"s3", "s3a"} & set(protocols))  # If-Match / If-None-Match on PUT and DELETE
        self.owner = f"pid {os.getpid()} on {socket.gethostname()}"
        self.token = uuid.uuid4().hex
        self.etag: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _body(self) -> bytes:
        return json.dumps({"owner": self.owner, "token": self.token, "expires": time.time() + self.seconds}).encode()

    def _put(self, **condition) -> None:
        out = self.fs.pipe_file(self.key, self._body(), **condition)
        self.etag = out.get("ETag") if isinstance(out, dict) else None

    def _busy(self, holder: dict) -> StoreError:
        owner = holder.get("owner") or "another run"
        return StoreError(
            f"store {self.store!r} is in use by {owner}; wait for that run to finish or use another --store"
        )

    def acquire(self) -> None:
        try:
            try:
                self._put(mode="create")
            except FileExistsError:
                self._take_over()
        except OSError as exc:
            raise StoreError(f"cannot lock store {self.store!r}: {exc.strerror or exc}") from None
        self._thread = threading.Thread(target=self._renew, name="imgdedup-store-lease", daemon=True)
        self._thread.start()

    def _take_over(self) -> None:
        """Take an expired lease, if the backend can do it atomically; else say who holds it."""
        self.fs.invalidate_cache(self.key)
        try:
            etag = self.fs.info(self.key).get("ETag")
            holder = json.loads(self.fs.cat_file(self.key))
        except FileNotFoundError:  # released meanwhile: try once more from the start
            try:
                self._put(mode="create")
                return
            except FileExistsError:
                raise self._busy({}) from None
        except ValueError:
            holder = {}
        expires = float(holder.get("expires") or 0)
        if expires > time.time():
            raise self._busy(holder)
        if not (self.conditional and etag):
            raise StoreError(
                f"store {self.store!r} has a lock that expired at {time.ctime(expires)} ({holder.get('owner') or 'unknown owner'}); "
                f"this backend cannot take it over safely: delete {self.location!r} if no run is using the store"
            )
        try:
            self._put(IfMatch=etag)  # only if nobody renewed or took it since we read it
        except OSError:
            raise self._busy(holder) from None
        log.warning(
            "took over the expired lock of store %s from %s", self.store, holder.get("owner") or "an unknown owner"
        )

    def _renew(self) -> None:
        while not self._stop.wait(self.seconds / 4):
            try:
                self._put(**({"IfMatch": self.etag} if self.conditional and self.etag else {}))
            except OSError as exc:
                log.warning("lost the lock of store %s (%s); another run may now use it", self.store, exc)
                return

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        try:
            if self.conditional and self.etag:
                bucket, key, _ = self.fs.split_path(self.key)
                self.fs.call_s3("delete_object", Bucket=bucket, Key=key, IfMatch=self.etag)
                self.fs.invalidate_cache(self.key)
            else:
                self.fs.invalidate_cache(self.key)
                if json.loads(self.fs.cat_file(self.key)).get("token") == self.token:
                    self.fs.rm_file(self.key)
        except (OSError, ValueError) as exc:  # taken over meanwhile, or gone
            log.warning("did not remove the lock of store %s: %s", self.store, exc)


def merge_pending(store: Store, manifest: Manifest) -> Manifest:
    """Fold committed chunk results into the manifest: newer entries replace older ones by id."""
    paths = store.pending_paths()
    if not paths:
        return manifest
    parts = [Manifest.load(p) for p in paths]
    merged = Manifest.concatenate([manifest] + parts)
    last = {file_id: k for k, file_id in enumerate(merged.ids)}
    keep = np.fromiter(sorted(last.values()), dtype=np.int64)
    return merged.take(keep)


def default_store_path(root: str | os.PathLike) -> Path:
    """One store per scanned root, under ``$IMGDEDUP_HOME`` (default ``~/.cache/imgdedup``)."""
    import hashlib

    from imgdedup.storage.locations import is_url

    absolute = os.fsencode(str(root).rstrip("/") if is_url(root) else os.path.abspath(root))
    home = Path(os.environ.get("IMGDEDUP_HOME") or Path.home() / ".cache" / "imgdedup")
    name = os.fsdecode(os.path.basename(absolute.rstrip(b"/")) or b"root")
    return home / "stores" / f"{name}-{hashlib.sha1(absolute).hexdigest()[:10]}"
