"""imagededup-style ``image_utils``: the guide's ``preprocess_images``, over :mod:`imgdedup.imaging.preprocess`."""

from __future__ import annotations

import os

from imgdedup.imaging.preprocess import PreprocessResult
from imgdedup.imaging.preprocess import preprocess_images as _preprocess_images


def preprocess_images(
    input_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    target_size: tuple[int, int] = (256, 256),
    **options,
) -> PreprocessResult:
    """Write oriented, alpha-flattened copies of every image in ``input_dir``, resized to ``target_size``.

    ``target_size`` is (width, height). Relative paths are kept and the suffix
    becomes the format's (JPEG by default). ``options`` are those of
    :func:`imgdedup.imaging.preprocess.preprocess_images` (``format``,
    ``recursive``, ``quality``). Returns the files written and the unreadable
    ones with their reason.
    """
    return _preprocess_images(input_dir, output_dir, target_size=tuple(target_size), **options)


__all__ = ["preprocess_images"]
