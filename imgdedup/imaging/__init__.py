"""Imaging: from a file to pixels and perceptual hashes.

Holds discovery and reading (``discover``: local folders and URLs, content digests),
decoding (``decode``: Pillow, camera RAW, orientation, alpha), the resize kernels
(``lanczos``, ``pixel_view``), margin trimming (``trim``), the hash functions
(``hashing``), a chunk of files hashed (``hash_chunk``), normalised copies
(``preprocess``), low-information images (``lowinfo``) and the evidence verification
reads from a small decode (``describe``).

May import: numpy, Pillow, numba, blake3, rawpy and OpenCV (lazily), ``imgdedup.errors`` and
``imgdedup.storage.locations`` (for files behind URLs). Never torch, never Prefect.
"""
