"""The journal: append-only JSON lines, made durable before the files they describe change."""

from __future__ import annotations

import json
import os
from pathlib import Path

from imgdedup.actions.run import ActionError
from imgdedup.storage.locations import fsync_folder

JOURNAL_VERSION = 1


class Journal:
    """Append-only JSON lines; :meth:`sync` makes what was written durable."""

    def __init__(self, path: Path, create: bool) -> None:
        self.path = Path(path)
        self.handle = open(self.path, "x" if create else "a", encoding="utf-8", newline="\n")
        if create:
            self.sync()
            fsync_folder(self.path.parent)

    def write(self, record: dict, sync: bool = False) -> None:
        self.handle.write(json.dumps(record, ensure_ascii=True, separators=(",", ":")) + "\n")
        if sync:
            self.sync()

    def sync(self) -> None:
        self.handle.flush()
        os.fsync(self.handle.fileno())

    def close(self) -> None:
        if not self.handle.closed:
            self.sync()
            self.handle.close()

    def __enter__(self) -> "Journal":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_journal(path: str | os.PathLike) -> list[dict]:
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise ActionError(f"journal {str(path)!r} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ActionError(f"cannot read journal {str(path)!r}: {exc}") from None
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except ValueError:
            if number == len(lines):
                break  # a line cut short by a crash: nothing after it happened
            raise ActionError(f"journal {str(path)!r} line {number} is not JSON") from None
    if not records or records[0].get("type") != "start" or records[0].get("version") != JOURNAL_VERSION:
        raise ActionError(f"{str(path)!r} is not an imgdedup journal (version {JOURNAL_VERSION})")
    return records
