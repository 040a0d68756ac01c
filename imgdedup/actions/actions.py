"""Safe clean-up of a run's duplicates, with a journal and a full undo.

Actions (on every duplicate; the kept files are never touched):

``move``
    The duplicate moves to ``--to DIR``, keeping its path below the scanned root
    (``DIR/<relative path>``).
``delete``
    The duplicate moves into a trash folder, ``RUN/trash/<stamp>/<relative path>``
    by default (``--to DIR`` gives ``DIR/<stamp>/...``). Nothing is unlinked: the
    space comes back when that folder is deleted (the purge), which ends undo.
``hardlink`` / ``symlink``
    The duplicate is replaced, atomically, by a hard link to the keeper or a
    relative symbolic link to it. The original is kept in the trash folder as
    above (a hard link of it when the trash is on the same file system, so it
    costs no copy), so undo restores the original bytes and mtime.

Keep policies choose each cluster's keeper: ``resolution`` (the run's keeper:
highest resolution, then largest file, then path order), ``largest`` (file
size), ``oldest`` / ``newest`` (mtime). Files under a reference folder are never
touched: in a cluster that has any, they are all kept and the best of them (by
the policy) is the keeper; other clusters use the policy.

Safety: before touching a file (and the keeper it leaves in place) the size,
mtime and content digest must still be those of the run, else the file is
skipped with the reason. Ids that are absolute or contain ``..``, files whose
folder resolves outside the scanned root, and symbolic links are refused. No
existing file is ever overwritten.

Journal: ``RUN/journal-<stamp>.jsonl``, JSON lines, created before the first
change: a ``start`` line, then for each action a ``plan`` line made durable
(fsync) before the file is touched and a ``done`` (or ``fail``) line after it.
Lines are written in batches: every ``plan`` line of a batch is fsync'd before
any file of that batch changes. :func:`undo` reads the journal, inspects each
planned file (so a crash mid-batch is handled) and restores it, appending
``undone`` lines to the same journal, so running it again is harmless.
"""

from __future__ import annotations

import datetime as _dt
import errno
import glob
import json
import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

from imgdedup.errors import ImgdedupError
from imgdedup.imaging.discover import digest_hasher

ACTIONS = ("move", "delete", "hardlink", "symlink")
KEEP_POLICIES = ("resolution", "largest", "oldest", "newest")
JOURNAL_VERSION = 1
TRASH = "trash"
BATCH = 256

Echo = Callable[[str], None]


class ActionError(ImgdedupError):
    """The run folder, the journal or the options cannot be used."""


# --- the run ----------------------------------------------------------------------------

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
    """id -> (size, mtime_ns, position) from the run's chunk files, when it has them."""
    stats: dict[str, tuple[int, int, int]] = {}
    for path in sorted(glob.glob(str(work / "files-*.json"))):
        body = _load_json(Path(path))
        if isinstance(body, dict) and isinstance(body.get("files"), list):
            start = int(body.get("start", 0))
            for k, (file_id, size, mtime_ns) in enumerate(body["files"]):
                stats[file_id] = (int(size), int(mtime_ns), start + k)
    if not stats:  # a run written by the store planner: one list of every discovered file
        for path in sorted(glob.glob(str(work / "discovered*.json"))):
            body = _load_json(Path(path))
            if isinstance(body, list):
                for k, (file_id, size, mtime_ns) in enumerate(body):
                    stats[file_id] = (int(size), int(mtime_ns), k)
    return stats


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
            members.append(RunFile(
                id=m["path"], size=int(m["bytes"]), mtime_ns=mtime_ns, width=int(m["width"]), height=int(m["height"]),
                digest=str(m["digest"]), position=position if position is not None else (1 << 40) + order * 10_000 + k,
                run_keeper=bool(m["keeper"]), tier=m.get("tier"),
            ))
        clusters.append(members)
    return Run(run_dir=run_dir, root=root, clusters=clusters)


# --- paths ------------------------------------------------------------------------------

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
    candidates = [reference] if os.path.isabs(reference) else [os.path.join(root, reference), os.path.abspath(reference)]
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


# --- planning ---------------------------------------------------------------------------

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
        return {"type": "plan", "n": self.n, "action": self.action, "path": self.path, "keeper": self.keeper,
                "target": self.target, "size": self.size, "mtime_ns": self.mtime_ns, "digest": self.digest,
                "keeper_size": self.keeper_size, "keeper_mtime_ns": self.keeper_mtime_ns, "keeper_digest": self.keeper_digest,
                "tier": self.tier}


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


def choose_keepers(members: Sequence[RunFile], keep: str, references: Sequence[str]) -> tuple[RunFile, list[RunFile], list[RunFile]]:
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


def plan_actions(run: Run, action: str, keep: str = "resolution", references: Sequence[str] = (), to: str | os.PathLike | None = None,
                 stamp: str | None = None, tiers: Sequence[str] | None = None) -> Plan:
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
        raise ActionError(f"--keep {keep} needs file times, and this run folder has no work/files-*.json")
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
                skipped.append(Skip(dup.id, f"tier {dup.tier or 'unknown'}: left for review (--tier {','.join(tiers)})"))
                continue
            problem = id_problem(dup.id)
            if problem:
                skipped.append(Skip(dup.id, problem))
                continue
            steps.append(Step(
                n=len(steps) + 1, action=action, path=dup.id, keeper=keeper.id,
                target=os.path.join(dest, *dup.id.split("/")), size=dup.size, mtime_ns=dup.mtime_ns, digest=dup.digest,
                keeper_size=keeper.size, keeper_mtime_ns=keeper.mtime_ns, keeper_digest=keeper.digest, tier=dup.tier,
            ))
    return Plan(run=run, action=action, keep=keep, references=refs, stamp=stamp, dest=dest, steps=steps, kept=kept, skipped=skipped)


# --- checks -----------------------------------------------------------------------------

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


def verify_file(root: str, file_id: str, size: int, mtime_ns: int | None, digest: str, follow: bool = False) -> tuple[str | None, str | None]:
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


# --- the journal ------------------------------------------------------------------------

class Journal:
    """Append-only JSON lines; :meth:`sync` makes what was written durable."""

    def __init__(self, path: Path, create: bool) -> None:
        self.path = Path(path)
        self.handle = open(self.path, "x" if create else "a", encoding="utf-8", newline="\n")
        if create:
            self.sync()
            _fsync_dir(str(self.path.parent))

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


def _fsync_dir(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


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


# --- file operations --------------------------------------------------------------------

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
    problem = "is a symbolic link: refused" if stat.S_ISLNK(st.st_mode) else _quick_problem(st, step.size, step.mtime_ns)
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
    try:
        _keep_copy(path, step.target, made)
        os.replace(tmp, path)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        if os.path.lexists(step.target) and os.path.exists(path):
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


# --- apply ------------------------------------------------------------------------------

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
        yield items[start:start + size]


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
    keeper_state: dict[str, tuple[str | None, str | None]] = {}

    def check(step: Step) -> tuple[str | None, str | None, str | None]:
        if step.keeper not in keeper_state:
            keeper_state[step.keeper] = verify_file(root, step.keeper, step.keeper_size, step.keeper_mtime_ns, step.keeper_digest, follow=True)
        keeper_path, why = keeper_state[step.keeper]
        if why:
            return None, None, f"its keeper {show(step.keeper)} is {why}" if why.startswith("missing") else f"its keeper {show(step.keeper)}: {why}"
        path, why = verify_file(root, step.path, step.size, step.mtime_ns, step.digest)
        if why:
            return None, None, why
        if os.path.lexists(step.target):
            return None, None, f"{show(step.target)} already exists (never overwritten)"
        return path, keeper_path, None

    journal = None
    if not dry_run and plan.steps:
        plan.run.run_dir.mkdir(parents=True, exist_ok=True)
        journal = Journal(plan.journal_path, create=True)
        outcome.journal = plan.journal_path
        journal.write({
            "type": "start", "version": JOURNAL_VERSION, "stamp": plan.stamp, "time": _dt.datetime.now().isoformat(timespec="seconds"),
            "run": os.path.abspath(plan.run.run_dir), "root": root, "action": plan.action, "keep": plan.keep,
            "references": plan.references, "dest": plan.dest, "steps": len(plan.steps),
        }, sync=True)
        for skip in plan.skipped:  # every decision is in the journal, the files left alone too
            journal.write({"type": "skip", "path": skip.path, "reason": skip.reason})
    try:
        for group in _batches(plan.steps, batch):
            ready = []
            for step in group:
                path, keeper_path, why = check(step)
                if why:
                    outcome.skipped.append(Skip(step.path, why))
                    echo(f"skip     {show(step.path)}: {why}")
                    if journal:
                        journal.write({"type": "skip", "path": step.path, "reason": why})
                    continue
                ready.append((step, path, keeper_path))
            if dry_run:
                for step, _, _ in ready:
                    outcome.done.append(step)
                    echo(describe(step, root))
                continue
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
                echo(describe(step, root))
            journal.sync()
    finally:
        if journal:
            journal.write({"type": "end", "done": len(outcome.done), "skipped": len(outcome.skipped)})
            journal.close()
    return outcome


# --- undo -------------------------------------------------------------------------------

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
            if same or (os.path.getsize(path) == plan["size"] and file_digest(path, plan["digest"]) == plan["digest"] and file_digest(target, plan["digest"]) == plan["digest"]):
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
    if done is None and (_same_inode(path, target) or (not os.path.islink(path) and file_digest(path, plan["digest"]) == plan["digest"])):
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
