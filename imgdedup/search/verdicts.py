"""Verdicts of verified pairs, kept in the store so an unchanged rerun verifies nothing again.

A verdict depends on the two files' contents and the verification settings
only, so it is keyed by the pair of content digests (sorted) and kept in one
file per settings: ``STORE/verdicts/verdicts-<settings digest>.npz``. With it
go two facts of each described image, by digest: whether its EXIF names a
camera (the keeper order uses it) and whether it is low-information (the
summary counts them). A rerun verifies only the pairs the file lacks, and
describes only their images. Arrays: ``layout`` (:data:`LAYOUT`), ``digests`` (ASCII
bytes, each once); per pair ``a``, ``b`` (positions in ``digests``), ``ok`` (bool),
``evidence`` (position in ``reasons``); ``scored`` (the pairs that keep scores) with
``scores`` (their JSON, ASCII bytes); ``described`` (positions in ``digests``),
``camera``, ``low_information`` (bool). Read without pickle
(:func:`imgdedup.storage.locations.load_npz`). A file of another layout is not read:
its pairs are verified again.

A refuted pair keeps its reason, not its scores (:func:`slim`): only members'
scores are shown (the report's cards), and at scale refuted pairs are most of
the file (35,520 of 44,772 among 100k generated scenes; 3.1 million among a million),
each dict of scores about 1 KB in memory. Digests are held once however many pairs name
them. Every column is a number or a byte string: the million scenes' file, of
fixed-width Unicode columns as wide as the longest scores, took 5.9 GB.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Collection, Mapping

import numpy as np

from imgdedup.storage import locations
from imgdedup.storage.locations import Location, join

#: A verdict as the cluster stage passes it around: (verified, evidence, scores).
Verdict = tuple[bool, str, Mapping]
#: The scores of every refuted verdict: one shared, read-only, empty mapping.
NO_SCORES: Mapping = MappingProxyType({})


#: Refuted verdicts as kept, one per reason: millions of refuted pairs share a handful of tuples.
_REFUTED: dict[str, Verdict] = {}


def slim(verdict: Verdict) -> Verdict:
    """``verdict`` as it is kept: a refuted pair without its scores (one shared tuple per reason)."""
    if verdict[0]:
        return verdict
    reason = verdict[1]
    kept = _REFUTED.get(reason)
    if kept is None:
        kept = _REFUTED[reason] = (False, reason, NO_SCORES)
    return kept


@dataclass
class VerdictCache:
    """Verdicts by sorted digest pair, and ``(camera, low_information)`` by digest."""

    verdicts: dict[tuple[str, str], Verdict] = field(default_factory=dict)
    facts: dict[str, tuple[bool, bool]] = field(default_factory=dict)

    def kept(self, digests: Collection[str]) -> "VerdictCache":
        """Only what concerns files of ``digests`` (the store's current files): the file stays small."""
        current = set(digests)
        return VerdictCache(
            {k: v for k, v in self.verdicts.items() if k[0] in current and k[1] in current},
            {d: f for d, f in self.facts.items() if d in current},
        )


def digest_key(digests, a: int, b: int) -> tuple[str, str]:
    """The cache key of images ``a`` and ``b``: their content digests, sorted."""
    x, y = str(digests[a]), str(digests[b])
    return (x, y) if x <= y else (y, x)


def verdicts_location(store_path: str, settings: Mapping) -> Location:
    """The verdict file of ``settings`` (everything that changes a verdict) in the store."""
    digest = hashlib.sha256(json.dumps(dict(settings), sort_keys=True).encode()).hexdigest()[:16]
    return join(store_path, "verdicts", f"verdicts-{digest}.npz")


#: The file layout :func:`save_verdicts` writes and :func:`load_verdicts` reads.
LAYOUT = 2


def load_verdicts(location: Location) -> VerdictCache:
    """The cache kept at ``location`` (empty when there is none yet, or it has another layout)."""
    if not locations.exists(location):
        return VerdictCache()
    data = locations.load_npz(location)
    if "layout" not in data or int(data["layout"]) != LAYOUT:
        return VerdictCache()
    digests = [d.decode() for d in data["digests"].tolist()]  # one str per digest, shared by its pairs
    reasons = [str(r) for r in data["reasons"].tolist()]
    scores = dict(zip(data["scored"].tolist(), (json.loads(t) for t in data["scores"].tolist())))
    verdicts = {}
    rows = zip(data["a"].tolist(), data["b"].tolist(), data["ok"].tolist(), data["evidence"].tolist())
    for n, (a, b, ok, evidence) in enumerate(rows):
        reason, score = reasons[evidence], scores.get(n)
        verdicts[(digests[a], digests[b])] = slim((ok, reason, score or {}))
    facts = {
        digests[d]: (c, low)
        for d, c, low in zip(data["described"].tolist(), data["camera"].tolist(), data["low_information"].tolist())
    }
    return VerdictCache(verdicts, facts)


def save_verdicts(location: Location, cache: VerdictCache) -> Location:
    """Write ``cache`` to ``location``, replacing what was there (one whole file)."""
    if isinstance(location, Path):
        location.parent.mkdir(parents=True, exist_ok=True)
    keys = sorted(cache.verdicts)
    values = [cache.verdicts[k] for k in keys]
    described = sorted(cache.facts)
    digests = sorted({d for key in keys for d in key}.union(described))
    position = {d: n for n, d in enumerate(digests)}
    reasons = sorted({v[1] for v in values})
    reason_position = {r: n for n, r in enumerate(reasons)}
    scored = [n for n, v in enumerate(values) if v[0] and v[2]]  # a refuted pair keeps no scores (slim)
    return locations.save_npz(
        location,
        layout=np.asarray(LAYOUT),
        digests=np.asarray([d.encode() for d in digests], dtype=bytes),
        a=np.asarray([position[k[0]] for k in keys], dtype=np.int64),
        b=np.asarray([position[k[1]] for k in keys], dtype=np.int64),
        ok=np.asarray([v[0] for v in values], dtype=bool),
        reasons=np.asarray(reasons, dtype=str),
        evidence=np.asarray([reason_position[v[1]] for v in values], dtype=np.int16),
        scored=np.asarray(scored, dtype=np.int64),
        scores=np.asarray([json.dumps(dict(values[n][2]), sort_keys=True).encode() for n in scored], dtype=bytes),
        described=np.asarray([position[d] for d in described], dtype=np.int64),
        camera=np.asarray([cache.facts[d][0] for d in described], dtype=bool),
        low_information=np.asarray([cache.facts[d][1] for d in described], dtype=bool),
    )
