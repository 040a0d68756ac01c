import csv
import json
import os
import shutil

import pytest
from PIL import Image

from imgdedup.config import load_config
from imgdedup.errors import OutputError
from imgdedup.pipeline.inprocess import find_duplicates_in_folder
from tests.conftest import found_pairs, known_pairs


def test_find_reports_every_known_pair_and_no_false_pair(sample_folder, tmp_path):
    folder, truth = sample_folder
    summary = find_duplicates_in_folder(folder, load_config(), tmp_path / "run")
    duplicates = json.loads((tmp_path / "run" / "duplicates.json").read_text())
    assert set(duplicates) == set(truth)  # every readable image is a key
    assert found_pairs(duplicates) == known_pairs(truth)
    assert summary.clusters == 5 and summary.unreadable == 0
    assert summary.duplicates == 5 * 5


def test_clusters_name_the_highest_resolution_keeper(sample_folder, tmp_path):
    folder, _ = sample_folder
    find_duplicates_in_folder(folder, load_config(), tmp_path / "run")
    document = json.loads((tmp_path / "run" / "clusters.json").read_text())
    for cluster in document["clusters"]:
        keeper = cluster["members"][0]
        assert keeper["keeper"] and keeper["path"] == cluster["keeper"]
        assert keeper["distance"] == 0
        # the original outside the copies/ folder wins over a larger file of the same resolution in it (#16)
        best = max(
            cluster["members"],
            key=lambda m: (not m["path"].startswith("copies/"), m["width"] * m["height"], m["bytes"]),
        )
        assert (keeper["path"], keeper["width"] * keeper["height"]) == (best["path"], best["width"] * best["height"])
        assert not keeper["path"].startswith("copies/")
        assert cluster["reclaimable_bytes"] == sum(m["bytes"] for m in cluster["members"][1:])
    with open(tmp_path / "run" / "clusters.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == sum(len(c["members"]) for c in document["clusters"])
    assert sum(int(r["keeper"]) for r in rows) == len(document["clusters"])


def test_bad_files_are_recorded_and_duplicates_still_found(sample_folder, tmp_path):
    folder, truth = sample_folder
    work = tmp_path / "mixed"
    shutil.copytree(folder, work)
    good = sorted(p for p in work.glob("*.jpg"))[0]
    (work / "corrupt.jpg").write_bytes(good.read_bytes()[:300])
    (work / "empty.png").write_bytes(b"")
    (work / "x.jpg").write_text("this is not an image\n")
    summary = find_duplicates_in_folder(work, load_config(), tmp_path / "run")
    with open(tmp_path / "run" / "errors.csv", newline="") as handle:
        errors = {row["path"]: row["reason"] for row in csv.DictReader(handle)}
    assert set(errors) == {"corrupt.jpg", "empty.png", "x.jpg"}
    assert "empty file" in errors["empty.png"]
    assert "not an image" in errors["x.jpg"]
    assert "decode" in errors["corrupt.jpg"] or "truncated" in errors["corrupt.jpg"].lower()
    duplicates = json.loads((tmp_path / "run" / "duplicates.json").read_text())
    assert found_pairs(duplicates) == known_pairs(truth)
    assert summary.unreadable == 3


def test_non_utf8_name_is_written_exactly(tmp_path):
    folder = tmp_path / "names"
    folder.mkdir()
    image = Image.new("RGB", (64, 64), (200, 30, 30))
    image.paste((10, 10, 240), (0, 0, 32, 64))
    raw = os.fsencode(folder) + b"/r\xe9sum\xe9.png"
    image.save(os.fsdecode(raw), "PNG")
    image.save(folder / "copy.png", "PNG")
    find_duplicates_in_folder(folder, load_config(), tmp_path / "run")
    duplicates = json.loads((tmp_path / "run" / "duplicates.json").read_text())
    names = {os.fsencode(k) for k in duplicates}
    assert names == {b"r\xe9sum\xe9.png", b"copy.png"}
    with open(tmp_path / "run" / "clusters.csv", "rb") as handle:
        assert b"r\xe9sum\xe9.png" in handle.read()


def test_report_is_offline_and_escapes_names(tmp_path):
    folder = tmp_path / "evil"
    folder.mkdir()
    image = Image.new("RGB", (64, 64), (0, 128, 255))
    image.paste((255, 255, 0), (0, 0, 32, 32))
    image.save(folder / "<img src=x onerror=alert(1)>.png")
    image.save(folder / "plain.png")
    (folder / "<script>alert(1)<!--.jpg").write_bytes(b"nope")
    find_duplicates_in_folder(folder, load_config(), tmp_path / "run")
    page = (tmp_path / "run" / "report.html").read_text()
    # The names reach the page only escaped (the browser test checks they show as text).
    assert "<img src=x" not in page
    assert "<script>alert(1)" not in page
    assert "http://" not in page and "https://" not in page
    thumbs = list((tmp_path / "run" / "thumbs").glob("*.jpg"))
    assert len(thumbs) == 1  # both members share one digest-named thumbnail


def test_unwritable_output_is_a_clear_error(sample_folder, tmp_path):
    folder, _ = sample_folder
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OutputError, match="cannot write to output folder"):
        find_duplicates_in_folder(folder, load_config(), blocker / "run")


def test_other_methods_and_compat_run(sample_folder, tmp_path):
    """Every method runs end to end; phash in compat mode still finds the known pairs."""
    folder, truth = sample_folder
    for method in ("dhash", "ahash", "whash"):
        summary = find_duplicates_in_folder(folder, load_config(method=method), tmp_path / method)
        assert summary.images == len(truth)
    find_duplicates_in_folder(folder, load_config(compat=True), tmp_path / "compat")
    duplicates = json.loads((tmp_path / "compat" / "duplicates.json").read_text())
    assert found_pairs(duplicates) == known_pairs(truth)


@pytest.mark.parametrize("method", ["phash", "hybrid"])
def test_find_on_worker_processes_writes_what_the_serial_run_writes(tmp_path, method):
    """Chunks hashed (and embedded) on two processes give the serial run's files, byte for byte."""
    from imgdedup.sample import make_sample_folder

    folder = tmp_path / "photos"
    make_sample_folder(folder, n_with_copies=12, n_distinct=60, seed=3)  # 132 images: two chunks of 66
    outputs = {}
    for workers in (1, 2):
        config = load_config(method=method, find_workers=workers, store=str(tmp_path / f"store-{workers}"))
        summary = find_duplicates_in_folder(folder, config, tmp_path / f"run-{workers}")
        assert summary.decoded == 132 and summary.clusters >= 10
        run = tmp_path / f"run-{workers}"
        document = json.loads((run / "clusters.json").read_text())
        assert document.pop("store") == str(tmp_path / f"store-{workers}")
        outputs[workers] = (
            [(run / name).read_bytes() for name in ("duplicates.json", "clusters.csv", "errors.csv")],
            document,
        )
    assert outputs[1] == outputs[2]
    plan = json.loads((tmp_path / "run-2" / "work" / "plan.json").read_text())
    assert len(plan["chunk_paths"]) == 2


def test_find_with_the_search_in_tiles_writes_what_one_search_writes(sample_folder, tmp_path):
    """Partitions of 8 images (tiles searched on two worker processes) give the single search's files."""
    folder, _ = sample_folder
    written = {}
    for block in (8, 200_000):
        config = load_config(method="phash", search_block=block, find_workers=2, store=str(tmp_path / f"store-{block}"))
        find_duplicates_in_folder(folder, config, tmp_path / f"run-{block}")
        written[block] = [
            (tmp_path / f"run-{block}" / name).read_bytes() for name in ("duplicates.json", "clusters.csv")
        ]
    assert len(list((tmp_path / "run-8" / "work").glob("tile-*.npz"))) > 1
    assert written[8] == written[200_000]


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failed_chunk_does_not_stop_find_and_is_retried(sample_folder, tmp_path, workers):
    """One chunk's store rows cannot be written: find still finishes (in this process, or on its pool),
    records that chunk's files as not processed (as the flow does), and the next run reads them."""
    from imgdedup.storage.store import Store

    folder, truth = sample_folder
    config = load_config(method="phash", chunk_size=7, n_workers=2, find_workers=workers, store=str(tmp_path / "store"))
    store = Store.open(tmp_path / "store", row_chunk=16)
    store.ensure_array(config.hash_array("phash"), 0, "uint64")
    # chunk 1 owns rows 16..31, Zarr chunk c/1: a folder there makes every write of that chunk fail
    poison = tmp_path / "store" / "arrays.zarr" / config.hash_array("phash") / "c" / "1"
    (poison / "in-the-way").mkdir(parents=True)
    first = find_duplicates_in_folder(folder, config, tmp_path / "run1")
    poisoned = [
        name for name, _, _ in json.loads((tmp_path / "run1" / "work" / "chunk-00001.json").read_text())["files"]
    ]
    with open(tmp_path / "run1" / "errors.csv", newline="") as handle:
        errors = {row["path"]: row["reason"] for row in csv.DictReader(handle)}
    assert poisoned and errors == {name: "not processed: its chunk task failed" for name in poisoned}
    assert first.unreadable == len(poisoned) and first.images == len(truth) - len(poisoned)

    shutil.rmtree(poison)
    second = find_duplicates_in_folder(folder, config, tmp_path / "run2")
    assert (second.unreadable, second.images, second.decoded) == (0, len(truth), len(poisoned))
    assert found_pairs(json.loads((tmp_path / "run2" / "duplicates.json").read_text())) == known_pairs(truth)


def worker_pid(_item: int) -> int:
    import time

    time.sleep(0.2)  # long enough that both workers take items
    return os.getpid()


def test_a_run_starts_its_worker_processes_once_for_all_its_stages():
    """find's stages share one pool: the processes that hashed also search and verify, instead of
    a fresh pair of interpreters (about a second of imports each) per stage and per wave of jobs."""
    from imgdedup.pipeline.pool import WorkerPool, map_chunks

    with WorkerPool(2) as pool:
        stages = [map_chunks(worker_pid, list(range(4)), (), 2, pool=pool) for _ in range(3)]
    used = {pid for stage in stages for pid in stage}
    assert len(used) == 2 and os.getpid() not in used
    alone = [set(map_chunks(worker_pid, list(range(4)), (), 2)) for _ in range(2)]
    assert not alone[0] & alone[1] and not alone[0] & used  # without it, each call starts its own
    with pytest.raises(ValueError, match="workers"):
        WorkerPool(0)
