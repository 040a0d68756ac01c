"""Verify a candidate pair before it may merge: evidence the first stage threw away.

A pair found by hashes or grey embeddings is confirmed, in this order, by

==============  ==========================================================================
evidence        the pair is a duplicate when
==============  ==========================================================================
``digest``      the two files have the same content digest
``pixels``      (the only way for a low-information image) their 32 x 32 RGB copies are
                equal within ``pixel_tolerance`` grey levels on average
``aligned``     their trimmed grey maps, as they are or one mirrored, correlate at least
                ``aligned``, and, when both are colourful, their chroma maps agree
                (cosine at least ``colour``): copies resized, re-encoded, blurred,
                recoloured, stretched or framed
``keypoints``   at least ``inliers`` ORB keypoint matches agree on one similarity
                transform (OpenCV RANSAC), and their mean colours agree when both are
                colourful: crops, small rotations, aspect-ratio crops
==============  ==========================================================================

otherwise it is refuted: a low-information image (:mod:`imgdedup.imaging.lowinfo`)
is never matched by a perceptual rule alone, and look-alike objects of different
colours or shapes stay apart. Thresholds come from the config (``verify_*``) and
were chosen on the tuning half of ``benchmarks/bench_trust.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Mean chroma magnitude (opponent colour, 0..1 units) above which an image counts as colourful.
COLOURFUL = 0.03


@dataclass(frozen=True)
class VerifySettings:
    """Thresholds of :func:`verify_pair` (see the module docstring)."""

    aligned: float = 0.85
    colour: float = 0.6
    inliers: int = 15
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


def keypoint_inliers(points_a: np.ndarray, desc_a: np.ndarray, points_b: np.ndarray, desc_b: np.ndarray,
                     ratio: float = 0.8, reprojection: float = 4.0) -> int:
    """ORB matches (Lowe's ratio test) consistent with one similarity transform, by RANSAC.

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
    int, 0 when there are too few matches to fit a transform.
    """
    if len(desc_a) < 2 or len(desc_b) < 2:
        return 0
    import cv2

    matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
    good = [m for m, n in (p for p in matcher.knnMatch(desc_a, desc_b, k=2) if len(p) == 2) if m.distance < ratio * n.distance]
    if len(good) < 4:
        return 0
    source = points_a[[m.queryIdx for m in good]].reshape(-1, 1, 2)
    target = points_b[[m.trainIdx for m in good]].reshape(-1, 1, 2)
    _, mask = cv2.estimateAffinePartial2D(source, target, method=cv2.RANSAC, ransacReprojThreshold=reprojection,
                                          maxIters=500, confidence=0.99)
    return 0 if mask is None else int(mask.sum())


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
        difference = float(np.abs(a.pixels.astype(np.int16) - b.pixels.astype(np.int16)).mean())
        scores = {"pixel_difference": round(difference, 2)}
        if difference <= settings.pixel_tolerance:
            return Verdict(True, "pixels", scores)
        return Verdict(False, "low_information", scores)
    direct, mirrored = float(np.dot(a.grey.ravel(), b.grey.ravel())), float(np.dot(a.grey.ravel(), b.grey[:, ::-1].ravel()))
    flip = mirrored > direct
    aligned = max(direct, mirrored)
    scores: dict = {"aligned": round(aligned, 3)}
    colourful = a.colourfulness >= COLOURFUL and b.colourfulness >= COLOURFUL
    colour_ok = True
    if colourful:
        colour = _cosine(a.chroma, b.chroma[:, :, ::-1] if flip else b.chroma)
        scores["colour"] = round(colour, 3)
        colour_ok = colour >= settings.colour
    if aligned >= settings.aligned and colour_ok:
        return Verdict(True, "aligned", scores)
    mean_colour_ok = not colourful or _cosine(a.chroma.mean(axis=(1, 2)), b.chroma.mean(axis=(1, 2))) >= settings.colour
    inliers = keypoint_inliers(a.points, a.descriptors, b.points, b.descriptors)
    scores["inliers"] = inliers
    if inliers >= settings.inliers and mean_colour_ok:
        return Verdict(True, "keypoints", scores)
    return Verdict(False, "structure" if colour_ok and mean_colour_ok else "colour", scores)
