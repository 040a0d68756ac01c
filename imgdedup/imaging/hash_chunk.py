"""The per-chunk unit of work: read, digest, decode and hash a list of files.

A chunk is the unit of scheduling, retry and resume: :func:`hash_images` turns
one chunk of file records into a :class:`HashChunk` (hashes and metadata of the
readable images, a reason for every other file), which the pipeline writes
into the chunk's own rows of the store.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from imgdedup.errors import ImageLoadError
from imgdedup.imaging.decode import REDUCING_GAP, compat_rgb, load_opened, open_image, oriented_size
from imgdedup.imaging.discover import FileRecord, content_digest, read_bytes
from imgdedup.imaging.hashing import HASH_INPUT_SIZES, hash_pixels
from imgdedup.imaging.lanczos import lanczos_resize


@dataclass
class HashChunk:
    """Results of one chunk: one row per readable image, plus the unreadable ones.

    Attributes
    ----------
    positions : (n,) int64 ndarray
        Index of each hashed file in the run's file list.
    hashes : (n, len(methods)) uint64 ndarray
    width, height : (n,) int32 ndarray
        Size after EXIF orientation (default path) or as stored (compat path).
    formats : (n,) str ndarray
        Pillow's format name.
    digests : (n,) str ndarray
        Content digest of the file bytes (:func:`imgdedup.imaging.discover.content_digest`).
    errors : list of (position, reason)
        Every file of the chunk that is not in ``positions``, with why.
    """

    methods: tuple[str, ...]
    positions: np.ndarray
    hashes: np.ndarray
    width: np.ndarray
    height: np.ndarray
    formats: np.ndarray
    digests: np.ndarray
    errors: list[tuple[int, str]] = field(default_factory=list)


def resize_gray(image: Image.Image, size: tuple[int, int], compat: bool) -> np.ndarray:
    """``image`` (L, or RGB in compat mode) as the uint8 grey array a hash of input ``size`` reads."""
    if compat:
        if image.mode == "L":
            # A grayscale source: imagededup resizes (v, v, v) and converts to L, which
            # gives v again (19595 + 38470 + 7471 == 65536), so resizing the single
            # band is bit-identical and a third of the work.
            return np.asarray(lanczos_resize(image, size), dtype=np.uint8)
        # imagededup resizes the RGB image, then converts to grayscale.
        return np.asarray(lanczos_resize(image, size).convert("L"), dtype=np.uint8)
    return np.asarray(image.resize(size, Image.LANCZOS, reducing_gap=REDUCING_GAP), dtype=np.uint8)


def hash_image_bytes(
    data: bytes, methods: Sequence[str], compat: bool, max_pixels: int, *, fast: bool = True
) -> tuple[list[np.ndarray], tuple[int, int], str]:
    """Decode one file's bytes into the grayscale arrays each method hashes.

    Returns the arrays (one per method), the image size and its format.
    Raises :class:`ImageLoadError` when the bytes are not a usable image; no
    other exception escapes (an unexpected one is reported with its type).

    The file is opened once. ``compat`` follows imagededup 0.3.3 bit for bit.
    Otherwise the default path decodes only what the largest hash input needs
    (``fast=False`` decodes at full size instead, for comparisons). With no
    ``methods`` only the header is read (size, format): the pixels are left to
    the embed task, which decodes them anyway and records a file it cannot decode.
    """
    image = open_image(data, max_pixels)
    try:
        image_format = image.info.get("raw_format") or image.format or "unknown"
        if not methods:
            return [], oriented_size(image), image_format
        if compat:
            size = image.size
            pixels = compat_rgb(image, keep_gray=True)
        else:
            size = oriented_size(image)
            largest = max((HASH_INPUT_SIZES[m] for m in methods), key=lambda s: s[0] * s[1])
            pixels = load_opened(image, mode="L", draft_size=largest if fast else None)
        arrays = [resize_gray(pixels, HASH_INPUT_SIZES[m], compat) for m in methods]
    except ImageLoadError:
        raise
    except MemoryError:
        raise ImageLoadError("out of memory while decoding") from None
    except Exception as exc:  # Pillow and its plugins raise many types on malformed data
        raise ImageLoadError(f"cannot decode image: {type(exc).__name__}: {exc}") from None
    return arrays, size, image_format


def hash_images(
    root: str | os.PathLike,
    records: Sequence[FileRecord],
    start: int,
    methods: Sequence[str],
    compat: bool = False,
    max_pixels: int = 178_956_970,
    *,
    fast: bool = True,
    check_unchanged: bool = True,
) -> HashChunk:
    """Hash every file of one chunk; unreadable files become recorded errors.

    ``start`` is the position of ``records[0]`` in the run's file list. Every
    record ends up either hashed or in ``errors`` with a reason. With
    ``check_unchanged`` (the default) a file whose size or mtime differs from
    its record is not read but recorded as changed after discovery (see
    :func:`imgdedup.imaging.discover.read_bytes`).
    """
    methods = tuple(methods)
    pixels: list[list[np.ndarray]] = [[] for _ in methods]
    positions, widths, heights, formats, digests = [], [], [], [], []
    errors: list[tuple[int, str]] = []
    for offset, record in enumerate(records):
        position = start + offset
        try:
            data = read_bytes(root, record, check_unchanged=check_unchanged)
            digest = content_digest(data)
            arrays, (width, height), image_format = hash_image_bytes(data, methods, compat, max_pixels, fast=fast)
        except ImageLoadError as exc:
            errors.append((position, exc.reason))
            continue
        except MemoryError:
            errors.append((position, "out of memory while reading or decoding"))
            continue
        for bucket, array in zip(pixels, arrays):
            bucket.append(array)
        positions.append(position)
        widths.append(width)
        heights.append(height)
        formats.append(image_format)
        digests.append(digest)
    n = len(positions)
    hashes = np.zeros((n, len(methods)), dtype=np.uint64)
    for column, (method, bucket) in enumerate(zip(methods, pixels)):
        if bucket:
            hashes[:, column] = hash_pixels(method, np.stack(bucket))
    return HashChunk(
        methods=methods,
        positions=np.asarray(positions, dtype=np.int64),
        hashes=hashes,
        width=np.asarray(widths, dtype=np.int32),
        height=np.asarray(heights, dtype=np.int32),
        formats=np.asarray(formats, dtype=str),
        digests=np.asarray(digests, dtype="U32"),
        errors=errors,
    )
