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
from imgdedup.io import discover_images
from imgdedup.pipeline import find_duplicates_in_folder
from imgdedup.sample import make_sample_folder
from tests.conftest import found_pairs, known_pairs
from tests.processes import free_port, stop

boto3 = pytest.importorskip("boto3", reason="boto3 comes with the test extra (moto[server], s3fs)")


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory):
    """moto_server on 127.0.0.1; credentials and endpoint come from the environment, as for real S3."""
    port = free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "w")
    server = subprocess.Popen([str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    endpoint = f"http://127.0.0.1:{port}"
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION")}
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_ENDPOINT_URL=endpoint, AWS_DEFAULT_REGION="us-east-1")
    try:
        deadline = time.time() + 30
        while True:
            try:
                urllib.request.urlopen(endpoint, timeout=2)
                break
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    raise RuntimeError("moto_server did not start")
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
    summary = find_duplicates_in_folder("s3://library/photos", load_config(store=str(tmp_path / "store")), tmp_path / "remote")
    find_duplicates_in_folder(local, load_config(store=str(tmp_path / "local-store")), tmp_path / "local")
    remote_dups = json.loads((tmp_path / "remote" / "duplicates.json").read_text())
    assert found_pairs(remote_dups) == known_pairs(truth)
    assert remote_dups == json.loads((tmp_path / "local" / "duplicates.json").read_text())
    assert summary.unreadable == 1 and summary.root == "s3://library/photos"
    errors = (tmp_path / "remote" / "errors.csv").read_text()
    assert "notes.txt,not an image" in errors
    assert len(list((tmp_path / "remote" / "thumbs").glob("*.jpg"))) > 0  # thumbnails read from the bucket
    again = find_duplicates_in_folder("s3://library/photos", load_config(store=str(tmp_path / "store")), tmp_path / "again")
    assert again.decoded == 0  # unchanged objects (same size and LastModified) are not read again


def test_missing_bucket_prefix_is_a_clear_error(bucket):
    from imgdedup.errors import InputError

    with pytest.raises(InputError, match="is not a folder or prefix"):
        discover_images("s3://library/nothing-here")
