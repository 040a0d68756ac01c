"""Exact all-pairs cosine search over L2-normalised embeddings, against scikit-learn and imagededup.

Random unit vectors (D = 1280, the default model's width) with planted near-duplicates at similarity
0.92-0.99; every method runs in a fresh process so its peak RSS is its own. ``imgdedup`` filters
with bfloat16 products where the CPU runs them natively and verifies in float32;
``imgdedup-fp32`` forces the float32 filter (the same pairs, the cost of CPUs without BF16)::

    python benchmarks/bench_cosine.py --sizes 10000 100000 --peer-max-n 20000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

try:
    import imgdedup  # noqa: F401
except ImportError:  # running from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

THRESHOLD = 0.9


def make_vectors(n: int, dim: int, planted: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    a = rng.choice(n, size=planted, replace=False)
    b = (a + n // 2) % n
    target = rng.uniform(0.92, 0.99, size=planted).astype(np.float32)
    noise = rng.standard_normal((planted, dim), dtype=np.float32)
    noise -= (noise * x[a]).sum(axis=1, keepdims=True) * x[a]
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    x[b] = target[:, None] * x[a] + np.sqrt(1 - target[:, None] ** 2) * noise
    return x.astype(np.float16), np.stack([np.minimum(a, b), np.maximum(a, b)], axis=1)


def run_method(method: str, n: int, dim: int, planted: int) -> dict:
    x, pairs = make_vectors(n, dim, planted)
    started = time.perf_counter()
    if method in ("imgdedup", "imgdedup-fp32"):
        import torch

        from imgdedup.search.cosine import cosine_pairs

        i, j, _ = cosine_pairs(x, THRESHOLD, dtype=torch.float32 if method == "imgdedup-fp32" else None)
    elif method == "sklearn-radius":
        from sklearn.neighbors import NearestNeighbors

        nn = NearestNeighbors(metric="cosine", algorithm="brute").fit(x.astype(np.float32))
        _, neighbours = nn.radius_neighbors(x.astype(np.float32), radius=1 - THRESHOLD)
        i = np.concatenate([np.full(len(v), k) for k, v in enumerate(neighbours)])
        j = np.concatenate(neighbours)
        keep = i < j
        i, j = i[keep], j[keep]
    else:  # imagededup's own routine, as its CNN.find_duplicates calls it
        from imagededup.handlers.search.retrieval import get_cosine_similarity

        sims = get_cosine_similarity(x.astype(np.float32), verbose=False)
        i, j = np.nonzero(np.triu(sims >= THRESHOLD, 1))
    seconds = time.perf_counter() - started
    found = {(int(a), int(b)) for a, b in zip(i, j)}
    return {
        "seconds": seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "planted_found": sum((int(a), int(b)) in found for a, b in pairs),
        "pairs": len(found),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--dim", type=int, default=1280)
    parser.add_argument("--planted", type=int, default=1000)
    parser.add_argument("--peer-max-n", type=int, default=20_000)
    parser.add_argument("--one", nargs=2, metavar=("METHOD", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(run_method(args.one[0], int(args.one[1]), args.dim, args.planted)))
        return
    from imgdedup.search.cosine import filter_dtype

    print(f"imgdedup filter on this CPU: {filter_dtype()}")
    print(f"{'N':>8}  {'method':<15} {'seconds':>8} {'peak RSS MB':>11} {'planted found':>14}")
    for n in args.sizes:
        for method in ("imgdedup", "imgdedup-fp32", "sklearn-radius", "imagededup"):
            if not method.startswith("imgdedup") and n > args.peer_max_n:
                print(f"{n:>8}  {method:<15} skipped: N > --peer-max-n={args.peer_max_n}")
                continue
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--one",
                    method,
                    str(n),
                    "--dim",
                    str(args.dim),
                    "--planted",
                    str(args.planted),
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            r = json.loads(out.strip().splitlines()[-1])
            print(
                f"{n:>8}  {method:<15} {r['seconds']:8.1f} {r['peak_rss_mb']:11.0f} {r['planted_found']:>7}/{args.planted}"
            )


if __name__ == "__main__":
    main()
