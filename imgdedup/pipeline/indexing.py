"""Index stages: the run's images, and the search for duplicate pairs, cut into tiles."""

from __future__ import annotations

import os
from typing import Iterable

import numpy as np

from imgdedup.config import Config
from imgdedup.pipeline.plan import read_plan
from imgdedup.pipeline.results import ImageTable
from imgdedup.pipeline.run import WORK
from imgdedup.search.incremental import empty_pairs, finish_pairs, plan_pairs
from imgdedup.search.tiles import SearchPlan, load_tile, merge_tiles, save_tile, search_tile
from imgdedup.storage import locations
from imgdedup.storage.locations import Location, as_location, join
from imgdedup.storage.store import STATUS_OK, Manifest, Store


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


def plan_index(plan_path: str | os.PathLike, config: Config, out_dir: str | os.PathLike, workers: int = 1) -> Location:
    """Cut the run's search into tiles for ``workers`` (see :mod:`imgdedup.search.tiles`); save the plan as ``search.npz``."""
    plan = read_plan(plan_path)
    store = Store.open(plan.store)
    _, rows = image_table(store.load_manifest(), plan.root)
    search = plan_pairs(store, rows, rows >= plan.base_row, config, workers)
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
