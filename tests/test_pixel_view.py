"""imgdedup.imaging.pixel_view: Pillow's pixels without a copy, or None where that is not possible."""

import gc

import numpy as np
import pytest
from PIL import Image

from imgdedup.imaging.lanczos import lanczos_resize
from imgdedup.imaging.pixel_view import pixel_lines


def _noise(mode: str, width: int = 57, height: int = 31) -> Image.Image:
    bands = len(Image.new(mode, (1, 1)).getbands())
    shape = (height, width, bands) if bands > 1 else (height, width)
    return Image.fromarray(np.random.default_rng(width * height).integers(0, 256, shape, dtype=np.uint8), mode)


@pytest.mark.parametrize("mode, stride", [("RGB", 4), ("L", 1)])
def test_view_holds_the_same_pixels_as_a_copy(mode, stride):
    image = _noise(mode)
    lines, found_stride = pixel_lines(image)  # pyproject asks for Pillow >= 11.2, which exports Arrow arrays
    assert found_stride == stride
    assert lines.shape == (image.height, image.width * stride)
    assert not lines.flags.writeable
    pixels = lines.reshape(image.height, image.width, stride)
    expected = np.asarray(image)
    np.testing.assert_array_equal(pixels[:, :, :3] if mode == "RGB" else pixels[:, :, 0], expected)


def test_view_outlives_the_image():
    image = _noise("RGB")
    expected = np.asarray(image).copy()
    view = pixel_lines(image)
    del image
    gc.collect()
    Image.new("RGB", (57, 31), (1, 2, 3)).load()  # reuse of freed memory would show here
    np.testing.assert_array_equal(view[0].reshape(31, 57, 4)[:, :, :3], expected)


def test_other_modes_and_empty_images_give_none():
    assert pixel_lines(_noise("RGBA")) is None
    assert pixel_lines(_noise("RGB").convert("P")) is None
    assert pixel_lines(Image.new("RGB", (0, 5))) is None


def test_rows_in_several_blocks_give_none_and_resize_still_matches_pillow():
    previous = Image.core.get_block_size()
    Image.core.set_block_size(4096)  # 57 x 4 bytes a row: a 120-row image spans several blocks
    try:
        image = _noise("RGB", 57, 120)
        assert pixel_lines(image) is None
        expected = np.asarray(image.resize((32, 32), Image.LANCZOS))
        for _ in range(2):  # the second image of a geometry takes the kernel, here on a copy of the pixels
            np.testing.assert_array_equal(np.asarray(lanczos_resize(image, (32, 32))), expected)
    finally:
        Image.core.set_block_size(previous)


def test_compat_workers_hold_a_12_mp_photograph_in_one_block(monkeypatch):
    from imgdedup.imaging.lanczos import _images_in_one_block

    monkeypatch.delenv("PILLOW_BLOCK_SIZE", raising=False)
    previous = Image.core.get_block_size()
    Image.core.set_block_size(16 << 20)  # Pillow's default
    try:
        assert pixel_lines(Image.new("RGB", (4000, 3000))) is None  # 48 MB as RGBX: three blocks, so a copy
        _images_in_one_block()  # what a worker's first compat resize does
        lines, stride = pixel_lines(Image.new("RGB", (4000, 3000), (1, 2, 3)))
        assert stride == 4 and lines.shape == (3000, 16000)
        assert (lines.reshape(3000, 4000, 4)[:, :, :3] == (1, 2, 3)).all()
    finally:
        Image.core.set_block_size(previous)
