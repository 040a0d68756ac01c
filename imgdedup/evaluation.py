"""imagededup's evaluation and the pairwise scores: ``from imgdedup.evaluation import evaluate``.

The code lives in :mod:`imgdedup.compat.evaluation`; this module keeps the documented import path.
``Evaluation().evaluate(ground_truth=, retrieved=)`` is the guide's form.
"""

from imgdedup.compat.evaluation import (  # noqa: F401
    METRICS,
    Evaluation,
    evaluate,
    format_score_table,
    load_duplicates_json,
    pairwise_scores,
    recall_by_label,
    score_run,
)

__all__ = [
    "METRICS",
    "Evaluation",
    "evaluate",
    "format_score_table",
    "load_duplicates_json",
    "pairwise_scores",
    "recall_by_label",
    "score_run",
]
