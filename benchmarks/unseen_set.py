"""A check set from sources no threshold was chosen on: clip art, painted portraits, small game sprites.

:mod:`trust_set` is where the thresholds were tuned (its ``tune`` half) and reported (its
``held`` half), but both halves come from the same packages. This set asks whether the
figures carry over to images of other hands, built with the same copy protocol as its
``real`` category (2 transforms of :mod:`transforms` per original, a 50-70 % crop for a third,
copies written as JPEG on white), every image in the ``held`` split:

=============  ======================================================================
category       originals
=============  ======================================================================
``clipart``    ``openclipart-png``: icons, objects, drawings on transparent backgrounds
``portraits``  ``wesnoth-1.16-data``: painted character portraits (transparent) and
               story paintings (JPEG)
``sprites``    ``wesnoth-1.16-data``: unit sprites of 72 pixels, one per unit (not the
               animation frames, which differ by a few pixels and are no one's copies)
=============  ======================================================================

Originals are kept distinct as :class:`trust_set.Distinct` keeps them. Nothing here was
tuned on; look at it, do not tune on it::

    python benchmarks/unseen_set.py --folder /tmp/unseen --cache /work/cache/unseen-data
    python benchmarks/bench_trust.py --folder /tmp/unseen --work /tmp/unseen-work --methods hybrid,phash --peer --sheet
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.transforms import TRANSFORMS  # noqa: E402
from benchmarks.trust_set import (  # noqa: E402
    Distinct,
    Writer,
    _load,
    _on_white,
    _rng,
    copy_transforms,
    crop_area,
    fetch_packages,
    write_labels,
)

PACKAGES = ("openclipart-png", "wesnoth-1.16-data")
#: Longest side an original is written at (a few portraits are 2000 pixels and more).
MAX_SIDE = 1600
WESNOTH_IMAGES = "wesnoth-1.16-data/usr/share/games/wesnoth/1.16/data/core/images"


def originals(
    paths: list[Path], prefix: str, limit: int, min_side: int, seen: Distinct
) -> list[tuple[str, Image.Image]]:
    """Up to ``limit`` distinct pictures of ``paths``, in a seeded order."""
    found = []
    for index in _rng("unseen", prefix).permutation(len(paths)).tolist():
        image = _load(paths[index])
        if image is None or min(image.size) < min_side:
            continue
        if max(image.size) > MAX_SIDE:
            scale = MAX_SIDE / max(image.size)
            image = image.resize((round(image.width * scale), round(image.height * scale)), Image.LANCZOS)
        if np.asarray(_on_white(image).convert("L")).std() < 8 or not seen.add(image):
            continue
        found.append((f"{prefix}-{paths[index].parent.name}-{paths[index].stem}"[:80], image))
        if len(found) >= limit:
            break
    return found


def build(folder: Path, cache: Path, n_clipart: int = 260, n_portraits: int = 140, n_sprites: int = 100) -> Path:
    """Write the set into ``folder``; return the labels file."""
    unpacked = fetch_packages(cache, PACKAGES)
    wesnoth = unpacked / WESNOTH_IMAGES
    seen = Distinct()
    sprites = [p for p in sorted(wesnoth.glob("units/**/*.png")) if re.fullmatch(r"[a-z_]+", p.stem)]
    sets = {
        "clipart": originals(sorted((unpacked / "openclipart-png").rglob("*.png")), "clip", n_clipart, 64, seen),
        "portraits": originals(
            sorted(wesnoth.glob("portraits/**/*.png")) + sorted(wesnoth.glob("story/*.jpg")),
            "port",
            n_portraits,
            64,
            seen,
        ),
        "sprites": originals(sprites, "unit", n_sprites, 40, seen),
    }
    writer = Writer(folder)
    for category, found in sets.items():
        for name, image in found:
            rng = _rng("unseen-copy", name)
            writer.add(image, category, name, "original")
            flat = _on_white(image)
            for transform in copy_transforms(rng, 2):
                writer.add(TRANSFORMS[transform](flat), category, name, transform, "jpg")
            if rng.random() < 1 / 3:
                writer.add(crop_area(flat, rng), category, name, "crop_50_70", "jpg")
    return write_labels(folder, writer.rows, lambda row: "held")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folder", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=Path("/work/cache/unseen-data"))
    args = parser.parse_args(argv)
    with build(args.folder, args.cache).open() as handle:
        rows = list(csv.DictReader(handle))
    images, groups = (
        Counter(r["category"] for r in rows),
        Counter(r["category"] for r in rows if r["variant"] == "original"),
    )
    for category in sorted(images):
        print(f"{category:12s} images {images[category]:5d}  originals {groups[category]:4d}")


if __name__ == "__main__":
    main()
