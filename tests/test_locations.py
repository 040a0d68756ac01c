"""Local writes through :mod:`imgdedup.storage.locations`: atomic, and durable with ``sync=True``."""

from __future__ import annotations

import os
import stat

import numpy as np

from imgdedup.storage import locations


def test_a_synced_write_fsyncs_the_file_before_the_rename_and_its_folder_after(tmp_path, monkeypatch):
    """``sync=True``: the new bytes are durable before they replace the old file, and the rename itself is durable."""
    target = tmp_path / "manifest.npz"
    target.write_bytes(b"old")
    real_fsync = os.fsync
    calls = []

    def recording(fd: int) -> None:  # the real fsync on the real file system, recorded
        st = os.fstat(fd)
        calls.append(("folder" if stat.S_ISDIR(st.st_mode) else "file", st.st_ino, target.read_bytes()))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording)
    locations.write_bytes(target, b"new", sync=True)
    assert target.read_bytes() == b"new"
    assert [kind for kind, _, _ in calls] == ["file", "folder"]
    assert calls[0][2] == b"old" and calls[1][2] == b"new"  # the folder after the rename
    assert calls[1][1] == tmp_path.stat().st_ino

    calls.clear()
    locations.save_npz(target, sync=True, rows=np.arange(3))
    assert [kind for kind, _, _ in calls] == ["file", "folder"] and calls[1][1] == tmp_path.stat().st_ino
    assert locations.load_npz(target)["rows"].tolist() == [0, 1, 2]

    calls.clear()
    locations.write_bytes(target, b"unsynced")  # the default: atomic, not durable
    assert calls == [] and target.read_bytes() == b"unsynced"


def test_fsync_folder_skips_what_the_platform_cannot_do(tmp_path):
    """A missing folder (or one that cannot be opened) is skipped, not an error."""
    locations.fsync_folder(tmp_path)
    locations.fsync_folder(tmp_path / "missing")
