"""Constant-colour margins: letterbox and pillarbox bars, frames and borders added around a picture.

A copy with a border added is a different picture to a hash or a CNN that sees
the whole frame. :func:`margin_box` finds the box inside such margins so that
both see the picture itself. A margin counts only when it is one colour
(within ``tolerance`` grey levels, measured on a ``reduce``-times smaller copy
that averages JPEG ringing and noise away) and when the opposite side has one
of about the same width (within ``symmetry``): a flat sky along one edge, or a
caption bar, is part of the picture and is kept.

:func:`content_box` is the box verification compares (:mod:`imgdedup.imaging.describe`): the
same margins cut to the pixel, so that a copy mirrored or framed lines up with its original.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
from PIL import Image

#: Defaults chosen on the transformed-copies benchmark (border_10 copies found; no other copy trimmed).
TOLERANCE = 16
MAX_MARGIN = 0.3
SYMMETRY = 0.25
MIN_KEPT = 0.3


def _reduce_factor(width: int, height: int) -> int:
    # Keep the reduced short side around 30-80 pixels whatever the decode size.
    return max(1, min(width, height) // 60)


def _margin_run(lines: Iterable[np.ndarray], tolerance: int) -> int:
    """How many lines, from the outside in, stay within ``tolerance`` of the outermost line's median
    (0 when all of them do)."""
    reference, count = None, 0
    for line in lines:
        if reference is None:
            reference = np.median(line)
        if np.abs(line - reference).max() > tolerance:
            return count
        count += 1
    return 0  # flat as deep as a margin may go: flat content, not a margin


def _paired(a: int, b: int, symmetry: float) -> tuple[int, int]:
    if a == 0 or b == 0 or abs(a - b) > max(1, symmetry * max(a, b)):
        return 0, 0
    return a, b


def margin_box(
    image: Image.Image, tolerance: int = TOLERANCE, max_margin: float = MAX_MARGIN, symmetry: float = SYMMETRY
) -> tuple[int, int, int, int]:
    """``(left, top, right, bottom)`` of ``image`` without its constant-colour margins.

    The full frame ``(0, 0, width, height)`` when there are none, or when
    trimming would keep less than 30 % of either side.
    """
    width, height = image.size
    reduce = _reduce_factor(width, height)
    gray = image.convert("L")
    small = np.asarray(gray.reduce(reduce) if reduce > 1 else gray, dtype=np.int16)
    rows, cols = small.shape
    depth_r, depth_c = int(rows * max_margin), int(cols * max_margin)
    top = _margin_run((small[k] for k in range(depth_r)), tolerance)
    bottom = _margin_run((small[rows - 1 - k] for k in range(depth_r)), tolerance)
    left = _margin_run((small[:, k] for k in range(depth_c)), tolerance)
    right = _margin_run((small[:, cols - 1 - k] for k in range(depth_c)), tolerance)
    top, bottom = _paired(top, bottom, symmetry)
    left, right = _paired(left, right, symmetry)
    box = (left * reduce, top * reduce, width - right * reduce, height - bottom * reduce)
    if box[2] - box[0] < width * MIN_KEPT or box[3] - box[1] < height * MIN_KEPT:
        return 0, 0, width, height
    return box


def _refine(gray: np.ndarray, edge: int, step: int, reference: float, tolerance: int, reach: int) -> int:
    """Move a margin's inner edge (a line index of ``gray``; ``step`` +1 going inwards from the top or
    left, -1 from the bottom or right) to the first line that leaves ``reference``, at most ``reach``
    lines from where it was found (the coarse edge, found on a copy ``reach - 1`` times smaller)."""
    limit = gray.shape[0]

    def margin(k: int) -> bool:
        return 0 <= k < limit and bool(np.abs(gray[k] - reference).max() <= tolerance)

    for _ in range(reach):
        if margin(edge):
            edge += step  # the coarse edge fell inside the margin: go in
        elif margin(edge - step) or edge - step < 0 or edge - step >= limit:
            return edge
        else:
            edge -= step  # the coarse edge fell inside the picture: come out
    return edge


def content_box(image: Image.Image, tolerance: int = TOLERANCE) -> tuple[int, int, int, int]:
    """:func:`margin_box`, each cut edge moved to the pixel.

    :func:`margin_box` finds margins on a copy reduced ``r`` times, so its edges fall on multiples of
    ``r``: a copy mirrored, or framed, has its picture shifted by up to ``r - 1`` pixels against the
    original's, which costs thin line drawings most of their aligned correlation (a pen mirrored:
    0.65 on the coarse box, 1.00 on this one).
    """
    width, height = image.size
    left, top, right, bottom = margin_box(image, tolerance)
    if (left, top, right, bottom) == (0, 0, width, height):
        return left, top, right, bottom
    reach = _reduce_factor(width, height) + 1
    gray = np.asarray(image.convert("L"), dtype=np.int16)
    # the margin's colour is its outermost line's
    if top > 0:
        top = _refine(gray, top, 1, float(np.median(gray[0])), tolerance, reach)
    if bottom < height:
        bottom = _refine(gray, bottom - 1, -1, float(np.median(gray[-1])), tolerance, reach) + 1
    if left > 0:
        left = _refine(gray.T, left, 1, float(np.median(gray[:, 0])), tolerance, reach)
    if right < width:
        right = _refine(gray.T, right - 1, -1, float(np.median(gray[:, -1])), tolerance, reach) + 1
    return left, top, right, bottom


def trim_margins(image: Image.Image) -> Image.Image:
    """``image`` cropped to :func:`margin_box` (the same object when there is nothing to trim)."""
    box = margin_box(image)
    return image if box == (0, 0, *image.size) else image.crop(box)
