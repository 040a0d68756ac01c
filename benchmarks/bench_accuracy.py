"""Accuracy of every method on the transformed-copies benchmark, overall and per transform.

Generates the benchmark folder if it is missing (100 originals cut from the photographs bundled
with scikit-learn and scikit-image, 17 transformed copies of each), runs `find` once per method on
one shared store (each image is decoded and embedded once), and scores every run with imagededup's
pairwise definitions::

    python benchmarks/bench_accuracy.py --folder /tmp/tc-bench --originals 100 --size 640 480

``--sweep`` also prints precision/recall/F1 over a grid of thresholds (re-using the store: no
decoding), which is how the defaults were chosen.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

try:
    import imgdedup  # noqa: F401
except ImportError:  # running from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from imgdedup.config import load_config  # noqa: E402
from imgdedup.evaluation import score_run  # noqa: E402
from imgdedup.pipeline import find_duplicates_in_folder  # noqa: E402
from imgdedup.transforms import make_transformed_copies  # noqa: E402

METHODS = ("phash", "dhash", "ahash", "whash", "cnn", "hybrid")


def run_and_score(folder: Path, work: Path, name: str, **settings) -> tuple[dict, float]:
    config = load_config(store=str(work / "store"), **settings)
    started = time.perf_counter()
    find_duplicates_in_folder(folder, config, work / name)
    seconds = time.perf_counter() - started
    return score_run(folder, work / name / "duplicates.json"), seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()) / "imgdedup-tc-bench")
    parser.add_argument("--originals", type=int, default=100)
    parser.add_argument("--size", type=int, nargs=2, default=(640, 480), metavar=("W", "H"))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--sweep", action="store_true")
    args = parser.parse_args(argv)

    if not (args.folder / "ground_truth.json").exists():
        make_transformed_copies(args.folder, n_originals=args.originals, size=tuple(args.size))
    work = Path(tempfile.mkdtemp(prefix="imgdedup-bench-accuracy-"))
    scores = {}
    print(f"benchmark: {args.folder}")
    print(f"{'method':<10} {'precision':>9} {'recall':>7} {'F1':>6} {'seconds':>8}")
    for method in args.methods:
        result, seconds = run_and_score(args.folder, work, method, method=method)
        scores[method] = result
        o = result["overall"]
        print(f"{method:<10} {o['precision']:9.4f} {o['recall']:7.4f} {o['f1']:6.4f} {seconds:8.1f}")
    labels = sorted(next(iter(scores.values()))["by_label"])
    print("\nrecall per transform")
    print(f"{'transform':<16}" + "".join(f"{m:>8}" for m in args.methods))
    for label in labels:
        print(f"{label:<16}" + "".join(f"{scores[m]['by_label'][label]['recall']:8.3f}" for m in args.methods))
    if args.sweep:
        print("\nsweep (no decoding: the store holds every hash and embedding)")
        grid = [("phash", {"method": "phash", "threshold": t}) for t in (6, 8, 10, 12, 14)]
        grid += [("cnn", {"method": "cnn", "min_similarity": s}) for s in (0.8, 0.85, 0.88, 0.9, 0.92, 0.95)]
        grid += [
            ("hybrid", {"method": "hybrid", "min_similarity": s, "hybrid_floor": f, "threshold": t})
            for s in (0.85, 0.88, 0.9, 0.92) for f in (0.5, 0.6, 0.7, 0.75) for t in (10, 12, 14)
        ]
        for number, (method, settings) in enumerate(grid):
            result, _ = run_and_score(args.folder, work, f"sweep-{number}", **settings)
            o = result["overall"]
            shown = ", ".join(f"{k}={v}" for k, v in settings.items() if k != "method")
            print(f"{method:<7} {shown:<55} P {o['precision']:.4f} R {o['recall']:.4f} F1 {o['f1']:.4f}")


if __name__ == "__main__":
    main()
