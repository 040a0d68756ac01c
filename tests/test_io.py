import io
import os

import numpy as np
import pytest
from PIL import Image

from imgdedup.errors import ImageLoadError, InputError
from imgdedup.imaging.decode import load_image, open_image, oriented_size
from imgdedup.imaging.discover import content_digest, digest_hasher, discover_images
from tests.images import write_varied_images


def test_discovery_is_sorted_recursive_and_skips_hidden(tmp_path):
    """Ids are relative paths in byte order; hidden files and folders are skipped."""
    for name in ["b.jpg", "a.txt", "sub/z.png", "sub/a.png", ".hidden.jpg", ".cache/x.jpg"]:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    assert [r.id for r in discover_images(tmp_path)] == ["a.txt", "b.jpg", "sub/a.png", "sub/z.png"]
    assert [r.id for r in discover_images(tmp_path, recursive=False)] == ["a.txt", "b.jpg"]


def test_discovery_fingerprints_size_and_mtime(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"12345")
    os.utime(path, ns=(1_000_000_000, 2_000_000_000))
    (record,) = discover_images(tmp_path)
    assert (record.size, record.mtime_ns) == (5, 2_000_000_000)


def test_non_utf8_name_keeps_its_bytes(tmp_path):
    raw = os.fsencode(tmp_path) + b"/caf\xe9.png"
    Image.new("RGB", (8, 8)).save(os.fsdecode(raw), "PNG")
    (record,) = discover_images(tmp_path)
    assert os.fsencode(record.id) == b"caf\xe9.png"


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        discover_images(tmp_path / "nope")
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(InputError, match="is not a folder"):
        discover_images(tmp_path / "file")


def test_digest_finds_byte_identical_content():
    assert content_digest(b"abc") == content_digest(b"abc")
    assert content_digest(b"abc") != content_digest(b"abd")
    assert len(content_digest(b"")) == 30
    # BLAKE3's published test vector for the empty input, cut to 120 bits
    assert content_digest(b"") == "af1349b9f5f9a1a6a0404dea36dcc9"


def test_digest_hasher_follows_the_algorithm_of_the_digest_it_is_given():
    import hashlib

    legacy = hashlib.blake2b(b"abc", digest_size=16).hexdigest()  # runs and stores of earlier versions
    for like, expected in ((legacy, legacy), (content_digest(b"x"), content_digest(b"abc"))):
        hasher = digest_hasher(like)
        hasher.update(b"a")
        hasher.update(b"bc")
        assert hasher.hexdigest() == expected


@pytest.mark.parametrize(
    "data,reason",
    [
        (b"", "empty file"),
        (b"hello, this is text", "not an image"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 40, "not an image"),
    ],
)
def test_bad_bytes_raise_image_load_error(data, reason):
    with pytest.raises(ImageLoadError, match=reason):
        load_image(data)


def test_pixel_limit_refuses_before_decoding(tmp_path):
    path = tmp_path / "big.png"
    Image.new("L", (400, 300)).save(path)
    with pytest.raises(ImageLoadError, match="above max_image_pixels=1000"):
        open_image(path.read_bytes(), max_pixels=1000)


def test_exif_orientation_is_applied(tmp_path):
    image = Image.new("RGB", (60, 20), (255, 0, 0))
    image.paste((0, 0, 255), (0, 0, 10, 20))  # blue strip on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW to display
    path = tmp_path / "o.jpg"
    image.save(path, "JPEG", exif=exif.tobytes(), quality=95)
    data = path.read_bytes()
    loaded = load_image(data)
    assert loaded.size == (20, 60)
    assert oriented_size(open_image(data, 10**9)) == (20, 60)
    top = np.asarray(loaded)[2, 10]
    assert top[2] > 200 and top[0] < 60  # the left strip is now on top


def test_transparency_is_composited_on_white(tmp_path):
    image = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    path = tmp_path / "t.png"
    image.save(path)
    assert np.asarray(load_image(path.read_bytes())).min() == 255
    assert np.asarray(load_image(path.read_bytes(), mode="L")).min() == 255


def test_sixteen_bit_is_scaled_not_clipped(tmp_path):
    array = np.full((4, 4), 32768, dtype=np.uint16)
    path = tmp_path / "g16.png"
    Image.fromarray(array).save(path)
    assert np.asarray(load_image(path.read_bytes(), mode="L")).tolist() == [[128] * 4] * 4


def test_every_generated_format_loads_in_rgb_and_gray(tmp_path):
    for path in write_varied_images(tmp_path):
        data = path.read_bytes()
        assert load_image(data).mode == "RGB", path.name
        assert load_image(data, mode="L", draft_size=(32, 32)).mode == "L", path.name


# --- the default path decodes only what the hash needs ---------------------------------


def _photo_like(size=(1632, 1224), seed=0):
    from imgdedup.sample import random_scene

    return random_scene(np.random.default_rng(seed), size)


def test_jpeg_draft_decodes_luma_at_the_smallest_sufficient_scale(tmp_path):
    from imgdedup.imaging.decode import load_opened

    path = tmp_path / "big.jpg"
    _photo_like().save(path, "JPEG", quality=90)
    image = open_image(path.read_bytes(), 10**9)
    gray = load_opened(image, mode="L", draft_size=(32, 32))
    # 1632 x 1224 at 1/8 is 204 x 153 (both sides >= 32); libjpeg decoded luma only.
    assert image.size == (204, 153) and image.mode == "L"
    assert gray.mode == "L" and min(gray.size) >= 32
    # whash needs 256 x 256: 1/4 is the smallest scale keeping both sides >= 256.
    image = open_image(path.read_bytes(), 10**9)
    load_opened(image, mode="L", draft_size=(256, 256))
    assert image.size == (408, 306)


def test_other_formats_are_box_reduced_early(tmp_path):
    path = tmp_path / "big.png"
    _photo_like((1600, 1200)).save(path)
    gray = load_image(path.read_bytes(), mode="L", draft_size=(32, 32))
    assert gray.size == (100, 100)  # factors 16 x 12: both sides stay >= 3 x 32


@pytest.mark.parametrize("size", [(1920, 1080), (1080, 1920), (590, 1996), (2560, 1080)])
@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_a_copy_resized_to_its_longer_side_keeps_its_shape(size, fmt):
    """Verification's evidence and thumbnails come from a copy scaled to its longer side: it must keep the
    picture's aspect ratio (a 1080 x 1920 PNG was box-reduced to 1080 x 960, wider than tall), while
    it is still reduced early (one factor, the longer side staying >= 3 x 320)."""
    from imgdedup.imaging.describe import describe_image

    buffer = io.BytesIO()
    _photo_like(size).save(buffer, fmt)
    data = buffer.getvalue()
    image = load_image(data, mode="RGB", draft_size=(320, 320), keep_aspect=True)
    assert abs(image.size[0] / image.size[1] - size[0] / size[1]) < 0.01 * size[0] / size[1]
    assert 320 <= max(image.size) < 2 * 3 * 320
    evidence = describe_image(data)
    assert max(evidence.size) == 320 and evidence.full_size == size
    assert round(320 * min(size) / max(size)) - 1 <= min(evidence.size) <= round(320 * min(size) / max(size)) + 1
    assert (evidence.size[0] > evidence.size[1]) == (size[0] > size[1])


def test_thumbnails_keep_the_shape_of_long_pictures(tmp_path):
    from imgdedup.review.thumbnails import make_thumbnails

    folder = tmp_path / "pictures"
    folder.mkdir()
    members = []
    for name, size in [("wide.png", (2400, 400)), ("tall.png", (500, 1900))]:
        _photo_like(size).save(folder / name)
        members.append({"path": name, "bytes": (folder / name).stat().st_size, "digest": name[:4]})
    sources = make_thumbnails(str(folder), members, tmp_path / "thumbs", 160)
    shapes = {digest: Image.open(tmp_path / src).size for digest, src in sources.items()}
    assert shapes == {"wide": (160, 27), "tall": (42, 160)}


def test_fast_path_agrees_with_full_decode(tmp_path):
    from imgdedup.imaging.hash_chunk import hash_image_bytes
    from imgdedup.imaging.hashing import hash_pixels

    methods = ("phash", "dhash", "ahash", "whash")
    for seed, (fmt, ext) in enumerate([("JPEG", "jpg"), ("PNG", "png"), ("WEBP", "webp"), ("JPEG", "jpg")]):
        path = tmp_path / f"p{seed}.{ext}"
        _photo_like((1200 + 37 * seed, 900), seed).save(path, fmt)
        fast, size, _ = hash_image_bytes(path.read_bytes(), methods, False, 10**9)
        full, full_size, _ = hash_image_bytes(path.read_bytes(), methods, False, 10**9, fast=False)
        assert size == full_size
        for method, a, b in zip(methods, fast, full):
            distance = bin(int(hash_pixels(method, a)) ^ int(hash_pixels(method, b))).count("1")
            assert distance <= 4, (path.name, method, distance)


def test_each_file_is_opened_once(tmp_path, monkeypatch):
    """hash_image_bytes opens the bytes once (no probe-then-load), in both paths."""
    from PIL import Image as PILImage

    from imgdedup.imaging.hash_chunk import hash_image_bytes

    path = tmp_path / "once.jpg"
    _photo_like((320, 240)).save(path, "JPEG")
    calls = []
    real_open = PILImage.open
    monkeypatch.setattr(PILImage, "open", lambda *a, **k: calls.append(1) or real_open(*a, **k))
    for compat in (False, True):
        calls.clear()
        hash_image_bytes(path.read_bytes(), ("phash", "dhash"), compat, 10**9)
        assert len(calls) == 1


# --- reading -------------------------------------------------------------------------------


def test_read_bytes_reasons(tmp_path):
    from imgdedup.imaging.discover import FileRecord, read_bytes

    (tmp_path / "f.bin").write_bytes(b"12345")
    st = (tmp_path / "f.bin").stat()
    assert read_bytes(tmp_path, FileRecord("f.bin", 5, st.st_mtime_ns), check_unchanged=True) == b"12345"
    with pytest.raises(ImageLoadError, match=r"changed after discovery \(size 4 -> 5 bytes"):
        read_bytes(tmp_path, FileRecord("f.bin", 4, st.st_mtime_ns), check_unchanged=True)
    assert read_bytes(tmp_path, FileRecord("f.bin", 4, 0)) == b"12345"  # no check unless asked
    with pytest.raises(ImageLoadError, match="file missing"):
        read_bytes(tmp_path, FileRecord("nope.bin", 1, 0))
    (tmp_path / "d").mkdir()
    with pytest.raises(ImageLoadError, match="is a directory"):
        read_bytes(tmp_path, FileRecord("d", -1, 0))
    os.mkfifo(tmp_path / "p")
    with pytest.raises(ImageLoadError, match="FIFO"):
        read_bytes(tmp_path, FileRecord("p", 0, 0))


def test_special_files_are_listed_so_they_are_reported(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    os.symlink("missing", tmp_path / "dangling")
    (tmp_path / "sub").mkdir()
    os.symlink(tmp_path / "sub", tmp_path / "linked-folder")
    assert [(r.id, r.size) for r in discover_images(tmp_path)] == [("dangling", -1), ("pipe", 0)]


# --- optional plugins ---------------------------------------------------------------------


def test_plugins_are_registered_lazily():
    """Importing the imaging modules imports no optional plugin; opening an image registers them."""
    import subprocess
    import sys

    code = (
        "import sys, imgdedup.imaging.decode as m, imgdedup.imaging.hash_chunk\n"
        "assert 'pillow_heif' not in sys.modules and 'torch' not in sys.modules, 'eager import'\n"
        "print(sorted(k for k, v in m.register_optional_plugins().items() if v))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    import ast

    from PIL import features

    available = ast.literal_eval(result.stdout.strip())
    assert ("avif" in available) == (features.check("avif") or _installed("pillow_avif"))
    assert ("heif" in available) == _installed("pillow_heif")


def _installed(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None
