"""Images -> model input: decode, flatten, trim, resize on a thread pool, normalise whole batches.

JPEGs decode at reduced scale (``Image.draft``) straight to about the
network's input size; Pillow releases the GIL while decoding and resizing, so
the decode threads run in parallel; normalisation runs on the whole batch in
numpy.

Imports numpy, Pillow and :mod:`imgdedup.imaging` (decode, trim, hashes).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from PIL import Image

from imgdedup.embedding import models as _models
from imgdedup.errors import ConfigError
from imgdedup.imaging import trim as _trim
from imgdedup.imaging.decode import flatten, load_image

__all__ = ["DecodePool", "Normaliser", "flattened", "model_pixels", "prepare", "preprocess_for_model", "trimmed_hashes"]


def flattened(image: Image.Image, size: int, grayscale: bool = False) -> Image.Image:
    """``image`` decoded (JPEG draft: scaled by libjpeg while both sides stay >= ``size``) as RGB,
    or L when ``grayscale``; transparency composited on white (:func:`imgdedup.imaging.decode.flatten`)."""
    if not isinstance(image, Image.Image):
        raise ConfigError(f"images must be PIL.Image.Image objects; got {type(image).__name__}")
    if getattr(image, "format", None) == "JPEG" and getattr(image, "tile", None):
        image.draft("L" if grayscale else "RGB", (size, size))
    return flatten(image, "L" if grayscale else "RGB")


def model_pixels(image: Image.Image, size: int) -> np.ndarray:
    """A flattened image -> (size, size, 3) uint8: a bilinear resize of the whole frame (grey as 3 equal bands)."""
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=3.0)
    pixels = np.asarray(image, dtype=np.uint8)
    return np.repeat(pixels[..., None], 3, axis=2) if pixels.ndim == 2 else pixels


def trimmed_hashes(image: Image.Image) -> tuple[int, int]:
    """phash and dhash of ``image`` as the embedder sees it (margins trimmed, grey), for the hybrid rule."""
    from imgdedup.imaging.hash_chunk import resize_gray
    from imgdedup.imaging.hashing import HASH_INPUT_SIZES, hash_pixels

    gray = image if image.mode == "L" else image.convert("L")
    return tuple(int(hash_pixels(m, resize_gray(gray, HASH_INPUT_SIZES[m], compat=False))) for m in ("phash", "dhash"))


class Normaliser:
    """uint8 (N, H, W, 3) -> float32 (N, 3, H, W) as ``(x / 255 - mean) / std``, in one cast and two passes."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        mean = np.asarray(mean, dtype=np.float64)
        std = np.asarray(std, dtype=np.float64)
        self.scale = (1.0 / (255.0 * std)).astype(np.float32).reshape(1, 3, 1, 1)
        self.shift = (mean / std).astype(np.float32).reshape(1, 3, 1, 1)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        out = batch.transpose(0, 3, 1, 2).astype(np.float32, order="C")
        out *= self.scale
        out -= self.shift
        return out


def preprocess_for_model(
    image: Image.Image,
    size: int = _models.LITE0_INPUT_SIZE,
    mean: Sequence[float] = _models.LITE0_MEAN,
    std: Sequence[float] = _models.LITE0_STD,
) -> np.ndarray:
    """Model input for one image: (3, size, size) float32.

    The whole image (no crop) is resized to ``size`` x ``size`` with PIL's
    bilinear filter, after a reduced-scale JPEG decode when ``image`` is a
    JPEG not yet loaded; then each channel becomes ``(x / 255 - mean) / std``.
    The defaults are EfficientNet-Lite0's: 224 and mean = std = 0.5, i.e.
    values in [-1, 1]. Transparent images are composited on white.
    """
    return Normaliser(mean, std)(model_pixels(flattened(image, size), size)[None])[0]


def transformed(transform: Callable[[Image.Image], Any], image: Image.Image) -> np.ndarray:
    """``transform(image)`` as a (3, H, W) float32 array (a torch tensor is moved to the CPU first)."""
    out = transform(image)
    if hasattr(out, "detach"):
        out = out.detach().to("cpu").numpy()
    out = np.asarray(out, dtype=np.float32)
    if out.ndim != 3 or out.shape[0] != 3:
        raise ConfigError(f"transform must return a (3, H, W) array; got shape {out.shape}")
    return out


class DecodePool:
    """Runs a per-image function on ``workers`` threads, started on first use (one thread: inline).

    Parameters
    ----------
    workers : int
        Decoding threads; 1 runs every call in the calling thread.
    """

    def __init__(self, workers: int) -> None:
        self.workers = int(workers)
        self._executor = None

    def map(self, fn: Callable[[int], None], indices: range) -> None:
        """``fn(i)`` for each ``i`` in ``indices``; re-raises the first exception a call raised."""
        if self.workers <= 1 or len(indices) < 2:
            for i in indices:
                fn(i)
            return
        if self._executor is None:
            from concurrent.futures import ThreadPoolExecutor

            self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="imgdedup-embed-decode")
        for _ in self._executor.map(fn, indices):  # re-raises the first worker exception
            pass

    def close(self) -> None:
        """Stop the threads (they are started again when needed)."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False)


def prepare(
    items: list,
    load: bool,
    size: int,
    pool: DecodePool,
    normalise: Normaliser,
    grayscale: bool = False,
    trim: bool = False,
    transform: Callable[[Image.Image], Any] | None = None,
    hashes: np.ndarray | None = None,
) -> np.ndarray:
    """Decode (``load``: items are file bytes) and preprocess a chunk -> (N, 3, size, size) float32.

    The built-in path decodes, flattens, trims (``trim``) and resizes each
    image on ``pool``'s threads, then normalises the whole batch at once.
    ``hashes`` (N, 2) uint64, when given, receives :func:`trimmed_hashes` of
    each image as prepared (built-in path only). With ``transform``, each
    image goes through it instead, in the calling thread.
    """
    if transform is not None:
        arrays = [transformed(transform, load_image(it) if load else it) for it in items]
        return np.stack(arrays) if arrays else np.zeros((0, 3, size, size), np.float32)
    batch = np.empty((len(items), size, size, 3), dtype=np.uint8)

    def one(i: int) -> None:
        item = items[i]
        if load:
            item = load_image(item, mode="L" if grayscale else "RGB", draft_size=(size, size))
        image = flattened(item, size, grayscale)
        if trim:
            image = _trim.trim_margins(image)
        if hashes is not None:
            hashes[i] = trimmed_hashes(image)
        batch[i] = model_pixels(image, size)

    pool.map(one, range(len(items)))
    return normalise(batch)
