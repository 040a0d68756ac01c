"""Where a store or a run folder lives: a local path, or a URL of any fsspec protocol (``s3://``, ``gs://``, ...).

A few whole-file operations over fsspec serve both, so every stage has one
code path whatever the location:

* a local location is a :class:`pathlib.Path`; a file is written to a hidden
  temporary name and renamed over the target, so a reader sees the old file or
  the new one, never half of one (``sync=True`` also fsyncs it first, and the
  folder after the rename, so the new file survives a crash);
* a URL stays a ``str``; a file is written with one PUT of the whole object.
  Object stores make that atomic in the same sense (a reader gets the old
  object or the new one), so writing the whole object is the commit point.

Listings and existence checks of URLs bypass fsspec's listing cache: other
processes (Dask workers) write the same prefixes. Object stores have no
folders, so :func:`make_folder` does nothing for a URL.

Credentials come from each backend's usual environment and configuration
(``AWS_ACCESS_KEY_ID``, ``AWS_PROFILE``, ``~/.aws/credentials``,
``AWS_ENDPOINT_URL``, ``GOOGLE_APPLICATION_CREDENTIALS``, ...). A URL that
carries ``user:password@`` is refused, so a secret never reaches the command
line, the plan files, the results or a log.
"""

from __future__ import annotations

import io
import os
import shutil
import threading
import urllib.parse
from pathlib import Path
from typing import Callable, Sequence, Union

from imgdedup.errors import ImgdedupError

Location = Union[Path, str]

#: Empty marker files naming the folders imgdedup writes: a run folder and a store. Discovery
#: never walks into a folder holding one, so a run never reads its own output (or an earlier
#: run's, or a store's) as input, e.g. ``./imgdedup-runs/`` when the current folder is scanned.
RUN_MARKER, STORE_MARKER = ".imgdedup-run", ".imgdedup-store"
OUTPUT_MARKERS = (RUN_MARKER, STORE_MARKER)

_FILE_SCHEMES = ("file://", "local://")
_LOCAL_PROTOCOLS = ("file", "local")


def is_url(path: object) -> bool:
    """True for ``protocol://...`` locations other than local files."""
    text = str(path)
    return "://" in text and text.split("://", 1)[0] not in _LOCAL_PROTOCOLS


def as_location(value: str | os.PathLike, error: type[ImgdedupError] = ImgdedupError) -> Location:
    """A URL as a ``str`` without trailing slash; anything else (``file://`` too) as a ``Path``."""
    text = os.fsdecode(os.fspath(value)) if isinstance(value, os.PathLike) else str(value)
    if is_url(text):
        parts = urllib.parse.urlsplit(text)
        if parts.password is not None:  # (user@ alone is fine: az://container@account/...)
            raise error(
                f"credentials do not belong in a URL ({parts.scheme}://{parts.hostname or ''}...): "
                "use the backend's environment or configuration (AWS_PROFILE, ~/.aws/credentials, ...)"
            )
        return text.rstrip("/")
    for scheme in _FILE_SCHEMES:
        if text.startswith(scheme):
            text = text[len(scheme) :]
    return Path(text)


def is_remote(location: Location) -> bool:
    return isinstance(location, str)


def join(base: str | os.PathLike, *parts: str) -> Location:
    """``base/part/...`` as a location of the same kind as ``base``."""
    base = as_location(base)
    if isinstance(base, Path):
        return base.joinpath(*parts)
    return "/".join([base, *(p.strip("/") for p in parts)])


def name(location: Location) -> str:
    return location.name if isinstance(location, Path) else location.rsplit("/", 1)[-1]


def sibling(location: str | os.PathLike, new_name: str) -> Location:
    """The location named ``new_name`` in the same folder as ``location``."""
    location = as_location(location)
    if isinstance(location, Path):
        return location.with_name(new_name)
    return location.rsplit("/", 1)[0] + "/" + new_name


def filesystem(location: Location, error: type[ImgdedupError] = ImgdedupError):
    """``(fsspec filesystem, path within it)``; an unknown protocol or missing backend raises ``error``."""
    import fsspec

    if isinstance(location, Path):
        return fsspec.filesystem("file"), str(location)
    try:
        return fsspec.core.url_to_fs(location)
    except ImportError as exc:
        raise error(f"cannot open {location.split('?')[0]!r}: its fsspec backend is not installed ({exc})") from None
    except ValueError as exc:
        raise error(f"cannot open {location.split('?')[0]!r}: {exc}") from None


def _fresh(location: str):
    fs, path = filesystem(location)
    fs.invalidate_cache(path)
    return fs, path


# --- reading -----------------------------------------------------------------------


def read_bytes(location: Location) -> bytes:
    if isinstance(location, Path):
        return location.read_bytes()
    fs, path = filesystem(location)
    return fs.cat_file(path)


def read_text(location: Location) -> str:
    return read_bytes(location).decode("utf-8")


def exists(location: Location) -> bool:
    if isinstance(location, Path):
        return location.exists()
    fs, path = _fresh(location)
    return fs.exists(path)


def list_names(folder: Location) -> list[str]:
    """Names of the files directly in ``folder``, sorted; empty if there is none."""
    if isinstance(folder, Path):
        try:
            return sorted(entry.name for entry in os.scandir(folder) if entry.is_file())
        except FileNotFoundError:
            return []
    fs, path = _fresh(folder)
    try:
        entries = fs.ls(path, detail=True, refresh=True)
    except FileNotFoundError:
        return []
    return sorted(e["name"].rstrip("/").rsplit("/", 1)[-1] for e in entries if e.get("type") == "file")


def load_npz(location: Location, keys: Sequence[str] | None = None) -> dict:
    """The arrays (all, or ``keys``) of an ``.npz`` file, never unpickling anything."""
    import numpy as np

    source = location if isinstance(location, Path) else io.BytesIO(read_bytes(location))
    with np.load(source, allow_pickle=False) as data:
        return {key: data[key] for key in (data.files if keys is None else keys)}


# --- writing -----------------------------------------------------------------------


def _temporary(path: Path) -> Path:
    # Hidden and not ending in the target's suffix: never mistaken for a committed file.
    return path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")


def fsync_folder(folder: str | os.PathLike) -> None:
    """Make the entries of a local folder (a file created or renamed into it) durable.

    POSIX only: where a folder cannot be opened or fsync'd (Windows, some network
    file systems) this does nothing, as the platform offers nothing better.
    """
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_with(location: Location, writer: Callable[[io.IOBase], None], sync: bool = False) -> Location:
    """Write a whole file through ``writer(handle)``, atomically (see the module's docstring)."""
    if isinstance(location, Path):
        tmp = _temporary(location)
        try:
            with open(tmp, "wb") as handle:
                writer(handle)
                if sync:
                    handle.flush()
                    os.fsync(handle.fileno())
            os.replace(tmp, location)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        if sync:
            fsync_folder(location.parent)  # the rename is an entry of the folder: durable only once it is
        return location
    buffer = io.BytesIO()
    writer(buffer)
    fs, path = filesystem(location)
    fs.pipe_file(path, buffer.getvalue())
    return location


def write_bytes(location: Location, data: bytes, sync: bool = False) -> Location:
    return write_with(location, lambda handle: handle.write(data), sync=sync)


def write_text(location: Location, text: str, errors: str = "strict") -> Location:
    return write_bytes(location, text.encode("utf-8", errors=errors))


def save_npz(location: Location, sync: bool = False, **arrays) -> Location:
    import numpy as np

    return write_with(location, lambda handle: np.savez(handle, **arrays), sync=sync)


def make_folder(folder: Location) -> None:
    if isinstance(folder, Path):
        folder.mkdir(parents=True, exist_ok=True)


def remove(location: Location) -> None:
    """Delete a file; a missing one is not an error."""
    if isinstance(location, Path):
        location.unlink(missing_ok=True)
        return
    fs, path = filesystem(location)
    try:
        fs.rm_file(path)
    except FileNotFoundError:
        pass


def copy_files(sources: Sequence[Location], targets: Sequence[Location]) -> None:
    """Copy files pairwise: hard links between local folders, server-side copies within one object store."""
    if not sources:
        return
    if all(isinstance(s, Path) for s in sources) and all(isinstance(t, Path) for t in targets):
        for source, target in zip(sources, targets):
            try:
                os.link(source, target)
            except FileExistsError:
                pass
            except OSError:
                shutil.copy2(source, target)
        return
    fs_source, _ = filesystem(sources[0])
    fs_target, _ = filesystem(targets[0])
    if fs_source is fs_target:
        fs_source.copy([filesystem(s)[1] for s in sources], [filesystem(t)[1] for t in targets])
        return
    for source, target in zip(sources, targets):
        write_bytes(target, read_bytes(source))


def atomic_write_text(path: str | os.PathLike, text: str, errors: str = "strict") -> None:
    """Write UTF-8 text as one whole file (temporary name then rename, or one PUT): a reader never sees half of it."""
    write_text(as_location(path), text, errors=errors)
