"""`find --truth`: the report and the summary score the run against a ground truth, and say how to act."""

from __future__ import annotations

import json


def test_find_with_truth_scores_the_report(tmp_path):
    from click.testing import CliRunner

    from imgdedup.cli.main import main
    from imgdedup.sample import make_sample_folder

    truth = make_sample_folder(tmp_path / "sample", n_with_copies=2, n_distinct=2, seed=3)
    (tmp_path / "truth.json").write_text(json.dumps(truth))
    args = [
        "find",
        str(tmp_path / "sample"),
        "--method",
        "phash",
        "--out",
        str(tmp_path / "run"),
        "--store",
        str(tmp_path / "st"),
    ]
    result = CliRunner().invoke(main, [*args, "--truth", str(tmp_path / "truth.json")])
    assert result.exit_code == 0, result.output
    assert "truth:        precision 1.0000, recall 1.0000" in result.output
    assert f"review:       imgdedup review {tmp_path / 'run'}" in result.output
    page = (tmp_path / "run" / "report.html").read_text()
    assert "id='scores'" in page and "<td>recall</td><td>1.0000</td>" in page
    assert f"imgdedup review {tmp_path / 'run'}" in page
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["scores"]["f1"] == 1.0
    (tmp_path / "bad.json").write_text("[1, 2]")
    bad = CliRunner().invoke(main, [*args, "--truth", str(tmp_path / "bad.json")])
    assert bad.exit_code == 2 and "must be a JSON map" in bad.output
