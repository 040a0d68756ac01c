import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import psutil
import pytest

from imgdedup.config import load_config
from imgdedup.errors import StoreError
from imgdedup.pipeline.chunks import preprocess, process_chunk
from imgdedup.pipeline.inprocess import find_duplicates_in_folder
from imgdedup.pipeline.plan import read_plan
from imgdedup.pipeline.run import open_store, prepare_out_dir
from imgdedup.sample import make_sample_folder, random_scene


def clusters_of(run_dir):
    """Clusters as sets of paths (numbering aside), plus each one's keeper."""
    document = json.loads((run_dir / "clusters.json").read_text())
    return sorted((c["keeper"], sorted(m["path"] for m in c["members"])) for c in document["clusters"])


@pytest.fixture
def library(tmp_path):
    folder = tmp_path / "library"
    make_sample_folder(folder, n_with_copies=4, n_distinct=6, seed=7)
    return folder


def full_run(folder, tmp_path, name, **settings):
    """A run on a fresh store: the reference an incremental run must equal."""
    config = load_config(store=str(tmp_path / f"{name}-store"), **settings)
    summary = find_duplicates_in_folder(folder, config, tmp_path / name)
    return summary, tmp_path / name


def test_rerun_after_changes_equals_a_full_run(library, tmp_path):
    """New, changed and deleted files: the incremental result equals a full run on the same files."""
    config = load_config(store=str(tmp_path / "store"), chunk_size=8)
    first = find_duplicates_in_folder(library, config, tmp_path / "r1")
    assert first.decoded == first.files
    # add a new original with a copy, change one file's content, delete another
    scene = random_scene(np.random.default_rng(99))
    scene.save(library / "new_original.jpg", quality=90)
    scene.resize((320, 240)).save(library / "new_copy.jpg", quality=80)
    changed = library / "photo_005.jpg"
    random_scene(np.random.default_rng(5)).save(changed, quality=90)
    os.utime(changed, ns=(time.time_ns(), time.time_ns() + 10**9))
    (library / "copies" / "photo_000_png.png").unlink()
    second = find_duplicates_in_folder(library, config, tmp_path / "r2")
    assert second.decoded == 3
    assert second.files == first.files + 1
    _, reference = full_run(library, tmp_path, "full", chunk_size=8)
    assert clusters_of(tmp_path / "r2") == clusters_of(reference)
    assert (tmp_path / "r2" / "duplicates.json").read_text() == (reference / "duplicates.json").read_text()
    assert ["new_copy.jpg", "new_original.jpg"] in [members for _, members in clusters_of(tmp_path / "r2")]


def test_threshold_only_rerun_decodes_nothing(library, tmp_path):
    """A rerun with another threshold reads no image: proven by corrupting every file but keeping size and mtime."""
    config = load_config(store=str(tmp_path / "store"))
    find_duplicates_in_folder(library, config, tmp_path / "r1")
    for path in library.rglob("*"):
        if path.is_file():
            stat = path.stat()
            path.write_bytes(b"\0" * stat.st_size)
            os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    summary = find_duplicates_in_folder(library, config.replace(threshold=4), tmp_path / "r2")
    assert summary.decoded == 0 and summary.unreadable == 0
    assert summary.images == summary.files


def test_threshold_change_equals_full_run(library, tmp_path):
    config = load_config(store=str(tmp_path / "store"))
    find_duplicates_in_folder(library, config, tmp_path / "r1")
    find_duplicates_in_folder(library, config.replace(threshold=3), tmp_path / "r2")
    _, reference = full_run(library, tmp_path, "full", threshold=3)
    assert (tmp_path / "r2" / "duplicates.json").read_text() == (reference / "duplicates.json").read_text()


def test_interrupted_run_resumes_from_committed_chunks(library, tmp_path):
    """Chunks committed before an interruption are not read again; the result equals a full run."""
    config = load_config(store=str(tmp_path / "store"), chunk_size=10)
    store = open_store(library, config)
    out = prepare_out_dir(tmp_path / "killed")
    with store.lock():
        plan = read_plan(preprocess(library, out, config, store))
        process_chunk(plan.chunk_paths[0], config)  # then the run "dies": no commit
    resumed = find_duplicates_in_folder(library, config, tmp_path / "resumed")
    assert resumed.decoded == plan.to_process - 10
    _, reference = full_run(library, tmp_path, "full", chunk_size=10)
    assert clusters_of(tmp_path / "resumed") == clusters_of(reference)


def test_sigkill_mid_run_leaves_store_readable(tmp_path):
    """A `find` process killed with SIGKILL mid-run: the next run completes and equals a full run."""
    folder = tmp_path / "big"
    make_sample_folder(folder, n_with_copies=10, n_distinct=150, seed=3)
    store = tmp_path / "store"
    command = [
        sys.executable,
        "-m",
        "imgdedup.cli.main",
        "find",
        str(folder),
        "--store",
        str(store),
        "--out",
        str(tmp_path / "killed"),
    ]
    process = subprocess.Popen(
        command + ["--config", str(_small_chunks(tmp_path))], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 60
    while time.time() < deadline and not list((store / "pending").glob("*.npz")):
        time.sleep(0.01)
    workers = psutil.Process(process.pid).children(recursive=True)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert list((store / "pending").glob("*.npz")), "the run was killed before committing any chunk"
    # its pool's workers do not outlive it (they used to wait for work forever)
    assert workers, "the run had no worker processes to check"
    _, alive = psutil.wait_procs(workers, timeout=15)
    assert not alive, f"workers still running after the run was killed: {[w.pid for w in alive]}"
    config = load_config(_small_chunks(tmp_path), store=str(store))
    resumed = find_duplicates_in_folder(folder, config, tmp_path / "resumed")
    assert resumed.decoded < resumed.files
    _, reference = full_run(folder, tmp_path, "full", chunk_size=5)
    assert clusters_of(tmp_path / "resumed") == clusters_of(reference)


def _small_chunks(tmp_path):
    path = tmp_path / "small.yaml"
    path.write_text("chunk_size: 5\n")
    return path


def test_second_run_on_a_busy_store_stops_clearly(library, tmp_path):
    config = load_config(store=str(tmp_path / "store"))
    store = open_store(library, config)
    with store.lock():
        with pytest.raises(StoreError, match="is in use by pid .*; wait for that run to finish or use another --store"):
            find_duplicates_in_folder(library, config, tmp_path / "second")
    find_duplicates_in_folder(library, config, tmp_path / "after")  # released: works again


def embedded_folder(tmp_path, n_images: int):
    """A folder of ``n_images`` scenes, run once with ``cnn`` into a fresh store; returns it and the config."""
    folder = tmp_path / "few"
    folder.mkdir()
    for k in range(n_images):
        random_scene(np.random.default_rng(k)).save(folder / f"{k}.jpg")
    config = load_config(store=str(tmp_path / "store"), method="cnn")
    find_duplicates_in_folder(folder, config, tmp_path / "r1")
    return folder, config


def test_store_built_with_another_model_is_refused(tmp_path):
    folder, config = embedded_folder(tmp_path, 3)
    with pytest.raises(StoreError, match="pooling: store has 'gem', run uses 'avg'"):
        find_duplicates_in_folder(folder, config.replace(pooling="avg"), tmp_path / "r2")


def test_embed_tasks_refuse_a_store_recorded_with_other_weights(tmp_path):
    """Planning reuses the store's record of the model; the embed task checks its own model against it."""
    from imgdedup.pipeline import embedders
    from imgdedup.storage.store import Store

    folder, config = embedded_folder(tmp_path, 2)
    array = Store.open(tmp_path / "store").group(mode="r+")["embeddings"]
    array.attrs["identity"] = {**array.attrs["identity"], "weights_sha256": "0" * 64}  # as if the weights had changed
    random_scene(np.random.default_rng(7)).save(folder / "new.jpg")
    built = dict(embedders._EMBEDDERS)
    embedders._EMBEDDERS.clear()
    try:
        store = open_store(folder, config)
        with store.lock():
            plan = read_plan(preprocess(folder, prepare_out_dir(tmp_path / "r2"), config, store))
        assert plan.to_process == 1 and not embedders._EMBEDDERS  # no model built to plan
        with pytest.raises(StoreError, match="embeddings of another model .*weights_sha256"):
            find_duplicates_in_folder(folder, config, tmp_path / "r3")
    finally:
        embedders._EMBEDDERS.update(built)


def test_deleted_files_leave_the_results(library, tmp_path):
    config = load_config(store=str(tmp_path / "store"))
    find_duplicates_in_folder(library, config, tmp_path / "r1")
    shutil.rmtree(library / "copies")
    summary = find_duplicates_in_folder(library, config, tmp_path / "r2")
    assert summary.clusters == 0 and summary.decoded == 0
    duplicates = json.loads((tmp_path / "r2" / "duplicates.json").read_text())
    assert all(not name.startswith("copies/") for name in duplicates)


def test_compat_and_default_hashes_are_kept_apart(library, tmp_path):
    """A compat run on a store filled by a default run reads every image again (its pixel path differs)."""
    config = load_config(store=str(tmp_path / "store"), method="phash")
    find_duplicates_in_folder(library, config, tmp_path / "default")
    compat = find_duplicates_in_folder(library, config.replace(compat=True), tmp_path / "compat")
    assert compat.decoded == compat.files
    again = find_duplicates_in_folder(library, config.replace(compat=True), tmp_path / "compat-again")
    assert again.decoded == 0
    _, reference = full_run(library, tmp_path, "compat-full", method="phash", compat=True)
    assert (tmp_path / "compat" / "duplicates.json").read_text() == (reference / "duplicates.json").read_text()


def test_thumbnails_are_reused_across_run_folders(library, tmp_path):
    """A rerun into a new run folder links the store's thumbnails instead of decoding the images again."""
    config = load_config(store=str(tmp_path / "store"))
    find_duplicates_in_folder(library, config, tmp_path / "r1")
    first = sorted((tmp_path / "r1" / "thumbs").glob("*.jpg"))
    assert first
    find_duplicates_in_folder(library, config, tmp_path / "r2")
    for path in first:
        again = tmp_path / "r2" / "thumbs" / path.name
        assert again.stat().st_ino == path.stat().st_ino  # the same file: not made again


def test_the_store_keeps_only_the_thumbnails_of_its_current_clusters(library, tmp_path):
    """Thumbnails of files no longer in a cluster leave the store; the run folders that show them keep theirs."""
    config = load_config(method="phash", store=str(tmp_path / "store"))
    first = find_duplicates_in_folder(library, config, tmp_path / "r1")
    cache = tmp_path / "store" / "thumbs"
    shown_first = {p.name: p.read_bytes() for p in (tmp_path / "r1" / "thumbs").glob("*.jpg")}
    assert first.clusters > 0 and {p.name for p in cache.glob("*.jpg")} == set(shown_first)
    exact = find_duplicates_in_folder(library, config.replace(threshold=0), tmp_path / "r2")
    shown_exact = {p.name for p in (tmp_path / "r2" / "thumbs").glob("*.jpg")}
    assert exact.duplicates < first.duplicates and shown_exact < set(shown_first)
    assert {p.name for p in cache.glob("*.jpg")} == shown_exact
    assert {p.name: p.read_bytes() for p in (tmp_path / "r1" / "thumbs").glob("*.jpg")} == shown_first


def test_store_reads_sparse_and_dense_row_selections_alike(tmp_path):
    """A few rows spread over a large array are read chunk by chunk; the values are those of a whole read."""
    from imgdedup.storage.store import SPARSE_READ, Store

    store = Store.open(tmp_path / "store", row_chunk=64)
    values = np.random.default_rng(5).standard_normal((5000, 8)).astype(np.float16)
    store.ensure_array("embeddings", len(values), "float16", width=8)
    store.write_rows("embeddings", 0, values)
    sparse = np.array([4999, 3, 2500, 3, 17, 4096])  # unsorted, repeated, far apart
    assert np.ptp(sparse) > SPARSE_READ * len(sparse)
    dense = np.arange(1000, 1200)[::-1]
    for rows in (sparse, dense, np.array([7])):
        np.testing.assert_array_equal(store.read_rows("embeddings", rows), values[rows])


def test_store_lock_on_a_backend_without_conditional_writes_never_takes_over():
    """On object stores other than S3 (here fsspec's in-memory one) the lock is created only if absent,
    refuses a second run, is removed on release, and an expired one is left for a person to delete."""
    import fsspec

    from imgdedup.storage.store import Store

    fs = fsspec.filesystem("memory")
    url, key = "memory://imgdedup-tests/stores/locked", "/imgdedup-tests/stores/locked/lock"
    with Store.open(url).lock():
        assert json.loads(fs.cat_file(key))["owner"].startswith(f"pid {os.getpid()} on ")
        with pytest.raises(StoreError, match="is in use by pid .*; wait for that run to finish"):
            with Store.open(url).lock():
                pass
    assert not fs.exists(key)
    stale = json.dumps({"owner": "pid 1 on gone", "token": "old", "expires": time.time() - 5}).encode()
    fs.pipe_file(key, stale)
    with pytest.raises(
        StoreError,
        match=r"expired at .*cannot take it over safely: delete 'memory://imgdedup-tests/stores/locked/lock'",
    ):
        with Store.open(url).lock():
            pass
    assert fs.cat_file(key) == stale  # left as it was
    fs.rm(url, recursive=True)


def test_a_store_belongs_to_one_folder(tmp_path):
    """B/x.bmp has A/x.bmp's relative path, size and mtime but other pixels: a store of A never serves B."""

    rng = np.random.default_rng(4)
    for name in ("A", "B"):
        (tmp_path / name).mkdir()
        random_scene(rng, (64, 48)).save(tmp_path / name / "x.bmp")
        random_scene(rng, (64, 48)).save(tmp_path / name / "y.bmp")
    for name in ("x.bmp", "y.bmp"):
        os.utime(tmp_path / "B" / name, ns=(0, (tmp_path / "A" / name).stat().st_mtime_ns))
    config = load_config(method="phash", store=str(tmp_path / "shared"))
    find_duplicates_in_folder(tmp_path / "A", config, tmp_path / "run-a")
    with pytest.raises(StoreError, match=r"holds the files of '.*/A', not '.*/B': use another --store"):
        find_duplicates_in_folder(tmp_path / "B", config, tmp_path / "run-b")
    again = find_duplicates_in_folder(tmp_path / "A", config, tmp_path / "run-a2")  # its own folder: reused
    assert again.decoded == 0


def test_a_file_edited_between_hashing_and_embedding_is_recorded_not_mixed(tmp_path):
    """Hashes and embedding come from one version of a file: one edited after hash_chunk (even with its size and
    mtime put back) is recorded as changed, the next run reads it."""
    from imgdedup.pipeline.chunks import embed_chunk, hash_chunk
    from imgdedup.storage.store import STATUS_ERROR, STATUS_OK, Manifest

    folder = tmp_path / "photos"
    make_sample_folder(folder, n_with_copies=1, n_distinct=2, seed=3)
    config = load_config(method="cnn", store=str(tmp_path / "store"))
    store = open_store(folder, config)
    with store.lock():
        plan = read_plan(preprocess(folder, prepare_out_dir(tmp_path / "run"), config, store))
        hashed = hash_chunk(plan.chunk_paths[0], config)
        files = json.loads(open(plan.chunk_paths[0]).read())["files"]
        edited, moved = folder / files[0][0], folder / files[1][0]
        stat = edited.stat()
        data = bytearray(edited.read_bytes())
        data[-3] ^= 0xFF  # other content, same size
        edited.write_bytes(bytes(data))
        os.utime(edited, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        os.utime(moved, ns=(0, moved.stat().st_mtime_ns + 10**9))
        manifest = Manifest.load(embed_chunk(hashed, plan.chunk_paths[0], config))
    reasons = dict(zip(manifest.ids, manifest.reason))
    assert reasons[files[0][0]] == "changed after hashing (other content): not read, run again to include it"
    assert reasons[files[1][0]].startswith("changed after discovery")
    assert list(manifest.status[2:]) == [STATUS_OK] * (len(files) - 2) and set(manifest.status[:2]) == {STATUS_ERROR}
    again = find_duplicates_in_folder(folder, config, tmp_path / "again")
    assert again.decoded == 2  # both read again (the flipped byte may leave the edited one undecodable)
    assert "changed after" not in (tmp_path / "again" / "errors.csv").read_text()


def test_a_manifest_keeps_its_text_columns_no_wider_than_their_longest_value(tmp_path):
    from imgdedup.storage.store import Manifest

    signature = "pillow-12 max_pixels=178956970 compat=False " + "x" * 20  # as long as a decoder's
    readable = Manifest(
        ids=[f"f{k}.jpg" for k in range(1000)], refused_under=np.where(np.ones(1000, bool), "", signature)
    )
    assert readable.refused_under.dtype == np.dtype("U1")  # was U65: 260 bytes a file, for nothing
    parts = Manifest.concatenate([readable, Manifest(ids=["bad.jpg"], refused_under=np.asarray([signature]))])
    assert parts.refused_under.dtype == np.dtype(f"U{len(signature)}") and parts.refused_under[-1] == signature
    parts.save(tmp_path / "manifest.npz")
    loaded = Manifest.load(tmp_path / "manifest.npz")
    assert loaded.refused_under.tolist() == [""] * 1000 + [signature] and loaded.ids == parts.ids


def test_unreadable_files_are_read_again_when_the_reason_may_no_longer_hold(tmp_path):
    """A file refused under --compat (its format) or a small max_image_pixels is read by a later run without
    them; one refused for its content under the same settings is not read again."""
    from PIL import Image

    folder = tmp_path / "photos"
    make_sample_folder(folder, n_with_copies=1, n_distinct=2, seed=9)
    random_scene(np.random.default_rng(1), (64, 48)).save(folder / "icon.tga")  # not one of imagededup's formats
    (folder / "notes.txt").write_text("not an image")
    store = str(tmp_path / "store")
    compat = find_duplicates_in_folder(
        folder, load_config(method="phash", compat=True, store=store), tmp_path / "compat"
    )
    assert (
        "icon.tga,format TGA is not read by imagededup (compat mode)"
        in (tmp_path / "compat" / "errors.csv").read_text()
    )
    assert compat.unreadable == 2

    small = load_config(method="phash", max_image_pixels=100, store=store)
    refused = find_duplicates_in_folder(folder, small, tmp_path / "small")
    assert refused.unreadable == refused.files and refused.decoded == refused.files  # everything tried again
    assert find_duplicates_in_folder(folder, small, tmp_path / "small-again").decoded == 0  # same settings: kept

    default = find_duplicates_in_folder(folder, load_config(method="phash", store=store), tmp_path / "default")
    assert default.decoded == default.files and default.unreadable == 1  # only notes.txt stays unreadable
    assert find_duplicates_in_folder(folder, load_config(method="phash", store=store), tmp_path / "again").decoded == 0
    assert Image.open(folder / "icon.tga").format == "TGA"


def test_hybrid_keeps_no_whole_image_hashes_and_phash_reads_them_later(library, tmp_path):
    """hybrid's hash task reads only headers (its hashes come from the embedder's decode): a phash run on
    its store then hashes every image, and finds what a phash run on a fresh store finds."""
    config = load_config(store=str(tmp_path / "store"))
    hybrid = find_duplicates_in_folder(library, config, tmp_path / "hybrid")
    assert hybrid.decoded == hybrid.files and hybrid.clusters > 0
    assert "hashes_phash" not in open_store(library, config).group()
    phash = find_duplicates_in_folder(library, config.replace(method="phash"), tmp_path / "phash")
    assert phash.decoded == phash.files
    _, reference = full_run(library, tmp_path, "phash-full", method="phash")
    assert (tmp_path / "phash" / "duplicates.json").read_text() == (reference / "duplicates.json").read_text()
