"""Apply a plan: check every step, journal it, then carry it out."""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

from imgdedup.actions.files import _act, _Refused
from imgdedup.actions.journal import JOURNAL_VERSION, Journal
from imgdedup.actions.paths import show, verify_file
from imgdedup.actions.plan import Plan, Skip, Step

BATCH = 256

Echo = Callable[[str], None]


@dataclass
class Outcome:
    done: list[Step] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    journal: Path | None = None

    @property
    def bytes(self) -> int:
        return sum(s.size for s in self.done)


def describe(step: Step, root: str) -> str:
    """One line saying what a step does."""
    if step.action == "move":
        return f"move     {show(step.path)} -> {show(step.target)}"
    if step.action == "delete":
        return f"delete   {show(step.path)} (to trash: {show(step.target)})"
    same = "" if step.digest == step.keeper_digest else "; near-duplicate, different bytes"
    verb = "hardlink" if step.action == "hardlink" else "symlink "
    return f"{verb} {show(step.path)} -> keeper {show(step.keeper)} (original kept in {show(step.target)}{same})"


def _batches(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _check(
    root: str, step: Step, keepers: dict[str, tuple[str | None, str | None]]
) -> tuple[str | None, str | None, str | None]:
    """``(path, keeper_path, None)`` when the step can go ahead, else ``(None, None, reason)``; ``keepers`` caches each keeper's check."""
    if step.keeper not in keepers:
        keepers[step.keeper] = verify_file(
            root, step.keeper, step.keeper_size, step.keeper_mtime_ns, step.keeper_digest, follow=True
        )
    keeper_path, why = keepers[step.keeper]
    if why:
        return (
            None,
            None,
            f"its keeper {show(step.keeper)} is {why}"
            if why.startswith("missing")
            else f"its keeper {show(step.keeper)}: {why}",
        )
    path, why = verify_file(root, step.path, step.size, step.mtime_ns, step.digest)
    if why:
        return None, None, why
    if os.path.lexists(step.target):
        return None, None, f"{show(step.target)} already exists (never overwritten)"
    return path, keeper_path, None


def _start_journal(plan: Plan) -> Journal:
    """Create the plan's journal (durably) with its ``start`` line and a ``skip`` line per file the plan leaves alone."""
    plan.run.run_dir.mkdir(parents=True, exist_ok=True)
    journal = Journal(plan.journal_path, create=True)
    journal.write(
        {
            "type": "start",
            "version": JOURNAL_VERSION,
            "stamp": plan.stamp,
            "time": _dt.datetime.now().isoformat(timespec="seconds"),
            "run": os.path.abspath(plan.run.run_dir),
            "root": plan.run.root,
            "action": plan.action,
            "keep": plan.keep,
            "references": plan.references,
            "dest": plan.dest,
            "steps": len(plan.steps),
        },
        sync=True,
    )
    for skip in plan.skipped:  # every decision is in the journal, the files left alone too
        journal.write({"type": "skip", "path": skip.path, "reason": skip.reason})
    return journal


def _carry_out(
    plan: Plan, ready: Sequence[tuple[Step, str, str]], journal: Journal, outcome: Outcome, echo: Echo
) -> None:
    """Journal every checked step of a batch (durably), then do each and record how it went."""
    for step, _, _ in ready:
        journal.write(step.record())
    journal.sync()  # every plan line is durable before its file changes
    for step, path, keeper_path in ready:
        try:
            extra = _act(step, path, keeper_path, plan.stamp)
        except (_Refused, OSError) as exc:
            why = str(exc) if isinstance(exc, _Refused) else f"failed: {exc.strerror or exc}"
            journal.write({"type": "fail", "n": step.n, "reason": why})
            outcome.skipped.append(Skip(step.path, why))
            echo(f"skip     {show(step.path)}: {why}")
            continue
        journal.write({"type": "done", "n": step.n, **extra})
        outcome.done.append(step)
        echo(describe(step, plan.run.root))
    journal.sync()


def apply_plan(plan: Plan, dry_run: bool = True, echo: Echo | None = None, batch: int = BATCH) -> Outcome:
    """Check every step and (unless ``dry_run``) carry it out, journal first.

    A dry run reads the files (to say which would be skipped) and changes nothing:
    no journal, no folder.
    """
    echo = echo or (lambda line: None)
    root = plan.run.root
    outcome = Outcome(skipped=list(plan.skipped))
    for skip in plan.skipped:
        echo(f"skip     {show(skip.path)}: {skip.reason}")
    keepers: dict[str, tuple[str | None, str | None]] = {}
    journal = None
    if not dry_run and plan.steps:
        journal = _start_journal(plan)
        outcome.journal = plan.journal_path
    try:
        for group in _batches(plan.steps, batch):
            ready = []
            for step in group:
                path, keeper_path, why = _check(root, step, keepers)
                if why:
                    outcome.skipped.append(Skip(step.path, why))
                    echo(f"skip     {show(step.path)}: {why}")
                    if journal:
                        journal.write({"type": "skip", "path": step.path, "reason": why})
                    continue
                ready.append((step, path, keeper_path))
            if journal:
                _carry_out(plan, ready, journal, outcome, echo)
                continue
            for step, _, _ in ready:  # a dry run
                outcome.done.append(step)
                echo(describe(step, root))
    finally:
        if journal:
            journal.write({"type": "end", "done": len(outcome.done), "skipped": len(outcome.skipped)})
            journal.close()
    return outcome
