"""The default hybrid method on a small transformed-copies benchmark: real photographs, real model."""

import json

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
