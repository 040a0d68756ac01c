"""The default hybrid method on a small transformed-copies benchmark: real photographs, real model."""

import json

import numpy as np
import pytest

from benchmarks.transforms import make_transformed_copies
from imgdedup.compat.evaluation import score_run
from imgdedup.config import load_config
from imgdedup.pipeline.inprocess import find_duplicates_in_folder

HARD_FOR_HASHES = ["border_10", "grayscale", "mirror", "caption_bar", "crop_5"]


@pytest.fixture(scope="module")
def benchmark(tmp_path_factory):
    root = tmp_path_factory.mktemp("hybrid") / "bench"
    make_transformed_copies(
        root,
        n_originals=4,
        seed=3,
        size=(480, 360),
        transforms=HARD_FOR_HASHES + ["jpeg_q25", "noise_s8", "brightness_130"],
    )
    return root


@pytest.fixture(scope="module")
def runs(benchmark, tmp_path_factory):
    work = tmp_path_factory.mktemp("hybrid-runs")
    store = str(work / "store")
    for method in ("hybrid", "phash"):
        find_duplicates_in_folder(benchmark, load_config(method=method, store=store), work / method)
    return work


def test_hybrid_finds_the_copies_hashes_miss_without_false_pairs(benchmark, runs):
    hybrid = score_run(benchmark, runs / "hybrid" / "duplicates.json")
    phash = score_run(benchmark, runs / "phash" / "duplicates.json")
    assert hybrid["overall"]["fp"] == 0
    for label in ("border_10", "grayscale", "mirror", "jpeg_q25", "brightness_130"):
        assert hybrid["by_label"][label]["recall"] == 1.0, label
    assert phash["by_label"]["border_10"]["recall"] == 0.0 and phash["by_label"]["mirror"]["recall"] == 0.0
    assert hybrid["overall"]["recall"] > phash["overall"]["recall"] + 0.2


def test_hybrid_run_records_its_rule_and_trimmed_distances(runs):
    document = json.loads((runs / "hybrid" / "clusters.json").read_text())
    assert (document["method"], document["threshold"], document["min_similarity"]) == ("hybrid", 15, 0.975)
    assert document["hybrid_hashes"] == ["trimmed_phash", "trimmed_dhash"] and document["layer"] == "block"
    bordered = [m for c in document["clusters"] for m in c["members"] if m["path"].endswith("__border_10.jpg")]
    assert bordered and all(m["distance"] <= 8 for m in bordered)  # the border is trimmed before hashing


def test_nearest_partners_keeps_each_images_most_similar_pairs():
    from imgdedup.search.nearest import nearest_partners

    # image 0 has four partners; 4 and 5 also pair with each other
    i = np.array([0, 0, 0, 0, 4])
    j = np.array([1, 2, 3, 4, 5])
    similarity = np.array([0.90, 0.95, 0.86, 0.88, 0.87], dtype=np.float32)
    # top 2 of image 0: pairs 1 (0.95) and 0 (0.90); pair 2 is image 3's only pair, kept by it,
    # and so on: with k=1 only pairs that are some image's best survive
    assert nearest_partners(i, j, similarity, 2).tolist() == [True, True, True, True, True]
    assert nearest_partners(i, j, similarity, 1).tolist() == [True, True, True, True, True]
    dense = np.array([0, 0, 0, 1, 1, 2]), np.array([1, 2, 3, 2, 3, 3])
    scores = np.array([0.99, 0.98, 0.97, 0.96, 0.95, 0.94], dtype=np.float32)
    # a clique of four: with k=1, 0-1 is best of 0 and of 1, 0-2 best of 2, 0-3 best of 3
    assert nearest_partners(*dense, scores, 1).tolist() == [True, True, True, False, False, False]
    with pytest.raises(ValueError, match="`k` must be at least 1"):
        nearest_partners(*dense, scores, 0)
