"""Verify a candidate pair before it may merge: evidence the first stage threw away.

A pair found by hashes or grey embeddings is confirmed, in this order, by

==============  ==========================================================================
evidence        the pair is a duplicate when
==============  ==========================================================================
``digest``      the two files have the same content digest
``pixels``      (the only way for a low-information image) their 32 x 32 RGB copies are
                equal within ``pixel_tolerance`` grey levels on average; of other aspect
                ratios, their shared centres are, with their faint shading in the same places
``aligned``     their trimmed grey maps, as they are or one mirrored, correlate at least
                ``aligned`` (24 x 24) and ``fine`` (48 x 48), and, when both are colourful, their chroma maps agree
                (cosine at least ``colour``, hues within :data:`MAX_HUE_SHIFT` where no channel
                clips); when one is grey, its grey level is the colourful one's (a greyscale copy):
                copies resized, re-encoded, blurred, recoloured, stretched or framed
``aligned       the same, on the centre of both cut to the aspect ratio they share (one
(common         artwork shipped for several screens)
aspect)``
``aligned       (one frame) the same, with the edge band where the two differ most cut from
(edge band      both, at most :data:`MAX_BAND` of the height or width: a caption bar, a
cut)``          watermark strip, a banner
``keypoints``   at least ``inliers`` ORB keypoint matches agree on one similarity
                transform (OpenCV RANSAC), the second picture warped by it onto the
                first correlates at least ``registered`` over their overlap, and their
                chroma there agrees (cosine at least :data:`REGISTERED_COLOUR`, hues within
                :data:`MAX_HUE_SHIFT`, compared no finer than either file's encoding kept
                colour: ``ImageEvidence.chroma_blur``; grey levels within
                :data:`GREY_COPY_LEVELS` when one is grey): crops, small rotations,
                aspect-ratio crops; or, when neither holds the other, the transform takes
                centre to centre unturned (one picture cut around its centre for two screens)
``template``    the same, the smaller picture placed inside the larger at the files' own
                pixel scale by template matching (a crop of a simple graphic: too few keypoints)
==============  ==========================================================================

otherwise it is refuted: a low-information image (:mod:`imgdedup.imaging.lowinfo`)
is never matched by a perceptual rule alone, and look-alike objects of different
colours or shapes stay apart. Thresholds come from the config (``verify_*``) and
were chosen on the tuning half of ``benchmarks/bench_trust.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from imgdedup.search.maps import (
    CLIPPED_SHARE,
    band_cut,
    common_aspect,
    common_levels,
    cosine,
    hue_difference,
    worst_block,
)
from imgdedup.search.registration import (
    contained_part,
    keypoint_transform,
    registered_correlation,
    template_transform,
)

#: The rules' version: verdicts kept in a store (:mod:`imgdedup.search.verdicts`) are of one version;
#: raise it whenever a rule or constant here, or the evidence (:mod:`imgdedup.imaging.describe`),
#: changes a verdict (14: long pictures keep their aspect ratio when described).
VERIFY_RULES = 14
#: Mean chroma magnitude (opponent colour, 0..1 units) below which an image counts as grey:
#: only then is colour not compared (a greyscale copy of a colour picture).
GREY = 0.012
#: Pixel equality also bounds the largest difference of one pixel of the 32 x 32 copies.
MAX_PIXEL_DELTA = 24
#: Smallest share of the first image a keypoint transform must cover.
MIN_OVERLAP = 0.2
#: Smallest share of one of the two pictures lying inside the other under a keypoint transform
#: (a crop lies wholly inside; copies turned 5 degrees >= 0.915 on the tuning half, a letter A
#: registered on the A of an A-umlaut 0.90: its frame sticks out) ...
MIN_CONTAINED = 0.91
#: ... unless the transform takes the centre of one to the centre of the other (within this share of
#: the diagonal; wallpapers cut per screen on the tuning half: <= 0.002) ...
MAX_OFF_CENTRE = 0.02
#: ... and turns it by at most this many degrees (tuning half: <= 0.5).
MAX_CENTRED_ANGLE = 1.0
#: Largest ratio of contrast between an image and its aligned copy: brightness/contrast +30 % stay
#: below 1.4 unless the copy clips; on the tuning half 1.6 finds more wallpaper pairs (0.725 -> 0.755)
#: at equal precision, and 1.8 nothing more.
MAX_CONTRAST_RATIO = 1.6
#: Largest ratio of chroma strength between an image and its aligned copy (saturation +50 % stays below).
MAX_CHROMA_RATIO = 1.8
#: Largest :func:`worst_block` of a keypoint-registered pair (finer than the aligned maps' ``blocks``).
REGISTERED_BLOCKS = 0.6
#: Pairs whose aligned maps correlate no more than this are not tried with keypoints.
KEYPOINT_MIN_ALIGNED = 0.0
#: Largest rotation (degrees) of a keypoint transform: copies are rotated a little, if at all
#: (an upside-down "u" is an "n", not a copy).
MAX_ANGLE = 30.0
#: Smallest chroma cosine over a keypoint-registered overlap: a registered look-alike of the same
#: shape differs only in colour (its hue is checked too: :data:`MAX_HUE_SHIFT`); copies of small
#: sprites, re-encoded with JPEG's halved chroma, score 0.84-0.95. On the tuning half 0.85 keeps
#: precision and finds more than 0.9; 0.8 lets a sprite and its end piece in.
REGISTERED_COLOUR = 0.85
#: Largest median hue difference (degrees, :func:`~imgdedup.search.maps.hue_difference`) of two
#: colourful pictures, aligned or registered: copies of the tuning half stay within 10, one shape in
#: navy and in teal differs by 20.
MAX_HUE_SHIFT = 12.0
#: Largest difference of mean grey level (0-255) between a grey picture and a colourful one it is
#: aligned with: a greyscale copy keeps it (tuning half <= 3.7), a black shape and a navy one do not (~20).
GREY_COPY_BRIGHTNESS = 10.0
#: The same for a keypoint-registered pair, as the median grey-level difference over the colourful
#: places of the overlap (tuning-half copies <= 11, a black shape on a navy one 50).
GREY_COPY_LEVELS = 25.0
#: Low-information pictures of other aspect ratios match on their shared centre when its levels are
#: equal, its chroma within this (0-1 opponent units) ...
FLAT_CHROMA = 0.01
#: ... and its shading correlates at least this much (one artwork: >= 0.58 at 4 screen sizes of
#: the tuning set's flat wallpapers, whose level differences stay under 0.08; other flat wallpapers
#: differ by 5 levels or more).
FLAT_SHADING = 0.5
#: Pixel equality (low-information images) also needs aspect ratios within this fraction.
MAX_ASPECT_DIFFERENCE = 0.02
#: Aspect ratios within this fraction count as one frame (:func:`band_cut`).
SAME_FRAME = 0.05
#: What is left after :func:`band_cut` must be the same picture, not a similar one: a copy under
#: a caption bar correlates >= 0.99 on the tuning half (all but one >= 0.997; the true pairs between
#: 0.98 and 0.99 are alpha-resized copies that keypoints confirm), two drawings of one penguin 0.93,
#: two game sprites that differ in their bottom fifth 0.981.
BAND_CORRELATION = 0.99
#: Largest :func:`worst_block` of what is left after :func:`band_cut` (caption copies <= 0.08).
BAND_BLOCKS = 0.5


@dataclass(frozen=True)
class VerifySettings:
    """Thresholds of :func:`verify_pair` (see the module docstring)."""

    aligned: float = 0.9
    fine: float = 0.85
    colour: float = 0.85
    inliers: int = 12
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


def colour_kinds(a, b) -> tuple[bool, bool]:
    """Whether both pictures are colourful, and whether exactly one of them is grey."""
    colourful_a, colourful_b = a.colourfulness >= GREY, b.colourfulness >= GREY
    return colourful_a and colourful_b, colourful_a != colourful_b


def chroma_ratio(a, b) -> float:
    """How many times stronger the colours of one picture are than the other's (>= 1)."""
    return max(a.chroma_level, b.chroma_level) / max(min(a.chroma_level, b.chroma_level), 1e-6)


def pixel_verdict(a, b, settings: VerifySettings) -> Verdict:
    """Low-information images match by (nearly) equal pixels of one frame, or not at all."""
    delta = np.abs(a.pixels.astype(np.int16) - b.pixels.astype(np.int16))
    difference = float(delta.mean())
    scores = {"pixel_difference": round(difference, 2)}
    aspect_a, aspect_b = a.size[0] / a.size[1], b.size[0] / b.size[1]
    same_aspect = abs(aspect_a - aspect_b) <= MAX_ASPECT_DIFFERENCE * min(aspect_a, aspect_b)
    if difference <= settings.pixel_tolerance and int(delta.max()) <= MAX_PIXEL_DELTA and same_aspect:
        return Verdict(True, "pixels", scores)
    if not same_aspect:
        # one nearly flat artwork cut for several screens: its centre, level for level, and its
        # faint shading (a glow, a logo) in the same places; two flat pictures of one colour
        # have no shading to agree on, and stay apart
        shading, levels, chroma = common_levels(a, b)
        scores.update(shared_levels=round(levels, 2), shared_shading=round(shading, 3))
        if levels <= settings.pixel_tolerance and chroma <= FLAT_CHROMA and shading >= FLAT_SHADING:
            return Verdict(True, "pixels (common aspect)", scores)
    return Verdict(False, "low_information", scores)


def keypoint_verdict(a, b, settings: VerifySettings, aligned: float, scores: dict) -> Verdict | None:
    """The verdict of registering the two pictures (a crop, a small rotation), or None when it says nothing.

    ORB keypoints with RANSAC first; when they find no transform, a crop that kept its pixels is
    placed by template matching (:func:`template_transform`: letters, flags and other simple
    graphics have too few keypoints). ``scores`` gains the registration's scores.
    """
    transform, inliers = None, 0
    # too few keypoints never agree; pictures anti-correlated even as aligned maps are not crops of
    # each other (on the tuning half this skips a fifth of the matching and loses 2 of 647 crops)
    if min(len(a.descriptors), len(b.descriptors)) >= settings.inliers and aligned > KEYPOINT_MIN_ALIGNED:
        transform, inliers = keypoint_transform(a.points, a.descriptors, b.points, b.descriptors)
    scores["inliers"] = inliers
    keypoints, keypoint_scores = None, dict(scores)
    if transform is not None and inliers >= settings.inliers:
        keypoints = registered_verdict(a, b, transform, "keypoints", settings, keypoint_scores)
        if keypoints is not None and keypoints.ok:
            scores.update(keypoint_scores)
            return keypoints
    # symmetric shapes mislead RANSAC, and flat graphics have few keypoints: a crop that kept its
    # pixels is still placed by its grey levels
    transform, placed = template_transform(a, b)
    if transform is not None:
        template_scores = {**scores, "template": round(placed, 3)}
        verdict = registered_verdict(a, b, transform, "template", settings, template_scores)
        if verdict is not None:
            scores.update(template_scores)
            return verdict
    scores.update(keypoint_scores)
    return keypoints


def registered_verdict(
    a, b, transform: np.ndarray, evidence: str, settings: VerifySettings, scores: dict
) -> Verdict | None:
    """The verdict on ``b`` warped onto ``a`` by ``transform``: ``evidence`` when one lies within the
    other and matches there, a refutation when the layout matches in other colours, else None."""
    colourful, one_grey = colour_kinds(a, b)
    # below `registered` no verdict depends on the colour scores: they are not computed
    r = registered_correlation(a, b, transform, need=settings.registered)
    scored = r.correlation >= settings.registered
    angle = abs(float(np.degrees(np.arctan2(transform[1, 0], transform[0, 0]))))
    contained = max(r.overlap, r.share_b)
    centre = transform @ np.array([a.size[0] / 2, a.size[1] / 2, 1.0])
    off_centre = float(np.hypot(*(centre - np.asarray(b.size) / 2)) / np.hypot(*b.size))
    # two cuts of one picture around its centre, for screens of other shapes: neither holds the
    # other, but the transform takes centre to centre, unturned
    centred = off_centre <= MAX_OFF_CENTRE and angle <= MAX_CENTRED_ANGLE
    scores.update(
        registered=round(r.correlation, 3),
        overlap=round(r.overlap, 3),
        contained=round(contained, 3),
        angle=round(angle, 1),
        off_centre=round(off_centre, 3),
    )
    if scored:
        scores["registered_blocks"] = round(r.blocks, 3)
        if colourful:
            scores.update(registered_colour=round(r.colour, 3), registered_hue=round(r.hue, 1))
        if one_grey:
            scores["grey_difference"] = round(r.grey_difference, 1)
    colour_kept = (
        r.colour >= REGISTERED_COLOUR and chroma_ratio(a, b) <= MAX_CHROMA_RATIO and r.hue <= MAX_HUE_SHIFT
        if colourful
        else not one_grey or r.grey_difference <= GREY_COPY_LEVELS
    )
    # one picture must lie (nearly) wholly within the other: a crop, not two pictures sharing a part
    if (
        r.correlation >= settings.registered
        and min(r.overlap, r.share_b) >= MIN_OVERLAP
        and (contained >= MIN_CONTAINED or centred)
        and r.blocks <= REGISTERED_BLOCKS
        and angle <= MAX_ANGLE
        and r.contrast <= MAX_CONTRAST_RATIO
        and colour_kept
    ):
        if min(r.overlap, r.share_b) < 0.95 and contained_part(a, b, transform):
            return Verdict(False, "part", scores)  # found inside the other with blank around: a part
        return Verdict(True, evidence if contained >= MIN_CONTAINED else f"{evidence} (common centre)", scores)
    if not colour_kept and r.correlation >= settings.registered:
        return Verdict(False, "colour", scores)  # the same layout, other colours: a look-alike
    return None


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
        return pixel_verdict(a, b, settings)
    direct, mirrored = (
        float(np.dot(a.grey.ravel(), b.grey.ravel())),
        float(np.dot(a.grey.ravel(), b.grey[:, ::-1].ravel())),
    )
    flip = mirrored > direct
    aligned = max(direct, mirrored)
    fine = float(np.dot(a.fine.ravel(), (b.fine[:, ::-1] if flip else b.fine).ravel()))
    scores: dict = {"aligned": round(aligned, 3), "fine": round(fine, 3)}
    colourful, one_grey = colour_kinds(a, b)
    colour_ok = True
    if colourful:
        chroma_b = b.chroma[:, :, ::-1] if flip else b.chroma
        clipped_b = b.clipped[:, ::-1] if flip else b.clipped
        unclipped = (a.clipped <= CLIPPED_SHARE) & (clipped_b <= CLIPPED_SHARE)
        colour, hue = cosine(a.chroma, chroma_b), hue_difference(a.chroma, chroma_b, unclipped)
        scores.update(colour=round(colour, 3), hue=round(hue, 1))
        colour_ok = colour >= settings.colour and hue <= MAX_HUE_SHIFT
    elif one_grey:
        # a greyscale copy keeps the grey level of every colour: a black shape is no copy of a navy one
        brightness = abs(a.brightness - b.brightness)
        scores["brightness_difference"] = round(brightness, 1)
        colour_ok = brightness <= GREY_COPY_BRIGHTNESS
    # the worst square only decides between maps that correlate well (and costs more than the rest)
    near = aligned >= settings.aligned and fine >= settings.fine
    blocks = worst_block(a.fine, b.fine[:, ::-1] if flip else b.fine, block=6) if near else float("inf")
    contrast = max(a.contrast, b.contrast) / max(min(a.contrast, b.contrast), 1e-6)
    chroma_strength = chroma_ratio(a, b)
    scores.update(contrast_ratio=round(contrast, 2))
    if near:
        scores["blocks"] = round(blocks, 3)
    # contrast and colour strength change little in a copy (brightness, contrast, saturation)
    aligned_ok = near and blocks <= settings.blocks
    tone_ok = contrast <= MAX_CONTRAST_RATIO and (not colourful or chroma_strength <= MAX_CHROMA_RATIO)
    if aligned_ok and colour_ok and tone_ok:
        return Verdict(True, "aligned", scores)
    aspect_a, aspect_b = a.size[0] / a.size[1], b.size[0] / b.size[1]
    if abs(aspect_a - aspect_b) > SAME_FRAME * min(aspect_a, aspect_b) and contrast <= MAX_CONTRAST_RATIO:
        # one picture cut for another screen: compare what both show
        shared, shared_blocks, shared_colour, shared_hue = common_aspect(a, b)
        scores.update(shared=round(shared, 3), shared_blocks=round(shared_blocks, 3))
        if colourful:
            scores["shared_hue"] = round(shared_hue, 1)
        if (
            shared >= settings.aligned
            and shared_blocks <= settings.blocks
            and (not colourful or (shared_colour >= settings.colour and shared_hue <= MAX_HUE_SHIFT))
        ):
            return Verdict(True, "aligned (common aspect)", scores)
    if abs(aspect_a - aspect_b) <= SAME_FRAME * min(aspect_a, aspect_b) and not aligned_ok:
        kept, kept_blocks, kept_colour, kept_hue, edge = band_cut(a, b, need=BAND_CORRELATION)
        scores.update(band=round(kept, 3), band_blocks=round(kept_blocks, 3), band_edge=edge)
        if colourful:
            scores["band_hue"] = round(kept_hue, 1)
        if (
            kept >= BAND_CORRELATION
            and kept_blocks <= BAND_BLOCKS
            and (not colourful or (kept_colour >= settings.colour and kept_hue <= MAX_HUE_SHIFT))
        ):
            return Verdict(True, "aligned (edge band cut)", scores)
    verdict = keypoint_verdict(a, b, settings, aligned, scores)
    if verdict is not None:
        return verdict
    return Verdict(False, "colour" if aligned_ok and not colour_ok else "structure", scores)
