"""The exact Hamming-radius index: ``from imgdedup.index import hamming_pairs``.

The code lives in :mod:`imgdedup.search.hamming`; this module keeps the documented import path.
"""

from imgdedup.search.hamming import (  # noqa: F401
    BKTree,
    hamming_distance,
    hamming_pairs,
    hamming_query,
    popcount64,
)

__all__ = ["BKTree", "hamming_distance", "hamming_pairs", "hamming_query", "popcount64"]
