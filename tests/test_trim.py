"""Constant-colour margins are cut; flat parts of the picture itself are not."""

import io

import pytest
from PIL import Image, ImageDraw, ImageOps

from imgdedup.imaging.trim import content_box, margin_box, trim_margins


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    from sklearn.datasets import load_sample_images

    return Image.fromarray(load_sample_images().images[0]).resize((320, 240))


def jpeg(image: Image.Image, quality: int = 75) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def near(box, expected, slack):
    return all(abs(a - b) <= slack for a, b in zip(box, expected))


@pytest.mark.parametrize("fill", [(255, 255, 255), (0, 0, 0), (40, 90, 160)])
def test_a_frame_added_around_a_photo_is_found_through_jpeg_noise(photo, fill):
    framed = jpeg(ImageOps.expand(photo, border=(32, 24), fill=fill))
    assert near(margin_box(framed), (32, 24, 352, 264), slack=8)
    assert trim_margins(framed).size[0] in range(312, 329)


def test_letterbox_bars_only_top_and_bottom(photo):
    letterbox = Image.new("RGB", (320, 320), (0, 0, 0))
    letterbox.paste(photo, (0, 40))
    left, top, right, bottom = margin_box(jpeg(letterbox))
    assert (left, right) == (0, 320) and abs(top - 40) <= 8 and abs(bottom - 280) <= 8


def test_flat_region_on_one_side_and_caption_bar_are_kept(photo):
    sky = photo.copy()
    ImageDraw.Draw(sky).rectangle((0, 0, 319, 59), fill=(135, 180, 230))  # flat band along the top only
    assert margin_box(jpeg(sky)) == (0, 0, 320, 240)
    caption = photo.copy()
    ImageDraw.Draw(caption).rectangle((0, 211, 319, 239), fill=(0, 0, 0))  # bar over the bottom only
    assert margin_box(caption) == (0, 0, 320, 240)


def test_untouched_and_flat_images_keep_their_frame(photo):
    assert margin_box(photo) == (0, 0, 320, 240)
    assert trim_margins(photo) is photo
    flat = Image.new("RGB", (200, 100), (250, 250, 250))
    assert margin_box(flat) == (0, 0, 200, 100)  # all margin: nothing worth keeping, so keep everything
    tiny = Image.new("L", (3, 2), 0)
    assert margin_box(tiny) == (0, 0, 3, 2)


def pen_drawing(shift: int, width: int = 188) -> Image.Image:
    """A thin anti-aliased outline of a slanted pen on white, ``shift`` pixels to the right."""
    big = Image.new("RGB", (width * 4, width * 4), "white")
    outline = [(43 + shift, 128), (122 + shift, 43), (142 + shift, 63), (63 + shift, 145)]
    ImageDraw.Draw(big).polygon([(4 * x, 4 * y) for x, y in outline], outline="black", width=6)
    return big.resize((width, width), Image.LANCZOS)


@pytest.mark.parametrize("quality", [None, 90])
def test_content_box_cuts_margins_to_the_pixel_so_a_mirrored_copy_lines_up(quality):
    slack = 1 if quality else 0  # JPEG's 8 x 8 blocks are not mirrored with the picture
    coarse_off = []
    for shift in range(6):
        pen = pen_drawing(shift)
        mirrored = ImageOps.mirror(pen)
        if quality:
            pen, mirrored = jpeg(pen, quality), jpeg(mirrored, quality)
        width = pen.width
        left, top, right, bottom = content_box(pen)
        assert near((left, top, right, bottom), (43 + shift, 43, 143 + shift, 145), slack=1)  # the ink's box
        m_left, m_top, m_right, m_bottom = content_box(mirrored)
        assert near((m_left, m_top, m_right, m_bottom), (width - right, top, width - left, bottom), slack)
        coarse, coarse_m = margin_box(pen), margin_box(mirrored)
        coarse_off.append(max(abs(coarse_m[0] - (width - coarse[2])), abs(coarse_m[2] - (width - coarse[0]))))
    # margin_box's edges fall on multiples of its reduce factor (3): for most shifts its box is not mirrored
    assert sum(off >= 2 for off in coarse_off) >= 3, coarse_off


def test_content_box_keeps_the_frame_where_margin_box_finds_no_margin(photo):
    assert content_box(photo) == (0, 0, 320, 240)
    sky = photo.copy()
    ImageDraw.Draw(sky).rectangle((0, 0, 319, 59), fill=(135, 180, 230))
    assert content_box(jpeg(sky)) == (0, 0, 320, 240)
