"""Bit counts of 64-bit hashes and the validation the Hamming searches share.

:func:`popcount64` and :func:`hamming_distance` are the scalar and array
building blocks; ``check_*`` validate a radius, a hash array and one hash,
naming the parameter and the value. NumPy only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["check_hash_int", "check_hashes", "check_radius", "hamming_distance", "popcount64"]

_U64 = np.uint64


def check_radius(radius: Any) -> int:
    if isinstance(radius, (bool, np.bool_)) or not isinstance(radius, (int, np.integer)) or not 0 <= radius <= 64:
        raise ValueError(f"`radius` must be an int in 0..64, got {radius!r}")
    return int(radius)


def check_hashes(name: str, hashes: Any) -> np.ndarray:
    arr = np.asarray(hashes)
    if arr.ndim != 1:
        raise ValueError(f"`{name}` must be a 1-D array of 64-bit hashes, got an array of shape {arr.shape}")
    if arr.dtype.kind != "u":
        # Signed storage of hashes is ambiguous (negative values): the caller
        # must say whether to reinterpret (.view) or convert (.astype).
        raise TypeError(
            f"`{name}` must have an unsigned integer dtype (uint64 hashes), got dtype {arr.dtype}; "
            "convert with np.asarray(x, dtype=np.uint64), or x.view(np.uint64) for hashes stored as int64"
        )
    return np.ascontiguousarray(arr, dtype=_U64)


def check_hash_int(name: str, value: Any) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or not 0 <= value < 1 << 64:
        raise ValueError(f"`{name}` must be an int in 0..2**64-1, got {value!r}")
    return int(value)


def popcount64(x: np.ndarray) -> np.ndarray:
    """Number of set bits of each 64-bit value.

    Parameters
    ----------
    x : ndarray of unsigned integers, any shape
        Values, converted losslessly to uint64.

    Returns
    -------
    ndarray of uint8, same shape as ``x``
    """
    arr = np.asarray(x)
    if arr.dtype.kind != "u":
        raise TypeError(f"`x` must have an unsigned integer dtype, got dtype {arr.dtype}")
    return np.bitwise_count(arr.astype(_U64, copy=False))


def hamming_distance(a: int, b: int) -> int:
    """Number of bits in which two 64-bit hashes differ.

    Parameters
    ----------
    a, b : int
        Hashes in ``0 .. 2**64 - 1`` (Python or NumPy integers).

    Returns
    -------
    int
        The Hamming distance, ``0 .. 64``.
    """
    return (check_hash_int("a", a) ^ check_hash_int("b", b)).bit_count()
