"""A run as the actions see it: ``clusters.json`` and the file list of a run folder."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from imgdedup.errors import ImgdedupError


class ActionError(ImgdedupError):
    """The run folder, the journal or the options cannot be used."""


@dataclass(frozen=True)
class RunFile:
    """One cluster member as the run recorded it."""

    id: str
    size: int
    mtime_ns: int | None
    width: int
    height: int
    digest: str
    position: int  # file order (tie-breaker)
    run_keeper: bool
    tier: str | None = None  # exact, near or review against the run's keeper (imgdedup.search.tiers)

    @property
    def pixels(self) -> int:
        return self.width * self.height


@dataclass
class Run:
    run_dir: Path
    root: str  # absolute
    clusters: list[list[RunFile]]


def _load_json(path: Path):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ActionError(f"{str(path)!r} not found") from None
    except (OSError, ValueError) as exc:
        raise ActionError(f"cannot read {str(path)!r}: {exc}") from None


def _file_stats(work: Path) -> dict[str, tuple[int, int, int]]:
    """id -> (size, mtime_ns, position) from the run's ``work/discovered.json`` (every discovered file), when it has one."""
    path = work / "discovered.json"
    if not path.exists():
        return {}
    body = _load_json(path)
    if not isinstance(body, list):
        return {}
    return {file_id: (int(size), int(mtime_ns), k) for k, (file_id, size, mtime_ns) in enumerate(body)}


def load_run(run_dir: str | os.PathLike) -> Run:
    """Read ``clusters.json`` and the file list (size, mtime, order) of a run folder.

    Actions change local files only: a run folder on object storage (a URL) is
    refused; copy it to a local folder first if its root is local.
    """
    from imgdedup.storage.locations import is_url

    if is_url(run_dir):
        raise ActionError(
            f"run folder {str(run_dir).split('?')[0]!r} is a URL: apply and undo act on local files only; "
            "copy the run folder to a local folder first"
        )
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ActionError(f"run folder {str(run_dir)!r} does not exist")
    document = _load_json(run_dir / "clusters.json")
    root = document.get("root")
    if not isinstance(root, str) or not os.path.isabs(root):
        raise ActionError(f"{str(run_dir / 'clusters.json')!r} does not name an absolute root folder")
    stats = _file_stats(run_dir / "work")
    clusters = []
    for order, cluster in enumerate(document.get("clusters", [])):
        members = []
        for k, m in enumerate(cluster["members"]):
            size, mtime_ns, position = stats.get(m["path"], (int(m["bytes"]), None, None))
            if "mtime_ns" in m:
                mtime_ns = int(m["mtime_ns"])
            members.append(
                RunFile(
                    id=m["path"],
                    size=int(m["bytes"]),
                    mtime_ns=mtime_ns,
                    width=int(m["width"]),
                    height=int(m["height"]),
                    digest=str(m["digest"]),
                    position=position if position is not None else (1 << 40) + order * 10_000 + k,
                    run_keeper=bool(m["keeper"]),
                    tier=m.get("tier"),
                )
            )
        clusters.append(members)
    return Run(run_dir=run_dir, root=root, clusters=clusters)
