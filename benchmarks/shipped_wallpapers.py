"""Held-out wallpaper sets as distributions ship them: one artwork at many sizes.

Two sources, each written to ``FOLDER/images`` with ``labels.csv`` in :mod:`bench_trust`'s
layout (every image in the ``held`` split; nothing here was tuned on):

``desktop-base``  (category ``shipped``) every per-screen SVG of Debian's ``desktop-base``
                  (``THEME/wallpaper``, ``lockscreen``, ... ``/contents/images/WxH.svg``), rendered
                  at a quarter of its size to JPEG; one group per theme (its lock screen and
                  wallpaper are one artwork). A theme's part whose SVGs are byte-identical to an
                  earlier theme's (``joy-inksplat``'s lock screen is ``joy``'s) belongs to the group
                  of the base theme (the shortest name): it is the same artwork. Needs resvg
                  (``pip install resvg-py``, a benchmark-only tool).
``plasma``        (category ``plasma``) the files of ``plasma-workspace-wallpapers`` copied as
                  shipped: up to 12 sizes of 4:3, 5:4, 16:10 and 16:9 per wallpaper, some with a
                  portrait layout for phones; one group per wallpaper, its dark variant
                  (``contents/images_dark``) a group of its own (other colours are another picture).

The packages are fetched into ``--cache`` like ``trust_set.py``'s::

    python benchmarks/shipped_wallpapers.py --cache /work/cache/trust-data --folder /tmp/shipped
    python benchmarks/shipped_wallpapers.py --source plasma --cache /work/cache/trust-data --folder /tmp/plasma
    python benchmarks/bench_trust.py --folder /tmp/shipped --work /tmp/shipped-work --methods hybrid,phash --peer
"""

from __future__ import annotations

import argparse
import hashlib
import io
import re
import shutil
import sys
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.trust_set import fetch_packages, write_labels  # noqa: E402

PLASMA = "plasma-workspace-wallpapers"


def render(cache: Path, folder: Path, scale: int = 4) -> int:
    """Render the themes into ``folder/images`` and write ``folder/labels.csv``; returns the images written."""
    import resvg_py

    root = fetch_packages(cache, ("desktop-base",)) / "desktop-base" / "usr" / "share" / "desktop-base"
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
                "variant": svg.stem,
            }
        )
    write_labels(folder, rows, lambda row: "held")
    return len(rows)


def copy_plasma(cache: Path, folder: Path) -> int:
    """Copy Plasma's wallpapers as shipped into ``folder/images`` and label them; returns the images written."""
    root = fetch_packages(cache, (PLASMA,)) / PLASMA / "usr" / "share" / "wallpapers"
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for path in sorted(root.glob("*/contents/images*/*")):
        if path.suffix.lower() not in (".jpg", ".png"):
            continue
        wallpaper, variant_folder = path.relative_to(root).parts[0], path.parent.name
        group = wallpaper + ("-dark" if variant_folder == "images_dark" else "")
        name = f"{group}-{path.name}"
        shutil.copyfile(path, folder / "images" / name)
        rows.append({"path": f"images/{name}", "category": "plasma", "group": group, "variant": path.stem})
    write_labels(folder, rows, lambda row: "held")
    return len(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", choices=("desktop-base", "plasma"), default="desktop-base")
    parser.add_argument("--cache", type=Path, required=True, help="trust_set.py's cache of unpacked packages")
    parser.add_argument("--folder", type=Path, required=True)
    parser.add_argument("--scale", type=int, default=4, help="desktop-base: render at 1/SCALE of each screen size")
    args = parser.parse_args(argv)
    written = (
        render(args.cache, args.folder, args.scale)
        if args.source == "desktop-base"
        else copy_plasma(args.cache, args.folder)
    )
    print(f"{written} wallpapers in {args.folder}")


if __name__ == "__main__":
    main()
