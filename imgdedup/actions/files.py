"""File operations of one step: move, keep a copy, replace by a link; never overwrite, undo what failed."""

from __future__ import annotations

import errno
import os
import shutil
import stat
from typing import Iterable

from imgdedup.actions.paths import _quick_problem
from imgdedup.actions.plan import Step


def _makedirs(folder: str, made: list[str]) -> None:
    """Create ``folder`` and missing parents, remembering (outermost first) which were created."""
    missing = []
    current = folder
    while not os.path.isdir(current):
        missing.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    for path in reversed(missing):
        try:
            os.mkdir(path)
            made.append(path)
        except FileExistsError:
            if not os.path.isdir(path):
                raise


def _copy_then_rename(src: str, dst: str) -> None:
    """Copy bytes, mode and times to ``dst`` through a temporary name, made durable first."""
    tmp = os.path.join(os.path.dirname(dst), f".{os.path.basename(dst)}.imgdedup-tmp")
    try:
        shutil.copy2(src, tmp, follow_symlinks=False)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        if os.path.lexists(dst):
            raise FileExistsError(errno.EEXIST, "exists", dst)
        os.rename(tmp, dst)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise


def _move_file(src: str, dst: str, made: list[str]) -> None:
    """Move without overwriting; across file systems by copy, fsync and unlink."""
    _makedirs(os.path.dirname(dst), made)
    if os.path.lexists(dst):
        raise FileExistsError(errno.EEXIST, "destination exists", dst)
    try:
        os.rename(src, dst)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        _copy_then_rename(src, dst)
        os.unlink(src)


def _keep_copy(src: str, dst: str, made: list[str]) -> None:
    """Preserve ``src`` at ``dst``: a hard link when possible (no copy), else a copy."""
    _makedirs(os.path.dirname(dst), made)
    if os.path.lexists(dst):
        raise FileExistsError(errno.EEXIST, "backup exists", dst)
    try:
        os.link(src, dst, follow_symlinks=False)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EMLINK, errno.EOPNOTSUPP):
            raise
        _copy_then_rename(src, dst)


def _temp_name(path: str, stamp: str, n: int) -> str:
    return os.path.join(os.path.dirname(path), f".imgdedup-{stamp}-{n}.tmp")


def _link_text(keeper_path: str, dup_path: str) -> str:
    """A relative symlink target, so the tree can move as a whole."""
    return os.path.relpath(os.path.realpath(keeper_path), os.path.realpath(os.path.dirname(dup_path)))


def _act(step: Step, path: str, keeper_path: str, stamp: str) -> dict:
    """Do one step; return what undo needs beyond the plan line. Raises OSError or _Refused."""
    st = os.lstat(path)
    problem = (
        "is a symbolic link: refused" if stat.S_ISLNK(st.st_mode) else _quick_problem(st, step.size, step.mtime_ns)
    )
    if problem:
        raise _Refused(problem)
    made: list[str] = []
    if step.action in ("move", "delete"):
        _move_file(path, step.target, made)
        return {"made_dirs": made}
    keeper_st = os.stat(keeper_path)
    if (keeper_st.st_dev, keeper_st.st_ino) == (st.st_dev, st.st_ino):
        raise _Refused("already a hard link to the keeper")
    tmp = _temp_name(path, stamp, step.n)
    extra: dict = {"made_dirs": made}
    if step.action == "hardlink":
        try:
            os.link(keeper_path, tmp)
        except OSError as exc:
            if exc.errno == errno.EXDEV:
                raise _Refused("the keeper is on another file system: cannot hard-link") from None
            raise
        extra["inode"] = [keeper_st.st_dev, keeper_st.st_ino]
    else:
        text = _link_text(keeper_path, path)
        os.symlink(text, tmp)
        extra["link"] = text
    kept_copy = False
    try:
        _keep_copy(path, step.target, made)
        kept_copy = True
        os.replace(tmp, path)
    except BaseException:
        # Undo only what this step made: a target that already existed (another process's file,
        # or the same name in another case on a case-insensitive file system) is never ours.
        if os.path.lexists(tmp):
            os.unlink(tmp)
        if kept_copy and os.path.lexists(step.target) and os.path.exists(path):
            os.unlink(step.target)
        _remove_empty(made)
        raise
    return extra


class _Refused(Exception):
    pass


def _remove_empty(folders: Iterable[str]) -> None:
    for folder in sorted(folders, key=len, reverse=True):
        try:
            os.rmdir(folder)
        except OSError:
            pass
