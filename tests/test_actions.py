"""`imgdedup apply` / `imgdedup undo`: every action, undo to a byte-identical tree, and the safety checks."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import imgdedup.actions.apply as apply_module  # patched: a crash inside one step
from imgdedup.actions import ActionError, apply_plan, describe, file_digest, load_run, plan_actions, undo_journal
from imgdedup.cli.actions import apply, undo
from imgdedup.imaging.discover import content_digest
from tests.trees import snapshot

cli = click.Group()
cli.add_command(apply)
cli.add_command(undo)

T0 = 1_600_000_000_000_000_000  # a fixed mtime (ns) so tests can tell files apart by age


def make_run(
    tmp_path: Path, clusters: list[list[tuple]], extra: dict[str, bytes] | None = None, digest=content_digest
) -> tuple[Path, Path]:
    """Write files and a run folder for them.

    ``clusters``: lists of ``(id, bytes, width, height)`` or ``(id, bytes, width, height, mtime_ns)``;
    the run's keeper is chosen like the pipeline does (resolution, size, path order). ``digest``
    makes each member's content digest.
    """
    root = tmp_path / "root"
    run = tmp_path / "run"
    (run / "work").mkdir(parents=True)
    root.mkdir(exist_ok=True)
    files = []
    docs = []
    position = 0
    for number, members in enumerate(clusters, start=1):
        rows = []
        for k, spec in enumerate(members):
            file_id, data, width, height = spec[:4]
            mtime = spec[4] if len(spec) > 4 else T0 + (number * 10 + k) * 1_000_000_000
            path = Path(os.fsdecode(os.fsencode(root) + b"/" + os.fsencode(file_id)))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            os.utime(path, ns=(mtime, mtime))
            files.append([file_id, len(data), mtime])
            rows.append(
                {
                    "path": file_id,
                    "width": width,
                    "height": height,
                    "bytes": len(data),
                    "format": "PNG",
                    "digest": digest(data),
                    "position": position,
                }
            )
            position += 1
        best = min(rows, key=lambda r: (-r["width"] * r["height"], -r["bytes"], r["position"]))
        members_doc = [
            {
                "path": r["path"],
                "keeper": r is best,
                "distance": 0 if r is best else 3,
                "width": r["width"],
                "height": r["height"],
                "bytes": r["bytes"],
                "format": r["format"],
                "digest": r["digest"],
            }
            for r in [best] + [r for r in rows if r is not best]
        ]
        docs.append(
            {
                "cluster": number,
                "keeper": best["path"],
                "reclaimable_bytes": sum(m["bytes"] for m in members_doc[1:]),
                "members": members_doc,
            }
        )
    for file_id, data in (extra or {}).items():
        path = root / file_id
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    document = {
        "root": str(root),
        "method": "phash",
        "threshold": 10,
        "clusters": docs,
        "files": len(files),
        "images": len(files),
        "errors": [],
    }
    (run / "clusters.json").write_text(json.dumps(document, ensure_ascii=True))
    (run / "work" / "discovered.json").write_text(json.dumps(files))
    return root, run


def standard(tmp_path: Path):
    """Three clusters: a plain one, one across folders, one with a near-duplicate (other bytes)."""
    return make_run(
        tmp_path,
        [
            [
                ("a.png", b"A" * 300, 64, 64),
                ("a copy.png", b"A" * 300, 64, 64),
                ("sub/a small.png", b"a" * 100, 32, 32),
            ],
            [("sub/b.png", b"B" * 500, 100, 80), ("other/b.png", b"B" * 500, 100, 80)],
            [("c.png", b"C" * 200, 50, 50), ("deep/er/c.png", b"c" * 150, 40, 40)],
        ],
        extra={"unrelated.txt": b"not part of any cluster"},
    )


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_dry_run_changes_nothing_and_prints_the_plan(tmp_path):
    root, run = standard(tmp_path)
    before, run_before = snapshot(root), snapshot(run)
    for action in ("move", "delete", "hardlink", "symlink"):
        result = invoke("apply", run, "--action", action, "--to", tmp_path / "moved")
        assert result.exit_code == 0, result.output
        assert "Dry run: nothing is changed. Add --yes to do it." in result.output
        assert "would be: 4 files" in result.output
        for dup in ("a copy.png", "sub/a small.png", "other/b.png", "deep/er/c.png"):
            assert dup in result.output
    assert (
        "move     a copy.png -> " + str(tmp_path / "moved" / "a copy.png")
        in invoke("apply", run, "--action", "move", "--to", tmp_path / "moved").output
    )
    assert snapshot(root) == before and snapshot(run) == run_before  # no journal, no trash
    assert not (tmp_path / "moved").exists()


@pytest.mark.parametrize("action", ["move", "delete", "hardlink", "symlink"])
def test_each_action_then_undo_restores_the_tree_exactly(tmp_path, action):
    root, run = standard(tmp_path)
    before = snapshot(root)
    result = invoke("apply", run, "--action", action, "--to", tmp_path / "moved", "--yes")
    assert result.exit_code == 0, result.output
    assert "done:     4 files" in result.output and "0 skipped" in result.output
    journal = next(run.glob("journal-*.jsonl"))
    records = [json.loads(line) for line in journal.read_text().splitlines()]
    assert records[0]["type"] == "start" and records[0]["action"] == action
    assert [r["type"] for r in records].count("plan") == 4 and [r["type"] for r in records].count("done") == 4
    first_done = min(k for k, r in enumerate(records) if r["type"] == "done")
    assert all(r["type"] != "plan" or k < first_done for k, r in enumerate(records))  # planned (and synced) first
    keepers = {"a.png": b"A" * 300, "sub/b.png": b"B" * 500, "c.png": b"C" * 200}
    for keeper, data in keepers.items():
        assert (root / keeper).read_bytes() == data and not (root / keeper).is_symlink()
    dups = {"a copy.png": "a.png", "sub/a small.png": "a.png", "other/b.png": "sub/b.png", "deep/er/c.png": "c.png"}
    for dup, keeper in dups.items():
        if action == "move":
            assert not (root / dup).exists()
            assert content_digest((tmp_path / "moved" / dup).read_bytes()) == before[os.fsencode(dup)][1]
        elif action == "delete":
            assert not (root / dup).exists()
            trashed = list((tmp_path / "moved").glob("*/" + dup))
            assert len(trashed) == 1
        elif action == "hardlink":
            assert os.path.samefile(root / dup, root / keeper) and not (root / dup).is_symlink()
        else:
            assert (root / dup).is_symlink() and not os.path.isabs(os.readlink(root / dup))
            assert os.path.samefile(root / dup, root / keeper)
    if action in ("hardlink", "symlink"):  # the originals are kept, with their bytes and times
        kept = [p for p in (tmp_path / "moved").rglob("*") if p.is_file()]
        assert sorted(content_digest(p.read_bytes()) for p in kept) == sorted(before[os.fsencode(d)][1] for d in dups)
    result = invoke("undo", journal)
    assert result.exit_code == 0, result.output
    assert "restored: 4 files; 0 problems" in result.output
    assert snapshot(root) == before
    assert not (tmp_path / "moved").exists() or not any(p.is_file() for p in (tmp_path / "moved").rglob("*"))
    again = invoke("undo", journal)  # harmless
    assert again.exit_code == 0 and "restored: 0 files" in again.output and "4 already undone" in again.output
    assert snapshot(root) == before


def test_delete_goes_to_the_run_trash_by_default(tmp_path):
    root, run = standard(tmp_path)
    before = snapshot(root)
    result = invoke("apply", run, "--action", "delete", "--yes")
    assert result.exit_code == 0, result.output
    trash = [p for p in (run / "trash").rglob("*") if p.is_file()]
    assert len(trash) == 4
    stat_before = {k: v for k, v in before.items() if v[0] == "file"}
    for path in trash:  # same bytes and mtime as before
        rel = os.fsencode(path.relative_to(next((run / "trash").iterdir())))
        assert (content_digest(path.read_bytes()), path.stat().st_mtime_ns) == (
            stat_before[rel][1],
            stat_before[rel][3],
        )
    assert invoke("undo", next(run.glob("journal-*.jsonl"))).exit_code == 0
    assert snapshot(root) == before
    assert not (run / "trash").exists()  # the folders undo emptied are removed


def test_yes_is_required_and_move_needs_to(tmp_path):
    root, run = standard(tmp_path)
    before = snapshot(root)
    assert invoke("apply", run, "--action", "delete").exit_code == 0
    assert snapshot(root) == before and not list(run.glob("journal-*"))
    result = invoke("apply", run, "--action", "move", "--yes")
    assert result.exit_code == 1 and "Error: --action move needs --to DIR" in result.output
    result = invoke("apply", run, "--action", "move", "--to", tmp_path, "--yes")  # contains the root
    assert result.exit_code == 1 and "contains the scanned root" in result.output
    assert invoke("apply", run, "--action", "shred").exit_code == 2
    assert invoke("apply", tmp_path / "nope", "--action", "delete").exit_code == 1
    assert snapshot(root) == before


def test_changed_files_are_skipped_with_the_reason(tmp_path):
    root, run = standard(tmp_path)
    (root / "a copy.png").write_bytes(b"A" * 301)  # size
    st = os.stat(root / "other/b.png")
    os.utime(root / "other/b.png", ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))  # mtime only
    small = root / "sub/a small.png"
    st = os.stat(small)
    small.write_bytes(b"z" * 100)  # same size, mtime put back: only the digest tells
    os.utime(small, ns=(st.st_atime_ns, st.st_mtime_ns))
    (root / "c.png").write_bytes(b"K" * 200)  # a keeper changed: its duplicate must stay
    result = invoke("apply", run, "--action", "delete", "--yes")
    assert result.exit_code == 3, result.output
    assert "skip     a copy.png: changed since the scan (size 300 -> 301 bytes)" in result.output
    assert "skip     other/b.png: changed since the scan (modification time differs)" in result.output
    assert "skip     sub/a small.png: changed since the scan (content digest differs)" in result.output
    assert (
        "skip     deep/er/c.png: its keeper c.png: changed since the scan (modification time differs)" in result.output
    )
    assert "done:     0 files" in result.output and "4 skipped" in result.output
    for name in ("a copy.png", "other/b.png", "sub/a small.png", "deep/er/c.png"):
        assert (root / name).exists()


def test_a_file_removed_after_the_scan_is_skipped(tmp_path):
    root, run = standard(tmp_path)
    (root / "other/b.png").unlink()
    result = invoke("apply", run, "--action", "move", "--to", tmp_path / "moved", "--yes")
    assert result.exit_code == 3
    assert "skip     other/b.png: missing (deleted or moved since the scan)" in result.output
    assert "done:     3 files" in result.output


def test_paths_outside_the_root_are_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.png").write_bytes(b"V" * 300)
    (outside / "dir").mkdir()
    (outside / "dir" / "x.png").write_bytes(b"A" * 300)
    root, run = make_run(tmp_path, [[("a.png", b"A" * 300, 64, 64), ("b.png", b"A" * 300, 64, 64)]])
    os.symlink(outside / "victim.png", root / "link.png")
    os.symlink(outside / "dir", root / "linked-dir")
    document = json.loads((run / "clusters.json").read_text())
    members = document["clusters"][0]["members"]
    digest = content_digest(b"A" * 300)
    for bad in (
        "../outside/victim.png",
        "/etc/hostname",
        "sub/../../outside/victim.png",
        "link.png",
        "linked-dir/x.png",
    ):
        members.append(
            {
                "path": bad,
                "keeper": False,
                "distance": 1,
                "width": 8,
                "height": 8,
                "bytes": 300,
                "format": "PNG",
                "digest": digest,
            }
        )
    (run / "clusters.json").write_text(json.dumps(document))
    before_outside = snapshot(outside)
    result = invoke("apply", run, "--action", "delete", "--yes")
    assert result.exit_code == 3, result.output
    out = result.output
    assert "skip     ../outside/victim.png: path contains '..'" in out
    assert "skip     /etc/hostname: absolute path: outside the scanned root" in out
    assert "skip     sub/../../outside/victim.png: path contains '..'" in out
    assert "skip     link.png: is a symbolic link: refused" in out
    assert "skip     linked-dir/x.png: its folder resolves outside the scanned root" in out
    assert "done:     1 file " in out  # b.png only
    assert snapshot(outside) == before_outside
    assert (root / "link.png").is_symlink()


def test_keep_policies_and_reference_folders(tmp_path):
    day = 86_400 * 10**9
    root, run = make_run(
        tmp_path,
        [
            [
                ("big.png", b"1" * 100, 200, 200, T0 + 2 * day),
                ("heavy.png", b"2" * 900, 100, 100, T0 + 3 * day),
                ("old.png", b"3" * 50, 50, 50, T0),
                ("new.png", b"4" * 60, 60, 60, T0 + 9 * day),
            ],
            [
                ("ref/one.png", b"5" * 10, 10, 10),
                ("ref/deeper/two.png", b"6" * 10, 10, 10),
                ("x/best.png", b"7" * 999, 999, 999),
            ],
            [("x/p.png", b"8" * 40, 40, 40), ("x/q.png", b"9" * 30, 30, 30)],
        ],
    )
    run_ = load_run(run)

    def keepers(keep, references=()):
        plan = plan_actions(run_, "delete", keep=keep, references=references)
        return sorted({s.keeper for s in plan.steps}), sorted(s.path for s in plan.steps), plan

    assert keepers("resolution")[0] == ["big.png", "x/best.png", "x/p.png"]
    assert keepers("largest")[0] == ["heavy.png", "x/best.png", "x/p.png"]
    assert keepers("oldest")[0] == ["old.png", "ref/one.png", "x/p.png"]
    assert keepers("newest")[0] == ["new.png", "x/best.png", "x/q.png"]
    kept, touched, plan = keepers("resolution", ["ref"])
    assert "ref/one.png" not in touched and "ref/deeper/two.png" not in touched
    assert "x/best.png" in touched  # outside the reference folder, even though it is the best image
    assert {s.keeper for s in plan.steps if s.path == "x/best.png"} == {"ref/one.png"}  # equal files: path order
    assert "x/q.png" in touched and {s.keeper for s in plan.steps if s.path == "x/q.png"} == {"x/p.png"}
    assert set(plan.kept) >= {"ref/one.png", "ref/deeper/two.png", "big.png", "x/p.png"}
    # absolute reference paths inside the root work; outside ones are refused
    assert plan_actions(run_, "delete", references=[str(root / "ref")]).references == ["ref/"]
    with pytest.raises(ActionError, match="not a folder inside the scanned root"):
        plan_actions(run_, "delete", references=[str(tmp_path)])
    with pytest.raises(ActionError, match="not a folder inside the scanned root"):
        plan_actions(run_, "delete", references=["../run"])
    # through the command line: the reference files are never touched
    before = snapshot(root)
    result = invoke("apply", run, "--action", "hardlink", "--reference", "ref", "--keep", "largest", "--yes")
    assert result.exit_code == 0, result.output
    assert "reference folders: ref/" in result.output
    assert (root / "ref/one.png").read_bytes() == b"5" * 10 and os.path.samefile(
        root / "x/best.png", root / "ref/one.png"
    )
    assert (
        os.stat(root / "ref/deeper/two.png").st_nlink == 1 and (root / "ref/deeper/two.png").read_bytes() == b"6" * 10
    )
    assert invoke("undo", next(run.glob("journal-*.jsonl"))).exit_code == 0
    assert snapshot(root) == before


def test_non_utf8_names_round_trip(tmp_path):
    raw = os.fsdecode(b"r\xe9sum\xe9.png")
    root, run = make_run(tmp_path, [[("keep.png", b"K" * 64, 64, 64), (raw, b"K" * 64, 64, 64)]])
    before = snapshot(root)
    result = invoke("apply", run, "--action", "symlink", "--yes")
    assert result.exit_code == 0, result.output
    assert "r\ufffdsum\ufffd.png" in result.output
    assert os.path.islink(os.fsencode(root) + b"/r\xe9sum\xe9.png")
    assert invoke("undo", next(run.glob("journal-*.jsonl"))).exit_code == 0
    assert snapshot(root) == before


def test_undo_never_overwrites_a_file_made_after_the_action(tmp_path):
    root, run = standard(tmp_path)
    assert invoke("apply", run, "--action", "delete", "--yes").exit_code == 0
    (root / "a copy.png").write_bytes(b"new work")
    result = invoke("undo", next(run.glob("journal-*.jsonl")))
    assert result.exit_code == 3
    assert "problem  a copy.png: both a copy.png and" in result.output
    assert (root / "a copy.png").read_bytes() == b"new work"
    assert "restored: 3 files; 1 problems" in result.output


@pytest.mark.parametrize("action", ["delete", "hardlink", "symlink"])
@pytest.mark.parametrize("after", [False, True])
def test_undo_after_a_crash_mid_batch(tmp_path, monkeypatch, action, after):
    """A crash before (or right after) the third change, with its plan line written but no done line."""
    root, run = standard(tmp_path)
    before = snapshot(root)
    real = apply_module._act
    calls = []

    def crashing(step, *args):
        calls.append(step.n)
        if len(calls) == 3:
            if after:
                real(step, *args)
            raise KeyboardInterrupt
        return real(step, *args)

    monkeypatch.setattr(apply_module, "_act", crashing)
    with pytest.raises(KeyboardInterrupt):
        apply_plan(plan_actions(load_run(run), action), dry_run=False)
    monkeypatch.setattr(apply_module, "_act", real)
    journal = next(run.glob("journal-*.jsonl"))
    types = [json.loads(line)["type"] for line in journal.read_text().splitlines()]
    assert types.count("plan") == 4 and types.count("done") == 2
    outcome = undo_journal(journal)
    assert not outcome.problems
    assert snapshot(root) == before


def test_trash_on_another_file_system_is_copied_with_times(tmp_path, monkeypatch):
    """EXDEV on every rename/link into or out of the trash: copy, fsync, unlink; undo restores times too."""
    root, run = standard(tmp_path)
    before = snapshot(root)
    trash = str(run / "trash")
    real_rename, real_link, real_replace = os.rename, os.link, os.replace

    def crosses(src, dst):
        return (str(os.fsdecode(src)).startswith(trash)) != (str(os.fsdecode(dst)).startswith(trash))

    def guard(real):
        def call(src, dst, *args, **kwargs):
            if crosses(src, dst):
                raise OSError(errno.EXDEV, "Invalid cross-device link")
            return real(src, dst, *args, **kwargs)

        return call

    monkeypatch.setattr(os, "rename", guard(real_rename))
    monkeypatch.setattr(os, "link", guard(real_link))
    monkeypatch.setattr(os, "replace", guard(real_replace))
    for action in ("delete", "hardlink"):
        outcome = apply_plan(plan_actions(load_run(run), action), dry_run=False)
        assert len(outcome.done) == 4 and not outcome.skipped
        assert not undo_journal(outcome.journal).problems
        assert snapshot(root) == before


def test_journal_is_checked(tmp_path):
    bad = tmp_path / "journal.jsonl"
    bad.write_text('{"type": "something"}\n')
    result = invoke("undo", bad)
    assert result.exit_code == 1 and "is not an imgdedup journal" in result.output
    root, run = standard(tmp_path / "r")
    outcome = apply_plan(plan_actions(load_run(run), "delete"), dry_run=False)
    lines = outcome.journal.read_text().splitlines()
    record = json.loads(lines[1])
    record["target"] = str(tmp_path / "elsewhere" / "x")  # a tampered journal cannot move files out of its folders
    lines[1] = json.dumps(record)
    outcome.journal.write_text("\n".join(lines) + "\n")
    undone = undo_journal(outcome.journal)
    assert len(undone.problems) == 1 and "refused" in undone.problems[0].reason


def test_digest_matches_the_library_definition(tmp_path):
    path = tmp_path / "f"
    data = os.urandom(3 << 20)
    path.write_bytes(data)
    assert file_digest(str(path), like=content_digest(b"")) == content_digest(data)
    assert file_digest(str(path), like=_blake2b(b"")) == _blake2b(data)


def _blake2b(data: bytes) -> str:
    import hashlib

    return hashlib.blake2b(data, digest_size=16).hexdigest()


def test_a_run_of_an_earlier_version_with_blake2b_digests_is_still_checked_and_undone(tmp_path):
    root, run = make_run(
        tmp_path,
        [
            [("a.png", b"A" * 300, 64, 64), ("a copy.png", b"A" * 300, 64, 64)],
            [("b.png", b"B" * 200, 50, 50), ("b copy.png", b"B" * 200, 50, 50)],
        ],
        digest=_blake2b,
    )
    before = snapshot(root)
    st = os.stat(root / "b copy.png")
    (root / "b copy.png").write_bytes(b"X" * 200)  # same size and mtime: only the digest tells
    os.utime(root / "b copy.png", ns=(st.st_atime_ns, st.st_mtime_ns))
    result = invoke("apply", run, "--action", "delete", "--yes")
    assert result.exit_code == 3, result.output
    assert "skip     b copy.png: changed since the scan (content digest differs)" in result.output
    assert "done:     1 file (300 B)" in result.output and not (root / "a copy.png").exists()
    (root / "b copy.png").write_bytes(b"B" * 200)
    os.utime(root / "b copy.png", ns=(st.st_atime_ns, st.st_mtime_ns))
    assert invoke("undo", next(run.glob("journal-*.jsonl"))).exit_code == 0
    assert snapshot(root) == before


def test_on_a_real_find_run(sample_folder, tmp_path):
    """The run folder `imgdedup find` writes is enough: every duplicate is checked and trashed, undo restores all."""
    import shutil

    from imgdedup.config import load_config
    from imgdedup.pipeline.inprocess import find_duplicates_in_folder

    folder = tmp_path / "photos"
    shutil.copytree(sample_folder[0], folder)
    summary = find_duplicates_in_folder(folder, load_config(), tmp_path / "run")
    assert summary.duplicates > 0
    run = load_run(tmp_path / "run")
    assert all(m.mtime_ns is not None for c in run.clusters for m in c)  # file times come from the run folder
    before = snapshot(folder)
    result = invoke("apply", tmp_path / "run", "--action", "delete", "--keep", "newest", "--yes")
    assert result.exit_code == 0, result.output
    assert f"done:     {summary.duplicates} files" in result.output
    files = lambda tree: sum(1 for v in tree.values() if v[0] == "file")  # noqa: E731
    assert files(snapshot(folder)) == files(before) - summary.duplicates
    assert invoke("undo", next((tmp_path / "run").glob("journal-*.jsonl"))).exit_code == 0
    assert snapshot(folder) == before


def test_a_run_without_file_times_refuses_oldest_and_newest(tmp_path):
    """Without mtimes (none in clusters.json, no work/discovered.json) the age policies say why; the others work."""
    root, run = standard(tmp_path)
    (run / "work" / "discovered.json").unlink()
    run_ = load_run(run)
    assert all(m.mtime_ns is None for c in run_.clusters for m in c)
    for keep in ("oldest", "newest"):
        with pytest.raises(ActionError, match=f"--keep {keep} needs file times, and this run folder has none"):
            plan_actions(run_, "delete", keep=keep)
    assert len(plan_actions(run_, "delete", keep="largest").steps) == 4


@pytest.mark.parametrize("action", ["move", "delete", "hardlink", "symlink"])
def test_a_target_that_appears_during_apply_is_never_removed(tmp_path, action):
    """A file put at a step's target after the checks (by another process, or a second name for the same file
    in a case-insensitive trash or --to folder) is left alone: that step fails and rolls back only its own files."""
    root, run = standard(tmp_path)
    before = snapshot(root)
    plan = plan_actions(load_run(run), action, to=tmp_path / "moved")
    first, second = plan.steps[0], plan.steps[1]
    original = (root / second.path).read_bytes()
    foreign = b"a file imgdedup did not make"

    def echo(line: str) -> None:
        if line == describe(first, plan.run.root):  # every step is checked; the second is about to be carried out
            Path(second.target).parent.mkdir(parents=True, exist_ok=True)
            Path(second.target).write_bytes(foreign)

    outcome = apply_plan(plan, dry_run=False, echo=echo)
    assert Path(second.target).read_bytes() == foreign
    assert [s.path for s in outcome.skipped] == [second.path] and "exists" in outcome.skipped[0].reason
    assert len(outcome.done) == 3
    assert (root / second.path).read_bytes() == original and not (root / second.path).is_symlink()
    assert not undo_journal(outcome.journal).problems
    assert snapshot(root) == before
    assert Path(second.target).read_bytes() == foreign


def test_move_inside_the_root_says_later_scans_read_the_moved_files(tmp_path):
    """A --to folder is the person's own: no marker hides it from later scans; the plan says so when it is under the root."""
    root, run = standard(tmp_path)
    inside = invoke("apply", run, "--action", "move", "--to", root / "dups")
    assert inside.exit_code == 0, inside.output
    assert "note:     --to is inside the scanned root: a later scan of it reads the moved files again" in inside.output
    outside = invoke("apply", run, "--action", "move", "--to", tmp_path / "moved")
    assert outside.exit_code == 0 and "inside the scanned root" not in outside.output
