"""Image transforms and a transformed-copies benchmark generator.

Transforms
----------
:data:`TRANSFORMS` maps a name to a small pure function ``Image -> Image``
(input RGB or L; the input is never modified). Output sizes are rounded to the
nearest pixel:

=================  ===========================================================
``jpeg_q25``       re-encode as JPEG quality 25 (same size and mode)
``downscale_50``   resize to 50 % (Lanczos)
``upscale_200``    resize to 200 % (bicubic)
``thumbnail_160``  shrink so the longer side is at most 160 px (aspect kept)
``brightness_130`` brightness +30 % (``ImageEnhance.Brightness(1.3)``)
``contrast_130``   contrast +30 % (``ImageEnhance.Contrast(1.3)``)
``saturation_150`` colour saturation +50 % (``ImageEnhance.Color(1.5)``)
``grayscale``      convert to mode ``L``
``blur_r2``        Gaussian blur, radius 2
``noise_s8``       add Gaussian noise, sigma 8 grey levels, seeded from the
                   pixel data (same input, same output)
``crop_5``         central crop keeping 95 % of width and height
``crop_15``        central crop keeping 85 % of width and height
``rotate_5``       rotate 5 degrees counter-clockwise about the centre, same
                   size (``expand=False``), corners filled with black
``mirror``         horizontal flip
``border_10``      white border of 10 % of the width on the left and right and
                   10 % of the height on top and bottom (size x 1.2)
``caption_bar``    black bar over the bottom 12 % with white text in Pillow's
                   default font (same size)
``stretch_130``    stretch the width by 1.3 (height kept)
=================  ===========================================================

Benchmark
---------
:func:`make_transformed_copies` cuts *originals* out of real photographs that
ship inside PyPI packages (no download): ``china.jpg`` and ``flower.jpg`` of
scikit-learn (the files behind ``sklearn.datasets.load_sample_images()``) and,
when scikit-image is installed, six photographs bundled in its wheel
(``skimage.data``: astronaut, camera, chelsea, coffee, rocket and the left view
of the motorcycle stereo pair). To get more originals than photographs, each
photograph is cut into non-overlapping rectangular regions of varied size (a
seeded random guillotine partition: repeatedly split a region, picked with
probability proportional to its area, across its longer side at 40-60 %
of its length).
Each original is a crop of one region, covering at most 90 % of the region's
width and height, so two crops never share a pixel and are at least a few
pixels apart: distinct regions are distinct images. 60 % more regions than
needed are cut, shared among the photographs by pixel count, and the flattest
crops overall (lowest grey-level standard deviation at 16 x 16 pixels: plain
sky, blurred background, fine texture) are dropped, since such crops look
alike to a duplicate detector even when they do not share pixels; so
photographs with more structure give more originals. Crops are at least
:data:`MIN_CROP_SIDE` pixels on a side. With ``size`` they are resized to
exactly that size (e.g. ``(1632, 1224)``, about 2 megapixels, which upsamples
them: the photographs are only about 0.25 megapixels each); otherwise they keep
their native resolution (with 100 originals, roughly 50 to 250 pixels a side).

The folder written contains ``originals/NAME.jpg``, ``copies/NAME__T.jpg`` for
every transform ``T``, ``ground_truth.json`` (imagededup's ground-truth format,
paths relative to the folder), ``pairs.csv`` (every positive pair, labelled by
transform, or :data:`SIBLING_LABEL` for two copies of one original) and
``sources.csv`` (where each original was cut from). All JPEGs are written with
quality 95 except the ``jpeg_q25`` copies, which are the original encoded at
quality 25. The result depends only on the arguments, the photographs
available and the Pillow/numpy versions.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import math
import os
import shutil
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

Transform = Callable[[Image.Image], Image.Image]

#: JPEG quality of every written file except ``jpeg_q25`` copies.
JPEG_QUALITY = 95
#: Smallest crop side in pixels (before resizing to ``size``).
MIN_CROP_SIDE = 32
#: Label of a pair of two copies of the same original in ``pairs.csv``.
SIBLING_LABEL = "sibling"
GROUND_TRUTH_FILE = "ground_truth.json"
PAIRS_FILE = "pairs.csv"
SOURCES_FILE = "sources.csv"
ORIGINALS_DIR = "originals"
COPIES_DIR = "copies"
#: Separator between an original's name and the transform in a copy's name.
COPY_SEPARATOR = "__"

_CROP_FILL = 0.9  # a crop spans at most this fraction of its region
_SPLIT_RANGE = (0.4, 0.6)  # where a region is split, as a fraction of its long side
_SPARE_REGIONS = 0.6  # cut this many regions more than needed; the flattest are dropped
_CAPTION_TEXT = "imgdedup benchmark copy"


# ---------------------------------------------------------------------------
# transforms
# ---------------------------------------------------------------------------


def _scaled(length: int, factor: float) -> int:
    return max(1, round(length * factor))


def _resize(image: Image.Image, fx: float, fy: float, resample: Image.Resampling) -> Image.Image:
    return image.resize((_scaled(image.width, fx), _scaled(image.height, fy)), resample)


def _central_crop(image: Image.Image, keep: float) -> Image.Image:
    w, h = _scaled(image.width, keep), _scaled(image.height, keep)
    left, top = (image.width - w) // 2, (image.height - h) // 2
    return image.crop((left, top, left + w, top + h))


def jpeg_q25(image: Image.Image) -> Image.Image:
    """Re-encode as JPEG quality 25 and decode again."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=25)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return decoded.copy()


def downscale_50(image: Image.Image) -> Image.Image:
    """Resize to half the width and height (Lanczos)."""
    return _resize(image, 0.5, 0.5, Image.Resampling.LANCZOS)


def upscale_200(image: Image.Image) -> Image.Image:
    """Resize to twice the width and height (bicubic)."""
    return _resize(image, 2.0, 2.0, Image.Resampling.BICUBIC)


def thumbnail_160(image: Image.Image) -> Image.Image:
    """Shrink so the longer side is at most 160 px, keeping the aspect ratio."""
    thumb = image.copy()
    thumb.thumbnail((160, 160), Image.Resampling.LANCZOS)
    return thumb


def brightness_130(image: Image.Image) -> Image.Image:
    """Increase brightness by 30 %."""
    return ImageEnhance.Brightness(image).enhance(1.3)


def contrast_130(image: Image.Image) -> Image.Image:
    """Increase contrast by 30 %."""
    return ImageEnhance.Contrast(image).enhance(1.3)


def saturation_150(image: Image.Image) -> Image.Image:
    """Increase colour saturation by 50 %."""
    return ImageEnhance.Color(image).enhance(1.5)


def grayscale(image: Image.Image) -> Image.Image:
    """Convert to 8-bit grayscale (mode ``L``)."""
    return image.convert("L")


def blur_r2(image: Image.Image) -> Image.Image:
    """Gaussian blur with radius 2."""
    return image.filter(ImageFilter.GaussianBlur(2))


def gaussian_noise(image: Image.Image, sigma: float = 8.0, seed: int | None = None) -> Image.Image:
    """Add zero-mean Gaussian noise, rounded and clipped to 0..255.

    Parameters
    ----------
    image : PIL.Image.Image
        8-bit image (``L`` or ``RGB``).
    sigma : float, default 8.0
        Standard deviation in grey levels.
    seed : int or None, default None
        Noise seed; ``None`` derives it from the pixel data (CRC-32), so the
        function is deterministic yet different images get different noise.

    Returns
    -------
    PIL.Image.Image
        Same size and mode.
    """
    pixels = np.asarray(image, dtype=np.float64)
    if seed is None:
        seed = zlib.crc32(image.tobytes())
    noise = np.random.default_rng(seed).normal(0.0, sigma, size=pixels.shape)
    noisy = np.clip(np.rint(pixels + noise), 0, 255).astype(np.uint8)
    return Image.fromarray(noisy)


def noise_s8(image: Image.Image) -> Image.Image:
    """Add Gaussian noise with sigma 8, seeded from the pixel data."""
    return gaussian_noise(image, 8.0)


def crop_5(image: Image.Image) -> Image.Image:
    """Central crop keeping 95 % of the width and height."""
    return _central_crop(image, 0.95)


def crop_15(image: Image.Image) -> Image.Image:
    """Central crop keeping 85 % of the width and height."""
    return _central_crop(image, 0.85)


def rotate_5(image: Image.Image) -> Image.Image:
    """Rotate 5 degrees counter-clockwise, same size, black corners (bicubic)."""
    return image.rotate(5, resample=Image.Resampling.BICUBIC, expand=False, fillcolor="black")


def mirror(image: Image.Image) -> Image.Image:
    """Flip left to right."""
    return ImageOps.mirror(image)


def border_10(image: Image.Image) -> Image.Image:
    """Add a white border: 10 % of the width on each side, 10 % of the height top and bottom."""
    dx, dy = round(image.width * 0.1), round(image.height * 0.1)
    return ImageOps.expand(image, border=(dx, dy, dx, dy), fill="white")


def caption_bar(image: Image.Image) -> Image.Image:
    """Cover the bottom 12 % with a black bar carrying white text (Pillow's default font)."""
    out = image.copy()
    bar = max(1, round(image.height * 0.12))
    top = image.height - bar
    draw = ImageDraw.Draw(out)
    draw.rectangle((0, top, image.width, image.height), fill="black")
    font = ImageFont.load_default(size=max(6, round(bar * 0.6)))
    left, text_top, _, text_bottom = draw.textbbox((0, 0), _CAPTION_TEXT, font=font)
    y = top + (bar - (text_bottom - text_top)) / 2 - text_top
    draw.text((max(2, round(bar * 0.3)) - left, y), _CAPTION_TEXT, fill="white", font=font)
    return out


def stretch_130(image: Image.Image) -> Image.Image:
    """Stretch the width by 1.3, keeping the height (bicubic)."""
    return _resize(image, 1.3, 1.0, Image.Resampling.BICUBIC)


#: Transform name -> function, in a fixed order.
TRANSFORMS: dict[str, Transform] = {
    "jpeg_q25": jpeg_q25,
    "downscale_50": downscale_50,
    "upscale_200": upscale_200,
    "thumbnail_160": thumbnail_160,
    "brightness_130": brightness_130,
    "contrast_130": contrast_130,
    "saturation_150": saturation_150,
    "grayscale": grayscale,
    "blur_r2": blur_r2,
    "noise_s8": noise_s8,
    "crop_5": crop_5,
    "crop_15": crop_15,
    "rotate_5": rotate_5,
    "mirror": mirror,
    "border_10": border_10,
    "caption_bar": caption_bar,
    "stretch_130": stretch_130,
}

#: Transforms whose output has the input's width and height.
SIZE_PRESERVING: tuple[str, ...] = (
    "jpeg_q25",
    "brightness_130",
    "contrast_130",
    "saturation_150",
    "grayscale",
    "blur_r2",
    "noise_s8",
    "rotate_5",
    "mirror",
    "caption_bar",
)

# Copies made by these functions are written as the original encoded at this
# JPEG quality (decoding the file gives exactly the function's output).
_WRITTEN_AS_JPEG: dict[Transform, int] = {jpeg_q25: 25}


# ---------------------------------------------------------------------------
# photographs
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Photo:
    """A photograph shipped inside an installed Python package.

    Attributes
    ----------
    name : str
        Short name, used as the prefix of the originals cut from it.
    package : str
        Distribution that ships it (for ``pip install``).
    module : str
        Import name of that package.
    path_in_package : str
        File path relative to the package folder.
    """

    name: str
    package: str
    module: str
    path_in_package: str

    def path(self) -> Path | None:
        """The file, or ``None`` if the package is not installed (it is not imported)."""
        spec = importlib.util.find_spec(self.module)
        if spec is None or not spec.submodule_search_locations:
            return None
        path = Path(next(iter(spec.submodule_search_locations))) / self.path_in_package
        return path if path.is_file() else None


#: The photographs used, in order.
PHOTOS: dict[str, Photo] = {
    p.name: p
    for p in (
        Photo("china", "scikit-learn", "sklearn", "datasets/images/china.jpg"),
        Photo("flower", "scikit-learn", "sklearn", "datasets/images/flower.jpg"),
        Photo("astronaut", "scikit-image", "skimage", "data/astronaut.png"),
        Photo("camera", "scikit-image", "skimage", "data/camera.png"),
        Photo("chelsea", "scikit-image", "skimage", "data/chelsea.png"),
        Photo("coffee", "scikit-image", "skimage", "data/coffee.png"),
        Photo("rocket", "scikit-image", "skimage", "data/rocket.jpg"),
        Photo("motorcycle", "scikit-image", "skimage", "data/motorcycle_left.png"),
    )
}


def available_photos() -> list[str]:
    """Names of the :data:`PHOTOS` whose package is installed, in order."""
    return [name for name, photo in PHOTOS.items() if photo.path() is not None]


def load_photo(name: str) -> Image.Image:
    """Load one of :data:`PHOTOS` as an RGB image.

    Raises
    ------
    ValueError
        If ``name`` is not a known photograph.
    FileNotFoundError
        If its package is not installed.
    """
    if name not in PHOTOS:
        raise ValueError(f"photo must be one of {', '.join(PHOTOS)}; got {name!r}")
    photo = PHOTOS[name]
    path = photo.path()
    if path is None:
        raise FileNotFoundError(f"photo {name!r} needs the {photo.package} package (pip install {photo.package})")
    with Image.open(path) as image:
        return image.convert("RGB")


# ---------------------------------------------------------------------------
# cutting originals
# ---------------------------------------------------------------------------

Box = tuple[int, int, int, int]  # left, top, right, bottom


@dataclass(frozen=True)
class CropSource:
    """Where an original was cut from: ``photo`` and the ``box`` (l, t, r, b)."""

    name: str
    photo: str
    box: Box


def _allocate(total: int, weights: Sequence[float]) -> list[int]:
    """Split ``total`` proportionally to ``weights`` (largest remainder, ties by order)."""
    quotas = [total * w / sum(weights) for w in weights]
    counts = [math.floor(q) for q in quotas]
    by_remainder = sorted(range(len(quotas)), key=lambda i: (-(quotas[i] - counts[i]), i))
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _cut_range(length: int, min_region: int) -> tuple[int, int]:
    """Allowed cut offsets along a side: 40-60 % of it, leaving both parts >= ``min_region``."""
    low = max(round(length * _SPLIT_RANGE[0]), min_region)
    high = min(round(length * _SPLIT_RANGE[1]), length - min_region)
    return low, high


def _partition(width: int, height: int, n_regions: int, rng: np.random.Generator) -> list[Box]:
    """Cut ``width x height`` into ``n_regions`` non-overlapping rectangles."""
    min_region = math.ceil(MIN_CROP_SIDE / _CROP_FILL)

    def splittable(box: Box) -> bool:
        w, h = box[2] - box[0], box[3] - box[1]
        low, high = _cut_range(max(w, h), min_region)
        return min(w, h) >= min_region and low <= high

    regions: list[Box] = [(0, 0, width, height)]
    while len(regions) < n_regions:
        candidates = [i for i, box in enumerate(regions) if splittable(box)]
        if not candidates:
            raise ValueError(f"cannot cut {n_regions} regions")
        areas = np.array(
            [(regions[i][2] - regions[i][0]) * (regions[i][3] - regions[i][1]) for i in candidates], dtype=np.float64
        )
        l, t, r, b = regions.pop(candidates[rng.choice(len(candidates), p=areas / areas.sum())])
        if r - l >= b - t:
            cut = l + int(rng.integers(*_cut_range(r - l, min_region), endpoint=True))
            regions += [(l, t, cut, b), (cut, t, r, b)]
        else:
            cut = t + int(rng.integers(*_cut_range(b - t, min_region), endpoint=True))
            regions += [(l, t, r, cut), (l, cut, r, b)]
    return regions


def _crop_in(region: Box, aspect: float | None, rng: np.random.Generator) -> Box:
    """A box inside ``region`` spanning at most 90 % of it, of the given aspect (w/h)."""
    l, t, r, b = region
    w, h = r - l, b - t
    if aspect is None:
        aspect = min(max(w / h, 3 / 4), 4 / 3)
    crop_w = min(w, h * aspect) * _CROP_FILL
    crop_w, crop_h = max(1, round(crop_w)), max(1, round(crop_w / aspect))
    left = l + int(rng.integers(0, w - crop_w + 1))
    top = t + int(rng.integers(0, h - crop_h + 1))
    return (left, top, left + crop_w, top + crop_h)


def _detail(image: Image.Image) -> float:
    """Grey-level standard deviation at 16 x 16: low for flat or fine-textured crops."""
    small = image.convert("L").resize((16, 16), Image.Resampling.BOX)
    return float(np.asarray(small, dtype=np.float64).std())


def plan_crops(photos: Sequence[str], n_originals: int, seed: int, size: tuple[int, int] | None) -> list[CropSource]:
    """Choose the crops that become the originals (see the module docstring).

    Parameters
    ----------
    photos : Sequence[str]
        Names from :data:`PHOTOS`.
    n_originals : int
        Number of crops.
    seed : int
        Seed; each photograph gets its own stream derived from it and its name.
    size : tuple of int or None
        Target ``(width, height)``: crops get its aspect ratio. ``None``: each
        crop takes its region's aspect clamped to 3:4 .. 4:3.

    Returns
    -------
    list[CropSource]
        Named ``PHOTO-NNN``, grouped by photograph in ``photos`` order.

    Raises
    ------
    ValueError
        If a photograph cannot hold its share of crops of at least
        :data:`MIN_CROP_SIDE` pixels.
    """
    images = {name: load_photo(name) for name in photos}
    n_regions = n_originals + math.ceil(n_originals * _SPARE_REGIONS)
    counts = _allocate(n_regions, [im.width * im.height for im in images.values()])
    aspect = size[0] / size[1] if size else None
    candidates: list[tuple[float, int, str, Box]] = []  # (-detail, order, photo, box)
    for (name, image), count in zip(images.items(), counts):
        if count == 0:
            continue
        rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
        try:
            regions = _partition(image.width, image.height, count, rng)
        except ValueError:
            raise ValueError(
                f"n_originals={n_originals} is too many for {len(photos)} photograph(s): "
                f"{name!r} ({image.width}x{image.height}) cannot be cut into {count} "
                f"regions with crops of at least {MIN_CROP_SIDE} px; use fewer originals "
                f"or more photographs (see available_photos())"
            ) from None
        for region in regions:
            box = _crop_in(region, aspect, rng)
            candidates.append((-_detail(image.crop(box)), len(candidates), name, box))
    kept = sorted(candidates)[:n_originals]
    sources: list[CropSource] = []
    for name in images:
        boxes = sorted((box for _, _, photo, box in kept if photo == name), key=lambda box: (box[1], box[0]))
        sources += [CropSource(f"{name}-{j:03d}", name, box) for j, box in enumerate(boxes)]
    return sources


# ---------------------------------------------------------------------------
# ground truth
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class GroundTruth:
    """Ground truth of a transformed-copies folder.

    Attributes
    ----------
    root : Path
        The folder; file names are ``/``-separated paths relative to it.
    duplicates : dict[str, list[str]]
        imagededup's ground-truth map: every file -> its duplicates (sorted).
    pairs : list[tuple[str, str, str]]
        Every positive pair once as ``(a, b, label)``: ``(original, copy,
        transform)`` or ``(copy, copy, SIBLING_LABEL)``.
    """

    root: Path
    duplicates: dict[str, list[str]]
    pairs: list[tuple[str, str, str]]

    @property
    def originals(self) -> list[str]:
        """Paths of the originals."""
        return [k for k in self.duplicates if k.startswith(ORIGINALS_DIR + "/")]

    @classmethod
    def load(cls, root: str | os.PathLike[str]) -> GroundTruth:
        """Read ``ground_truth.json`` and ``pairs.csv`` from ``root``."""
        root = Path(root)
        duplicates = json.loads((root / GROUND_TRUTH_FILE).read_text(encoding="utf-8"))
        with open(root / PAIRS_FILE, newline="", encoding="utf-8") as f:
            pairs = [(row["a"], row["b"], row["transform"]) for row in csv.DictReader(f)]
        return cls(root, duplicates, pairs)


def _check_transforms(
    transforms: Sequence[str] | Mapping[str, Transform] | None,
) -> dict[str, Transform]:
    if transforms is None:
        return dict(TRANSFORMS)
    if isinstance(transforms, Mapping):
        chosen = dict(transforms)
    else:
        if isinstance(transforms, str):
            raise ValueError(f"transforms must be a list of names, got the string {transforms!r}")
        unknown = [t for t in transforms if t not in TRANSFORMS]
        if unknown:
            raise ValueError(f"transforms has unknown name(s) {unknown}; known: {', '.join(TRANSFORMS)}")
        chosen = {t: TRANSFORMS[t] for t in transforms}
    for name, func in chosen.items():
        if (
            not isinstance(name, str)
            or not name
            or COPY_SEPARATOR in name
            or not all(c.isalnum() or c in "_-" for c in name)
            or name == SIBLING_LABEL
        ):
            raise ValueError(
                f"transform name {name!r} must be letters, digits, '_' or '-', without "
                f"{COPY_SEPARATOR!r}, and not {SIBLING_LABEL!r}"
            )
        if not callable(func):
            raise ValueError(f"transform {name!r} must be callable, got {type(func).__name__}")
    return chosen


def _check_args(n_originals: object, seed: object, size: object) -> None:
    if isinstance(n_originals, bool) or not isinstance(n_originals, int) or n_originals < 1:
        raise ValueError(f"n_originals must be a positive integer, got {n_originals!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if size is not None and not (
        isinstance(size, (tuple, list))
        and len(size) == 2
        and all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size)
    ):
        raise ValueError(f"size must be None or (width, height) of positive integers, got {size!r}")


def _prepare_output(root: Path, overwrite: bool) -> None:
    ours = [root / ORIGINALS_DIR, root / COPIES_DIR]
    files = [root / GROUND_TRUTH_FILE, root / PAIRS_FILE, root / SOURCES_FILE]
    existing = [p for p in ours + files if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(
            f"output_dir {os.fspath(root)!r} already holds {existing[0].name!r}; "
            f"pass overwrite=True (--overwrite) to replace a previous benchmark"
        )
    for path in existing:
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    for path in ours:
        path.mkdir(parents=True)


def make_transformed_copies(
    output_dir: str | os.PathLike[str],
    n_originals: int = 100,
    seed: int = 0,
    size: tuple[int, int] | None = None,
    transforms: Sequence[str] | Mapping[str, Transform] | None = None,
    *,
    photos: Sequence[str] | None = None,
    overwrite: bool = False,
) -> GroundTruth:
    """Write a folder of originals, transformed copies and their ground truth.

    Parameters
    ----------
    output_dir : str or os.PathLike
        Folder to write (created if missing).
    n_originals : int, default 100
        Number of originals cut from the photographs.
    seed : int, default 0
        Seed of the crop layout; the same arguments give the same bytes.
    size : tuple of int or None, default None
        ``(width, height)`` of every original, e.g. ``(1632, 1224)`` for about
        2 megapixels; ``None`` keeps each crop's native resolution.
    transforms : sequence of names, mapping name -> function, or None
        Transforms to apply to every original; ``None`` means all of
        :data:`TRANSFORMS`. :data:`SIZE_PRESERVING` gives copies of the
        originals' size.
    photos : sequence of str or None, keyword-only
        Names from :data:`PHOTOS`; ``None`` uses :func:`available_photos`.
    overwrite : bool, default False, keyword-only
        Replace a benchmark already in ``output_dir`` (only the folders and
        files this function writes are removed).

    Returns
    -------
    GroundTruth
        What was written to ``ground_truth.json`` and ``pairs.csv``.

    Raises
    ------
    ValueError
        On an invalid argument, or too many originals for the photographs.
    FileExistsError
        If ``output_dir`` already holds a benchmark and ``overwrite`` is false.
    """
    _check_args(n_originals, seed, size)
    chosen = _check_transforms(transforms)
    if photos is None:
        photos = available_photos()
    elif isinstance(photos, str) or not photos:
        raise ValueError(f"photos must be a non-empty list of names, got {photos!r}")
    for name in photos:
        if name not in PHOTOS:
            raise ValueError(f"photos has unknown name {name!r}; known: {', '.join(PHOTOS)}")
    size = tuple(size) if size is not None else None
    sources = plan_crops(photos, n_originals, seed, size)

    root = Path(output_dir)
    _prepare_output(root, overwrite)
    duplicates: dict[str, list[str]] = {}
    pairs: list[tuple[str, str, str]] = []
    images = {}
    for source in sources:
        if source.photo not in images:
            images = {source.photo: load_photo(source.photo)}  # photos come grouped
        original = images[source.photo].crop(source.box)
        if size is not None:
            original = original.resize(size, Image.Resampling.LANCZOS)
        original_id = f"{ORIGINALS_DIR}/{source.name}.jpg"
        original.save(root / original_id, format="JPEG", quality=JPEG_QUALITY)
        copy_ids = []
        for transform_name, func in chosen.items():
            copy_id = f"{COPIES_DIR}/{source.name}{COPY_SEPARATOR}{transform_name}.jpg"
            if func in _WRITTEN_AS_JPEG:
                original.save(root / copy_id, format="JPEG", quality=_WRITTEN_AS_JPEG[func])
            else:
                func(original).save(root / copy_id, format="JPEG", quality=JPEG_QUALITY)
            copy_ids.append(copy_id)
            pairs.append((original_id, copy_id, transform_name))
        pairs += [(a, b, SIBLING_LABEL) for i, a in enumerate(copy_ids) for b in copy_ids[i + 1 :]]
        group = [original_id, *copy_ids]
        for file_id in group:
            duplicates[file_id] = sorted(other for other in group if other != file_id)

    (root / GROUND_TRUTH_FILE).write_text(json.dumps(duplicates, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    with open(root / PAIRS_FILE, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["a", "b", "transform"])
        writer.writerows(pairs)
    with open(root / SOURCES_FILE, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["original", "photo", "package", "left", "top", "right", "bottom"])
        writer.writerows([f"{ORIGINALS_DIR}/{s.name}.jpg", s.photo, PHOTOS[s.photo].package, *s.box] for s in sources)
    return GroundTruth(root, dict(sorted(duplicates.items())), pairs)
