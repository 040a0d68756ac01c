import json
import re
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from imgdedup.cli.main import main
from imgdedup.sample import make_sample_folder

ROOT = Path(__file__).resolve().parent.parent


def test_find_prints_summary_and_exits_zero(sample_folder, tmp_path):
    folder, truth = sample_folder
    store = str(tmp_path / "store")
    result = CliRunner().invoke(main, ["find", str(folder), "--out", str(tmp_path / "run"), "--store", store])
    assert result.exit_code == 0, result.output
    assert f"images:       {len(truth)} ({len(truth)} files scanned, {len(truth)} read this run)" in result.output
    assert "clusters:     5" in result.output
    assert f"report:       {tmp_path / 'run' / 'report.html'}" in result.output
    for name in ("duplicates.json", "clusters.json", "clusters.csv", "errors.csv", "report.html"):
        assert (tmp_path / "run" / name).is_file()
    again = CliRunner().invoke(main, ["find", str(folder), "--out", str(tmp_path / "run2"), "--store", store])
    assert f"({len(truth)} files scanned, 0 read this run)" in again.output
    assert (tmp_path / "run2" / "duplicates.json").read_text() == (tmp_path / "run" / "duplicates.json").read_text()


def test_unreadable_files_exit_three(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "x.jpg").write_text("text")
    result = CliRunner().invoke(main, ["find", str(folder), "--out", str(tmp_path / "run")])
    assert result.exit_code == 3
    assert "unreadable:   1" in result.output


def test_bad_parameters_exit_with_clear_errors(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["find", str(tmp_path), "--threshold", "99"])
    assert result.exit_code == 2  # bad usage (#17: every usage error exits 2)
    assert "Error: `threshold` must be an int in 0..64" in result.output
    result = runner.invoke(main, ["find", str(tmp_path / "missing"), "--out", str(tmp_path / "r")])
    assert result.exit_code == 1
    assert "Error: folder" in result.output and "does not exist" in result.output
    result = runner.invoke(main, ["find", str(tmp_path), "--method", "md5"])
    assert result.exit_code == 2


def test_demo_runs_the_main_job(tmp_path):
    result = CliRunner().invoke(main, ["demo", "--folder", str(tmp_path / "s"), "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    truth = json.loads((tmp_path / "s_ground_truth.json").read_text())
    duplicates = json.loads((tmp_path / "r" / "duplicates.json").read_text())
    assert {k: sorted(v) for k, v in duplicates.items()} == truth
    scored = CliRunner().invoke(main, ["evaluate", str(tmp_path / "s_ground_truth.json"), str(tmp_path / "r")])
    assert scored.exit_code == 0, scored.output
    assert "files:      42 scored (0 only in one map)" in scored.output
    assert "pairwise:   precision 1.0000  recall 1.0000  f1 1.0000  (tp 90, fp 0, fn 0)" in scored.output
    assert "map:        1.0000" in scored.output


def test_evaluate_counts_misses_and_false_pairs(tmp_path):
    """One known pair missed and one false pair found: pairwise tp/fp/fn say so."""
    (tmp_path / "run").mkdir()
    truth = {"a": ["b"], "b": ["a"], "c": ["d"], "d": ["c"], "e": []}
    found = {"a": ["b"], "b": ["a"], "c": [], "d": ["e"], "e": ["d"]}
    (tmp_path / "truth.json").write_text(json.dumps(truth))
    (tmp_path / "run" / "duplicates.json").write_text(json.dumps(found))
    result = CliRunner().invoke(main, ["evaluate", str(tmp_path / "truth.json"), str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert "pairwise:   precision 0.5000  recall 0.5000  f1 0.5000  (tp 1, fp 1, fn 1)" in result.output


def test_every_command_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    for name in main.commands:
        assert re.search(rf"imgdedup {name}\b", readme), f"`imgdedup {name}` is not in README.md"
        assert "Example:" in main.commands[name].help


def test_console_script_starts_without_prefect():
    out = subprocess.run(
        [sys.executable, "-c", "import sys; from imgdedup.cli.main import main; print('prefect' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == "False"


def test_find_in_the_current_folder_twice_never_reads_its_own_output(tmp_path, monkeypatch):
    """`cd photos; imgdedup find .` twice, with the store inside too: same result, no run file read as input."""
    folder = tmp_path / "photos"
    truth = make_sample_folder(folder, n_with_copies=2, n_distinct=3, seed=5)
    monkeypatch.chdir(folder)
    outputs = []
    for _ in range(2):
        result = CliRunner().invoke(main, ["find", ".", "--method", "phash", "--store", "store"])
        assert result.exit_code == 0, result.output
        outputs.append(result.stdout.splitlines())
    assert outputs[0][0].startswith(f"images:       {len(truth)} ({len(truth)} files scanned")
    assert outputs[1][0] == f"images:       {len(truth)} ({len(truth)} files scanned, 0 read this run)"
    assert outputs[0][1:5] == outputs[1][1:5]  # unreadable, clusters, duplicates, reclaimable
    first, second = sorted((folder / "imgdedup-runs").iterdir())
    assert (first / "duplicates.json").read_text() == (second / "duplicates.json").read_text()


def test_url_discovery_skips_run_folders_and_stores(tmp_path):
    import fsspec

    from imgdedup.imaging.discover import discover_images

    fs = fsspec.filesystem("memory")
    base = "/imgdedup-tests/scan-own-output"
    for name in (
        "a.png",
        "sub/b.png",
        "runs/1/.imgdedup-run",
        "runs/1/thumbs/c.jpg",
        "store/.imgdedup-store",
        "store/d.npz",
    ):
        fs.pipe_file(f"{base}/{name}", b"x")
    assert [r.id for r in discover_images(f"memory://{base}")] == ["a.png", "sub/b.png"]


def test_torchvision_model_without_weights_offline_is_an_error_naming_the_file_and_folder(tmp_path, offline_torch):
    """`find --model torchvision:vgg16` offline with an empty torch cache: `Error: ...`, exit 1, no traceback."""
    make_sample_folder(tmp_path / "in", n_with_copies=1, n_distinct=1, seed=3)
    result = CliRunner().invoke(
        main,
        [
            "find",
            str(tmp_path / "in"),
            "--method",
            "cnn",
            "--model",
            "torchvision:vgg16",
            "--store",
            str(tmp_path / "store"),
            "--out",
            str(tmp_path / "run"),
            "-q",
        ],
    )
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: the weights of torchvision model 'vgg16'"), result.output
    assert "vgg16-397923af.pth" in result.output and str(tmp_path / "torch" / "hub" / "checkpoints") in result.output
    assert "Traceback" not in result.output
