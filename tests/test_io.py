import os

import numpy as np
import pytest
from PIL import Image

from imgdedup.errors import ImageLoadError, InputError
from imgdedup.io import content_digest, discover_images, load_image, open_image, oriented_size
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
    assert len(content_digest(b"")) == 32


@pytest.mark.parametrize(
    "data,reason",
    [(b"", "empty file"), (b"hello, this is text", "not an image"), (b"\xff\xd8\xff\xe0" + b"\x00" * 40, "not an image")],
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
