"""Pipeline: the stages of a run, each a plain function over one chunk or one run.

Holds the plan (``plan``: a run cut into chunks), the stages (``stages``: preprocess,
hash, embed, index, cluster, report, commit, and ``find_duplicates_in_folder``, the
whole job in one process) and the result files (``results``).

May import everything else of imgdedup. Never Prefect: ``imgdedup.tasks`` and
``imgdedup.flows`` wrap these functions.
"""

from imgdedup.pipeline.stages import find_duplicates_in_folder

__all__ = ["find_duplicates_in_folder"]
