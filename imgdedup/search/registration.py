"""Keypoint registration of two pictures (OpenCV ORB + RANSAC), for :mod:`imgdedup.search.verify`.

:func:`keypoint_transform` finds the similarity transform most ORB matches agree
on; :func:`registered_correlation` warps one picture onto the other by it and
scores the overlap; :func:`contained_part` tells a crop from a part (a smaller
picture found inside a larger one with blank around it).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from imgdedup.search.maps import HUE_CHROMA, HUE_PLACES, cosine, hue_difference, worst_block

#: Grey-level spread (0-255) below which the ring around a contained picture counts as blank.
BLANK_RING = 6.0
#: Width of that ring, as a share of the larger picture's longer side.
RING = 0.02


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

    # the two nearest descriptors of b for each of a, as arrays (what BFMatcher.knnMatch computes, without
    # a Python object per match: a million scenes' chance pairs are 3.1 million matchings)
    distances, nearest = cv2.batchDistance(desc_a, desc_b, cv2.CV_32S, normType=cv2.NORM_HAMMING, K=2)
    good = distances[:, 0] < ratio * distances[:, 1]
    if np.count_nonzero(good) < 4:
        return None, 0
    source = points_a[good].reshape(-1, 1, 2)
    target = points_b[nearest[good, 0]].reshape(-1, 1, 2)
    transform, mask = cv2.estimateAffinePartial2D(
        source, target, method=cv2.RANSAC, ransacReprojThreshold=reprojection, maxIters=500, confidence=0.99
    )
    return (None, 0) if mask is None or transform is None else (transform, int(mask.sum()))


#: Smallest side (pixels of the small grey copy) of a picture placed by :func:`template_transform`.
MIN_TEMPLATE = 16
#: Smallest normalised cross-correlation at which :func:`template_transform` places a picture.
MIN_TEMPLATE_SCORE = 0.9


def template_transform(a, b) -> tuple[np.ndarray | None, float]:
    """The transform that places the smaller picture inside the larger at their files' own pixel
    scale (a crop that kept its pixels), by normalised cross-correlation of the small grey copies
    (OpenCV ``matchTemplate``).

    Parameters
    ----------
    a, b : imgdedup.imaging.describe.ImageEvidence

    Returns
    -------
    transform : (2, 3) float64 ndarray mapping ``a``'s described pixels onto ``b``'s (as
        :func:`keypoint_transform`), or None when neither fits inside the other or the best
        place correlates below :data:`MIN_TEMPLATE_SCORE`
    score : float, the best place's correlation (0.0 when none was tried)
    """
    import cv2

    (aw, ah), (bw, bh) = a.full_size, b.full_size
    if aw >= bw and ah >= bh:
        large, small, inside_b = a, b, False
    elif bw >= aw and bh >= ah:
        large, small, inside_b = b, a, True
    else:
        return None, 0.0
    # the small picture at the large one's small-copy scale: both copies are scaled from their files
    scale = (large.small.shape[1] / large.full_size[0]) / (small.small.shape[1] / small.full_size[0])
    height, width = round(small.small.shape[0] * scale), round(small.small.shape[1] * scale)
    if min(height, width) < MIN_TEMPLATE or height > large.small.shape[0] or width > large.small.shape[1]:
        return None, 0.0
    template = cv2.resize(small.small.astype(np.float32), (width, height), interpolation=cv2.INTER_AREA)
    if float(template.std()) < 1.0:
        return None, 0.0  # a flat template fits anywhere
    found = cv2.matchTemplate(large.small.astype(np.float32), template, cv2.TM_CCOEFF_NORMED)
    _, score, _, (x, y) = cv2.minMaxLoc(found)
    if score < MIN_TEMPLATE_SCORE:
        return None, float(score)
    # large's described pixel p maps to small's: (p / d_large - offset) * d_small, offset in file pixels
    d_large, d_small = large.size[0] / large.full_size[0], small.size[0] / small.full_size[0]
    offset = np.array([x, y], np.float64) / (large.small.shape[1] / large.full_size[0])
    forward = np.array([[d_small / d_large, 0.0, -d_small * offset[0]], [0.0, d_small / d_large, -d_small * offset[1]]])
    return (forward if not inside_b else cv2.invertAffineTransform(forward)), float(score)


def blank_surroundings(picture: np.ndarray, footprint: np.ndarray) -> bool:
    """Whether the ring just outside ``footprint`` (a bool mask over ``picture``) is blank while
    the picture further out is not.

    A crop cuts through the picture, so what lies just beyond its edge in the
    original is more picture. A small picture found inside a larger one with
    blank around it and more picture beyond is a part of it (a letter inside a
    letter with an accent, an icon inside a scene), not a crop of it; blank all
    the way to the edge is a border added to a copy.
    """
    import cv2

    width = max(2, round(RING * max(picture.shape)))
    grown = cv2.dilate(footprint.astype(np.uint8), np.ones((2 * width + 1, 2 * width + 1), np.uint8)) > 0
    ring, beyond = grown & ~footprint, ~grown
    if ring.sum() < 8 or beyond.sum() < 8:
        return False  # the footprint (nearly) fills the frame: nothing around it to look at
    # blank around and more picture further out; blank all the way out is a frame added to a copy
    return float(picture[ring].std()) < BLANK_RING and float(picture[beyond].std()) >= BLANK_RING


def contained_part(a, b, transform: np.ndarray) -> bool:
    """Whether the smaller of the two pictures sits, under ``transform``, inside the larger with
    blank surroundings (:func:`blank_surroundings`): a part of it, not a crop."""
    import cv2

    sa, sb = a.small.shape[1] / a.size[0], b.small.shape[1] / b.size[0]
    forward = np.hstack([transform[:, :2] * (sb / sa), transform[:, 2:] * sb])  # a's small pixels -> b's
    backward = cv2.invertAffineTransform(forward)
    area_a = a.small.size
    area_b_in_a = b.small.size / max(abs(float(np.linalg.det(forward[:, :2]))), 1e-9)
    small, large, mapping = (a, b, forward) if area_a < area_b_in_a else (b, a, backward)
    height, width = large.small.shape
    footprint = cv2.warpAffine(np.ones(small.small.shape, np.uint8), mapping, (width, height)) > 0
    return blank_surroundings(large.small.astype(np.float32), footprint)


class Registration(NamedTuple):
    """Scores of one picture warped onto another (:func:`registered_correlation`)."""

    #: grey correlation over the overlap
    correlation: float
    #: the overlap's share of ``a``
    overlap: float
    #: the share of ``b`` inside ``a``
    share_b: float
    #: chroma cosine over the overlap
    colour: float
    #: :func:`worst_block` over the overlap
    blocks: float
    #: ratio of the two pictures' contrast there (>= 1)
    contrast: float
    #: :func:`hue_difference` over the overlap (degrees)
    hue: float
    #: median absolute grey-level difference (0-255) over the overlap's colourful places: a
    #: greyscale copy keeps the grey level of each colour, another colour of one shape does not
    grey_difference: float


#: What :func:`registered_correlation` says when the overlap is too small to score.
NO_OVERLAP = dict(
    correlation=0.0, share_b=0.0, colour=0.0, blocks=float("inf"), contrast=float("inf"), hue=0.0, grey_difference=0.0
)


def registered_correlation(a, b, transform: np.ndarray, need: float = -1.0) -> Registration:
    """``b`` warped onto ``a`` and scored over their overlap (see :class:`Registration`).

    ``transform`` maps ``a``'s described pixels onto ``b``'s (:func:`keypoint_transform`). When the
    grey correlation is below ``need`` the colour, hue, grey-level and block scores are not computed
    (:data:`NO_OVERLAP`'s): most candidate pairs of a large collection are chance look-alikes that
    RANSAC registers somehow, and their colour comparison cost a quarter of their verification.
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
        return Registration(overlap=overlap, **NO_OVERLAP)
    # the share of b inside a: b's area seen in a's frame is its area over the transform's scale squared
    scale = float(abs(np.linalg.det(scaled[:, :2])))
    share_b = min(1.0, float(mask.sum()) * scale / b.small.size)
    blurred_a, blurred_b = cv2.GaussianBlur(a.small.astype(np.float32), (3, 3), 0), cv2.GaussianBlur(warped, (3, 3), 0)
    x, y = blurred_a[mask], blurred_b[mask]
    x, y = x - x.mean(), y - y.mean()
    norm = float(np.linalg.norm(x) * np.linalg.norm(y))
    spread = sorted((float(x.std()), float(y.std())))
    contrast = spread[1] / max(spread[0], 1e-6)
    correlation = float(x @ y) / norm if norm > 1e-6 else 0.0
    if correlation < need:
        return Registration(
            overlap=overlap, **{**NO_OVERLAP, "correlation": correlation, "share_b": share_b, "contrast": contrast}
        )
    chroma_a = a.small_chroma.astype(np.float32)
    chroma_b = np.stack(
        [cv2.warpAffine(c.astype(np.float32), scaled, (width, height), flags=flags) for c in b.small_chroma]
    )
    # compare colour no finer than either file's encoding kept it: a Gaussian of its chroma_blur
    # file pixels, in a's map pixels (b's map pixels are sqrt(det) of a's under the transform)
    sigma = max(
        a.chroma_blur * a.small.shape[1] / max(a.full_size[0], 1),
        b.chroma_blur * b.small.shape[1] / max(b.full_size[0], 1) / max(scale, 1e-6) ** 0.5,
    )
    if sigma >= 1.0:  # under a pixel of the map, the map's own resampling smooths as much
        chroma_a = np.stack([cv2.GaussianBlur(c, (0, 0), sigma) for c in chroma_a])
        chroma_b = np.stack([cv2.GaussianBlur(c, (0, 0), sigma) for c in chroma_b])
    colour = cosine(chroma_a[:, mask], chroma_b[:, mask])
    clipped_b = cv2.warpAffine(b.small_clipped.astype(np.uint8), scaled, (width, height), flags=flags) > 0
    magnitude = np.maximum(np.hypot(*chroma_a), np.hypot(*chroma_b))
    coloured = mask & (magnitude >= HUE_CHROMA)
    grey_difference = (
        float(np.median(np.abs(a.small.astype(np.float32)[coloured] - warped[coloured])))
        if int(coloured.sum()) >= HUE_PLACES
        else 0.0
    )
    blocks = worst_block(blurred_a, blurred_b, mask)
    return Registration(
        correlation=correlation,
        overlap=overlap,
        share_b=share_b,
        colour=colour,
        blocks=blocks,
        contrast=contrast,
        hue=hue_difference(chroma_a, chroma_b, mask & ~a.small_clipped & ~clipped_b),
        grey_difference=grey_difference,
    )
