"""The action plan: each cluster's keeper under a keep policy, and one step per duplicate.

Planning touches nothing and reads no file; :func:`imgdedup.actions.apply.apply_plan`
checks every step before carrying it out.
"""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from imgdedup.actions.paths import _inside, id_problem, normalise_reference
from imgdedup.actions.run import ActionError, Run, RunFile
from imgdedup.config import KEEP_POLICIES  # noqa: F401  (defined with the other settings)

ACTIONS = ("move", "delete", "hardlink", "symlink")
TRASH = "trash"


@dataclass(frozen=True)
class Step:
    """One planned action on one duplicate."""

    n: int
    action: str
    path: str  # id of the duplicate
    keeper: str  # id of the kept file it duplicates
    target: str  # absolute: where the file goes (move), or where the original is kept (trash)
    size: int
    mtime_ns: int | None
    digest: str
    keeper_size: int
    keeper_mtime_ns: int | None
    keeper_digest: str
    tier: str | None = None

    def record(self) -> dict:
        return {
            "type": "plan",
            "n": self.n,
            "action": self.action,
            "path": self.path,
            "keeper": self.keeper,
            "target": self.target,
            "size": self.size,
            "mtime_ns": self.mtime_ns,
            "digest": self.digest,
            "keeper_size": self.keeper_size,
            "keeper_mtime_ns": self.keeper_mtime_ns,
            "keeper_digest": self.keeper_digest,
            "tier": self.tier,
        }


@dataclass(frozen=True)
class Skip:
    path: str
    reason: str


@dataclass
class Plan:
    run: Run
    action: str
    keep: str
    references: list[str]
    stamp: str
    dest: str  # absolute: --to for move, the trash folder otherwise
    steps: list[Step]
    kept: list[str]
    skipped: list[Skip] = field(default_factory=list)

    @property
    def journal_path(self) -> Path:
        return self.run.run_dir / f"journal-{self.stamp}.jsonl"


def _policy_key(policy: str, f: RunFile):
    resolution = (-f.pixels, -f.size, f.position)
    if policy == "resolution":
        return resolution
    if policy == "largest":
        return (-f.size, -f.pixels, f.position)
    if policy == "oldest":
        return (f.mtime_ns, *resolution)
    if policy == "newest":
        return (-f.mtime_ns, *resolution)
    raise ActionError(f"--keep must be one of {', '.join(KEEP_POLICIES)}, got {policy!r}")


def choose_keepers(
    members: Sequence[RunFile], keep: str, references: Sequence[str]
) -> tuple[RunFile, list[RunFile], list[RunFile]]:
    """``(keeper, kept, duplicates)`` of one cluster under a policy and reference folders."""
    protected = [m for m in members if any(m.id.startswith(r) for r in references)]
    if protected:
        keeper = min(protected, key=lambda f: _policy_key(keep, f))
        return keeper, protected, [m for m in members if m not in protected]
    run_keeper = [m for m in members if m.run_keeper]
    if keep == "resolution" and run_keeper:
        keeper = run_keeper[0]
    else:
        keeper = min(members, key=lambda f: _policy_key(keep, f))
    return keeper, [keeper], [m for m in members if m is not keeper]


def new_stamp() -> str:
    return _dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")


def plan_actions(
    run: Run,
    action: str,
    keep: str = "resolution",
    references: Sequence[str] = (),
    to: str | os.PathLike | None = None,
    stamp: str | None = None,
    tiers: Sequence[str] | None = None,
) -> Plan:
    """Choose what happens to every file of the run; touches nothing and reads no file.

    ``tiers`` (e.g. ``["exact"]``) limits the actions to duplicates of those tiers; the
    others are left in place, each with the reason.
    """
    if tiers is not None:
        unknown = sorted(set(tiers) - {"exact", "near", "review"})
        if unknown:
            raise ActionError(f"--tier must be exact, near or review, got {', '.join(unknown)}")
    if action not in ACTIONS:
        raise ActionError(f"--action must be one of {', '.join(ACTIONS)}, got {action!r}")
    if keep not in KEEP_POLICIES:
        raise ActionError(f"--keep must be one of {', '.join(KEEP_POLICIES)}, got {keep!r}")
    if keep in ("oldest", "newest") and any(m.mtime_ns is None for c in run.clusters for m in c):
        raise ActionError(
            f"--keep {keep} needs file times, and this run folder has none (no mtime_ns in clusters.json, no work/discovered.json)"
        )
    stamp = stamp or new_stamp()
    refs = sorted({normalise_reference(run.root, r) for r in references})
    if action == "move":
        if to is None:
            raise ActionError("--action move needs --to DIR (where the duplicates go)")
        dest = os.path.abspath(os.fspath(to))
    else:
        base = os.path.abspath(os.fspath(to)) if to is not None else os.path.abspath(run.run_dir / TRASH)
        dest = os.path.join(base, stamp)
    if os.path.exists(dest) and not os.path.isdir(dest):
        raise ActionError(f"{dest!r} is not a folder")
    real_root = os.path.realpath(run.root)
    if action == "move" and _inside(real_root, os.path.realpath(dest)):
        raise ActionError(f"--to {dest!r} contains the scanned root; choose a folder outside it or below it")
    steps, kept, skipped = [], [], []
    for members in run.clusters:
        keeper, keep_files, duplicates = choose_keepers(members, keep, refs)
        kept.extend(m.id for m in keep_files)
        for dup in duplicates:
            if tiers is not None and dup.tier not in tiers:
                kept.append(dup.id)
                skipped.append(
                    Skip(dup.id, f"tier {dup.tier or 'unknown'}: left for review (--tier {','.join(tiers)})")
                )
                continue
            problem = id_problem(dup.id)
            if problem:
                skipped.append(Skip(dup.id, problem))
                continue
            steps.append(
                Step(
                    n=len(steps) + 1,
                    action=action,
                    path=dup.id,
                    keeper=keeper.id,
                    target=os.path.join(dest, *dup.id.split("/")),
                    size=dup.size,
                    mtime_ns=dup.mtime_ns,
                    digest=dup.digest,
                    keeper_size=keeper.size,
                    keeper_mtime_ns=keeper.mtime_ns,
                    keeper_digest=keeper.digest,
                    tier=dup.tier,
                )
            )
    return Plan(
        run=run,
        action=action,
        keep=keep,
        references=refs,
        stamp=stamp,
        dest=dest,
        steps=steps,
        kept=kept,
        skipped=skipped,
    )
