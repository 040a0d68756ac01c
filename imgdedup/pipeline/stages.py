"""The stage functions, by their old address: every name here moved to a module of its own topic.

Kept so that ``from imgdedup.pipeline.stages import X`` goes on working; new code
imports from the module that holds the name:

- :mod:`imgdedup.pipeline.run`: the run folder (``WORK``, :func:`default_out_dir`,
  :func:`prepare_out_dir`), :func:`open_store`, :class:`StageClock`, :class:`RunSummary`
- :mod:`imgdedup.pipeline.embedders`: :func:`embedder_for`, :func:`embedding_settings`,
  :func:`embed_files`
- :mod:`imgdedup.pipeline.chunks`: :func:`preprocess`, :func:`hash_chunk`,
  :func:`embed_chunk`, :func:`process_chunk`, :func:`process_chunk_or_skip`, :func:`commit`
- :mod:`imgdedup.pipeline.indexing`: :func:`image_table`, :func:`index`,
  :func:`plan_index`, :func:`count_tiles`, :func:`index_tile`, :func:`merge_index`
- :mod:`imgdedup.pipeline.verification`: :func:`describe_candidates`; :mod:`imgdedup.pipeline.clustering`:
  :func:`run_settings`, :func:`cluster`
- :mod:`imgdedup.pipeline.reporting`: :func:`truth_scores`, :func:`report`
- :mod:`imgdedup.pipeline.inprocess`: ``Progress``, :func:`find_duplicates_in_folder`
"""

from imgdedup.pipeline.chunks import (
    _chunk_manifest,
    commit,
    embed_chunk,
    hash_chunk,
    preprocess,
    process_chunk,
    process_chunk_or_skip,
)
from imgdedup.pipeline.clustering import cluster, run_settings
from imgdedup.pipeline.embedders import _EMBEDDERS, embed_files, embedder_for, embedding_settings
from imgdedup.pipeline.indexing import count_tiles, image_table, index, index_tile, merge_index, plan_index
from imgdedup.pipeline.inprocess import Progress, find_duplicates_in_folder
from imgdedup.pipeline.reporting import UNREADABLE_SHOWN, report, truth_scores
from imgdedup.pipeline.run import (
    WORK,
    RunSummary,
    StageClock,
    default_out_dir,
    open_store,
    prepare_out_dir,
    show_name,
)
from imgdedup.pipeline.verify_jobs import describe_candidates

__all__ = [
    "UNREADABLE_SHOWN",
    "WORK",
    "_EMBEDDERS",
    "_chunk_manifest",
    "Progress",
    "RunSummary",
    "StageClock",
    "cluster",
    "commit",
    "count_tiles",
    "default_out_dir",
    "describe_candidates",
    "embed_chunk",
    "embed_files",
    "embedder_for",
    "embedding_settings",
    "find_duplicates_in_folder",
    "hash_chunk",
    "image_table",
    "index",
    "index_tile",
    "merge_index",
    "open_store",
    "plan_index",
    "prepare_out_dir",
    "preprocess",
    "process_chunk",
    "process_chunk_or_skip",
    "report",
    "run_settings",
    "show_name",
    "truth_scores",
]
