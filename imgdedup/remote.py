"""Images behind a URL: listing and reading through fsspec (s3://, gs://, az://, http://, ...).

Credentials come from each backend's usual environment and configuration
(``AWS_ACCESS_KEY_ID``, ``~/.aws/credentials``, ``AWS_ENDPOINT_URL``, ...): never
from the command line, and they are not logged. A file's id is its path
relative to the URL's prefix, as for a local folder.
"""

from __future__ import annotations

import datetime as _dt
import posixpath

from imgdedup.errors import ImageLoadError, InputError

_LOCAL_PROTOCOLS = ("file", "local")


def is_url(path: object) -> bool:
    """True for ``protocol://...`` locations other than local files."""
    text = str(path)
    return "://" in text and text.split("://", 1)[0] not in _LOCAL_PROTOCOLS


def _filesystem(url: str):
    from imgdedup.locations import as_location, filesystem

    return filesystem(as_location(url, InputError), InputError)


def _mtime_ns(info: dict) -> int:
    value = info.get("LastModified") or info.get("mtime") or info.get("last_modified") or info.get("updated") or 0
    if isinstance(value, _dt.datetime):
        return int(value.timestamp() * 1_000_000_000)
    if isinstance(value, str):
        return int(_dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1_000_000_000)
    return int(float(value) * 1_000_000_000)


def discover_url(url: str, recursive: bool = True) -> list:
    """List candidate files under a URL prefix, in byte order of their ids; hidden names skipped."""
    from imgdedup.io import FileRecord

    fs, root = _filesystem(url)
    root = root.rstrip("/")
    try:
        if not fs.isdir(root):
            raise InputError(f"{url!r} is not a folder or prefix")
        listing = fs.find(root, maxdepth=None if recursive else 1, detail=True, withdirs=False)
    except (FileNotFoundError, PermissionError, OSError) as exc:
        raise InputError(f"cannot list {url!r}: {exc}") from None
    records = []
    for path, info in listing.items():
        relative = posixpath.relpath(path, root)
        if any(part.startswith(".") for part in relative.split("/")):
            continue
        if info.get("type", "file") != "file":
            continue
        records.append(FileRecord(relative, int(info.get("size") or 0), _mtime_ns(info)))
    records.sort(key=lambda r: r.id.encode("utf-8", "surrogateescape"))
    return records


def read_url_bytes(url: str, file_id: str) -> bytes:
    """The bytes of one file below a URL prefix, or :class:`ImageLoadError` with the reason."""
    fs, root = _filesystem(url)
    try:
        return fs.cat_file(posixpath.join(root.rstrip("/"), file_id))
    except FileNotFoundError:
        raise ImageLoadError("file missing (deleted after discovery)") from None
    except PermissionError:
        raise ImageLoadError("permission denied") from None
    except OSError as exc:
        raise ImageLoadError(f"cannot read file: {exc}") from None
