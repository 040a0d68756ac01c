"""What imagededup's hash classes and ``CNN`` share: the removal rule and the JSON output."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional


class DuplicateFinder:
    """What the hash classes and ``CNN`` share: imagededup's removal rule and its JSON output.

    A subclass provides ``find_duplicates(image_dir=None, encoding_map=None, <threshold>, ...)``.
    """

    results: dict | None = None

    def find_duplicates(self, image_dir=None, encoding_map=None, *args: Any, **kwargs: Any) -> Dict:
        raise NotImplementedError

    def find_duplicates_to_remove(
        self, image_dir=None, encoding_map=None, *threshold: Any, outfile: Optional[str] = None, **options: Any
    ) -> List[str]:
        """Files to remove so that one image of each duplicate group stays (imagededup's rule).

        Takes :meth:`find_duplicates`' arguments (its threshold third or by
        name: ``max_distance_threshold`` for hashes, ``min_similarity_threshold``
        for ``CNN``) except ``scores``; ``outfile`` saves the list as JSON.
        """
        if len(threshold) > 1:
            raise TypeError(
                "find_duplicates_to_remove takes image_dir, encoding_map and the threshold by position; "
                "pass the other arguments by name"
            )
        if "scores" in options:
            raise TypeError("find_duplicates_to_remove has no `scores` argument")
        duplicates = self.find_duplicates(image_dir, encoding_map, *threshold, **options)
        files_to_remove = files_to_remove_from(duplicates)
        if outfile:
            save_json(files_to_remove, outfile)
        return files_to_remove


def files_to_remove_from(duplicates: Dict[str, list]) -> List[str]:
    """imagededup's ``get_files_to_remove``: walk keys in order, keep a key unless already marked."""
    marked: set[str] = set()
    for key, values in duplicates.items():
        if key not in marked:
            marked.update(v[0] if isinstance(v, (tuple, list)) else v for v in values)
    return sorted(marked)


def save_json(results, filename: str) -> None:
    with open(filename, "w", encoding="utf-8") as handle:
        json.dump(results, handle, indent=2, sort_keys=True)
