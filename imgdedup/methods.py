"""imagededup's hash and CNN classes: ``from imgdedup.methods import PHash``.

The code lives in :mod:`imgdedup.compat.methods`; this module keeps the documented import path.
"""

from imgdedup.compat.methods import (  # noqa: F401
    CNN,
    AHash,
    DHash,
    Hashing,
    PHash,
    WHash,
)

__all__ = ["AHash", "CNN", "DHash", "Hashing", "PHash", "WHash"]
