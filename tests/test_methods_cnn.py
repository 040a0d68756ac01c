"""The imagededup-compatible CNN class, on generated images with the default offline model."""

import numpy as np
import pytest
from PIL import Image

from benchmarks.transforms import make_transformed_copies
from imgdedup.compat.methods import CNN
from tests.conftest import found_pairs, known_pairs


@pytest.fixture(scope="module")
def cnn():
    return CNN(verbose=False)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Real photographs (crops of the ones scikit-learn ships) with re-encoded, resized and brightened copies."""
    root = tmp_path_factory.mktemp("cnn") / "photos"
    truth = make_transformed_copies(
        root, n_originals=6, seed=2, size=(320, 240), transforms=["jpeg_q25", "downscale_50", "brightness_130"]
    )
    for name in ("ground_truth.json", "pairs.csv", "sources.csv"):
        (root / name).unlink()
    return root, truth.duplicates


def test_encodings_are_unit_vectors(cnn, folder):
    root, truth = folder
    encodings = cnn.encode_images(root, recursive=True)
    assert set(encodings) == set(truth)
    vectors = np.stack(list(encodings.values()))
    assert vectors.shape == (len(truth), 1280) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    first = sorted(truth)[0]
    single = cnn.encode_image(image_file=str(root / first))
    assert single.shape == (1, 1280)
    assert float(single[0] @ encodings[first]) > 0.9999


def test_find_duplicates_finds_the_known_pairs(cnn, folder):
    root, truth = folder
    # EfficientNet-Lite0 features: copies score 0.83 and up here, different photos 0.60 at most
    duplicates = cnn.find_duplicates(image_dir=root, recursive=True, min_similarity_threshold=0.75)
    assert found_pairs(duplicates) == known_pairs(truth)
    scored = cnn.find_duplicates(
        encoding_map=cnn.encode_images(root, recursive=True), min_similarity_threshold=0.75, scores=True
    )
    for neighbours in scored.values():
        similarities = [s for _, s in neighbours]
        assert similarities == sorted(similarities, reverse=True)
        assert all(0.75 <= s <= 1.0001 for s in similarities)
    removed = cnn.find_duplicates_to_remove(image_dir=root, recursive=True, min_similarity_threshold=0.75)
    assert len(removed) == len(truth) - 6  # one image of each original's group stays


def test_array_input_and_bad_arguments(cnn):
    array = np.asarray(Image.new("RGB", (64, 48), (10, 200, 30)))
    assert cnn.encode_image(image_array=array).shape == (1, 1280)
    assert cnn.encode_image(image_array=array[:, :, 0]).shape == (1, 1280)
    with pytest.raises(ValueError, match="image file path or image array"):
        cnn.encode_image()
    with pytest.raises(TypeError, match="float between -1.0 and 1.0"):
        cnn.find_duplicates(encoding_map={"a": np.ones(3)}, min_similarity_threshold=1)
    with pytest.raises(ValueError, match="float between -1.0 and 1.0"):
        cnn.find_duplicates(encoding_map={"a": np.ones(3)}, min_similarity_threshold=1.5)
