"""All-pairs Hamming-radius search: imgdedup against scikit-learn and imagededup.

Run from the repository root::

    python benchmarks/bench_search.py --sizes 10000 100000 1000000

(add ``10000000`` to ``--sizes`` for the 10M run, about 8 minutes on 2 cores).

For each size N it generates N random 64-bit hashes in which ``--planted``
pairs are near-duplicates at known distances ``0 .. radius`` (cycling), then
times each method at ``--radius`` (default 10) in a fresh subprocess, so the
peak RSS reported is that method's own (the worker's peak, or that of the
largest process it started, whichever is larger; it includes the input
hashes and the interpreter, about 40 MB). Seconds cover the search only:
imports and input conversion (unpacking bits, formatting hex strings) are
done before the clock starts. Methods:

``imgdedup``
    :func:`imgdedup.search.hamming.hamming_pairs`.
``sklearn-balltree``
    ``BallTree(bits, metric="hamming").query_radius(bits, r=radius / 64)`` on
    the hashes unpacked to 64 columns (index build included in the time).
``imagededup``
    ``PHash().find_duplicates(encoding_map=..., max_distance_threshold=radius,
    search_method="brute_force_cython")`` on 16-digit hex strings.

Peers run only up to ``--peer-max-n`` hashes (their cost is quadratic with a
large constant); the table says when one was skipped. Each result is checked:
how many planted pairs it found, and whether, for ``--sample`` random rows,
its pairs equal a direct popcount of that row against every hash.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("imgdedup", "sklearn-balltree", "imagededup")


# --------------------------------------------------------------------------- #
# Data
# --------------------------------------------------------------------------- #


def make_hashes(n: int, planted: int, radius: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random hashes with ``planted`` pairs (src, dst, distance): hashes[dst] = hashes[src] with ``distance`` bits flipped."""
    rng = np.random.default_rng(seed)
    hashes = rng.integers(0, 2**64, n, dtype=np.uint64, endpoint=False)
    planted = min(planted, n // 2)
    ends = rng.choice(n, size=2 * planted, replace=False)
    src, dst = ends[:planted], ends[planted:]
    distance = np.arange(planted) % (radius + 1)
    # The first `distance` columns of a random permutation of 0..63 are the bits to flip.
    bit_order = np.argsort(rng.random((planted, 64)), axis=1)
    chosen = np.arange(64)[None, :] < distance[:, None]
    weights = np.left_shift(np.uint64(1), bit_order.astype(np.uint64))
    masks = np.bitwise_or.reduce(np.where(chosen, weights, np.uint64(0)), axis=1)
    hashes[dst] = hashes[src] ^ masks
    return hashes, np.stack([src, dst, distance], axis=1)


# --------------------------------------------------------------------------- #
# Methods (run inside the worker subprocess)
# --------------------------------------------------------------------------- #


# Each preparer does its imports and input conversion untimed, then returns
# the timed search: a function of nothing that returns (P, 2) pairs i < j.


def prepare_imgdedup(hashes: np.ndarray, radius: int):
    sys.path.insert(0, str(ROOT))
    from imgdedup.search.hamming import hamming_pairs

    def search() -> np.ndarray:
        i, j, _ = hamming_pairs(hashes, radius)
        return np.stack([i, j], axis=1)

    return search


def prepare_balltree(hashes: np.ndarray, radius: int):
    from sklearn.neighbors import BallTree

    bits = np.unpackbits(hashes.astype(">u8").view(np.uint8).reshape(-1, 8), axis=1).astype(np.float64)

    def search() -> np.ndarray:
        tree = BallTree(bits, metric="hamming")
        # Distances are multiples of 1/64; half a step of slack avoids float rounding at the boundary.
        neighbours = tree.query_radius(bits, r=(radius + 0.5) / 64)
        rows = np.repeat(np.arange(len(neighbours)), [len(x) for x in neighbours])
        cols = np.concatenate(neighbours)
        keep = rows < cols
        return np.stack([rows[keep], cols[keep]], axis=1)

    return search


def prepare_imagededup(hashes: np.ndarray, radius: int):
    import logging

    from imagededup.methods import PHash

    logging.disable(logging.INFO)  # its per-call progress lines would break the table
    encoding_map = {str(k): "%016x" % int(h) for k, h in enumerate(hashes)}
    phash = PHash(verbose=False)

    def search() -> np.ndarray:
        with warnings.catch_warnings():
            # It warns that num_enc_workers is unused when encodings are given.
            warnings.simplefilter("ignore")
            found = phash.find_duplicates(
                encoding_map=encoding_map, max_distance_threshold=radius, search_method="brute_force_cython"
            )
        pairs = {(min(int(a), int(b)), max(int(a), int(b))) for a, dups in found.items() for b in dups}
        return np.array(sorted(pairs), dtype=np.int64).reshape(-1, 2)

    return search


PREPARERS = {"imgdedup": prepare_imgdedup, "sklearn-balltree": prepare_balltree, "imagededup": prepare_imagededup}


def worker(method: str, data: Path, radius: int, out: Path) -> None:
    search = PREPARERS[method](np.load(data), radius)
    started = time.perf_counter()
    pairs = search()
    seconds = time.perf_counter() - started
    rss_kb = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    )
    np.save(out.with_suffix(".npy"), pairs.astype(np.int64))
    out.write_text(json.dumps({"seconds": seconds, "peak_rss_mb": rss_kb / 1024}))


# --------------------------------------------------------------------------- #
# Checks and driver
# --------------------------------------------------------------------------- #


def planted_found(pairs: np.ndarray, planted: np.ndarray, n: int) -> int:
    got = set((pairs[:, 0] * n + pairs[:, 1]).tolist())
    lo, hi = np.minimum(planted[:, 0], planted[:, 1]), np.maximum(planted[:, 0], planted[:, 1])
    return sum(1 for key in (lo * n + hi).tolist() if key in got)


def agrees_on_sample(pairs: np.ndarray, hashes: np.ndarray, radius: int, rows: np.ndarray) -> bool:
    """For each sampled row: the method's partners equal those of a direct popcount against every hash."""
    for row in rows.tolist():
        truth = np.flatnonzero(np.bitwise_count(hashes[row] ^ hashes) <= radius)
        truth = truth[truth != row]
        mine = np.concatenate([pairs[pairs[:, 0] == row, 1], pairs[pairs[:, 1] == row, 0]])
        if not np.array_equal(np.sort(mine), truth):
            return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--radius", type=int, default=10)
    parser.add_argument("--planted", type=int, default=1000, help="near-duplicate pairs planted per size (at most N/2)")
    parser.add_argument("--peer-max-n", type=int, default=20_000, help="largest N the peer methods run on")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--sample", type=int, default=300, help="rows checked against direct popcount")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds before a method is stopped")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--worker", nargs=4, metavar=("METHOD", "DATA", "RADIUS", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        method, data, radius, out = args.worker
        worker(method, Path(data), int(radius), Path(out))
        return

    header = f"{'N':>10}  {'method':<17} {'seconds':>9} {'peak RSS MB':>11} {'planted found':>15} {'pairs':>9}  sample agrees"
    print(f"radius {args.radius}, {os.cpu_count()} CPUs, numpy {np.__version__}")
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
        for n in args.sizes:
            hashes, planted = make_hashes(n, args.planted, args.radius, args.seed + n)
            data = Path(tmp) / f"hashes-{n}.npy"
            np.save(data, hashes)
            rows = np.random.default_rng(args.seed).choice(n, size=min(args.sample, n), replace=False)
            for method in args.methods:
                label = f"{n:>10}  {method:<17}"
                if method != "imgdedup" and n > args.peer_max_n:
                    print(f"{label} {'skipped: N > --peer-max-n=' + str(args.peer_max_n):>48}", flush=True)
                    continue
                out = Path(tmp) / f"{method}-{n}.json"
                cmd = [
                    sys.executable,
                    str(Path(__file__).resolve()),
                    "--worker",
                    method,
                    str(data),
                    str(args.radius),
                    str(out),
                ]
                try:
                    subprocess.run(cmd, check=True, timeout=args.timeout)
                except subprocess.TimeoutExpired:
                    print(f"{label} {'timed out after ' + str(args.timeout) + ' s':>48}", flush=True)
                    continue
                except subprocess.CalledProcessError as exc:
                    print(f"{label} {'failed with exit code ' + str(exc.returncode):>48}", flush=True)
                    continue
                stats = json.loads(out.read_text())
                pairs = np.load(out.with_suffix(".npy"))
                found = planted_found(pairs, planted, n)
                agrees = "yes" if agrees_on_sample(pairs, hashes, args.radius, rows) else "NO"
                print(
                    f"{label} {stats['seconds']:>9.2f} {stats['peak_rss_mb']:>11.0f} "
                    f"{f'{found}/{len(planted)}':>15} {len(pairs):>9}  {agrees}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
