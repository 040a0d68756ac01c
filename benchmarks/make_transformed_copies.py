"""Write a transformed-copies benchmark folder, or score a run against one.

Generate 100 originals cut from the photographs bundled with scikit-learn (and
scikit-image, if installed), each with one copy per transform of
``benchmarks.transforms.TRANSFORMS``, plus ``ground_truth.json``, ``pairs.csv``
and ``sources.csv``::

    python benchmarks/make_transformed_copies.py OUT_DIR --originals 100

2-megapixel variant (200 originals of 1632 x 1224 and the 10 size-preserving
copies of each: 2200 JPEGs of about 2 MP)::

    python benchmarks/make_transformed_copies.py OUT_DIR --originals 200 \\
        --size 1632 1224 --size-preserving

Score a run that scanned OUT_DIR (its ``duplicates.json`` maps paths relative
to OUT_DIR to lists of such paths): pairwise precision, recall and F1 overall,
then recall per transform (``sibling``: two copies of one original)::

    python benchmarks/make_transformed_copies.py --score OUT_DIR RUN/duplicates.json

Run from the repository root (or with imgdedup installed).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

try:
    import imgdedup  # noqa: F401
except ImportError:  # running from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.transforms import (
    SIBLING_LABEL,
    SIZE_PRESERVING,
    TRANSFORMS,
    available_photos,
    make_transformed_copies,
)
from imgdedup.compat.evaluation import format_score_table, score_run  # noqa: E402


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"transforms: {', '.join(TRANSFORMS)}",
    )
    parser.add_argument("out_dir", nargs="?", type=Path, help="folder to write")
    parser.add_argument("--originals", type=int, default=100, help="number of originals (100)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the crop layout (0)")
    parser.add_argument(
        "--size",
        type=int,
        nargs=2,
        metavar=("WIDTH", "HEIGHT"),
        help="resize every original to this size (default: native crop size)",
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--transforms", help="comma-separated transform names (default: all)")
    group.add_argument(
        "--size-preserving",
        action="store_true",
        help=f"only the transforms that keep the size: {', '.join(SIZE_PRESERVING)}",
    )
    parser.add_argument("--photos", help="comma-separated photograph names (default: all available)")
    parser.add_argument("--overwrite", action="store_true", help="replace a benchmark already in OUT_DIR")
    parser.add_argument(
        "--score",
        nargs=2,
        type=Path,
        metavar=("OUT_DIR", "DUPLICATES_JSON"),
        help="score a run's duplicates.json against the benchmark in OUT_DIR",
    )
    parser.add_argument("--json", action="store_true", help="with --score: print JSON instead")
    return parser


def _generate(args: argparse.Namespace) -> None:
    if args.size_preserving:
        transforms = list(SIZE_PRESERVING)
    elif args.transforms is not None:
        transforms = [t for t in args.transforms.split(",") if t]
    else:
        transforms = None
    photos = args.photos.split(",") if args.photos else available_photos()
    start = time.perf_counter()
    truth = make_transformed_copies(
        args.out_dir,
        n_originals=args.originals,
        seed=args.seed,
        size=tuple(args.size) if args.size else None,
        transforms=transforms,
        photos=photos,
        overwrite=args.overwrite,
    )
    n_originals = len(truth.originals)
    n_files = len(truth.duplicates)
    labels = [t for t in dict.fromkeys(label for _, _, label in truth.pairs) if t != SIBLING_LABEL]
    print(f"wrote {n_files} JPEGs to {args.out_dir} in {time.perf_counter() - start:.1f} s:")
    print(f"  originals/  {n_originals} originals cut from: {', '.join(photos)}")
    print(f"  copies/     {n_files - n_originals} copies ({', '.join(labels) or 'no transforms'})")
    print(f"  ground_truth.json, pairs.csv ({len(truth.pairs)} positive pairs), sources.csv")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.score:
        if args.out_dir is not None:
            parser.error("give either OUT_DIR (generate) or --score OUT_DIR DUPLICATES_JSON")
        scores = score_run(*args.score)
        print(json.dumps(scores, indent=1) if args.json else format_score_table(scores))
        return 0
    if args.out_dir is None:
        parser.error("OUT_DIR is required (or --score OUT_DIR DUPLICATES_JSON)")
    try:
        _generate(args)
    except (ValueError, FileExistsError, FileNotFoundError) as exc:
        parser.error(str(exc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
