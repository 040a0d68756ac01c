"""One review of one run: its clusters in review order, the person's decisions, and applying them.

The web app (:mod:`imgdedup.review.app`) is a thin layer over this class; the
``apply --decisions`` command uses :func:`plan_decisions` alone. Everything
that names a file goes through the run's own records: a request names a
cluster number and a member's index, never a path.
"""

from __future__ import annotations

import copy
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from imgdedup.actions import (
    ActionError,
    Outcome,
    Plan,
    apply_plan,
    load_run,
    plan_actions,
    resolve_in_root,
    undo_journal,
)
from imgdedup.review import decisions as dec
from imgdedup.review.thumbnails import THUMBS
from imgdedup.storage.locations import is_url

#: Formats a browser shows as they are; the others are converted to PNG to be compared.
BROWSER_FORMATS = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
    "BMP": "image/bmp",
}
KNOWN_FIELDS = {
    "path",
    "keeper",
    "distance",
    "similarity",
    "width",
    "height",
    "bytes",
    "format",
    "digest",
    "mtime_ns",
    "tier",
}


def _pairs(cluster: Mapping, entry: Mapping | None) -> set[tuple[str, str]]:
    """The digest pairs a cluster's record says are not duplicates (byte-identical pairs excluded)."""
    if not entry:
        return set()
    digests = {m["path"]: m["digest"] for m in cluster["members"]}
    if entry.get("not_duplicates"):
        marked = list(digests)
    else:
        marked = [p for p in entry.get("apart") or () if p in digests]
    pairs = set()
    for a in marked:
        for b in digests:
            if a != b and digests[a] != digests[b]:
                pairs.add(tuple(sorted((digests[a], digests[b]))))
    return pairs


def plan_decisions(
    run_dir: str | os.PathLike,
    action: str,
    to: str | os.PathLike | None = None,
    references: Sequence[str] = (),
    tiers: Sequence[str] | None = None,
    decisions: Mapping | None = None,
) -> Plan:
    """The plan of the decisions saved in ``RUN_DIR/decisions.json`` (touches nothing).

    Only decided clusters are acted on, each keeping the person's keeper (the
    suggestion when none was picked); ``references`` add to the saved reference
    folders; ``tiers`` limit the actions as in :func:`plan_actions`; ``decisions``
    replaces the saved ones (the review app passes its own).
    """
    run = load_run(run_dir)
    document = json.loads((Path(run_dir) / "clusters.json").read_text(encoding="utf-8"))
    numbers = [int(c["cluster"]) for c in document["clusters"]]
    decisions = decisions if decisions is not None else dec.load_decisions(run_dir)
    return plan_actions(
        dec.decided_run(run, numbers, decisions),
        action,
        keep="resolution",
        references=[*decisions["references"], *references],
        to=to,
        tiers=tiers,
    )


@dataclass
class Applied:
    journal: str  # its name in the run folder
    outcome: Outcome | None
    undone: bool = False


class ReviewSession:
    """The review state of one run folder; every method is safe to call from several threads."""

    def __init__(self, run_dir: str | os.PathLike) -> None:
        if is_url(run_dir):
            raise ActionError("review works on a local run folder; copy the run folder first")
        self.run_dir = Path(run_dir).resolve()
        try:
            self.document = json.loads((self.run_dir / "clusters.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ActionError(f"cannot read {str(self.run_dir / 'clusters.json')!r}: {exc}") from None
        self.root = str(self.document["root"])
        self.clusters = sorted(
            self.document["clusters"], key=lambda c: (-int(c["reclaimable_bytes"]), int(c["cluster"]))
        )
        self.by_number = {int(c["cluster"]): c for c in self.clusters}
        thumbs = self.run_dir / THUMBS
        names = sorted(os.listdir(thumbs)) if thumbs.is_dir() else []
        self.thumbs = {name.split("-", 1)[0]: name for name in names if name.endswith(".jpg")}
        self.decisions = dec.load_decisions(self.run_dir)
        self.applied: list[Applied] = [Applied(name, None) for name in self.decisions["journals"]]
        self.lock = threading.Lock()

    # --- reading ------------------------------------------------------------------

    def store(self):
        """The run's store, or None when it is not a local folder that exists."""
        from imgdedup.storage.store import Store

        path = self.document.get("store")
        if not path or is_url(path) or not os.path.isdir(path):
            return None
        return Store(path)

    def member(self, number: int, index: int) -> Mapping | None:
        cluster = self.by_number.get(number)
        if cluster is None or not 0 <= index < len(cluster["members"]):
            return None
        return cluster["members"][index]

    def thumbnail(self, number: int, index: int) -> Path | None:
        member = self.member(number, index)
        name = member and self.thumbs.get(member["digest"])
        return self.run_dir / THUMBS / name if name else None

    def original(self, number: int, index: int) -> tuple[str | None, str]:
        """``(path, media type)`` of a member's file when it is inside the root and not a link, else ``(None, reason)``."""
        member = self.member(number, index)
        if member is None:
            return None, "no such member"
        path, why = resolve_in_root(self.root, member["path"])
        if why:
            return None, why
        if os.path.islink(path) or not os.path.isfile(path):
            return None, "not a regular file"
        return path, BROWSER_FORMATS.get(str(member["format"]).upper(), "")

    def is_exact(self, cluster: Mapping) -> bool:
        """Every duplicate of the cluster is of the exact tier."""
        return all(m.get("tier") == "exact" for m in cluster["members"] if not m["keeper"])

    def counts(self) -> dict[str, int]:
        entries = self.decisions["clusters"]
        return {
            "clusters": len(self.clusters),
            "decided": sum(1 for c in self.clusters if dec.is_decided(entries.get(str(c["cluster"])))),
            "not_duplicates": sum(1 for e in entries.values() if e.get("not_duplicates")),
        }

    # --- deciding -------------------------------------------------------------------

    def _save(self, number: int | None, before: Mapping | None) -> None:
        dec.save_decisions(self.run_dir, self.decisions)
        if number is None:
            return
        cluster = self.by_number[number]
        old, new = _pairs(cluster, before), _pairs(cluster, self.decisions["clusters"].get(str(number)))
        store = self.store()
        if store is not None and old != new:
            store.mark_not_duplicates(add=sorted(new - old), remove=sorted(old - new))

    def decide(self, number: int, op: str, index: int | None = None) -> None:
        """One decision on cluster ``number``: ``keeper``, ``apart`` (member ``index``), ``together``,
        ``not_duplicates``, ``done`` or ``reopen``."""
        with self.lock:
            cluster = self.by_number.get(number)
            if cluster is None:
                raise KeyError(number)
            entry = dec.record(self.decisions, number)
            before = self.decisions["clusters"].get(str(number))
            if op in ("keeper", "apart"):
                member = self.member(number, index if index is not None else -1)
                if member is None:
                    raise KeyError(index)
            if op == "keeper":
                apart = [p for p in entry["apart"] if p != member["path"]]
                dec.decide(self.decisions, number, keeper=member["path"], apart=apart, not_duplicates=False, done=True)
            elif op == "apart":
                apart = sorted(set(entry["apart"]) | {member["path"]})
                dec.decide(self.decisions, number, apart=apart)
            elif op == "together":
                dec.decide(self.decisions, number, apart=[], not_duplicates=False)
            elif op == "not_duplicates":
                dec.decide(self.decisions, number, not_duplicates=True, done=True)
            elif op == "done":
                dec.decide(self.decisions, number, not_duplicates=False, done=True)
            elif op == "reopen":
                dec.decide(self.decisions, number, keeper=None, apart=[], not_duplicates=False, done=False)
            else:
                raise ValueError(f"unknown decision {op!r}")
            self._save(number, before)

    def accept(self, numbers: list[int]) -> int:
        """Accept the suggested keeper of each undecided cluster of ``numbers``; return how many."""
        with self.lock:
            changed = 0
            for number in numbers:
                if str(number) in self.decisions["clusters"]:
                    continue  # a person's decision wins over a bulk one
                dec.decide(self.decisions, number, done=True)
                changed += 1
            if changed:
                dec.collapse(self.decisions, changed)
                dec.save_decisions(self.run_dir, self.decisions)
            return changed

    def keep_folder(self, number: int, index: int) -> str:
        """Add the folder of a member as a reference folder (always kept); return it."""
        member = self.member(number, index)
        if member is None:
            raise KeyError(index)
        folder = member["path"].rpartition("/")[0]
        folder = folder + "/" if folder else ""
        with self.lock:
            dec.set_references(self.decisions, [*self.decisions["references"], folder])
            dec.save_decisions(self.run_dir, self.decisions)
        return folder

    def drop_folder(self, position: int) -> None:
        with self.lock:
            refs = list(self.decisions["references"])
            if not 0 <= position < len(refs):
                raise KeyError(position)
            del refs[position]
            dec.set_references(self.decisions, refs)
            dec.save_decisions(self.run_dir, self.decisions)

    def undo(self) -> bool:
        """Take back the last decision (a bulk accept as a whole)."""
        with self.lock:
            last = self.decisions["history"][-1] if self.decisions["history"] else None
            if last is None:
                return False
            number = int(last["cluster"]) if "cluster" in last else None  # a batch only accepts: no pairs
            before = self.decisions["clusters"].get(last["cluster"]) if number is not None else None
            dec.undo_last(self.decisions)
            self._save(number, before)
            return True

    # --- applying -------------------------------------------------------------------

    def plan(self, action: str, to: str | None = None) -> Plan:
        with self.lock:
            decisions = copy.deepcopy(self.decisions)
        return plan_decisions(self.run_dir, action, to=to or None, decisions=decisions)

    def dry_run(self, action: str, to: str | None = None) -> tuple[Plan, Outcome, list[str]]:
        """The plan, what a dry run finds, and its lines."""
        plan = self.plan(action, to)
        lines: list[str] = []
        return plan, apply_plan(plan, dry_run=True, echo=lines.append), lines

    def apply(self, action: str, to: str | None = None) -> int:
        """Carry out the decisions, journalled; return the index of this apply."""
        plan = self.plan(action, to)
        outcome = apply_plan(plan, dry_run=False)
        with self.lock:
            name = outcome.journal.name if outcome.journal else plan.journal_path.name
            self.applied.append(Applied(name, outcome))
            self.decisions["journals"].append(name)
            dec.save_decisions(self.run_dir, self.decisions)
            return len(self.applied) - 1

    def undo_apply(self, position: int):
        """Restore the files changed by apply number ``position``."""
        applied = self.applied[position]
        journal = self.run_dir / applied.journal
        if not journal.is_file():
            raise ActionError(f"{applied.journal} has no journal: nothing was changed")
        result = undo_journal(journal)
        applied.undone = True
        return result
