"""Hashing throughput on 2-megapixel JPEGs: imagededup vs imgdedup (compat and default).

Run from the repository root::

    python benchmarks/bench_hashing.py --images 2000

The first run writes ``$TMPDIR/imgdedup-bench-hashing-2mp/`` (or ``--folder``): 200 originals of
1632 x 1224 pixels cut from the photographs bundled with scikit-learn and
scikit-image, plus their 10 size-preserving transformed copies
(``benchmarks.transforms.SIZE_PRESERVING``: 2200 JPEGs, quality 95 except the
``jpeg_q25`` copies; about 2 minutes); later runs reuse it. The first
``--images`` files (sorted by name) are hard-linked into ``flat-N/`` and hashed
with phash three ways, each over the same ``--workers`` processes (default: the
number of CPUs), one run each, page cache warm:

1. imagededup 0.3.3: ``PHash(verbose=False).encode_images(folder, num_enc_workers=W)``
   (its own ``multiprocessing.Pool`` of W processes);
2. imgdedup ``compat=True``: :func:`imgdedup.imaging.hash_chunk.hash_images` over chunks of
   ``--chunk-size`` files in a ``ProcessPoolExecutor(W)``, as the flow's Dask
   workers (one thread each) do;
3. imgdedup default path, the same way.

It also times, in this process on 200 of the files, imagededup's pixel path
done with Pillow alone: the full JPEG decode to RGB, then Pillow's LANCZOS
resize to 32 x 32 and the conversion to grey. Compat mode needs the same
decode but resizes with :mod:`imgdedup.imaging.lanczos` (the same bytes, less CPU).

It prints images/s (wall clock, including pool start-up), CPU milliseconds per
image (the benchmark process plus its worker processes: a figure that stays
meaningful when other work shares the machine), the ratio of each to
imagededup's, and checks that compat hashes equal imagededup's bit for bit.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")  # workers are single-threaded processes, as in the flow

try:
    import imgdedup  # noqa: F401
except ImportError:  # running from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from imgdedup.imaging.discover import discover_images
from imgdedup.imaging.hash_chunk import hash_images
from imgdedup.imaging.hashing import hash_to_hex

SIZE = (1632, 1224)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=2000, help="number of JPEGs to hash (2000)")
    parser.add_argument(
        "--folder",
        type=Path,
        default=Path(tempfile.gettempdir()) / "imgdedup-bench-hashing-2mp",
        help="benchmark folder, generated when missing ($TMPDIR/imgdedup-bench-hashing-2mp)",
    )
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="processes for every contender (CPU count)"
    )
    parser.add_argument("--chunk-size", type=int, default=250, help="files per imgdedup chunk task (250)")
    parser.add_argument("--skip", default="", help="comma-separated contenders to skip: imagededup,compat,default")
    return parser


def ensure_folder(folder: Path, n_images: int) -> Path:
    """Generate (or reuse) the JPEGs; return a flat folder holding exactly the first ``n_images``."""
    from benchmarks.transforms import SIZE_PRESERVING, make_transformed_copies

    source = folder / "source"
    per_original = 1 + len(SIZE_PRESERVING)
    needed = math.ceil(n_images / per_original)
    existing = sorted(source.rglob("*.jpg")) if source.is_dir() else []
    if len(existing) < n_images:
        print(
            f"generating {needed} originals x {per_original} = {needed * per_original} JPEGs of {SIZE[0]} x {SIZE[1]} in {source} ...",
            flush=True,
        )
        started = time.perf_counter()
        make_transformed_copies(
            source, n_originals=max(needed, 200), size=SIZE, transforms=list(SIZE_PRESERVING), overwrite=True
        )
        print(f"  done in {time.perf_counter() - started:.0f} s", flush=True)
        existing = sorted(source.rglob("*.jpg"))
    chosen = sorted(existing, key=lambda p: p.name)[:n_images]
    if len(chosen) < n_images:
        raise SystemExit(f"only {len(chosen)} JPEGs available in {source}")
    flat = folder / f"flat-{n_images}"
    if not flat.is_dir() or len(list(flat.iterdir())) != n_images:
        flat.mkdir(parents=True, exist_ok=True)
        for old in flat.iterdir():
            old.unlink()
        for path in chosen:
            target = flat / path.name
            try:
                os.link(path, target)
            except OSError:
                target.write_bytes(path.read_bytes())
    for path in flat.iterdir():  # warm the page cache: measure decoding, not the disk
        path.read_bytes()
    return flat


def _cpu_seconds() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def _hash_chunk(args: tuple) -> dict[str, str]:
    root, records, start, compat = args
    chunk = hash_images(root, records, start, ("phash",), compat=compat)
    return {
        records[p - start].id: hash_to_hex(h) for p, h in zip(chunk.positions.tolist(), chunk.hashes[:, 0].tolist())
    }


def run_imgdedup(folder: Path, compat: bool, workers: int, chunk_size: int) -> dict[str, str]:
    # Import the hash code (scipy's DCT) before forking, as imagededup does at import:
    # a Dask worker pays this once per process, not once per run.
    import numpy as np

    from imgdedup.imaging.hashing import hash_pixels

    hash_pixels("phash", np.zeros((1, 32, 32), dtype=np.uint8))
    records = discover_images(folder, recursive=False)
    jobs = [(str(folder), records[s : s + chunk_size], s, compat) for s in range(0, len(records), chunk_size)]
    encodings: dict[str, str] = {}
    with ProcessPoolExecutor(workers) as pool:
        for part in pool.map(_hash_chunk, jobs):
            encodings.update(part)
    return encodings


def run_imagededup(folder: Path, workers: int) -> dict[str, str]:
    import logging

    from imagededup.methods import PHash

    for name in list(logging.root.manager.loggerDict):
        if name.startswith("imagededup"):
            logging.getLogger(name).setLevel(logging.WARNING)
    return PHash(verbose=False).encode_images(str(folder), num_enc_workers=workers)


def measure(name: str, function) -> dict:
    cpu0, wall0 = _cpu_seconds(), time.perf_counter()
    encodings = function()
    wall, cpu = time.perf_counter() - wall0, _cpu_seconds() - cpu0
    n = len(encodings)
    print(f"  {name:12s} {n} images in {wall:.1f} s", flush=True)
    return {"name": name, "n": n, "wall": wall, "cpu": cpu, "encodings": encodings}


def compat_floor(folder: Path, n_images: int = 200) -> tuple[float, float]:
    """CPU ms per image of Pillow's full decode, and of decode + Pillow's LANCZOS 32 x 32 + grey."""
    import io

    from PIL import Image

    from imgdedup.imaging.lanczos import _keep_freed_memory

    # As in compat workers: otherwise glibc returns each decoded image's pages to the
    # kernel and faults them in again, which here would more than double the decode.
    _keep_freed_memory()
    datas = [p.read_bytes() for p in sorted(folder.iterdir())[:n_images]]

    def per_image(work) -> float:
        started = time.process_time()
        for data in datas:
            work(data)
        return 1000 * (time.process_time() - started) / len(datas)

    def decoded(data: bytes) -> Image.Image:  # imagededup's load_image up to the resize
        image = Image.open(io.BytesIO(data))
        image.load()
        return image if image.mode == "RGB" else image.convert("RGBA").convert("RGB")

    decode = per_image(decoded)
    resize = per_image(lambda d: decoded(d).resize((32, 32), Image.LANCZOS).convert("L"))
    return decode, resize


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    skip = {s for s in args.skip.split(",") if s}
    flat = ensure_folder(args.folder, args.images)
    print(
        f"hashing {args.images} JPEGs of {SIZE[0]} x {SIZE[1]} with phash, {args.workers} processes each "
        f"({os.cpu_count()} CPUs; load average before: {os.getloadavg()[0]:.1f})",
        flush=True,
    )
    results = []
    if "imagededup" not in skip:
        results.append(measure("imagededup", lambda: run_imagededup(flat, args.workers)))
    if "compat" not in skip:
        results.append(measure("compat", lambda: run_imgdedup(flat, True, args.workers, args.chunk_size)))
    if "default" not in skip:
        results.append(measure("default", lambda: run_imgdedup(flat, False, args.workers, args.chunk_size)))
    base = next((r for r in results if r["name"] == "imagededup"), None)
    print()
    print(f"{'contender':12s} {'images/s':>9s} {'x wall':>7s} {'CPU ms/img':>11s} {'x CPU':>6s}")
    for r in results:
        rate, cpu_ms = r["n"] / r["wall"], 1000 * r["cpu"] / max(r["n"], 1)
        if base:
            x_wall = rate / (base["n"] / base["wall"])
            x_cpu = (1000 * base["cpu"] / max(base["n"], 1)) / cpu_ms
            print(f"{r['name']:12s} {rate:9.1f} {x_wall:7.2f} {cpu_ms:11.2f} {x_cpu:6.2f}")
        else:
            print(f"{r['name']:12s} {rate:9.1f} {'-':>7s} {cpu_ms:11.2f} {'-':>6s}")
    print(f"(load average after: {os.getloadavg()[0]:.1f})")
    compat = next((r for r in results if r["name"] == "compat"), None)
    if base and compat:
        same = sum(compat["encodings"].get(k) == v for k, v in base["encodings"].items())
        print(f"compat hashes identical to imagededup's: {same}/{len(base['encodings'])}")
    if base:
        decode_ms, pixels_ms = compat_floor(flat)
        base_ms = 1000 * base["cpu"] / max(base["n"], 1)
        print(
            f"Pillow alone (one process): full decode {decode_ms:.1f} ms, + its LANCZOS + grey {pixels_ms:.1f} ms per image; "
            f"imagededup / that = {base_ms / pixels_ms:.2f}x (compat resizes with imgdedup.imaging.lanczos instead)"
        )
    default = next((r for r in results if r["name"] == "default"), None)
    if base and default:
        common = [k for k in base["encodings"] if k in default["encodings"]]
        distances = [bin(int(base["encodings"][k], 16) ^ int(default["encodings"][k], 16)).count("1") for k in common]
        if distances:
            distances.sort()
            print(
                f"default vs imagededup hash distance: median {distances[len(distances) // 2]}, "
                f"max {distances[-1]}, <= 10 for {sum(d <= 10 for d in distances)}/{len(distances)}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
