"""Pipeline: the stages of a run, each a plain function over one chunk or one run.

Stages take and return paths (the run folder, the store), never pixel arrays,
so the same functions run in-process (:func:`find_duplicates_in_folder`, the
``find`` command) and as Prefect tasks on Dask workers (``flows/dedup.py``):
one code path, identical results. The run folder and the store are each a local
folder or a URL prefix on object storage (see :mod:`imgdedup.storage.locations`);
the work files the stages pass to each other live in the run folder.

Modules, in the order a run uses them (each imports only those above it):

- ``plan``: a run cut into chunks; ``results``: the result files; ``pool``: ``find``'s process pool
- ``run``: the run folder and its layout, the store of a run, the stage clock, the run's summary
- ``embedders``: one embedder per process and setting, the embedding of a batch
- ``chunks``: preprocess (discover and plan), hash and embed one chunk, commit
- ``indexing``: the run's images and the search for pairs, cut into tiles
- ``verify_jobs``: a share of the images to describe and pairs to verify, run anywhere (worker processes, Dask)
- ``verification``: the run's candidate pairs verified in batches or jobs, their verdicts kept in the store
- ``clustering``: cluster the verified pairs, write duplicates.json and clusters.json/.csv
- ``reporting``: report.html, summary.json, scores against a ground truth
- ``inprocess``: :func:`find_duplicates_in_folder`, every stage in this process
- ``stages``: the old address of all these names, re-exported

May import everything else of imgdedup. Never Prefect: ``imgdedup.tasks`` and
``imgdedup.flows`` wrap these functions.
"""

from imgdedup.pipeline.inprocess import find_duplicates_in_folder

__all__ = ["find_duplicates_in_folder"]
