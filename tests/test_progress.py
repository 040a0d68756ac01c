"""`find`'s progress: plain lines when not on a terminal, a rich display on one, none with --quiet;
the first unreadable files named in the summary; bad settings exit 2."""

from __future__ import annotations

import io

import pytest
from click.testing import CliRunner

from imgdedup.cli.main import main
from imgdedup.cli.progress import make_progress
from imgdedup.config import load_config
from imgdedup.pipeline.inprocess import find_duplicates_in_folder
from imgdedup.sample import make_sample_folder


def test_plain_lines_per_stage(tmp_path):
    make_sample_folder(tmp_path / "s", n_with_copies=2, n_distinct=2, seed=1)
    stream = io.StringIO()
    progress, close = make_progress(stream=stream, terminal=False)
    summary = find_duplicates_in_folder(
        tmp_path / "s", load_config(method="phash", store=str(tmp_path / "st")), tmp_path / "r", progress=progress
    )
    close()
    lines = stream.getvalue().splitlines()
    assert f"discover: {summary.files}/{summary.files} files discovered" in "\n".join(lines)
    assert any(line.startswith(f"read: {summary.images}/{summary.images} images read (") for line in lines)
    assert [line.split(":")[0] for line in lines if line.endswith(("store", "pairs", "clustering", "report"))] == [
        "commit",
        "search",
        "cluster",
        "report",
    ]


def test_rich_display_and_quiet(tmp_path):
    make_sample_folder(tmp_path / "s", n_with_copies=2, n_distinct=2, seed=1)
    stream = io.StringIO()
    progress, close = make_progress(stream=stream, terminal=True, embeds=True)
    find_duplicates_in_folder(
        tmp_path / "s", load_config(method="phash", store=str(tmp_path / "st")), tmp_path / "r", progress=progress
    )
    close()
    text = stream.getvalue()
    assert "images read and embedded" in text and "clustering" in text
    assert make_progress(quiet=True)[0] is None
    result = CliRunner().invoke(
        main, ["find", str(tmp_path / "s"), "--method", "phash", "--out", str(tmp_path / "q"), "--quiet"]
    )
    assert result.exit_code == 0 and "discover" not in result.output and "clusters:" in result.output


def test_summary_names_the_first_unreadable_files(tmp_path):
    folder = tmp_path / "in"
    make_sample_folder(folder, n_with_copies=1, n_distinct=1, seed=2)
    for k in range(7):
        (folder / f"broken-{k}.jpg").write_bytes(b"not an image")
    (folder / "bad\x1bname.png").write_bytes(b"nope")
    result = CliRunner().invoke(main, ["find", str(folder), "--method", "phash", "--out", str(tmp_path / "r"), "-q"])
    assert result.exit_code == 3, result.output
    lines = result.output.splitlines()
    at = lines.index("unreadable:   8")
    named = lines[at + 1 : at + 6]
    assert all(line.startswith("  ") and ": " in line for line in named)
    assert lines[at + 6] == "  ... and 3 more (errors.csv)"
    assert "\x1b" not in result.output


def test_usage_errors_exit_2(tmp_path):
    runner = CliRunner()
    for args in (
        ["find", str(tmp_path), "--threshold", "99"],
        ["find", str(tmp_path), "--method", "md5"],
        ["find", str(tmp_path), "--min-similarity", "3"],
        ["review", str(tmp_path / "missing")],
        ["find", str(tmp_path), "--truth", str(tmp_path / "missing.json")],
    ):
        result = runner.invoke(main, args)
        assert result.exit_code == 2, (args, result.output)


@pytest.mark.usefixtures("prefect_harness")
def test_run_shows_a_line_per_stage_and_none_with_quiet(tmp_path):
    """`imgdedup run` (the flow on Dask workers) reports the same stages as `find`, from the flow's own steps."""
    make_sample_folder(tmp_path / "s", n_with_copies=2, n_distinct=2, seed=1)
    args = ["run", str(tmp_path / "s"), "--method", "phash", "--workers", "1", "--store", str(tmp_path / "st")]
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    n = sum(1 for p in (tmp_path / "s").rglob("*") if p.is_file())
    assert any(line.startswith(f"discover: {n}/{n} files discovered") for line in lines)
    assert any(line.startswith(f"read: {n}/{n} images read (") for line in lines)
    assert [line.split(":")[0] for line in lines if line.endswith(("store", "pairs", "clustering", "report"))] == [
        "commit",
        "search",
        "cluster",
        "report",
    ]
    quiet = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "q"), "--quiet"])
    assert quiet.exit_code == 0 and "files discovered" not in quiet.output and "clusters:" in quiet.output
