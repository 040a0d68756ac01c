"""Imaging: from a file to pixels and perceptual hashes.

Holds discovery and reading (``discover``: local folders and URLs, content digests),
decoding (``decode``: Pillow, camera RAW, orientation, alpha), the resize kernels
(``lanczos``, ``pixel_view``), margin trimming (``trim``), the hash functions
(``hashing``), a chunk of files hashed (``hash_chunk``) and normalised copies
(``preprocess``).

May import: numpy, Pillow, numba, blake3, rawpy (lazily), ``imgdedup.errors`` and
``imgdedup.storage.locations`` (for files behind URLs). Never torch, never Prefect.
"""
