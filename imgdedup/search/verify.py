"""Verify a candidate pair before it may merge: evidence the first stage threw away.

A pair found by hashes or grey embeddings is confirmed, in this order, by

==============  ==========================================================================
evidence        the pair is a duplicate when
==============  ==========================================================================
``digest``      the two files have the same content digest
``pixels``      (the only way for a low-information image) their 32 x 32 RGB copies are
                equal within ``pixel_tolerance`` grey levels on average
``aligned``     their trimmed grey maps, as they are or one mirrored, correlate at least
                ``aligned`` (24 x 24) and ``fine`` (48 x 48), and, when both are colourful, their chroma maps agree
                (cosine at least ``colour``) unless one is grey: copies resized, re-encoded, blurred,
                recoloured, stretched or framed
``aligned       the same, on the centre of both cut to the aspect ratio they share (one
(common         artwork shipped for several screens)
aspect)``
``keypoints``   at least ``inliers`` ORB keypoint matches agree on one similarity
                transform (OpenCV RANSAC), the second picture warped by it onto the
                first correlates at least ``registered`` over their overlap, and their
                chroma there agrees (cosine at least :data:`REGISTERED_COLOUR`) unless one
                is grey: crops, small rotations,
                aspect-ratio crops
==============  ==========================================================================

otherwise it is refuted: a low-information image (:mod:`imgdedup.imaging.lowinfo`)
is never matched by a perceptual rule alone, and look-alike objects of different
colours or shapes stay apart. Thresholds come from the config (``verify_*``) and
were chosen on the tuning half of ``benchmarks/bench_trust.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Mean chroma magnitude (opponent colour, 0..1 units) below which an image counts as grey:
#: only then is colour not compared (a greyscale copy of a colour picture).
GREY = 0.012
#: Pixel equality also bounds the largest difference of one pixel of the 32 x 32 copies.
MAX_PIXEL_DELTA = 24
#: Smallest share of the first image a keypoint transform must cover.
MIN_OVERLAP = 0.2
#: Smallest share of one of the two pictures lying inside the other under a keypoint transform.
MIN_CONTAINED = 0.85
#: Largest ratio of contrast between an image and its aligned copy (brightness/contrast +30 % stay below).
MAX_CONTRAST_RATIO = 1.4
#: Largest ratio of chroma strength between an image and its aligned copy (saturation +50 % stays below).
MAX_CHROMA_RATIO = 1.8
#: Largest :func:`worst_block` of a keypoint-registered pair (finer than the aligned maps' ``blocks``).
REGISTERED_BLOCKS = 0.6
#: Pairs whose aligned maps correlate no more than this are not tried with keypoints.
KEYPOINT_MIN_ALIGNED = 0.0
#: Largest rotation (degrees) of a keypoint transform: copies are rotated a little, if at all
#: (an upside-down "u" is an "n", not a copy).
MAX_ANGLE = 30.0
#: Smallest chroma cosine over a keypoint-registered overlap (stricter than the aligned maps' ``colour``:
#: a registered look-alike of the same shape differs only there).
REGISTERED_COLOUR = 0.95
#: Pixel equality (low-information images) also needs aspect ratios within this fraction.
MAX_ASPECT_DIFFERENCE = 0.02


@dataclass(frozen=True)
class VerifySettings:
    """Thresholds of :func:`verify_pair` (see the module docstring)."""

    aligned: float = 0.9
    fine: float = 0.85
    colour: float = 0.85
    inliers: int = 25
    registered: float = 0.9
    blocks: float = 1.0
    pixel_tolerance: float = 1.5

    def __post_init__(self) -> None:
        if not -1.0 <= self.aligned <= 1.0:
            raise ValueError(f"`aligned` must be a correlation in -1..1, got {self.aligned!r}")
        if not -1.0 <= self.colour <= 1.0:
            raise ValueError(f"`colour` must be a cosine in -1..1, got {self.colour!r}")
        if self.inliers < 3:
            raise ValueError(f"`inliers` must be at least 3, got {self.inliers!r}")
        if self.pixel_tolerance < 0:
            raise ValueError(f"`pixel_tolerance` must be >= 0, got {self.pixel_tolerance!r}")


@dataclass(frozen=True)
class Verdict:
    """Whether a pair is a verified duplicate, by which evidence, with the scores seen.

    ``evidence`` names the rule that confirmed it, or why it was refuted
    (``low_information``, ``colour``, ``structure``).
    """

    ok: bool
    evidence: str
    scores: dict = field(default_factory=dict)


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.dot(a.ravel(), b.ravel()) / norm) if norm > 1e-9 else 0.0


def keypoint_transform(
    points_a: np.ndarray,
    desc_a: np.ndarray,
    points_b: np.ndarray,
    desc_b: np.ndarray,
    ratio: float = 0.8,
    reprojection: float = 4.0,
) -> tuple[np.ndarray | None, int]:
    """The similarity transform most ORB matches (Lowe's ratio test) agree on, by RANSAC.

    Parameters
    ----------
    points_a, points_b : (K, 2) float32 ndarray
    desc_a, desc_b : (K, 32) uint8 ndarray
    ratio : float
        A match counts when its distance is below ``ratio`` times the second best's.
    reprojection : float
        RANSAC's inlier distance, in pixels of the described copies.

    Returns
    -------
    transform : (2, 3) float64 ndarray mapping points of ``a`` onto ``b``, or None
    inliers : int, 0 when there are too few matches to fit one.
    """
    if len(desc_a) < 2 or len(desc_b) < 2:
        return None, 0
    import cv2

    matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
    good = [
        p[0] for p in matcher.knnMatch(desc_a, desc_b, k=2) if len(p) == 2 and p[0].distance < ratio * p[1].distance
    ]
    if len(good) < 4:
        return None, 0
    source = points_a[[m.queryIdx for m in good]].reshape(-1, 1, 2)
    target = points_b[[m.trainIdx for m in good]].reshape(-1, 1, 2)
    transform, mask = cv2.estimateAffinePartial2D(
        source, target, method=cv2.RANSAC, ransacReprojThreshold=reprojection, maxIters=500, confidence=0.99
    )
    return (None, 0) if mask is None or transform is None else (transform, int(mask.sum()))


def worst_block(x: np.ndarray, y: np.ndarray, mask: np.ndarray | None = None, block: int = 8) -> float:
    """The largest mean absolute difference, over ``block``-pixel squares, of two standardised pictures.

    Both are brought to zero mean and unit variance (over ``mask``), so brightness and
    contrast changes cancel; one square that differs (a letter, a dot, a sign) shows.
    Squares not wholly inside ``mask`` are skipped.

    Parameters
    ----------
    x, y : (H, W) float ndarray
    mask : (H, W) bool ndarray, optional
    """
    inside = np.ones(x.shape, bool) if mask is None else mask
    if inside.sum() < 16:
        return float("inf")

    def standard(v: np.ndarray) -> np.ndarray:
        values = v[inside]
        return (v - values.mean()) / max(float(values.std()), 1e-6)

    residual = np.abs(standard(x) - standard(y))
    h, w = (x.shape[0] // block) * block, (x.shape[1] // block) * block
    if h == 0 or w == 0:
        return float(residual[inside].mean())
    blocks = residual[:h, :w].reshape(h // block, block, w // block, block).mean(axis=(1, 3))
    full = inside[:h, :w].reshape(h // block, block, w // block, block).all(axis=(1, 3))
    return float(blocks[full].max()) if full.any() else float("inf")


def _centre_crop(values: np.ndarray, aspect: float) -> np.ndarray:
    """The centre of ``(..., H, W)`` values cut to width / height = ``aspect`` (only ever narrower or lower)."""
    height, width = values.shape[-2:]
    if width / height > aspect:
        keep = max(1, round(height * aspect))
        start = (width - keep) // 2
        return values[..., :, start : start + keep]
    keep = max(1, round(width / aspect))
    start = (height - keep) // 2
    return values[..., start : start + keep, :]


def common_aspect(a, b, side: int = 32) -> tuple[float, float, float]:
    """Both pictures cut to the aspect ratio they share around the centre (how wallpapers ship
    per screen), at ``side`` x ``side``: grey correlation, :func:`worst_block`, chroma cosine."""
    import cv2

    aspect = min(a.small.shape[1] / a.small.shape[0], b.small.shape[1] / b.small.shape[0])

    def maps(e) -> tuple[np.ndarray, np.ndarray]:
        grey = cv2.resize(_centre_crop(e.small.astype(np.float32), aspect), (side, side), interpolation=cv2.INTER_AREA)
        chroma = np.stack(
            [
                cv2.resize(c, (side // 4, side // 4), interpolation=cv2.INTER_AREA)
                for c in _centre_crop(e.small_chroma.astype(np.float32), aspect)
            ]
        )
        return grey, chroma

    (ga, ca), (gb, cb) = maps(a), maps(b)
    x, y = ga - ga.mean(), gb - gb.mean()
    norm = float(np.linalg.norm(x) * np.linalg.norm(y))
    return (float((x * y).sum()) / norm if norm > 1e-6 else 0.0), worst_block(ga, gb, block=4), _cosine(ca, cb)


def registered_correlation(a, b, transform: np.ndarray) -> tuple[float, float, float, float, float, float]:
    """``b`` warped onto ``a``: grey correlation, the overlap's share of ``a`` and of ``b``,
    chroma cosine over the overlap, its :func:`worst_block`, and the ratio of the two
    pictures' contrast there (>= 1).

    ``transform`` maps ``a``'s described pixels onto ``b``'s (:func:`keypoint_transform`).
    """
    import cv2

    sa, sb = a.small.shape[1] / a.size[0], b.small.shape[1] / b.size[0]
    scaled = np.hstack([transform[:, :2] * (sb / sa), transform[:, 2:] * sb])
    height, width = a.small.shape
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    warped = cv2.warpAffine(b.small.astype(np.float32), scaled, (width, height), flags=flags)
    mask = cv2.warpAffine(np.ones(b.small.shape, np.float32), scaled, (width, height), flags=flags) > 0.99
    overlap = float(mask.mean())
    if mask.sum() < 64:
        return 0.0, overlap, 0.0, 0.0, float("inf"), float("inf")
    # the share of b inside a: b's area seen in a's frame is its area over the transform's scale squared
    scale = float(abs(np.linalg.det(scaled[:, :2])))
    share_b = min(1.0, float(mask.sum()) * scale / b.small.size)
    x = cv2.GaussianBlur(a.small.astype(np.float32), (3, 3), 0)[mask]
    y = cv2.GaussianBlur(warped, (3, 3), 0)[mask]
    x, y = x - x.mean(), y - y.mean()
    norm = float(np.linalg.norm(x) * np.linalg.norm(y))
    spread = sorted((float(x.std()), float(y.std())))
    contrast = spread[1] / max(spread[0], 1e-6)
    chroma_b = np.stack(
        [cv2.warpAffine(c.astype(np.float32), scaled, (width, height), flags=flags) for c in b.small_chroma]
    )
    colour = _cosine(a.small_chroma.astype(np.float32)[:, mask], chroma_b[:, mask])
    blocks = worst_block(
        cv2.GaussianBlur(a.small.astype(np.float32), (3, 3), 0), cv2.GaussianBlur(warped, (3, 3), 0), mask
    )
    return (float(x @ y) / norm if norm > 1e-6 else 0.0), overlap, share_b, colour, blocks, contrast


def verify_pair(a, b, same_digest: bool, settings: VerifySettings = VerifySettings()) -> Verdict:
    """Confirm or refute one candidate pair.

    Parameters
    ----------
    a, b : imgdedup.imaging.describe.ImageEvidence
    same_digest : bool
        The files have the same content digest.
    settings : VerifySettings

    Returns
    -------
    Verdict
    """
    if same_digest:
        return Verdict(True, "digest")
    if a.low_information or b.low_information:
        delta = np.abs(a.pixels.astype(np.int16) - b.pixels.astype(np.int16))
        difference = float(delta.mean())
        scores = {"pixel_difference": round(difference, 2)}
        aspect_a, aspect_b = a.size[0] / a.size[1], b.size[0] / b.size[1]
        same_aspect = abs(aspect_a - aspect_b) <= MAX_ASPECT_DIFFERENCE * min(aspect_a, aspect_b)
        if difference <= settings.pixel_tolerance and int(delta.max()) <= MAX_PIXEL_DELTA and same_aspect:
            return Verdict(True, "pixels", scores)
        return Verdict(False, "low_information", scores)
    direct, mirrored = (
        float(np.dot(a.grey.ravel(), b.grey.ravel())),
        float(np.dot(a.grey.ravel(), b.grey[:, ::-1].ravel())),
    )
    flip = mirrored > direct
    aligned = max(direct, mirrored)
    fine = float(np.dot(a.fine.ravel(), (b.fine[:, ::-1] if flip else b.fine).ravel()))
    scores: dict = {"aligned": round(aligned, 3), "fine": round(fine, 3)}
    colourful = a.colourfulness >= GREY and b.colourfulness >= GREY
    colour_ok = True
    if colourful:
        colour = _cosine(a.chroma, b.chroma[:, :, ::-1] if flip else b.chroma)
        scores["colour"] = round(colour, 3)
        colour_ok = colour >= settings.colour
    blocks = worst_block(a.fine, b.fine[:, ::-1] if flip else b.fine, block=6)
    contrast = max(a.contrast, b.contrast) / max(min(a.contrast, b.contrast), 1e-6)
    chroma_ratio = max(a.chroma_level, b.chroma_level) / max(min(a.chroma_level, b.chroma_level), 1e-6)
    scores.update(blocks=round(blocks, 3), contrast_ratio=round(contrast, 2))
    # contrast and colour strength change little in a copy (brightness, contrast, saturation)
    aligned_ok = aligned >= settings.aligned and fine >= settings.fine and blocks <= settings.blocks
    tone_ok = contrast <= MAX_CONTRAST_RATIO and (not colourful or chroma_ratio <= MAX_CHROMA_RATIO)
    if aligned_ok and colour_ok and tone_ok:
        return Verdict(True, "aligned", scores)
    aspect_a, aspect_b = a.size[0] / a.size[1], b.size[0] / b.size[1]
    if abs(aspect_a - aspect_b) > 0.05 * min(aspect_a, aspect_b) and contrast <= MAX_CONTRAST_RATIO:
        # one picture cut for another screen: compare what both show
        shared, shared_blocks, shared_colour = common_aspect(a, b)
        scores.update(shared=round(shared, 3), shared_blocks=round(shared_blocks, 3))
        if (
            shared >= settings.aligned
            and shared_blocks <= settings.blocks
            and (not colourful or shared_colour >= settings.colour)
        ):
            return Verdict(True, "aligned (common aspect)", scores)
    transform, inliers = None, 0
    # too few keypoints never agree; pictures anti-correlated even as aligned maps are not crops of
    # each other (on the tuning half this skips a fifth of the matching and loses 2 of 647 crops)
    if min(len(a.descriptors), len(b.descriptors)) >= settings.inliers and aligned > KEYPOINT_MIN_ALIGNED:
        transform, inliers = keypoint_transform(a.points, a.descriptors, b.points, b.descriptors)
    scores["inliers"] = inliers
    if transform is not None and inliers >= settings.inliers:
        registered, overlap, share_b, colour, blocks, contrast = registered_correlation(a, b, transform)
        angle = abs(float(np.degrees(np.arctan2(transform[1, 0], transform[0, 0]))))
        scores.update(
            registered=round(registered, 3),
            overlap=round(overlap, 3),
            contained=round(max(overlap, share_b), 3),
            blocks=round(blocks, 3),
            angle=round(angle, 1),
        )
        if colourful:
            scores["registered_colour"] = round(colour, 3)
        # one picture must lie (nearly) wholly within the other: a crop, not two pictures sharing a part
        if (
            registered >= settings.registered
            and overlap >= MIN_OVERLAP
            and max(overlap, share_b) >= MIN_CONTAINED
            and blocks <= REGISTERED_BLOCKS
            and angle <= MAX_ANGLE
            and contrast <= MAX_CONTRAST_RATIO
            and (not colourful or colour >= REGISTERED_COLOUR)
        ):
            return Verdict(True, "keypoints", scores)
        if colourful and colour < REGISTERED_COLOUR and registered >= settings.registered:
            return Verdict(False, "colour", scores)  # the same layout, other colours: a look-alike
    return Verdict(False, "colour" if aligned_ok and not colour_ok else "structure", scores)
