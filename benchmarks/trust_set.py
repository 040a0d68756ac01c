"""A labelled set of real and generated images with hard negatives, for ``bench_trust.py``.

Build it (deterministic for a given seed, package versions and Debian packages)::

    python benchmarks/trust_set.py --cache /work/cache/trust-data --folder /tmp/trust-set

The real images come from Debian packages, fetched once into ``CACHE/debs`` with
``apt-get download`` and unpacked with ``dpkg -x`` into ``CACHE/x`` (never into the
repository), and from scikit-image's bundled data:

=================  ========================================================================
category           originals
=================  ========================================================================
``real``           objects cut out on transparent backgrounds (``tuxpaint-stamps-default``:
                   fruit, coins, planets, birds, letters...: many look alike), game sprites
                   (``pingus-data``), photographs (``skimage.data``); each gets 2 of the
                   transforms of :mod:`benchmarks.transforms` and, for a third of them, a
                   crop of 50-70 % of the area
``wallpapers``     raster wallpapers of ``desktop-base``, ``gnome-backgrounds``,
                   ``sway-backgrounds``, ``ukui-wallpapers``, ``lomiri-wallpapers``, each
                   written at several resolutions and aspect ratios (centre crops, as a
                   distribution ships one artwork for several screens)
``ellipses``       generated 800 x 600 flat-colour pictures with 1-4 ellipses, from a small
                   palette (so unrelated pictures share colours); 1 in 8 has a copy
``graphics``       generated simple graphics (stripes, checkers, a rectangle, gradients),
                   alpha-only pictures (RGB one flat colour, the picture in alpha),
                   near-blank pictures, and look-alike shapes in different colours on white;
                   about 1 in 8 has a copy
=================  ========================================================================

Written: ``images/CATEGORY/GROUP__VARIANT.EXT`` and ``labels.csv`` (path, category, group,
split, variant). Images of one group are duplicates of each other, all others are not.
``split`` is ``tune`` or ``held`` by group (a seeded half of each category).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.transforms import TRANSFORMS  # noqa: E402

PACKAGES = (
    "desktop-base",
    "gnome-backgrounds",
    "sway-backgrounds",
    "ukui-wallpapers",
    "lomiri-wallpapers",
    "pingus-data",
    "tuxpaint-stamps-default",
)
SKIMAGE_PHOTOS = (
    "astronaut",
    "brick",
    "camera",
    "chelsea",
    "coffee",
    "coins",
    "grass",
    "gravel",
    "horse",
    "hubble_deep_field",
    "moon",
    "motorcycle_left",
    "retina",
    "rocket",
    "page",
    "text",
    "color",
    "logo",
)
#: Screens a wallpaper is written for (width, height): landscape, square-ish and portrait.
SCREENS = ((1920, 1080), (1280, 1024), (1024, 768), (800, 600), (2560, 1080), (1080, 1920))
REAL_TRANSFORMS = tuple(t for t in TRANSFORMS if t != "upscale_200")  # upscaled large PNGs cost disk, not insight
PALETTE = (
    (230, 57, 70),
    (29, 53, 87),
    (69, 123, 157),
    (168, 218, 220),
    (241, 250, 238),
    (255, 183, 3),
    (42, 157, 143),
    (38, 70, 83),
    (0, 0, 0),
    (255, 255, 255),
)


def fetch_packages(cache: Path, packages: tuple[str, ...] = PACKAGES) -> Path:
    """Download and unpack ``packages`` into ``cache`` (skipped when already there)."""
    debs, unpacked = cache / "debs", cache / "x"
    debs.mkdir(parents=True, exist_ok=True)
    unpacked.mkdir(exist_ok=True)  # dpkg -x creates the last folder only: a fresh cache failed here
    for name in packages:
        if (unpacked / name).is_dir():
            continue
        if not list(debs.glob(f"{name}_*.deb")):
            subprocess.run(["apt-get", "download", name], cwd=debs, check=True)
        deb = sorted(debs.glob(f"{name}_*.deb"))[-1]
        subprocess.run(["dpkg", "-x", str(deb), str(unpacked / name)], check=True)
    return unpacked


def _rng(*key) -> np.random.Generator:
    return np.random.default_rng(int.from_bytes(hashlib.sha256(repr(key).encode()).digest()[:8], "little"))


def _load(path: Path) -> Image.Image | None:
    try:
        with Image.open(path) as image:
            image.load()
            return (
                image.convert("RGBA")
                if ("A" in image.getbands() or "transparency" in image.info)
                else image.convert("RGB")
            )
    except Exception:
        return None


def _on_white(image: Image.Image) -> Image.Image:
    if image.mode != "RGBA":
        return image.convert("RGB")
    white = Image.new("RGBA", image.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, image).convert("RGB")


def _fingerprint(image: Image.Image) -> np.ndarray:
    """A 16 x 16 grey map of zero mean and unit norm, with the mean colour appended."""
    flat = _on_white(image)
    grey = np.asarray(flat.convert("L").resize((16, 16), Image.BILINEAR), dtype=np.float32).ravel()
    grey -= grey.mean()
    grey /= max(float(np.linalg.norm(grey)), 1e-6)
    return np.concatenate([grey, np.asarray(flat.resize((1, 1), Image.BOX), dtype=np.float32).ravel() / 255])


class Distinct:
    """Keeps originals distinct: a picture near an earlier one (a packaged copy) is refused."""

    def __init__(self):
        self.seen: list[np.ndarray] = []

    def add(self, image: Image.Image) -> bool:
        key = _fingerprint(image)
        mirrored = _fingerprint(image.transpose(Image.Transpose.FLIP_LEFT_RIGHT))
        for other in self.seen:
            if (
                max(float(key[:256] @ other[:256]), float(mirrored[:256] @ other[:256])) > 0.9
                and float(np.abs(key[256:] - other[256:]).max()) < 0.12
            ):
                return False
        self.seen.append(key)
        return True


def crop_area(image: Image.Image, rng: np.random.Generator, low: float = 0.5, high: float = 0.7) -> Image.Image:
    """An off-centre crop keeping ``low``-``high`` of the area (the aspect ratio varies a little)."""
    w, h = image.size
    area = rng.uniform(low, high)
    fx = float(np.clip(np.sqrt(area) * rng.uniform(0.9, 1.1), 0.4, 1.0))
    fy = min(1.0, area / fx)
    cw, ch = max(1, round(w * fx)), max(1, round(h * fy))
    left, top = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    return image.crop((left, top, left + cw, top + ch))


def fit_screen(image: Image.Image, screen: tuple[int, int]) -> Image.Image:
    """Centre crop to the screen's aspect ratio, then resize to it (how wallpapers ship per screen)."""
    w, h = image.size
    target = screen[0] / screen[1]
    if w / h > target:
        cw = round(h * target)
        box = ((w - cw) // 2, 0, (w - cw) // 2 + cw, h)
    else:
        ch = round(w / target)
        box = (0, (h - ch) // 2, w, (h - ch) // 2 + ch)
    return image.crop(box).resize(screen, Image.LANCZOS)


class Writer:
    def __init__(self, folder: Path):
        self.folder, self.rows = folder, []

    def add(self, image: Image.Image, category: str, group: str, variant: str, fmt: str = "png") -> None:
        relative = Path("images") / category / f"{group}__{variant}.{fmt}"
        path = self.folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "jpg":
            _on_white(image).save(path, "JPEG", quality=92)
        else:
            image.save(path, "PNG")
        self.rows.append({"path": relative.as_posix(), "category": category, "group": group, "variant": variant})


def real_originals(unpacked: Path, n_stamps: int, n_sprites: int) -> list[tuple[str, Image.Image]]:
    """Cut-out stamps, sprites and photographs, distinct by :func:`_fingerprint`, in a seeded order."""
    found: list[tuple[str, Image.Image]] = []
    seen = Distinct()

    def take(paths: list[Path], prefix: str, limit: int, min_side: int) -> None:
        rng = _rng(prefix)
        count = 0
        for index in rng.permutation(len(paths)).tolist():
            image = _load(paths[index])
            if image is None or min(image.size) < min_side:
                continue
            if np.asarray(_on_white(image).convert("L")).std() < 8 or not seen.add(image):
                continue
            found.append((f"{prefix}-{paths[index].parent.name}-{paths[index].stem}"[:80], image))
            count += 1
            if count >= limit:
                return

    take(sorted((unpacked / "tuxpaint-stamps-default").rglob("*.png")), "stamp", n_stamps, 64)
    take(sorted((unpacked / "pingus-data").rglob("*.png")), "sprite", n_sprites, 40)
    import skimage.data  # scikit-image ships these files in its wheel

    folder = Path(skimage.data.__file__).parent
    for name in SKIMAGE_PHOTOS:
        for path in sorted(folder.glob(f"{name}.*")):
            image = _load(path)
            if image is not None and seen.add(image):
                found.append((f"photo-{name}", image))
    return found


def wallpapers(unpacked: Path) -> list[tuple[str, Image.Image]]:
    paths = [
        p
        for name in ("desktop-base", "gnome-backgrounds", "sway-backgrounds", "ukui-wallpapers", "lomiri-wallpapers")
        for p in sorted((unpacked / name).rglob("*"))
        if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp")
    ]
    out, seen, names = [], Distinct(), set()
    for path in paths:
        # one artwork shipped for several screens (Sway_Wallpaper_Blue_1366x768, ..._Portrait, -nologo): one original
        name = re.sub(
            r"([_-]\d+x\d+)?([_-]portrait)?([_-]nologo)?$",
            "",
            f"wall-{path.parent.parent.name}-{path.stem}",
            flags=re.I,
        )[:80]
        image = _load(path)
        if name in names or image is None or min(image.size) < 500 or not seen.add(image):
            continue
        names.add(name)
        out.append((name, image))
    return out


def ellipse_picture(rng: np.random.Generator, size=(800, 600)) -> Image.Image:
    colours = rng.permutation(len(PALETTE))
    image = Image.new("RGB", size, PALETTE[colours[0]])
    draw = ImageDraw.Draw(image)
    for k in range(int(rng.integers(1, 5))):
        cx, cy = rng.uniform(0.1, 0.9) * size[0], rng.uniform(0.1, 0.9) * size[1]
        rx, ry = rng.uniform(30, 200), rng.uniform(30, 200)
        draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=PALETTE[colours[1 + k % (len(PALETTE) - 1)]])
    return image


def graphic_picture(kind: str, rng: np.random.Generator) -> Image.Image:
    w, h = int(rng.choice([400, 640, 800])), int(rng.choice([300, 480, 600]))
    colour = lambda: tuple(int(v) for v in rng.integers(0, 256, 3))  # noqa: E731
    if kind == "stripes":
        image = Image.new("RGB", (w, h), colour())
        draw, step, c = ImageDraw.Draw(image), int(rng.integers(10, 80)), colour()
        for x in range(0, w, 2 * step):
            draw.rectangle((x, 0, x + step - 1, h), fill=c)
        return image.rotate(float(rng.choice([0, 90])), expand=True) if rng.random() < 0.5 else image
    if kind == "checkers":
        cell, a, b = int(rng.integers(16, 100)), np.array(colour()), np.array(colour())
        yy, xx = np.mgrid[0:h, 0:w]
        mask = ((yy // cell + xx // cell) % 2).astype(bool)[..., None]
        return Image.fromarray(np.where(mask, a, b).astype(np.uint8))
    if kind == "rectangle":
        image = Image.new("RGB", (w, h), colour())
        x0, y0 = rng.uniform(0, 0.6) * w, rng.uniform(0, 0.6) * h
        ImageDraw.Draw(image).rectangle(
            (x0, y0, x0 + rng.uniform(0.1, 0.4) * w, y0 + rng.uniform(0.1, 0.4) * h), fill=colour()
        )
        return image
    if kind == "gradient":
        a, b = np.array(colour(), float), np.array(colour(), float)
        t = np.linspace(0, 1, w)[None, :, None] if rng.random() < 0.5 else np.linspace(0, 1, h)[:, None, None]
        return Image.fromarray(np.broadcast_to(a * (1 - t) + b * t, (h, w, 3)).astype(np.uint8))
    if kind == "nearblank":
        image = Image.new("RGB", (w, h), colour())
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        ImageDraw.Draw(image).ellipse((x, y, x + 6, y + 6), fill=colour())
        return image
    if kind == "alphaonly":
        rgb = (255, 255, 255) if rng.random() < 0.5 else (0, 0, 0)
        alpha = Image.new("L", (w, h), 0)
        draw = ImageDraw.Draw(alpha)
        for _ in range(int(rng.integers(2, 6))):
            x, y = rng.uniform(0, w), rng.uniform(0, h)
            r = rng.uniform(20, 150)
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(
                (x - r, y - r, x + r, y + r), fill=int(rng.integers(120, 256))
            )
        image = Image.new("RGBA", (w, h), rgb + (0,))
        image.putalpha(alpha)
        return image
    raise ValueError(f"`kind` must be a known graphic, got {kind!r}")


def lookalike_object(shape: int, colour: tuple[int, int, int], rng: np.random.Generator) -> Image.Image:
    """One of a few shapes, in ``colour`` with a darker outline, on white, slightly moved and sized."""
    image = Image.new("RGB", (500, 500), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    c = 250 + rng.uniform(-30, 30, 2)
    r = 150 + rng.uniform(-25, 25)
    outline = tuple(v // 2 for v in colour)
    if shape == 0:
        draw.ellipse((c[0] - r, c[1] - r, c[0] + r, c[1] + r), fill=colour, outline=outline, width=6)
    elif shape == 1:
        points = [
            (c[0] + r * np.cos(a) * (1 if k % 2 == 0 else 0.45), c[1] + r * np.sin(a) * (1 if k % 2 == 0 else 0.45))
            for k, a in enumerate(np.linspace(-np.pi / 2, 1.5 * np.pi, 11)[:-1])
        ]
        draw.polygon(points, fill=colour, outline=outline, width=6)
    else:
        draw.rounded_rectangle(
            (c[0] - r, c[1] - r * 0.6, c[0] + r, c[1] + r * 0.6), radius=40, fill=colour, outline=outline, width=6
        )
    draw.ellipse((c[0] - 20, c[1] - r * 0.3 - 20, c[0] + 20, c[1] - r * 0.3 + 20), fill=(255, 255, 255))  # a highlight
    return image


def copy_transforms(rng: np.random.Generator, count: int) -> list[str]:
    return [REAL_TRANSFORMS[k] for k in rng.choice(len(REAL_TRANSFORMS), size=count, replace=False)]


def build(
    folder: Path, cache: Path, n_stamps: int = 330, n_sprites: int = 170, n_ellipses: int = 240, n_graphics: int = 200
) -> Path:
    """Write the set into ``folder``; return the labels file."""
    unpacked = fetch_packages(cache)
    writer = Writer(folder)
    for name, image in real_originals(unpacked, n_stamps, n_sprites):
        rng = _rng("real", name)
        writer.add(image, "real", name, "original")
        flat = _on_white(image)
        for t in copy_transforms(rng, 2):
            writer.add(TRANSFORMS[t](flat), "real", name, t, "jpg")
        if rng.random() < 1 / 3:
            writer.add(crop_area(flat, rng), "real", name, "crop_50_70", "jpg")
        if image.mode == "RGBA" and rng.random() < 0.25:
            writer.add(
                image.resize((max(1, image.width * 3 // 4), max(1, image.height * 3 // 4)), Image.LANCZOS),
                "real",
                name,
                "alpha_resize_75",
            )
    for name, image in wallpapers(unpacked):
        rng = _rng("wall", name)
        screens = [SCREENS[k] for k in sorted(rng.choice(len(SCREENS), size=4, replace=False))]
        for w, h in screens:
            writer.add(fit_screen(_on_white(image), (w, h)), "wallpapers", name, f"{w}x{h}", "jpg")
    for k in range(n_ellipses):
        rng = _rng("ellipse", k)
        image = ellipse_picture(rng)
        writer.add(image, "ellipses", f"ell{k:04d}", "original")
        if k % 8 == 0:
            t = ["jpeg_q25", "downscale_50", "noise_s8", "brightness_130"][k // 8 % 4]
            writer.add(TRANSFORMS[t](image), "ellipses", f"ell{k:04d}", t, "jpg")
    kinds = ("stripes", "checkers", "rectangle", "gradient", "nearblank", "alphaonly", "lookalike")
    for k in range(n_graphics):
        kind = kinds[k % len(kinds)]
        rng = _rng("graphic", k)
        if kind == "lookalike":
            image = lookalike_object(k // len(kinds) % 3, PALETTE[k // len(kinds) % len(PALETTE)], rng)
        else:
            image = graphic_picture(kind, rng)
        group = f"{kind}{k:04d}"
        writer.add(image, "graphics", group, "original")
        if k % 8 == 0 or (kind == "alphaonly" and k % 4 == 0):
            size = (max(1, image.width // 2), max(1, image.height // 2))
            if image.mode == "RGBA":
                writer.add(image.resize(size, Image.LANCZOS), "graphics", group, "downscale_50")
            else:
                writer.add(
                    TRANSFORMS["jpeg_q25" if k % 16 else "downscale_50"](image), "graphics", group, "copy", "jpg"
                )
    rng = _rng("split")
    groups = sorted({(r["category"], r["group"]) for r in writer.rows})
    split = {g: ("tune" if rng.random() < 0.5 else "held") for g in groups}
    return write_labels(folder, writer.rows, lambda row: split[(row["category"], row["group"])])


def write_labels(folder: Path, rows: list[dict], split_of) -> Path:
    """``folder/labels.csv``: every written image's row, with its split (``split_of(row)``)."""
    labels = folder / "labels.csv"
    with labels.open("w", newline="") as handle:
        out = csv.DictWriter(handle, fieldnames=("path", "category", "group", "split", "variant"))
        out.writeheader()
        for row in rows:
            out.writerow({**row, "split": split_of(row)})
    return labels


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folder", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=Path("/work/cache/trust-data"))
    args = parser.parse_args(argv)
    labels = build(args.folder, args.cache)
    with labels.open() as handle:
        rows = list(csv.DictReader(handle))
    for category in sorted({r["category"] for r in rows}):
        part = [r for r in rows if r["category"] == category]
        print(f"{category:12s} images {len(part):5d}  originals {len({r['group'] for r in part}):4d}")


if __name__ == "__main__":
    main()
