"""Constant-colour margins are cut; flat parts of the picture itself are not."""

import io

import pytest
from PIL import Image, ImageDraw, ImageOps

from imgdedup.imaging.trim import margin_box, trim_margins


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
