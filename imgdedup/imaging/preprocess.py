"""Normalised copies of a folder's images (oriented, alpha on white, resized): ``imgdedup preprocess``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from imgdedup.errors import ImageLoadError, InputError
from imgdedup.imaging.decode import REDUCING_GAP, load_image
from imgdedup.imaging.discover import discover_images, read_bytes

_SAVE_SUFFIX = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}


@dataclass(frozen=True)
class PreprocessResult:
    written: list[str]
    errors: list[tuple[str, str]]


def preprocess_images(
    input_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    target_size: tuple[int, int] = (256, 256),
    format: str = "JPEG",
    recursive: bool = True,
    quality: int = 95,
) -> PreprocessResult:
    """Write oriented, alpha-flattened copies resized to ``target_size`` (width, height).

    The default pixel path is used (EXIF orientation applied, transparency on
    white, 16-bit scaled). Relative paths are kept; the suffix becomes the
    format's (``a/b.png`` -> ``a/b.jpg`` for JPEG). Unreadable files are
    returned with their reason, never fatal; an existing output file is
    replaced only by a finished one (write to a temporary name, then rename).
    Two inputs that map to one output (``a.png`` and ``a.jpg``) never overwrite
    each other: the first in file order is written, the second is returned
    as an error naming the first.
    """
    fmt = str(format).upper()
    if fmt not in _SAVE_SUFFIX:
        raise ValueError(f"`format` must be one of {', '.join(_SAVE_SUFFIX)}, got {format!r}")
    if (
        not isinstance(target_size, (tuple, list))
        or len(target_size) != 2
        or not all(isinstance(v, int) and 1 <= v <= 16384 for v in target_size)
    ):
        raise ValueError(f"`target_size` must be (width, height) with ints in 1..16384, got {target_size!r}")
    source = Path(input_dir).resolve()
    output = Path(output_dir).resolve()
    if output == source or source in output.parents:
        raise InputError(f"output folder {str(output_dir)!r} must not be inside the input folder")
    written, errors = [], []
    source_of: dict[Path, str] = {}  # output -> the input written there by this call
    for record in discover_images(input_dir, recursive=recursive):
        target = output / Path(record.id).with_suffix(_SAVE_SUFFIX[fmt])
        if target in source_of:
            errors.append(
                (
                    record.id,
                    f"not written: its output {target.relative_to(output).as_posix()} "
                    f"is the copy of {source_of[target]}",
                )
            )
            continue
        try:
            image = load_image(read_bytes(input_dir, record), mode="RGB", draft_size=tuple(target_size))
            image = image.resize(tuple(target_size), Image.LANCZOS, reducing_gap=REDUCING_GAP)
        except ImageLoadError as exc:
            errors.append((record.id, exc.reason))
            continue
        source_of[target] = record.id
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        image.save(tmp, fmt, **({"quality": quality} if fmt in ("JPEG", "WEBP") else {}))
        os.replace(tmp, target)
        written.append(target.relative_to(output).as_posix())
    return PreprocessResult(written=written, errors=errors)
