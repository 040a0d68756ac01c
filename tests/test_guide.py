"""Every snippet of the guide (issue #19), in its order, on generated photographs, with ``imgdedup`` for ``imagededup``.

Order: hash scan, CNN, preprocessing, BK-tree, report, evaluation, dask bag.
The folder is flat, as the guide's ``image_dir="photos"`` and ``os.listdir(d)`` assume.
"""

import json
import os
import re
import shutil
import threading

import numpy as np
import pytest
from PIL import Image

from benchmarks.transforms import make_transformed_copies
from tests.conftest import found_pairs, known_pairs


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Crops of the photographs scikit-image ships, with re-encoded, downscaled and brightened copies, in one folder."""
    base = tmp_path_factory.mktemp("guide")
    generated = base / "generated"
    truth = make_transformed_copies(
        generated, n_originals=6, seed=2, size=(320, 240), transforms=["jpeg_q25", "downscale_50", "brightness_130"]
    )
    folder = base / "photos"
    folder.mkdir()
    for name in truth.duplicates:
        shutil.move(generated / name, folder / os.path.basename(name))
    flat = {os.path.basename(k): sorted(os.path.basename(v) for v in vs) for k, vs in truth.duplicates.items()}
    return folder, flat


@pytest.fixture(scope="module")
def cnn():
    from imgdedup.methods import CNN

    return CNN()


# --- 1. the hash scan ------------------------------------------------------------------------------------------


def test_hashing_takes_the_method_per_call(photos):
    from imgdedup.methods import Hashing, PHash

    folder, truth = photos
    phasher = Hashing()
    duplicates = phasher.find_duplicates(image_dir=str(folder), hash_method="phash")
    assert duplicates == PHash().find_duplicates(image_dir=str(folder))
    assert found_pairs(duplicates) == known_pairs(truth)
    duplicates = phasher.find_duplicates(image_dir=str(folder), hash_method="dhash", max_distance_threshold=4)
    assert found_pairs(duplicates) <= known_pairs(truth) and found_pairs(duplicates)
    narrow = PHash().find_duplicates(image_dir=str(folder), hash_method="phash", max_distance_threshold=3)
    assert found_pairs(narrow) <= known_pairs(truth)
    with pytest.raises(ValueError, match=r"`hash_method`='dhash' does not match PHash"):
        PHash().find_duplicates(image_dir=str(folder), hash_method="dhash")
    with pytest.raises(ValueError, match="Hashing\\(\\) needs `hash_method`"):
        Hashing().find_duplicates(image_dir=str(folder))
    with pytest.raises(ValueError, match="`hash_method` must be one of phash, dhash, ahash, whash"):
        Hashing().encode_images(str(folder), hash_method="md5")


def test_num_enc_workers_gives_the_same_hashes_in_any_number_of_processes(photos):
    from imgdedup.methods import DHash

    folder, _ = photos
    in_process = DHash().encode_images(folder, num_enc_workers=0)
    assert DHash().encode_images(folder) == in_process  # default: a process per core
    assert DHash().encode_images(folder, num_enc_workers=3) == in_process
    # With another thread running the process is not forked: the chunks go to threads, with the same result.
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert DHash().encode_images(folder, num_enc_workers=2) == in_process
    finally:
        stop.set()
        other.join()
    with pytest.raises(ValueError, match="`num_enc_workers` must be an int >= 0"):
        DHash().encode_images(folder, num_enc_workers=-1)


def test_find_duplicates_to_remove_is_shared_and_keeps_one_of_each_group(photos):
    from imgdedup.methods import Hashing

    folder, truth = photos
    removed = Hashing().find_duplicates_to_remove(image_dir=str(folder), hash_method="phash")
    assert len(removed) == len(truth) - 6
    with pytest.raises(TypeError, match="by position"):
        Hashing().find_duplicates_to_remove(str(folder), None, 10, "out.json")


# --- 2. the CNN ------------------------------------------------------------------------------------------------


def test_cnn_encodings_by_folder_and_by_list(cnn, photos):
    folder, truth = photos
    encodings = cnn.encode_images(image_dir=str(folder))
    assert set(encodings) == set(truth)
    paths = [str(folder / name) for name in sorted(truth)[:3]]
    by_path = cnn.encode_images(image_list=paths)
    assert list(by_path) == paths
    for path in paths:
        assert np.allclose(by_path[path], encodings[os.path.basename(path)], atol=1e-5)
    (folder.parent / "not-an-image.jpg").write_bytes(b"no picture here")
    assert list(cnn.encode_images(image_list=[paths[0], str(folder.parent / "not-an-image.jpg")])) == [paths[0]]


def test_cnn_find_duplicates_and_float16_maps(cnn, photos):
    folder, truth = photos
    encodings = cnn.encode_images(image_dir=str(folder))
    duplicates = cnn.find_duplicates(encoding_map=encodings, min_similarity_threshold=0.9)
    assert (
        found_pairs(duplicates) <= known_pairs(truth) and len(found_pairs(duplicates)) >= len(known_pairs(truth)) // 2
    )
    compressed = {k: v.astype(np.float16) for k, v in encodings.items()}
    from_half = cnn.find_duplicates(encoding_map=compressed, min_similarity_threshold=0.92)
    assert found_pairs(from_half) == found_pairs(
        cnn.find_duplicates(encoding_map=encodings, min_similarity_threshold=0.92)
    )


def test_cnn_torchvision_model_without_weights_offline_names_the_model_and_the_folder(tmp_path, offline_torch):
    from imgdedup.methods import CNN

    with pytest.raises(ValueError, match="torchvision model 'vgg16'") as caught:
        CNN(model_name="vgg16", input_size=(224, 224))
    message = str(caught.value)
    assert "vgg16-397923af.pth" in message and str(tmp_path / "torch" / "hub" / "checkpoints") in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__  # no socket traceback attached
    with pytest.raises(ValueError, match="not a torchvision classification model"):
        CNN(model_name="vgg17")


def test_cnn_layers_of_the_default_model(photos):
    from imgdedup.methods import CNN

    folder, truth = photos
    with pytest.raises(
        ValueError, match="'fc2' is not a layer of efficientnet_lite0; valid: head, block; fc1/fc2 are VGG's"
    ):
        CNN(batch_size=32, feature_extraction_layer="fc2")
    block = CNN(batch_size=4, feature_extraction_layer="block")
    vector = block.encode_image(image_file=str(folder / sorted(truth)[0]))
    assert vector.shape == (1, 320) and block.embedder.batch_size == 4


def test_keras_style_and_node_names_of_vgg():
    """VGG's Keras names map to its torchvision nodes (a meta-device model: no weights, no memory)."""
    import torch
    import torchvision

    from imgdedup.compat.layers import keras_style_names, layer_node

    with torch.device("meta"):
        vgg = torchvision.models.vgg16(weights=None)
    names = keras_style_names(vgg)
    assert names["fc1"] == "classifier.1" and names["fc2"] == "classifier.4"
    assert names["block5_conv3"] == "features.29" and names["block5_pool"] == "features.30"
    assert layer_node(vgg, "fc2", "vgg16") == "classifier.4"
    assert layer_node(vgg, "classifier.3", "vgg16") == "classifier.3"
    with pytest.raises(
        ValueError, match="'fc3' is not a layer of vgg16; valid: Keras-style names block1_conv1.*classifier.6"
    ):
        layer_node(vgg, "fc3", "vgg16")


def test_cnn_torchvision_model_by_name_from_the_cache_and_at_a_layer(photos, tmp_path, monkeypatch):
    """Weights in torch's cache, as torchvision finds them (here an untrained state dict saved there)."""
    import torch
    import torchvision

    from imgdedup.compat.layers import weights_file
    from imgdedup.methods import CNN
    from imgdedup.utils import CustomModel

    folder, truth = photos
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    path = weights_file("mobilenet_v3_small")
    path.parent.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(torchvision.models.mobilenet_v3_small(weights=None).state_dict(), path)
    image = str(folder / sorted(truth)[0])
    whole = CNN(model_name="mobilenet_v3_small", input_size=(160, 160), runtime="torch")
    pooled = CNN(model_name="mobilenet_v3_small", input_size=160, feature_extraction_layer="avgpool")
    assert whole.embedder.input_size == pooled.embedder.input_size == 160
    a, b = whole.encode_image(image_file=image), pooled.encode_image(image_file=image)
    assert a.shape == b.shape == (1, 576) and np.allclose(a, b, atol=1e-5)  # the classifier's input is avgpool's output
    early = CNN(model_name="mobilenet_v3_small", feature_extraction_layer="features.3", use_gpu=False)
    assert early.encode_image(image_file=image).shape == (1, 24) and early.embedder.device == "cpu"
    with pytest.raises(ValueError, match="'fc2' is not a layer of mobilenet_v3_small; valid: torchvision node names"):
        CNN(model_name="mobilenet_v3_small", feature_extraction_layer="fc2")
    with pytest.raises(ValueError, match="`input_size` must be one side or a square"):
        CNN(model_name="mobilenet_v3_small", input_size=(224, 160))
    untrained = torchvision.models.mobilenet_v3_small(weights=None)  # imagededup's CustomModel, cut at a layer
    custom = CNN(
        model_config=CustomModel(model=untrained, transform=_transform), feature_extraction_layer="features.12"
    )
    assert custom.encode_image(image_file=image).shape == (1, 576)


def _transform(image: Image.Image) -> np.ndarray:
    pixels = np.asarray(image.convert("RGB").resize((96, 96)), dtype=np.float32) / 255.0
    return pixels.transpose(2, 0, 1)


def test_cnn_use_gpu_is_cuda_when_present_else_the_cpu_with_one_warning():
    import torch

    from imgdedup.methods import CNN

    if torch.cuda.is_available():
        assert CNN(use_gpu=True).embedder.device == "cuda"
        return
    with pytest.warns(UserWarning, match="CUDA is not available") as caught:
        cnn = CNN(use_gpu=True)
    assert len(caught) == 1 and cnn.embedder.device == "cpu"


# --- 3. preprocessing ------------------------------------------------------------------------------------------


def test_preprocess_images(photos, tmp_path):
    from imgdedup.utils import image_utils

    folder, truth = photos
    result = image_utils.preprocess_images(
        input_dir=str(folder), output_dir=str(tmp_path / "processed"), target_size=(256, 256)
    )
    assert sorted(result.written) == sorted(truth) and result.errors == []
    with Image.open(tmp_path / "processed" / sorted(truth)[0]) as image:
        assert image.size == (256, 256)


# --- 4. the BK-tree --------------------------------------------------------------------------------------------


def test_bktree_query_equals_find_duplicates(photos):
    from imgdedup.handlers.search import BKTree
    from imgdedup.methods import PHash

    folder, _ = photos
    hash_values = PHash().encode_images(str(folder))
    bktree = BKTree()
    bktree.build_tree(hash_dict=hash_values)
    duplicates = bktree.query(hash_dict=hash_values, distance_threshold=5)
    assert duplicates == PHash().find_duplicates(encoding_map=hash_values, max_distance_threshold=5)
    assert any(duplicates.values())


def test_bktree_keeps_imagededups_verbs(photos):
    from imgdedup.handlers.search.bktree import BKTree
    from imgdedup.methods import Hashing, PHash

    folder, _ = photos
    hash_values = PHash().encode_images(str(folder))
    tree = BKTree(hash_values, Hashing.hamming_distance)
    name, value = next(iter(hash_values.items()))
    found = dict(tree.search(value, tol=10))
    assert found[name] == 0
    assert found == {
        k: Hashing.hamming_distance(value, v)
        for k, v in hash_values.items()
        if Hashing.hamming_distance(value, v) <= 10
    }
    theirs = pytest.importorskip("imagededup.handlers.search.bktree")
    assert sorted(theirs.BKTree(hash_values, Hashing.hamming_distance).search(value, tol=10)) == sorted(found.items())


# --- 5. the report ---------------------------------------------------------------------------------------------


def _report_data(path) -> dict:
    page = path.read_text(encoding="utf-8")
    assert "<h1>imgdedup report</h1>" in page
    return json.loads(
        re.search(r"<script type='application/json' id='report-data'>(.*?)</script>", page, re.S).group(1)
    )


def test_plot_duplicates_writes_the_review_report(photos, tmp_path, monkeypatch):
    from imgdedup.methods import PHash
    from imgdedup.utils import plotter

    folder, truth = photos
    duplicates = PHash().find_duplicates(image_dir=str(folder))
    report = plotter.plot_duplicates(
        image_dir=str(folder), duplicate_map=duplicates, save_path=str(tmp_path / "duplicates_report.html")
    )
    data = _report_data(report)
    groups = [sorted(m[0] for m in cluster[2]) for cluster in data["clusters"]]
    assert sorted(groups) == sorted(sorted([k, *v]) for k, v in truth.items() if k.count("__") == 0)
    assert all(m[7] == 1 for cluster in data["clusters"] for m in cluster[2][:1])  # the keeper comes first
    assert len(list((tmp_path / "thumbs").glob("*.jpg"))) == len(truth)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".imgdedup-report")]
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    default = plotter.plot_duplicates(image_dir=str(folder), duplicate_map=duplicates, num_images=2)
    assert default.name == "duplicates_report.html" and len(_report_data(tmp_path / "cwd" / default)["clusters"]) == 2
    with pytest.raises(ValueError, match="must be an .html file"):
        plotter.plot_duplicates(str(folder), duplicates, save_path=str(tmp_path / "plot.png"))


def test_imagededups_plot_duplicates_shows_one_images_group(photos, tmp_path):
    from imgdedup.methods import PHash
    from imgdedup.utils import plot_duplicates

    folder, truth = photos
    duplicates = PHash().find_duplicates(image_dir=str(folder), scores=True)
    name = next(k for k, v in truth.items() if v)
    report = plot_duplicates(str(folder), duplicates, name, str(tmp_path / "one.html"))
    (cluster,) = _report_data(report)["clusters"]
    assert sorted(m[0] for m in cluster[2]) == sorted([name, *truth[name]])
    with pytest.raises(ValueError, match="has no duplicates"):
        plot_duplicates(str(folder), {**duplicates, name: []}, name, str(tmp_path / "none.html"))


# --- 6. evaluation ---------------------------------------------------------------------------------------------


def test_evaluation_gives_pairwise_scores_and_imagededups_metrics(photos):
    from imgdedup.evaluation import Evaluation, evaluate, pairwise_scores
    from imgdedup.methods import PHash

    folder, ground_truth_dict = photos
    duplicates = PHash().find_duplicates(image_dir=str(folder), max_distance_threshold=3, scores=True)
    metrics = Evaluation().evaluate(ground_truth=ground_truth_dict, retrieved=duplicates)
    names_only = {k: [n for n, _ in v] for k, v in duplicates.items()}
    pairwise = pairwise_scores(ground_truth_dict, names_only)
    assert metrics["precision"] == pairwise["precision"] == 1.0
    assert metrics["recall"] == pairwise["recall"] and 0.0 < metrics["recall"] < 1.0
    assert metrics["f1"] == pairwise["f1"]
    theirs = evaluate(ground_truth_map=ground_truth_dict, retrieved_map=names_only, metric="all")
    for key in ("map", "ndcg", "jaccard"):
        assert metrics[key] == pytest.approx(float(theirs[key]))
    assert np.array_equal(metrics["classification"]["recall"], theirs["recall"])
    assert set(evaluate(ground_truth_dict, names_only, metric="map")) == {"map"}


# --- 7. the dask bag -------------------------------------------------------------------------------------------


def test_dask_bag_maps_encode_image_over_the_folder(cnn, photos):
    import dask.bag as db

    folder, _ = photos
    d = str(folder)
    image_paths = db.from_sequence(os.listdir(d), npartitions=10)
    encodings = image_paths.map(lambda x: cnn.encode_image(os.path.join(d, x))).compute()
    assert len(encodings) == len(os.listdir(d))
    for name, vector in zip(os.listdir(d), encodings):
        assert vector.shape == (1, 1280)
        assert float(vector[0] @ cnn.encode_image(os.path.join(d, name))[0]) > 0.9999


def test_the_guides_import_paths_load_no_torch_and_no_prefect():
    import subprocess
    import sys

    code = (
        "import sys, imgdedup.methods, imgdedup.utils.image_utils, imgdedup.utils.plotter, imgdedup.handlers.search, "
        "imgdedup.evaluation; print(sorted(m for m in ('prefect', 'torch', 'torchvision') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
