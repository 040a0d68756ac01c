"""`apply` then `undo` on 10k duplicate files: times, and a check that the tree is byte-identical after.

Run from the repository root::

    python benchmarks/bench_apply.py --duplicates 10000 --per-cluster 5

It writes a synthetic tree (``--duplicates / --per-cluster`` clusters, each a
keeper and ``--per-cluster`` duplicates of 1-8 KB, in nested folders, with
distinct mtimes) and the run folder that describes it (``clusters.json`` and
``work/discovered.json``, as ``imgdedup find`` writes them). Then, for each
action, it times the dry run, ``apply --yes`` and ``undo``, and compares a map of
the whole tree (every path -> kind, BLAKE2b digest, size, mtime in ns, link
count) taken before with the one after undo. Exit status 1 if any differ.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from imgdedup.actions import ACTIONS, apply_plan, load_run, plan_actions, undo_journal  # noqa: E402
from imgdedup.imaging.discover import content_digest  # noqa: E402
from tests.trees import snapshot  # noqa: E402  (the same tree map the tests compare)


def make_tree(work: Path, n_clusters: int, per_cluster: int, seed: int = 0) -> tuple[Path, Path]:
    rng = __import__("random").Random(seed)
    root, run = work / "photos", work / "run"
    (run / "work").mkdir(parents=True)
    files, clusters = [], []
    t0 = 1_600_000_000_000_000_000
    for c in range(1, n_clusters + 1):
        body = os.urandom(rng.randint(1024, 8192))
        members = []
        for k in range(per_cluster + 1):
            rel = f"y{c % 7}/m{c % 12:02d}/{'' if k == 0 else 'copies/'}img{c:05d}-{k}.jpg"
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            data = body if k % 2 == 0 else body + bytes([k])  # some byte-identical, some near-duplicates
            path.write_bytes(data)
            mtime = t0 + (c * 10 + k) * 1_000_000_007
            os.utime(path, ns=(mtime, mtime))
            files.append([rel, len(data), mtime])
            members.append(
                {
                    "path": rel,
                    "keeper": k == 0,
                    "distance": 0 if k == 0 else k,
                    "width": 4000 - k,
                    "height": 3000,
                    "bytes": len(data),
                    "format": "JPEG",
                    "digest": content_digest(data),
                }
            )
        clusters.append(
            {
                "cluster": c,
                "keeper": members[0]["path"],
                "reclaimable_bytes": sum(m["bytes"] for m in members[1:]),
                "members": members,
            }
        )
    (run / "clusters.json").write_text(
        json.dumps({"root": str(root), "method": "phash", "threshold": 10, "clusters": clusters})
    )
    (run / "work" / "discovered.json").write_text(json.dumps(files))
    return root, run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duplicates", type=int, default=10_000)
    parser.add_argument("--per-cluster", type=int, default=5)
    parser.add_argument("--dir", default=None, help="work folder (default: a temporary one, removed after)")
    parser.add_argument("--actions", nargs="+", default=list(ACTIONS), choices=ACTIONS)
    args = parser.parse_args()
    work = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="bench-apply-"))
    n_clusters = args.duplicates // args.per_cluster
    started = time.perf_counter()
    root, run = make_tree(work, n_clusters, args.per_cluster)
    before = snapshot(root)
    n_files = sum(1 for v in before.values() if v[0] == "file")
    print(
        f"tree:     {n_files} files ({n_clusters} clusters, {n_clusters * args.per_cluster} duplicates) in {work}; "
        f"made and mapped in {time.perf_counter() - started:.1f} s"
    )
    ok = True
    print(
        f"{'action':9} {'dry run s':>9} {'apply s':>8} {'done':>6} {'skipped':>7} {'undo s':>7} {'restored':>8}  tree after undo"
    )
    for action in args.actions:
        to = str(work / "moved") if action == "move" else None
        started = time.perf_counter()
        dry = apply_plan(plan_actions(load_run(run), action, to=to), dry_run=True)
        dry_s = time.perf_counter() - started
        started = time.perf_counter()
        outcome = apply_plan(plan_actions(load_run(run), action, to=to), dry_run=False)
        apply_s = time.perf_counter() - started
        changed = snapshot(root) != before
        started = time.perf_counter()
        undone = undo_journal(outcome.journal)
        undo_s = time.perf_counter() - started
        same = snapshot(root) == before
        ok &= (
            same
            and changed
            and len(outcome.done) == len(dry.done) == n_clusters * args.per_cluster
            and not undone.problems
        )
        print(
            f"{action:9} {dry_s:9.2f} {apply_s:8.2f} {len(outcome.done):6d} {len(outcome.skipped):7d} {undo_s:7.2f} "
            f"{len(undone.restored):8d}  {'byte-identical (digest, size, mtime, links)' if same else 'DIFFERENT'}"
        )
    if not args.dir:
        shutil.rmtree(work)
    print("check:", "ok" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
