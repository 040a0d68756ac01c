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
``keypoints``   at least ``inliers`` ORB keypoint matches agree on one similarity
                transform (OpenCV RANSAC), the second picture warped by it onto the
                first correlates at least ``registered`` over their overlap, and their
                chroma there agrees (cosine at least ``colour``) unless one is grey: crops, small rotations,
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


@dataclass(frozen=True)
class VerifySettings:
    """Thresholds of :func:`verify_pair` (see the module docstring)."""

    aligned: float = 0.9
    fine: float = 0.85
    colour: float = 0.95
    inliers: int = 15
    registered: float = 0.8
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


def keypoint_transform(points_a: np.ndarray, desc_a: np.ndarray, points_b: np.ndarray, desc_b: np.ndarray,
                       ratio: float = 0.8, reprojection: float = 4.0) -> tuple[np.ndarray | None, int]:
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
    good = [m for m, n in (p for p in matcher.knnMatch(desc_a, desc_b, k=2) if len(p) == 2) if m.distance < ratio * n.distance]
    if len(good) < 4:
        return None, 0
    source = points_a[[m.queryIdx for m in good]].reshape(-1, 1, 2)
    target = points_b[[m.trainIdx for m in good]].reshape(-1, 1, 2)
    transform, mask = cv2.estimateAffinePartial2D(source, target, method=cv2.RANSAC, ransacReprojThreshold=reprojection,
                                                  maxIters=500, confidence=0.99)
    return (None, 0) if mask is None or transform is None else (transform, int(mask.sum()))


def registered_correlation(a, b, transform: np.ndarray) -> tuple[float, float, float]:
    """``b`` warped onto ``a``: grey correlation, the overlap's share of ``a``, chroma cosine over the overlap.

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
        return 0.0, overlap, 0.0
    x = cv2.GaussianBlur(a.small.astype(np.float32), (3, 3), 0)[mask]
    y = cv2.GaussianBlur(warped, (3, 3), 0)[mask]
    x, y = x - x.mean(), y - y.mean()
    norm = float(np.linalg.norm(x) * np.linalg.norm(y))
    chroma_b = np.stack([cv2.warpAffine(c.astype(np.float32), scaled, (width, height), flags=flags) for c in b.small_chroma])
    colour = _cosine(a.small_chroma.astype(np.float32)[:, mask], chroma_b[:, mask])
    return (float(x @ y) / norm if norm > 1e-6 else 0.0), overlap, colour


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
        if difference <= settings.pixel_tolerance and int(delta.max()) <= MAX_PIXEL_DELTA:
            return Verdict(True, "pixels", scores)
        return Verdict(False, "low_information", scores)
    direct, mirrored = float(np.dot(a.grey.ravel(), b.grey.ravel())), float(np.dot(a.grey.ravel(), b.grey[:, ::-1].ravel()))
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
    if aligned >= settings.aligned and fine >= settings.fine and colour_ok:
        return Verdict(True, "aligned", scores)
    transform, inliers = keypoint_transform(a.points, a.descriptors, b.points, b.descriptors)
    scores["inliers"] = inliers
    if transform is not None and inliers >= settings.inliers:
        registered, overlap, colour = registered_correlation(a, b, transform)
        scores.update(registered=round(registered, 3), overlap=round(overlap, 3))
        if colourful:
            scores["registered_colour"] = round(colour, 3)
        if registered >= settings.registered and overlap >= MIN_OVERLAP and (not colourful or colour >= settings.colour):
            return Verdict(True, "keypoints", scores)
        if colourful and colour < settings.colour and registered >= settings.registered:
            return Verdict(False, "colour", scores)  # the same layout, other colours: a look-alike
    return Verdict(False, "colour" if aligned >= settings.aligned and fine >= settings.fine and not colour_ok else "structure", scores)
