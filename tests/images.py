"""Image files the tests generate: every mode and format the loaders must handle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from imgdedup.sample import random_scene


def write_varied_images(folder: Path, seed: int = 0) -> list[Path]:
    """Write one file per format/mode variant; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    written = []

    def scene(size=(320, 240)):
        return random_scene(rng, size)

    def save(name, image, fmt, **kwargs):
        path = folder / name
        image.save(path, fmt, **kwargs)
        written.append(path)

    save("rgb.jpg", scene(), "JPEG", quality=90)
    save("progressive.jpg", scene(), "JPEG", quality=85, progressive=True)
    save("gray.jpg", scene().convert("L"), "JPEG")
    save("cmyk.jpg", scene().convert("CMYK"), "JPEG")
    oriented = scene((300, 200))
    exif = Image.Exif()
    exif[0x0112] = 6
    save("rotated_exif.jpg", oriented, "JPEG", exif=exif.tobytes())
    rgba = scene().convert("RGBA")
    alpha = np.full((240, 320), 255, dtype=np.uint8)
    alpha[:, :120] = 0
    rgba.putalpha(Image.fromarray(alpha))
    save("alpha.png", rgba, "PNG")
    save("palette.png", scene().convert("P", palette=Image.ADAPTIVE, colors=64), "PNG")
    save("gray.png", scene().convert("L"), "PNG")
    wide = np.asarray(scene().convert("L"), dtype=np.uint16) * 257
    save("gray16.png", Image.fromarray(wide), "PNG")
    save("plain.bmp", scene(), "BMP")
    save("plain.tif", scene(), "TIFF")
    save("anim.gif", scene().convert("P"), "GIF")
    save("plain.webp", scene(), "WEBP", quality=90)
    save("alpha.webp", rgba, "WEBP", quality=90)
    save("plain.ppm", scene(), "PPM")
    save("tiny.png", scene((7, 5)), "PNG")
    save("tall.png", scene((20, 900)), "PNG")
    return written
