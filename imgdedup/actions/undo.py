"""Undo: restore every file a journal changed, inspecting each (a crash mid-batch included)."""

from __future__ import annotations

import datetime as _dt
import errno
import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

from imgdedup.actions.apply import Echo
from imgdedup.actions.files import _link_text, _remove_empty, _temp_name
from imgdedup.actions.journal import Journal, read_journal
from imgdedup.actions.paths import _inside, file_digest, resolve_in_root, show
from imgdedup.actions.plan import Skip


@dataclass
class UndoOutcome:
    restored: list[str] = field(default_factory=list)
    untouched: list[str] = field(default_factory=list)  # planned but never carried out: nothing to do
    problems: list[Skip] = field(default_factory=list)
    already: int = 0


def _same_inode(a: str, b: str) -> bool:
    try:
        sa, sb = os.lstat(a), os.lstat(b)
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def _is_our_link(root: str, path: str, plan: dict, done: dict | None) -> bool:
    """Whether ``path`` is still the link the step put there."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    keeper_path, problem = resolve_in_root(root, plan["keeper"])
    if plan["action"] == "symlink":
        if not stat.S_ISLNK(st.st_mode):
            return False
        if done is not None and "link" in done:
            return os.readlink(path) == done["link"]
        return not problem and os.readlink(path) == _link_text(keeper_path, path)
    if stat.S_ISLNK(st.st_mode):
        return False
    if done is not None and "inode" in done:
        return [st.st_dev, st.st_ino] == list(done["inode"])
    return not problem and _same_inode(path, keeper_path)


def _restore(src: str, dst: str) -> None:
    """Put ``src`` back at ``dst`` (which may be our link: replaced atomically)."""
    try:
        os.replace(src, dst)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        tmp = os.path.join(os.path.dirname(dst), f".{os.path.basename(dst)}.imgdedup-tmp")
        shutil.copy2(src, tmp, follow_symlinks=False)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, dst)
        os.unlink(src)


def _undo_step(root: str, dest: str, plan: dict, done: dict | None, stamp: str) -> tuple[str, str | None]:
    """Restore one planned step: ``('restored'|'untouched', None)`` or ``('problem', reason)``."""
    path, problem = resolve_in_root(root, plan["path"])
    if problem:
        return "problem", problem
    target = plan["target"]
    if not _inside(os.path.abspath(target), os.path.abspath(dest)):
        return "problem", f"journal names {show(target)}, outside {show(dest)}: refused"
    tmp = _temp_name(path, stamp, plan["n"])
    if os.path.lexists(tmp):
        os.unlink(tmp)  # a link made before a crash, never put in place
    have_target = os.path.lexists(target)
    have_path = os.path.lexists(path)
    if plan["action"] in ("move", "delete"):
        if have_target and not have_path:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            _restore(target, path)
            return "restored", None
        if have_path and not have_target:
            return "untouched", None
        if have_path and have_target:
            same = _same_inode(path, target)
            if same or (
                os.path.getsize(path) == plan["size"]
                and file_digest(path, plan["digest"]) == plan["digest"]
                and file_digest(target, plan["digest"]) == plan["digest"]
            ):
                os.unlink(target)  # a copy left by a crash before the original was removed
                return "untouched", None
            return "problem", f"both {show(plan['path'])} and {show(target)} exist and differ: left as they are"
        return "problem", f"neither {show(plan['path'])} nor {show(target)} exists: cannot restore"
    # hardlink / symlink: the original is at target, our link at path
    if not have_target:
        if done is None:
            return "untouched", None
        return "problem", f"the kept original {show(target)} is gone (trash purged?): cannot restore"
    if not have_path or _is_our_link(root, path, plan, done):
        _restore(target, path)
        return "restored", None
    if done is None and (
        _same_inode(path, target) or (not os.path.islink(path) and file_digest(path, plan["digest"]) == plan["digest"])
    ):
        os.unlink(target)  # crashed before the link replaced the original: it is still in place
        return "untouched", None
    return "problem", f"{show(plan['path'])} changed after the action: the original is kept at {show(target)}"


def undo_journal(journal_path: str | os.PathLike, dry_run: bool = False, echo: Echo | None = None) -> UndoOutcome:
    """Restore every file a journal changed, newest first, and record it in the journal."""
    echo = echo or (lambda line: None)
    records = read_journal(journal_path)
    start = records[0]
    root, dest, stamp = start["root"], start["dest"], start["stamp"]
    plans = {r["n"]: r for r in records if r.get("type") == "plan"}
    done = {r["n"]: r for r in records if r.get("type") == "done"}
    failed = {r["n"] for r in records if r.get("type") == "fail"}
    undone = {r["n"] for r in records if r.get("type") == "undone"}
    outcome = UndoOutcome()
    journal = None if dry_run else Journal(Path(journal_path), create=False)
    made_dirs: list[str] = []
    try:
        if journal:
            journal.write({"type": "undo-start", "time": _dt.datetime.now().isoformat(timespec="seconds")}, sync=True)
        for n in sorted(plans, reverse=True):
            plan = plans[n]
            made_dirs.extend((done.get(n) or {}).get("made_dirs", []))
            if n in undone:
                outcome.already += 1
                continue
            if n in failed and n not in done:
                continue
            if dry_run:
                state = "restore" if os.path.lexists(plan["target"]) else "nothing to do for"
                echo(f"{state} {show(plan['path'])} (from {show(plan['target'])})")
                outcome.restored.append(plan["path"])
                continue
            try:
                state, why = _undo_step(root, dest, plan, done.get(n), stamp)
            except OSError as exc:
                state, why = "problem", f"failed: {exc.strerror or exc}"
            if state == "problem":
                outcome.problems.append(Skip(plan["path"], why))
                echo(f"problem  {show(plan['path'])}: {why}")
                journal.write({"type": "undo-problem", "n": n, "reason": why})
                continue
            (outcome.restored if state == "restored" else outcome.untouched).append(plan["path"])
            if state == "restored":
                echo(f"restored {show(plan['path'])}")
            journal.write({"type": "undone", "n": n})
        if journal:
            journal.sync()
            _remove_empty(made_dirs)
            if start["action"] != "move":
                _remove_empty([dest])
    finally:
        if journal:
            journal.write({"type": "undo-end", "restored": len(outcome.restored), "problems": len(outcome.problems)})
            journal.close()
    return outcome
