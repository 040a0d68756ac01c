"""RAW camera files: a DNG the test writes is read through rawpy and found as a duplicate of its JPEG."""

import json

import numpy as np
import pytest

rawpy = pytest.importorskip("rawpy", reason="rawpy (LibRaw) is a dependency; this guards a broken wheel only")
pytest.importorskip("pidng", reason="pidng writes the test DNGs (test extra)")

from imgdedup.config import load_config  # noqa: E402
from imgdedup.errors import ImageLoadError  # noqa: E402
from imgdedup.imaging.decode import open_image, raw_kind  # noqa: E402
from imgdedup.pipeline.inprocess import find_duplicates_in_folder  # noqa: E402
from imgdedup.sample import random_scene  # noqa: E402
from tests.raw_files import write_dng  # noqa: E402


def test_raw_signatures():
    assert raw_kind(b"FUJIFILMCCD-RAW 0201") == "RAF"
    assert raw_kind(b"\x00\x00\x00\x18ftypcrx \x00\x00") == "CR3"
    assert raw_kind(b"II*\x00\x10\x00\x00\x00CR\x02\x00") == "CR2"
    assert raw_kind(b"\xff\xd8\xff\xe0") is None


def test_dng_opens_and_plain_tiff_is_not_raw(tmp_path):

    scene = random_scene(np.random.default_rng(3), (320, 240))
    dng = write_dng(np.asarray(scene), tmp_path / "shot.dng").read_bytes()
    assert raw_kind(dng) == "DNG"
    image = open_image(dng, 10**9)
    assert image.size == (160, 120) or image.size == (320, 240)  # half-size demosaic, or a preview
    assert image.info["raw_format"] == "DNG"
    scene.save(tmp_path / "plain.tif")
    assert raw_kind((tmp_path / "plain.tif").read_bytes()) is None
    broken = dng[:2000]
    with pytest.raises(ImageLoadError, match="DNG camera RAW file"):
        open_image(broken, 10**9)


def test_raw_and_its_jpeg_are_duplicates(tmp_path):
    folder = tmp_path / "camera"
    folder.mkdir()
    rng = np.random.default_rng(8)
    for k in range(4):
        scene = random_scene(rng, (640, 480))
        scene.save(folder / f"IMG_{k}.JPG", quality=92)
        write_dng(np.asarray(scene), folder / f"IMG_{k}.dng")
    find_duplicates_in_folder(folder, load_config(store=str(tmp_path / "store")), tmp_path / "run")
    duplicates = json.loads((tmp_path / "run" / "duplicates.json").read_text())
    assert {k: v for k, v in duplicates.items()} == {
        **{f"IMG_{k}.JPG": [f"IMG_{k}.dng"] for k in range(4)},
        **{f"IMG_{k}.dng": [f"IMG_{k}.JPG"] for k in range(4)},
    }
    formats = {
        m["path"]: m["format"]
        for c in json.loads((tmp_path / "run" / "clusters.json").read_text())["clusters"]
        for m in c["members"]
    }
    assert formats["IMG_0.dng"] == "DNG"
