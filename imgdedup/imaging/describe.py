"""Evidence for verifying a candidate pair: small colour and grey maps, ORB keypoints, metadata.

The first stage (hashes, grey embeddings) throws colour and local structure
away, so two different objects of one shape on white, or two flat pictures,
look the same to it. :func:`describe_image` decodes an image once at a small
size (:data:`SIDE` pixels on the longer side, JPEG drafted in the DCT domain)
and keeps what :mod:`imgdedup.search.verify` needs to confirm or refute a pair:

* ``grey``: the picture inside its constant-colour margins (:func:`~imgdedup.imaging.trim.content_box`) as a
  :data:`GRID` x :data:`GRID` grey map, zero mean and unit norm, for an aligned
  comparison (resize, re-encoding, blur, colour changes, stretch, border);
* ``chroma``: the same area's opponent colour (R - G, (R + G) / 2 - B) on a
  coarser grid, and how colourful the image is (``colourfulness``);
* ``pixels``: a 32 x 32 RGB copy of the whole frame, for pixel equality;
* ORB keypoints and descriptors (OpenCV) of the grey picture, for geometric
  verification of crops and small rotations;
* ``low_information`` (:mod:`lowinfo`) and ``camera`` (EXIF Make or Model present).

It is only run for the images in candidate pairs, in the cluster stage.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from imgdedup.imaging.decode import load_opened, open_image
from imgdedup.imaging.lowinfo import is_low_information
from imgdedup.imaging.trim import content_box

#: Longer side of the decoded copy the evidence is taken from.
SIDE = 320
#: Side of the aligned grey map.
GRID = 24
#: Side of the finer aligned grey map (small differences: a letter on a look-alike object).
FINE_GRID = 48
#: Side of the chroma map.
CHROMA_GRID = 8
#: Side of the RGB copy compared for pixel equality.
PIXEL_GRID = 32
#: Most ORB keypoints kept per image.
KEYPOINTS = 300
#: Formats whose EXIF is worth reading for camera metadata.
EXIF_FORMATS = ("JPEG", "MPO", "TIFF", "WEBP", "HEIF", "AVIF")
#: A pixel counts as clipped where a channel is within this many levels of 0 or 255.
CLIP_MARGIN = 5
#: Longer side of the grey copy kept for checking a keypoint transform pixel by pixel.
REGISTER_SIDE = 96
#: JPEG's standard chroma quantization table at quality 50 (ITU T.81 Annex K), row by row: a file's
#: own table against it says how coarsely it kept colour (quality 25: 2x as coarse, 92: 0.16x).
STANDARD_CHROMA_TABLE = (
    (17, 18, 24, 47, 99, 99, 99, 99),
    (18, 21, 26, 66, 99, 99, 99, 99),
    (24, 26, 56, 99, 99, 99, 99, 99),
    (47, 66, 99, 99, 99, 99, 99, 99),
    *[(99,) * 8] * 4,
)


@dataclass
class ImageEvidence:
    """What verification knows of one image (see the module docstring).

    Attributes
    ----------
    grey : (GRID, GRID) float32 ndarray, zero mean, unit L2 norm (all zeros when flat)
    fine : (FINE_GRID, FINE_GRID) float32 ndarray, like ``grey``, finer
    contrast : float, grey-level standard deviation of the trimmed picture (0-255 scale)
    brightness : float, its mean grey level (0-255; a greyscale copy keeps it)
    chroma_level : float, its mean chroma magnitude
    chroma : (2, CHROMA_GRID, CHROMA_GRID) float32 ndarray, opponent colour in 0..1 units
    clipped : (CHROMA_GRID, CHROMA_GRID) float32 ndarray, share of each chroma place's pixels with a
        channel within CLIP_MARGIN of 0 or 255 (a brightened copy's hue shifts where a channel clips)
    colourfulness : float, 95th percentile of the chroma magnitude over the map (0 for a grey
        image; a small pale object on white still counts)
    pixels : (PIXEL_GRID, PIXEL_GRID, 3) uint8 ndarray
    points : (K, 2) float32 ndarray, keypoint positions in the decoded copy's pixels
    descriptors : (K, 32) uint8 ndarray, ORB descriptors
    size : (width, height) of the decoded copy
    full_size : (width, height) of the image itself, oriented like the decoded copy
    small : (h, w) uint8 ndarray, the grey picture at REGISTER_SIDE pixels on the longer side
    small_chroma : (2, h, w) float16 ndarray, its opponent colour
    small_clipped : (h, w) bool ndarray, where a channel is within CLIP_MARGIN of 0 or 255
    low_information : bool
    camera : bool
    chroma_blur : float, how far (file pixels, a Gaussian's sigma) its colour is smeared by the encoding
        (:func:`chroma_blur`): 0 for lossless files
    """

    grey: np.ndarray
    fine: np.ndarray
    contrast: float
    brightness: float
    chroma_level: float
    chroma: np.ndarray
    clipped: np.ndarray
    colourfulness: float
    pixels: np.ndarray
    points: np.ndarray
    descriptors: np.ndarray
    size: tuple[int, int]
    full_size: tuple[int, int]
    small: np.ndarray
    small_chroma: np.ndarray
    small_clipped: np.ndarray
    low_information: bool
    camera: bool
    chroma_blur: float = 0.0


def _block_mean(values: np.ndarray, factor: int) -> np.ndarray:
    """``(H, W, ...)`` values averaged over ``factor`` x ``factor`` blocks."""
    h, w = values.shape[0] // factor, values.shape[1] // factor
    return values[: h * factor, : w * factor].reshape(h, factor, w, factor, *values.shape[2:]).mean(axis=(1, 3))


def _unit(values: np.ndarray) -> np.ndarray:
    values = values.astype(np.float32) - values.mean()
    norm = float(np.linalg.norm(values))
    return values / norm if norm > 1e-6 else np.zeros_like(values)


def _clipped(rgb: np.ndarray) -> np.ndarray:
    """Where a channel of ``(H, W, 3)`` levels 0-255 is at either end of its range: a copy's
    brightness or contrast change clips it there, and its hue moves."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]  # channel by channel: a reduction over the last axis is slow
    return (np.maximum(np.maximum(r, g), b) >= 255 - CLIP_MARGIN) | (np.minimum(np.minimum(r, g), b) <= CLIP_MARGIN)


def has_camera_metadata(image: Image.Image) -> bool:
    """Whether the EXIF block names a camera (Make 271 or Model 272)."""
    try:
        exif = image.getexif()
    except Exception:
        return False
    return bool(str(exif.get(271, "")).strip() or str(exif.get(272, "")).strip())


def chroma_blur(image: Image.Image) -> float:
    """How far the file's encoding smeared its colour, as a Gaussian sigma in file pixels.

    JPEG stores chroma at half resolution (4:2:0, 4:2:2) and quantizes it coarsely at low
    quality: a 72-pixel sprite saved at quality 25 keeps its shapes but its colours run over
    several pixels. Lossy WebP halves chroma too (Pillow does not say whether a WebP is lossy;
    most are). Other formats: 0, colour as stored.
    """
    if image.format in ("JPEG", "MPO"):
        from PIL import JpegImagePlugin

        try:
            subsampled = 2.0 if JpegImagePlugin.get_sampling(image) in (1, 2) else 1.0
        except Exception:  # not a JPEG Pillow parsed itself: assume the common 4:2:0
            subsampled = 2.0
        tables = getattr(image, "quantization", None) or {}
        chroma = tables.get(1, tables.get(0))
        coarseness = sum(chroma) / sum(map(sum, STANDARD_CHROMA_TABLE)) if chroma else 1.0
        return 0.5 * subsampled * max(1.0, 2.0 * coarseness)
    if image.format == "WEBP":
        return 1.0
    return 0.0


def orb_features(gray: np.ndarray, keypoints: int = KEYPOINTS) -> tuple[np.ndarray, np.ndarray]:
    """ORB keypoints of a grey uint8 picture: ``(K, 2)`` float32 positions, ``(K, 32)`` uint8 descriptors."""
    import cv2

    orb = cv2.ORB_create(nfeatures=keypoints, fastThreshold=10, edgeThreshold=15, patchSize=15)
    found, descriptors = orb.detectAndCompute(np.ascontiguousarray(gray), None)
    if descriptors is None or not found:
        return np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8)
    return np.asarray([k.pt for k in found], dtype=np.float32), descriptors


def describe_image(data: bytes, max_pixels: int = 178_956_970) -> ImageEvidence:
    """Decode ``data`` small and take its :class:`ImageEvidence`.

    Raises :class:`imgdedup.errors.ImageLoadError` when the bytes are not a usable image.
    """
    opened = open_image(data, max_pixels)
    # PNG and GIF carry EXIF rarely, and asking Pillow for it decodes the whole file
    camera = (opened.format in EXIF_FORMATS or "exif" in opened.info) and has_camera_metadata(opened)
    full_size = opened.size
    blur = chroma_blur(opened)
    # the picture keeps its aspect ratio: sizes and shapes are evidence (each side reduced by its own
    # factor, a 1080 x 1920 PNG became 1080 x 960, wider than tall)
    image = load_opened(opened, "RGB", draft_size=(SIDE, SIDE), keep_aspect=True)
    if (full_size[0] > full_size[1]) != (image.width > image.height):
        full_size = full_size[::-1]  # EXIF orientation turned it
    if max(image.size) > SIDE:
        scale = SIDE / max(image.size)
        # a box filter is enough for keypoints and maps, and a fraction of Lanczos's cost
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.BOX)
    gray = image.convert("L")
    scale = REGISTER_SIDE / max(image.size)
    small_size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    small_image = image.resize(small_size, Image.BOX)
    small = np.asarray(small_image.convert("L"))
    small_rgb = np.asarray(small_image, dtype=np.float32) / 255.0
    small_chroma = np.stack(
        [small_rgb[..., 0] - small_rgb[..., 1], (small_rgb[..., 0] + small_rgb[..., 1]) / 2 - small_rgb[..., 2]]
    )
    pixels = np.asarray(small_image.resize((PIXEL_GRID, PIXEL_GRID), Image.BOX), dtype=np.uint8)
    small_gray = np.asarray(small_image.convert("L").resize((64, 64), Image.BOX))
    box = content_box(image)
    inner = image.crop(box) if box != (0, 0, *image.size) else image
    # one resize of the picture inside its margins; the coarser maps are block means of it
    inner_rgb = np.asarray(inner.resize((FINE_GRID, FINE_GRID), Image.BOX), dtype=np.float32)
    fine_raw = inner_rgb @ np.asarray([0.299, 0.587, 0.114], dtype=np.float32)
    fine = _unit(fine_raw)
    grey = _unit(_block_mean(fine_raw, FINE_GRID // GRID))
    rgb = _block_mean(inner_rgb, FINE_GRID // CHROMA_GRID) / 255.0
    chroma = np.stack([rgb[..., 0] - rgb[..., 1], (rgb[..., 0] + rgb[..., 1]) / 2 - rgb[..., 2]])
    magnitude = np.sqrt((chroma**2).sum(axis=0))
    clipped = _block_mean(_clipped(inner_rgb).astype(np.float32), FINE_GRID // CHROMA_GRID)
    points, descriptors = orb_features(np.asarray(gray))
    return ImageEvidence(
        grey=grey,
        fine=fine,
        contrast=float(fine_raw.std()),
        brightness=float(fine_raw.mean()),
        chroma_level=float(magnitude.mean()),
        chroma=chroma.astype(np.float32),
        clipped=clipped,
        colourfulness=float(np.quantile(magnitude, 0.95)),
        pixels=pixels,
        points=points,
        descriptors=descriptors,
        size=image.size,
        full_size=tuple(full_size),
        small=small,
        small_chroma=small_chroma.astype(np.float16),
        small_clipped=_clipped(small_rgb * 255.0),
        low_information=is_low_information(small_gray),
        camera=camera,
        chroma_blur=blur,
    )
