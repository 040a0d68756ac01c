"""Held-out precision and recall on real and generated images with hard negatives (#16).

Build the labelled set once (see :mod:`benchmarks.trust_set`), then score every method
and imagededup's PHash on it, per category, split and transform::

    python benchmarks/trust_set.py --folder /tmp/trust-set
    python benchmarks/bench_trust.py --folder /tmp/trust-set --work /tmp/trust-work

Every method runs ``find`` on the whole folder with one shared store (each image is
decoded and embedded once); the pairs of its clusters (what ``apply`` acts on) are
scored against the groups of ``labels.csv``, separately on the ``tune`` half (where
thresholds are chosen) and the ``held`` half (reported). imagededup is scored on the
pairs of its ``find_duplicates`` map. A pair across categories is a false pair of both.
``--sheet`` writes contact sheets of false pairs (``WORK/false-METHOD.png``) and of the held-out
true pairs it missed (``WORK/missed-METHOD.png``).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from imgdedup.config import load_config  # noqa: E402
from imgdedup.pipeline.inprocess import find_duplicates_in_folder  # noqa: E402


def read_labels(folder: Path) -> dict[str, dict]:
    with (folder / "labels.csv").open() as handle:
        return {row["path"].removeprefix("images/"): row for row in csv.DictReader(handle)}


def cluster_pairs_of(run: Path) -> tuple[set[frozenset], list[list[str]]]:
    document = json.loads((run / "clusters.json").read_text())
    clusters = [[m["path"] for m in c["members"]] for c in document["clusters"]]
    return {frozenset(p) for c in clusters for p in itertools.combinations(c, 2)}, clusters


def score(pairs: set[frozenset], labels: dict[str, dict], clusters: list[list[str]] | None = None) -> dict:
    """Per (category, split): precision, recall, true/false pairs; recall per variant; oversized clusters."""
    groups: dict[tuple, list[str]] = defaultdict(list)
    for path, row in labels.items():
        groups[(row["category"], row["group"])].append(path)
    truth = {frozenset(p) for members in groups.values() for p in itertools.combinations(members, 2)}
    out: dict = {}
    for key in sorted({(r["category"], r["split"]) for r in labels.values()}):
        inside = lambda path, key=key: (labels[path]["category"], labels[path]["split"]) == key  # noqa: E731
        found = {p for p in pairs if any(inside(x) for x in p)}
        true = {p for p in truth if all(inside(x) for x in p)}
        hits = found & truth
        out["/".join(key)] = {
            "precision": len(hits) / len(found) if found else 1.0,
            "recall": len(hits & true) / len(true) if true else 1.0,
            "found": len(found),
            "false": len(found - truth),
            "true": len(true),
        }
    variants: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for p in truth:
        a, b = sorted(p, key=lambda x: labels[x]["variant"] != "original")
        if labels[a]["split"] != "held":
            continue
        variant = f"{labels[a]['category']}:{labels[b]['variant'] if labels[a]['variant'] == 'original' else 'sibling'}"
        variants[variant][1] += 1
        variants[variant][0] += p in pairs
    out["held_recall_by_variant"] = {k: round(v[0] / v[1], 3) for k, v in sorted(variants.items())}
    if clusters is not None:
        size = {key: len(members) for key, members in groups.items()}
        out["oversized_clusters"] = sum(
            1 for c in clusters if len(c) > max(size[(labels[p]["category"], labels[p]["group"])] for p in c)
        )
        out["largest_cluster"] = max((len(c) for c in clusters), default=0)
    return out


def run_method(folder: Path, work: Path, method: str, **settings) -> tuple[set[frozenset], list[list[str]], dict]:
    config = load_config(store=str(work / "store"), method=method, n_workers=1, **settings)
    started = time.perf_counter()
    summary = find_duplicates_in_folder(folder / "images", config, work / f"run-{method}")
    seconds = time.perf_counter() - started
    pairs, clusters = cluster_pairs_of(work / f"run-{method}")
    return (
        pairs,
        clusters,
        {
            "seconds": round(seconds, 1),
            # from the unrounded time: a method that reuses the store's hashes can finish in under 0.05 s
            "images_per_s": round(summary.images / seconds, 1),
            "stages": {k: round(v, 2) for k, v in summary.seconds.items()},
        },
    )


def imagededup_phash(folder: Path) -> set[frozenset]:
    import logging

    from imagededup.methods import PHash

    logging.getLogger("imagededup").setLevel(logging.ERROR)
    found = PHash(verbose=False).find_duplicates(
        image_dir=str(folder / "images"), max_distance_threshold=10, recursive=True
    )
    return {frozenset((a, b)) for a, dups in found.items() for b in dups}


def fastdup_scores(python: str, folder: Path, work: Path, labels: dict) -> dict:
    """fastdup's components on the same images (``peer_fastdup.py`` under ``python``), scored like the rest."""
    import subprocess

    out = work / "fastdup-clusters.json"
    env = {**os.environ, "SENTRY_OPT_OUT": "1"}
    script = Path(__file__).with_name("peer_fastdup.py")
    command = [
        python,
        str(script),
        "--images",
        str(folder / "images"),
        "--work",
        str(work / "fastdup"),
        "--out",
        str(out),
    ]
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    found = json.loads(out.read_text())
    clusters = found["clusters"]
    pairs = {frozenset(p) for c in clusters for p in itertools.combinations(c, 2)}
    return {
        **score(pairs, labels, clusters),
        "seconds": found["seconds"],
        "images_per_s": round(len(labels) / found["seconds"], 1),
        "skipped": found["skipped"],
    }


def missed_pairs(pairs: set[frozenset], labels: dict[str, dict]) -> list[frozenset]:
    """The true pairs of the held-out half that ``pairs`` lacks (what the misses sheet shows)."""
    groups: dict[tuple, list[str]] = defaultdict(list)
    for path, row in labels.items():
        if row["split"] == "held":
            groups[(row["category"], row["group"])].append(path)
    return [
        frozenset(p)
        for members in groups.values()
        for p in itertools.combinations(members, 2)
        if frozenset(p) not in pairs
    ]


def contact_sheet(pairs: list[frozenset], root: Path, path: Path, limit: int = 40, side: int = 110) -> None:
    """Each false pair side by side, with both file names, as one PNG."""
    from PIL import Image, ImageDraw

    pairs = sorted(pairs, key=sorted)[:limit]
    sheet = Image.new("RGB", (2 * (2 * side + 20), max(1, (len(pairs) + 1) // 2) * (side + 28)), "white")
    draw = ImageDraw.Draw(sheet)
    for k, pair in enumerate(pairs):
        x0, y0 = (k % 2) * (2 * side + 20), (k // 2) * (side + 28)
        for n, name in enumerate(sorted(pair)):
            with Image.open(root / name) as image:
                image = image.convert("RGBA")
                image.thumbnail((side, side))
                tile = Image.new("RGBA", (side, side), (200, 200, 200, 255))
                tile.alpha_composite(image, ((side - image.width) // 2, (side - image.height) // 2))
            sheet.paste(tile.convert("RGB"), (x0 + n * side, y0))
            draw.text((x0 + n * side, y0 + side + 2 + 12 * n), name.split("/")[-1][:34], fill="black")
    sheet.save(path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folder", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--methods", default="hybrid,phash")
    parser.add_argument(
        "--no-verify", action="store_true", help="run the methods without verification (the old behaviour)"
    )
    parser.add_argument("--peer", action="store_true", help="also score imagededup's PHash")
    parser.add_argument(
        "--fastdup",
        metavar="PYTHON",
        help="also score fastdup's components (0.9), run by this Python (peer_fastdup.py)",
    )
    parser.add_argument("--sheet", action="store_true")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a config setting (YAML value)")
    args = parser.parse_args(argv)
    labels = read_labels(args.folder)
    results = {}
    for method in [m for m in args.methods.split(",") if m]:
        import yaml

        extra = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)}
        pairs, clusters, timing = run_method(args.folder, args.work, method, verify=not args.no_verify, **extra)
        name = f"imgdedup {method}{' (no verify)' if args.no_verify else ''}"
        results[name] = {
            **score(pairs, labels, clusters),
            **timing,
        }
        if args.sheet:
            false = [p for p in pairs if len({(labels[x]["category"], labels[x]["group"]) for x in p}) > 1]
            contact_sheet(false, args.folder / "images", args.work / f"false-{method}.png")
            contact_sheet(missed_pairs(pairs, labels), args.folder / "images", args.work / f"missed-{method}.png")
    if args.peer:
        results["imagededup PHash"] = score(imagededup_phash(args.folder), labels)
    if args.fastdup:
        results["fastdup (components, 0.9)"] = fastdup_scores(args.fastdup, args.folder, args.work, labels)
    args.work.mkdir(parents=True, exist_ok=True)
    (args.work / "bench_trust.json").write_text(json.dumps(results, indent=1))
    for name, result in results.items():
        print(
            f"== {name}"
            + (f"  ({result['seconds']} s, {result['images_per_s']} images/s)" if "seconds" in result else "")
        )
        for key, value in result.items():
            if isinstance(value, dict) and "precision" in value:
                print(
                    f"  {key:22s} P {value['precision']:.3f}  R {value['recall']:.3f}  found {value['found']:5d}  false {value['false']:4d}"
                )
        if "largest_cluster" in result:
            print(
                f"  largest cluster {result['largest_cluster']}, clusters larger than their true group {result['oversized_clusters']}"
            )
        print("  held recall by variant:", ", ".join(f"{k} {v}" for k, v in result["held_recall_by_variant"].items()))


if __name__ == "__main__":
    main()
