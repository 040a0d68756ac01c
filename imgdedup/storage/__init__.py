"""Storage: where runs and stores live, locally or on object storage.

Holds locations (``locations``: local paths and fsspec URLs, whole-file atomic writes)
and the incremental Zarr store with its lock and manifest (``store``).

May import: numpy, zarr, fsspec and ``imgdedup.errors``. Nothing else of imgdedup.
"""
