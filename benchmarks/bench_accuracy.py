"""Accuracy of every method on the transformed-copies benchmark, overall and per transform.

Generates the benchmark folder if it is missing (100 originals cut from the photographs bundled
with scikit-learn and scikit-image, 17 transformed copies of each), runs `find` once per method on
one shared store (each image is decoded and embedded once), and scores every run with imagededup's
pairwise definitions::

    python benchmarks/bench_accuracy.py --folder /tmp/tc-bench --originals 100 --size 640 480
    python benchmarks/bench_accuracy.py --folder /tmp/tc-bench-2 --seed 1   # a second layout, to check the choice

``--sweep`` also prints precision/recall/F1 over a grid of thresholds (re-using the store: no
decoding), which is how the defaults were chosen.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

try:
    import imgdedup  # noqa: F401
except ImportError:  # running from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.transforms import make_transformed_copies  # noqa: E402
from imgdedup.compat.evaluation import score_run  # noqa: E402
from imgdedup.config import load_config  # noqa: E402
from imgdedup.pipeline.inprocess import find_duplicates_in_folder  # noqa: E402

METHODS = ("phash", "dhash", "ahash", "whash", "cnn", "hybrid")


def clusters_as_duplicates(run: Path) -> Path:
    """``clusters.json`` as an imagededup map: every member a duplicate of every other (what ``apply`` acts on)."""
    document = json.loads((run / "clusters.json").read_text())
    mapping = {}
    for cluster in document["clusters"]:
        paths = [m["path"] for m in cluster["members"]]
        for path in paths:
            mapping[path] = [p for p in paths if p != path]
    path = run / "clusters-as-duplicates.json"
    path.write_text(json.dumps(mapping))
    return path


def run_and_score(folder: Path, work: Path, name: str, **settings) -> tuple[dict, dict, float]:
    """Scores of the direct pairs (``duplicates.json``) and of the clusters, and the run's seconds."""
    config = load_config(store=str(work / "store"), **settings)
    started = time.perf_counter()
    find_duplicates_in_folder(folder, config, work / name)
    seconds = time.perf_counter() - started
    direct = score_run(folder, work / name / "duplicates.json")
    return direct, score_run(folder, clusters_as_duplicates(work / name)), seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()) / "imgdedup-tc-bench")
    parser.add_argument("--originals", type=int, default=100)
    parser.add_argument("--size", type=int, nargs=2, default=(640, 480), metavar=("W", "H"))
    parser.add_argument("--seed", type=int, default=0, help="benchmark layout (other crops of the photographs)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--sweep", action="store_true")
    args = parser.parse_args(argv)

    if not (args.folder / "ground_truth.json").exists():
        make_transformed_copies(args.folder, n_originals=args.originals, size=tuple(args.size), seed=args.seed)
    work = Path(tempfile.mkdtemp(prefix="imgdedup-bench-accuracy-"))
    scores = {}
    print(f"benchmark: {args.folder}")
    print(
        f"{'method':<10} {'precision':>9} {'recall':>7} {'F1':>6}   clusters: {'P':>6} {'R':>6} {'F1':>6} {'seconds':>8}"
    )
    for method in args.methods:
        result, clustered, seconds = run_and_score(args.folder, work, method, method=method)
        scores[method] = result
        o, c = result["overall"], clustered["overall"]
        print(
            f"{method:<10} {o['precision']:9.4f} {o['recall']:7.4f} {o['f1']:6.4f}             "
            f"{c['precision']:6.4f} {c['recall']:6.4f} {c['f1']:6.4f} {seconds:8.1f}"
        )
    labels = sorted(next(iter(scores.values()))["by_label"])
    print("\nrecall per transform")
    print(f"{'transform':<16}" + "".join(f"{m:>8}" for m in args.methods))
    for label in labels:
        print(f"{label:<16}" + "".join(f"{scores[m]['by_label'][label]['recall']:8.3f}" for m in args.methods))
    if args.sweep:
        print("\nsweep (no decoding: the store holds every hash and embedding)")
        grid = [("phash", {"method": "phash", "threshold": t}) for t in (6, 8, 10, 12, 14)]
        grid += [("cnn", {"method": "cnn", "min_similarity": s}) for s in (0.88, 0.9, 0.92, 0.94, 0.96)]
        grid += [
            ("hybrid", {"method": "hybrid", "min_similarity": s, "hybrid_floor": f, "threshold": t})
            for s in (0.96, 0.975, 0.99)
            for f in (0.85, 0.875, 0.9)
            for t in (12, 15, 18)
        ]
        for number, (method, settings) in enumerate(grid):
            result, clustered, _ = run_and_score(args.folder, work, f"sweep-{number}", **settings)
            o, c = result["overall"], clustered["overall"]
            shown = ", ".join(f"{k}={v}" for k, v in settings.items() if k != "method")
            print(
                f"{method:<7} {shown:<55} P {o['precision']:.4f} R {o['recall']:.4f} F1 {o['f1']:.4f}"
                f"  clusters P {c['precision']:.4f} R {c['recall']:.4f} F1 {c['f1']:.4f}"
            )


if __name__ == "__main__":
    main()
