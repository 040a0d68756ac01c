"""Path safety: file ids that stay below the scanned root, and files still as the run saw them."""

from __future__ import annotations

import os
import stat

from imgdedup.actions.run import ActionError
from imgdedup.imaging.discover import digest_hasher


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def id_problem(file_id: str) -> str | None:
    """Why a file id cannot name a file below the root, or None."""
    if not isinstance(file_id, str) or not file_id:
        return "empty path"
    if "\0" in file_id:
        return "path contains a NUL byte"
    if file_id.startswith("/") or (os.sep != "/" and os.path.isabs(file_id)):
        return "absolute path: outside the scanned root"
    if any(part in ("", ".", "..") for part in file_id.split("/")):
        return "path contains '..' or an empty part: refused (could escape the scanned root)"
    return None


def resolve_in_root(root: str, file_id: str) -> tuple[str | None, str | None]:
    """``(path, None)`` for a file id whose folder resolves inside ``root``, else ``(None, reason)``.

    The folder part is resolved (symbolic links followed); the file itself is
    not, so a symbolic link is seen as such by the caller.
    """
    problem = id_problem(file_id)
    if problem:
        return None, problem
    path = os.path.join(root, *file_id.split("/"))
    real_root = os.path.realpath(root)
    parent = os.path.realpath(os.path.dirname(path))
    if not _inside(parent, real_root):
        return None, f"its folder resolves outside the scanned root (to {show(parent)})"
    return path, None


def normalise_reference(root: str, reference: str) -> str:
    """A reference folder as an id prefix (``'sub/dir/'``); '' is the whole root.

    Relative names are taken below the root first, then from the current
    folder; either way it must be a folder inside the root.
    """
    real_root = os.path.realpath(root)
    candidates = (
        [reference] if os.path.isabs(reference) else [os.path.join(root, reference), os.path.abspath(reference)]
    )
    for candidate in candidates:
        real = os.path.realpath(candidate)
        if os.path.isdir(real) and _inside(real, real_root):
            rel = os.path.relpath(real, real_root).replace(os.sep, "/")
            return "" if rel == "." else rel.rstrip("/") + "/"
    raise ActionError(f"reference folder {reference!r} is not a folder inside the scanned root {root!r}")


def show(name: str) -> str:
    """A path for a terminal: undecodable bytes as U+FFFD, control characters escaped."""
    text = os.fsencode(name).decode("utf-8", errors="replace")
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)


def file_digest(path: str, like: str) -> str:
    """The content digest of a file, read in blocks, by the algorithm that made digest ``like``
    (:func:`imgdedup.imaging.discover.digest_hasher`: runs and journals of earlier versions hold BLAKE2b)."""
    h = digest_hasher(like)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _quick_problem(st: os.stat_result, size: int, mtime_ns: int | None) -> str | None:
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file any more"
    if st.st_size != size:
        return f"changed since the scan (size {size} -> {st.st_size} bytes)"
    if mtime_ns is not None and st.st_mtime_ns != mtime_ns:
        return "changed since the scan (modification time differs)"
    return None


def verify_file(
    root: str, file_id: str, size: int, mtime_ns: int | None, digest: str, follow: bool = False
) -> tuple[str | None, str | None]:
    """``(path, None)`` when the file is still the one the run saw, else ``(None, reason)``."""
    path, problem = resolve_in_root(root, file_id)
    if problem:
        return None, problem
    try:
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            if not follow:
                return None, "is a symbolic link: refused"
            if not _inside(os.path.realpath(path), os.path.realpath(root)):
                return None, "is a symbolic link to a file outside the scanned root: refused"
            st = os.stat(path)
        problem = _quick_problem(st, size, mtime_ns)
        if problem:
            return None, problem
        if file_digest(path, digest) != digest:
            return None, "changed since the scan (content digest differs)"
    except FileNotFoundError:
        return None, "missing (deleted or moved since the scan)"
    except OSError as exc:
        return None, f"cannot read: {exc.strerror or exc}"
    return path, None
