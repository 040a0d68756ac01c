"""A held-out wallpaper set as a distribution ships it: desktop-base's themes, each at many sizes.

Renders every per-screen SVG of Debian's ``desktop-base`` package (``THEME/wallpaper``,
``lockscreen``, ... ``/contents/images/WxH.svg``) at a quarter of its size to JPEG, and
writes ``labels.csv`` in :mod:`bench_trust`'s layout: category ``shipped``, one group per
theme (its lock screen and wallpaper are one artwork), every image in the ``held`` split. A
theme's part whose SVGs are byte-identical to an earlier theme's (``joy-inksplat``'s lock
screen is ``joy``'s) belongs to the group of the base theme (the shortest name): it is the same
artwork.
Nothing here was tuned on. Needs the unpacked package (``trust_set.py`` fetches it into
its cache) and resvg (``pip install resvg-py``, a benchmark-only tool)::

    python benchmarks/shipped_wallpapers.py --cache /work/cache/trust-data --folder /tmp/shipped
    python benchmarks/bench_trust.py --folder /tmp/shipped --work /tmp/shipped-work --methods hybrid,phash --peer
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import re
from pathlib import Path

from PIL import Image


def render(cache: Path, folder: Path, scale: int = 4) -> int:
    """Render the themes into ``folder/images`` and write ``folder/labels.csv``; returns the images written."""
    import resvg_py

    root = cache / "x" / "desktop-base" / "usr" / "share" / "desktop-base"
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    svgs = sorted(root.glob("*-theme/*/contents/images/*.svg"))
    # an SVG several themes ship belongs to the base theme, the shortest name (joy, not joy-inksplat)
    base_theme: dict[str, str] = {}  # SVG digest -> theme
    for svg in svgs:
        digest, theme = hashlib.sha256(svg.read_bytes()).hexdigest(), svg.parts[-5]
        base_theme[digest] = min(base_theme.get(digest, theme), theme, key=lambda t: (len(t), t))
    part_group = {
        (svg.parts[-5], svg.parts[-4]): base_theme[hashlib.sha256(svg.read_bytes()).hexdigest()] for svg in svgs
    }
    for svg in svgs:
        theme, kind = svg.parts[-5], svg.parts[-4]
        size = re.match(r"(\d+)x(\d+)$", svg.stem)
        if not size:
            continue
        width, height = int(size[1]) // scale, int(size[2]) // scale
        png = resvg_py.svg_to_bytes(svg_path=str(svg), width=width, height=height)
        name = f"{theme}-{kind}-{svg.stem}.jpg"
        Image.open(io.BytesIO(bytes(png))).convert("RGB").save(folder / "images" / name, quality=92)
        rows.append(
            {
                "path": f"images/{name}",
                "category": "shipped",
                "group": part_group[(theme, kind)],
                "split": "held",
                "variant": svg.stem,
            }
        )
    with open(folder / "labels.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["path", "category", "group", "split", "variant"])
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, required=True, help="trust_set.py's cache of unpacked packages")
    parser.add_argument("--folder", type=Path, required=True)
    parser.add_argument("--scale", type=int, default=4, help="render at 1/SCALE of each file's screen size")
    args = parser.parse_args(argv)
    print(f"{render(args.cache, args.folder, args.scale)} wallpapers in {args.folder}")


if __name__ == "__main__":
    main()
