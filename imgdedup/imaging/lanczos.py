"""Pillow's LANCZOS resize, bit for bit, with less CPU: the compat path's largest cost.

imagededup resizes the full decoded RGB image with ``Image.resize(size,
LANCZOS)``; compat mode must produce the same bytes. Pillow computes it in two
separable passes of fixed-point integer arithmetic (``libImaging/Resample.c``):
coefficients from a truncated sinc, normalised per output pixel and rounded to
22 fractional bits; each pass runs over only the lines the other pass reads and
rounds its result to 8 bits. This module computes the same coefficients in
double precision with the same C library ``sin``, and the same integer sums, so
the result is identical. Its two numba kernels turn each tap into one vector
loop over many lines (the vertical pass reads whole lines; the horizontal one
first lays 32 lines side by side), where Pillow's loop works one output pixel
at a time: 4 ms instead of 15 for a 2 MP RGB image to 32 x 32. They read
Pillow's own pixel memory (:mod:`imgdedup.imaging.pixel_view`) where it can be had
without a copy.

Which pass runs first changes the result, and Pillow picks it from the sizes by
a rule its published source does not show; :func:`pass_order` reads it off once
per geometry, from the second image of that geometry on (the first goes to
Pillow). Only 8-bit ``L`` and ``RGB`` images are handled here; anything else,
or a geometry whose order cannot be read off, goes to Pillow.
"""

from __future__ import annotations

import math
import threading
from functools import lru_cache

import numpy as np
from PIL import Image

from imgdedup.imaging.pixel_view import pixel_lines

PRECISION_BITS = 32 - 8 - 2
SUPPORT = 3.0
ROWS_PER_BLOCK = 32


def _sinc(x: float) -> float:
    if x == 0.0:
        return 1.0
    x = x * math.pi
    return math.sin(x) / x


def _lanczos(x: float) -> float:
    if -3.0 <= x < 3.0:
        return _sinc(x) * _sinc(x / 3)
    return 0.0


@lru_cache(maxsize=256)
def coefficients(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pillow's ``precompute_coeffs`` + ``normalize_coeffs_8bpc`` for the whole axis.

    Returns ``bounds`` (out_size, 2) int64: first input index and tap count,
    and ``weights`` (out_size, ksize) int32 fixed-point coefficients.
    """
    scale = float(in_size) / out_size
    filterscale = max(scale, 1.0)
    support = SUPPORT * filterscale
    ksize = int(math.ceil(support)) * 2 + 1
    bounds = np.zeros((out_size, 2), dtype=np.int64)
    weights = np.zeros((out_size, ksize), dtype=np.int32)
    ss = 1.0 / filterscale
    for xx in range(out_size):
        center = (xx + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), in_size) - xmin
        taps = [_lanczos((x + xmin - center + 0.5) * ss) for x in range(xmax)]
        total = 0.0
        for w in taps:
            total += w
        for x, w in enumerate(taps):
            if total != 0.0:
                w /= total
            weights[xx, x] = int(-0.5 + w * (1 << PRECISION_BITS)) if w < 0 else int(0.5 + w * (1 << PRECISION_BITS))
        bounds[xx] = (xmin, xmax)
    return bounds, weights


_KERNEL = None


def _keep_freed_memory() -> None:
    """Ask glibc to keep freed blocks of up to 64 MB instead of returning them to the system.

    Each image allocates and frees a few megabytes (its pixels as an array); by
    default glibc soon starts handing such blocks back to the kernel and faulting
    them in again, about 4000 page faults and 9 ms of system time per 2 MP image,
    more than the resize itself. Other C libraries are left as they are.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    mallopt(m_mmap_threshold, KEPT_BLOCK)
    mallopt(m_trim_threshold, 256 << 20)


#: Largest allocation glibc is asked to keep (:func:`_keep_freed_memory`), and Pillow's block size here.
KEPT_BLOCK = 64 << 20


def _images_in_one_block() -> None:
    """Let Pillow hold an image of up to 64 MB (16 MP RGB) in one memory block instead of 16 MB ones.

    Only an image whose rows lie in one block can be read without a copy
    (:mod:`imgdedup.imaging.pixel_view`): with Pillow's default a 12 MP photograph
    spans three blocks and is copied, and compat mode costs 64 ms instead of
    55 ms for it. A block size set through ``PILLOW_BLOCK_SIZE`` is kept.
    """
    import os

    core = Image.core
    if "PILLOW_BLOCK_SIZE" in os.environ or not hasattr(core, "set_block_size"):
        return
    if core.get_block_size() < KEPT_BLOCK:
        core.set_block_size(KEPT_BLOCK)


def _kernels():  # noqa: C901  (numba kernels: the loops stay inline for speed)
    """The numba kernels ``(horizontal, vertical)``, compiled (or loaded from numba's cache) once per process.

    Both read and write C-contiguous 2-D uint8 arrays of whole lines, (lines,
    width * bytes per pixel), and have one explicit signature each: a worker loads
    two functions from the cache instead of compiling one variant per array
    layout, which cost about a second per process.
    """
    global _KERNEL
    if _KERNEL is None:
        import numba
        from numba import types

        _keep_freed_memory()
        _images_in_one_block()
        # Sources are read-only (pixels straight from Pillow); writable arrays convert to that type.
        lines, out = types.Array(types.uint8, 2, "C", readonly=True), types.uint8[:, ::1]
        bounds_t, weights_t = types.int64[:, ::1], types.int32[:, ::1]

        @numba.njit(
            out(lines, types.int64, types.int64, types.int64, types.int64, bounds_t, weights_t), cache=True, nogil=True
        )
        def horizontal(src, channels, stride, first, count, bounds, weights):  # noqa: C901  (numba kernel: the loops stay inline for speed)
            # Lines first .. first + count of src (stride bytes per pixel, the first channels
            # of them bands) resampled along each line; the result packs the bands.
            width = src.shape[1] // stride
            out_w = bounds.shape[0]
            dst = np.empty((count, out_w * channels), np.uint8)
            # ROWS_PER_BLOCK lines side by side, every byte of each pixel (block[x, r *
            # stride + b]), so that one tap updates all of them in one vector loop
            block = np.empty((width, ROWS_PER_BLOCK * stride), np.uint8)
            acc = np.empty(ROWS_PER_BLOCK * stride, np.int32)
            if stride == 4:  # whole pixels as 4-byte words: a third faster than byte moves
                words = src.view(np.uint32)
                block_words = block.view(np.uint32)
            for start in range(0, count, ROWS_PER_BLOCK):
                rows = min(ROWS_PER_BLOCK, count - start)
                for r in range(rows):
                    o = r * stride
                    line = src[first + start + r]
                    # constant strides: a multiply by a runtime stride makes this loop 1.5x slower
                    if stride == 4:
                        line_words = words[first + start + r]
                        for x in range(width):
                            block_words[x, r] = line_words[x]
                    elif stride == 3:
                        for x in range(width):
                            b = x * 3
                            block[x, o] = line[b]
                            block[x, o + 1] = line[b + 1]
                            block[x, o + 2] = line[b + 2]
                    else:
                        for x in range(width):
                            for b in range(stride):
                                block[x, o + b] = line[x * stride + b]
                for xx in range(out_w):
                    xmin = bounds[xx, 0]
                    for lane in range(block.shape[1]):
                        acc[lane] = 1 << (PRECISION_BITS - 1)
                    for x in range(bounds[xx, 1]):
                        # Both spellings matter to LLVM: an int32 product (numba widens
                        # int32 * int32 to int64) and a bound read off the array's own
                        # shape; either otherwise keeps this loop scalar, 4x slower.
                        k = np.int32(weights[xx, x])
                        for lane in range(block.shape[1]):
                            acc[lane] += np.int32(block[xmin + x, lane]) * k
                    for r in range(rows):
                        for c in range(channels):
                            v = acc[r * stride + c] >> PRECISION_BITS
                            dst[start + r, xx * channels + c] = 0 if v < 0 else (255 if v > 255 else v)
            return dst

        @numba.njit(out(lines, types.int64, types.int64, bounds_t, weights_t), cache=True, nogil=True)
        def vertical(src, lo, hi, bounds, weights):
            # Values lo .. hi of every line resampled across lines: whole lines are
            # contiguous, so each tap is one plain vector loop.
            out_h = bounds.shape[0]
            n = hi - lo
            dst = np.empty((out_h, n), np.uint8)
            acc = np.empty(n, np.int32)
            for yy in range(out_h):
                ymin = bounds[yy, 0]
                for i in range(n):
                    acc[i] = 1 << (PRECISION_BITS - 1)
                for y in range(bounds[yy, 1]):
                    k = np.int32(weights[yy, y])  # see horizontal
                    line = src[ymin + y, lo:hi]
                    for i in range(n):
                        acc[i] += np.int32(line[i]) * k
                for i in range(n):
                    v = acc[i] >> PRECISION_BITS
                    dst[yy, i] = 0 if v < 0 else (255 if v > 255 else v)
            return dst

        _KERNEL = (horizontal, vertical)
    return _KERNEL


def _shifted(bounds: np.ndarray, first: int) -> np.ndarray:
    out = bounds.copy()
    out[:, 0] -= first
    return out


def _passes(lines: np.ndarray, stride: int, channels: int, size: tuple[int, int], vertical_first: bool) -> np.ndarray:
    """Both passes in the given order, each over only the lines the other reads, each rounding to 8 bits.

    ``lines`` is (height, width * stride) uint8 with ``channels`` bands in each
    pixel's ``stride`` bytes; the result is (out_h, out_w, channels).
    """
    horizontal, vertical = _kernels()
    height, width = lines.shape[0], lines.shape[1] // stride
    out_w, out_h = size
    h_bounds, h_weights = coefficients(width, out_w)
    v_bounds, v_weights = coefficients(height, out_h)
    need_h, need_v = out_w != width, out_h != height
    if need_h and need_v and vertical_first:
        first, last = int(h_bounds[0, 0]), int(h_bounds[-1, 0] + h_bounds[-1, 1])
        columns = vertical(lines, first * stride, last * stride, v_bounds, v_weights)
        out = horizontal(columns, channels, stride, 0, out_h, _shifted(h_bounds, first), h_weights)
    elif need_h:
        first, last = (int(v_bounds[0, 0]), int(v_bounds[-1, 0] + v_bounds[-1, 1])) if need_v else (0, height)
        out = horizontal(lines, channels, stride, first, last - first, h_bounds, h_weights)
        if need_v:
            out = vertical(out, 0, out.shape[1], _shifted(v_bounds, first), v_weights)
    else:  # vertical only: the padding bytes of each pixel are resampled too, then dropped
        out = vertical(lines, 0, lines.shape[1], v_bounds, v_weights)
        return np.ascontiguousarray(out.reshape(out_h, out_w, stride)[:, :, :channels])
    return out.reshape(out_h, out_w, channels)


@lru_cache(maxsize=4096)
def pass_order(width: int, height: int, channels: int, size: tuple[int, int]) -> bool | None:
    """Which pass Pillow runs first for this geometry: False horizontal, True vertical, None unknown.

    The order changes the result (each pass rounds to 8 bits) and this Pillow's
    choice of it depends only on the sizes, by a rule its source does not
    document: it is read off once per geometry by resizing a noise image both
    ways and comparing with Pillow's own result (random noise tells the two
    orders apart). None (neither matched) sends the geometry to Pillow.
    """
    noise = np.random.default_rng(width * 7919 + height).integers(0, 256, (height, width, channels), dtype=np.uint8)
    mode = "RGB" if channels == 3 else "L"
    reference = np.asarray(
        Image.fromarray(noise if channels == 3 else noise[:, :, 0], mode).resize(size, Image.LANCZOS)
    )
    reference = reference if reference.ndim == 3 else reference[:, :, None]
    lines = noise.reshape(height, width * channels)
    for vertical_first in (False, True):
        if np.array_equal(_passes(lines, channels, channels, size, vertical_first), reference):
            return vertical_first
    return None


def _resized_lines(lines: np.ndarray, stride: int, channels: int, size: tuple[int, int]) -> np.ndarray | None:
    height, width = lines.shape[0], lines.shape[1] // stride
    order = pass_order(width, height, channels, size)
    return None if order is None else _passes(lines, stride, channels, size, order)


def lanczos_array(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray | None:
    """``pixels`` (H, W, C) uint8 resized to ``size`` = (width, height) as Pillow's LANCZOS does, or None
    when the geometry is one this module cannot reproduce."""
    height, width, channels = pixels.shape
    lines = np.ascontiguousarray(pixels).reshape(height, width * channels)
    return _resized_lines(lines, channels, channels, tuple(size))


#: Geometries met once by :func:`lanczos_resize`, oldest first (bounded: a dict used as an ordered set).
_SEEN_ONCE: dict[tuple, None] = {}
_SEEN_ONCE_LIMIT = 65536
_SEEN_ONCE_LOCK = threading.Lock()  # a Dask worker may run several chunks in threads


def _first_sight(key: tuple) -> bool:
    """True the first time ``key`` is met (and remember it)."""
    with _SEEN_ONCE_LOCK:
        if key in _SEEN_ONCE:
            return False
        if len(_SEEN_ONCE) >= _SEEN_ONCE_LIMIT:
            del _SEEN_ONCE[next(iter(_SEEN_ONCE))]
        _SEEN_ONCE[key] = None
        return True


def lanczos_resize(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """``image.resize(size, Image.LANCZOS)``, the same bytes, faster for ``L`` and ``RGB``.

    The first image of a geometry goes to Pillow: reading off the pass order
    costs about three of Pillow's resizes (a noise image resized by Pillow and
    both ways here), which pays only from the second image of that geometry on.
    A library where every image has its own size thus costs what Pillow does,
    not three times that.
    """
    size = tuple(size)
    if image.mode not in ("L", "RGB") or image.size == size:
        return image.resize(size, Image.LANCZOS)
    channels = 3 if image.mode == "RGB" else 1
    if _first_sight((image.width, image.height, channels, size)):
        return image.resize(size, Image.LANCZOS)
    try:
        view = pixel_lines(image)  # Pillow's own memory: no copy
        if view is None:
            view = np.asarray(image).reshape(image.height, image.width * channels), channels
        out = _resized_lines(view[0], view[1], channels, size)
    except ImportError:  # numba missing: Pillow gives the same bytes, slower
        out = None
    if out is None:
        return image.resize(size, Image.LANCZOS)
    return Image.fromarray(out if image.mode == "RGB" else out[:, :, 0], image.mode)
