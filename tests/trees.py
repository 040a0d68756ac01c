"""A map of a whole folder tree, to check that an action and its undo leave it byte-identical."""

from __future__ import annotations

import os
from pathlib import Path

from imgdedup.imaging.discover import content_digest


def snapshot(folder: Path) -> dict:
    """Every entry below ``folder``: kind, content digest or link text, size, mtime (ns) and link count."""
    out = {}
    top = os.fsencode(folder)
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, top)
            st = os.lstat(path)
            if os.path.islink(path):
                out[rel] = ("link", os.readlink(path))
            elif os.path.isdir(path):
                out[rel] = ("dir",)
            else:
                with open(path, "rb") as handle:
                    out[rel] = ("file", content_digest(handle.read()), st.st_size, st.st_mtime_ns, st.st_nlink)
    return out
