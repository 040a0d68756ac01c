"""Incremental reruns (issue #5): what a rerun costs against a full run, through the flow and in-process.

Run from the repository root (about 20 minutes on 2 cores)::

    python benchmarks/bench_incremental.py --images 4000

Data: ``benchmarks.transforms.make_transformed_copies(size=(1024, 768))`` with all
17 transforms, so every original comes with 17 copies (re-encoded, resized,
cropped, rotated, ...): about 1 megapixel per JPEG. ``round(images / 18)``
originals and their copies form the library (3996 JPEGs for ``--images
4000``); 40 further originals are held back and added for the "+1 %" rerun,
with 5 copies of them and 5 byte-for-byte copies of library files (50 files,
1.25 %). The generated files are kept in ``--workdir`` (default
``$TMPDIR/imgdedup-bench-incremental-N``) and reused by later runs.

For each method (``phash``, and ``hybrid``: phash + EfficientNet-Lite0
embeddings, ONNX Runtime on CPU), one store for the flow and another for
in-process runs:

``start-up``   ``flows.dedup.dedup_flow`` on an empty folder: the flow's fixed
               cost (Prefect flow and task runs, Dask LocalCluster of 2 worker
               processes, the artifacts); median of 3 after one warm-up.
``full``       first run, fresh store.
``nothing``    rerun, nothing changed.
``+1%``        rerun after adding the 50 files; its clusters.json "clusters"
               and duplicates.json are compared with those of a run on a fresh
               store over the same files, in the same mode (also in the table).
``threshold``  rerun with only ``threshold=8`` (phash) or
               ``min_similarity=0.95`` (hybrid) changed.

Each rerun is measured twice, on two copies of the store made after the full
run: into a new run folder (``new``: what ``imgdedup find``, ``imgdedup run``
and the deployments do by default, so the report writes every thumbnail again)
and into the full run's folder (``same``: thumbnails are reused).

Flows run inside ``prefect.testing.utilities.prefect_test_harness`` (a
temporary Prefect server, started once; PREFECT_HOME in a temporary folder,
analytics off, log level WARNING), with ``n_workers=2``. In-process runs call
``imgdedup.pipeline.inprocess.find_duplicates_in_folder`` and first drop the embedder
that an earlier run in this process cached, so each pays what a new ``imgdedup
find`` process pays (the ONNX model is exported once, before timing).

The table gives, for flow runs, seconds minus the fixed start-up cost and that
as a percentage of the full run's seconds beyond the same cost; for in-process
runs, the percentage of the full in-process run. ``decoded`` is
``summary.decoded`` (files read this run). Targets of issue #5: nothing-changed
rerun <= 5 %, +1 % rerun <= 10 %, threshold-only rerun <= 5 % of the full run
beyond the fixed cost. ``s outside stages`` is the run's time minus its
``summary.seconds`` stages (flow: also minus the part of the start-up cost
outside its stages): mostly the report and its thumbnails. Flow times have a
resolution of about 1 s (they come out near whole seconds plus 0.1). ``load`` is the 1-minute load average when the
run ended.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

_HOME = tempfile.mkdtemp(prefix="imgdedup-bench-prefect-")
os.environ["PREFECT_HOME"] = _HOME
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ["IMGDEDUP_HOME"] = tempfile.mkdtemp(prefix="imgdedup-bench-home-")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

N_NEW = 40  # new distinct originals added for the "+1 %" rerun
N_NEW_COPIES = 5  # copies of those new originals added with them
N_OLD_COPIES = 5  # byte-for-byte copies of library files added with them
PER_ORIGINAL = 18  # an original and its 17 transformed copies
TARGETS = {"nothing": 5.0, "+1%": 10.0, "threshold": 5.0}
RERUN_SETTINGS = {"phash": {"threshold": 8}, "hybrid": {"min_similarity": 0.95}}


# --- data -----------------------------------------------------------------------


def make_source(workdir: Path, n_base: int) -> Path:
    """Generate (once) the originals and copies, held-back originals included."""
    from benchmarks.transforms import make_transformed_copies

    source = workdir / "source"
    if not (source / "ground_truth.json").exists():
        print(f"generating {(n_base + N_NEW) * PER_ORIGINAL} JPEGs (1024 x 768 originals) in {source} ...", flush=True)
        started = time.perf_counter()
        make_transformed_copies(source, n_originals=n_base + N_NEW, size=(1024, 768), overwrite=True)
        print(f"  done in {time.perf_counter() - started:.0f} s", flush=True)
    return source


def split_originals(source: Path, n_base: int) -> tuple[list[str], list[str]]:
    """Library originals and held-back originals (every k-th name, so every photograph contributes)."""
    names = sorted(p.stem for p in (source / "originals").glob("*.jpg"))
    if len(names) < n_base + N_NEW:
        raise SystemExit(
            f"{source} has {len(names)} originals, need {n_base + N_NEW}: remove it or use another --workdir"
        )
    step = len(names) / N_NEW
    held = {names[int(k * step)] for k in range(N_NEW)}
    base = [n for n in names if n not in held][:n_base]
    return base, sorted(held)


def link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def make_library(source: Path, library: Path, base: list[str]) -> int:
    """The library folder: hard links to the base originals and all their copies."""
    if library.exists():
        shutil.rmtree(library)
    count = 0
    for name in base:
        link(source / "originals" / f"{name}.jpg", library / "originals" / f"{name}.jpg")
        count += 1
        for copy in sorted((source / "copies").glob(f"{name}__*.jpg")):
            link(copy, library / "copies" / copy.name)
            count += 1
    return count


def add_files(source: Path, library: Path, held: list[str], base: list[str]) -> int:
    """The "+1 %" change: held-back originals, some of their copies, some byte copies of library files."""
    added = library / "added"
    for name in held:
        link(source / "originals" / f"{name}.jpg", added / f"{name}.jpg")
    for name in held[:N_NEW_COPIES]:
        link(source / "copies" / f"{name}__jpeg_q25.jpg", added / f"{name}__jpeg_q25.jpg")
    step = max(1, len(base) // N_OLD_COPIES)
    for name in base[::step][:N_OLD_COPIES]:
        shutil.copyfile(library / "originals" / f"{name}.jpg", added / f"{name}__exact.jpg")
    return len(list(added.iterdir()))


# --- runs -----------------------------------------------------------------------


def load() -> float:
    return os.getloadavg()[0]


def run_flow(folder: Path, method: str, store: Path, out: Path, **settings):
    import logging

    from imgdedup.flows.dedup import dedup_flow

    logging.getLogger("distributed").setLevel(logging.WARNING)  # Prefect's logging config sets it to INFO
    started = time.perf_counter()
    summary = dedup_flow(path=str(folder), method=method, store=str(store), out=str(out), n_workers=2, **settings)
    return time.perf_counter() - started, summary


def run_in_process(folder: Path, method: str, store: Path, out: Path, **settings):
    from imgdedup.config import load_config
    from imgdedup.pipeline.embedders import _EMBEDDERS
    from imgdedup.pipeline.inprocess import find_duplicates_in_folder

    _EMBEDDERS.clear()  # as a new `imgdedup find` process: build the embedder again
    started = time.perf_counter()
    summary = find_duplicates_in_folder(folder, load_config(method=method, store=str(store), **settings), out)
    return time.perf_counter() - started, summary


def bench_method(
    method: str, library: Path, source: Path, held: list[str], base: list[str], scratch: Path, rows: list, checks: list
) -> None:
    runs = {"flow": run_flow, "in-process": run_in_process}
    empty = scratch / "empty"
    empty.mkdir(exist_ok=True)

    # fixed start-up cost of the flow
    run_flow(empty, method, scratch / "empty-store", scratch / "empty-warm")
    startups, startup_stages = [], []
    for k in range(3):
        seconds, summary = run_flow(empty, method, scratch / "empty-store", scratch / f"empty-{k}")
        startups.append(seconds)
        startup_stages.append(sum(summary.seconds.values()))
    startup = statistics.median(startups)
    startup_outside = startup - statistics.median(startup_stages)  # of the fixed cost, what is not in its stage seconds
    rows.append(
        {
            "scenario": "start-up (empty folder)",
            "method": method,
            "mode": "flow",
            "out": "new",
            "seconds": startup,
            "beyond": None,
            "pct": None,
            "decoded": 0,
            "report": None,
            "load": load(),
            "note": f"runs {', '.join(f'{s:.1f}' for s in startups)}",
        }
    )
    print(f"[{method}] flow start-up: {startup:.1f} s (runs {', '.join(f'{s:.1f}' for s in startups)})", flush=True)

    full: dict[str, float] = {}

    def record(scenario: str, mode: str, out: str, seconds: float, summary, note: str = "") -> None:
        fixed = startup if mode == "flow" else 0.0
        if scenario == "full":
            full[mode] = seconds
        pct = None if scenario.startswith("full") else 100.0 * (seconds - fixed) / (full[mode] - fixed)
        outside = seconds - (startup_outside if mode == "flow" else 0.0) - sum(summary.seconds.values())
        rows.append(
            {
                "scenario": scenario,
                "method": method,
                "mode": mode,
                "out": out,
                "seconds": seconds,
                "beyond": seconds - startup if mode == "flow" else None,
                "pct": pct,
                "decoded": summary.decoded,
                "report": outside,
                "load": load(),
                "note": note,
            }
        )
        stages = ", ".join(f"{k} {v:.1f}" for k, v in summary.seconds.items())
        print(
            f"[{method}] {scenario:<10} {mode:<10} out {out:<4} {seconds:7.1f} s  decoded {summary.decoded:5d}  images {summary.images}  "
            f"clusters {summary.clusters}  ({stages}; outside stages {outside:.1f})  load {load():.2f}",
            flush=True,
        )

    # Reruns are measured twice, on two copies of the store made after the full run:
    # "new": a new run folder each time (the default of `find`, `run` and the deployments),
    # so the report makes every thumbnail again; "same": into the full run's folder, reusing them.
    for mode, run in runs.items():
        store, out = scratch / f"{mode}-store", scratch / f"{mode}-full"
        seconds, summary = run(library, method, store, out)
        record("full", mode, "new", seconds, summary, note=f"{summary.images} images")
        shutil.copytree(store, scratch / f"{mode}-store-same", ignore=shutil.ignore_patterns("lock"))
        shutil.copytree(out, scratch / f"{mode}-same")
    n_added = 0
    for scenario in ("nothing", "+1%", "threshold"):
        settings = RERUN_SETTINGS[method] if scenario == "threshold" else {}
        if scenario == "+1%":
            n_added = add_files(source, library, held, base)
        note = ", ".join(f"{k} {v}" for k, v in settings.items()) or (
            f"{n_added} files added" if scenario == "+1%" else ""
        )
        for mode, run in runs.items():
            for out in ("new", "same"):
                store = scratch / (f"{mode}-store" if out == "new" else f"{mode}-store-same")
                folder = scratch / (f"{mode}-{scenario}" if out == "new" else f"{mode}-same")
                seconds, summary = run(library, method, store, folder, **settings)
                record(scenario, mode, out, seconds, summary, note)
                if scenario == "+1%":
                    shutil.copy2(folder / "clusters.json", scratch / f"{mode}-{out}-plus-clusters.json")
                    shutil.copy2(folder / "duplicates.json", scratch / f"{mode}-{out}-plus-duplicates.json")
        if scenario == "+1%":
            for mode, run in runs.items():
                folder = scratch / f"{mode}-fresh"
                seconds, summary = run(library, method, scratch / f"{mode}-fresh-store", folder)
                record(
                    "full (fresh store, +1% files)",
                    mode,
                    "new",
                    seconds,
                    summary,
                    note=f"{summary.images} images: the reference",
                )
                for out in ("new", "same"):
                    clusters = json.loads((scratch / f"{mode}-{out}-plus-clusters.json").read_text())["clusters"]
                    expected = json.loads((folder / "clusters.json").read_text())["clusters"]
                    same_text = (scratch / f"{mode}-{out}-plus-duplicates.json").read_bytes() == (
                        folder / "duplicates.json"
                    ).read_bytes()
                    checks.append((method, mode, out, clusters == expected, same_text, summary.clusters))
    shutil.rmtree(library / "added")


# --- output -----------------------------------------------------------------------


def print_table(rows: list[dict]) -> None:
    print()
    print(
        "| scenario | method | mode | run folder | seconds | s beyond start-up | % of full beyond start-up | decoded | s outside stages (report) | load | note |"
    )
    print("|---|---|---|---|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        beyond = "" if r["beyond"] is None else f"{r['beyond']:.1f}"
        pct = "" if r["pct"] is None else f"{r['pct']:.1f} %"
        report = "" if r["report"] is None else f"{r['report']:.1f}"
        print(
            f"| {r['scenario']} | {r['method']} | {r['mode']} | {r['out']} | {r['seconds']:.1f} | {beyond} | {pct} | {r['decoded']} | {report} | {r['load']:.2f} | {r['note']} |"
        )
    print(
        "run folder: new = a new --out per run (the default: the report makes every thumbnail again); "
        "same = the full run's --out (thumbnails reused). s outside stages: the run minus its stage seconds "
        "(flow: also minus the part of the start-up cost outside its stages): mostly the report and its thumbnails."
    )


def print_verdicts(rows: list[dict], checks: list) -> None:
    print()
    print("Targets of issue #5 (percent of the full run beyond the fixed start-up cost):")
    for r in rows:
        target = TARGETS.get(r["scenario"])
        if target is None:
            continue
        decoded_ok = r["decoded"] == 0 if r["scenario"] != "+1%" else True
        verdict = "MET" if r["pct"] <= target and decoded_ok else "NOT MET"
        extra = "" if r["scenario"] == "+1%" else f", decoded {r['decoded']} (must be 0)"
        print(
            f"  {r['scenario']:<9} {r['method']:<6} {r['mode']:<10} out {r['out']:<4} {r['pct']:5.1f} % <= {target:.0f} %{extra}: {verdict}"
        )
    print("Clusters after the +1% rerun vs a run on a fresh store over the same files (same mode):")
    for method, mode, out, clusters_equal, duplicates_equal, n in checks:
        print(
            f"  {method:<6} {mode:<10} out {out:<4} clusters.json clusters equal: {'yes' if clusters_equal else 'NO'}; "
            f"duplicates.json identical: {'yes' if duplicates_equal else 'NO'} ({n} clusters)"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=4000, help="library size, about (4000)")
    parser.add_argument(
        "--methods", nargs="+", default=["phash", "hybrid"], choices=["phash", "hybrid", "dhash", "cnn"]
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        help="where the generated JPEGs are kept (default: $TMPDIR/imgdedup-bench-incremental-N)",
    )
    args = parser.parse_args(argv)

    n_base = max(N_OLD_COPIES, round(args.images / PER_ORIGINAL))
    workdir = args.workdir or Path(tempfile.gettempdir()) / f"imgdedup-bench-incremental-{args.images}"
    source = make_source(workdir, n_base)
    base, held = split_originals(source, n_base)
    library = workdir / "library"
    n_files = make_library(source, library, base)
    print(
        f"library: {library} ({n_files} JPEGs; {N_NEW + N_NEW_COPIES + N_OLD_COPIES} added for the +1% rerun)",
        flush=True,
    )

    if any(m in ("hybrid", "cnn") for m in args.methods):
        from imgdedup.config import Config
        from imgdedup.pipeline.embedders import embedder_for

        started = time.perf_counter()
        embedder_for(Config())  # exports and caches the ONNX model once, before anything is timed
        print(f"embedder ready in {time.perf_counter() - started:.1f} s", flush=True)

    from prefect.testing.utilities import prefect_test_harness

    rows: list[dict] = []
    checks: list = []
    print(f"uptime load at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {os.cpu_count()} CPUs", flush=True)
    with (
        tempfile.TemporaryDirectory(prefix="imgdedup-bench-incremental-") as tmp,
        prefect_test_harness(server_startup_timeout=60),
    ):
        for method in args.methods:
            scratch = Path(tmp) / method
            scratch.mkdir()
            bench_method(method, library, source, held, base, scratch, rows, checks)
            shutil.rmtree(scratch)
    print_table(rows)
    print_verdicts(rows, checks)
    print(f"uptime load at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
