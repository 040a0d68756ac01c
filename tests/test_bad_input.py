"""Bad input: every discovered file ends up hashed or in errors.csv with a reason, and the run goes on.

Decisions these tests pin down (see also imgdedup/io.py):

* a folder is never a candidate, whatever its name (``x.jpg/``): walked when
  recursive, skipped like any sub-folder with ``recursive=False``;
* symlinked folders are not followed (no loops); a symlink loop or a broken
  symlink to a file is listed and reported;
* FIFOs, sockets and devices are listed and reported as "not a regular file",
  never opened for reading (a FIFO would block);
* a sub-folder that cannot be listed is itself listed and reported;
* a file deleted after discovery is reported as missing; a file whose size or
  mtime changed after discovery is reported as changed and not hashed, so the
  results always describe the bytes that were discovered (the next run
  includes it);
* images above ``max_image_pixels`` are refused from their header, before any
  pixel buffer exists; a 1 x 100000 image is an image and is hashed.

Tests run as root here, and root reads any file whatever its mode. The
permission tests therefore run the reading code in a child process started by
``setpriv`` without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH: a real kernel
permission check on a mode-000 file. Without root they just chmod. They are
skipped, saying why, only when neither works.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import resource
import shutil
import socket
import stat
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imgdedup.config import load_config
from imgdedup.errors import ImageLoadError
from imgdedup.imaging.decode import open_image
from imgdedup.imaging.discover import FileRecord, discover_images
from imgdedup.imaging.hash_chunk import hash_images
from imgdedup.sample import make_sample_folder, random_scene

REPO = Path(__file__).resolve().parents[1]


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def jpeg_bytes(image: Image.Image, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", **kwargs)
    return buffer.getvalue()


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png_header_bomb(width: int, height: int) -> bytes:
    """A valid PNG header claiming a huge RGB image, followed by a tiny compressed stream."""
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + _chunk(b"IDAT", zlib.compress(b"\x00" * 1024))
        + _chunk(b"IEND", b"")
    )


def jpeg_header_bomb(width: int, height: int) -> bytes:
    """A small JPEG whose SOF0 claims ``width`` x ``height``."""
    data = bytearray(jpeg_bytes(Image.new("RGB", (16, 16), (90, 20, 200))))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def scan(root: Path, **config) -> tuple[dict, dict[str, str], object]:
    from imgdedup.pipeline.inprocess import find_duplicates_in_folder

    out = root.parent / f"run-{root.name}"
    summary = find_duplicates_in_folder(root, load_config(**config), out)
    duplicates = json.loads((out / "duplicates.json").read_text(encoding="utf-8"))
    return duplicates, read_errors_csv(out / "errors.csv"), summary


def read_errors_csv(path: Path) -> dict[str, str]:
    with open(path, newline="", encoding="utf-8", errors="surrogateescape") as handle:
        return {row["path"]: row["reason"] for row in csv.DictReader(handle)}


def hash_one(folder: Path, name: str, **kwargs):
    st = os.lstat(folder / name) if os.path.lexists(folder / name) else None
    record = FileRecord(name, st.st_size if st else -1, st.st_mtime_ns if st else 0)
    return hash_images(folder, [record], 0, ("phash",), **kwargs)


def reason_of(folder: Path, name: str, **kwargs) -> str:
    chunk = hash_one(folder, name, **kwargs)
    assert len(chunk.positions) == 0, f"{name} was hashed"
    ((_, reason),) = chunk.errors
    return reason


# --- single files ------------------------------------------------------------------


def test_empty_text_random_and_truncated_files(tmp_path):
    image = random_scene(np.random.default_rng(0), (320, 240))
    files = {
        "empty.jpg": b"",
        "text.png": b"just some text\n",
        "random.jpg": np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes(),
        "trunc.jpg": jpeg_bytes(image)[:2000],
        "trunc-header.jpg": jpeg_bytes(image)[:40],
        "trunc.png": png_bytes(image)[:3000],
        "trunc-ihdr.png": png_bytes(image)[:20],
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    reasons = {name: reason_of(tmp_path, name) for name in files}
    assert reasons["empty.jpg"] == "empty file (0 bytes)"
    assert reasons["text.png"].startswith("not an image")
    assert reasons["random.jpg"].startswith("not an image")
    assert "truncated" in reasons["trunc.jpg"]
    assert "truncated" in reasons["trunc.png"] or "decode" in reasons["trunc.png"]
    for name in ("trunc-header.jpg", "trunc-ihdr.png"):
        assert reasons[name].startswith(("not an image", "cannot open image", "cannot decode image")), reasons[name]


def test_decompression_bombs_are_refused_from_the_header(tmp_path):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    (tmp_path / "png-bomb.png").write_bytes(png_header_bomb(100_000, 100_000))  # 30 GB of RGB if decoded
    (tmp_path / "jpeg-bomb.jpg").write_bytes(jpeg_header_bomb(65_000, 65_000))
    started = time.perf_counter()
    for name in ("png-bomb.png", "jpeg-bomb.jpg"):
        reason = reason_of(tmp_path, name)
        assert "decompression bomb" in reason or "max_image_pixels" in reason, reason
        for compat in (False, True):
            assert reason_of(tmp_path, name, compat=compat)
    assert time.perf_counter() - started < 5
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KiB: nothing allocated


def test_pixel_limit_is_configurable(tmp_path):
    image = random_scene(np.random.default_rng(2), (2000, 1000))
    (tmp_path / "big.png").write_bytes(png_bytes(image))
    reason = reason_of(tmp_path, "big.png", max_pixels=1_000_000)
    assert reason == "image is 2000 x 1000 = 2000000 pixels, above max_image_pixels=1000000"
    assert len(hash_one(tmp_path, "big.png", max_pixels=2_000_000).positions) == 1
    # Above Pillow's own bomb limit (2 x Image.MAX_IMAGE_PIXELS) the configured limit wins.
    data = png_header_bomb(15_000, 15_000)
    with pytest.raises(ImageLoadError, match="decompression bomb"):
        open_image(data, 178_956_970)
    assert open_image(data, 300_000_000).size == (15_000, 15_000)
    assert Image.MAX_IMAGE_PIXELS == 89_478_485  # restored


def test_pixel_limit_in_a_run(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    random_scene(np.random.default_rng(3), (1200, 1000)).save(folder / "big.png")
    random_scene(np.random.default_rng(4), (300, 200)).save(folder / "small.png")
    duplicates, errors, _ = scan(folder, max_image_pixels=1_000_000)
    assert set(duplicates) == {"small.png"}
    assert errors == {"big.png": "image is 1200 x 1000 = 1200000 pixels, above max_image_pixels=1000000"}


@pytest.mark.parametrize("size", [(1, 100_000), (100_000, 1)])
def test_extreme_aspect_ratio_is_hashed(tmp_path, size):
    rng = np.random.default_rng(5)
    array = rng.integers(0, 256, (size[1], size[0]), dtype=np.uint8)
    Image.fromarray(array).save(tmp_path / "thin.png")
    for compat in (False, True):
        chunk = hash_one(tmp_path, "thin.png", compat=compat)
        assert chunk.errors == []
        assert (int(chunk.width[0]), int(chunk.height[0])) == size


def test_fifo_socket_and_device_are_reported_never_read(tmp_path):
    os.mkfifo(tmp_path / "pipe.jpg")
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(tmp_path / "sock.png"))
        os.symlink("/dev/zero", tmp_path / "zero.jpg")  # a device: reading would never end
        names = [r.id for r in discover_images(tmp_path)]
        assert names == ["pipe.jpg", "sock.png", "zero.jpg"]
        started = time.perf_counter()
        assert reason_of(tmp_path, "pipe.jpg") == "not a regular file (FIFO / named pipe)"
        assert reason_of(tmp_path, "sock.png") == "not a regular file (socket)"
        assert reason_of(tmp_path, "zero.jpg") == "not a regular file (character device)"
        assert time.perf_counter() - started < 5
    finally:
        server.close()


def test_symlinks_broken_and_looping(tmp_path):
    Image.new("RGB", (40, 30), (200, 10, 10)).save(tmp_path / "real.png")
    os.symlink("real.png", tmp_path / "link.png")
    os.symlink("nowhere.png", tmp_path / "broken.png")
    os.symlink("loop-b.jpg", tmp_path / "loop-a.jpg")
    os.symlink("loop-a.jpg", tmp_path / "loop-b.jpg")
    os.symlink("self.jpg", tmp_path / "self.jpg")
    (tmp_path / "sub").mkdir()
    os.symlink("..", tmp_path / "sub" / "up")  # a folder loop: not followed
    os.symlink(tmp_path, tmp_path / "sub" / "root")
    records = discover_images(tmp_path)
    assert [r.id for r in records] == ["broken.png", "link.png", "loop-a.jpg", "loop-b.jpg", "real.png", "self.jpg"]
    chunk = hash_images(tmp_path, records, 0, ("phash",))
    errors = {records[p].id: reason for p, reason in chunk.errors}
    assert errors == {
        "broken.png": "broken symlink (its target does not exist)",
        "loop-a.jpg": "symlink loop (too many levels of symbolic links)",
        "loop-b.jpg": "symlink loop (too many levels of symbolic links)",
        "self.jpg": "symlink loop (too many levels of symbolic links)",
    }
    assert sorted(records[p].id for p in chunk.positions.tolist()) == ["link.png", "real.png"]


def test_folder_named_like_an_image(tmp_path):
    (tmp_path / "x.jpg").mkdir()
    Image.new("RGB", (40, 30), (10, 200, 10)).save(tmp_path / "x.jpg" / "inner.png")
    Image.new("RGB", (40, 30), (10, 200, 10)).save(tmp_path / "top.png")
    assert [r.id for r in discover_images(tmp_path)] == ["top.png", "x.jpg/inner.png"]
    # Not recursive: a folder is not a file, whatever its name; it is not listed.
    assert [r.id for r in discover_images(tmp_path, recursive=False)] == ["top.png"]
    # A record naming a folder (e.g. a file replaced by a folder) is reported, not read.
    assert reason_of(tmp_path, "x.jpg") == "is a directory"


def test_deleted_after_discovery(tmp_path):
    Image.new("RGB", (40, 30)).save(tmp_path / "gone.png")
    records = discover_images(tmp_path)
    (tmp_path / "gone.png").unlink()
    chunk = hash_images(tmp_path, records, 0, ("phash",))
    assert chunk.errors == [(0, "file missing (deleted after discovery)")]


def test_changed_after_discovery_is_reported_not_hashed(tmp_path):
    """Size or mtime differing from the discovered record: reported, so sizes, digests and
    hashes in the results always describe the same bytes; the next run picks it up."""
    first = random_scene(np.random.default_rng(6), (200, 150))
    first.save(tmp_path / "grown.png")
    first.save(tmp_path / "touched.png")
    first.save(tmp_path / "same.png")
    records = discover_images(tmp_path)
    random_scene(np.random.default_rng(7), (400, 300)).save(tmp_path / "grown.png")
    st = os.stat(tmp_path / "touched.png")
    os.utime(tmp_path / "touched.png", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    chunk = hash_images(tmp_path, records, 0, ("phash",))
    errors = {records[p].id: reason for p, reason in chunk.errors}
    assert set(errors) == {"grown.png", "touched.png"}
    assert all(reason.startswith("changed after discovery (size ") for reason in errors.values())
    assert [records[p].id for p in chunk.positions.tolist()] == ["same.png"]
    # A fresh discovery hashes the new content.
    fresh = hash_images(tmp_path, discover_images(tmp_path), 0, ("phash",))
    assert fresh.errors == [] and len(fresh.positions) == 3
    # Callers that pass no fingerprint (size -1) are not checked.
    assert len(hash_images(tmp_path, [FileRecord("grown.png", -1, 0)], 0, ("phash",)).positions) == 1


def test_unusual_names_in_a_run(tmp_path):
    folder = tmp_path / "names"
    folder.mkdir()
    image = random_scene(np.random.default_rng(8), (160, 120))
    raw_names = [
        b"with space.png",
        b"new\nline.png",
        b"caf\xe9.png",
        "\u202egnp.txt".encode(),
        "日本語.png".encode(),
        b"tab\there.png",
    ]
    for raw in raw_names:
        image.save(os.fsdecode(os.fsencode(folder) + b"/" + raw), "PNG")
    (folder / "\u202ebroken\nname.jpg").write_bytes(b"not an image")
    duplicates, errors, summary = scan(folder)
    assert {os.fsencode(k) for k in duplicates} == set(raw_names)
    assert all(len(v) == len(raw_names) - 1 for v in duplicates.values())
    assert list(errors) == ["\u202ebroken\nname.jpg"]
    assert summary.unreadable == 1


# --- permissions ----------------------------------------------------------------------


def _unprivileged(argv: list[str]) -> list[str] | None:
    """A command line that runs ``argv`` where a mode-000 file really cannot be read, or None."""
    if os.geteuid() != 0:
        return argv
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    caps = "-dac_override,-dac_read_search"
    return [setpriv, f"--inh-caps={caps}", f"--bounding-set={caps}", "--", *argv]


def run_unprivileged(code: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    probe_dir = Path(args[0]) if args else None
    argv = _unprivileged([sys.executable, "-c", code, *args])
    if argv is None:
        pytest.skip("running as root without setpriv: no way to make a file unreadable")
    if probe_dir is not None:
        # Check the mechanism works before trusting it: a mode-000 file must be unreadable.
        probe = probe_dir / ".probe"
        probe.write_bytes(b"x")
        probe.chmod(0)
        check = subprocess.run(
            _unprivileged([sys.executable, "-c", "import sys; open(sys.argv[1], 'rb')", str(probe)]),
            capture_output=True,
            text=True,
        )
        probe.unlink()
        if check.returncode == 0 or "PermissionError" not in check.stderr:
            pytest.skip(f"cannot drop the capability to read any file here: {check.stderr.strip()[-200:]}")
    return subprocess.run(
        argv, capture_output=True, text=True, cwd=REPO, env={**os.environ, **(env or {})}, timeout=300
    )


_HASH_CHILD = """
import json, sys
from imgdedup.imaging.hash_chunk import hash_images
from imgdedup.imaging.discover import discover_images
root = sys.argv[1]
records = discover_images(root)
chunk = hash_images(root, records, 0, ("phash",))
print(json.dumps({"ids": [r.id for r in records], "hashed": [records[p].id for p in chunk.positions.tolist()],
                  "errors": {records[p].id: reason for p, reason in chunk.errors}}))
"""


def test_permission_denied_file_and_folder(tmp_path):
    folder = tmp_path / "perm"
    folder.mkdir()
    Image.new("RGB", (40, 30), (0, 0, 250)).save(folder / "ok.png")
    Image.new("RGB", (40, 30), (0, 0, 250)).save(folder / "locked.png")
    (folder / "locked.png").chmod(0)
    (folder / "closed").mkdir()
    Image.new("RGB", (40, 30)).save(folder / "closed" / "inside.png")
    (folder / "closed").chmod(0)
    try:
        result = run_unprivileged(_HASH_CHILD, str(folder))
    finally:
        (folder / "closed").chmod(0o755)
        (folder / "locked.png").chmod(0o644)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ids"] == ["closed", "locked.png", "ok.png"]
    assert report["hashed"] == ["ok.png"]
    assert report["errors"] == {
        "closed": "folder cannot be listed: permission denied",
        "locked.png": "permission denied",
    }


# --- the torture folder -----------------------------------------------------------------


def tree_digest(root: Path) -> str:
    """Names, types, modes, sizes, mtimes, contents and link targets of everything under ``root``."""
    digest = hashlib.sha256()
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs.sort()
        for name in sorted(dirs + files):
            path = os.path.join(folder, name)
            st = os.lstat(path)
            digest.update(os.fsencode(os.path.relpath(path, root)) + b"\0")
            digest.update(f"{st.st_mode:o} {st.st_size} {st.st_mtime_ns}\0".encode())
            if stat.S_ISLNK(st.st_mode):
                digest.update(os.fsencode(os.readlink(path)) + b"\0")
            elif stat.S_ISREG(st.st_mode):
                if os.access(path, os.R_OK):  # root reads mode-000 files; others skip their content
                    digest.update(hashlib.sha256(Path(path).read_bytes()).digest())
    return digest.hexdigest()


def make_torture_folder(root: Path) -> dict[str, list[str]]:
    """At least 200 entries: real duplicates, distinct images in many formats, and every kind of bad input."""
    truth = make_sample_folder(root / "dups", n_with_copies=6, n_distinct=6, seed=4)
    truth = {f"dups/{k}": [f"dups/{v}" for v in vs] for k, vs in truth.items()}
    rng = np.random.default_rng(9)
    good = root / "good"
    good.mkdir()
    formats = [("png", "PNG"), ("webp", "WEBP"), ("gif", "GIF"), ("bmp", "BMP"), ("tif", "TIFF"), ("jpg", "JPEG")]
    for k in range(60):
        ext, fmt = formats[k % len(formats)]
        image = random_scene(rng, (int(rng.integers(80, 400)), int(rng.integers(80, 400))))
        image.save(good / f"distinct_{k:03d}.{ext}", fmt)
    # Unusual names: copies of a sample image, so they join its cluster.
    source = root / "dups" / "photo_000.jpg"
    weird = root / "weird names"
    weird.mkdir()
    for raw in [
        b"with space.jpg",
        b"new\nline.jpg",
        b"caf\xe9.jpg",
        "\u202egpj.jpg".encode(),
        "\u05e9\u05dc\u05d5\u05dd.jpg".encode(),
        b'semi;colon,comma".jpg',
    ]:
        target = os.fsencode(weird) + b"/" + raw
        shutil.copyfile(source, os.fsdecode(target))
        truth_key = "weird names/" + os.fsdecode(raw)
        truth[truth_key] = []
    bad = root / "bad"
    bad.mkdir()
    valid_jpeg = source.read_bytes()
    valid_png = png_bytes(random_scene(rng, (200, 150)))
    for k in range(12):
        (bad / f"empty_{k:02d}.jpg").write_bytes(b"")
        (bad / f"trunc_{k:02d}.jpg").write_bytes(valid_jpeg[: 400 + 150 * k])
        (bad / f"trunc_{k:02d}.png").write_bytes(valid_png[: 100 + 200 * k])
        (bad / f"random_{k:02d}.jpg").write_bytes(rng.integers(0, 256, 1000 + k, dtype=np.uint8).tobytes())
        (bad / f"text_{k:02d}.png").write_text(f"line {k}\n" * (k + 1))
        os.symlink(f"missing_{k}.jpg", bad / f"broken_{k:02d}.jpg")
    for k in range(4):
        (bad / f"bomb_{k}.png").write_bytes(png_header_bomb(50_000 + k, 50_000))
        (bad / f"bomb_{k}.jpg").write_bytes(jpeg_header_bomb(60_000, 60_000 + k))
        os.symlink(f"loop_{k}_b.jpg", bad / f"loop_{k}_a.jpg")
        os.symlink(f"loop_{k}_a.jpg", bad / f"loop_{k}_b.jpg")
        (bad / f"dir_{k}.jpg").mkdir()
        random_scene(rng, (120, 90)).save(bad / f"dir_{k}.jpg" / "inside.png")
        locked = bad / f"locked_{k}.jpg"
        locked.write_bytes(valid_jpeg)
        locked.chmod(0)
    os.symlink("..", bad / "up")  # a folder loop: not followed
    os.mkfifo(bad / "fifo.jpg")
    Image.fromarray(rng.integers(0, 256, (100_000, 1), dtype=np.uint8)).save(bad / "thin.png")
    (bad / "closed").mkdir()
    (bad / "closed" / "hidden.png").write_bytes(valid_png)
    (bad / "closed").chmod(0)
    (root / ".hidden.jpg").write_bytes(b"skipped: hidden")
    return truth


_TORTURE_CHILD = """
import json, sys
from imgdedup.config import load_config
from imgdedup.imaging.discover import discover_images
from imgdedup.pipeline.inprocess import find_duplicates_in_folder
root, out = sys.argv[1], sys.argv[2]
ids = [r.id for r in discover_images(root)]
summary = find_duplicates_in_folder(root, load_config(), out)
print(json.dumps({"ids": ids, "files": summary.files, "images": summary.images, "unreadable": summary.unreadable}))
"""


def test_torture_folder(tmp_path):
    root = tmp_path / "torture"
    truth = make_torture_folder(root)
    before = tree_digest(root)
    out = tmp_path / "run"
    try:
        result = run_unprivileged(_TORTURE_CHILD, str(root), str(out), env={"IMGDEDUP_HOME": str(tmp_path / "home")})
        assert result.returncode == 0, result.stderr[-3000:]
        assert tree_digest(root) == before, "the input tree changed"
    finally:
        (root / "bad" / "closed").chmod(0o755)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    ids = report["ids"]
    assert len(ids) >= 200
    duplicates = json.loads((out / "duplicates.json").read_text(encoding="utf-8"))
    errors = read_errors_csv(out / "errors.csv")
    # Every discovered file is either hashed or listed with a reason, never both.
    assert set(duplicates) | set(errors) == set(ids)
    assert not set(duplicates) & set(errors)
    assert all(reason.strip() for reason in errors.values())
    assert (report["files"], report["images"], report["unreadable"]) == (len(ids), len(duplicates), len(errors))
    # What each kind of bad input is reported as.
    expected_prefix = {
        "empty_": "empty file",
        "text_": "not an image",
        "random_": "not an image",
        "broken_": "broken symlink",
        "loop_": "symlink loop",
        "bomb_": "decompression bomb",
        "locked_": "permission denied",
        "fifo": "not a regular file",
        "closed": "folder cannot be listed: permission denied",
    }
    for file_id, reason in errors.items():
        name = file_id.rsplit("/", 1)[-1]
        for prefix, start in expected_prefix.items():
            if name.startswith(prefix):
                assert reason.startswith(start), (file_id, reason)
    readable_bad = {"bad/thin.png"} | {f"bad/dir_{k}.jpg/inside.png" for k in range(4)}
    # (make_sample_folder writes its ground truth beside the folder: a JSON file, not an image)
    assert set(errors) == ({i for i in ids if i.startswith("bad/")} - readable_bad) | {"dups_ground_truth.json"}
    assert len([i for i in errors if i.startswith("bad/locked_")]) == 4
    assert not any(i.startswith("good/") or i.startswith("dups/") or i.startswith("weird names/") for i in errors)
    assert "bad/thin.png" in duplicates and "bad/dir_0.jpg/inside.png" in duplicates
    assert ".hidden.jpg" not in ids and "bad/up" not in ids
    # The duplicates among the good files are found: the sample's pairs and the renamed copies.
    found = {frozenset((a, b)) for a, bs in duplicates.items() for b in bs}
    group = ["dups/photo_000.jpg"] + truth["dups/photo_000.jpg"] + [k for k in truth if k.startswith("weird names/")]
    expected = {frozenset((a, b)) for a, bs in truth.items() if a.startswith("dups/") for b in bs}
    expected |= {frozenset((a, b)) for a in group for b in group if a != b and b in duplicates}
    assert expected <= found
    sample_ids = {i for i in duplicates if i.startswith("dups/") or i.startswith("weird names/")}
    assert {p for p in found if p <= sample_ids} == expected
