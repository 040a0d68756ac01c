import numpy as np
import pytest
from PIL import Image

from imgdedup.compat.methods import AHash, DHash, PHash, WHash
from imgdedup.imaging.hashing import (
    HASH_INPUT_SIZES,
    ahash,
    bits_to_uint64,
    dhash,
    hash_pixels,
    hash_to_hex,
    hex_to_hash,
    phash,
    uint64_to_bits,
    whash,
)
from imgdedup.sample import random_scene


def test_bit_layout_table():
    """Element [0, 0] is the most significant bit; row-major; hex is 16 digits, MSB first."""
    cases = {
        (0, 0): "8000000000000000",
        (0, 7): "0100000000000000",
        (1, 0): "0080000000000000",
        (7, 7): "0000000000000001",
        (3, 4): "0000000800000000",
    }
    for (row, col), expected in cases.items():
        bits = np.zeros((8, 8), dtype=bool)
        bits[row, col] = True
        value = bits_to_uint64(bits)[0]
        assert hash_to_hex(value) == expected
        assert np.array_equal(uint64_to_bits(np.uint64(hex_to_hash(expected)))[0], bits)


def test_hex_matches_numpy_packbits():
    """Our hex form equals imagededup's ''.join('%0.2x' % x for x in np.packbits(bits))."""
    rng = np.random.default_rng(3)
    for _ in range(50):
        bits = rng.random((8, 8)) > 0.5
        assert hash_to_hex(bits_to_uint64(bits)[0]) == "".join("%0.2x" % x for x in np.packbits(bits))


@pytest.mark.parametrize("text", ["", "xyz", "1" * 17, None])
def test_hex_to_hash_rejects_bad_text(text):
    with pytest.raises(ValueError, match="1 to 16 hex digits"):
        hex_to_hash(text)


def test_golden_values_on_gradients():
    """Hashes of fixed synthetic arrays never change (a change of bits is a breaking change)."""
    y, x = np.mgrid[0:256, 0:256]
    image = ((x + 2 * y) % 256).astype(np.uint8)
    pil = Image.fromarray(image)
    arrays = {m: np.asarray(pil.resize(HASH_INPUT_SIZES[m], Image.LANCZOS)) for m in HASH_INPUT_SIZES}
    got = {m: hash_to_hex(hash_pixels(m, arrays[m])) for m in arrays}
    # Frozen values; imagededup 0.3.3's encode_image(image_array=image) gives the same four.
    assert got == {
        "ahash": "1e78e1871e78e187",
        "dhash": "fce1873ffce1873f",
        "phash": "ff80d59535e055a5",
        "whash": "1e78e1871e78e187",
    }


def test_dhash_definition_by_hand():
    """dhash bit (r, c) is pixels[r, c + 1] > pixels[r, c]."""
    pixels = np.zeros((8, 9), dtype=np.uint8)
    pixels[0, 1] = 10  # [0,1] > [0,0] -> bit (0,0) set; [0,2] < [0,1] -> bit (0,1) clear
    assert hash_to_hex(dhash(pixels)) == "8000000000000000"


def test_ahash_is_inclusive_of_the_mean():
    """ahash sets a bit where the pixel is >= the mean (a flat image is all ones)."""
    assert hash_to_hex(ahash(np.full((8, 8), 7, dtype=np.uint8))) == "ffffffffffffffff"


@pytest.mark.parametrize("function,shape", [(ahash, (8, 8)), (dhash, (8, 9)), (phash, (32, 32)), (whash, (256, 256))])
def test_wrong_shape_is_a_clear_error(function, shape):
    with pytest.raises(ValueError, match=r"shape"):
        function(np.zeros((shape[0] + 1, shape[1]), dtype=np.uint8))


def test_batch_equals_single():
    """Hashing a stack gives the same values as hashing each array alone."""
    rng = np.random.default_rng(5)
    for method, (w, h) in HASH_INPUT_SIZES.items():
        stack = rng.integers(0, 256, (6, h, w), dtype=np.uint8)
        batch = hash_pixels(method, stack)
        assert [int(v) for v in batch] == [int(hash_pixels(method, a)) for a in stack]


def test_unknown_method_is_named():
    with pytest.raises(ValueError, match="`method` must be one of"):
        hash_pixels("md5", np.zeros((8, 8)))


def _distance(a: str, b: str) -> int:
    return bin(int(a, 16) ^ int(b, 16)).count("1")


@pytest.mark.parametrize("cls", [PHash, DHash, AHash, WHash])
def test_small_rotation_stays_close_and_unrelated_is_far(cls, tmp_path):
    rng = np.random.default_rng(11)
    scene = random_scene(rng)
    other = random_scene(rng)
    hasher = cls(verbose=False)
    base = hasher.encode_image(image_array=np.asarray(scene))
    rotated = hasher.encode_image(
        image_array=np.asarray(scene.rotate(2, resample=Image.BILINEAR, fillcolor=(128, 128, 128)))
    )
    unrelated = hasher.encode_image(image_array=np.asarray(other))
    assert _distance(base, rotated) <= 12
    assert _distance(base, unrelated) > 16
