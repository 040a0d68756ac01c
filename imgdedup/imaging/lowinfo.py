"""Low-information images: flat, near-blank and very simple pictures.

A perceptual hash or a CNN embedding of such a picture says almost nothing
about it: the dhash of a flat region is all zeros, and any two nearly blank
pictures have nearly the same embedding. So these images are flagged and
matched only by content digest or pixel equality (see
:mod:`imgdedup.search.verify`), never by a perceptual rule alone.

An image counts as low-information when, on a small grey copy, its grey levels
vary little (standard deviation below :data:`MIN_STD`), or nearly all of it
(:data:`BLANK_FRACTION`) is within :data:`BLANK_LEVELS` of its median grey: a
blank page with a dot, a flat colour with a thin line.
"""

from __future__ import annotations

import numpy as np

#: Grey-level standard deviation below which a picture is flat (0-255 scale).
MIN_STD = 3.0
#: A picture whose pixels are this close to the median grey ...
BLANK_LEVELS = 6
#: ... over at least this fraction of its area is near-blank.
BLANK_FRACTION = 0.985


def is_low_information(
    gray: np.ndarray, min_std: float = MIN_STD, blank_levels: int = BLANK_LEVELS, blank_fraction: float = BLANK_FRACTION
) -> bool:
    """Whether a grey picture carries too little to be matched perceptually.

    Parameters
    ----------
    gray : (H, W) uint8 or float ndarray
        A small grey copy of the image (e.g. 64 pixels on the longer side).
    min_std, blank_levels, blank_fraction
        See the module docstring.

    Returns
    -------
    bool
    """
    values = np.asarray(gray, dtype=np.float32)
    if values.ndim != 2 or values.size == 0:
        raise ValueError(f"`gray` must be a non-empty 2-d array, got shape {values.shape}")
    if not 0 < blank_fraction <= 1:
        raise ValueError(f"`blank_fraction` must be in (0, 1], got {blank_fraction!r}")
    if float(values.std()) < min_std:
        return True
    near = np.abs(values - np.median(values)) <= blank_levels
    return float(near.mean()) >= blank_fraction
