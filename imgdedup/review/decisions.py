"""A person's decisions on a run's clusters, saved as made in ``RUN_DIR/decisions.json``.

Layout (version 1)::

    {"version": 1,
     "clusters": {"<cluster number>": {"keeper": "<file id>" | null, "apart": ["<file id>", ...],
                                       "not_duplicates": false, "done": true}},
     "references": ["<folder below the root>/", ...],   # "always keep files under this folder"
     "history": [{"cluster": "<n>", "before": {...} | null} | {"references": [...]} | {"batch": [...]}],  # undo
     "journals": ["journal-<stamp>.jsonl", ...]}          # applies made from the review page

A cluster is *decided* when its record has a keeper or is done, and is not marked
"not duplicates" as a whole; only decided clusters are acted on. ``apart``
members were marked "not duplicates" of the rest: they are never touched. The
keeper defaults to the run's suggestion. Every change rewrites the file
atomically (temporary file, then rename), so a closed tab or a killed server
loses at most the change being made.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Mapping

from imgdedup.actions import ActionError, Run, normalise_reference
from imgdedup.storage.locations import atomic_write_text

DECISIONS = "decisions.json"
VERSION = 1


def empty() -> dict:
    return {"version": VERSION, "clusters": {}, "references": [], "history": [], "journals": []}


def load_decisions(run_dir: str | os.PathLike) -> dict:
    """The run's decisions (empty when none were saved)."""
    path = Path(run_dir) / DECISIONS
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return empty()
    except (OSError, ValueError) as exc:
        raise ActionError(f"cannot read {str(path)!r}: {exc}") from None
    if not isinstance(body, dict) or body.get("version") != VERSION:
        raise ActionError(f"{str(path)!r} is not a version {VERSION} decisions file")
    return {**empty(), **body}


def save_decisions(run_dir: str | os.PathLike, decisions: Mapping) -> None:
    atomic_write_text(Path(run_dir) / DECISIONS, json.dumps(decisions, indent=1, sort_keys=True))


def record(decisions: Mapping, cluster: int) -> dict:
    """The cluster's record (a fresh default when it has none)."""
    found = decisions["clusters"].get(str(cluster))
    return dict(found) if found else {"keeper": None, "apart": [], "not_duplicates": False, "done": False}


def decide(decisions: dict, cluster: int, **changes) -> dict:
    """Change one cluster's record (``keeper``, ``apart``, ``not_duplicates``, ``done``); undoable."""
    unknown = set(changes) - {"keeper", "apart", "not_duplicates", "done"}
    if unknown:
        raise ValueError(f"unknown decision fields: {', '.join(sorted(unknown))}")
    key = str(cluster)
    before = decisions["clusters"].get(key)
    decisions["history"].append({"cluster": key, "before": copy.deepcopy(before)})
    decisions["clusters"][key] = {**record(decisions, cluster), **changes}
    return decisions["clusters"][key]


def set_references(decisions: dict, references: list[str]) -> None:
    decisions["history"].append({"references": list(decisions["references"])})
    decisions["references"] = sorted(set(references))


def collapse(decisions: dict, n: int) -> None:
    """Make the last ``n`` changes one (a bulk decision is undone at once)."""
    if n > 1:
        batch = decisions["history"][-n:]
        del decisions["history"][-n:]
        decisions["history"].append({"batch": batch})


def undo_last(decisions: dict) -> dict | None:
    """Take back the last change; return the history entry undone (None when there is none)."""
    if not decisions["history"]:
        return None
    last = decisions["history"].pop()
    if "batch" in last:
        for entry in reversed(last["batch"]):
            decisions["history"].append(entry)
            undo_last(decisions)
    elif "references" in last:
        decisions["references"] = last["references"]
    elif last["before"] is None:
        decisions["clusters"].pop(last["cluster"], None)
    else:
        decisions["clusters"][last["cluster"]] = last["before"]
    return last


def is_decided(entry: Mapping | None) -> bool:
    return bool(entry) and not entry.get("not_duplicates") and bool(entry.get("keeper") or entry.get("done"))


def decided_run(run: Run, numbers: list[int], decisions: Mapping) -> Run:
    """The run restricted to its decided clusters, each with the person's keeper and without its apart members.

    ``numbers`` are the cluster numbers of ``run.clusters``, in order. The result
    goes to :func:`imgdedup.actions.plan_actions` with ``keep="resolution"``,
    which keeps each cluster's ``run_keeper``.
    """
    if len(numbers) != len(run.clusters):
        raise ValueError(f"`numbers` has {len(numbers)} entries, the run {len(run.clusters)} clusters")
    clusters = []
    for number, members in zip(numbers, run.clusters):
        entry = decisions["clusters"].get(str(number))
        if not is_decided(entry):
            continue
        apart = set(entry.get("apart") or ())
        kept = [m for m in members if m.id not in apart]
        if len(kept) < 2:
            continue
        keeper = entry.get("keeper")
        if keeper not in {m.id for m in kept}:
            suggested = [m.id for m in kept if m.run_keeper]
            keeper = suggested[0] if suggested else None  # None: the keep policy chooses
        clusters.append([replace(m, run_keeper=m.id == keeper) for m in kept])
    return replace(run, clusters=clusters)


def references_of(run: Run, decisions: Mapping) -> list[str]:
    """The reference folders, checked against the run's root."""
    return [normalise_reference(run.root, r) for r in decisions["references"]]
