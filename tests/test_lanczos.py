"""imgdedup.imaging.lanczos gives Pillow's LANCZOS bytes exactly: compat hashes depend on it."""

import numpy as np
import pytest
from PIL import Image

from imgdedup.imaging.lanczos import lanczos_array, lanczos_resize, pass_order


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_equals_pillow_on_random_geometries(mode):
    rng = np.random.default_rng(11 if mode == "RGB" else 12)
    checked = 0
    for _ in range(40):
        w, h = (int(v) for v in rng.integers(1, 700, size=2))
        shape = (h, w, 3) if mode == "RGB" else (h, w)
        image = Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode)
        sizes = [
            (32, 32),
            (9, 8),
            (8, 8),
            (256, 256),
            (w, int(rng.integers(1, 300))),
            (int(rng.integers(1, 300)), h),
            tuple(int(v) for v in rng.integers(1, 400, size=2)),
        ]
        pixels = np.asarray(image)
        for size in sizes:
            expected = np.asarray(image.resize(size, Image.LANCZOS))
            found = lanczos_array(pixels if mode == "RGB" else pixels[:, :, None], size)
            assert found is not None, f"{w}x{h} -> {size}: pass order not read off"
            np.testing.assert_array_equal(
                found if mode == "RGB" else found[:, :, 0], expected, err_msg=f"{w}x{h} -> {size}"
            )
            # through Pillow's own memory (the second image of a geometry takes the kernel)
            for _ in range(2):
                np.testing.assert_array_equal(
                    np.asarray(lanczos_resize(image, size)), expected, err_msg=f"{w}x{h} -> {size}"
                )
            checked += 1
    assert checked == 280


def test_equals_pillow_on_photographs_both_orientations():
    from sklearn.datasets import load_sample_images

    for array in load_sample_images().images:
        photo = Image.fromarray(array)
        for image in (photo, photo.transpose(Image.Transpose.ROTATE_90), photo.convert("L")):
            for size in ((32, 32), (9, 8), (256, 256)):
                expected = np.asarray(image.resize(size, Image.LANCZOS))
                for _ in range(2):  # Pillow on first sight, then the kernel
                    np.testing.assert_array_equal(np.asarray(lanczos_resize(image, size)), expected)


def test_other_modes_and_same_size_go_to_pillow():
    rgba = Image.new("RGBA", (40, 30), (10, 20, 30, 128))
    assert np.array_equal(np.asarray(lanczos_resize(rgba, (8, 8))), np.asarray(rgba.resize((8, 8), Image.LANCZOS)))
    same = Image.new("RGB", (8, 8), (1, 2, 3))
    assert lanczos_resize(same, (8, 8)).tobytes() == same.tobytes()
    assert pass_order(1632, 1224, 3, (32, 32)) in (False, True)


def test_a_geometry_is_probed_only_from_its_second_image_on():
    image = Image.fromarray(np.random.default_rng(3).integers(0, 256, (201, 307, 3), dtype=np.uint8))
    expected = np.asarray(image.resize((13, 11), Image.LANCZOS))
    probes = pass_order.cache_info().misses
    np.testing.assert_array_equal(np.asarray(lanczos_resize(image, (13, 11))), expected)
    assert pass_order.cache_info().misses == probes  # first sight: Pillow's resize, no probe
    np.testing.assert_array_equal(np.asarray(lanczos_resize(image, (13, 11))), expected)
    assert pass_order.cache_info().misses == probes + 1
    np.testing.assert_array_equal(np.asarray(lanczos_resize(image, (13, 11))), expected)
    assert pass_order.cache_info().misses == probes + 1
