"""imagededup-compatible API: change ``from imagededup.methods`` to ``from imgdedup.compat.methods``.

``PHash``, ``DHash``, ``AHash`` and ``WHash`` share imagededup 0.3.3's verbs and
return shapes (``encode_image``, ``encode_images``, ``find_duplicates``,
``find_duplicates_to_remove``). Differences, all opt-out with ``compat=True``:
the default pixel path applies EXIF orientation and composites transparency on
white; ``compat=True`` reproduces imagededup's hashes bit for bit. Search is
imgdedup's exact index whatever ``search_method`` names.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
from PIL import Image

from imgdedup.imaging.hash_chunk import hash_images
from imgdedup.imaging.hashing import HASH_INPUT_SIZES, hash_pixels, hash_to_hex, hex_to_hash
from imgdedup.search.hamming import hamming_pairs
from imgdedup.imaging.discover import FileRecord, discover_images
from imgdedup.imaging.decode import normalise
from imgdedup.pipeline.results import duplicates_map

SEARCH_METHODS = ("brute_force", "bktree", "brute_force_cython")
_ENCODE_CHUNK = 1000


class Hashing:
    """Shared verbs of the four hash methods (see imagededup's ``Hashing``)."""

    method = ""

    def __init__(self, verbose: bool = True, compat: bool = False) -> None:
        if not isinstance(compat, bool):
            raise TypeError(f"`compat` must be True or False, got {compat!r}")
        self.verbose = verbose
        self.compat = compat
        self.target_size = HASH_INPUT_SIZES[self.method]
        self.results: dict | None = None

    @staticmethod
    def hamming_distance(hash1: str, hash2: str) -> int:
        """Number of differing bits between two hex hashes."""
        return int(hex_to_hash(hash1) ^ hex_to_hash(hash2)).bit_count()

    def encode_image(self, image_file=None, image_array: Optional[np.ndarray] = None) -> Optional[str]:
        """Hash one image file or array; ``None`` if the file cannot be read as an image."""
        if image_file is not None and os.path.exists(image_file):
            chunk = hash_images(Path(image_file).parent, [_record(Path(image_file))], 0, (self.method,), self.compat)
            return hash_to_hex(chunk.hashes[0, 0]) if len(chunk.positions) else None
        if isinstance(image_array, np.ndarray):
            return hash_to_hex(hash_pixels(self.method, self._array_pixels(image_array)))
        raise ValueError("Please provide either image file path or image array!")

    def _array_pixels(self, image_array: np.ndarray) -> np.ndarray:
        if image_array.ndim not in (2, 3) or (image_array.ndim == 3 and image_array.shape[2] != 3):
            raise ValueError(f"`image_array` must have shape (H, W) or (H, W, 3), got {image_array.shape}")
        image = Image.fromarray(image_array.astype("uint8"))
        if self.compat:
            return np.asarray(image.resize(self.target_size, Image.LANCZOS).convert("L"), dtype=np.uint8)
        gray = normalise(image, "L")
        return np.asarray(gray.resize(self.target_size, Image.LANCZOS, reducing_gap=3.0), dtype=np.uint8)

    def encode_images(self, image_dir=None, recursive: bool = False, num_enc_workers: Optional[int] = None) -> Dict[str, str]:
        """Hash every image under ``image_dir``: ``{relative_path: hex_hash}``, unreadable files left out."""
        if image_dir is None or not os.path.isdir(image_dir):
            raise ValueError("Please provide a valid directory path!")
        records = discover_images(image_dir, recursive=recursive)
        encodings: Dict[str, str] = {}
        for start in range(0, len(records), _ENCODE_CHUNK):
            chunk = hash_images(image_dir, records[start:start + _ENCODE_CHUNK], start, (self.method,), self.compat)
            for position, value in zip(chunk.positions.tolist(), chunk.hashes[:, 0].tolist()):
                encodings[records[position].id] = hash_to_hex(value)
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
    ) -> Dict:
        """Every image within ``max_distance_threshold`` (inclusive) of each image.

        Returns ``{name: [dup, ...]}``, or ``{name: [(dup, distance), ...]}`` with
        ``scores=True``, neighbours sorted by distance.
        """
        self._check_threshold(max_distance_threshold)
        if search_method not in SEARCH_METHODS:
            raise ValueError(f"`search_method` must be one of {', '.join(SEARCH_METHODS)}, got {search_method!r}")
        if image_dir:
            encoding_map = self.encode_images(image_dir, recursive=recursive)
        elif encoding_map:
            if recursive:
                warnings.warn("recursive parameter is irrelevant when using encodings.", SyntaxWarning, stacklevel=2)
        else:
            raise ValueError("Provide either an image directory or encodings!")
        names = list(encoding_map)
        hashes = np.asarray([hex_to_hash(encoding_map[n]) for n in names], dtype=np.uint64)
        i, j, distance = hamming_pairs(hashes, max_distance_threshold)
        self.results = duplicates_map(names, i, j, distance, scores=scores)
        if outfile:
            _save_json(self.results, outfile)
        return self.results

    def find_duplicates_to_remove(
        self,
        image_dir=None,
        encoding_map: Optional[Dict[str, str]] = None,
        max_distance_threshold: int = 10,
        outfile: Optional[str] = None,
        recursive: bool = False,
        num_enc_workers: Optional[int] = None,
        num_dist_workers: Optional[int] = None,
    ) -> List[str]:
        """Files to remove so that one image of each duplicate group stays (imagededup's rule)."""
        duplicates = self.find_duplicates(
            image_dir=image_dir, encoding_map=encoding_map, max_distance_threshold=max_distance_threshold, recursive=recursive
        )
        files_to_remove = files_to_remove_from(duplicates)
        if outfile:
            _save_json(files_to_remove, outfile)
        return files_to_remove


def files_to_remove_from(duplicates: Dict[str, list]) -> List[str]:
    """imagededup's ``get_files_to_remove``: walk keys in order, keep a key unless already marked."""
    marked: set[str] = set()
    for key, values in duplicates.items():
        if key not in marked:
            marked.update(v[0] if isinstance(v, (tuple, list)) else v for v in values)
    return sorted(marked)


def _record(path: Path) -> FileRecord:
    return FileRecord(path.name, -1, 0)


def _save_json(results, filename: str) -> None:
    with open(filename, "w", encoding="utf-8") as handle:
        json.dump(results, handle, indent=2, sort_keys=True)


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


class CNN:
    """CNN embeddings with imagededup's ``CNN`` verbs; the default model works offline.

    ``model_config`` accepts imagededup's ``CustomModel`` (or anything with
    ``model`` and ``transform`` attributes); without it the default
    EfficientNet-Lite0 runs (ONNX Runtime on CPU). Encodings are L2-normalised
    float32 vectors, so cosine similarity is a dot product.
    """

    def __init__(self, verbose: bool = True, model_config=None, model: str = "efficientnet_lite0", **embedder_options) -> None:
        from imgdedup.embedding.embedder import Embedder, load_embedder

        self.verbose = verbose
        if model_config is not None:
            if getattr(model_config, "model", None) is None or getattr(model_config, "transform", None) is None:
                raise ValueError("No value provided for model and/or transform in model_config ..")
            self.embedder = Embedder(model=model_config.model, transform=model_config.transform, **embedder_options)
        else:
            self.embedder = load_embedder(model, **embedder_options)
        self.results: dict | None = None

    def encode_image(self, image_file=None, image_array: Optional[np.ndarray] = None) -> Optional[np.ndarray]:
        """Encode one image: a ``(1, D)`` float32 array, or ``None`` if the file is not a readable image."""
        from imgdedup.errors import ImageLoadError

        if image_file is not None:
            if not Path(image_file).is_file():
                raise ValueError("Please provide either image file path or image array!")
            try:
                return self.embedder.embed_bytes([Path(image_file).read_bytes()])
            except ImageLoadError:
                return None
        if isinstance(image_array, np.ndarray):
            if image_array.ndim == 2:
                image_array = np.repeat(image_array[..., np.newaxis], 3, axis=2)
            if image_array.ndim != 3 or image_array.shape[2] != 3:
                raise ValueError(f"`image_array` must have shape (H, W) or (H, W, 3), got {image_array.shape}")
            return self.embedder.embed_images([Image.fromarray(image_array.astype("uint8"))])
        raise ValueError("Please provide either image file path or image array!")

    def encode_images(self, image_dir, recursive: bool = False, num_enc_workers: int = 0) -> Dict[str, np.ndarray]:
        """Encode every readable image under ``image_dir``: ``{relative_path: (D,) float32}``."""
        if image_dir is None or not os.path.isdir(image_dir):
            raise ValueError("Please provide a valid directory path!")
        records = discover_images(image_dir, recursive=recursive)
        encodings: Dict[str, np.ndarray] = {}
        for start in range(0, len(records), _ENCODE_CHUNK):
            part = records[start:start + _ENCODE_CHUNK]
            chunk = hash_images(image_dir, part, 0, ("dhash",))  # validates and decodes cheaply
            readable = [part[p] for p in chunk.positions.tolist()]
            vectors = self.embedder.embed_bytes([(Path(image_dir) / r.id).read_bytes() for r in readable])
            encodings.update({r.id: v for r, v in zip(readable, vectors)})
        return encodings

    @staticmethod
    def _check_threshold(threshold: float) -> None:
        if not isinstance(threshold, float):
            raise TypeError("Threshold must be a float between -1.0 and 1.0")
        if not -1.0 <= threshold <= 1.0:
            raise ValueError("Threshold must be a float between -1.0 and 1.0")

    def find_duplicates(
        self,
        image_dir=None,
        encoding_map: Optional[Dict[str, np.ndarray]] = None,
        min_similarity_threshold: float = 0.9,
        scores: bool = False,
        outfile: Optional[str] = None,
        recursive: bool = False,
        num_enc_workers: int = 0,
        num_sim_workers: int = 0,
    ) -> Dict:
        """Every image with cosine similarity >= ``min_similarity_threshold`` to each image, most similar first."""
        from imgdedup.search.cosine import cosine_pairs

        self._check_threshold(min_similarity_threshold)
        if image_dir:
            encoding_map = self.encode_images(image_dir, recursive=recursive)
        elif encoding_map is None or not len(encoding_map):
            raise ValueError("Provide either an image directory or encodings!")
        names = list(encoding_map)
        vectors = np.asarray([np.ravel(encoding_map[n]) for n in names], dtype=np.float32)
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        i, j, similarity = cosine_pairs(vectors, min_similarity_threshold)
        results = duplicates_map(names, i, j, similarity, scores=scores, higher_is_closer=True)
        if scores:
            results = {k: [(name, float(s)) for name, s in v] for k, v in results.items()}
        self.results = results
        if outfile:
            _save_json(results, outfile)
        return results

    def find_duplicates_to_remove(
        self,
        image_dir=None,
        encoding_map: Optional[Dict[str, np.ndarray]] = None,
        min_similarity_threshold: float = 0.9,
        outfile: Optional[str] = None,
        recursive: bool = False,
        num_enc_workers: int = 0,
        num_sim_workers: int = 0,
    ) -> List[str]:
        """Files to remove so that one image of each duplicate group stays (imagededup's rule)."""
        duplicates = self.find_duplicates(
            image_dir=image_dir, encoding_map=encoding_map, min_similarity_threshold=min_similarity_threshold, recursive=recursive
        )
        files_to_remove = files_to_remove_from(duplicates)
        if outfile:
            _save_json(files_to_remove, outfile)
        return files_to_remove
