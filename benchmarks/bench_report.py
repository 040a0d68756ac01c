"""A 10k-cluster report in headless Chromium: time to DOMContentLoaded (target <= 2 s).

Run from the repository root::

    python benchmarks/bench_report.py --clusters 10000 --members 3

It writes a synthetic clusters document (``--clusters`` clusters of ``--members``
files, each member a distinct digest with a tiny thumbnail already in
``thumbs/``, so no image is decoded), renders ``report.html`` with
:func:`imgdedup.review.report.render_report` (timed), then opens it ``--loads`` times
from its ``file://`` URL in Debian's Chromium (``/usr/bin/chromium``, driven by
Playwright) and prints, per load, the wall time of ``goto(wait_until=
"domcontentloaded")`` and the page's own ``domContentLoadedEventEnd`` (from
navigation start), plus the time to the first thumbnails, a search over every
cluster and a page flip. Exit status 1 if the median DOMContentLoaded is above
``--target`` seconds.

``--report RUN/report.html`` opens the report of a real run instead (``bench_scale``'s at 1M,
say); the search is for the file name of the last cluster's last member::

    python benchmarks/bench_report.py --report /tmp/imgdedup-bench-scale-1000000/run-phash-out/report.html --loads 3 --target 5
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PIL import Image  # noqa: E402

from imgdedup.review.report import render_report  # noqa: E402
from imgdedup.review.thumbnails import thumbnail_name  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def synthetic_document(n_clusters: int, n_members: int, root: str) -> dict:
    clusters = []
    for c in range(1, n_clusters + 1):
        members = []
        for k in range(n_members):
            digest = hashlib.blake2b(f"{c}/{k}".encode(), digest_size=16).hexdigest()
            size = 500_000 - k * 1000 + (c * 7919) % 100_000
            members.append(
                {
                    "path": f"folder{c % 97:02d}/sub{c % 13}/IMG_{c:05d}_{k}{' copy' if k else ''}.jpg",
                    "keeper": k == 0,
                    "distance": 0 if k == 0 else 1 + (c + k) % 10,
                    "width": 4000 - 100 * k,
                    "height": 3000 - 75 * k,
                    "bytes": size,
                    "format": "JPEG",
                    "digest": digest,
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
    return {"root": root, "method": "phash", "threshold": 10, "clusters": clusters}


def write_tiny_thumbnails(document: dict, folder: Path, size: int) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    payloads = []
    for shade in range(16):
        buffer = io.BytesIO()
        Image.new("RGB", (24, 18), (shade * 16, 120, 255 - shade * 16)).save(buffer, "JPEG", quality=70)
        payloads.append(buffer.getvalue())
    n = 0
    for cluster in document["clusters"]:
        for member in cluster["members"]:
            (folder / thumbnail_name(member["digest"], size)).write_bytes(payloads[cluster["cluster"] % 16])
            n += 1
    return n


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clusters", type=int, default=10_000)
    parser.add_argument("--members", type=int, default=3)
    parser.add_argument("--loads", type=int, default=5)
    parser.add_argument("--target", type=float, default=2.0, help="seconds to DOMContentLoaded (median)")
    parser.add_argument("--dir", default=None, help="work folder (default: a temporary one)")
    parser.add_argument("--report", type=Path, default=None, help="a run's report.html, opened instead")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        print(f"{CHROMIUM} is missing: apt-get install chromium", file=sys.stderr)
        return 1
    from playwright.sync_api import sync_playwright

    if args.report:
        page_path = args.report
        clusters = json.loads((page_path.parent / "clusters.json").read_text())["clusters"]
        n_clusters, search_for = len(clusters), Path(clusters[-1]["members"][-1]["path"]).name
        print(f"clusters: {n_clusters} in {page_path} ({page_path.stat().st_size / 1e6:.1f} MB)")
    else:
        work = Path(args.dir or tempfile.mkdtemp(prefix="bench-report-"))
        run = work / "run"
        document = synthetic_document(args.clusters, args.members, str(work / "photos"))
        n_thumbs = write_tiny_thumbnails(document, run / "thumbs", 160)
        started = time.perf_counter()
        page_path = render_report(
            document,
            [],
            {"clusters": args.clusters, "files": args.clusters * args.members},
            run,
            pair_distances=[m["distance"] for c in document["clusters"] for m in c["members"][1:]],
        )
        render_s = time.perf_counter() - started
        # one cluster's last member (any --clusters and --members)
        n_clusters, search_for = args.clusters, f"img_{min(9999, args.clusters - 1):05d}_{args.members - 1}"
        print(f"clusters: {args.clusters} x {args.members} members, {n_thumbs} thumbnails (cached)")
        print(f"render:   {render_s:.2f} s, report.html {page_path.stat().st_size / 1e6:.1f} MB")

    loads, dcls = [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for k in range(args.loads):
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            errors = []
            page.on("console", lambda msg, errors=errors: errors.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
            started = time.perf_counter()
            page.goto(page_path.resolve().as_uri(), wait_until="domcontentloaded")
            wall = time.perf_counter() - started
            dcl = page.evaluate(
                "() => { const n = performance.getEntriesByType('navigation')[0]; return n.domContentLoadedEventEnd / 1000; }"
            )
            count = page.inner_text("#cluster-count")
            shown = page.locator("section.cluster").count()
            # the first cluster's thumbnails (they load lazily: far below the fold they wait for a scroll)
            page.wait_for_function(
                "() => { const seen = [...document.querySelectorAll('section.cluster:first-of-type figure img')];"
                " return seen.length > 0 && seen.every(i => i.complete && i.naturalWidth > 0); }"
            )
            thumbs = time.perf_counter() - started
            loads.append(wall)
            dcls.append(dcl)
            line = f"load {k + 1}:   goto->DOMContentLoaded {wall:.3f} s, page DOMContentLoaded {dcl:.3f} s, first cluster's thumbnails {thumbs:.3f} s"
            if k == 0:
                started = time.perf_counter()
                page.fill("#search", search_for)
                page.wait_for_function("() => document.getElementById('cluster-count').textContent === '1'")
                search = time.perf_counter() - started
                page.fill("#search", "")
                page.wait_for_function(f"() => document.getElementById('cluster-count').textContent === '{n_clusters}'")
                line += f"; search (incl. 120 ms debounce) {search:.3f} s"
                if shown < n_clusters:  # more than one page
                    started = time.perf_counter()
                    page.click("#next")
                    page.wait_for_function(
                        "() => document.getElementById('page-info').textContent.includes('page 2 of')"
                    )
                    line += f", next page {time.perf_counter() - started:.3f} s"
            print(line + f"; clusters shown {shown} of {count}; console errors {len(errors)}")
            if errors or count != str(n_clusters):
                print("errors:", errors[:5])
                return 1
            context.close()
        browser.close()
    median = statistics.median(dcls)
    print(
        f"median page DOMContentLoaded: {median:.3f} s (target <= {args.target} s): {'ok' if median <= args.target else 'TOO SLOW'}"
    )
    return 0 if median <= args.target else 1


if __name__ == "__main__":
    sys.exit(main())
