"""The incremental store: what earlier runs learnt about each file, kept between runs.

Layout of a store folder::

    store.json        version, row chunk size, creation time
    manifest.npz      one entry per known file: id, size, mtime, status, row, metadata
    arrays.zarr/      Zarr v3 group: hashes_<method> (N,) uint64, embeddings (N, D) float16
    pending/          results of chunks finished since the manifest was last saved
    pairs/            cached search results, for new-vs-all queries on the next run
    lock              held (flock) by the run using the store

Rows are append-only. A file processed in a run gets fresh rows; its old rows
are left unused. Each chunk task writes only its own row range, padded to the
Zarr row chunk, so concurrent writers never share a Zarr chunk (Zarr 3 loses
rows when processes ``append`` concurrently: the flow resizes once, workers
write disjoint ranges). A chunk's result file in ``pending/`` is written after
its rows, by rename: it is the commit point. A run killed at any moment leaves
the manifest as it was plus complete pending chunks, which the next run merges
before planning, so it resumes from the last committed chunk.

Everything is read with ``allow_pickle=False`` or as JSON/Zarr: a store from
someone else cannot execute code.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from imgdedup.errors import StoreError

STORE_VERSION = 1
STATUS_OK, STATUS_ERROR = 1, 2


@dataclass
class Manifest:
    """Every known file, one row per file, in arrays aligned by position.

    ``row`` is the file's row in the store's arrays (-1 for unreadable files);
    ``features`` maps a feature name (``hash:phash``, ``embedding``) to a bool
    array saying which files have it.
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

    COLUMNS = ("size", "mtime_ns", "status", "reason", "row", "width", "height", "formats", "digests")

    def __len__(self) -> int:
        return len(self.ids)

    def position(self) -> dict[str, int]:
        return {file_id: k for k, file_id in enumerate(self.ids)}

    def has(self, feature: str) -> np.ndarray:
        return self.features.get(feature, np.zeros(len(self.ids), dtype=bool))

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

    def save(self, path: Path) -> None:
        # Not ending in .npz: a half-written file must never look like a committed chunk.
        tmp = path.with_name(f".{path.name}.tmp")
        arrays = {name: getattr(self, name) for name in self.COLUMNS}
        arrays.update({f"feature:{name}": mask for name, mask in self.features.items()})
        # Ids as the bytes on disk: names that are not UTF-8 survive exactly.
        ids = np.array([os.fsencode(i) for i in self.ids], dtype=object)
        arrays["ids"] = ids.astype("S") if len(ids) else np.zeros(0, "S1")
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> "Manifest":
        with np.load(path, allow_pickle=False) as data:
            return cls(
                ids=[os.fsdecode(bytes(b)) for b in data["ids"]],
                **{name: data[name] for name in cls.COLUMNS},
                features={key.split(":", 1)[1]: data[key] for key in data.files if key.startswith("feature:")},
            )


class Store:
    """A store folder; open with :meth:`open`, hold :meth:`lock` while changing it."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    # --- life cycle ------------------------------------------------------------

    @classmethod
    def open(cls, path: str | os.PathLike, row_chunk: int = 1024) -> "Store":
        store = cls(path)
        meta = store.path / "store.json"
        try:
            store.path.mkdir(parents=True, exist_ok=True)
            (store.path / "pending").mkdir(exist_ok=True)
            (store.path / "pairs").mkdir(exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create store {str(store.path)!r}: {exc.strerror or exc}") from None
        if not meta.exists():
            body = {"version": STORE_VERSION, "row_chunk": int(row_chunk), "created": time.time()}
            tmp = meta.with_name("store.json.tmp")
            tmp.write_text(json.dumps(body), encoding="utf-8")
            os.replace(tmp, meta)
        body = json.loads(meta.read_text(encoding="utf-8"))
        if body.get("version") != STORE_VERSION:
            raise StoreError(f"store {str(store.path)!r} has layout version {body.get('version')}, this imgdedup reads {STORE_VERSION}")
        store.row_chunk = int(body["row_chunk"])
        return store

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the store for one run; a second run on it stops with a clear message."""
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
    def manifest_path(self) -> Path:
        return self.path / "manifest.npz"

    def load_manifest(self) -> Manifest:
        return Manifest.load(self.manifest_path) if self.manifest_path.exists() else Manifest()

    def save_manifest(self, manifest: Manifest) -> None:
        manifest.save(self.manifest_path)

    # --- arrays ------------------------------------------------------------------

    def group(self, mode: str = "a"):
        import zarr

        # Never consolidated metadata: it shows a stale shape after resize, and
        # every writer here resizes first and writes disjoint rows after.
        return zarr.open_group(str(self.path / "arrays.zarr"), mode=mode, zarr_format=3, use_consolidated=False)

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
                    raise StoreError(f"store {str(self.path)!r} holds {name} built differently ({detail}); use another --store")
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
            self.group(mode="r+")[name][start:start + len(values)] = values

    def read_rows(self, name: str, rows: np.ndarray) -> np.ndarray:
        array = self.group(mode="r")[name]
        rows = np.asarray(rows, dtype=np.int64)
        if not len(rows):
            return np.zeros((0,) + array.shape[1:], dtype=array.dtype)
        lo, hi = int(rows.min()), int(rows.max()) + 1
        # One contiguous read is far cheaper than fancy indexing across chunks.
        return array[lo:hi][rows - lo]

    # --- pending chunks ----------------------------------------------------------

    def pending_paths(self) -> list[Path]:
        return sorted((self.path / "pending").glob("*.npz"))

    def pending_path(self, run_id: str, chunk: int) -> Path:
        return self.path / "pending" / f"{run_id}-{chunk:05d}.npz"


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

    from imgdedup.remote import is_url

    absolute = os.fsencode(str(root).rstrip("/") if is_url(root) else os.path.abspath(root))
    home = Path(os.environ.get("IMGDEDUP_HOME") or Path.home() / ".cache" / "imgdedup")
    name = os.fsdecode(os.path.basename(absolute.rstrip(b"/")) or b"root")
    return home / "stores" / f"{name}-{hashlib.sha1(absolute).hexdigest()[:10]}"
