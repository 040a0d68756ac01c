"""Verdicts of verified pairs, kept in the store so an unchanged rerun verifies nothing again.

A verdict depends on the two files' contents and the verification settings
only, so it is keyed by the pair of content digests (sorted) and kept in one
file per settings: ``STORE/verdicts/verdicts-<settings digest>.npz``. With it
go two facts of each described image, by digest: whether its EXIF names a
camera (the keeper order uses it) and whether it is low-information (the
summary counts them). A rerun verifies only the pairs the file lacks, and
describes only their images. Arrays: ``layout`` (:data:`LAYOUT`), ``digests`` (ASCII
bytes, each once, sorted); per pair, sorted by ``(a, b)``: ``a``, ``b`` (positions in
``digests``, ``a <= b``), ``ok`` (bool), ``evidence`` (position in ``reasons``);
``scored`` (the pairs that keep scores) with ``scores`` (their JSON, ASCII bytes);
``described`` (positions in ``digests``), ``camera``, ``low_information`` (bool). Read
without pickle (:func:`imgdedup.storage.locations.load_npz`). A file of another
layout is not read: its pairs are verified again.

In memory the file stays arrays (:class:`VerdictTable`), looked up a whole run's
pairs at a time (:meth:`VerdictTable.rows_of`): a million generated scenes have
3.1 million refuted chance pairs, which as a dict of Python tuples by digest pair took
gigabytes of the flow process.

A refuted pair keeps its reason, not its scores (:func:`slim`): only members'
scores are shown (the report's cards), and at scale refuted pairs are most of
the file (35,520 of 44,772 among 100k generated scenes; 3.1 million among a million),
each dict of scores about 1 KB in memory. Every column is a number or a byte string:
the million scenes' file, of fixed-width Unicode columns as wide as the longest
scores, took 5.9 GB.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

import numpy as np

from imgdedup.storage import locations
from imgdedup.storage.locations import Location, join

#: A verdict as the cluster stage passes it around: (verified, evidence, scores).
Verdict = tuple[bool, str, Mapping]
#: The scores of every refuted verdict: one shared, read-only, empty mapping.
NO_SCORES: Mapping = MappingProxyType({})
#: The file layout :func:`save_verdicts` writes and :func:`load_verdicts` reads.
LAYOUT = 2

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


def as_digest_bytes(digests) -> np.ndarray:
    """Content digests (hex strings) as a fixed-width ASCII bytes array, which sorts like the strings."""
    values = np.asarray(digests)
    if values.dtype.kind == "S":
        return values
    if len(values) == 0:
        return np.zeros(0, dtype="S1")
    return values.astype(str).astype(np.bytes_)


def positions_in(sorted_values: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Position of each of ``values`` in the ascending ``sorted_values``, -1 where it is not there."""
    values = np.asarray(values)
    if len(sorted_values) == 0 or len(values) == 0:
        return np.full(len(values), -1, dtype=np.int64)
    found = np.searchsorted(sorted_values, values)
    inside = found < len(sorted_values)
    hit = np.zeros(len(values), dtype=bool)
    hit[inside] = sorted_values[found[inside]] == values[inside]
    return np.where(hit, found, -1).astype(np.int64)


@dataclass
class VerdictTable:
    """Kept verdicts and facts as arrays (the file's columns; see the module docstring).

    Rows are sorted by ``(a, b)`` with ``a <= b``, so :meth:`rows_of` finds a run's
    pairs by binary search. ``scores`` holds the scores of verified rows, by row.
    """

    digests: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype="S1"))
    a: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    b: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    ok: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    evidence: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int16))
    reasons: tuple[str, ...] = ()
    scores: dict[int, dict] = field(default_factory=dict)
    described: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    camera: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    low_information: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    def __len__(self) -> int:
        return len(self.a)

    def _keys(self) -> np.ndarray:
        return self.a * max(1, len(self.digests)) + self.b

    def rows_of(self, first, second) -> np.ndarray:
        """The row of each digest pair ``(first[k], second[k])`` (either order), -1 where none is kept."""
        at_a = positions_in(self.digests, as_digest_bytes(first))
        at_b = positions_in(self.digests, as_digest_bytes(second))
        low, high = np.minimum(at_a, at_b), np.maximum(at_a, at_b)
        rows = positions_in(self._keys(), low * max(1, len(self.digests)) + high)
        return np.where(low >= 0, rows, -1)

    def verdict(self, row: int) -> Verdict:
        """The verdict of row ``row`` (a refuted one :func:`slim`)."""
        ok, reason = bool(self.ok[row]), self.reasons[int(self.evidence[row])]
        return (True, reason, self.scores.get(row) or {}) if ok else slim((False, reason, NO_SCORES))

    def facts_of(self, digests) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(known, camera, low_information)`` of each of ``digests``, from the described images."""
        at = positions_in(self.digests[self.described], as_digest_bytes(digests)) if len(self.described) else None
        if at is None:
            none = np.zeros(len(digests), dtype=bool)
            return none, none.copy(), none.copy()
        known = at >= 0
        return known, np.where(known, self.camera[at], False), np.where(known, self.low_information[at], False)


def verdicts_location(store_path: str, settings: Mapping) -> Location:
    """The verdict file of ``settings`` (everything that changes a verdict) in the store."""
    digest = hashlib.sha256(json.dumps(dict(settings), sort_keys=True).encode()).hexdigest()[:16]
    return join(store_path, "verdicts", f"verdicts-{digest}.npz")


def load_verdicts(location: Location) -> VerdictTable:
    """The table kept at ``location`` (empty when there is none yet, or it has another layout)."""
    if not locations.exists(location):
        return VerdictTable()
    data = locations.load_npz(location)
    if "layout" not in data or int(data["layout"]) != LAYOUT:
        return VerdictTable()
    table = VerdictTable(
        digests=as_digest_bytes(data["digests"]),
        a=data["a"].astype(np.int64),
        b=data["b"].astype(np.int64),
        ok=data["ok"].astype(bool),
        evidence=data["evidence"].astype(np.int16),
        reasons=tuple(str(r) for r in data["reasons"].tolist()),
        scores=dict(zip(data["scored"].tolist(), (json.loads(t) for t in data["scores"].tolist()))),
        described=data["described"].astype(np.int64),
        camera=data["camera"].astype(bool),
        low_information=data["low_information"].astype(bool),
    )
    keys = table._keys()
    if np.any(keys[1:] < keys[:-1]):  # every writer sorts them, but rows_of would answer wrongly if not
        table = _take_rows(table, np.argsort(keys, kind="stable"))
    return table


def renumbered(by_row: Mapping[int, object], rows: np.ndarray, size: int) -> dict[int, object]:
    """``by_row`` (values by row, rows below ``size``) keyed instead by each row's place in ``rows``;
    rows not in ``rows`` are left out. Only the keyed rows are visited: at a million images the rows
    are millions and the scored ones a few percent."""
    place = np.full(size, -1, dtype=np.int64)
    place[np.asarray(rows, dtype=np.int64)] = np.arange(len(rows))
    return {int(place[row]): value for row, value in by_row.items() if place[row] >= 0}


def _take_rows(table: VerdictTable, rows: np.ndarray) -> VerdictTable:
    """``table`` with only ``rows``, in that order (scores follow their rows)."""
    return VerdictTable(
        table.digests,
        table.a[rows],
        table.b[rows],
        table.ok[rows],
        table.evidence[rows],
        table.reasons,
        renumbered(table.scores, rows, len(table)),
        table.described,
        table.camera,
        table.low_information,
    )


def build_table(
    digests,
    a: np.ndarray,
    b: np.ndarray,
    ok: np.ndarray,
    codes: np.ndarray,
    reasons: tuple[str, ...],
    scores: Mapping[int, Mapping] | None = None,
    facts: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> VerdictTable:
    """A :class:`VerdictTable` of the pairs ``(a[k], b[k])`` (positions in ``digests``), verified or
    not (``ok``), for the reason ``reasons[codes[k]]``, with the verified pairs' ``scores`` by ``k``;
    ``facts`` are ``(digests, camera, low_information)`` of described images. A pair given twice keeps
    its first verdict, a digest given twice its first facts."""
    digests = as_digest_bytes(digests)
    fact_digests, camera, low = (
        facts if facts is not None else (np.zeros(0, "S1"), np.zeros(0, bool), np.zeros(0, bool))
    )
    fact_digests = as_digest_bytes(fact_digests)
    universe, inverse = np.unique(np.concatenate([digests, fact_digests]), return_inverse=True)
    inverse = inverse.reshape(-1)
    of, fact_of = inverse[: len(digests)], inverse[len(digests) :]
    pa, pb = of[np.asarray(a, dtype=np.int64)], of[np.asarray(b, dtype=np.int64)]
    low_end, high_end = np.minimum(pa, pb), np.maximum(pa, pb)
    _, first = np.unique(low_end * max(1, len(universe)) + high_end, return_index=True)  # sorted by (a, b)
    ok = np.asarray(ok, dtype=bool)
    row_of = np.full(len(ok), -1, dtype=np.int64)
    row_of[first] = np.arange(len(first))
    described, once = np.unique(fact_of, return_index=True)
    return VerdictTable(
        digests=universe,
        a=low_end[first],
        b=high_end[first],
        ok=ok[first],
        evidence=np.asarray(codes, dtype=np.int16)[first],
        reasons=tuple(reasons),
        scores={int(row_of[n]): dict(s) for n, s in (scores or {}).items() if row_of[n] >= 0 and ok[n] and s},
        described=described.astype(np.int64),
        camera=np.asarray(camera, dtype=bool)[once],
        low_information=np.asarray(low, dtype=bool)[once],
    )


def table_of(verdicts: Mapping[tuple[str, str], Verdict], facts: Mapping[str, tuple[bool, bool]]) -> VerdictTable:
    """A :class:`VerdictTable` of verdicts by digest pair and ``(camera, low_information)`` by digest."""
    pairs = list(verdicts)
    digests = [d for pair in pairs for d in pair]
    reasons = tuple(sorted({v[1] for v in verdicts.values()}))
    code = {r: n for n, r in enumerate(reasons)}
    values = [verdicts[p] for p in pairs]
    return build_table(
        np.asarray(digests if digests else np.zeros(0, "S1")),
        np.arange(0, 2 * len(pairs), 2),
        np.arange(1, 2 * len(pairs), 2),
        np.asarray([v[0] for v in values], dtype=bool),
        np.asarray([code[v[1]] for v in values], dtype=np.int16),
        reasons,
        {n: v[2] for n, v in enumerate(values)},
        (
            np.asarray(list(facts) if facts else np.zeros(0, "S1")),
            [f[0] for f in facts.values()],
            [f[1] for f in facts.values()],
        ),
    )


def save_verdicts(location: Location, table: VerdictTable) -> Location:
    """Write ``table`` (rows sorted by ``(a, b)``, as :func:`build_table` and :func:`load_verdicts` give
    them) to ``location``, replacing what was there (one whole file); only the digests its pairs and
    facts name are written. Dropping the others renumbers the digests in the same order, so the rows
    stay sorted."""
    if isinstance(location, Path):
        location.parent.mkdir(parents=True, exist_ok=True)
    used = np.unique(np.concatenate([table.a, table.b, table.described]))
    position = np.full(len(table.digests), -1, dtype=np.int64)
    position[used] = np.arange(len(used))
    scored = np.asarray(sorted(n for n, s in table.scores.items() if table.ok[n] and s), dtype=np.int64)
    return locations.save_npz(
        location,
        layout=np.asarray(LAYOUT),
        digests=table.digests[used] if len(used) else np.zeros(0, dtype="S1"),
        a=position[table.a],
        b=position[table.b],
        ok=table.ok,
        reasons=np.asarray(table.reasons, dtype=str),
        evidence=table.evidence.astype(np.int16),
        scored=scored,
        scores=np.asarray(
            [json.dumps(dict(table.scores[n]), sort_keys=True).encode() for n in scored.tolist()], dtype=bytes
        ),
        described=position[table.described],
        camera=table.camera,
        low_information=table.low_information,
    )
