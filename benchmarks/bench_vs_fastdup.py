"""End to end, the default method vs fastdup (issue #18): the same JPEGs, the same cores, cold processes.

Run from the repository root::

    python benchmarks/bench_vs_fastdup.py --fastdup-python /path/to/fdenv/bin/python

Data: ``--images`` (400) JPEGs of ``--size`` (1632x1224, 2 MP) written by
``bench_scale.generate`` (random scenes with sensor-like noise, one planted copy
per 10 originals: re-encoded, 0.8x resized or brightened) into
``$TMPDIR/imgdedup-bench-vs-fastdup-N`` (or ``--workdir``), and reused.

Each round runs, as child processes and from a cold start (a fresh store and a
fresh fastdup work folder; the page cache is warm after the first round):

(a) ``imgdedup find DIR --store S --out O -q``: the default method (hybrid), one
    worker process per core;
(b) ``SENTRY_OPT_OUT=1 FASTDUP_PYTHON benchmarks/peer_fastdup.py --images DIR ...``:
    fastdup's ``run`` with its bundled ONNX model and its own thread count (all
    cores), then its connected components at 0.9. fastdup lives in a venv of its
    own (it pins numpy<2; non-commercial licence: a benchmark peer only).

``--rounds`` (2) rounds, the order swapped each round. Printed per run: the
1-minute load average just before, wall seconds of the whole command (imports,
model load and start-up included), images/s (N / wall), CPU % (user + system
seconds of the command and its children, from ``getrusage(RUSAGE_CHILDREN)``,
over wall), the peak RSS of its largest process (psutil, every 0.1 s), and
the planted pairs it groups together plus the other pairs its groups imply
(imgdedup: the pairs ``duplicates.json`` lists; fastdup: every pair inside one
of its components).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_scale import generate, planted_found, run_sampled  # noqa: E402


def timed(args: list[str], env: dict) -> dict:
    """Run ``args`` to completion: wall seconds, CPU % of its process tree, peak RSS of its largest process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    output, wall, peaks = run_sampled(args, env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    peak = max((rss for _, rss in peaks.values()), default=0)
    return {"wall": wall, "cpu": 100 * cpu / wall, "peak": peak, "output": output}


def fastdup_pairs(clusters_json: Path, planted: list[tuple[str, str]]) -> tuple[int, int]:
    clusters = json.loads(clusters_json.read_text())["clusters"]
    implied = {frozenset(p) for c in clusters for p in itertools.combinations(c, 2)}
    truth = {frozenset(p) for p in planted}
    return len(implied & truth), len(implied - truth)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fastdup-python", required=True, help="the Python of fastdup's own venv")
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--size", default="1632x1224")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    work = args.workdir or Path(tempfile.gettempdir()) / f"imgdedup-bench-vs-fastdup-{args.images}"
    folder = work / "photos"
    planted = generate(folder, args.images, size, 10)
    n = sum(1 for _ in folder.rglob("*.jpg"))
    megabytes = sum(p.stat().st_size for p in folder.rglob("*.jpg")) / 1e6
    print(
        f"{n} JPEGs of {args.size} ({len(planted)} planted copies, {megabytes:.0f} MB) in {folder}; {os.cpu_count()} cores"
    )
    env = dict(os.environ, SENTRY_OPT_OUT="1", PREFECT_HOME=str(work / "prefect-home"))
    imgdedup = str(Path(sys.executable).with_name("imgdedup"))
    peer = str(Path(__file__).with_name("peer_fastdup.py"))

    def run_imgdedup(label: str) -> str:
        subprocess.run(["rm", "-rf", str(work / "store"), str(work / "out")], check=True)
        load = os.getloadavg()[0]
        r = timed(
            [imgdedup, "find", str(folder), "--store", str(work / "store"), "--out", str(work / "out"), "-q"], env
        )
        found, other = planted_found(work / "out", planted)
        seconds = json.loads((work / "out" / "summary.json").read_text())["seconds"]
        stages = ", ".join(f"{k} {v:.1f}" for k, v in seconds.items())
        return (
            f"{label} imgdedup find (hybrid): load {load:.2f}; wall {r['wall']:.1f} s, {n / r['wall']:.1f} images/s, "
            f"CPU {r['cpu']:.0f} %, peak RSS {r['peak'] / 2**20:.0f} MiB; planted {found}/{len(planted)}, "
            f"other pairs {other}; stages (s): {stages}"
        )

    def run_fastdup(label: str) -> str:
        subprocess.run(["rm", "-rf", str(work / "fastdup"), str(work / "fastdup.json")], check=True)
        load = os.getloadavg()[0]
        command = [args.fastdup_python, peer, "--images", str(folder), "--work", str(work / "fastdup")]
        r = timed([*command, "--out", str(work / "fastdup.json")], env)
        found, other = fastdup_pairs(work / "fastdup.json", planted)
        inner = json.loads((work / "fastdup.json").read_text())["seconds"]
        return (
            f"{label} fastdup (components 0.9): load {load:.2f}; wall {r['wall']:.1f} s, {n / r['wall']:.1f} images/s, "
            f"CPU {r['cpu']:.0f} %, peak RSS {r['peak'] / 2**20:.0f} MiB; planted {found}/{len(planted)}, "
            f"other pairs {other}; fastdup.create..connected_components {inner:.1f} s"
        )

    for round_ in range(args.rounds):
        order = (run_imgdedup, run_fastdup) if round_ % 2 == 0 else (run_fastdup, run_imgdedup)
        for run in order:
            print(run(f"round {round_ + 1}:"), flush=True)


if __name__ == "__main__":
    main()
