"""Pair rules: configurable vetoes on candidate duplicate pairs, applied before clustering.

=========================  ====================================================================
rule (config key)          a pair is vetoed when
=========================  ====================================================================
``max_resolution_ratio``   the larger image has more than this many times the pixels of the other
``max_aspect_difference``  the aspect ratios (width / height) differ by more than this fraction
``folders``                ``same``: the two files are in different folders;
                           ``different``: they are in the same folder (``any``: never)
``ignore``                 either file's path matches one of these glob patterns (``fnmatch``)
=========================  ====================================================================
"""

from __future__ import annotations

import fnmatch
import posixpath
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from imgdedup.config import FOLDER_RULES  # noqa: F401  (the choices live with the other settings)


@dataclass(frozen=True)
class PairRules:
    max_resolution_ratio: float | None = None
    max_aspect_difference: float | None = None
    folders: str = "any"
    ignore: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        return bool(self.max_resolution_ratio or self.max_aspect_difference or self.folders != "any" or self.ignore)


def veto_pairs(
    i: np.ndarray, j: np.ndarray, ids: Sequence[str], width: np.ndarray, height: np.ndarray, rules: PairRules
) -> tuple[np.ndarray, dict[str, int]]:
    """Which pairs survive the rules.

    Returns
    -------
    keep : (P,) bool ndarray
    vetoed : dict
        Pairs vetoed by each rule (a pair is counted under the first rule that vetoes it).
    """
    i, j = np.asarray(i, dtype=np.int64), np.asarray(j, dtype=np.int64)
    keep = np.ones(len(i), dtype=bool)
    vetoed: dict[str, int] = {}

    def apply(name: str, veto: np.ndarray) -> None:
        newly = veto & keep
        if newly.any():
            vetoed[name] = int(newly.sum())
        keep[newly] = False

    if not len(i) or not rules.active:
        return keep, vetoed
    w, h = np.asarray(width, dtype=np.float64), np.asarray(height, dtype=np.float64)
    if rules.max_resolution_ratio:
        pixels = w * h
        ratio = np.maximum(pixels[i], pixels[j]) / np.maximum(np.minimum(pixels[i], pixels[j]), 1)
        apply("max_resolution_ratio", ratio > rules.max_resolution_ratio)
    if rules.max_aspect_difference:
        aspect = w / np.maximum(h, 1)
        difference = np.abs(aspect[i] - aspect[j]) / np.maximum(np.minimum(aspect[i], aspect[j]), 1e-9)
        apply("max_aspect_difference", difference > rules.max_aspect_difference)
    if rules.folders != "any":
        folder = np.asarray([posixpath.dirname(name) for name in ids], dtype=object)
        same = folder[i] == folder[j]
        apply("folders", ~same if rules.folders == "same" else same)
    if rules.ignore:
        ignored = np.asarray([any(fnmatch.fnmatch(name, p) for p in rules.ignore) for name in ids], dtype=bool)
        apply("ignore", ignored[i] | ignored[j])
    return keep, vetoed


def suppress_pairs(i: np.ndarray, j: np.ndarray, digests: Sequence[str], apart: set[tuple[str, str]]) -> np.ndarray:
    """Keep-mask of the pairs ``(i[k], j[k])`` whose content digests a person did not mark apart.

    Parameters
    ----------
    i, j : (P,) int ndarray, positions into ``digests``.
    digests : (N,) the content digest of each image.
    apart : ``(digest, digest)`` pairs, each sorted, marked "not duplicates" (``Store.not_duplicates``).

    Returns
    -------
    (P,) bool ndarray, False for each suppressed pair.
    """
    keep = np.ones(len(i), dtype=bool)
    if not apart or not len(i):
        return keep
    involved = {d for pair in apart for d in pair}
    marked = np.asarray([d in involved for d in digests], dtype=bool)
    for k in np.flatnonzero(marked[i] & marked[j]).tolist():
        a, b = str(digests[i[k]]), str(digests[j[k]])
        keep[k] = (min(a, b), max(a, b)) not in apart
    return keep
