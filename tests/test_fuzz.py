"""Fuzzing the decoders: mutated image bytes never crash, hang or escape as anything but ImageLoadError.

Seeds are small valid PNG, JPEG (baseline and progressive), GIF, BMP, TIFF,
WebP, ICO and PPM files. Hypothesis flips bits, overwrites, inserts and
deletes bytes, truncates, and splices two seeds together. Each example must
either hash (arrays of the right shapes) or raise :class:`ImageLoadError` with
a reason, within a few seconds: decoding is bounded by ``max_pixels`` (1 Mpx
here; a header claiming more is refused before decoding). The examples are
derandomised so CI sees the same ones every run; set ``IMGDEDUP_FUZZ_EXAMPLES``
to run more (and ``IMGDEDUP_FUZZ_RANDOM=1`` for fresh ones).
"""

from __future__ import annotations

import io
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from imgdedup.errors import ImageLoadError
from imgdedup.imaging.discover import FileRecord
from imgdedup.imaging.hash_chunk import hash_image_bytes, hash_images
from imgdedup.sample import random_scene

METHODS = ("phash", "dhash", "ahash", "whash")
SHAPES = {"phash": (32, 32), "dhash": (8, 9), "ahash": (8, 8), "whash": (256, 256)}
MAX_PIXELS = 1_000_000
SECONDS_PER_FILE = 5.0
EXAMPLES = int(os.environ.get("IMGDEDUP_FUZZ_EXAMPLES", "200"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,  # bounded by the wall-clock assertion instead (the first example pays imports)
    derandomize=not os.environ.get("IMGDEDUP_FUZZ_RANDOM"),
    database=None,  # write nothing into the working tree
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _seeds() -> list[bytes]:
    image = random_scene(np.random.default_rng(0), (48, 36))
    out = []
    for fmt, kwargs, mode in [
        ("PNG", {}, "RGB"),
        ("PNG", {}, "P"),
        ("PNG", {}, "RGBA"),
        ("JPEG", {"quality": 80}, "RGB"),
        ("JPEG", {"progressive": True}, "RGB"),
        ("JPEG", {}, "CMYK"),
        ("GIF", {}, "P"),
        ("BMP", {}, "RGB"),
        ("TIFF", {}, "RGB"),
        ("TIFF", {"compression": "tiff_lzw"}, "L"),
        ("WEBP", {"quality": 80}, "RGB"),
        ("WEBP", {"lossless": True}, "RGBA"),
        ("ICO", {}, "RGBA"),
        ("PPM", {}, "RGB"),
    ]:
        buffer = io.BytesIO()
        image.convert(mode).save(buffer, fmt, **kwargs)
        out.append(buffer.getvalue())
    return out


SEEDS = _seeds()


@st.composite
def mutated(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "overwrite", "insert", "delete", "truncate", "splice"]))
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=8))
            data[at : at + len(chunk)] = chunk
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=32))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        elif kind == "truncate":
            del data[at:]
        else:
            other = draw(st.sampled_from(SEEDS))
            cut = draw(st.integers(0, len(other)))
            data = data[:at] + bytearray(other[cut:])
    return bytes(data)


def check_result(data: bytes, compat: bool) -> None:
    started = time.perf_counter()
    try:
        arrays, (width, height), fmt = hash_image_bytes(data, METHODS, compat, MAX_PIXELS)
    except ImageLoadError as exc:
        assert isinstance(exc.reason, str) and exc.reason.strip()
    else:
        assert [a.shape for a in arrays] == [SHAPES[m] for m in METHODS]
        assert all(a.dtype == np.uint8 for a in arrays)
        assert 1 <= width * height <= MAX_PIXELS and fmt
    assert time.perf_counter() - started < SECONDS_PER_FILE


def test_seeds_are_valid_images():
    for data in SEEDS:
        for compat in (False, True):
            if compat and Image.open(io.BytesIO(data)).format == "ICO":
                continue  # imagededup does not read ICO
            arrays, _, _ = hash_image_bytes(data, METHODS, compat, MAX_PIXELS)
            assert len(arrays) == len(METHODS)


@FUZZ
@given(data=mutated(), compat=st.booleans())
def test_mutated_bytes_hash_or_raise_image_load_error(data, compat):
    check_result(data, compat)


@settings(FUZZ, max_examples=max(EXAMPLES // 10, 10))
@given(files=st.lists(mutated(), min_size=1, max_size=8), compat=st.booleans())
def test_a_chunk_of_mutated_files_accounts_for_every_file(files, compat):
    with tempfile.TemporaryDirectory() as folder:
        records = []
        for k, data in enumerate(files):
            path = Path(folder) / f"f{k}.img"
            path.write_bytes(data)
            st_ = path.stat()
            records.append(FileRecord(path.name, st_.st_size, st_.st_mtime_ns))
        started = time.perf_counter()
        chunk = hash_images(folder, records, 100, METHODS, compat=compat, max_pixels=MAX_PIXELS)
        assert time.perf_counter() - started < SECONDS_PER_FILE * len(files)
    hashed = chunk.positions.tolist()
    failed = [p for p, _ in chunk.errors]
    assert sorted(hashed + failed) == list(range(100, 100 + len(files)))
    assert all(reason.strip() for _, reason in chunk.errors)
    assert chunk.hashes.shape == (len(hashed), len(METHODS))


@pytest.mark.parametrize("seed", range(len(SEEDS)))
def test_every_truncation_of_every_seed(seed):
    """Exhaustive over cut points (every 7th byte): truncation is the commonest real damage."""
    data = SEEDS[seed]
    for cut in range(0, len(data), 7):
        check_result(data[:cut], compat=False)
