"""A generated sample folder with known duplicates, for the demo and the tests.

Each original is a random scene (gradient background, ellipses, rectangles and
lines); its copies are the same scene re-encoded, resized, brightened, saved as
PNG or copied byte for byte. Distinct originals are far apart in every hash.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance

COPY_KINDS = ("reencoded", "resized", "brightened", "png", "exact")


def random_scene(rng: np.random.Generator, size: tuple[int, int] = (640, 480)) -> Image.Image:
    """A random but natural-looking image: smooth background plus large shapes."""
    width, height = size
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    c0, c1 = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    angle = rng.uniform(0, 2 * np.pi)
    t = np.cos(angle) * x / width + np.sin(angle) * y / height
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    background = (c0[None, None, :] * (1 - t[..., None]) + c1[None, None, :] * t[..., None]).astype(np.uint8)
    image = Image.fromarray(background, "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(4, 9))):
        x0, y0 = int(rng.integers(-width // 4, width)), int(rng.integers(-height // 4, height))
        w, h = int(rng.integers(width // 6, width // 2)), int(rng.integers(height // 6, height // 2))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        shape = int(rng.integers(0, 3))
        if shape == 0:
            draw.ellipse((x0, y0, x0 + w, y0 + h), fill=colour)
        elif shape == 1:
            draw.rectangle((x0, y0, x0 + w, y0 + h), fill=colour)
        else:
            draw.line((x0, y0, x0 + w, y0 + h), fill=colour, width=int(rng.integers(8, 30)))
    return image


def make_copy(original: Image.Image, kind: str, source: Path, target_stem: Path) -> Path:
    """Write one kind of copy of ``original`` (saved at ``source``); return its path."""
    if kind == "reencoded":
        path = target_stem.with_suffix(".jpg")
        original.save(path, "JPEG", quality=60)
    elif kind == "resized":
        path = target_stem.with_suffix(".jpg")
        original.resize((original.width // 2, original.height // 2), Image.LANCZOS).save(path, "JPEG", quality=90)
    elif kind == "brightened":
        path = target_stem.with_suffix(".jpg")
        ImageEnhance.Brightness(original).enhance(1.2).save(path, "JPEG", quality=90)
    elif kind == "png":
        path = target_stem.with_suffix(".png")
        original.save(path, "PNG")
    elif kind == "exact":
        path = target_stem.with_suffix(source.suffix)
        shutil.copyfile(source, path)
    else:
        raise ValueError(f"`kind` must be one of {', '.join(COPY_KINDS)}, got {kind!r}")
    return path


def make_sample_folder(
    root: str | os.PathLike, n_with_copies: int = 6, n_distinct: int = 6, seed: int = 0
) -> dict[str, list[str]]:
    """Write a sample folder and return its ground truth in imagededup's format.

    ``n_with_copies`` originals get one copy of each kind in :data:`COPY_KINDS`
    (the byte-identical copy goes into a subfolder); ``n_distinct`` originals
    have no duplicate. The ground truth maps every file to its duplicates and is
    also written as ``ground_truth.json`` beside (not inside) the folder.
    """
    root = Path(root)
    (root / "copies").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    groups: list[list[str]] = []
    for k in range(n_with_copies + n_distinct):
        original = random_scene(rng)
        source = root / f"photo_{k:03d}.jpg"
        original.save(source, "JPEG", quality=92)
        group = [source.relative_to(root).as_posix()]
        if k < n_with_copies:
            for kind in COPY_KINDS:
                path = make_copy(original, kind, source, root / "copies" / f"photo_{k:03d}_{kind}")
                group.append(path.relative_to(root).as_posix())
        groups.append(group)
    truth = {name: sorted(set(group) - {name}) for group in groups for name in group}
    (root.parent / f"{root.name}_ground_truth.json").write_text(
        json.dumps(truth, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    return truth
