import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from imgdedup.cli.main import main
from imgdedup.errors import InputError
from imgdedup.imaging.preprocess import preprocess_images


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "in"
    (root / "sub").mkdir(parents=True)
    rgba = Image.new("RGBA", (400, 300), (0, 0, 0, 0))
    rgba.paste((255, 0, 0, 255), (0, 0, 200, 300))
    rgba.save(root / "sub" / "alpha.png")
    wide = Image.new("RGB", (300, 100), (255, 255, 0))
    wide.paste((0, 0, 255), (0, 0, 150, 100))  # left half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed rotated by 90 degrees
    wide.save(root / "turned.jpg", exif=exif.tobytes())
    (root / "notes.txt").write_text("not an image")
    return root


def test_copies_are_oriented_flattened_resized_and_keep_paths(folder, tmp_path):
    result = preprocess_images(folder, tmp_path / "out", target_size=(64, 48), format="JPEG")
    assert sorted(result.written) == ["sub/alpha.jpg", "turned.jpg"]
    assert result.errors == [("notes.txt", "not an image (Pillow cannot identify the content)")]
    alpha = Image.open(tmp_path / "out" / "sub" / "alpha.jpg")
    assert alpha.size == (64, 48) and alpha.mode == "RGB"
    pixels = np.asarray(alpha).astype(int)
    assert pixels[24, 5, 0] > 200 and pixels[24, 5, 1] < 60  # the opaque red half
    assert pixels[24, 60].min() > 230  # the transparent half, flattened on white
    turned = np.asarray(Image.open(tmp_path / "out" / "turned.jpg")).astype(int)
    assert turned.shape == (48, 64, 3)
    assert turned[5, 32, 2] > 200 and turned[5, 32, 0] < 60  # orientation applied: the blue left half is now on top
    assert turned[42, 32, 0] > 200 and turned[42, 32, 2] < 60


def test_bad_arguments_are_named(folder, tmp_path):
    with pytest.raises(ValueError, match="`format` must be one of JPEG, PNG, WEBP"):
        preprocess_images(folder, tmp_path / "out", format="GIF")
    with pytest.raises(ValueError, match="`target_size` must be"):
        preprocess_images(folder, tmp_path / "out", target_size=(0, 10))
    with pytest.raises(InputError, match="must not be inside the input folder"):
        preprocess_images(folder, folder / "out")


def test_cli(folder, tmp_path):
    result = CliRunner().invoke(
        main, ["preprocess", str(folder), str(tmp_path / "out"), "--size", "32", "32", "--format", "png"]
    )
    assert result.exit_code == 3, result.output
    assert "written:      2 images" in result.output
    assert "unreadable:   notes.txt: not an image" in result.output
    assert Image.open(tmp_path / "out" / "turned.png").size == (32, 32)


def test_two_inputs_for_one_output_never_overwrite_each_other(tmp_path):
    """a.jpg and a.png both become a.jpg: the first (byte order) is written, the second reported, not written."""
    source = tmp_path / "in"
    source.mkdir()
    Image.new("RGB", (40, 30), (250, 0, 0)).save(source / "a.jpg")
    Image.new("RGB", (40, 30), (0, 0, 250)).save(source / "a.png")
    result = preprocess_images(source, tmp_path / "out", target_size=(8, 8))
    assert result.written == ["a.jpg"]
    assert result.errors == [("a.png", "not written: its output a.jpg is the copy of a.jpg")]
    red, green, blue = Image.open(tmp_path / "out" / "a.jpg").convert("RGB").getpixel((4, 4))
    assert red > 200 and blue < 50  # a.jpg's pixels, not a.png's
