"""Decoding on threads leaves the process's warning filters as they were (``catch_warnings`` is not
thread-safe: interleaved threads restore each other's lists and leave an ``ignore`` behind)."""

import struct
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

from imgdedup.errors import ImageLoadError
from imgdedup.imaging.hash_chunk import hash_image_bytes
from imgdedup.review.report import make_thumbnails


def test_threaded_decoding_leaves_warning_filters_unchanged(tmp_path):
    rng = np.random.default_rng(3)
    members = []
    for k in range(160):
        path = tmp_path / "photos" / f"{k:03d}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(path)
        members.append({"path": path.name, "bytes": path.stat().st_size, "digest": f"{k:030x}"})
    before = list(warnings.filters)
    for round_ in range(3):
        thumbs = make_thumbnails(str(tmp_path / "photos"), members, tmp_path / f"thumbs-{round_}", 16, workers=8)
        assert len(thumbs) == len(members)
    assert warnings.filters == before
    with pytest.raises(UserWarning):  # nothing silences the rest of the process (pytest turns warnings into errors)
        warnings.warn("still seen", UserWarning, stacklevel=1)


def png_header(width: int, height: int) -> bytes:
    """A PNG of that size with no pixel data (its header is all Pillow reads on open)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        + chunk(b"IEND", b"")
    )


def test_pillow_warning_on_open_does_not_change_the_reason():
    """Pillow warns (DecompressionBombWarning) on a 90-megapixel header; the file is refused by our limit."""
    assert 10_000 * 9_000 > Image.MAX_IMAGE_PIXELS
    with pytest.raises(ImageLoadError, match="above max_image_pixels=1000000"):
        hash_image_bytes(png_header(10_000, 9_000), ("phash",), compat=False, max_pixels=10**6)
