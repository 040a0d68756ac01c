"""A BK-tree over hex hashes with imagededup's and the guide's verbs, over :class:`imgdedup.search.hamming.BKTree`.

::

    tree = BKTree()                                   # the guide's form
    tree.build_tree(hash_dict={"a.jpg": "9f3a...", ...})
    tree.query(hash_dict=hashes, distance_threshold=5)   # {name: [names within 5 bits]}

    tree = BKTree(hash_dict, distance_function)       # imagededup's form
    tree.search(query="9f3a...", tol=5)               # [(name, distance), ...]
"""

from __future__ import annotations

from typing import Callable, Dict, List, Mapping, Optional, Tuple

from imgdedup.imaging.hashing import hex_to_hash
from imgdedup.search import hamming


class BKTree:
    """Names and their 64-bit hex hashes (``PHash().encode_images`` output) in a BK-tree.

    Parameters
    ----------
    hash_dict : Mapping[str, str] or None
        ``{name: hex hash}``; the tree is built at once when given.
    distance_function : callable or None
        Accepted for imagededup's signature. Distances are always the
        Hamming distance between the 64-bit hashes (what imagededup's
        ``Hashing.hamming_distance`` computes).
    """

    def __init__(
        self, hash_dict: Optional[Mapping[str, str]] = None, distance_function: Optional[Callable] = None
    ) -> None:
        if distance_function is not None and not callable(distance_function):
            raise ValueError(f"`distance_function` must be callable or None, got {distance_function!r}")
        self.distance_function = distance_function
        self.hash_dict: Dict[str, str] = {}
        self._tree = hamming.BKTree({})
        if hash_dict is not None:
            self.build_tree(hash_dict)

    def __len__(self) -> int:
        return len(self._tree)

    def build_tree(self, hash_dict: Mapping[str, str]) -> "BKTree":
        """Index ``{name: hex hash}`` (replacing what the tree held); returns the tree."""
        if not isinstance(hash_dict, Mapping):
            raise ValueError(f"`hash_dict` must be a dict of name -> hex hash, got {type(hash_dict).__name__}")
        self.hash_dict = dict(hash_dict)
        self._tree = hamming.BKTree({name: _hash(name, value) for name, value in self.hash_dict.items()})
        return self

    def query(self, hash_dict: Mapping[str, str], distance_threshold: int = 5, scores: bool = False) -> Dict[str, list]:
        """For each name of ``hash_dict``, the indexed names within ``distance_threshold`` bits (itself left out).

        Returns ``{name: [name, ...]}``, nearest first (ties in the order they
        were indexed), or ``{name: [(name, distance), ...]}`` with ``scores``.
        """
        if not isinstance(hash_dict, Mapping):
            raise ValueError(f"`hash_dict` must be a dict of name -> hex hash, got {type(hash_dict).__name__}")
        out: Dict[str, list] = {}
        for name, value in hash_dict.items():
            found = [
                (other, d) for other, d in self._tree.query(_hash(name, value), distance_threshold) if other != name
            ]
            out[name] = found if scores else [other for other, _ in found]
        return out

    def search(self, query: str, tol: int = 5) -> List[Tuple[str, int]]:
        """imagededup's verb: ``[(name, distance), ...]`` of the indexed hashes within ``tol`` bits of hex ``query``."""
        return self._tree.query(_hash("query", query), tol)


def _hash(name: object, value: object) -> int:
    if not isinstance(value, str):
        raise ValueError(f"hash of {name!r} must be a hex string, got {value!r}")
    try:
        return hex_to_hash(value)
    except ValueError:
        raise ValueError(f"hash of {name!r} must be a hex string of at most 16 digits, got {value!r}") from None
