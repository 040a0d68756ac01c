"""Decoding image bytes (Pillow, camera RAW) into normalised Pillow images.

Two pixel paths exist:

* the default path applies EXIF orientation, composites transparency on white,
  normalises palette, CMYK, 16-bit and grayscale images, and decodes no more
  pixels than the caller needs: JPEG/MPO decode at 1/2, 1/4 or 1/8 scale in the
  DCT domain (``Image.draft``, luma only when grayscale is asked for), other
  formats are box-reduced by an integer factor right after decoding;
* the compat path reproduces imagededup 0.3.3's ``load_image`` exactly: no EXIF
  transpose, alpha dropped (``convert('RGBA').convert('RGB')``), and only the
  formats imagededup accepts.

Formats are whatever Pillow opens (JPEG, PNG, GIF, BMP, TIFF, WebP, MPO,
PPM/PGM/PBM, ICO, AVIF with Pillow >= 11.3 built with libavif, ...), plus
HEIC/HEIF when ``pillow-heif`` is installed and AVIF through
``pillow-avif-plugin`` when Pillow lacks it. Both plugins are registered lazily,
on the first image opened, so importing this module stays cheap. Multi-frame
files (animated GIF/WebP/PNG, multi-page TIFF, MPO) give their first frame.

Reading is defensive: only regular files are opened (a FIFO, socket or device
is reported, never read), nothing is ever written, and every failure becomes an
:class:`ImageLoadError` whose ``reason`` ends up in ``errors.csv``.
"""

from __future__ import annotations

import io
import threading
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

from imgdedup.errors import ImageLoadError

#: Formats imagededup 0.3.3 accepts (``imagededup.utils.image_utils.IMG_FORMATS``).
COMPAT_FORMATS = ("JPEG", "PNG", "BMP", "MPO", "PPM", "TIFF", "GIF", "WEBP")


#: Formats whose decoder can scale by 1/2, 1/4, 1/8 in the DCT domain (``Image.draft``).
DRAFT_FORMATS = ("JPEG", "MPO")


#: Default pixel path: a decoded image is box-reduced by an integer factor while
#: both sides stay at least this many times the size asked for (Pillow's
#: ``reducing_gap``); the final Lanczos resize then works on few pixels.
REDUCING_GAP = 3.0


_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


# Modes Image.reduce handles directly (others are converted first).
_REDUCIBLE_MODES = ("L", "LA", "RGB", "RGBA", "I", "F")


_ORIENTATION = 0x0112


#: Warnings raised inside the decoders (corrupt EXIF, odd chunks, Pillow's own
#: decompression-bomb warning: our size limit is checked from the header before
#: any pixel is decoded) do not make a file unusable. One filter, set once at
#: import: ``warnings.catch_warnings()`` around each decode is not thread-safe
#: (threads restore each other's filter lists and leave an ``ignore`` behind).
DECODER_WARNING_MODULES = r"(PIL|pillow_heif|pillow_avif|rawpy)(\.|$)"
warnings.filterwarnings("ignore", module=DECODER_WARNING_MODULES)


_PLUGINS_LOCK = threading.Lock()


_PLUGINS: dict[str, bool] | None = None


_PILLOW_LIMIT_LOCK = threading.Lock()


def register_optional_plugins() -> dict[str, bool]:
    """Register the optional Pillow plugins once per process; say which formats are available.

    * HEIC/HEIF: ``pillow-heif`` (``pip install pillow-heif``), registered with
      embedded thumbnails off (a stale thumbnail must never stand in for the
      picture), no depth/auxiliary images, and one decode thread (pipeline
      workers are single-threaded processes).
    * AVIF: Pillow's own plugin when Pillow was built with libavif (Pillow >= 11.3
      wheels are), else ``pillow-avif-plugin`` if installed.
    """
    global _PLUGINS
    if _PLUGINS is not None:
        return _PLUGINS
    with _PLUGINS_LOCK:
        if _PLUGINS is not None:
            return _PLUGINS
        available = {"heif": False, "avif": False}
        try:
            from pillow_heif import register_heif_opener
        except ImportError:
            pass
        else:
            register_heif_opener(thumbnails=False, depth_images=False, aux_images=False, decode_threads=1)
            available["heif"] = True
        from PIL import features

        available["avif"] = bool(features.check("avif"))
        if not available["avif"]:
            try:
                import pillow_avif  # noqa: F401  (registers itself on import)
            except ImportError:
                pass
            else:
                available["avif"] = True
        _PLUGINS = available
        return available


def decoder_signature(compat: bool, max_pixels: int) -> str:
    """What decides whether a file can be read here: pixel path, size limit, Pillow and optional decoders.

    Recorded with every file refused, so a later run retries the refused files
    when any of these differ (another ``--compat`` or ``max_image_pixels``,
    pillow-heif or rawpy installed since, a newer Pillow).
    """
    import importlib.util

    import PIL

    plugins = dict(register_optional_plugins(), raw=importlib.util.find_spec("rawpy") is not None)
    present = ",".join(sorted(name for name, ok in plugins.items() if ok)) or "none"
    return f"compat={int(bool(compat))} max_pixels={int(max_pixels)} pillow={PIL.__version__} plugins={present}"


def _pillow_open(data: bytes) -> Image.Image:
    try:
        return Image.open(io.BytesIO(data))  # warnings: see DECODER_WARNING_MODULES
    except UnidentifiedImageError:
        raise ImageLoadError("not an image (Pillow cannot identify the content)") from None
    except Image.DecompressionBombError:
        raise
    except Exception as exc:  # Pillow plugins raise many types on malformed headers
        raise ImageLoadError(f"cannot open image: {type(exc).__name__}: {exc}") from None


def open_image(data: bytes, max_pixels: int) -> Image.Image:
    """Open (not yet decode) an image, refusing empty, unknown and oversized input.

    The size comes from the header: an image above ``max_pixels`` is refused
    before a single pixel buffer is allocated (a decompression bomb costs only
    its header). Pillow's own bomb check (``2 * Image.MAX_IMAGE_PIXELS``) gives
    way when ``max_pixels`` is larger.
    """
    if not data:
        raise ImageLoadError("empty file (0 bytes)")
    if raw_kind(data):
        return open_raw(data, max_pixels)
    register_optional_plugins()
    try:
        image = _pillow_open(data)
    except Image.DecompressionBombError as exc:
        pillow_limit = Image.MAX_IMAGE_PIXELS
        if pillow_limit is None or max_pixels <= 2 * pillow_limit:
            raise ImageLoadError(f"decompression bomb refused: {exc}") from None
        with _PILLOW_LIMIT_LOCK:
            Image.MAX_IMAGE_PIXELS = None
            try:
                image = _pillow_open(data)
            finally:
                Image.MAX_IMAGE_PIXELS = pillow_limit
    width, height = image.size
    if width * height > max_pixels:
        raise ImageLoadError(
            f"image is {width} x {height} = {width * height} pixels, above max_image_pixels={max_pixels}"
        )
    if width < 1 or height < 1:
        raise ImageLoadError(f"image has no pixels ({width} x {height})")
    return image


_DNG_VERSION_TAG = 50706


def raw_kind(data: bytes) -> str | None:
    """The RAW format of the bytes by their signature (DNG, CR2, CR3, NEF, ARW, RAF, ORF, RW2), or None.

    TIFF-based RAWs are told from plain TIFFs by their maker's signature (CR2), the
    DNGVersion tag (DNG) or a camera maker whose TIFFs are RAWs (NEF, ARW, PEF).
    """
    head = data[:16]
    if head.startswith(b"FUJIFILMCCD-RAW"):
        return "RAF"
    if head[4:12] == b"ftypcrx ":
        return "CR3"
    if head[:4] in (b"IIRO", b"IIRS", b"MMOR"):
        return "ORF"
    if head[:4] == b"IIU\x00":
        return "RW2"
    if head[:4] not in (b"II*\x00", b"MM\x00*"):
        return None
    if head[8:10] == b"CR":
        return "CR2"
    tags = _tiff_ifd0(data)
    if _DNG_VERSION_TAG in tags:
        return "DNG"
    make = tags.get(271, "").upper()
    for maker, kind in (("NIKON", "NEF"), ("SONY", "ARW"), ("PENTAX", "PEF"), ("SAMSUNG", "SRW")):
        if make.startswith(maker):
            return kind
    return None


def _tiff_ifd0(data: bytes) -> dict[int, str]:
    """Tag ids of a TIFF's first IFD, with the Make (271) string; {} if the header is malformed.

    Read by hand: Pillow refuses a DNG's colour-filter-array IFD before showing its tags.
    """
    import struct

    order = "<" if data[:2] == b"II" else ">"
    try:
        (offset,) = struct.unpack_from(order + "I", data, 4)
        (count,) = struct.unpack_from(order + "H", data, offset)
        tags: dict[int, str] = {}
        for k in range(min(count, 512)):
            tag, kind, n, value = struct.unpack_from(order + "HHII", data, offset + 2 + 12 * k)
            text = ""
            if tag == 271 and kind == 2:
                raw = data[offset + 2 + 12 * k + 8 : offset + 2 + 12 * k + 8 + n] if n <= 4 else data[value : value + n]
                text = raw.split(b"\0", 1)[0].decode("latin-1")
            tags[tag] = text
        return tags
    except struct.error:
        return {}


def open_raw(data: bytes, max_pixels: int) -> Image.Image:
    """A RAW file as a Pillow image: its embedded preview JPEG when it has one (fast), else a half-size demosaic.

    Needs rawpy (LibRaw); without it the file is recorded with that reason.
    """
    kind = raw_kind(data)
    try:
        import rawpy
    except ImportError:
        raise ImageLoadError(f"{kind} camera RAW file: install rawpy to read it") from None
    try:
        with rawpy.imread(io.BytesIO(data)) as raw:
            width, height = raw.sizes.width, raw.sizes.height
            if width * height > max_pixels:
                raise ImageLoadError(
                    f"image is {width} x {height} = {width * height} pixels, above max_image_pixels={max_pixels}"
                )
            try:
                thumb = raw.extract_thumb()
            except (rawpy.LibRawNoThumbnailError, rawpy.LibRawUnsupportedThumbnailError):
                thumb = None
            if thumb is not None and thumb.format == rawpy.ThumbFormat.JPEG:
                image = _pillow_open(thumb.data)
            elif thumb is not None and thumb.format == rawpy.ThumbFormat.BITMAP:
                image = Image.fromarray(thumb.data)
            else:
                image = Image.fromarray(raw.postprocess(half_size=True, use_camera_wb=True, output_bps=8))
    except ImageLoadError:
        raise
    except Exception as exc:
        raise ImageLoadError(f"cannot read {kind} camera RAW file: {type(exc).__name__}: {exc}") from None
    image.info["raw_format"] = kind  # what the file is, whatever the preview's format
    return image


def exif_orientation(image: Image.Image) -> int:
    """EXIF orientation 1-8 (1 when absent or unreadable)."""
    try:
        value = image.getexif().get(_ORIENTATION, 1)
    except Exception:
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def oriented_size(image: Image.Image) -> tuple[int, int]:
    """Width and height after EXIF orientation (orientations 5-8 swap them)."""
    width, height = image.size
    return (height, width) if exif_orientation(image) in (5, 6, 7, 8) else (width, height)


def _decode(image: Image.Image) -> Image.Image:
    try:
        image.load()
    except Exception as exc:
        raise ImageLoadError(f"cannot decode image: {type(exc).__name__}: {exc}") from None
    return image


_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _orient(image: Image.Image, orientation: int) -> Image.Image:
    method = _TRANSPOSE.get(orientation)
    return image if method is None else image.transpose(method)


#: RGB bands spanning at most this many levels (over visible pixels) count as one flat colour.
FLAT_RGB_LEVELS = 2
#: A flat colour at least this light composites on white to a nearly blank picture.
LIGHT_LEVEL = 224


def alpha_picture(rgba: Image.Image) -> Image.Image | None:
    """The picture of an RGBA image whose RGB is one flat colour and whose alpha varies, else None.

    Such an image (a wallpaper or icon drawn only in its alpha channel) composites to a
    nearly blank picture on white when its colour is light (every band at least
    :data:`LIGHT_LEVEL`); read through its alpha, as ink of opacity ``alpha`` on white
    (``255 - alpha`` grey), it shows its picture. A darker flat colour already shows
    the picture on white, so those images (monochrome icons) keep their pixels and hashes.

    Parameters
    ----------
    rgba : Pillow image, mode RGBA

    Returns
    -------
    Pillow image, mode L, or None when the RGB carries the picture (or alpha is flat).
    """
    pixels = np.asarray(rgba)
    alpha = pixels[..., 3]
    low, high = int(alpha.min(initial=255)), int(alpha.max(initial=0))
    if high - low <= 16 or high == 0:
        return None
    visible = pixels[alpha > 0][:, :3]
    if int((visible.max(axis=0) - visible.min(axis=0)).max()) > FLAT_RGB_LEVELS or int(visible.min()) < LIGHT_LEVEL:
        return None
    return Image.fromarray(255 - alpha, "L")


def flatten(image: Image.Image, mode: str) -> Image.Image:
    """16-bit scaled (not clipped) to 8 bits, palette expanded, alpha on white, then ``mode``.

    An image drawn only in its alpha channel (flat RGB) is read through its alpha
    (:func:`alpha_picture`).
    """
    if image.mode in _SIXTEEN_BIT_MODES or image.mode == "F":
        array = np.asarray(image, dtype=np.float64)
        scale = 1.0 if array.max(initial=0) <= 255 and image.mode == "F" else 257.0
        image = Image.fromarray(np.clip(array / scale + 0.5, 0, 255).astype(np.uint8), "L")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        image.mode in ("RGB", "L") and "transparency" in image.info
    ):
        rgba = image.convert("RGBA")
        drawn = alpha_picture(rgba)
        if drawn is not None:
            image = drawn
        else:
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            image = Image.alpha_composite(white, rgba)
    if image.mode != mode:
        image = image.convert(mode if image.mode in ("RGB", "L", "RGBA") else "RGB").convert(mode)
    return image


def normalise(image: Image.Image, mode: str) -> Image.Image:
    """Decode and convert to ``mode`` ('RGB' or 'L') on the default path.

    Transparency is composited on white, 16-bit data scaled (not clipped) to 8 bits,
    EXIF orientation applied.
    """
    orientation = exif_orientation(image)
    return flatten(_orient(_decode(image), orientation), mode)


def _reducible(image: Image.Image) -> Image.Image:
    """The same pixels in a mode ``Image.reduce`` handles (transparency kept as alpha)."""
    mode = image.mode
    if mode in ("P", "1", "L", "RGB") and "transparency" in image.info:
        return image.convert("RGBA")
    if mode in _SIXTEEN_BIT_MODES:
        return image if mode == "I" else image.convert("I")
    if mode in _REDUCIBLE_MODES:
        return image
    if mode == "1":
        return image.convert("L")
    if mode in ("PA", "RGBa"):
        return image.convert("RGBA")
    if mode == "La":
        return image.convert("LA")
    return image.convert("RGB")  # P, CMYK, YCbCr, LAB, HSV


def _reduce_early(image: Image.Image, side: int, keep_aspect: bool = False) -> Image.Image:
    """Integer box reduction while both sides stay >= ``REDUCING_GAP * side``, each axis by its own
    factor (the caller resizes to a fixed square); with ``keep_aspect`` both by one factor, while the
    longer side stays that large."""
    width, height = image.size
    if keep_aspect:
        factor_x = factor_y = max(int(max(width, height) / side / REDUCING_GAP), 1)
    else:
        factor_x = max(int(width / side / REDUCING_GAP), 1)
        factor_y = max(int(height / side / REDUCING_GAP), 1)
    if factor_x == 1 and factor_y == 1:
        return image
    return _reducible(image).reduce((factor_x, factor_y))


def load_opened(
    image: Image.Image, mode: str = "RGB", draft_size: tuple[int, int] | None = None, *, keep_aspect: bool = False
) -> Image.Image:
    """Default pixel path on an image from :func:`open_image`: oriented, flattened, in ``mode``.

    ``draft_size`` says how large the result must stay (both sides, in either
    orientation): JPEG/MPO then decode at the smallest DCT scale (1/2, 1/4, 1/8)
    that keeps both sides at least that large, luma only when ``mode`` is 'L';
    any format is then box-reduced by an integer factor while both sides stay at
    least ``REDUCING_GAP`` times that large: each side by its own factor, for callers
    that resize to a fixed square. With ``keep_aspect`` both sides by one factor,
    while the longer side stays that large, so the picture keeps its shape (a copy
    resized to its longer side: the evidence of verification, thumbnails).
    """
    orientation = exif_orientation(image)
    side = max(draft_size) if draft_size is not None else None
    if side is not None and image.format in DRAFT_FORMATS:
        # Orientation may swap the sides, so ask for the larger side on both axes.
        try:
            image.draft(mode if image.mode in ("RGB", "L") and mode in ("RGB", "L") else None, (side, side))
        except Exception:
            pass  # a decoder that cannot draft decodes at full size
    image = _decode(image)
    if side is not None:
        image = _reduce_early(image, side, keep_aspect=keep_aspect)
    return flatten(_orient(image, orientation), mode)


def load_image(
    data: bytes,
    mode: str = "RGB",
    max_pixels: int = 178_956_970,
    draft_size: tuple[int, int] | None = None,
    *,
    keep_aspect: bool = False,
) -> Image.Image:
    """Default pixel path: bytes -> oriented, flattened image in ``mode``.

    ``draft_size`` lets the decoder skip pixels as long as both sides stay at
    least that large (see :func:`load_opened`, also for ``keep_aspect``): a 64-bit
    hash never needs full resolution.
    """
    return load_opened(open_image(data, max_pixels), mode, draft_size, keep_aspect=keep_aspect)


def compat_rgb(image: Image.Image, keep_gray: bool = False) -> Image.Image:
    """imagededup 0.3.3's pixels for an opened image: decoded RGB, no orientation, alpha dropped.

    With ``keep_gray``, an L or LA image is returned as one L band instead: its
    RGB form would be (v, v, v) (``convert('RGBA').convert('RGB')`` copies the
    gray value and drops alpha), so a caller that ends in ``convert('L')`` can
    resize one band instead of three and get the same bytes.
    """
    if image.format not in COMPAT_FORMATS:
        raise ImageLoadError(f"format {image.format} is not read by imagededup (compat mode)")
    _decode(image)
    if keep_gray and image.mode in ("L", "LA"):
        return image if image.mode == "L" else image.convert("L")
    try:
        if image.mode != "RGB":
            image = image.convert("RGBA").convert("RGB")
    except Exception as exc:
        raise ImageLoadError(f"cannot convert image: {type(exc).__name__}: {exc}") from None
    return image


def load_image_compat(data: bytes, max_pixels: int = 178_956_970) -> Image.Image:
    """imagededup 0.3.3's pixel path, bit for bit: RGB, no orientation, alpha dropped."""
    return compat_rgb(open_image(data, max_pixels))
