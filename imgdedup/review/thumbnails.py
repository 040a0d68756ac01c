"""Report thumbnails: JPEGs named by content digest and size, made once and shared.

A thumbnail is ``<digest>-<size>.jpg``: the name says what it shows, so a file
of that name made by any earlier run is the right one. A run folder holds its
own thumbnails (``thumbs/``, so an old report keeps working), and the store
keeps a cache of those of its current clusters (``STORE/thumbs``), which the
next run's report links from instead of decoding again. Folders may be URLs.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Iterable, Mapping, Sequence

from imgdedup.errors import ImageLoadError
from imgdedup.imaging.decode import load_image
from imgdedup.imaging.discover import FileRecord, read_bytes
from imgdedup.storage import locations
from imgdedup.storage.locations import Location, as_location, join

THUMBS = "thumbs"


def thumbnail_name(digest: str, size: int) -> str:
    """The file name of the thumbnail of content ``digest`` whose longest side is ``size``."""
    return f"{digest}-{size}.jpg"


def _write_thumbnail(root: str, member: Mapping, target: Location, size: int) -> bool:
    try:
        data = read_bytes(root, FileRecord(member["path"], member["bytes"], 0))
        image = load_image(data, mode="RGB", draft_size=(size, size), keep_aspect=True)
        image.thumbnail((size, size))
        locations.write_with(target, lambda handle: image.save(handle, "JPEG", quality=85))
        return True
    except (ImageLoadError, OSError, ValueError):
        return False  # the report then shows the name without a picture


def make_thumbnails(
    root: str, members: Sequence[Mapping], folder: str | os.PathLike, size: int, workers: int | None = None
) -> dict[str, str]:
    """Write one JPEG thumbnail per distinct digest; return digest -> src relative to the page.

    A thumbnail that already exists (same digest and size) is reused, so a
    re-render costs one listing of the folder. Missing ones are made on a few
    threads (Pillow decodes without holding the GIL). ``folder`` may be a URL.
    """
    folder = as_location(folder)
    locations.make_folder(folder)
    present = set(locations.list_names(folder))
    prefix = locations.name(folder)
    sources: dict[str, str] = {}
    todo: dict[str, Mapping] = {}
    for member in members:
        digest = member["digest"]
        if digest in sources or digest in todo:
            continue
        name = thumbnail_name(digest, size)
        if name in present:
            sources[digest] = f"{prefix}/{name}"
        else:
            todo[digest] = member
    if todo:
        workers = workers or min(4, os.cpu_count() or 1)
        digests = list(todo)

        def one(digest: str) -> bool:
            return _write_thumbnail(root, todo[digest], join(folder, thumbnail_name(digest, size)), size)

        if workers > 1 and len(digests) > 8:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                done = list(pool.map(one, digests))
        else:
            done = [one(d) for d in digests]
        for digest, ok in zip(digests, done):
            if ok:
                sources[digest] = f"{prefix}/{thumbnail_name(digest, size)}"
    return sources


def share_files(source: Location, target: Location, names: Iterable[str] | None = None) -> None:
    """Hard-link (or copy) the files of ``source`` (only ``names``, if given) missing from ``target``.

    Thumbnails are named by content, so a file of that name is the right one.
    Between local folders these are hard links; within one object store,
    server-side copies; between the two, a download and an upload.
    """
    wanted = set(names) if names is not None else None
    present = set(locations.list_names(target))
    todo = [
        n
        for n in locations.list_names(source)
        if not n.startswith(".") and n not in present and (wanted is None or n in wanted)
    ]
    if todo:
        locations.make_folder(target)
        locations.copy_files([join(source, n) for n in todo], [join(target, n) for n in todo])


def keep_only(folder: Location, names: set[str]) -> None:
    """Remove the files of ``folder`` (a cache of ours) not in ``names``.

    Run folders hold their own hard links (or copies) of the thumbnails they
    show, so earlier reports keep theirs.
    """
    for name in locations.list_names(folder):
        if not name.startswith(".") and name not in names:
            locations.remove(join(folder, name))


def needed_thumbnails(clusters: Iterable[Mapping], size: int) -> set[str]:
    """The thumbnail names the clusters' members need."""
    return {thumbnail_name(m["digest"], size) for c in clusters for m in c["members"]}


def fetch_from_store(store: str | os.PathLike, out_dir: str | os.PathLike, names: set[str]) -> None:
    """Share into the run folder the thumbnails ``names`` that earlier runs left in the store's cache."""
    share_files(join(as_location(store), THUMBS), join(as_location(out_dir), THUMBS), names)


def keep_in_store(store: str | os.PathLike, out_dir: str | os.PathLike, names: set[str]) -> None:
    """Share the run's thumbnails ``names`` into the store's cache and drop the cache's others.

    The store keeps its current clusters' thumbnails, not every one ever made.
    """
    cache = join(as_location(store), THUMBS)
    share_files(join(as_location(out_dir), THUMBS), cache, names)
    keep_only(cache, names)
