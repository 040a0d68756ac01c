"""imgdedup.lanczos gives Pillow's LANCZOS bytes exactly: compat hashes depend on it."""

import numpy as np
import pytest
from PIL import Image

from imgdedup.lanczos import lanczos_resize, pass_order


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_equals_pillow_on_random_geometries(mode):
    rng = np.random.default_rng(11 if mode == "RGB" else 12)
    checked = 0
    for _ in range(40):
        w, h = (int(v) for v in rng.integers(1, 700, size=2))
        shape = (h, w, 3) if mode == "RGB" else (h, w)
        image = Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode)
        sizes = [(32, 32), (9, 8), (8, 8), (256, 256), (w, int(rng.integers(1, 300))), (int(rng.integers(1, 300)), h),
                 tuple(int(v) for v in rng.integers(1, 400, size=2))]
        for size in sizes:
            expected = np.asarray(image.resize(size, Image.LANCZOS))
            np.testing.assert_array_equal(np.asarray(lanczos_resize(image, size)), expected, err_msg=f"{w}x{h} -> {size}")
            checked += 1
    assert checked == 280


def test_equals_pillow_on_photographs_both_orientations():
    from sklearn.datasets import load_sample_images

    for array in load_sample_images().images:
        photo = Image.fromarray(array)
        for image in (photo, photo.transpose(Image.Transpose.ROTATE_90), photo.convert("L")):
            for size in ((32, 32), (9, 8), (256, 256)):
                np.testing.assert_array_equal(np.asarray(lanczos_resize(image, size)),
                                              np.asarray(image.resize(size, Image.LANCZOS)))


def test_other_modes_and_same_size_go_to_pillow():
    rgba = Image.new("RGBA", (40, 30), (10, 20, 30, 128))
    assert np.array_equal(np.asarray(lanczos_resize(rgba, (8, 8))), np.asarray(rgba.resize((8, 8), Image.LANCZOS)))
    same = Image.new("RGB", (8, 8), (1, 2, 3))
    assert lanczos_resize(same, (8, 8)).tobytes() == same.tobytes()
    assert pass_order(1632, 1224, 3, (32, 32)) in (False, True)
