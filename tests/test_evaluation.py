"""imgdedup.compat.evaluation: parity with imagededup 0.3.3 and the pairwise scores."""

from __future__ import annotations

import json
import random
import re
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imgdedup.compat.evaluation import (
    METRICS,
    evaluate,
    format_score_table,
    pairwise_scores,
    recall_by_label,
    score_run,
)

# imagededup is a test-only extra (its import pulls in torch: a few seconds).
imagededup_evaluation = pytest.importorskip("imagededup.evaluation")


def reference(ground_truth, retrieved, metric):
    """imagededup's evaluate, silencing scikit-learn's zero-division warnings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return imagededup_evaluation.evaluate(ground_truth, retrieved, metric)


def assert_same(ours, theirs):
    assert list(ours) == list(theirs)
    for key, expected in theirs.items():
        if key in ("map", "ndcg", "jaccard"):
            assert isinstance(ours[key], float)
            assert ours[key] == pytest.approx(float(expected), rel=1e-12, abs=1e-15)
        else:
            assert np.shape(ours[key]) == np.shape(expected)
            np.testing.assert_allclose(ours[key], expected, rtol=1e-12, atol=0)


def assert_parity(ground_truth, retrieved):
    for metric in METRICS:
        assert_same(evaluate(ground_truth, retrieved, metric), reference(ground_truth, retrieved, metric))


def symmetric_map(names, edges, orders):
    """Adjacency lists of ``edges`` (index pairs), each list ordered by ``orders[name]``."""
    result = {name: [] for name in names}
    for i, j in edges:
        result[names[i]].append(names[j])
        result[names[j]].append(names[i])
    return {name: sorted(values, key=orders[name].index) for name, values in result.items()}


# --- hand-made maps ---------------------------------------------------------

GT = {
    "1.jpg": ["2.jpg", "3.jpg"],
    "2.jpg": ["1.jpg", "3.jpg"],
    "3.jpg": ["1.jpg", "2.jpg"],
    "4.jpg": ["5.jpg"],
    "5.jpg": ["4.jpg"],
    "6.jpg": [],
}

CASES = [
    # perfect
    (GT, GT),
    # nothing retrieved
    (GT, {k: [] for k in GT}),
    # wrong order, one miss, one false pair
    (
        GT,
        {
            "1.jpg": ["6.jpg", "3.jpg"],
            "2.jpg": ["3.jpg"],
            "3.jpg": ["2.jpg", "1.jpg"],
            "4.jpg": [],
            "5.jpg": [],
            "6.jpg": ["1.jpg"],
        },
    ),
    # everything is a duplicate of everything
    (GT, {k: [o for o in GT if o != k] for k in GT}),
    # no duplicates at all in the ground truth: only class 0 in y_true
    ({k: [] for k in GT}, {k: [] for k in GT}),
    ({k: [] for k in GT}, {"1.jpg": ["2.jpg"], "2.jpg": ["1.jpg"], "3.jpg": [], "4.jpg": [], "5.jpg": [], "6.jpg": []}),
    # two files, one pair: only class 1 present
    ({"a": ["b"], "b": ["a"]}, {"a": ["b"], "b": ["a"]}),
    ({"a": ["b"], "b": ["a"]}, {"a": [], "b": []}),
    # quirks kept: a file listing itself, a repeated entry
    ({"a": ["a", "b"], "b": ["a"], "c": []}, {"a": ["b", "b"], "b": ["a"], "c": ["c"]}),
]


@pytest.mark.parametrize("ground_truth, retrieved", CASES)
def test_matches_imagededup_on_hand_made_maps(ground_truth, retrieved):
    assert_parity(ground_truth, retrieved)


def test_metric_name_is_case_insensitive():
    assert evaluate(GT, GT, "MAP") == {"map": 1.0}


def test_classification_shapes():
    result = evaluate(GT, GT, "classification")
    assert list(result) == ["precision", "recall", "f1_score", "support"]
    # 15 pairs: 4 duplicate pairs (1-2, 1-3, 2-3, 4-5), 11 others
    np.testing.assert_array_equal(result["support"], [11, 4])
    assert result["support"].dtype.kind == "i"


# --- random maps ------------------------------------------------------------


@st.composite
def map_pairs(draw):
    n = draw(st.integers(min_value=2, max_value=9))
    names = [f"img{i}.jpg" for i in range(n)]
    all_pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    rnd = draw(st.randoms(use_true_random=False))
    maps = []
    for _ in range(2):
        edges = [p for p in all_pairs if draw(st.booleans())]
        orders = {name: rnd.sample(names, n) for name in names}
        maps.append(symmetric_map(names, edges, orders))
    return maps[0], maps[1]


@settings(max_examples=60, deadline=None)
@given(map_pairs())
def test_matches_imagededup_on_random_maps(maps):
    ground_truth, retrieved = maps
    assert_parity(ground_truth, retrieved)


@pytest.mark.parametrize("seed", range(5))
def test_matches_imagededup_on_grouped_maps(seed):
    """Ground truth of duplicate groups; retrieval keeps most true pairs and adds noise."""
    rng = random.Random(seed)
    names = [f"dir/{i:03d}.png" for i in range(40)]
    groups = [rng.randrange(15) for _ in names]
    truth_edges = [(i, j) for i in range(40) for j in range(i + 1, 40) if groups[i] == groups[j]]
    found = [e for e in truth_edges if rng.random() < 0.7]
    noise = [(i, j) for i in range(40) for j in range(i + 1, 40) if rng.random() < 0.02]
    orders = {name: rng.sample(names, len(names)) for name in names}
    ground_truth = symmetric_map(names, truth_edges, orders)
    retrieved = symmetric_map(names, sorted(set(found) | set(noise)), orders)
    assert_parity(ground_truth, retrieved)


# --- input errors -----------------------------------------------------------

ERRORS = [
    # (ground truth, retrieved, metric, our message)
    (GT, GT, "precision", r"metric must be one of map, ndcg, jaccard, classification, all; got 'precision'"),
    (
        GT,
        {k: v for k, v in GT.items() if k != "6.jpg"},
        "all",
        r"ground_truth_map and retrieved_map must have the same keys; "
        r"1 key\(s\) are in only one of them, e.g. \['6.jpg'\]",
    ),
    (
        {"a": ["b"], "b": ["a", "c"]},
        {"a": [], "b": []},
        "map",
        r"ground_truth_map\['b'\] lists 'c', which is not a key of ground_truth_map",
    ),
    (
        {"a": [], "b": []},
        {"a": ["x"], "b": []},
        "map",
        r"retrieved_map\['a'\] lists 'x', which is not a key of retrieved_map",
    ),
    (
        {"a": ["b"], "b": []},
        {"a": [], "b": []},
        "jaccard",
        r"ground_truth_map is not symmetric: 'a' lists 'b' as a duplicate "
        r"but ground_truth_map\['b'\] does not list 'a'",
    ),
    ({"a": [], "b": []}, {"a": [], "b": ["a"]}, "ndcg", r"retrieved_map is not symmetric: 'b' lists 'a'"),
    ({"a": []}, {"a": []}, "classification", r"metric='classification' needs at least 2 files.*has 1"),
    ({}, {}, "all", r"ground_truth_map is empty"),
]


@pytest.mark.parametrize("ground_truth, retrieved, metric, message", ERRORS)
def test_errors_match_imagededup(ground_truth, retrieved, metric, message):
    with pytest.raises(Exception):  # noqa: B017  (imagededup raises AssertionError, Exception or ValueError)
        reference(ground_truth, retrieved, metric)
    with pytest.raises(ValueError, match=message):
        evaluate(ground_truth, retrieved, metric)


@pytest.mark.parametrize(
    "ground_truth, retrieved, metric, message",
    [
        # imagededup returns nan (with a RuntimeWarning) here
        ({}, {}, "map", r"ground_truth_map is empty"),
        # imagededup iterates the string's characters
        (
            {"a": "b", "b": ["a"]},
            {"a": [], "b": []},
            "map",
            r"ground_truth_map\['a'\] must be a list of file names, got str",
        ),
        ([("a", [])], {"a": []}, "map", r"ground_truth_map must be a dict .* got list"),
        (GT, GT, None, r"metric must be one of .* got None"),
    ],
)
def test_errors_where_imagededup_does_not_raise(ground_truth, retrieved, metric, message):
    with pytest.raises(ValueError, match=message):
        evaluate(ground_truth, retrieved, metric)


# --- pairwise scores --------------------------------------------------------


def test_pairwise_scores_hand_computed():
    # True pairs: groups {a, b, c} and {d, e} -> ab, ac, bc, de (4 pairs).
    ground_truth = {"a": ["b", "c"], "b": ["a", "c"], "c": ["a", "b"], "d": ["e"], "e": ["d"]}
    # Retrieved pairs: ab (listed from a only; a's self-listing is ignored) and cd
    # (listed from c only; d is not even a key) -> 2 pairs.
    retrieved = {"a": ["a", "b"], "b": [], "c": ["d"], "e": []}
    # tp = {ab} = 1; fp = {cd} = 1; fn = {ac, bc, de} = 3
    # precision = 1/2, recall = 1/4, f1 = 2*1 / (2*1 + 1 + 3) = 1/3
    assert pairwise_scores(ground_truth, retrieved) == {
        "precision": 0.5,
        "recall": 0.25,
        "f1": pytest.approx(1 / 3),
        "tp": 1,
        "fp": 1,
        "fn": 3,
    }


def test_pairwise_scores_empty_conventions():
    truth = {"a": ["b"], "b": ["a"]}
    assert pairwise_scores(truth, {}) == {"precision": 1.0, "recall": 0.0, "f1": 0.0, "tp": 0, "fp": 0, "fn": 1}
    assert pairwise_scores({}, truth) == {"precision": 0.0, "recall": 1.0, "f1": 0.0, "tp": 0, "fp": 1, "fn": 0}
    assert pairwise_scores({}, {}) == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "tp": 0, "fp": 0, "fn": 0}


@settings(max_examples=50, deadline=None)
@given(map_pairs())
def test_pairwise_perfect_retrieval_scores_one(maps):
    truth, _ = maps
    n_pairs = sum(len(v) for v in truth.values()) // 2
    # the same pairs listed from one side only are the same retrieval
    one_sided = {k: [v for v in vals if v > k] for k, vals in truth.items()}
    for retrieved in (truth, one_sided):
        assert pairwise_scores(truth, retrieved) == {
            "precision": 1.0,
            "recall": 1.0,
            "f1": 1.0,
            "tp": n_pairs,
            "fp": 0,
            "fn": 0,
        }


@settings(max_examples=50, deadline=None)
@given(map_pairs())
def test_pairwise_counts_agree_with_imagededup_classification(maps):
    truth, retrieved = maps
    scores = pairwise_scores(truth, retrieved)
    result = evaluate(truth, retrieved, "classification")
    if scores["tp"] + scores["fp"] + scores["fn"] > 0:  # class 1 is present: last entry
        assert result["support"][-1] == scores["tp"] + scores["fn"]
        assert result["f1_score"][-1] == pytest.approx(scores["f1"])


def test_pairwise_scores_rejects_bad_maps():
    with pytest.raises(ValueError, match=r"retrieved_map\['a'\] must be a list of file names, got str"):
        pairwise_scores({}, {"a": "b"})
    with pytest.raises(ValueError, match=r"ground_truth_map must be a dict"):
        pairwise_scores([], {})


def test_recall_by_label():
    labelled = [
        ("o1", "o1_mirror", "mirror"),
        ("o2_mirror", "o2", "mirror"),
        ("o1", "o1_mirror", "mirror"),  # repeated: counted once
        ("o1", "o1_blur", "blur"),
        ("o1_blur", "o1_mirror", "sibling"),
    ]
    retrieved = {"o1": ["o1_mirror"], "o2": [], "o1_blur": ["o1_mirror"]}
    assert recall_by_label(labelled, retrieved) == {
        "mirror": {"pairs": 2, "found": 1, "missed": 1, "recall": 0.5},
        "blur": {"pairs": 1, "found": 0, "missed": 1, "recall": 0.0},
        "sibling": {"pairs": 1, "found": 1, "missed": 0, "recall": 1.0},
    }
    with pytest.raises(ValueError, match=r"pairs 'a' with itself"):
        recall_by_label([("a", "a", "x")], {})
    with pytest.raises(ValueError, match=r"entries must be \(a, b, label\)"):
        recall_by_label([("a", "b")], {})


def test_score_run(tmp_path):
    bench = tmp_path / "bench"
    bench.mkdir()
    o, m, g = "originals/x.jpg", "copies/x__mirror.jpg", "copies/x__grayscale.jpg"
    y = "originals/y.jpg"
    truth = {o: [g, m], m: [g, o], g: [m, o], y: []}
    (bench / "ground_truth.json").write_text(json.dumps(truth))
    (bench / "pairs.csv").write_text(f"a,b,transform\n{o},{m},mirror\n{o},{g},grayscale\n{m},{g},sibling\n")
    run = {
        f"./{o}": [[m, 0.9], str(bench / y)],  # scored entries, ./ and absolute paths
        m: [o],
        str(bench / y): [o],
        g: [],
        "notes/readme.png": [o],
    }
    run_path = tmp_path / "duplicates.json"
    run_path.write_text(json.dumps(run))
    scores = score_run(bench, run_path)
    # true pairs: om, og, mg; retrieved: om, oy -> tp 1, fp 1, fn 2
    assert scores["overall"] == {"precision": 0.5, "recall": pytest.approx(1 / 3), "f1": 0.4, "tp": 1, "fp": 1, "fn": 2}
    assert scores["by_label"]["mirror"]["recall"] == 1.0
    assert scores["by_label"]["grayscale"]["recall"] == 0.0
    assert scores["files"] == 4
    assert scores["unknown_files"] == ["notes/readme.png"]
    table = format_score_table(scores)
    assert re.search(r"overall\s+0\.5000\s+0\.3333\s+0\.4000\s+1\s+1\s+2", table)
    assert re.search(r"mirror\s+1\.0000\s+1\s+1", table)
