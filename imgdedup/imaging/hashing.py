"""The four 64-bit perceptual hashes, as imagededup 0.3.3 defines them.

Each hash turns a grayscale array into an 8 x 8 boolean matrix; the matrix is
packed row-major into a ``uint64`` with element ``[0, 0]`` as the most
significant bit (bit 63) and ``[7, 7]`` as bit 0. The hex form is those 64 bits
as 16 lowercase hex digits, most significant first, which is exactly
imagededup's ``''.join('%0.2x' % x for x in np.packbits(hash_mat))``.

==========  ====================  ===============================================
method      input (rows x cols)   bit is 1 where
==========  ====================  ===============================================
``ahash``   8 x 8                 pixel >= mean of the 64 pixels
``dhash``   8 x 9                 pixel > its left neighbour (columns 1..8 vs 0..7)
``phash``   32 x 32               top-left 8 x 8 of the 2-D DCT-II >= median of
                                  those 64 coefficients without the DC term
``whash``   256 x 256             level-5 Haar LL band of pixels/255 >= its median
==========  ====================  ===============================================

Every function takes a stack ``(N, rows, cols)`` or a single ``(rows, cols)``
array and returns ``(N,)`` or a scalar ``uint64``.
"""

from __future__ import annotations

import numpy as np

#: Grayscale input size (width, height) each method resizes to, as in imagededup.
HASH_INPUT_SIZES: dict[str, tuple[int, int]] = {
    "ahash": (8, 8),
    "dhash": (9, 8),
    "phash": (32, 32),
    "whash": (256, 256),
}

_BIT_WEIGHTS = np.left_shift(np.uint64(1), np.arange(63, -1, -1, dtype=np.uint64))


def bits_to_uint64(bits: np.ndarray) -> np.ndarray:
    """Pack ``(N, 8, 8)`` booleans into ``(N,)`` uint64, row-major, ``[0, 0]`` = bit 63."""
    flat = np.asarray(bits, dtype=bool).reshape(-1, 64)
    # A dot product in uint64 never carries: each weight is a distinct power of two.
    return (flat.astype(np.uint64) * _BIT_WEIGHTS).sum(axis=1, dtype=np.uint64)


def uint64_to_bits(hashes: np.ndarray) -> np.ndarray:
    """Inverse of :func:`bits_to_uint64`: ``(N,)`` uint64 -> ``(N, 8, 8)`` booleans."""
    values = np.asarray(hashes, dtype=np.uint64).reshape(-1, 1)
    return ((values & _BIT_WEIGHTS) != 0).reshape(-1, 8, 8)


def hash_to_hex(value: int | np.integer) -> str:
    """16 lowercase hex digits, most significant bit first (imagededup's form)."""
    return format(int(value), "016x")


def hex_to_hash(text: str) -> int:
    """Parse imagededup's hex form back to an int; rejects anything but 1-16 hex digits."""
    if not isinstance(text, str) or not 1 <= len(text) <= 16:
        raise ValueError(f"a hash must be 1 to 16 hex digits, got {text!r}")
    try:
        return int(text, 16)
    except ValueError:
        raise ValueError(f"a hash must be 1 to 16 hex digits, got {text!r}") from None


def _stack(pixels: np.ndarray, rows: int, cols: int, name: str) -> tuple[np.ndarray, bool]:
    array = np.asarray(pixels)
    single = array.ndim == 2
    if single:
        array = array[np.newaxis]
    if array.ndim != 3 or array.shape[1:] != (rows, cols):
        raise ValueError(
            f"{name} needs grayscale arrays of shape ({rows}, {cols}) or (N, {rows}, {cols}), got {np.shape(pixels)}"
        )
    return array, single


def _finish(hashes: np.ndarray, single: bool) -> np.ndarray:
    return hashes[0] if single else hashes


def ahash(pixels: np.ndarray) -> np.ndarray:
    """Average hash of ``(N, 8, 8)`` grayscale pixels."""
    array, single = _stack(pixels, 8, 8, "ahash")
    mean = array.mean(axis=(1, 2), keepdims=True)
    return _finish(bits_to_uint64(array >= mean), single)


def dhash(pixels: np.ndarray) -> np.ndarray:
    """Difference hash of ``(N, 8, 9)`` grayscale pixels (8 rows, 9 columns)."""
    array, single = _stack(pixels, 8, 9, "dhash")
    return _finish(bits_to_uint64(array[:, :, 1:] > array[:, :, :-1]), single)


def phash(pixels: np.ndarray) -> np.ndarray:
    """Perceptual hash of ``(N, 32, 32)`` grayscale pixels."""
    from scipy.fftpack import dct  # imagededup's exact DCT routine

    array, single = _stack(pixels, 32, 32, "phash")
    coefficients = dct(dct(array, axis=1), axis=2)[:, :8, :8].reshape(-1, 64)
    median = np.median(coefficients[:, 1:], axis=1, keepdims=True)
    return _finish(bits_to_uint64(coefficients >= median), single)


def whash(pixels: np.ndarray) -> np.ndarray:
    """Wavelet hash of ``(N, 256, 256)`` grayscale pixels (Haar, level 5)."""
    import pywt

    array, single = _stack(pixels, 256, 256, "whash")
    low = pywt.wavedec2(array / 255, "haar", level=5, axes=(1, 2))[0].reshape(-1, 64)
    median = np.median(low, axis=1, keepdims=True)
    return _finish(bits_to_uint64(low >= median), single)


HASH_FUNCTIONS = {"ahash": ahash, "dhash": dhash, "phash": phash, "whash": whash}


def hash_pixels(method: str, pixels: np.ndarray) -> np.ndarray:
    """Dispatch to one of :data:`HASH_FUNCTIONS` by name, with a clear error."""
    try:
        function = HASH_FUNCTIONS[method]
    except KeyError:
        raise ValueError(f"`method` must be one of {', '.join(HASH_FUNCTIONS)}, got {method!r}") from None
    return function(pixels)
