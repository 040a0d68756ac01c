"""Small DNG files the tests write: a Bayer mosaic of an RGB image, through pidng."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_dng(rgb: np.ndarray, path: Path) -> Path:
    """Write ``rgb`` (H, W, 3 uint8, even H and W) as an uncompressed 12-bit RGGB DNG at ``path`` (suffix .dng)."""
    if path.suffix != ".dng":
        raise ValueError(f"pidng writes NAME.dng; got {path.name!r}")
    from pidng.core import RAW2DNG, DNGTags, Tag
    from pidng.defs import (
        CalibrationIlluminant,
        CFAPattern,
        DNGVersion,
        Orientation,
        PhotometricInterpretation,
        PreviewColorSpace,
    )

    # A camera records linear light: undo the sRGB curve, scale to 12 bits.
    encoded = np.asarray(rgb, dtype=np.float64) / 255
    linear = np.where(encoded <= 0.04045, encoded / 12.92, ((encoded + 0.055) / 1.055) ** 2.4)
    image = np.round(linear * 4095).astype(np.uint16)
    height, width, _ = image.shape
    bayer = np.zeros((height, width), np.uint16)
    bayer[0::2, 0::2] = image[0::2, 0::2, 0]
    bayer[0::2, 1::2] = image[0::2, 1::2, 1]
    bayer[1::2, 0::2] = image[1::2, 0::2, 1]
    bayer[1::2, 1::2] = image[1::2, 1::2, 2]
    tags = DNGTags()
    for tag, value in [
        (Tag.ImageWidth, width),
        (Tag.ImageLength, height),
        (Tag.TileWidth, width),
        (Tag.TileLength, height),
        (Tag.Orientation, Orientation.Horizontal),
        (Tag.PhotometricInterpretation, PhotometricInterpretation.Color_Filter_Array),
        (Tag.SamplesPerPixel, 1),
        (Tag.BitsPerSample, 16),
        (Tag.CFARepeatPatternDim, [2, 2]),
        (Tag.CFAPattern, CFAPattern.RGGB),
        (Tag.BlackLevel, 0),
        (Tag.WhiteLevel, 4095),
        # XYZ -> camera: this "camera" sees linear sRGB, so the matrix is XYZ -> linear sRGB (D65).
        (
            Tag.ColorMatrix1,
            [
                [32406, 10000],
                [-15372, 10000],
                [-4986, 10000],
                [-9689, 10000],
                [18758, 10000],
                [415, 10000],
                [557, 10000],
                [-2040, 10000],
                [10570, 10000],
            ],
        ),
        (Tag.CalibrationIlluminant1, CalibrationIlluminant.D65),
        (Tag.AsShotNeutral, [[1, 1], [1, 1], [1, 1]]),
        (Tag.BaselineExposure, [[0, 100]]),
        (Tag.Make, "imgdedup"),
        (Tag.Model, "test"),
        (Tag.DNGVersion, DNGVersion.V1_4),
        (Tag.DNGBackwardVersion, DNGVersion.V1_2),
        (Tag.PreviewColorSpace, PreviewColorSpace.sRGB),
    ]:
        tags.set(tag, value)
    converter = RAW2DNG()
    converter.options(tags, path="", compress=False)
    converter.convert(bayer, filename=str(path.with_suffix("")))
    return path
