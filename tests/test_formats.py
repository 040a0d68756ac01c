"""Every supported format, written by the test itself, hashes like the picture it holds.

Each file is compared with a reference: the same pixels (as the format stores
them) saved as an RGB PNG. Lossless formats must land within a couple of bits of
it, lossy ones within a few. HEIC needs the optional ``pillow-heif`` plugin (the
test is skipped, saying so, without it); AVIF uses Pillow's own plugin, or
``pillow-avif-plugin`` where Pillow was built without libavif.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, features

from imgdedup.errors import ImageLoadError
from imgdedup.imaging.decode import register_optional_plugins
from imgdedup.imaging.discover import FileRecord
from imgdedup.imaging.hash_chunk import hash_image_bytes, hash_images
from imgdedup.sample import random_scene

LIMIT = 10**9


def scene(seed: int = 3, size=(480, 360)) -> Image.Image:
    return random_scene(np.random.default_rng(seed), size)


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def phash_of(data: bytes, compat: bool = False) -> tuple[int, tuple[int, int], str]:
    from imgdedup.imaging.hashing import phash

    arrays, size, fmt = hash_image_bytes(data, ("phash",), compat, LIMIT)
    return int(phash(arrays[0])), size, fmt


def distance(a: int, b: int) -> int:
    return bin(a ^ b).count("1")


def reference(image: Image.Image) -> int:
    """phash of the same pixels as a plain RGB PNG (transparency composited on white)."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        flat = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")
    else:
        flat = image.convert("RGB")
    return phash_of(encode(flat, "PNG"))[0]


def check(data: bytes, expected_format: str, pixels: Image.Image, max_distance: int) -> None:
    value, size, fmt = phash_of(data)
    assert fmt == expected_format
    assert size == pixels.size
    assert distance(value, reference(pixels)) <= max_distance, (expected_format, distance(value, reference(pixels)))


# --- JPEG ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["baseline", "progressive", "gray", "cmyk", "optimized-q60"])
def test_jpeg_variants(kind):
    image = scene()
    if kind == "baseline":
        data = encode(image, "JPEG", quality=92)
    elif kind == "progressive":
        data = encode(image, "JPEG", quality=92, progressive=True)
    elif kind == "gray":
        image = image.convert("L")
        data = encode(image, "JPEG", quality=92)
    elif kind == "cmyk":
        image = image.convert("CMYK")
        data = encode(image, "JPEG", quality=92)
    else:
        data = encode(image, "JPEG", quality=60, optimize=True)
    assert Image.open(io.BytesIO(data)).mode == {"gray": "L", "cmyk": "CMYK"}.get(kind, "RGB")
    check(data, "JPEG", image, 4)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_jpeg_exif_orientation_is_applied(orientation):
    """A file stored sideways with an orientation tag hashes like the upright picture."""
    upright = scene(seed=5, size=(480, 320))
    inverse = {
        1: None,
        2: Image.Transpose.FLIP_LEFT_RIGHT,
        3: Image.Transpose.ROTATE_180,
        4: Image.Transpose.FLIP_TOP_BOTTOM,
        5: Image.Transpose.TRANSPOSE,
        6: Image.Transpose.ROTATE_90,
        7: Image.Transpose.TRANSVERSE,
        8: Image.Transpose.ROTATE_270,
    }[orientation]
    stored = upright if inverse is None else upright.transpose(inverse)
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(stored, "JPEG", quality=95, exif=exif.tobytes())
    value, size, _ = phash_of(data)
    assert size == upright.size
    assert distance(value, reference(upright)) <= 4
    # compat mode (like imagededup) ignores the tag: it sees the stored pixels.
    _, compat_size, _ = phash_of(data, compat=True)
    assert compat_size == stored.size


def test_mpo_first_image():
    left, right = scene(seed=1), scene(seed=2)
    data = encode(left, "MPO", save_all=True, append_images=[right], quality=92)
    assert Image.open(io.BytesIO(data)).format == "MPO"
    check(data, "MPO", left, 4)


# --- PNG ---------------------------------------------------------------------------


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png_rgb16(array: np.ndarray) -> bytes:
    """A 16-bit-per-channel RGB PNG (Pillow cannot write one)."""
    height, width, _ = array.shape
    raw = b"".join(b"\x00" + array[y].astype(">u2").tobytes() for y in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0))
        + _png_chunk(b"IDAT", zlib.compress(raw))
        + _png_chunk(b"IEND", b"")
    )


def test_png_rgb_gray_and_alpha():
    image = scene()
    check(encode(image, "PNG"), "PNG", image, 0)
    gray = image.convert("L")
    check(encode(gray, "PNG"), "PNG", gray, 2)
    rgba = image.convert("RGBA")
    alpha = np.full((image.height, image.width), 255, dtype=np.uint8)
    alpha[:, : image.width // 3] = 0
    rgba.putalpha(Image.fromarray(alpha))
    check(encode(rgba, "PNG"), "PNG", rgba, 2)
    la = gray.convert("LA")
    la.putalpha(Image.fromarray(alpha))
    check(encode(la, "PNG"), "PNG", la, 2)


def test_png_palette_with_and_without_transparency():
    palette = scene().convert("P", palette=Image.Palette.ADAPTIVE, colors=32)
    check(encode(palette, "PNG"), "PNG", palette, 2)
    transparent = palette.copy()
    transparent.info["transparency"] = 0
    data = encode(transparent, "PNG", transparency=0)
    assert "transparency" in Image.open(io.BytesIO(data)).info
    check(data, "PNG", transparent, 2)


def test_png_sixteen_bit_gray_and_rgb():
    image = scene()
    gray16 = np.asarray(image.convert("L"), dtype=np.uint16) * 257
    data = encode(Image.fromarray(gray16), "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    check(data, "PNG", image.convert("L"), 2)
    rgb16 = np.asarray(image, dtype=np.uint16) * 257
    check(png_rgb16(rgb16), "PNG", image, 2)


def test_apng_first_frame():
    first, second = scene(seed=1), scene(seed=2)
    data = encode(first, "PNG", save_all=True, append_images=[second])
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 2
    check(data, "PNG", first, 0)


# --- GIF, BMP, TIFF, PPM family, ICO ------------------------------------------------------


def test_gif_animation_gives_first_frame():
    first = scene(seed=1).convert("P", palette=Image.Palette.ADAPTIVE)
    second = scene(seed=2).convert("P", palette=Image.Palette.ADAPTIVE)
    data = encode(first, "GIF", save_all=True, append_images=[second], duration=100, loop=0)
    assert Image.open(io.BytesIO(data)).n_frames == 2
    check(data, "GIF", first, 2)
    assert distance(phash_of(data)[0], reference(second)) > 10


@pytest.mark.parametrize("mode", ["RGB", "L", "P", "1", "RGBA"])
def test_bmp(mode):
    image = scene().convert(mode)
    check(encode(image, "BMP"), "BMP", image, 2)


def test_tiff_multipage_gives_first_page_and_16_bit():
    first, second = scene(seed=1), scene(seed=2)
    data = encode(first, "TIFF", save_all=True, append_images=[second])
    assert Image.open(io.BytesIO(data)).n_frames == 2
    check(data, "TIFF", first, 0)
    gray16 = Image.fromarray(np.asarray(first.convert("L"), dtype=np.uint16) * 257)
    data16 = encode(gray16, "TIFF")
    assert Image.open(io.BytesIO(data16)).mode == "I;16"
    check(data16, "TIFF", first.convert("L"), 2)
    check(encode(first, "TIFF", compression="tiff_lzw"), "TIFF", first, 0)


@pytest.mark.parametrize("mode,fmt", [("RGB", "PPM"), ("L", "PGM"), ("1", "PBM")])
def test_netpbm(mode, fmt):
    image = scene().convert(mode)
    data = encode(image, "PPM")
    assert data[:2] == {"PPM": b"P6", "PGM": b"P5", "PBM": b"P4"}[fmt]
    check(data, "PPM", image, 2)  # Pillow names the whole family PPM


def test_pgm_sixteen_bit():
    gray = scene().convert("L")
    array = np.asarray(gray, dtype=np.uint16) * 257
    height, width = array.shape
    data = f"P5\n{width} {height}\n65535\n".encode() + array.astype(">u2").tobytes()
    check(data, "PPM", gray, 2)


def test_ico_largest_icon():
    image = scene(size=(256, 256))
    data = encode(image, "ICO", sizes=[(32, 32), (128, 128)])
    opened = Image.open(io.BytesIO(data))
    assert opened.format == "ICO" and opened.size == (128, 128)
    check(data, "ICO", image.resize((128, 128), Image.LANCZOS), 4)


# --- WebP, HEIF, AVIF -----------------------------------------------------------------


def test_webp_lossy_lossless_alpha_and_animation():
    assert features.check("webp"), "Pillow must be built with WebP"
    image = scene()
    check(encode(image, "WEBP", quality=90), "WEBP", image, 4)
    check(encode(image, "WEBP", lossless=True), "WEBP", image, 0)
    rgba = image.convert("RGBA")
    alpha = np.full((image.height, image.width), 255, dtype=np.uint8)
    alpha[: image.height // 2] = 0
    rgba.putalpha(Image.fromarray(alpha))
    check(encode(rgba, "WEBP", lossless=True), "WEBP", rgba, 2)
    second = scene(seed=9)
    animated = encode(image, "WEBP", save_all=True, append_images=[second], lossless=True)
    assert Image.open(io.BytesIO(animated)).n_frames == 2
    check(animated, "WEBP", image, 0)


def test_heic_with_pillow_heif():
    pytest.importorskip("pillow_heif", reason="HEIC/HEIF needs the optional plugin pillow-heif")
    assert register_optional_plugins()["heif"]
    image = scene()
    data = encode(image, "HEIF", quality=90)
    assert data[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1")
    check(data, "HEIF", image, 4)
    rgba = image.convert("RGBA")
    alpha = np.full((image.height, image.width), 255, dtype=np.uint8)
    alpha[:, : image.width // 2] = 0
    rgba.putalpha(Image.fromarray(alpha))
    check(encode(rgba, "HEIF", quality=90), "HEIF", rgba, 6)


def test_heic_stale_thumbnail_is_not_used():
    """The embedded thumbnail of a HEIC file never stands in for the picture."""
    pytest.importorskip("pillow_heif", reason="HEIC/HEIF needs the optional plugin pillow-heif")
    register_optional_plugins()
    image = scene(size=(1024, 768))
    data = encode(image, "HEIF", quality=90, thumbnails=[128])
    assert not Image.open(io.BytesIO(data)).info.get("thumbnails")  # registered with thumbnails=False
    check(data, "HEIF", image, 4)


def test_avif():
    if not features.check("avif"):
        pytest.importorskip("pillow_avif", reason="this Pillow lacks AVIF: it needs pillow-avif-plugin")
    assert register_optional_plugins()["avif"]
    image = scene()
    data = encode(image, "AVIF", quality=90)
    check(data, "AVIF", image, 4)


# --- compat mode and whole chunks ------------------------------------------------------


def test_compat_mode_refuses_formats_imagededup_does_not_read():
    image = scene(size=(64, 64))
    with pytest.raises(ImageLoadError, match="not read by imagededup"):
        hash_image_bytes(encode(image, "ICO"), ("phash",), True, LIMIT)
    # ... and reads the ones it does, in whatever mode.
    for fmt, mode in [("PNG", "P"), ("PNG", "LA"), ("TIFF", "CMYK"), ("GIF", "P"), ("BMP", "1"), ("WEBP", "RGBA")]:
        hash_image_bytes(encode(image.convert(mode), fmt), ("phash",), True, LIMIT)


def test_compat_gray_shortcut_is_bit_identical():
    """compat resizes one band for L/LA sources: the bytes equal imagededup's RGB route."""
    ramp = Image.fromarray(np.tile(np.arange(256, dtype=np.uint8), (256, 1)))
    assert np.array_equal(np.asarray(ramp.convert("RGB").convert("L")), np.asarray(ramp))
    for mode in ("L", "LA"):
        image = scene(seed=11, size=(517, 389)).convert(mode)
        arrays, _, _ = hash_image_bytes(encode(image, "PNG"), ("phash", "dhash", "whash", "ahash"), True, LIMIT)
        rgb = image.convert("RGBA").convert("RGB")
        for array, size in zip(arrays, [(32, 32), (9, 8), (256, 256), (8, 8)]):
            assert np.array_equal(array, np.asarray(rgb.resize(size, Image.LANCZOS).convert("L")))


def test_a_chunk_of_every_format(tmp_path):
    image = scene()
    files = {
        "a.jpg": encode(image, "JPEG", quality=90),
        "b.png": encode(image, "PNG"),
        "c.gif": encode(image.convert("P"), "GIF"),
        "d.bmp": encode(image, "BMP"),
        "e.tif": encode(image, "TIFF"),
        "f.webp": encode(image, "WEBP", quality=90),
        "g.ppm": encode(image, "PPM"),
        "h.ico": encode(image.resize((128, 96)), "ICO"),
    }
    if register_optional_plugins()["avif"]:
        files["i.avif"] = encode(image, "AVIF", quality=90)
    if register_optional_plugins()["heif"]:
        files["j.heic"] = encode(image, "HEIF", quality=90)
    records = []
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        stat = (tmp_path / name).stat()
        records.append(FileRecord(name, stat.st_size, stat.st_mtime_ns))
    chunk = hash_images(tmp_path, records, 0, ("phash", "dhash"))
    assert chunk.errors == []
    assert len(chunk.positions) == len(files)
    for column in range(2):
        values = chunk.hashes[:, column]
        assert max(distance(int(values[0]), int(v)) for v in values) <= 8
