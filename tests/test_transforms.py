"""benchmarks.transforms: the transforms and the transformed-copies generator."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks.transforms import (
    PHOTOS,
    SIBLING_LABEL,
    SIZE_PRESERVING,
    TRANSFORMS,
    GroundTruth,
    available_photos,
    gaussian_noise,
    load_photo,
    make_transformed_copies,
)
from imgdedup.compat.evaluation import score_run

ROOT = Path(__file__).resolve().parents[1]
SKLEARN_PHOTOS = ["china", "flower"]
needs_sklearn_photos = pytest.mark.skipif(
    any(PHOTOS[p].path() is None for p in SKLEARN_PHOTOS), reason="scikit-learn not installed"
)


def make_image(width=203, height=151, mode="RGB", seed=0):
    """A smooth colour pattern plus some noise; odd sizes exercise rounding."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 / width, y * 255 / height, (x + y) * 127 / (width + height)], -1)
    pixels = np.clip(base + rng.normal(0, 10, base.shape), 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels)
    return image.convert(mode)


def pixels(image):
    return np.asarray(image, dtype=np.int16)


W, H = 203, 151
EXPECTED_SIZE = {
    "jpeg_q25": (W, H),
    "downscale_50": (round(W * 0.5), round(H * 0.5)),  # (102, 76)
    "upscale_200": (2 * W, 2 * H),
    "thumbnail_160": (160, round(160 * H / W)),  # (160, 119)
    "brightness_130": (W, H),
    "contrast_130": (W, H),
    "saturation_150": (W, H),
    "grayscale": (W, H),
    "blur_r2": (W, H),
    "noise_s8": (W, H),
    "crop_5": (round(W * 0.95), round(H * 0.95)),
    "crop_15": (round(W * 0.85), round(H * 0.85)),
    "rotate_5": (W, H),
    "mirror": (W, H),
    "border_10": (W + 2 * round(W * 0.1), H + 2 * round(H * 0.1)),
    "caption_bar": (W, H),
    "stretch_130": (round(W * 1.3), H),
}


def test_registry_is_complete():
    assert list(TRANSFORMS) == list(EXPECTED_SIZE)
    assert set(SIZE_PRESERVING) == {n for n, s in EXPECTED_SIZE.items() if s == (W, H)}


@pytest.mark.parametrize("mode", ["RGB", "L"])
@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_transform_output(name, mode):
    image = make_image(mode=mode)
    before = image.tobytes()
    out = TRANSFORMS[name](image)
    assert isinstance(out, Image.Image)
    assert out.size == EXPECTED_SIZE[name]
    assert out.mode == ("L" if name == "grayscale" else mode)
    assert image.tobytes() == before  # input untouched
    assert TRANSFORMS[name](image).tobytes() == out.tobytes()  # deterministic
    if mode == "RGB" or name not in ("grayscale", "saturation_150"):  # no-ops on grey
        assert out.tobytes() != before


def test_mirror_is_fliplr():
    image = make_image()
    np.testing.assert_array_equal(pixels(TRANSFORMS["mirror"](image)), np.fliplr(pixels(image)))


@pytest.mark.parametrize("name, keep", [("crop_5", 0.95), ("crop_15", 0.85)])
def test_central_crop(name, keep):
    image = make_image()
    out = TRANSFORMS[name](image)
    w, h = round(W * keep), round(H * keep)
    left, top = (W - w) // 2, (H - h) // 2
    np.testing.assert_array_equal(pixels(out), pixels(image)[top : top + h, left : left + w])


def test_border_is_white_around_the_unchanged_image():
    image = make_image()
    out = pixels(TRANSFORMS["border_10"](image))
    dx, dy = round(W * 0.1), round(H * 0.1)  # 20 and 15 px
    np.testing.assert_array_equal(out[dy : dy + H, dx : dx + W], pixels(image))
    frame = np.ones(out.shape[:2], bool)
    frame[dy : dy + H, dx : dx + W] = False
    assert (out[frame] == 255).all()


def test_caption_bar_covers_bottom_12_percent():
    image = make_image()
    out = pixels(TRANSFORMS["caption_bar"](image))
    bar = round(H * 0.12)
    np.testing.assert_array_equal(out[: H - bar], pixels(image)[: H - bar])
    bottom = out[H - bar :]
    assert (bottom == 0).mean() > 0.7  # black bar ...
    assert (bottom == 255).any()  # ... with white text


def test_rotate_keeps_centre_and_fills_corners_black():
    image = Image.fromarray(np.full((H, W, 3), 200, np.uint8))
    out = pixels(TRANSFORMS["rotate_5"](image))
    assert (out[0, 0] == 0).all() and (out[-1, -1] == 0).all()
    assert (out[H // 2, W // 2] == 200).all()


def test_photometric_transforms():
    grey = Image.fromarray(np.full((64, 64, 3), 100, np.uint8))
    assert pixels(TRANSFORMS["brightness_130"](grey)).mean() == pytest.approx(130, abs=1)
    image = make_image()
    assert pixels(TRANSFORMS["contrast_130"](image)).std() > pixels(image).std() * 1.2
    chroma = lambda im: pixels(im).std(axis=2).mean()  # noqa: E731
    assert chroma(TRANSFORMS["saturation_150"](image)) > chroma(image) * 1.3
    detail = lambda im: np.abs(np.diff(pixels(im), axis=1)).mean()  # noqa: E731
    assert detail(TRANSFORMS["blur_r2"](image)) < detail(image) / 2
    jpeg = TRANSFORMS["jpeg_q25"](image)
    assert 0 < np.abs(pixels(jpeg) - pixels(image)).mean() < 15


def test_noise_has_sigma_8_and_depends_on_the_image():
    grey = Image.fromarray(np.full((200, 200, 3), 128, np.uint8))
    diff = pixels(TRANSFORMS["noise_s8"](grey)) - 128
    assert abs(diff.mean()) < 0.2
    assert diff.std() == pytest.approx(8, rel=0.03)
    other = Image.fromarray(np.full((200, 200, 3), 129, np.uint8))
    assert not np.array_equal(pixels(TRANSFORMS["noise_s8"](other)) - 129, diff)
    np.testing.assert_array_equal(pixels(gaussian_noise(grey, seed=1)), pixels(gaussian_noise(grey, seed=1)))


def test_thumbnail_does_not_enlarge():
    small = make_image(100, 50)
    assert TRANSFORMS["thumbnail_160"](small).size == (100, 50)


# --- photographs ------------------------------------------------------------


@needs_sklearn_photos
def test_sklearn_photos_are_available():
    assert available_photos()[:2] == SKLEARN_PHOTOS
    for name in SKLEARN_PHOTOS:
        image = load_photo(name)
        assert (image.mode, image.size) == ("RGB", (640, 427))


def test_skimage_photos_load_offline():
    if PHOTOS["astronaut"].path() is None:
        pytest.skip("scikit-image not installed")
    assert available_photos() == list(PHOTOS)
    for name in PHOTOS:
        image = load_photo(name)
        assert image.mode == "RGB" and min(image.size) >= 300, name


def test_load_photo_rejects_unknown_name():
    with pytest.raises(ValueError, match=r"photo must be one of china, flower.*got 'lena'"):
        load_photo("lena")


# --- make_transformed_copies ------------------------------------------------


def files_under(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def unordered(pairs):
    return {frozenset(p[:2]) for p in pairs}


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    truth = make_transformed_copies(root, n_originals=3, seed=7, photos=SKLEARN_PHOTOS)
    return root, truth


@needs_sklearn_photos
def test_writes_expected_files(bench):
    root, truth = bench
    images = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.jpg"))
    originals = [p for p in images if p.startswith("originals/")]
    assert len(originals) == 3
    expected_copies = sorted(f"copies/{Path(o).stem}__{t}.jpg" for o in originals for t in TRANSFORMS)
    assert [p for p in images if p.startswith("copies/")] == expected_copies
    assert sorted(truth.duplicates) == images
    assert truth.originals == originals
    assert sorted(p.name for p in root.iterdir()) == [
        "copies",
        "ground_truth.json",
        "originals",
        "pairs.csv",
        "sources.csv",
    ]
    for path in images:
        with Image.open(root / path) as image:
            assert image.format == "JPEG"
    sources = read_csv(root / "sources.csv")
    assert [s["original"] for s in sources] == originals
    for s in sources:
        with Image.open(root / s["original"]) as image:
            box_size = (int(s["right"]) - int(s["left"]), int(s["bottom"]) - int(s["top"]))
            assert image.size == box_size and min(box_size) >= 32
        assert s["package"] == "scikit-learn"


@needs_sklearn_photos
def test_copies_have_the_transform_geometry(bench):
    root, truth = bench
    for original in truth.originals:
        with Image.open(root / original) as image:
            size = image.size
        stem = Path(original).stem
        for name in ("downscale_50", "crop_15", "border_10", "stretch_130", "mirror"):
            with Image.open(root / f"copies/{stem}__{name}.jpg") as copy:
                assert copy.size == TRANSFORMS[name](Image.new("RGB", size)).size
        with Image.open(root / f"copies/{stem}__grayscale.jpg") as copy:
            assert copy.mode == "L"


@needs_sklearn_photos
def test_ground_truth_is_symmetric_and_matches_pairs_csv(bench):
    root, truth = bench
    on_disk = json.loads((root / "ground_truth.json").read_text())
    assert on_disk == truth.duplicates
    for key, values in on_disk.items():
        assert key not in values
        for value in values:
            assert key in on_disk[value]
    for original in truth.originals:
        stem = Path(original).stem
        copies = sorted(f"copies/{stem}__{t}.jpg" for t in TRANSFORMS)
        assert on_disk[original] == copies
        for copy in copies:
            assert on_disk[copy] == sorted([original] + [c for c in copies if c != copy])

    with open(root / "pairs.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["a", "b", "transform"]
    rows = [tuple(r) for r in rows[1:]]
    assert rows == truth.pairs == GroundTruth.load(root).pairs
    gt_pairs = {frozenset((k, v)) for k, vals in on_disk.items() for v in vals}
    assert unordered(rows) == gt_pairs and len(rows) == len(gt_pairs)
    n = len(TRANSFORMS)
    assert len(rows) == 3 * (n + n * (n - 1) // 2)
    for a, b, label in rows:
        if a.startswith("originals/"):
            assert b == f"copies/{Path(a).stem}__{label}.jpg"
        else:
            assert label == SIBLING_LABEL and b.startswith("copies/")


@needs_sklearn_photos
def test_deterministic_for_a_seed(bench, tmp_path):
    root, _ = bench
    make_transformed_copies(tmp_path / "again", n_originals=3, seed=7, photos=SKLEARN_PHOTOS)
    assert files_under(tmp_path / "again") == files_under(root)
    make_transformed_copies(tmp_path / "other", n_originals=3, seed=8, photos=SKLEARN_PHOTOS, transforms=["mirror"])
    assert (tmp_path / "other/sources.csv").read_bytes() != (root / "sources.csv").read_bytes()


@needs_sklearn_photos
def test_size_and_copies_match_the_transforms(tmp_path):
    truth = make_transformed_copies(
        tmp_path, n_originals=2, photos=["china"], size=(96, 64), transforms=["jpeg_q25", "mirror"]
    )
    (source, _) = read_csv(tmp_path / "sources.csv")
    box = tuple(int(source[k]) for k in ("left", "top", "right", "bottom"))
    # the in-memory original, rebuilt from sources.csv
    original = load_photo("china").crop(box).resize((96, 64), Image.Resampling.LANCZOS)
    stem = Path(source["original"]).stem
    for path in truth.duplicates:
        with Image.open(tmp_path / path) as image:
            assert image.size == (96, 64)
    with Image.open(tmp_path / source["original"]) as image:  # quality 95
        assert np.abs(pixels(image) - pixels(original)).mean() < 3
    with Image.open(tmp_path / f"copies/{stem}__jpeg_q25.jpg") as copy:  # exactly the transform
        np.testing.assert_array_equal(pixels(copy), pixels(TRANSFORMS["jpeg_q25"](original)))
    with Image.open(tmp_path / f"copies/{stem}__mirror.jpg") as copy:
        assert np.abs(pixels(copy) - np.fliplr(pixels(original))).mean() < 3


@needs_sklearn_photos
def test_refuses_to_overwrite_unless_asked(tmp_path):
    make_transformed_copies(tmp_path, n_originals=2, photos=SKLEARN_PHOTOS, transforms=["mirror"])
    (tmp_path / "keep.txt").write_text("not ours")
    with pytest.raises(FileExistsError, match=r"already holds .*overwrite=True"):
        make_transformed_copies(tmp_path, n_originals=1, photos=SKLEARN_PHOTOS, transforms=[])
    truth = make_transformed_copies(tmp_path, n_originals=1, photos=SKLEARN_PHOTOS, transforms=[], overwrite=True)
    assert truth.duplicates == {truth.originals[0]: []} and truth.pairs == []
    assert len(list(tmp_path.rglob("*.jpg"))) == 1
    assert (tmp_path / "keep.txt").exists()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_originals": 0}, r"n_originals must be a positive integer, got 0"),
        ({"n_originals": True}, r"n_originals must be a positive integer, got True"),
        ({"seed": -1}, r"seed must be a non-negative integer, got -1"),
        ({"size": (0, 10)}, r"size must be None or \(width, height\) of positive integers"),
        ({"transforms": ["mirror", "sepia"]}, r"transforms has unknown name\(s\) \['sepia'\]"),
        ({"transforms": "mirror"}, r"transforms must be a list of names"),
        ({"transforms": {"a__b": TRANSFORMS["mirror"]}}, r"transform name 'a__b' must be"),
        ({"photos": ["lena"]}, r"photos has unknown name 'lena'"),
        ({"photos": []}, r"photos must be a non-empty list"),
        ({"n_originals": 5000, "photos": ["china"]}, r"n_originals=5000 is too many"),
    ],
)
def test_invalid_arguments(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_transformed_copies(tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


@needs_sklearn_photos
def test_custom_transform_mapping(tmp_path):
    flip = lambda im: im.transpose(Image.Transpose.FLIP_TOP_BOTTOM)  # noqa: E731
    truth = make_transformed_copies(tmp_path, n_originals=1, photos=["flower"], transforms={"flip-v": flip})
    assert [label for _, _, label in truth.pairs] == ["flip-v"]


@needs_sklearn_photos
def test_command_line(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location(
        "make_transformed_copies_cli", ROOT / "benchmarks" / "make_transformed_copies.py"
    )
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    out_dir = tmp_path / "bench"
    assert (
        cli.main([str(out_dir), "--originals", "2", "--photos", "china,flower", "--transforms", "mirror,grayscale"])
        == 0
    )
    printed = capsys.readouterr().out
    assert "wrote 6 JPEGs" in printed and "mirror, grayscale" in printed
    # a perfect run: its duplicates.json is the ground truth itself
    run = tmp_path / "duplicates.json"
    run.write_text((out_dir / "ground_truth.json").read_text())
    assert cli.main(["--score", str(out_dir), str(run)]) == 0
    table = capsys.readouterr().out
    assert "overall" in table and "sibling" in table
    assert score_run(out_dir, run)["overall"]["f1"] == 1.0
    with pytest.raises(SystemExit):
        cli.main([str(out_dir)])  # exists: refused
    assert "--overwrite" in capsys.readouterr().err
