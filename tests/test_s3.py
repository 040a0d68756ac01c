"""Images in an S3 bucket, read through fsspec from a real S3-compatible server on 127.0.0.1 (moto's server mode)."""

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from imgdedup.config import load_config
from imgdedup.imaging.discover import discover_images
from imgdedup.pipeline.inprocess import find_duplicates_in_folder
from imgdedup.sample import make_sample_folder
from tests.conftest import found_pairs, known_pairs
from tests.processes import free_port, stop
from tests.test_report import page_data

boto3 = pytest.importorskip("boto3", reason="boto3 comes with the test extra (moto[server], s3fs)")


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory):
    """moto_server on 127.0.0.1; credentials and endpoint come from the environment, as for real S3."""
    port = free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "w")
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    endpoint = f"http://127.0.0.1:{port}"
    saved = {
        k: os.environ.get(k)
        for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION")
    }
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_ENDPOINT_URL=endpoint,
        AWS_DEFAULT_REGION="us-east-1",
    )
    try:
        deadline = time.time() + 30
        while True:
            try:
                urllib.request.urlopen(endpoint, timeout=2)
                break
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.2)
        yield endpoint
    finally:
        stop([server])
        log.close()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="module")
def bucket(s3_server, tmp_path_factory):
    local = tmp_path_factory.mktemp("upload") / "photos"
    truth = make_sample_folder(local, n_with_copies=3, n_distinct=4, seed=12)
    (local / "notes.txt").write_text("not an image")
    client = boto3.client("s3", endpoint_url=s3_server)
    client.create_bucket(Bucket="library")
    for path in sorted(local.rglob("*")):
        if path.is_file():
            client.upload_file(str(path), "library", f"photos/{path.relative_to(local).as_posix()}")
    return local, truth


def test_listing_matches_the_local_folder(bucket):
    local, _ = bucket
    remote = discover_images("s3://library/photos")
    assert [r.id for r in remote] == [r.id for r in discover_images(local)]
    assert [r.size for r in remote] == [r.size for r in discover_images(local)]
    assert all(r.mtime_ns > 0 for r in remote)


def test_run_on_a_bucket_equals_the_local_run(bucket, tmp_path):
    local, truth = bucket
    summary = find_duplicates_in_folder(
        "s3://library/photos", load_config(store=str(tmp_path / "store")), tmp_path / "remote"
    )
    find_duplicates_in_folder(local, load_config(store=str(tmp_path / "local-store")), tmp_path / "local")
    remote_dups = json.loads((tmp_path / "remote" / "duplicates.json").read_text())
    assert found_pairs(remote_dups) == known_pairs(truth)
    assert remote_dups == json.loads((tmp_path / "local" / "duplicates.json").read_text())
    assert summary.unreadable == 1 and summary.root == "s3://library/photos"
    errors = (tmp_path / "remote" / "errors.csv").read_text()
    assert "notes.txt,not an image" in errors
    assert len(list((tmp_path / "remote" / "thumbs").glob("*.jpg"))) > 0  # thumbnails read from the bucket
    again = find_duplicates_in_folder(
        "s3://library/photos", load_config(store=str(tmp_path / "store")), tmp_path / "again"
    )
    assert again.decoded == 0  # unchanged objects (same size and LastModified) are not read again


def test_missing_bucket_prefix_is_a_clear_error(bucket):
    from imgdedup.errors import InputError

    with pytest.raises(InputError, match="is not a folder or prefix"):
        discover_images("s3://library/nothing-here")


# --- the store and the run folder on S3 ----------------------------------------------------


def _s3_text(url: str) -> str:
    import fsspec

    with fsspec.open(url, "rt", encoding="utf-8") as handle:
        return handle.read()


def _same_results(remote: str, local: Path) -> None:
    """Every result file of a run folder in the bucket equals the local run folder's (the store and the count read aside)."""
    for name in ("duplicates.json", "clusters.csv", "errors.csv"):
        assert _s3_text(f"{remote}/{name}") == (local / name).read_text(), name
    remote_clusters = json.loads(_s3_text(f"{remote}/clusters.json"))
    local_clusters = json.loads((local / "clusters.json").read_text())
    skip = {"store", "decoded"}
    assert {k: v for k, v in remote_clusters.items() if k not in skip} == {
        k: v for k, v in local_clusters.items() if k not in skip
    }


@pytest.fixture(scope="module")
def local_reference(bucket, tmp_path_factory):
    """The bucket's images run with a local store and run folder: what every S3-backed run must equal."""
    base = tmp_path_factory.mktemp("reference")
    find_duplicates_in_folder("s3://library/photos", load_config(store=str(base / "store"), chunk_size=5), base / "run")
    return base / "run"


def test_store_and_run_folder_on_s3_equal_local_ones(bucket, local_reference):
    import fsspec

    _, truth = bucket
    config = load_config(store="s3://library/stores/find", chunk_size=5)
    summary = find_duplicates_in_folder("s3://library/photos", config, "s3://library/runs/find")
    assert summary.out_dir == "s3://library/runs/find" and summary.store == "s3://library/stores/find"
    assert summary.report == "s3://library/runs/find/report.html" and summary.decoded == summary.files
    _same_results("s3://library/runs/find", local_reference)
    assert found_pairs(json.loads(_s3_text("s3://library/runs/find/duplicates.json"))) == known_pairs(truth)
    fs = fsspec.filesystem("s3")
    store = fs.find("library/stores/find")
    assert (
        "library/stores/find/manifest.npz" in store and "library/stores/find/arrays.zarr/embeddings/zarr.json" in store
    )
    assert not [p for p in store if "/pending/" in p or p.endswith("/lock")]  # committed and released
    data = page_data(_s3_text("s3://library/runs/find/report.html"))
    thumbs = [p.rsplit("/", 1)[1] for p in fs.find("library/runs/find/thumbs")]
    assert data["thumbs"] == "thumbs"  # relative to the page, beside it in the bucket
    shown = {row[9] for _, _, members in data["clusters"] for row in members if row[8] == 1}
    assert shown and sorted(thumbs) == sorted(f"{digest}{data['thumbSuffix']}" for digest in shown)
    again = find_duplicates_in_folder("s3://library/photos", config, "s3://library/runs/again")
    assert again.decoded == 0  # nothing read again: the store in the bucket knew every object
    _same_results("s3://library/runs/again", local_reference)
    assert sorted(p.rsplit("/", 1)[1] for p in fs.find("library/runs/again/thumbs")) == sorted(
        thumbs
    )  # copied from the store


@pytest.mark.usefixtures("prefect_harness")
def test_flow_with_input_store_and_run_folder_on_s3(bucket, local_reference):
    """The Prefect flow on two Dask worker processes reads, stores and reports in the bucket only."""
    import fsspec

    from imgdedup.flows.dedup import dedup_flow

    summary = dedup_flow(
        path="s3://library/photos",
        out="s3://library/runs/flow",
        store="s3://library/stores/flow",
        chunk_size=5,
        n_workers=2,
    )
    assert summary.decoded == summary.files and summary.report == "s3://library/runs/flow/report.html"
    _same_results("s3://library/runs/flow", local_reference)
    work = fsspec.filesystem("s3").find("library/runs/flow/work")
    assert len([p for p in work if p.rsplit("/", 1)[1].startswith("chunk-") and p.endswith(".json")]) == -(
        -summary.files // 5
    )
    again = dedup_flow(
        path="s3://library/photos", out="s3://library/runs/flow-again", store="s3://library/stores/flow", n_workers=1
    )
    assert again.decoded == 0
    _same_results("s3://library/runs/flow-again", local_reference)


def test_store_on_s3_keeps_arrays_manifest_and_pending_chunks(bucket):
    import fsspec
    import numpy as np

    from imgdedup.storage.store import Manifest, Store, merge_pending

    store = Store.open("s3://library/stores/unit", row_chunk=16)
    assert store.is_remote and Store.open("s3://library/stores/unit/", row_chunk=99).row_chunk == 16  # store.json kept
    store.ensure_array("hashes_phash", 32, "uint64")
    store.write_rows("hashes_phash", 16, np.arange(5, dtype=np.uint64) + 7)
    assert store.read_rows("hashes_phash", np.array([16, 20])).tolist() == [7, 11] and store.n_rows() == 32
    entry = Manifest(
        ids=["a.jpg"],
        size=np.array([3]),
        mtime_ns=np.array([4]),
        status=np.array([1], np.uint8),
        reason=np.array([""]),
        row=np.array([16]),
        width=np.array([1], np.int32),
        height=np.array([2], np.int32),
        formats=np.array(["JPEG"]),
        digests=np.array(["d"], "U32"),
        features={"hash:phash": np.array([True])},
    )
    entry.save(store.pending_path("run", 0))
    assert store.pending_paths() == ["s3://library/stores/unit/pending/run-00000.npz"]
    merged = merge_pending(store, store.load_manifest())
    store.save_manifest(merged)
    assert store.load_manifest().ids == ["a.jpg"] and store.load_manifest().has("hash:phash").tolist() == [True]
    objects = fsspec.filesystem("s3").find("library/stores/unit")
    assert "library/stores/unit/arrays.zarr/hashes_phash/c/1" in objects  # one object per Zarr chunk
    assert not [p for p in objects if "zmetadata" in p or p.endswith(".tmp")]  # no consolidated metadata, no leftovers


def test_store_lock_on_s3_is_exclusive_renewed_and_released(bucket, tmp_path):
    import fsspec

    from imgdedup.errors import StoreError
    from imgdedup.storage.store import Store

    fs = fsspec.filesystem("s3")
    url = "s3://library/stores/locked"
    holder = Store.open(url)
    holder.LEASE_SECONDS = 1.0
    with holder.lock():
        body = json.loads(fs.cat_file("library/stores/locked/lock"))
        assert body["owner"].startswith(f"pid {os.getpid()} on ") and "testing" not in json.dumps(body)
        with pytest.raises(StoreError, match="is in use by pid .*; wait for that run to finish or use another --store"):
            with Store.open(url).lock():
                pass
        time.sleep(1.6)  # past the first expiry: renewed meanwhile, so still held
        with pytest.raises(StoreError, match="is in use by pid"):
            find_duplicates_in_folder("s3://library/photos", load_config(store=url), tmp_path / "second")
    assert not fs.exists("library/stores/locked/lock")
    with Store.open(url).lock():  # released: usable again
        pass


def test_expired_lock_on_s3_is_taken_over_and_a_lost_one_left_alone(bucket):
    import fsspec

    from imgdedup.storage.store import Store

    fs = fsspec.filesystem("s3")
    url, key = "s3://library/stores/stale", "library/stores/stale/lock"
    store = Store.open(url)
    fs.pipe_file(key, json.dumps({"owner": "pid 1 on gone", "token": "old", "expires": time.time() - 5}).encode())
    with store.lock():  # the holder died: its lease expired, so this run takes it over
        assert json.loads(fs.cat_file(key))["token"] != "old"
        foreign = json.dumps({"owner": "pid 2 on elsewhere", "token": "other", "expires": time.time() + 600}).encode()
        fs.pipe_file(key, foreign)  # ... and loses it to another run (as after a stall longer than the lease)
    fs.invalidate_cache(key)
    assert fs.cat_file(key) == foreign  # release removes only this run's own lock
    fs.rm_file(key)


def test_bad_store_and_run_folder_urls_are_clear_errors(bucket, tmp_path):
    from click.testing import CliRunner

    from imgdedup.cli.main import main
    from imgdedup.errors import OutputError, StoreError

    with pytest.raises(StoreError, match="cannot create store 's3://no-such-bucket/store'.*bucket does not exist"):
        find_duplicates_in_folder(
            "s3://library/photos", load_config(store="s3://no-such-bucket/store"), tmp_path / "out"
        )
    with pytest.raises(
        OutputError, match="cannot write to output folder 's3://no-such-bucket/run'.*bucket does not exist"
    ):
        find_duplicates_in_folder(
            "s3://library/photos", load_config(store=str(tmp_path / "store")), "s3://no-such-bucket/run"
        )
    with pytest.raises(StoreError, match="nosuchproto"):
        find_duplicates_in_folder("s3://library/photos", load_config(store="nosuchproto://x/store"), tmp_path / "out")
    with pytest.raises(StoreError, match="credentials do not belong in a URL") as caught:
        find_duplicates_in_folder(
            "s3://library/photos", load_config(store="s3://AKIAEXAMPLE:hunter2@library/store"), tmp_path / "out"
        )
    assert "hunter2" not in str(caught.value) and "AKIAEXAMPLE" not in str(caught.value)
    result = CliRunner().invoke(
        main, ["find", "s3://library/photos", "--store", "s3://no-such-bucket/store", "--out", str(tmp_path / "cli")]
    )
    assert result.exit_code == 1 and "Error: cannot create store 's3://no-such-bucket/store'" in result.output


def test_apply_refuses_a_run_folder_on_s3():
    from imgdedup.actions import ActionError, load_run

    with pytest.raises(ActionError, match="is a URL: apply and undo act on local files only"):
        load_run("s3://library/runs/find")
