"""Finding image files and reading them into normalised Pillow images.

Two pixel paths exist:

* the default path applies EXIF orientation, composites transparency on white,
  normalises palette, CMYK, 16-bit and grayscale images, and lets JPEG decode at
  reduced scale (``Image.draft``) when only a small image is needed;
* the compat path reproduces imagededup 0.3.3's ``load_image`` exactly: no EXIF
  transpose, alpha dropped (``convert('RGBA').convert('RGB')``), and only the
  formats imagededup accepts.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from imgdedup.errors import ImageLoadError, InputError

#: Formats imagededup 0.3.3 accepts (``imagededup.utils.image_utils.IMG_FORMATS``).
COMPAT_FORMATS = ("JPEG", "PNG", "BMP", "MPO", "PPM", "TIFF", "GIF", "WEBP")

_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


@dataclass(frozen=True)
class FileRecord:
    """One discovered file.

    ``id`` is the path relative to the scanned root with ``/`` separators; names
    that are not valid UTF-8 keep their bytes as surrogate escapes, so
    ``os.fsencode(id)`` is the name on disk.
    """

    id: str
    size: int
    mtime_ns: int


def discover_images(root: str | os.PathLike, recursive: bool = True) -> list[FileRecord]:
    """List candidate files under ``root`` in a deterministic order.

    Hidden files and folders (name starting with ``.``) are skipped. Every other
    regular file is a candidate: whether it is an image is decided by its
    content when it is read, not by its extension. Folders are walked in byte
    order of their names; symlinked folders are not followed (no loops), symlinked
    files are.
    """
    root_path = Path(root)
    if not root_path.exists():
        raise InputError(f"folder {str(root)!r} does not exist")
    if not root_path.is_dir():
        raise InputError(f"{str(root)!r} is not a folder")
    records: list[FileRecord] = []
    _walk(root_path, "", recursive, records)
    return records


def _walk(folder: Path, prefix: str, recursive: bool, out: list[FileRecord]) -> None:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: os.fsencode(e.name))
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        rel = prefix + entry.name
        try:
            if entry.is_dir(follow_symlinks=False):
                if recursive:
                    _walk(Path(entry.path), rel + "/", recursive, out)
                continue
            st = entry.stat(follow_symlinks=True)
        except OSError:
            # A broken symlink or a file gone since listing: still accounted for,
            # the hash stage records why it cannot be read.
            out.append(FileRecord(rel, -1, 0))
            continue
        if stat.S_ISREG(st.st_mode):
            out.append(FileRecord(rel, st.st_size, st.st_mtime_ns))


def file_path(root: str | os.PathLike, file_id: str) -> Path:
    return Path(root) / file_id


def read_bytes(root: str | os.PathLike, record: FileRecord) -> bytes:
    """Read a file, or raise :class:`ImageLoadError` with the reason."""
    try:
        return file_path(root, record.id).read_bytes()
    except FileNotFoundError:
        raise ImageLoadError("file missing (deleted after discovery or broken symlink)") from None
    except PermissionError:
        raise ImageLoadError("permission denied") from None
    except IsADirectoryError:
        raise ImageLoadError("is a directory") from None
    except OSError as exc:
        raise ImageLoadError(f"cannot read file: {exc.strerror or exc}") from None


def content_digest(data: bytes) -> str:
    """128-bit BLAKE2b of the bytes, hex: byte-identical files share it."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def open_image(data: bytes, max_pixels: int) -> Image.Image:
    """Open (not yet decode) an image, refusing empty, unknown and oversized input."""
    if not data:
        raise ImageLoadError("empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            # We apply our own pixel limit below, before any pixel is decoded.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise ImageLoadError("not an image (Pillow cannot identify the content)") from None
    except Image.DecompressionBombError as exc:
        raise ImageLoadError(f"decompression bomb refused: {exc}") from None
    except Exception as exc:  # Pillow plugins raise many types on malformed headers
        raise ImageLoadError(f"cannot open image: {type(exc).__name__}: {exc}") from None
    width, height = image.size
    if width * height > max_pixels:
        raise ImageLoadError(
            f"image is {width} x {height} = {width * height} pixels, above max_image_pixels={max_pixels}"
        )
    if width < 1 or height < 1:
        raise ImageLoadError(f"image has no pixels ({width} x {height})")
    return image


def oriented_size(image: Image.Image) -> tuple[int, int]:
    """Width and height after EXIF orientation (orientations 5-8 swap them)."""
    width, height = image.size
    try:
        orientation = image.getexif().get(0x0112, 1)
    except Exception:
        orientation = 1
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _decode(image: Image.Image) -> Image.Image:
    try:
        image.load()
    except Exception as exc:
        raise ImageLoadError(f"cannot decode image: {type(exc).__name__}: {exc}") from None
    return image


def normalise(image: Image.Image, mode: str) -> Image.Image:
    """Decode and convert to ``mode`` ('RGB' or 'L') on the default path.

    Transparency is composited on white, 16-bit data scaled (not clipped) to 8 bits,
    EXIF orientation applied.
    """
    try:
        transposed = ImageOps.exif_transpose(_decode(image))
    except ImageLoadError:
        raise
    except Exception:
        transposed = image  # a malformed EXIF block must not cost the image
    image = transposed
    if image.mode in _SIXTEEN_BIT_MODES or image.mode == "F":
        array = np.asarray(image, dtype=np.float64)
        scale = 1.0 if array.max(initial=0) <= 255 and image.mode == "F" else 257.0
        image = Image.fromarray(np.clip(array / scale + 0.5, 0, 255).astype(np.uint8), "L")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (image.mode in ("RGB", "L") and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    if image.mode != mode:
        image = image.convert(mode if image.mode in ("RGB", "L", "RGBA") else "RGB").convert(mode)
    return image


def load_image(data: bytes, mode: str = "RGB", max_pixels: int = 178_956_970, draft_size: tuple[int, int] | None = None) -> Image.Image:
    """Default pixel path: bytes -> oriented, flattened image in ``mode``.

    ``draft_size`` lets a JPEG decode at 1/2, 1/4 or 1/8 scale as long as both
    sides stay at least that large: a 64-bit hash never needs full resolution.
    """
    image = open_image(data, max_pixels)
    if draft_size is not None and image.format == "JPEG":
        # Orientation may swap the sides, so ask for the larger side on both axes.
        side = max(draft_size)
        image.draft(mode if image.mode in ("RGB", "L") else None, (side, side))
    return normalise(image, mode)


def load_image_compat(data: bytes, max_pixels: int = 178_956_970) -> Image.Image:
    """imagededup 0.3.3's pixel path, bit for bit: RGB, no orientation, alpha dropped."""
    image = open_image(data, max_pixels)
    if image.format not in COMPAT_FORMATS:
        raise ImageLoadError(f"format {image.format} is not read by imagededup (compat mode)")
    _decode(image)
    try:
        if image.mode != "RGB":
            image = image.convert("RGBA").convert("RGB")
    except Exception as exc:
        raise ImageLoadError(f"cannot convert image: {type(exc).__name__}: {exc}") from None
    return image
