"""Scoring a duplicate map against a ground truth.

A *duplicate map* (imagededup's format) maps every file name to the list of
file names reported as its duplicates, e.g.
``{"a.jpg": ["b.jpg"], "b.jpg": ["a.jpg"], "c.jpg": []}``.

imagededup-compatible metrics (:func:`evaluate`)
------------------------------------------------
These reproduce ``imagededup.evaluation.evaluate`` of imagededup 0.3.3 value
for value. Both maps must have the same keys, every listed duplicate must be a
key, and each map must be symmetric (``b in m[a]`` implies ``a in m[b]``).

Per query file ``q`` with ground-truth list ``G`` and retrieved list ``R`` (in
retrieved order; lists are used as given, repeated entries included):

* if ``G`` and ``R`` are both empty the score is 1; if only one is empty, 0;
* ``map``: average precision, ``sum_k rel_k * P@k / len(G)`` where
  ``rel_k = 1`` if ``R[k] in G`` and ``P@k`` is the fraction of relevant
  entries among the first ``k``;
* ``ndcg``: ``DCG(rel) / DCG(sorted(rel, reverse=True))`` with
  ``DCG(rel) = sum_k (2**rel_k - 1) / log2(k + 2)`` (``k`` from 0), and 0 when
  no retrieved entry is relevant (the ideal ranking only reorders ``R``);
* ``jaccard``: ``|set(G) & set(R)| / |set(G) | set(R)|``.

Each of these is averaged over all keys (arithmetic mean).

``classification`` treats every unordered pair of distinct keys as a sample:
class 1 if the pair is a duplicate pair, class 0 otherwise (a pair is a
duplicate pair of a map if either file lists the other). It returns, like
scikit-learn's ``precision_recall_fscore_support(y_true, y_pred)``, the
arrays ``precision``, ``recall``, ``f1_score`` and ``support`` with one entry
per class present in ``y_true`` or ``y_pred``, in class order (so usually
``[class 0, class 1]``). A ratio whose denominator is 0 is 0.

Pairwise scores (:func:`pairwise_scores`, :func:`recall_by_label`)
------------------------------------------------------------------
These count unordered pairs ``{a, b}`` with ``a != b``; a pair is positive in
a map if ``b in map[a]`` or ``a in map[b]``. The maps need neither the same
keys nor symmetry. With ``tp`` the positive pairs of both maps, ``fp`` those
only retrieved and ``fn`` those only in the ground truth:
``precision = tp / (tp + fp)``, ``recall = tp / (tp + fn)`` and
``f1 = 2 tp / (2 tp + fp + fn)``. An empty denominator gives 1.0 (nothing
retrieved means no false positives; nothing to find means nothing missed), so
the scores are all 1 exactly when ``fp == fn == 0``.

:func:`score_run` applies both to a benchmark folder written by
:func:`benchmarks.transforms.make_transformed_copies` and a run's
``duplicates.json``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

#: Accepted values of ``evaluate(metric=...)``.
METRICS = ("map", "ndcg", "jaccard", "classification", "all")

_RETRIEVAL_METRICS = ("map", "ndcg", "jaccard")

Pair = tuple[str, str]


# ---------------------------------------------------------------------------
# imagededup-compatible metrics
# ---------------------------------------------------------------------------


def evaluate(
    ground_truth_map: Mapping[str, Sequence[str]],
    retrieved_map: Mapping[str, Sequence[str]],
    metric: str = "all",
) -> dict[str, Any]:
    """Score a retrieved duplicate map as imagededup 0.3.3 does.

    Parameters
    ----------
    ground_truth_map : Mapping[str, Sequence[str]]
        Every file name mapped to the list of its true duplicates.
    retrieved_map : Mapping[str, Sequence[str]]
        Every file name (the same keys) mapped to its retrieved duplicates,
        best first.
    metric : str, default "all"
        One of ``'map'``, ``'ndcg'``, ``'jaccard'``, ``'classification'``,
        ``'all'`` (case-insensitive).

    Returns
    -------
    dict
        ``{'map': float}``, ``{'ndcg': float}`` or ``{'jaccard': float}`` for
        the retrieval metrics; for ``'classification'`` the keys
        ``'precision'``, ``'recall'``, ``'f1_score'`` (float arrays) and
        ``'support'`` (int array), one entry per class present (class 0:
        non-duplicate pairs, class 1: duplicate pairs); ``'all'`` merges the
        three retrieval metrics and the classification metrics. The values
        equal imagededup's (it returns ``numpy.float64`` scalars and, in some
        corner cases, a float ``support`` array).

    Raises
    ------
    ValueError
        If ``metric`` is unknown, a map is empty, not a mapping of lists, lists
        a file that is not one of its keys, or is not symmetric, if the maps
        have different keys, or if classification is asked for fewer than two
        files (there is no pair to classify).
    """
    name = _check_metric(metric)
    _check_duplicate_map(ground_truth_map, "ground_truth_map")
    _check_duplicate_map(retrieved_map, "retrieved_map")
    gt_keys, ret_keys = set(ground_truth_map), set(retrieved_map)
    if gt_keys != ret_keys:
        diff = sorted(map(str, gt_keys ^ ret_keys))
        raise ValueError(
            f"ground_truth_map and retrieved_map must have the same keys; "
            f"{len(diff)} key(s) are in only one of them, e.g. {diff[:5]}"
        )
    if name in ("classification", "all") and len(gt_keys) < 2:
        raise ValueError(
            f"metric={metric!r} needs at least 2 files to form a pair, ground_truth_map has {len(gt_keys)}"
        )

    result: dict[str, Any] = {}
    for ir_metric in _RETRIEVAL_METRICS:
        if name in (ir_metric, "all"):
            result[ir_metric] = _mean_metric(ground_truth_map, retrieved_map, ir_metric)
    if name in ("classification", "all"):
        result.update(_classification_metrics(ground_truth_map, retrieved_map))
    return result


def _check_metric(metric: object) -> str:
    if not isinstance(metric, str) or metric.lower() not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}; got {metric!r}")
    return metric.lower()


def _check_duplicate_map(mapping: object, name: str) -> None:
    if not isinstance(mapping, Mapping):
        raise ValueError(f"{name} must be a dict of file name -> list of file names, got {type(mapping).__name__}")
    if not mapping:
        raise ValueError(f"{name} is empty; it needs one key per file")
    for key, values in mapping.items():
        _check_value_list(values, name, key)
        for value in values:
            if value not in mapping:
                raise ValueError(
                    f"{name}[{key!r}] lists {value!r}, which is not a key of {name}; every file must be a key"
                )
    for key, values in mapping.items():
        for value in values:
            if key not in mapping[value]:
                raise ValueError(
                    f"{name} is not symmetric: {key!r} lists {value!r} as a duplicate "
                    f"but {name}[{value!r}] does not list {key!r}"
                )


def _check_value_list(values: object, name: str, key: object) -> None:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise ValueError(f"{name}[{key!r}] must be a list of file names, got {type(values).__name__}")


def _relevance(correct: Sequence[str], retrieved: Sequence[str]) -> np.ndarray:
    correct_set = set(correct)
    return np.array([1 if r in correct_set else 0 for r in retrieved], dtype=np.int64)


def _average_precision(correct: Sequence[str], retrieved: Sequence[str]) -> float:
    rel = _relevance(correct, retrieved)
    precision_at_k = np.cumsum(rel) / np.arange(1, len(rel) + 1)
    return np.sum(rel * precision_at_k) / len(correct)


def _dcg(rel: np.ndarray) -> float:
    return np.sum((2**rel - 1) / np.log2(np.arange(len(rel)) + 2))


def _ndcg(correct: Sequence[str], retrieved: Sequence[str]) -> float:
    rel = _relevance(correct, retrieved)
    dcg = _dcg(rel)
    return 0.0 if dcg == 0 else dcg / _dcg(np.sort(rel)[::-1])


def _jaccard(correct: Sequence[str], retrieved: Sequence[str]) -> float:
    correct_set, retrieved_set = set(correct), set(retrieved)
    return len(correct_set & retrieved_set) / len(correct_set | retrieved_set)


_QUERY_METRICS = {"map": _average_precision, "ndcg": _ndcg, "jaccard": _jaccard}


def _query_score(metric: str, correct: Sequence[str], retrieved: Sequence[str]) -> float:
    if not correct and not retrieved:
        return 1.0
    if not correct or not retrieved:
        return 0.0
    return _QUERY_METRICS[metric](correct, retrieved)


def _mean_metric(ground_truth: Mapping, retrieved: Mapping, metric: str) -> float:
    scores = [_query_score(metric, ground_truth[k], retrieved[k]) for k in ground_truth]
    return float(np.mean(scores))


def _classification_metrics(ground_truth: Mapping, retrieved: Mapping) -> dict[str, np.ndarray]:
    n = len(ground_truth)
    n_pairs = n * (n - 1) // 2
    true_pairs, retrieved_pairs = _pair_set(ground_truth), _pair_set(retrieved)
    tp = len(true_pairs & retrieved_pairs)
    fp = len(retrieved_pairs - true_pairs)
    fn = len(true_pairs - retrieved_pairs)
    tn = n_pairs - tp - fp - fn
    # (tp, fp, fn) of each class; class 0's true positives are the true negatives.
    per_class = {0: (tn, fn, fp), 1: (tp, fp, fn)}
    present = [
        label
        for label, (c_tp, c_fp, c_fn) in per_class.items()
        if c_tp + c_fp + c_fn > 0  # the class occurs in y_true or y_pred
    ]
    rows = [per_class[label] for label in present]
    return {
        "precision": np.array([_ratio(t, t + p) for t, p, _ in rows]),
        "recall": np.array([_ratio(t, t + f) for t, _, f in rows]),
        "f1_score": np.array([_ratio(2 * t, 2 * t + p + f) for t, p, f in rows]),
        "support": np.array([t + f for t, _, f in rows], dtype=np.int64),
    }


def _ratio(numerator: int, denominator: int, empty: float = 0.0) -> float:
    return numerator / denominator if denominator else empty


# ---------------------------------------------------------------------------
# pairwise scores
# ---------------------------------------------------------------------------


def _pair(a: str, b: str) -> Pair:
    return (a, b) if a < b else (b, a)


def _pair_set(mapping: Mapping[str, Iterable[str]]) -> set[Pair]:
    """Unordered pairs ``{a, b}``, ``a != b``, with ``b in mapping[a]``."""
    return {_pair(a, b) for a, values in mapping.items() for b in values if a != b}


def _check_pair_map(mapping: object, name: str) -> None:
    if not isinstance(mapping, Mapping):
        raise ValueError(f"{name} must be a dict of file name -> list of file names, got {type(mapping).__name__}")
    for key, values in mapping.items():
        _check_value_list(values, name, key)


def pairwise_scores(
    ground_truth_map: Mapping[str, Sequence[str]],
    retrieved_map: Mapping[str, Sequence[str]],
) -> dict[str, float | int]:
    """Precision, recall and F1 over unordered duplicate pairs.

    Parameters
    ----------
    ground_truth_map : Mapping[str, Sequence[str]]
        File name -> its true duplicates. Need not be symmetric.
    retrieved_map : Mapping[str, Sequence[str]]
        File name -> its retrieved duplicates. Need not be symmetric nor have
        the same keys as ``ground_truth_map``.

    Returns
    -------
    dict
        ``precision``, ``recall``, ``f1`` (floats) and the pair counts ``tp``,
        ``fp``, ``fn`` (ints). See the module docstring for the definitions and
        the empty-denominator convention (1.0).

    Raises
    ------
    ValueError
        If a map is not a mapping of lists.
    """
    _check_pair_map(ground_truth_map, "ground_truth_map")
    _check_pair_map(retrieved_map, "retrieved_map")
    true_pairs, retrieved_pairs = _pair_set(ground_truth_map), _pair_set(retrieved_map)
    tp = len(true_pairs & retrieved_pairs)
    fp = len(retrieved_pairs) - tp
    fn = len(true_pairs) - tp
    return {
        "precision": _ratio(tp, tp + fp, empty=1.0),
        "recall": _ratio(tp, tp + fn, empty=1.0),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn, empty=1.0),
        "tp": tp,
        "fp": fp,
        "fn": fn,
    }


def recall_by_label(
    labelled_pairs: Iterable[tuple[str, str, str]],
    retrieved_map: Mapping[str, Sequence[str]],
) -> dict[str, dict[str, float | int]]:
    """Recall of the positive pairs of each label (e.g. each transform).

    Only recall is defined per label: a false positive pair carries no label.

    Parameters
    ----------
    labelled_pairs : Iterable[tuple[str, str, str]]
        Positive pairs ``(a, b, label)``; order within a pair does not matter
        and a pair repeated under the same label counts once.
    retrieved_map : Mapping[str, Sequence[str]]
        File name -> its retrieved duplicates (a pair is found if either file
        lists the other).

    Returns
    -------
    dict[str, dict]
        For each label, in order of first appearance: ``pairs`` (number of
        pairs), ``found``, ``missed`` and ``recall = found / pairs``.

    Raises
    ------
    ValueError
        If an entry is not a triple, pairs a file with itself, or the map is
        not a mapping of lists.
    """
    _check_pair_map(retrieved_map, "retrieved_map")
    retrieved_pairs = _pair_set(retrieved_map)
    by_label: dict[str, set[Pair]] = {}
    for entry in labelled_pairs:
        if len(entry) != 3:
            raise ValueError(f"labelled_pairs entries must be (a, b, label); got {entry!r}")
        a, b, label = entry
        if a == b:
            raise ValueError(f"labelled_pairs pairs {a!r} with itself (label {label!r})")
        by_label.setdefault(label, set()).add(_pair(a, b))
    result = {}
    for label, pairs in by_label.items():
        found = len(pairs & retrieved_pairs)
        result[label] = {
            "pairs": len(pairs),
            "found": found,
            "missed": len(pairs) - found,
            "recall": found / len(pairs),
        }
    return result


# ---------------------------------------------------------------------------
# benchmark runs
# ---------------------------------------------------------------------------


def load_duplicates_json(path: str | os.PathLike[str]) -> dict[str, list[str]]:
    """Read a run's ``duplicates.json`` into a duplicate map.

    Parameters
    ----------
    path : str or os.PathLike
        JSON object ``{file: [duplicate, ...]}``. A duplicate given as a
        ``[file, score]`` pair (imagededup's ``scores=True`` format) is reduced
        to its file name.

    Returns
    -------
    dict[str, list[str]]
        The duplicate map, names as in the file.

    Raises
    ------
    ValueError
        If the file does not hold such an object.
    """
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{os.fspath(path)!r} must hold a JSON object, got {type(data).__name__}")
    result: dict[str, list[str]] = {}
    for key, values in data.items():
        if not isinstance(values, list):
            raise ValueError(f"{os.fspath(path)!r}: value of {key!r} must be a list")
        result[key] = [v[0] if isinstance(v, list) else v for v in values]
    return result


def _normalise_id(name: str, root: Path) -> str:
    """``name`` as a ``/``-separated path relative to ``root``."""
    path = Path(name)
    if path.is_absolute():
        try:
            path = path.resolve().relative_to(root.resolve())
        except ValueError:
            return name
    return PurePosixPath(*path.parts).as_posix() if path.parts else name


def score_run(
    ground_truth_dir: str | os.PathLike[str],
    duplicates_json_path: str | os.PathLike[str],
) -> dict[str, Any]:
    """Score a run over a transformed-copies benchmark folder.

    Parameters
    ----------
    ground_truth_dir : str or os.PathLike
        Folder written by :func:`benchmarks.transforms.make_transformed_copies`
        (holding ``ground_truth.json`` and ``pairs.csv``).
    duplicates_json_path : str or os.PathLike
        The run's ``duplicates.json``, with paths relative to
        ``ground_truth_dir`` (absolute paths inside it are accepted too).

    Returns
    -------
    dict
        ``overall``: :func:`pairwise_scores` over the files of the ground
        truth; ``by_label``: :func:`recall_by_label` per transform (plus the
        ``sibling`` label for copy-copy pairs); ``files``: number of files in
        the ground truth; ``unknown_files``: sorted names in the run that are
        not in the ground truth (ignored).
    """
    from benchmarks.transforms import GroundTruth  # local: keeps Pillow out of this import

    root = Path(ground_truth_dir)
    truth = GroundTruth.load(root)
    known = set(truth.duplicates)
    retrieved: dict[str, list[str]] = {}
    unknown: set[str] = set()
    for key, values in load_duplicates_json(duplicates_json_path).items():
        names = [_normalise_id(key, root)] + [_normalise_id(v, root) for v in values]
        unknown.update(n for n in names if n not in known)
        if names[0] in known:
            retrieved[names[0]] = [n for n in names[1:] if n in known]
    return {
        "overall": pairwise_scores(truth.duplicates, retrieved),
        "by_label": recall_by_label(truth.pairs, retrieved),
        "files": len(known),
        "unknown_files": sorted(unknown),
    }


def format_score_table(scores: Mapping[str, Any]) -> str:
    """Render :func:`score_run`'s result as a plain-text table.

    Parameters
    ----------
    scores : Mapping
        The dict returned by :func:`score_run`.

    Returns
    -------
    str
        Overall pairwise precision/recall/F1 with counts, then one line per
        label with its recall.
    """
    o = scores["overall"]
    lines = [
        f"files: {scores['files']}"
        + (
            f" ({len(scores['unknown_files'])} unknown file(s) in the run ignored)"
            if scores.get("unknown_files")
            else ""
        ),
        "",
        f"{'pairwise':<16}{'precision':>10}{'recall':>10}{'f1':>10}{'tp':>9}{'fp':>9}{'fn':>9}",
        f"{'overall':<16}{o['precision']:>10.4f}{o['recall']:>10.4f}{o['f1']:>10.4f}"
        f"{o['tp']:>9}{o['fp']:>9}{o['fn']:>9}",
        "",
        f"{'label':<16}{'recall':>10}{'found':>9}{'pairs':>9}",
    ]
    for label, row in scores["by_label"].items():
        lines.append(f"{label:<16}{row['recall']:>10.4f}{row['found']:>9}{row['pairs']:>9}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# The guide's Evaluation().evaluate(ground_truth=, retrieved=)
# ---------------------------------------------------------------------------


class Evaluation:
    """The guide's ``Evaluation().evaluate(ground_truth=..., retrieved=...)``: pairwise scores plus imagededup's.

    Example::

        metrics = Evaluation().evaluate(ground_truth=truth, retrieved=PHash().find_duplicates(image_dir="photos"))
        metrics["precision"], metrics["recall"], metrics["f1"]     # over unordered pairs (pairwise_scores)
        metrics["map"], metrics["ndcg"], metrics["jaccard"]        # imagededup's evaluate, value for value
        metrics["classification"]                                  # imagededup's per-class arrays
    """

    def evaluate(
        self,
        ground_truth: Mapping[str, Sequence],
        retrieved: Mapping[str, Sequence],
        metric: str = "all",
    ) -> dict[str, Any]:
        """Score ``retrieved`` against ``ground_truth`` (duplicate maps; scored entries ``(name, score)`` allowed).

        Returns :func:`pairwise_scores` (``precision``, ``recall``, ``f1``,
        ``tp``, ``fp``, ``fn``) and the imagededup metrics :func:`evaluate`
        computes for ``metric``: ``map``, ``ndcg``, ``jaccard`` as floats, and
        its ``classification`` dict (``precision``, ``recall``, ``f1_score``,
        ``support`` arrays, class 0 then class 1) under ``"classification"``.
        imagededup's rules apply to those: both maps with the same keys, symmetric.
        """
        truth, found = _names_only(ground_truth, "ground_truth"), _names_only(retrieved, "retrieved")
        result: dict[str, Any] = dict(pairwise_scores(truth, found))
        theirs = evaluate(truth, found, metric)
        result.update({k: float(theirs[k]) for k in _RETRIEVAL_METRICS if k in theirs})
        if "support" in theirs:
            result["classification"] = {k: theirs[k] for k in ("precision", "recall", "f1_score", "support")}
        return result


def _names_only(mapping: object, name: str) -> dict[str, list[str]]:
    """A duplicate map with scores dropped: ``(name, score)`` entries become ``name``."""
    if not isinstance(mapping, Mapping):
        raise ValueError(f"`{name}` must be a dict of file name -> list of file names, got {type(mapping).__name__}")
    return {
        k: [v[0] if isinstance(v, (tuple, list)) else v for v in values]
        if isinstance(values, (list, tuple))
        else values
        for k, values in mapping.items()
    }
