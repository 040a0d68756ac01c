"""imagededup-compatible API: change ``from imagededup.methods`` to ``from imgdedup.compat.methods``.

``PHash``, ``DHash``, ``AHash`` and ``WHash`` share imagededup 0.3.3's verbs and
return shapes (``encode_image``, ``encode_images``, ``find_duplicates``,
``find_duplicates_to_remove``). Differences, all opt-out with ``compat=True``:
the default pixel path applies EXIF orientation and composites transparency on
white; ``compat=True`` reproduces imagededup's hashes bit for bit. Search is
imgdedup's exact index whatever ``search_method`` names.

``Hashing()`` itself takes the method per call, as the widely copied guide
writes it: ``Hashing().find_duplicates(image_dir="photos", hash_method="dhash")``.
``CNN`` lives in :mod:`imgdedup.compat.cnn` (imported from here too).
"""

from __future__ import annotations

import math
import multiprocessing
import os
import sys
import threading
import warnings
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import numpy as np
from PIL import Image

from imgdedup.compat.base import DuplicateFinder, files_to_remove_from, save_json
from imgdedup.compat.cnn import CNN
from imgdedup.imaging.decode import normalise
from imgdedup.imaging.discover import FileRecord, discover_images
from imgdedup.imaging.hash_chunk import hash_images
from imgdedup.imaging.hashing import HASH_INPUT_SIZES, hash_pixels, hash_to_hex, hex_to_hash
from imgdedup.search.hamming import hamming_pairs

SEARCH_METHODS = ("brute_force", "bktree", "brute_force_cython")
#: The methods ``Hashing(...).find_duplicates(hash_method=...)`` accepts.
HASH_METHODS = ("phash", "dhash", "ahash", "whash")
_ENCODE_CHUNK = 1000


class Hashing(DuplicateFinder):
    """Shared verbs of the four hash methods (see imagededup's ``Hashing``).

    ``Hashing()`` chooses the method per call (``hash_method="phash"``, one of
    :data:`HASH_METHODS`); ``PHash()`` and the others fix it, and a call naming
    another method raises ``ValueError``.

    Parameters
    ----------
    verbose : bool
        Accepted for imagededup's signature; nothing is printed.
    compat : bool
        Reproduce imagededup 0.3.3's hashes bit for bit (no EXIF orientation,
        its transparency handling).
    """

    method: str | None = None

    def __init__(self, verbose: bool = True, compat: bool = False) -> None:
        if not isinstance(compat, bool):
            raise TypeError(f"`compat` must be True or False, got {compat!r}")
        self.verbose = verbose
        self.compat = compat
        self.results: dict | None = None

    @property
    def target_size(self) -> tuple[int, int] | None:
        """(width, height) of the grey image this method hashes; ``None`` for ``Hashing()``."""
        return HASH_INPUT_SIZES[self.method] if self.method else None

    def _method_for(self, hash_method: Optional[str]) -> str:
        """The method a call uses: this class's, or ``hash_method`` for ``Hashing()``."""
        if hash_method is not None and (not isinstance(hash_method, str) or hash_method.lower() not in HASH_METHODS):
            raise ValueError(f"`hash_method` must be one of {', '.join(HASH_METHODS)}, got {hash_method!r}")
        chosen = hash_method.lower() if hash_method is not None else None
        if self.method is None:
            if chosen is None:
                raise ValueError(
                    f"Hashing() needs `hash_method` (one of {', '.join(HASH_METHODS)}), "
                    "or use PHash(), DHash(), AHash() or WHash()"
                )
            return chosen
        if chosen is not None and chosen != self.method:
            raise ValueError(
                f"`hash_method`={hash_method!r} does not match {type(self).__name__}, which computes "
                f"{self.method}; use Hashing().find_duplicates(..., hash_method={chosen!r}) "
                f"or {chosen[0].upper()}Hash()"
            )
        return self.method

    @staticmethod
    def hamming_distance(hash1: str, hash2: str) -> int:
        """Number of differing bits between two hex hashes."""
        return int(hex_to_hash(hash1) ^ hex_to_hash(hash2)).bit_count()

    def encode_image(
        self, image_file=None, image_array: Optional[np.ndarray] = None, hash_method: Optional[str] = None
    ) -> Optional[str]:
        """Hash one image file or array; ``None`` if the file cannot be read as an image."""
        method = self._method_for(hash_method)
        if image_file is not None and os.path.exists(image_file):
            chunk = hash_images(Path(image_file).parent, [_record(Path(image_file))], 0, (method,), self.compat)
            return hash_to_hex(chunk.hashes[0, 0]) if len(chunk.positions) else None
        if isinstance(image_array, np.ndarray):
            return hash_to_hex(hash_pixels(method, self._array_pixels(image_array, HASH_INPUT_SIZES[method])))
        raise ValueError("Please provide either image file path or image array!")

    def _array_pixels(self, image_array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        if image_array.ndim not in (2, 3) or (image_array.ndim == 3 and image_array.shape[2] != 3):
            raise ValueError(f"`image_array` must have shape (H, W) or (H, W, 3), got {image_array.shape}")
        image = Image.fromarray(image_array.astype("uint8"))
        if self.compat:
            return np.asarray(image.resize(size, Image.LANCZOS).convert("L"), dtype=np.uint8)
        gray = normalise(image, "L")
        return np.asarray(gray.resize(size, Image.LANCZOS, reducing_gap=3.0), dtype=np.uint8)

    def encode_images(
        self,
        image_dir=None,
        recursive: bool = False,
        num_enc_workers: Optional[int] = None,
        hash_method: Optional[str] = None,
    ) -> Dict[str, str]:
        """Hash every image under ``image_dir``: ``{relative_path: hex_hash}``, unreadable files left out.

        ``num_enc_workers`` means what it does in imagededup: processes that
        hash in parallel, by default one per core (``None``); 0 or 1 hashes in
        this process.
        """
        method = self._method_for(hash_method)
        if image_dir is None or not os.path.isdir(image_dir):
            raise ValueError("Please provide a valid directory path!")
        workers = _check_workers(num_enc_workers)
        records = discover_images(image_dir, recursive=recursive)
        jobs = [(str(image_dir), part, method, self.compat) for part in _chunks(records, workers)]
        encodings: Dict[str, str] = {}
        parts = (
            map(_hash_job, jobs) if workers <= 1 or len(jobs) <= 1 else _hash_parallel(jobs, min(workers, len(jobs)))
        )
        for part in parts:
            encodings.update(part)
        return encodings

    @staticmethod
    def _check_threshold(threshold: int) -> None:
        if not isinstance(threshold, int) or isinstance(threshold, bool):
            raise TypeError("Threshold must be an int between 0 and 64")
        if not 0 <= threshold <= 64:
            raise ValueError("Threshold must be an int between 0 and 64")

    def find_duplicates(
        self,
        image_dir=None,
        encoding_map: Optional[Dict[str, str]] = None,
        max_distance_threshold: int = 10,
        scores: bool = False,
        outfile: Optional[str] = None,
        search_method: str = "brute_force_cython",
        recursive: bool = False,
        num_enc_workers: Optional[int] = None,
        num_dist_workers: Optional[int] = None,
        hash_method: Optional[str] = None,
    ) -> Dict:
        """Every image within ``max_distance_threshold`` (inclusive) of each image.

        Returns ``{name: [dup, ...]}``, or ``{name: [(dup, distance), ...]}`` with
        ``scores=True``, neighbours sorted by distance. ``hash_method`` chooses
        the method for ``Hashing()`` (and must match it for ``PHash()`` etc.).
        """
        self._check_threshold(max_distance_threshold)
        if search_method not in SEARCH_METHODS:
            raise ValueError(f"`search_method` must be one of {', '.join(SEARCH_METHODS)}, got {search_method!r}")
        if image_dir:
            encoding_map = self.encode_images(
                image_dir, recursive=recursive, num_enc_workers=num_enc_workers, hash_method=hash_method
            )
        elif encoding_map:
            if hash_method is not None:
                self._method_for(hash_method)
            if recursive:
                warnings.warn("recursive parameter is irrelevant when using encodings.", SyntaxWarning, stacklevel=2)
        else:
            raise ValueError("Provide either an image directory or encodings!")
        from imgdedup.pipeline.results import duplicates_map  # imports the pipeline package: not on the encode path

        names = list(encoding_map)
        hashes = np.asarray([hex_to_hash(encoding_map[n]) for n in names], dtype=np.uint64)
        i, j, distance = hamming_pairs(hashes, max_distance_threshold)
        self.results = duplicates_map(names, i, j, distance, scores=scores)
        if outfile:
            save_json(self.results, outfile)
        return self.results


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _check_workers(num_enc_workers: Any) -> int:
    if num_enc_workers is None:
        return usable_cores()
    if isinstance(num_enc_workers, bool) or not isinstance(num_enc_workers, (int, np.integer)) or num_enc_workers < 0:
        raise ValueError(
            f"`num_enc_workers` must be an int >= 0 (0: no extra processes) or None (one per core), "
            f"got {num_enc_workers!r}"
        )
    return int(num_enc_workers)


def _chunks(records: Sequence[FileRecord], workers: int) -> list[Sequence[FileRecord]]:
    """Records cut into chunks: about four per worker, so a slow chunk does not leave a core idle at the end."""
    size = max(1, min(_ENCODE_CHUNK, math.ceil(len(records) / max(1, 4 * workers))))
    return [records[s : s + size] for s in range(0, len(records), size)]


def _hash_job(job: tuple[str, Sequence[FileRecord], str, bool]) -> Dict[str, str]:
    root, records, method, compat = job
    chunk = hash_images(root, records, 0, (method,), compat)
    return {records[p].id: hash_to_hex(v) for p, v in zip(chunk.positions.tolist(), chunk.hashes[:, 0].tolist())}


def _hash_parallel(jobs: list, workers: int):
    """Results of ``_hash_job`` over ``jobs`` on ``workers`` processes, in order.

    On Linux processes are forked, as imagededup's ``multiprocessing.Pool``
    does there: workers start in milliseconds with the hash code imported,
    and a script without a ``__main__`` guard is not run again in each of
    them. Forking a process that runs other threads (the CNN's decoding
    threads, say) can deadlock a child, so then, and off Linux, the chunks go
    to threads instead: decoding and resizing release the GIL.
    """
    if sys.platform.startswith("linux") and threading.active_count() == 1:
        executor = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
    else:
        executor = ThreadPoolExecutor(workers, thread_name_prefix="imgdedup-hash")
    with executor:
        yield from executor.map(_hash_job, jobs)


def _record(path: Path) -> FileRecord:
    return FileRecord(path.name, -1, 0)


class PHash(Hashing):
    """Perceptual hash: DCT of a 32 x 32 grayscale image."""

    method = "phash"


class DHash(Hashing):
    """Difference hash: neighbouring pixels of a 9 x 8 grayscale image."""

    method = "dhash"


class AHash(Hashing):
    """Average hash: pixels of an 8 x 8 grayscale image against their mean."""

    method = "ahash"


class WHash(Hashing):
    """Wavelet hash: Haar LL band of a 256 x 256 grayscale image."""

    method = "whash"


__all__ = [
    "AHash",
    "CNN",
    "DHash",
    "DuplicateFinder",
    "HASH_METHODS",
    "Hashing",
    "PHash",
    "WHash",
    "files_to_remove_from",
]
