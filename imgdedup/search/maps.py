"""Aligned comparisons of two pictures' small maps, for :mod:`imgdedup.search.verify`.

Each function takes two :class:`~imgdedup.imaging.describe.ImageEvidence` (or
their arrays) and returns scores; the thresholds that turn scores into a verdict
live in :mod:`~imgdedup.search.verify`.
"""

from __future__ import annotations

import numpy as np

#: Largest share of the height (or width) the edge band cut by :func:`band_cut` may cover.
MAX_BAND = 0.2
#: Chroma magnitude (opponent colour, 0..1 units) a place needs in both pictures for its hue to count
#: (below it the hue of a near-grey place is noise).
HUE_CHROMA = 0.05
#: Fewest places with a hue in both pictures for :func:`hue_difference` to say anything.
HUE_PLACES = 4
#: Places with more than this share of clipped pixels (a channel near 0 or 255) in either picture
#: are left out of hue comparisons: brightness or contrast +30 % move the hue of clipped colours
#: by up to 31 degrees on the tuning half's originals.
CLIPPED_SHARE = 0.25


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.dot(a.ravel(), b.ravel()) / norm) if norm > 1e-9 else 0.0


def hue_difference(chroma_a: np.ndarray, chroma_b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Median angle in degrees between the hues of two aligned chroma maps, over the places
    (within ``mask``) that are colourful in both; 0.0 when fewer than :data:`HUE_PLACES` are.

    A copy keeps its hues: brightness, contrast and saturation scale the chroma vector of every
    place, re-encoding blurs it at edges only (the median ignores those). Where a channel clips
    (a brightened yellow) the hue does move, so the caller leaves clipped places out (``mask``).
    Two objects of one shape in different colours (navy and teal: 20 degrees) differ everywhere
    they are coloured, which a cosine of the whole maps, dominated by magnitude, hardly shows.

    Parameters
    ----------
    chroma_a, chroma_b : (2, H, W) float ndarray, opponent colour (see ``ImageEvidence.chroma``)
    mask : (H, W) bool ndarray, optional
    """
    a = chroma_a.reshape(2, -1).astype(np.float32)
    b = chroma_b.reshape(2, -1).astype(np.float32)
    na, nb = np.hypot(a[0], a[1]), np.hypot(b[0], b[1])
    places = (na >= HUE_CHROMA) & (nb >= HUE_CHROMA)
    if mask is not None:
        places &= mask.ravel()
    if int(places.sum()) < HUE_PLACES:
        return 0.0
    cos = (a[0] * b[0] + a[1] * b[1])[places] / (na * nb)[places]
    # the angle falls as the cosine rises: the median angle is the angle of the median cosine
    return float(np.degrees(np.arccos(np.clip(np.median(cos), -1.0, 1.0))))


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


def _common_maps(e, aspect: float, side: int) -> tuple[np.ndarray, np.ndarray]:
    """``e``'s small grey picture and its chroma, cut around the centre to ``aspect``, at ``side`` x ``side``
    and ``side // 4`` x ``side // 4``."""
    import cv2

    grey = cv2.resize(_centre_crop(e.small.astype(np.float32), aspect), (side, side), interpolation=cv2.INTER_AREA)
    chroma = np.stack(
        [
            cv2.resize(c, (side // 4, side // 4), interpolation=cv2.INTER_AREA)
            for c in _centre_crop(e.small_chroma.astype(np.float32), aspect)
        ]
    )
    return grey, chroma


def _unclipped(e, size: tuple[int, int], aspect: float | None = None) -> np.ndarray:
    """Where ``e``'s small copy (cut around the centre to ``aspect``), resized to ``size`` (w, h), is
    clipped in at most :data:`CLIPPED_SHARE` of its pixels."""
    import cv2

    clipped = e.small_clipped.astype(np.float32)
    if aspect is not None:
        clipped = _centre_crop(clipped, aspect)
    return cv2.resize(clipped, size, interpolation=cv2.INTER_AREA) <= CLIPPED_SHARE


def _shared_aspect(a, b) -> float:
    return min(a.small.shape[1] / a.small.shape[0], b.small.shape[1] / b.small.shape[0])


def _correlation(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of two maps (0.0 when either is flat)."""
    x, y = x - x.mean(), y - y.mean()
    norm = float(np.linalg.norm(x) * np.linalg.norm(y))
    return float((x * y).sum()) / norm if norm > 1e-6 else 0.0


def common_aspect(a, b, side: int = 32) -> tuple[float, float, float, float]:
    """Both pictures cut to the aspect ratio they share around the centre (how wallpapers ship
    per screen), at ``side`` x ``side``: grey correlation, :func:`worst_block`, chroma cosine and
    :func:`hue_difference` (unclipped places)."""
    aspect = _shared_aspect(a, b)
    (ga, ca), (gb, cb) = _common_maps(a, aspect, side), _common_maps(b, aspect, side)
    unclipped = _unclipped(a, ca.shape[:0:-1], aspect) & _unclipped(b, cb.shape[:0:-1], aspect)
    return _correlation(ga, gb), worst_block(ga, gb, block=4), cosine(ca, cb), hue_difference(ca, cb, unclipped)


def common_levels(a, b, side: int = 32) -> tuple[float, float, float]:
    """Both pictures cut to the aspect ratio they share around the centre, compared level for level
    (for nearly flat pictures, whose shape says little): grey correlation, mean absolute grey-level
    difference (0-255), mean absolute chroma difference (0-1 opponent units)."""
    aspect = _shared_aspect(a, b)
    (ga, ca), (gb, cb) = _common_maps(a, aspect, side), _common_maps(b, aspect, side)
    return _correlation(ga, gb), float(np.abs(ga - gb).mean()), float(np.abs(ca - cb).mean())


def _cut_correlations(sums: list[np.ndarray], width: int, cuts: np.ndarray) -> np.ndarray:
    """Correlation of two maps with their last ``cuts`` lines dropped, for every cut at once, from
    ``sums``: the running sums over lines of x, y, x * x, y * y and x * y (one pass, however many cuts)."""
    lines = len(sums[0]) - cuts
    sx, sy, sxx, syy, sxy = (s[lines - 1] for s in sums)
    count = lines * width
    covariance = sxy - sx * sy / count
    spread = np.sqrt(np.maximum(sxx - sx * sx / count, 0) * np.maximum(syy - sy * sy / count, 0))
    return np.where(spread > 1e-6, covariance / np.maximum(spread, 1e-12), 0.0)


def _line_sums(x: np.ndarray, y: np.ndarray) -> dict[str, list[np.ndarray]]:
    """Per edge, the running sums :func:`_cut_correlations` needs, the lines counted from the
    opposite edge. The products and line sums are taken once for the four edges."""
    products = (x, y, x * x, y * y, x * y)
    rows = [p.sum(axis=1) for p in products]
    columns = [p.T.sum(axis=1) for p in products]
    return {
        "bottom": [np.cumsum(r) for r in rows],
        "top": [np.cumsum(r[::-1]) for r in rows],
        "right": [np.cumsum(c) for c in columns],
        "left": [np.cumsum(c[::-1]) for c in columns],
    }


def band_cut(a, b, grid: int = 48, need: float = -1.0) -> tuple[float, float, float, float, str]:
    """Two pictures of one frame compared with the edge band where they differ most cut from both.

    A caption bar, a watermark strip or a banner covers an edge of a copy; what is
    left must still match. Every cut from 6 % to :data:`MAX_BAND` of each edge is
    tried on ``grid``-pixel grey maps of the whole frames (``small``), and the cut
    that correlates best is kept. When its correlation is below ``need`` the other
    scores are not computed (``inf`` and 0).

    Returns
    -------
    correlation, worst_block, chroma cosine and :func:`hue_difference` of what is left, and the
    edge cut (``"bottom"``, ``"top"``, ``"left"`` or ``"right"``).
    """
    import cv2

    aspect = a.small.shape[1] / a.small.shape[0]
    h, w = (grid, max(8, round(grid * aspect))) if aspect <= 1 else (max(8, round(grid / aspect)), grid)
    ga, gb = (cv2.resize(e.small.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA) for e in (a, b))
    best = (-1.0, "", 0)
    for edge, sums in _line_sums(ga, gb).items():
        length = len(sums[0])
        cuts = np.arange(max(1, round(0.06 * length)), round(MAX_BAND * length) + 1)
        if not len(cuts):
            continue
        correlations = _cut_correlations(sums, h * w // length, cuts)
        k = int(np.argmax(correlations))
        if correlations[k] > best[0]:
            best = (float(correlations[k]), edge, int(cuts[k]))
    correlation, edge, cut = best
    if not edge or correlation < need:
        return correlation, float("inf"), 0.0, 0.0, edge  # below what the caller needs: the rest is not worth it
    keep = {
        "bottom": (slice(0, h - cut), slice(None)),
        "top": (slice(cut, None), slice(None)),
        "left": (slice(None), slice(cut, None)),
        "right": (slice(None), slice(0, w - cut)),
    }[edge]
    chroma = [
        np.stack([cv2.resize(c.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA) for c in e.small_chroma])
        for e in (a, b)
    ]
    kept_a, kept_b = chroma[0][(slice(None), *keep)], chroma[1][(slice(None), *keep)]
    unclipped = (_unclipped(a, (w, h)) & _unclipped(b, (w, h)))[keep]
    hue = hue_difference(kept_a, kept_b, unclipped)
    return correlation, worst_block(ga[keep], gb[keep], block=6), cosine(kept_a, kept_b), hue, edge
