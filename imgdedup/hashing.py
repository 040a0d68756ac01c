"""The perceptual hash functions: ``from imgdedup.hashing import phash, hash_to_hex``.

The code lives in :mod:`imgdedup.imaging.hashing`; this module keeps the documented import path.
"""

from imgdedup.imaging.hashing import (  # noqa: F401
    HASH_FUNCTIONS,
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

__all__ = [
    "HASH_FUNCTIONS",
    "ahash",
    "bits_to_uint64",
    "dhash",
    "hash_pixels",
    "hash_to_hex",
    "hex_to_hash",
    "phash",
    "uint64_to_bits",
    "whash",
]
