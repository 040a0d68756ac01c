"""End to end at scale (issue #18): ``find`` and ``run`` on N generated JPEGs with planted duplicates.

Run from the repository root::

    python benchmarks/bench_scale.py --images 10000 --method phash
    python benchmarks/bench_scale.py --images 10000 --method hybrid --commands find

Data: N small but real JPEGs (``--size``, default 320x240): random scenes
(:func:`imgdedup.sample.random_scene`, a gradient and 4-8 shapes, plus sensor-like
noise) of which every ``--every``-th (10) has a planted copy: re-encoded at
another quality, 0.8x resized, or brightened, in turn. The copies are part of
the N. Generated once into ``--workdir`` (default ``$TMPDIR/imgdedup-bench-scale-N``)
on every core, and reused.

Each command runs as a child process (``imgdedup find`` / ``imgdedup run``) with
a fresh store and run folder. A sampler reads the RSS of every process of its
tree each 0.1 s (psutil); printed: the stage seconds of the run's
``summary.json``, wall seconds, images/s (N / wall), the peak RSS of each
process (by command line), the store's size on disk and the planted pairs found
(a planted pair counts when duplicates.json lists the copy for its original).
Then an unchanged rerun on the same store (``--rerun``), as a share of the full run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
KINDS = ("quality", "resized", "brightened")


def _write_batch(
    folder: str, start: int, stop: int, size: tuple[int, int], every: int, seed: int
) -> list[tuple[str, str]]:
    from PIL import Image, ImageEnhance

    from imgdedup.sample import random_scene

    planted = []
    for k in range(start, stop):
        rng = np.random.default_rng((seed, k))
        pixels = np.asarray(random_scene(rng, size), dtype=np.int16)
        pixels = np.clip(pixels + rng.normal(0, 8, pixels.shape), 0, 255).astype(np.uint8)
        image = Image.fromarray(pixels)
        name = f"{k // 1000:04d}/img{k:07d}.jpg"
        path = Path(folder) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path, "JPEG", quality=90)
        if k % every == 0:
            kind = KINDS[(k // every) % len(KINDS)]
            copy_name = f"{k // 1000:04d}/img{k:07d}-{kind}.jpg"
            if kind == "resized":
                copy = image.resize((int(size[0] * 0.8), int(size[1] * 0.8)), Image.LANCZOS)
            elif kind == "brightened":
                copy = ImageEnhance.Brightness(image).enhance(1.15)
            else:
                copy = image
            copy.save(Path(folder) / copy_name, "JPEG", quality=70 if kind == "quality" else 90)
            planted.append((name, copy_name))
    return planted


def generate(folder: Path, n: int, size: tuple[int, int], every: int, seed: int = 0) -> list[tuple[str, str]]:
    """``n`` JPEGs in total (originals plus planted copies) under ``folder``; returns the planted pairs."""
    truth = folder.parent / f"{folder.name}-planted.json"
    if truth.exists():
        return [tuple(p) for p in json.loads(truth.read_text())]
    originals = int(np.ceil(n * every / (every + 1)))
    batch = 500
    with ProcessPoolExecutor() as pool:
        futures = [
            pool.submit(_write_batch, str(folder), s, min(s + batch, originals), size, every, seed)
            for s in range(0, originals, batch)
        ]
        planted = [pair for f in futures for pair in f.result()]
    truth.write_text(json.dumps(planted))
    return planted


class TreeSampler:
    """Peak RSS of every process in the tree of ``pid``, sampled every ``interval`` seconds."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        import psutil

        self.root = psutil.Process(pid)
        self.interval = interval
        self.peaks: dict[int, tuple[str, int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                processes = [self.root, *self.root.children(recursive=True)]
            except psutil.Error:
                return
            for p in processes:
                try:
                    rss = p.memory_info().rss
                    name = self.peaks.get(p.pid, (None, 0))[0] or " ".join(p.cmdline()[:4])[-90:]
                except psutil.Error:
                    continue
                self.peaks[p.pid] = (name, max(rss, self.peaks.get(p.pid, ("", 0))[1]))
            self._stop.wait(self.interval)

    def stop(self) -> dict[int, tuple[str, int]]:
        self._stop.set()
        self._thread.join()
        return self.peaks


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def run_sampled(args: list[str], env: dict) -> tuple[str, float, dict[int, tuple[str, int]]]:
    """Run ``args`` to completion from the repository root, sampling its process tree's memory:
    its output, wall seconds and :class:`TreeSampler` peaks. Exit codes other than 0 and 3
    (duplicates found) raise."""
    started = time.perf_counter()
    process = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sampler = TreeSampler(process.pid)
    output, _ = process.communicate()
    wall = time.perf_counter() - started
    peaks = sampler.stop()
    if process.returncode not in (0, 3):
        raise RuntimeError(f"{' '.join(args)} failed ({process.returncode}):\n{output[-3000:]}")
    return output, wall, peaks


def run_command(command: str, folder: Path, work: Path, method: str, label: str, store: Path, extra: list[str]) -> dict:
    out = work / f"{label}-out"
    args = [
        str(Path(sys.executable).with_name("imgdedup")),
        command,
        str(folder),
        "--method",
        method,
        "--store",
        str(store),
        "--out",
        str(out),
        *extra,
    ]
    env = dict(os.environ, PREFECT_HOME=str(work / "prefect-home"), SENTRY_OPT_OUT="1")
    _, wall, peaks = run_sampled(args, env)
    summary = json.loads((out / "summary.json").read_text())
    return {"wall": wall, "seconds": summary["seconds"], "images": summary["images"], "peaks": peaks, "out": out}


def planted_found(out: Path, planted: list[tuple[str, str]]) -> tuple[int, int]:
    """Planted pairs that duplicates.json lists, and the other pairs it lists (false: the
    generated scenes are distinct)."""
    duplicates = json.loads((out / "duplicates.json").read_text())
    listed = {frozenset((a, d if isinstance(d, str) else d[0])) for a, found in duplicates.items() for d in found}
    truth = {frozenset(pair) for pair in planted}
    return len(listed & truth), len(listed - truth)


def report(
    label: str, result: dict, n: int, store: Path, planted: list[tuple[str, str]], full_wall: float | None
) -> None:
    stages = ", ".join(f"{k} {v:.2f}" for k, v in result["seconds"].items())
    print(f"{label}: wall {result['wall']:.1f} s, {n / result['wall']:.0f} images/s; stages (s): {stages}")
    if full_wall:
        print(f"  unchanged rerun: {100 * result['wall'] / full_wall:.1f} % of the full run's wall time")
    for pid, (name, rss) in sorted(result["peaks"].items(), key=lambda kv: -kv[1][1]):
        print(f"  peak RSS {rss / 2**20:7.0f} MiB  pid {pid}  {name}")
    found, false = planted_found(result["out"], planted)
    print(
        f"  store {folder_bytes(store) / 2**20:.1f} MiB; planted pairs found {found}/{len(planted)}, "
        f"other pairs {false}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--method", default="phash")
    parser.add_argument("--commands", default="find,run", help="comma-separated: find, run")
    parser.add_argument("--size", default="320x240")
    parser.add_argument("--every", type=int, default=10, help="one planted copy per this many originals")
    parser.add_argument("--rerun", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    work = args.workdir or Path(tempfile.gettempdir()) / f"imgdedup-bench-scale-{args.images}"
    folder = work / "photos"
    started = time.perf_counter()
    planted = generate(folder, args.images, size, args.every)
    n = sum(1 for _ in folder.rglob("*.jpg"))
    print(
        f"{n} JPEGs of {args.size} ({len(planted)} planted copies) in {folder} "
        f"({folder_bytes(folder) / 2**20:.0f} MiB; ready in {time.perf_counter() - started:.0f} s); "
        f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}"
    )
    for command in args.commands.split(","):
        label = f"{command}-{args.method}"
        store = work / f"{label}-store"
        subprocess.run(
            ["rm", "-rf", str(store), str(work / f"{label}-out"), str(work / f"{label}-rerun-out")], check=True
        )
        full = run_command(command, folder, work, args.method, label, store, [])
        report(f"{command} --method {args.method}", full, n, store, planted, None)
        if args.rerun:
            again = run_command(command, folder, work, args.method, f"{label}-rerun", store, [])
            report(f"{command} --method {args.method}, unchanged rerun", again, n, store, planted, full["wall"])
        print(f"  (load {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
