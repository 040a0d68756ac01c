"""Choose the candidate reach and verification thresholds on the TUNING half of the trust set.

Needs a store filled by one ``bench_trust.py`` run (embeddings and hashes of every image)::

    python benchmarks/tune_trust.py --folder /tmp/trust-set --work /tmp/trust-work

For every pair of images with cosine >= 0.80 or trimmed hash distance <= 20 it computes
every verification score once (``WORK/pair-scores.npz``), then prints pairwise
precision/recall of the hybrid candidate rule followed by verification, for a grid of
settings, on the tune half only. Pairs are direct pairs (before clustering).
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_trust import read_labels  # noqa: E402
from imgdedup.imaging.describe import describe_image  # noqa: E402
from imgdedup.search import verify as v  # noqa: E402
from imgdedup.storage.store import STATUS_OK, Store  # noqa: E402

FIELDS = (
    "cosine",
    "near",
    "low",
    "pixdiff",
    "aligned",
    "colour",
    "mean_colour",
    "grey",
    "inliers",
    "registered",
    "overlap",
    "registered_colour",
    "fine",
    "blocks",
    "contrast_ratio",
    "chroma_ratio",
    "contained",
    "rblocks",
)


def all_scores(a, b) -> list[float]:
    low = a.low_information or b.low_information
    pixdiff = float(np.abs(a.pixels.astype(np.int16) - b.pixels.astype(np.int16)).mean())
    direct, mirrored = float(a.grey.ravel() @ b.grey.ravel()), float(a.grey.ravel() @ b.grey[:, ::-1].ravel())
    flip = mirrored > direct
    grey = min(a.colourfulness, b.colourfulness) < v.GREY
    colour = v.cosine(a.chroma, b.chroma[:, :, ::-1] if flip else b.chroma)
    mean_colour = v.cosine(a.chroma.mean(axis=(1, 2)), b.chroma.mean(axis=(1, 2)))
    transform, inliers = v.keypoint_transform(a.points, a.descriptors, b.points, b.descriptors)
    registered, overlap, share_b, rcolour, rblocks = (
        v.registered_correlation(a, b, transform)[:5]
        if transform is not None and inliers >= 6
        else (0.0, 0.0, 0.0, 0.0, 99.0)
    )
    fine = float(a.fine.ravel() @ (b.fine[:, ::-1] if flip else b.fine).ravel())
    pixmax = float(np.abs(a.pixels.astype(np.int16) - b.pixels.astype(np.int16)).max())
    pixdiff = pixdiff if pixmax <= v.MAX_PIXEL_DELTA else 99.0
    blocks = v.worst_block(a.fine, b.fine[:, ::-1] if flip else b.fine, block=6)
    contrast = max(a.contrast, b.contrast) / max(min(a.contrast, b.contrast), 1e-6)
    chroma_ratio = max(a.chroma_level, b.chroma_level) / max(min(a.chroma_level, b.chroma_level), 1e-6)
    return [
        low,
        pixdiff,
        max(direct, mirrored),
        colour,
        mean_colour,
        grey,
        inliers,
        registered,
        overlap,
        rcolour,
        fine,
        blocks,
        contrast,
        chroma_ratio,
        max(overlap, share_b),
        min(rblocks, 99.0),
    ]


def compute(folder: Path, work: Path) -> dict:
    cache = work / "pair-scores.npz"
    if cache.exists():
        return dict(np.load(cache, allow_pickle=True))
    store = Store.open(work / "store")
    manifest = store.load_manifest()
    ok = np.flatnonzero(manifest.status == STATUS_OK)
    ids = [manifest.ids[k] for k in ok]
    rows = manifest.row[ok]
    emb = store.read_rows("embeddings", rows).astype(np.float32)
    ph, dh = store.read_rows("trimmed_phash", rows), store.read_rows("trimmed_dhash", rows)
    cos = emb @ emb.T
    near = np.minimum(np.bitwise_count(ph[:, None] ^ ph[None]), np.bitwise_count(dh[:, None] ^ dh[None]))
    i, j = np.nonzero(np.triu((cos >= 0.80) | (near <= 20), 1))
    evidence = {}
    for k in np.unique(np.concatenate([i, j])).tolist():
        evidence[k] = describe_image((folder / "images" / ids[k]).read_bytes())
    scores = np.asarray(
        [all_scores(evidence[a], evidence[b]) for a, b in zip(i.tolist(), j.tolist())], dtype=np.float32
    )
    result = {
        "ids": np.asarray(ids),
        "i": i,
        "j": j,
        "cosine": cos[i, j],
        "near": near[i, j].astype(np.float32),
        **{name: scores[:, k] for k, name in enumerate(FIELDS[2:])},
    }
    np.savez(cache, **result)
    return result


def verdicts(d: dict, aligned: float, colour: float, inliers: int, registered: float, pixel: float = 1.5) -> np.ndarray:
    grey = d["grey"] > 0.5
    colour_ok = grey | (d["colour"] >= colour)
    mean_ok = grey | (d["registered_colour"] >= colour)
    structural = (d["aligned"] >= aligned) & colour_ok
    keypoints = (d["inliers"] >= inliers) & (d["registered"] >= registered) & (d["overlap"] >= v.MIN_OVERLAP) & mean_ok
    return np.where(d["low"] > 0.5, d["pixdiff"] <= pixel, structural | keypoints)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folder", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--split", default="tune")
    args = parser.parse_args(argv)
    labels = read_labels(args.folder)
    d = compute(args.folder, args.work)
    ids = d["ids"].tolist()
    group = np.asarray([f"{labels[p]['category']}/{labels[p]['group']}" for p in ids])
    category = np.asarray([labels[p]["category"] for p in ids])
    split = np.asarray([labels[p]["split"] for p in ids])
    i, j = d["i"], d["j"]
    true = group[i] == group[j]
    in_split = (split[i] == args.split) | (split[j] == args.split)
    total = {}
    for c in sorted(set(category)):
        members = [(g, s) for g, s, cc in zip(group, split, category) if cc == c and s == args.split]
        sizes = {}
        for g, _ in members:
            sizes[g] = sizes.get(g, 0) + 1
        total[c] = sum(n * (n - 1) // 2 for n in sizes.values())
    print(f"{args.split}: true pairs per category {total}; within reach {int((true & in_split).sum())}")
    grid = itertools.product(
        (0.975,), (0.80, 0.85, 0.875), (15, 20), (0.80, 0.85, 0.9, 0.93), (0.5, 0.7), (10, 15, 25), (0.7, 0.8)
    )
    rows = []
    for min_sim, floor, threshold, aligned, colour, inliers, registered in grid:
        candidate = (d["cosine"] >= min_sim) | ((d["near"] <= threshold) & (d["cosine"] >= floor))
        # keypoints also confirm pairs beyond the hash rule: every pair with cosine >= floor is a candidate
        wide = candidate | (d["cosine"] >= floor)
        found = wide & verdicts(d, aligned, colour, inliers, registered) & in_split
        line = [min_sim, floor, threshold, aligned, colour, inliers, registered]
        worst_p = 1.0
        per = []
        for c in sorted(set(category)):
            mask = found & ((category[i] == c) | (category[j] == c))
            tp = int((mask & true).sum())
            p = tp / max(int(mask.sum()), 1)
            r = tp / max(total[c], 1)
            per.append(f"{c[:4]} {p:.3f}/{r:.3f}")
            worst_p = min(worst_p, p)
        allmask = found
        tp = int((allmask & true).sum())
        rows.append((worst_p, tp, line, per, int(allmask.sum()) - tp))
    rows.sort(key=lambda r: (-round(r[0], 3), -r[1]))
    for worst_p, tp, line, per, fp in rows[:25]:
        print(line, f"worst P {worst_p:.3f} TP {tp} FP {fp} |", "  ".join(per))


if __name__ == "__main__":
    main()
