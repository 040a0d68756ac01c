import json

import numpy as np
from click.testing import CliRunner

from imgdedup.cli.main import main
from imgdedup.config import load_config
from imgdedup.pipeline.inprocess import find_duplicates_in_folder
from imgdedup.search.rules import PairRules, veto_pairs
from imgdedup.search.tiers import member_tier

IDS = ["a/x.jpg", "a/y.jpg", "b/z.jpg", "b/thumbs/t.jpg"]
WIDTH = np.array([1000, 500, 1000, 100])
HEIGHT = np.array([800, 400, 500, 80])
I = np.array([0, 0, 0, 1, 2])
J = np.array([1, 2, 3, 3, 3])


def test_each_rule_vetoes_what_it_says():
    keep, vetoed = veto_pairs(I, J, IDS, WIDTH, HEIGHT, PairRules(max_resolution_ratio=5))
    assert keep.tolist() == [True, True, False, False, False]  # 800k vs 8k pixels etc.
    assert vetoed == {"max_resolution_ratio": 3}
    keep, _ = veto_pairs(I, J, IDS, WIDTH, HEIGHT, PairRules(max_aspect_difference=0.1))
    assert keep.tolist() == [True, False, True, True, False]  # 1.25 vs 2.0 differs by 60%
    keep, _ = veto_pairs(I, J, IDS, WIDTH, HEIGHT, PairRules(folders="same"))
    assert keep.tolist() == [True, False, False, False, False]
    keep, _ = veto_pairs(I, J, IDS, WIDTH, HEIGHT, PairRules(folders="different"))
    assert keep.tolist() == [False, True, True, True, True]
    keep, vetoed = veto_pairs(I, J, IDS, WIDTH, HEIGHT, PairRules(ignore=("*/thumbs/*",)))
    assert keep.tolist() == [True, True, False, False, False] and vetoed == {"ignore": 3}


def test_a_pair_is_counted_once_under_the_first_rule():
    _, vetoed = veto_pairs(I, J, IDS, WIDTH, HEIGHT, PairRules(max_resolution_ratio=5, ignore=("*/thumbs/*",)))
    assert vetoed == {"max_resolution_ratio": 3}
    keep, vetoed = veto_pairs(I, J, IDS, WIDTH, HEIGHT, PairRules())
    assert keep.all() and vetoed == {}


def test_tier_rules():
    base = dict(method="phash", threshold=10, min_similarity=0.9, similarity=None)
    assert member_tier(same_digest=True, same_dimensions=False, distance=7, **base) == "exact"
    assert member_tier(same_digest=False, same_dimensions=True, distance=0, **base) == "exact"
    assert member_tier(same_digest=False, same_dimensions=False, distance=0, **base) == "near"
    assert member_tier(same_digest=False, same_dimensions=True, distance=8, **base) == "near"
    assert member_tier(same_digest=False, same_dimensions=True, distance=9, **base) == "review"
    assert member_tier(same_digest=False, same_dimensions=True, distance=14, **base) == "review"  # joined transitively
    cnn = dict(base, method="cnn")
    assert member_tier(same_digest=False, same_dimensions=True, distance=20, **dict(cnn, similarity=0.95)) == "near"
    assert member_tier(same_digest=False, same_dimensions=True, distance=2, **dict(cnn, similarity=0.91)) == "review"
    hybrid = dict(base, method="hybrid")
    assert member_tier(same_digest=False, same_dimensions=True, distance=2, **dict(hybrid, similarity=0.91)) == "near"
    assert (
        member_tier(same_digest=False, same_dimensions=True, distance=10, **dict(hybrid, similarity=0.91)) == "review"
    )


def test_rules_in_a_run_are_applied_and_counted(sample_folder, tmp_path):
    folder, truth = sample_folder
    summary = find_duplicates_in_folder(
        folder, load_config(store=str(tmp_path / "s"), rule_folders="same"), tmp_path / "run"
    )
    document = json.loads((tmp_path / "run" / "clusters.json").read_text())
    # copies/ holds 5 copies of each of 5 originals: only the pairs among copies stay; the 25
    # original-copy pairs are vetoed, and with verification (#16) hybrid's candidates reach further,
    # so unrelated look-alike pairs across folders are vetoed too
    assert document["vetoed_pairs"]["folders"] >= 5 * 5
    assert summary.clusters == 5 and summary.duplicates == 5 * 4
    assert "pairs vetoed by rules" in (tmp_path / "run" / "report.html").read_text()


def test_tiers_in_a_run_and_apply_exact_only(sample_folder, tmp_path):
    folder, _ = sample_folder
    import shutil

    work = tmp_path / "photos"
    shutil.copytree(folder, work)
    find_duplicates_in_folder(work, load_config(store=str(tmp_path / "s")), tmp_path / "run")
    document = json.loads((tmp_path / "run" / "clusters.json").read_text())
    tiers = {m["path"]: m["tier"] for c in document["clusters"] for m in c["members"]}
    for cluster in document["clusters"]:
        keeper, *others = cluster["members"]
        assert keeper["tier"] == "keeper"
        for m in others:
            if m["digest"] == keeper["digest"]:
                assert m["tier"] == "exact", m["path"]
            elif (m["width"], m["height"]) != (keeper["width"], keeper["height"]):
                assert m["tier"] in ("near", "review"), m["path"]  # other dimensions, other bytes: never exact
    exact = sorted(n for n, t in tiers.items() if t == "exact")
    assert len(exact) >= 5 and any(n.endswith("_resized.jpg") and t == "near" for n, t in tiers.items())
    result = CliRunner().invoke(
        main, ["apply", str(tmp_path / "run"), "--action", "delete", "--tier", "exact", "--yes"]
    )
    assert result.exit_code == 3, result.output  # others left for review count as skipped
    assert all(not (work / n).exists() for n in exact)
    left = [n for n, t in tiers.items() if t in ("near", "review")]
    assert all((work / n).exists() for n in left)
    journal = next((tmp_path / "run").glob("journal-*.jsonl"))
    records = [json.loads(line) for line in journal.read_text().splitlines()]
    assert {r["path"] for r in records if r["type"] == "plan"} == set(exact)
    assert {r["path"] for r in records if r["type"] == "skip" and "left for review" in r["reason"]} == set(left)
    undo = CliRunner().invoke(main, ["undo", str(journal)])
    assert undo.exit_code == 0, undo.output
    assert all((work / n).exists() for n in exact)


def test_cli_rule_options_reach_the_run(sample_folder, tmp_path):
    folder, _ = sample_folder
    result = CliRunner().invoke(
        main,
        [
            "find",
            str(folder),
            "--store",
            str(tmp_path / "s"),
            "--out",
            str(tmp_path / "r"),
            "--rule-ignore",
            "copies/*_png.png",
            "--max-resolution-ratio",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    vetoed = json.loads((tmp_path / "r" / "clusters.json").read_text())["vetoed_pairs"]
    # the resized copies have a quarter of the pixels; the PNG copies are ignored (at least those
    # pairs: with verification (#16) hybrid's candidates reach further, look-alike pairs included)
    assert set(vetoed) == {"max_resolution_ratio", "ignore"}
    assert vetoed["max_resolution_ratio"] >= 5 * 5 and vetoed["ignore"] >= 5 * 4
