"""Tiers of duplicates: how much review a member of a cluster needs before clean-up.

Each member other than the keeper gets one tier, judged against the keeper:

* ``exact``: byte-identical to the keeper (same content digest), or hash distance 0 with the same
  width and height: safe to act on without review (``imgdedup apply --tier exact``);
* ``review``: borderline: its hash distance is within ``review_bits`` of the threshold (or beyond
  it, when it joined the cluster through another member), or for embedding methods its similarity
  is below ``min_similarity + review_similarity``; for ``hybrid`` only when both signals are
  borderline;
* ``near``: everything else: a confident near-duplicate.
"""

from __future__ import annotations

import math

TIERS = ("exact", "near", "review")


def member_tier(
    *,
    same_digest: bool,
    same_dimensions: bool,
    distance: int,
    similarity: float | None,
    method: str,
    threshold: int,
    min_similarity: float,
    review_bits: int = 2,
    review_similarity: float = 0.03,
) -> str:
    """The tier of one member relative to its cluster's keeper (see the module docstring)."""
    if same_digest or (distance == 0 and same_dimensions):
        return "exact"
    hash_borderline = distance > threshold - review_bits
    has_similarity = similarity is not None and not math.isnan(similarity)
    similarity_borderline = has_similarity and similarity < min_similarity + review_similarity
    if method == "cnn":
        borderline = similarity_borderline or not has_similarity
    elif method == "hybrid":
        borderline = hash_borderline and (similarity_borderline or not has_similarity)
    else:
        borderline = hash_borderline
    return "review" if borderline else "near"
